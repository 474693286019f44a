/*
 * sql.h - the arguments of one SQL statement as a typed array, the one shape
 * every store implementation takes them in (sqlite.c binds them with
 * sqlite3_bind_*, postgres.c will turn them into PQexecParams' parameter
 * arrays), so a query reads alike in both:
 *
 *   "UPDATE jobs SET started_ms = ? WHERE id = ?",
 *   (struct sql_arg[]){SQL_I64(now_ms), SQL_TEXT(id), SQL_END}
 *
 * Argument i binds parameter i + 1 ("?" or "?N" in SQLite, "$N" in
 * PostgreSQL); the array ends with SQL_END. A NULL text or blob pointer binds
 * SQL NULL (pass "" for an empty value).
 *
 * Ownership: everything is borrowed for the one call that runs the statement;
 * the store neither copies nor keeps the array or what it points to, so
 * compound literals on the caller's stack are the intended use.
 * Threads: plain values with no shared state; each call builds its own.
 * Internal to store/.
 */
#ifndef SD_STORE_SQL_H
#define SD_STORE_SQL_H

#include <stddef.h>
#include <stdint.h>

enum sql_arg_type { SQL_T_END, SQL_T_NULL, SQL_T_TEXT, SQL_T_I64, SQL_T_F64, SQL_T_BLOB };

struct sql_arg {
    enum sql_arg_type type;
    const char *text;         /* SQL_T_TEXT: NUL-terminated */
    const void *bytes;        /* SQL_T_BLOB: len bytes */
    size_t len;
    int64_t i64;              /* SQL_T_I64 */
    double f64;               /* SQL_T_F64 */
};

#define SQL_TEXT(s) {.type = SQL_T_TEXT, .text = (s)}
#define SQL_I64(v) {.type = SQL_T_I64, .i64 = (int64_t)(v)}
#define SQL_F64(v) {.type = SQL_T_F64, .f64 = (double)(v)}
#define SQL_BLOB(p, n) {.type = SQL_T_BLOB, .bytes = (p), .len = (size_t)(n)}
#define SQL_NULL {.type = SQL_T_NULL}
#define SQL_END {.type = SQL_T_END}

#endif
