/*
 * sandbox.c - decoding untrusted media in a forked, resource-limited child.
 *
 * The child (fork, no exec) resets signals, closes every fd but the input
 * and a pipe, drops core dumps, sets RLIMIT_AS/CPU/FSIZE/NOFILE, installs a
 * seccomp allow-list (no open, no exec, no sockets, no threads, no PROT_EXEC)
 * and only then lets FFmpeg see a byte. Results come back over the pipe as
 * records (audio_internal.h); the parent reads them under a wall-clock
 * budget, enforces the duration limit itself and kills the child on any
 * violation. By default no exec (the library cannot count on a helper
 * binary); with opts.helper_exe the same child code runs in a freshly
 * exec'd image instead (helper.c), which is the better choice for a server.
 *
 * Fork from a multi-threaded server: only the forking thread exists in the
 * child. glibc makes malloc usable after fork; the child touches no stdio
 * and no lock of ours. A lock held by another thread at fork time (e.g. an
 * FFmpeg pthread_once running in-process elsewhere) could hang the child -
 * then the wall-clock timeout kills it and the request fails, nothing else.
 */
#include "audio/audio_internal.h"
#include "util/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libavutil/log.h>
#include <seccomp.h>

/* ---- child ---------------------------------------------------------------------------- */

struct sb_child {
    int out_fd;
    float buf[AUDIO_REC_MAX_PCM];
    size_t n_buf;
};

static int sb_write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static int sb_send(int fd, uint32_t type, const void *payload, uint32_t len)
{
    struct audio_rec_hdr h = {type, len};
    if (sb_write_all(fd, &h, sizeof(h)) != 0)
        return -1;
    return len ? sb_write_all(fd, payload, len) : 0;
}

static enum sd_err sb_child_info(void *user, const struct audio_info *info, struct sd_error *err)
{
    struct sb_child *c = user;
    if (sb_send(c->out_fd, AUDIO_REC_INFO, info, sizeof(*info)) != 0)
        return sd_fail(err, SD_EIO, "parent went away");
    return SD_OK;
}

static enum sd_err sb_flush(struct sb_child *c, struct sd_error *err)
{
    if (c->n_buf && sb_send(c->out_fd, AUDIO_REC_PCM, c->buf, (uint32_t)(c->n_buf * 4)) != 0)
        return sd_fail(err, SD_EIO, "parent went away");
    c->n_buf = 0;
    return SD_OK;
}

static enum sd_err sb_child_pcm(void *user, const float *pcm, size_t n, struct sd_error *err)
{
    struct sb_child *c = user;
    while (n > 0) {
        size_t k = AUDIO_REC_MAX_PCM - c->n_buf;
        if (k > n)
            k = n;
        memcpy(c->buf + c->n_buf, pcm, k * sizeof(float));
        c->n_buf += k;
        pcm += k;
        n -= k;
        if (c->n_buf == AUDIO_REC_MAX_PCM && sb_flush(c, err) != SD_OK)
            return SD_EIO;
    }
    return SD_OK;
}

/* FFmpeg's default logger calls isatty() (an ioctl the filter forbids); drop messages. */
static void sb_av_log_silent(void *avcl, int level, const char *fmt, va_list vl)
{
    (void)avcl, (void)level, (void)fmt, (void)vl;
}

/* Address space in use now (the inherited parent image), so the limit is what the child adds. */
static size_t sb_vm_bytes(void)
{
    char buf[64] = {0};
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    unsigned long pages = n > 0 ? strtoul(buf, NULL, 10) : 0;
    return (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
}

static void sb_close_other_fds(int keep_a, int keep_b)
{
    int lo = keep_a < keep_b ? keep_a : keep_b, hi = keep_a < keep_b ? keep_b : keep_a;
    if (lo > 0)
        close_range(0, (unsigned)lo - 1, 0);
    if (hi > lo + 1)
        close_range((unsigned)lo + 1, (unsigned)hi - 1, 0);
    close_range((unsigned)hi + 1, ~0U, 0);
}

static int sb_limits(const struct audio_decode_opts *o, int nofile)
{
    struct rlimit cpu = {(rlim_t)o->max_cpu_s, (rlim_t)o->max_cpu_s + 1};
    struct rlimit zero = {0, 0};
    struct rlimit files = {(rlim_t)nofile, (rlim_t)nofile};
    if (setrlimit(RLIMIT_CPU, &cpu) || setrlimit(RLIMIT_FSIZE, &zero) ||
        setrlimit(RLIMIT_CORE, &zero) || setrlimit(RLIMIT_NOFILE, &files))
        return -1;
    /* Relative to what is mapped now (the parent's image, or ASan's terabytes of shadow). */
    size_t as = sb_vm_bytes() + (size_t)o->max_memory_mb * 1024 * 1024;
    struct rlimit mem = {(rlim_t)as, (rlim_t)as};
    if (setrlimit(RLIMIT_AS, &mem))
        return -1;
    return 0;
}

static int sb_seccomp(int in_fd, int out_fd)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
    if (!ctx)
        return -1;
    int rc = 0;
#define ALLOW(name, ...) rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(name), __VA_ARGS__)
    ALLOW(read, 1, SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)in_fd));
    ALLOW(pread64, 1, SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)in_fd));
    ALLOW(lseek, 1, SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)in_fd));
    ALLOW(fstat, 1, SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)in_fd));
    ALLOW(newfstatat, 1, SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)in_fd));
    ALLOW(write, 1, SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)out_fd));
    /* Memory, but never executable. */
    ALLOW(mmap, 1, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
    ALLOW(mprotect, 1, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
    ALLOW(munmap, 0);
    ALLOW(mremap, 0);
    ALLOW(brk, 0);
    ALLOW(madvise, 0);
    ALLOW(futex, 0);
    ALLOW(clock_gettime, 0);
    ALLOW(gettimeofday, 0);
    ALLOW(getrandom, 0);
    ALLOW(sched_getaffinity, 0);
    ALLOW(sched_yield, 0);
    ALLOW(getpid, 0);
    ALLOW(gettid, 0);
    ALLOW(rt_sigreturn, 0);
    ALLOW(rt_sigprocmask, 0);
    ALLOW(exit, 0);
    ALLOW(exit_group, 0);
#undef ALLOW
    /* Refused politely rather than fatal: glibc's malloc may read /sys when a thread-forked
     * child needs a new arena, and isatty() probes with ioctl; both cope with an error. */
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(openat), 0);
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(open), 0);
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOTTY), SCMP_SYS(ioctl), 0);
    if (rc == 0)
        rc = seccomp_load(ctx);
    seccomp_release(ctx);
    return rc;
}

static void sb_child_reset_signals(void)
{
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGABRT, SIGILL, SIGFPE, SIGSYS, SIGXCPU,
                               SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGALRM, SIGCHLD, SIGUSR1,
                               SIGUSR2};
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        sigaction(sigs[i], &sa, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

static void sb_child_fail(int fd, const struct sd_error *e)
{
    char rec[4 + sizeof(e->msg)];
    int32_t code = (int32_t)e->code;
    size_t n = strnlen(e->msg, sizeof(e->msg));
    memcpy(rec, &code, 4);
    memcpy(rec + 4, e->msg, n);
    sb_send(fd, AUDIO_REC_ERR, rec, (uint32_t)(4 + n));
}

_Noreturn void audio_sandbox_child_main(int in_fd, int out_fd, const struct audio_decode_opts *o,
                                        int probe_only)
{
    struct sd_error e = {0};
    sb_child_reset_signals();
    /* Own process group: a Ctrl-C meant for the server is the server's to handle. */
    setpgid(0, 0);
    sb_close_other_fds(in_fd, out_fd);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    prctl(PR_SET_DUMPABLE, 0);
    if (sb_limits(o, (in_fd > out_fd ? in_fd : out_fd) + 1) != 0) {
        sd_fail(&e, SD_EINTERNAL, "cannot limit the decoder process");
        goto fail;
    }
    av_log_set_callback(sb_av_log_silent);
    av_log_set_level(AV_LOG_QUIET);
    if (sb_seccomp(in_fd, out_fd) != 0) {
        sd_fail(&e, SD_EINTERNAL, "cannot install the decoder's seccomp filter");
        goto fail;
    }
    struct sb_child *c = calloc(1, sizeof(*c)); /* 16 KiB, off a maybe small thread stack */
    if (!c) {
        sd_fail(&e, SD_ETOOBIG, "decoder ran out of memory");
        goto fail;
    }
    c->out_fd = out_fd;
    struct audio_sink sink = {sb_child_info, sb_child_pcm, c};
    if (audio_ff_decode_fd(in_fd, o, probe_only, &sink, &e) != SD_OK || sb_flush(c, &e) != SD_OK)
        goto fail;
    sb_send(out_fd, AUDIO_REC_END, NULL, 0);
    _exit(0);
fail:
    sb_child_fail(out_fd, &e);
    _exit(1);
}

/* ---- parent --------------------------------------------------------------------------- */

struct sb_reader {
    int fd;
    long wait_budget_ms;   /* what is left of the wall-clock budget for waiting on the child */
    const struct audio_decode_opts *o; /* keep_going */
    int64_t last_data_ms;  /* monotonic: when the child last sent a byte (or started) */
};

/* How long one poll waits when the caller wants to be asked whether to go on. */
#define SB_ASK_EVERY_MS 100

/* Reads exactly n bytes: 1 ok, 0 EOF before any byte, -1 error/short, -2 timeout, -3 stopped. */
static int sb_read_exact(struct sb_reader *r, void *buf, size_t n)
{
    char *p = buf;
    size_t got = 0;
    while (got < n) {
        struct pollfd pfd = {r->fd, POLLIN, 0};
        long t0 = (long)sd_mono_ms();
        if (r->o->keep_going &&
            !r->o->keep_going(r->o->keep_going_user, (double)(t0 - r->last_data_ms) / 1000.0))
            return -3;
        long wait = r->wait_budget_ms > 0 ? r->wait_budget_ms : 0;
        if (r->o->keep_going && wait > SB_ASK_EVERY_MS)
            wait = SB_ASK_EVERY_MS;
        int prc = poll(&pfd, 1, (int)wait);
        r->wait_budget_ms -= (long)sd_mono_ms() - t0;
        if (prc < 0 && errno == EINTR)
            continue;
        if (prc < 0)
            return -1;
        if (prc == 0 && r->wait_budget_ms > 0)
            continue; /* a slice ended: ask again */
        if (prc == 0)
            return -2;
        ssize_t k = read(r->fd, p + got, n - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -1;
        if (k == 0)
            return got == 0 ? 0 : -1;
        got += (size_t)k;
        r->last_data_ms = sd_mono_ms();
    }
    return 1;
}

/* Waits (briefly) for the child to finish; kills it if it lingers. Returns the wait status. */
static int sb_reap(pid_t pid, int kill_first)
{
    int status = 0;
    if (kill_first)
        kill(pid, SIGKILL);
    for (int i = 0; i < 200; i++) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            return status;
        if (w < 0 && errno != EINTR)
            return 0; /* already reaped elsewhere (SIGCHLD ignored): nothing to learn */
        if (i == 100)
            kill(pid, SIGKILL);
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return status;
}

static enum sd_err sb_status_error(int status, const struct audio_decode_opts *o,
                                   struct sd_error *err)
{
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        if (sig == SIGXCPU)
            return sd_fail(err, SD_ETIMEOUT, "decoding used more than %d s of CPU", o->max_cpu_s);
        if (sig == SIGKILL)
            return sd_fail(err, SD_ETOOBIG, "the decoder was killed (out of memory?)");
        if (sig == SIGSYS)
            return sd_fail(err, SD_EFORMAT, "the decoder was stopped for a forbidden system call "
                           "(malformed input)");
        if (sig == SIGSEGV || sig == SIGBUS || sig == SIGABRT || sig == SIGILL || sig == SIGFPE)
            return sd_fail(err, SD_EFORMAT, "the decoder crashed on this file (%s)",
                           strsignal(sig));
        return sd_fail(err, SD_EINTERNAL, "the decoder was stopped from outside (%s)",
                       strsignal(sig));
    }
    return sd_fail(err, SD_EFORMAT, "the decoder failed on this file (exit %d)",
                   WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

static enum sd_err sb_garbled(struct sd_error *err)
{
    return sd_fail(err, SD_EFORMAT, "the decoder misbehaved on this file");
}

/* Relays records to sink until END/ERR; returns the request's outcome (child still alive). */
/* Reads n bytes of a record: a timeout is the request's error, EOF means the child died. */
static enum sd_err sb_read(struct sb_reader *r, void *buf, size_t n,
                           const struct audio_decode_opts *o, int *state, struct sd_error *err)
{
    int rc = sb_read_exact(r, buf, n);
    if (rc == 1)
        return SD_OK;
    if (rc == -2)
        return o->timeout_ms_per_audio_s > 0
                   ? sd_fail(err, SD_ETIMEOUT,
                             "the decoder took too long (over %d ms plus %d ms per second of "
                             "audio it delivered)",
                             o->timeout_ms, o->timeout_ms_per_audio_s)
                   : sd_fail(err, SD_ETIMEOUT, "decoding took longer than %d ms", o->timeout_ms);
    if (rc == -3)
        return sd_fail(err, SD_ECANCELLED, "decoding stopped: the caller gave up");
    *state = AUDIO_RELAY_DIED; /* the wait status says why */
    return SD_EINTERNAL;
}

static enum sd_err sb_relay(struct sb_reader *r, const struct audio_decode_opts *o,
                            const struct audio_sink *sink, float *pcm, int *state,
                            struct sd_error *err)
{
    uint64_t max_samples = (uint64_t)(o->max_duration_s * AUDIO_SAMPLE_RATE), n_samples = 0;
    int have_info = 0;
    char rec[4 + sizeof(err->msg)];
    for (;;) {
        struct audio_rec_hdr h;
        struct audio_info info;
        r->last_data_ms = sd_mono_ms(); /* the sink's time is ours, not the child's silence */
        enum sd_err e = sb_read(r, &h, sizeof(h), o, state, err);
        if (e != SD_OK)
            return e;
        if (h.type == AUDIO_REC_INFO) {
            if (h.len != sizeof(info) || have_info)
                return sb_garbled(err);
            if ((e = sb_read(r, &info, sizeof(info), o, state, err)) != SD_OK)
                return e;
            info.format[sizeof(info.format) - 1] = 0;
            info.codec[sizeof(info.codec) - 1] = 0;
            have_info = 1;
            if ((e = sink->on_info(sink->user, &info, err)) != SD_OK)
                return e;
        } else if (h.type == AUDIO_REC_PCM) {
            /* the child never sends an empty record (it flushes only samples) */
            if (!have_info || h.len == 0 || h.len % 4 || h.len > AUDIO_REC_MAX_LEN)
                return sb_garbled(err);
            if ((e = sb_read(r, pcm, h.len, o, state, err)) != SD_OK)
                return e;
            size_t n = h.len / 4;
            if (n_samples + n > max_samples)
                return sd_fail(err, SD_ETOOBIG, "audio is longer than the limit of %.0f s",
                               o->max_duration_s);
            n_samples += n;
            /* the wall limit follows the audio: each second delivered earns waiting time */
            r->wait_budget_ms +=
                (long)((double)n * o->timeout_ms_per_audio_s / AUDIO_SAMPLE_RATE);
            for (size_t i = 0; i < n; i++)
                if (!isfinite(pcm[i]))
                    pcm[i] = 0;
            if ((e = sink->on_pcm(sink->user, pcm, n, err)) != SD_OK)
                return e;
        } else if (h.type == AUDIO_REC_END) {
            if (h.len != 0 || !have_info)
                return sb_garbled(err);
            *state = AUDIO_RELAY_DONE;
            return SD_OK;
        } else if (h.type == AUDIO_REC_ERR) {
            int32_t code;
            if (h.len < 4 || h.len > sizeof(rec))
                return sb_garbled(err);
            if ((e = sb_read(r, rec, h.len, o, state, err)) != SD_OK)
                return e;
            memcpy(&code, rec, 4);
            if (code <= SD_OK || code > SD_EINTERNAL)
                code = SD_EFORMAT;
            *state = AUDIO_RELAY_DONE;
            /* The text reaches API clients: printable ASCII only, never empty. */
            size_t len = h.len - 4;
            for (size_t i = 0; i < len; i++)
                if (rec[4 + i] < 0x20 || rec[4 + i] > 0x7e)
                    rec[4 + i] = '?';
            if (len == 0)
                return sd_fail(err, (enum sd_err)code, "the decoder failed on this file");
            return sd_fail(err, (enum sd_err)code, "%.*s", (int)len, rec + 4);
        } else {
            return sb_garbled(err);
        }
    }
}

enum sd_err audio_relay_records(int fd, const struct audio_decode_opts *opts,
                                const struct audio_sink *sink, int *state, struct sd_error *err)
{
    struct sb_reader r = {fd, opts->timeout_ms, opts, sd_mono_ms()};
    float *pcm = malloc(AUDIO_REC_MAX_LEN);
    enum sd_err rc = pcm ? sb_relay(&r, opts, sink, pcm, state, err)
                         : sd_fail(err, SD_ENOMEM, "out of memory");
    free(pcm);
    return rc;
}

enum sd_err audio_sandbox_decode(int fd, const struct audio_decode_opts *opts, int probe_only,
                                 const struct audio_sink *sink, struct sd_error *err)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return sd_fail(err, SD_EINTERNAL, "cannot create a pipe for the decoder: %s",
                       strerror(errno));
    pid_t pid = -1;
    if (opts->helper_exe) {
        enum sd_err e = audio_helper_spawn(opts->helper_exe, fd, p[1], opts, probe_only, &pid, err);
        if (e != SD_OK) {
            close(p[0]);
            close(p[1]);
            return e;
        }
    } else if ((pid = fork()) < 0) {
        int e = errno;
        close(p[0]);
        close(p[1]);
        return sd_fail(err, e == EAGAIN || e == ENOMEM ? SD_EBUSY : SD_EINTERNAL,
                       "cannot start the decoder process: %s", strerror(e));
    } else if (pid == 0) {
        close(p[0]);
        audio_sandbox_child_main(fd, p[1], opts, probe_only);
    }
    close(p[1]);
    int state = AUDIO_RELAY_RUNNING;
    enum sd_err rc = audio_relay_records(p[0], opts, sink, &state, err);
    close(p[0]);
    /* Killed at once unless it finished by itself; a child that died is only reaped. */
    int status = sb_reap(pid, state == AUDIO_RELAY_RUNNING);
    if (state == AUDIO_RELAY_DIED)
        return sb_status_error(status, opts, err);
    return rc;
}
