/*
 * migrations.h - the schema as numbered migrations (see migrations.c): one
 * list for SQLite, one for PostgreSQL, entry i of both making the same change.
 * Internal to store/.
 */
#ifndef SD_STORE_MIGRATIONS_H
#define SD_STORE_MIGRATIONS_H

/* Number of migrations; the schema version of a fully migrated database. */
int store_migration_count(void);
/* SQL of migration i (0-based: it takes user_version i to i + 1), or NULL. */
const char *store_migration_sql(int i);

/* The same for PostgreSQL (postgres.c): schema version in table scribed_schema. */
int store_pg_migration_count(void);
const char *store_pg_migration_sql(int i);

#endif
