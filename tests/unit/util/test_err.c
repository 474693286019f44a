/* Tests of util/err.c. */
#include "check.h"
#include "util/err.h"

TEST(err_fail_fills_message)
{
    struct sd_error e = {0};
    enum sd_err rc = sd_fail(&e, SD_EINVAL, "bad %s %d", "beam", 0);
    CHECK_EQ_INT(rc, SD_EINVAL);
    CHECK_EQ_INT(e.code, SD_EINVAL);
    CHECK_STR(e.msg, "bad beam 0");
    CHECK_EQ_INT(sd_fail(NULL, SD_EIO, "x"), SD_EIO);
    CHECK_STR(sd_err_name(SD_EUNSUPPORTED), "unsupported_format");
}
