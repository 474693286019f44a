/*
 * test_device.c - choosing a device by name (sd_backend_find), the copy ops,
 * and the checking backend: same results as the CPU, and an engine-side
 * read or write of its memory outside the ops kills the process with a
 * message (checked in a child process).
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend/buffer.h"
#include "backend/check/check.h"
#include "backend/cpu/cpu.h"
#include "backend/ops.h"
#include "check.h"

TEST(device_find_by_name)
{
    const struct sd_backend_ops *d = NULL;
    struct sd_error err = {0};
    unsetenv("SCRIBED_BACKEND_CHECK");
    CHECK_OK(sd_backend_find("cpu", &d, &err), &err);
    CHECK(d == &sd_cpu_ops);
    CHECK_OK(sd_backend_find(NULL, &d, &err), &err);
    CHECK_STR(d->name, "cpu"); /* no CUDA in this build: auto is the CPU */
    CHECK_OK(sd_backend_find("auto", &d, &err), &err);
    CHECK_STR(d->name, "cpu");
    CHECK_EQ_INT(sd_backend_find("cuda", &d, &err), SD_EUNSUPPORTED);
    CHECK(strstr(err.msg, "without CUDA") != NULL);
    CHECK_EQ_INT(sd_backend_find("tpu", &d, &err), SD_EINVAL);
    CHECK(strstr(err.msg, "unknown device 'tpu'") != NULL);
    setenv("SCRIBED_BACKEND_CHECK", "1", 1);
    CHECK_OK(sd_backend_find("cpu", &d, &err), &err);
    CHECK(d == &sd_check_ops);
    CHECK_STR(d->name, "cpu-check");
    setenv("SCRIBED_BACKEND_CHECK", "0", 1);
    CHECK_OK(sd_backend_find(NULL, &d, &err), &err);
    CHECK(d == &sd_cpu_ops);
    unsetenv("SCRIBED_BACKEND_CHECK");
}

/* Uploads w, copies x in, runs a matmul + GELU + layer norm, copies y out. */
static void run_small_graph(const struct sd_backend_ops *dev, float *y_out)
{
    struct sd_backend *b = NULL;
    struct sd_error err = {0};
    CHECK_OK(sd_backend_open(dev, 2, 0, &b, &err), &err);
    if (!b)
        return;
    enum { M = 3, K = 40, N = 24 };
    float x[M * K], w[N * K], bias[N], g[N], beta[N];
    for (int i = 0; i < M * K; i++)
        x[i] = (float)((i * 37) % 17) / 17.0f - 0.5f;
    for (int i = 0; i < N * K; i++)
        w[i] = (float)((i * 11) % 23) / 23.0f - 0.5f;
    for (int i = 0; i < N; i++)
        bias[i] = 0.01f * (float)i, g[i] = 1.0f + 0.1f * (float)i, beta[i] = -0.02f * (float)i;
    struct sd_mem wm, bm, gm, betam;
    CHECK_OK(dev->upload(w, sizeof(w), &wm, &err), &err);
    CHECK_OK(dev->upload(bias, sizeof(bias), &bm, &err), &err);
    CHECK_OK(dev->upload(g, sizeof(g), &gm, &err), &err);
    CHECK_OK(dev->upload(beta, sizeof(beta), &betam, &err), &err);
    struct sd_mem xm = sd_backend_alloc(b, sizeof(x)), ym = sd_backend_alloc(b, 2 * M * N * 4);
    CHECK(!sd_mem_is_none(xm) && !sd_mem_is_none(ym));
    sd_copy_in(b, xm, x, sizeof(x));
    struct sd_weight wt = {SD_TYPE_F32, wm, N, K, K};
    sd_op_matmul(b, xm, M, K, &wt, bm, ym, N, 0);
    sd_op_gelu(b, ym, (size_t)M * N);
    sd_op_layer_norm(b, ym, M, N, gm, betam, 1e-5f, ym);
    sd_copy(b, sd_mem_f32(ym, (size_t)M * N), ym, sizeof(float) * M * N); /* device to device */
    sd_copy_out(b, y_out, sd_mem_f32(ym, (size_t)M * N), sizeof(float) * M * N);
    sd_backend_free(b, xm);
    sd_backend_free(b, ym);
    dev->release(wm), dev->release(bm), dev->release(gm), dev->release(betam);
    sd_backend_destroy(b);
}

TEST(device_check_backend_computes_as_the_cpu)
{
    float cpu[3 * 24], chk[3 * 24];
    memset(chk, 0xff, sizeof(chk));
    run_small_graph(&sd_cpu_ops, cpu);
    run_small_graph(&sd_check_ops, chk);
    CHECK(memcmp(cpu, chk, sizeof(cpu)) == 0);
}

/*
 * In a child: allocates a checking buffer and touches it as a buggy engine
 * would; its stderr goes to the file `log`.
 */
static int child_touches(int write_it, int after_op, const char *log)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0)
            dup2(fd, STDERR_FILENO);
        struct sd_backend *b = NULL;
        struct sd_error err = {0};
        if (sd_backend_open(&sd_check_ops, 1, 0, &b, &err) != SD_OK)
            _exit(3);
        struct sd_mem m = sd_backend_alloc(b, 4096 * 3);
        float one = 1.0f;
        if (after_op) {
            sd_copy_in(b, m, &one, sizeof(one));
            sd_op_gelu(b, m, 16);
        }
        volatile float *p = (volatile float *)sd_buffer_host(sd_mem_f32(m, 1500));
        if (write_it)
            *p = 2.0f;
        else
            one = *p;
        _exit(0); /* reached only if the access went through: a failure */
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
}

TEST(device_check_backend_faults_on_engine_access)
{
    char log[] = "/tmp/scribed-check-XXXXXX";
    int fd = mkstemp(log);
    CHECK(fd >= 0);
    close(fd);
    for (int w = 0; w < 2; w++)
        for (int op = 0; op < 2; op++) {
            int st = child_touches(w, op, log);
            CHECK_MSG(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT,
                      "write=%d after_op=%d: expected an abort, got status %d", w, op, st);
            size_t n = 0;
            char *text = check_read_file(log, &n);
            CHECK(text && strstr(text, "backend check: the engine touched backend memory") &&
                  strstr(text, "a compute buffer"));
            free(text);
        }
    unlink(log);
}

/* The checking backend refuses host memory handed to an op (it would not be on a device). */
TEST(device_check_backend_refuses_host_memory)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0)
            dup2(devnull, STDERR_FILENO);
        struct sd_backend *b = NULL;
        struct sd_error err = {0};
        if (sd_backend_open(&sd_check_ops, 1, 0, &b, &err) != SD_OK)
            _exit(3);
        float host[8] = {0};
        sd_op_gelu(b, sd_cpu_mem(host), 8);
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
}
