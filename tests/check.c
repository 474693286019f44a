/*
 * check.c - runner for the tests registered by check.h: one forked child
 * per test (a crash or leak fails that test only), a per-test timeout
 * (CHECK_TIMEOUT seconds, default 300), and the closing `N passed, N failed`.
 */
#include "check.h"

#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static struct check_test *check_head;
static struct check_test **check_tail = &check_head;
static int check_failures;

void check_register(struct check_test *t)
{
    /* Keep registration order (constructors run in file order). */
    *check_tail = t;
    check_tail = &t->next;
}

void check_fail_at(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "    %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    check_failures++;
}

const char *check_shared_dir(void)
{
    const char *dir = getenv("SCRIBED_SHARED");
    return dir && *dir ? dir : "../shared";
}

void *check_read_file(const char *path, size_t *n_bytes)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        check_fail_at(__FILE__, __LINE__, "cannot open %s", path);
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (!buf) {
        check_fail_at(__FILE__, __LINE__, "cannot read %s", path);
        return NULL;
    }
    buf[n] = 0;
    if (n_bytes)
        *n_bytes = (size_t)n;
    return buf;
}

static int run_forked(struct check_test *t, int timeout_s, char *why, size_t why_len)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(why, why_len, "fork failed");
        return 0;
    }
    if (pid == 0) {
        alarm((unsigned)timeout_s);
        t->fn();
        exit(check_failures ? 1 : 0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 1;
    if (WIFSIGNALED(status))
        snprintf(why, why_len, "%s", WTERMSIG(status) == SIGALRM ? "timeout" : strsignal(WTERMSIG(status)));
    else
        snprintf(why, why_len, "exit %d", WEXITSTATUS(status));
    return 0;
}

int main(int argc, char **argv)
{
    const char *filters[64];
    int n_filters = 0, no_fork = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--no-fork") == 0)
            no_fork = 1;
        else if (n_filters < 64)
            filters[n_filters++] = argv[i];
    }
    const char *tenv = getenv("CHECK_TIMEOUT");
    int timeout_s = tenv ? atoi(tenv) : 300;
    int n = 0, passed = 0, failed = 0;
    for (struct check_test *t = check_head; t; t = t->next) {
        int wanted = n_filters == 0;
        for (int f = 0; f < n_filters && !wanted; f++)
            wanted = strstr(t->name, filters[f]) != NULL;
        if (!wanted)
            continue;
        n++;
        char why[64] = "";
        int ok;
        if (no_fork) {
            check_failures = 0;
            t->fn();
            ok = check_failures == 0;
        } else {
            ok = run_forked(t, timeout_s, why, sizeof(why));
        }
        if (ok) {
            passed++;
            printf("ok %d - %s\n", n, t->name);
        } else {
            failed++;
            printf("not ok %d - %s (%s) [%s]\n", n, t->name, why, t->file);
        }
        fflush(stdout);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
