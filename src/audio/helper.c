/*
 * helper.c - the sandbox child as a separately exec'd program.
 *
 * With opts.helper_exe set, the parent posix_spawn()s (vfork-fast, cost
 * independent of the server's size) `exe __audio-decode v1 <limits...>`
 * with the input on fd 3 and the result pipe on fd 4; the program's main()
 * hands such an argv to audio_helper_maybe_run, which runs the same child
 * code as the fork path (sandbox.c) in a fresh image: none of the server's
 * heap, locks or secrets are there to leak. argv is parsed strictly; any
 * mismatch exits without touching the fds' contents.
 */
#include "audio/audio_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

extern char **environ;

#define HELPER_VERSION "v1"
#define HELPER_IN_FD 3
#define HELPER_OUT_FD 4

enum sd_err audio_helper_spawn(const char *exe, int in_fd, int out_fd,
                               const struct audio_decode_opts *o, int probe_only, pid_t *pid,
                               struct sd_error *err)
{
    char dur[32], mem[16], cpu[16], probe[4], ppid[16];
    snprintf(dur, sizeof(dur), "%.3f", o->max_duration_s);
    snprintf(mem, sizeof(mem), "%d", o->max_memory_mb);
    snprintf(cpu, sizeof(cpu), "%d", o->max_cpu_s);
    snprintf(probe, sizeof(probe), "%d", probe_only ? 1 : 0);
    snprintf(ppid, sizeof(ppid), "%d", (int)getpid());
    char *argv[] = {(char *)exe, AUDIO_HELPER_ARG, HELPER_VERSION, dur, mem, cpu, probe,
                    (char *)(o->allowed ? o->allowed : "*"), ppid, NULL};
    /* Move both fds above 4 first so placing them on 3 and 4 cannot clobber either. */
    int hi_in = fcntl(in_fd, F_DUPFD_CLOEXEC, 5), hi_out = fcntl(out_fd, F_DUPFD_CLOEXEC, 5);
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    int fa_ok = 0, at_ok = 0, rc = EINVAL;
    if (hi_in < 0 || hi_out < 0)
        goto out;
    fa_ok = posix_spawn_file_actions_init(&fa) == 0;
    at_ok = posix_spawnattr_init(&at) == 0;
    if (!fa_ok || !at_ok)
        goto out;
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    if (posix_spawn_file_actions_adddup2(&fa, hi_in, HELPER_IN_FD) ||
        posix_spawn_file_actions_adddup2(&fa, hi_out, HELPER_OUT_FD) ||
        posix_spawnattr_setsigmask(&at, &none) || posix_spawnattr_setsigdefault(&at, &all) ||
        posix_spawnattr_setpgroup(&at, 0) ||
        posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                          POSIX_SPAWN_SETPGROUP))
        goto out;
    rc = posix_spawn(pid, exe, &fa, &at, argv, environ);
out:
    if (fa_ok)
        posix_spawn_file_actions_destroy(&fa);
    if (at_ok)
        posix_spawnattr_destroy(&at);
    if (hi_in >= 0)
        close(hi_in);
    if (hi_out >= 0)
        close(hi_out);
    if (hi_in < 0 || hi_out < 0)
        rc = errno;
    if (rc != 0)
        return sd_fail(err, rc == EAGAIN || rc == ENOMEM ? SD_EBUSY : SD_EINTERNAL,
                       "cannot start the decoder helper %s: %s", exe, strerror(rc));
    return SD_OK;
}

static int helper_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

void audio_helper_maybe_run(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], AUDIO_HELPER_ARG) != 0)
        return;
    long mem, cpu, probe, ppid;
    char *end;
    if (argc != 9 || strcmp(argv[2], HELPER_VERSION) != 0)
        _exit(2);
    double dur = strtod(argv[3], &end);
    if (*end || !(dur > 0) || helper_int(argv[4], 1, 1 << 20, &mem) ||
        helper_int(argv[5], 1, 1 << 20, &cpu) || helper_int(argv[6], 0, 1, &probe) ||
        helper_int(argv[8], 1, 1L << 30, &ppid))
        _exit(2);
    /* PDEATHSIG only covers a parent that dies after it is set: set it, then check. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != (pid_t)ppid)
        _exit(2);
    struct audio_decode_opts o = audio_decode_opts_default();
    o.max_duration_s = dur;
    o.max_memory_mb = (int)mem;
    o.max_cpu_s = (int)cpu;
    o.allowed = strcmp(argv[7], "*") == 0 ? NULL : argv[7];
    audio_sandbox_child_main(HELPER_IN_FD, HELPER_OUT_FD, &o, (int)probe);
}
