/*
 * err.h - the one error type of scribed.
 *
 * Every fallible call returns `enum sd_err` and takes `struct sd_error *err`
 * as its last argument; on failure it fills err->msg with one human sentence
 * (naming the file or parameter at fault). The HTTP layer maps codes to
 * statuses in one table (server/errors.c); nothing else chooses a status.
 * err may be NULL when the caller does not want the message.
 */
#ifndef SD_UTIL_ERR_H
#define SD_UTIL_ERR_H

enum sd_err {
    SD_OK = 0,
    SD_ENOMEM,        /* allocation failed */
    SD_EINVAL,        /* bad parameter from the caller or user (HTTP 400) */
    SD_EFORMAT,       /* input is corrupt or not what it claims (HTTP 422) */
    SD_EUNSUPPORTED,  /* valid input of a kind we do not accept (HTTP 415) */
    SD_ETOOBIG,       /* over a size or duration limit (HTTP 413) */
    SD_EIO,           /* file system or network failure */
    SD_ENOTFOUND,     /* missing file, job, key (HTTP 404) */
    SD_EBUSY,         /* queue full, try later (HTTP 429/503) */
    SD_ETIMEOUT,      /* deadline passed (HTTP 504) */
    SD_ECANCELLED,    /* caller asked to stop */
    SD_EAUTH,         /* missing or bad credentials (HTTP 401) */
    SD_EINTERNAL,     /* a bug or a crashed helper (HTTP 500) */
    SD_ENOSPACE,      /* the server's disk is full (HTTP 507) */
};

struct sd_error {
    enum sd_err code;
    char msg[256];
};

/* Fills *err (if not NULL) and returns code, so callers can `return sd_fail(...)`. */
enum sd_err sd_fail(struct sd_error *err, enum sd_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Short stable name of a code ("invalid_request", "unsupported_format", ...). */
const char *sd_err_name(enum sd_err code);

#endif
