/*
 * check.h - the project's small unit-test framework.
 *
 *   TEST(mel_hann_window) { CHECK(x > 0); CHECK_NEAR(a, b, 1e-6); CHECK_EQ_INT(n, 3); }
 *
 * Tests register themselves (a constructor per TEST), so adding a test file
 * to tests/unit/<area>/ is all it takes. check_main.c runs each test in a
 * forked child with a timeout and prints `ok N - name`, then one closing
 * line `N passed, N failed`. `BIN --no-fork NAME` runs one test in-process
 * (for gdb); `BIN SUBSTRING...` runs the tests whose name contains any of them.
 */
#ifndef SD_TESTS_CHECK_H
#define SD_TESTS_CHECK_H

#include <stdio.h>
#include <string.h>

struct check_test {
    const char *name;
    const char *file;
    void (*fn)(void);
    struct check_test *next;
};

void check_register(struct check_test *t);
void check_fail_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Path of the shared reference material ($SCRIBED_SHARED or ../shared). */
const char *check_shared_dir(void);
/* Reads a whole file into a malloc'd buffer; NULL (and a failure) if it cannot. */
void *check_read_file(const char *path, size_t *n_bytes);

#define TEST(name)                                                                 \
    static void test_##name(void);                                                 \
    static struct check_test check_t_##name = {#name, __FILE__, test_##name, 0};   \
    __attribute__((constructor)) static void check_reg_##name(void)                \
    {                                                                              \
        check_register(&check_t_##name);                                           \
    }                                                                              \
    static void test_##name(void)

#define CHECK(cond)                                                                \
    do {                                                                           \
        if (!(cond))                                                               \
            check_fail_at(__FILE__, __LINE__, "CHECK(%s)", #cond);                 \
    } while (0)

#define CHECK_MSG(cond, ...)                                                       \
    do {                                                                           \
        if (!(cond))                                                               \
            check_fail_at(__FILE__, __LINE__, __VA_ARGS__);                        \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                         \
    do {                                                                           \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);            \
        if (check_a_ != check_b_)                                                  \
            check_fail_at(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b,    \
                          check_a_, check_b_);                                     \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                      \
    do {                                                                           \
        double check_a_ = (double)(a), check_b_ = (double)(b);                     \
        if (!(check_a_ - check_b_ <= (tol) && check_b_ - check_a_ <= (tol)))        \
            check_fail_at(__FILE__, __LINE__, "%s ~ %s: %.9g vs %.9g (tol %g)", #a, \
                          #b, check_a_, check_b_, (double)(tol));                  \
    } while (0)

#define CHECK_STR(a, b)                                                            \
    do {                                                                           \
        const char *check_a_ = (a), *check_b_ = (b);                               \
        if (!check_a_ || !check_b_ || strcmp(check_a_, check_b_) != 0)             \
            check_fail_at(__FILE__, __LINE__, "%s == %s: \"%s\" != \"%s\"", #a, #b, \
                          check_a_ ? check_a_ : "(null)",                          \
                          check_b_ ? check_b_ : "(null)");                         \
    } while (0)

#define CHECK_OK(rc, errp)                                                         \
    do {                                                                           \
        int check_rc_ = (int)(rc);                                                 \
        if (check_rc_ != 0)                                                        \
            check_fail_at(__FILE__, __LINE__, "%s failed (%d): %s", #rc, check_rc_, \
                          (errp)->msg);                                            \
    } while (0)

#endif
