/*
 * cli.h - the subcommands of the scribed binary. Each lives in its own file
 * (cli/<name>.c), parses its own flags, prints errors as one line on stderr
 * and returns the process exit code.
 */
#ifndef SD_CLI_CLI_H
#define SD_CLI_CLI_H

int cmd_transcribe(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_worker(int argc, char **argv);
int cmd_store(int argc, char **argv);
int cmd_vad(int argc, char **argv);
int cmd_model(int argc, char **argv);
int cmd_keys(int argc, char **argv);
int cmd_backup(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_speak(int argc, char **argv);

#endif
