/* err.c - filling struct sd_error; names of error codes. */
#include "util/err.h"

#include <stdarg.h>
#include <stdio.h>

enum sd_err sd_fail(struct sd_error *err, enum sd_err code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

const char *sd_err_name(enum sd_err code)
{
    switch (code) {
    case SD_OK: return "ok";
    case SD_ENOMEM: return "out_of_memory";
    case SD_EINVAL: return "invalid_request";
    case SD_EFORMAT: return "invalid_media";
    case SD_EUNSUPPORTED: return "unsupported_format";
    case SD_ETOOBIG: return "too_large";
    case SD_EIO: return "io_error";
    case SD_ENOTFOUND: return "not_found";
    case SD_EBUSY: return "busy";
    case SD_ETIMEOUT: return "timeout";
    case SD_ECANCELLED: return "cancelled";
    case SD_EAUTH: return "unauthorized";
    case SD_EINTERNAL: return "internal_error";
    case SD_ENOSPACE: return "insufficient_storage";
    }
    return "internal_error";
}
