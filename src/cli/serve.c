/*
 * serve.c - `scribed serve`: parses the configuration (flags and SCRIBED_*
 * variables, see server/config.def), starts the service and waits for
 * SIGTERM/SIGINT, then drains and exits 0. The one global of the service
 * is the signal flag below.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "server/app.h"
#include "server/config.h"

extern char **environ;

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
}

int cmd_serve(int argc, char **argv)
{
    struct config cfg;
    struct sd_error err = {0};
    struct app app;
    sigset_t block, old;

    if (config_parse(&cfg, argc, argv, environ, &err) != SD_OK) {
        fprintf(stderr, "scribed serve: %s\n", err.msg);
        return 2;
    }
    if (cfg.show_help) {
        config_print_help(stdout);
        config_clear(&cfg);
        return 0;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* service threads inherit a mask without SIGTERM/SIGINT: only this thread takes them */
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    enum sd_err rc = app_start(&app, &cfg, &err);
    if (rc != SD_OK) {
        fprintf(stderr, "scribed serve: %s\n", err.msg);
        return 1;
    }
    /* unblock and wait atomically, so a signal between the check and the wait is not lost */
    while (!stop_signal)
        sigsuspend(&old);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    log_event(app.log, LOG_INFO, "server.signal",
              (struct log_field[]){LOG_I64("signal", stop_signal), LOG_END});
    if (!app_stop(&app))
        _exit(0); /* runs still going were re-queued; the threads using them die with us */
    return 0;
}
