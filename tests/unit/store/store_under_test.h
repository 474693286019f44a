/*
 * store_under_test.h - the store the store tests run against: SQLite in a
 * temporary directory, or PostgreSQL when $SCRIBED_TEST_PG holds a libpq
 * key=value base ("host=... port=... user=... password=...", printed by
 * `tests/pg/pg.sh conninfo DIR`), one database per test directory.
 * The same tests thus cover both implementations (`make test-pg`).
 * Single-threaded test helpers; a failure fails the running test.
 */
#ifndef SD_TESTS_STORE_UNDER_TEST_H
#define SD_TESTS_STORE_UNDER_TEST_H

#include <stdbool.h>

#include "store/store.h"

/* The key=value base of the test cluster, or NULL: the tests run on SQLite. */
const char *sut_pg_base(void);
/* A new empty temporary directory (caller frees; sut_cleanup removes it). */
char *sut_temp_dir(void);
/* The store of dir: DIR/scribed.db, or the database named after dir (created on first use). */
struct store *sut_open(const char *dir);
/* The URL store_open() is given for dir (a path, or a key=value string with dbname). */
void sut_url(const char *dir, char *out, size_t n);
/* Runs sql on dir's PostgreSQL database (as the test role); false on failure. */
bool sut_pg_exec(const char *dir, const char *sql);
/*
 * A small file that exists for the whole test run, to name as a job's
 * upload (a store that keeps uploads reads it at insert).
 */
const char *sut_upload_file(void);
/* Closes s, removes dir and (PostgreSQL) its database, frees dir. */
void sut_cleanup(struct store *s, char *dir);

#endif
