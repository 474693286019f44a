/*
 * migrations.c - the schema of the SQLite store, as an ordered list of
 * migrations. Entry i brings the database from user_version i to i + 1;
 * sqlite.c applies the missing ones in one transaction each at open.
 * Never edit a released entry: append a new one.
 *
 * PostgreSQL (postgres.c) has its own list below, in its own dialect, kept
 * step for step with this one: entry i of both lists makes the same change,
 * so a new migration is one entry appended to each.
 */
#include "store/migrations.h"

static const char *const migrations[] = {
    /* 1: jobs, upload metadata, rendered results */
    "CREATE TABLE jobs ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  id TEXT NOT NULL UNIQUE,"
    "  status TEXT NOT NULL,"
    "  params TEXT NOT NULL,"
    "  callback_url TEXT,"
    "  progress REAL NOT NULL DEFAULT 0,"
    "  created_ms INTEGER NOT NULL,"
    "  started_ms INTEGER NOT NULL DEFAULT 0,"
    "  finished_ms INTEGER NOT NULL DEFAULT 0,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  error_code TEXT,"
    "  error_message TEXT,"
    "  audio_s REAL NOT NULL DEFAULT 0,"
    "  run_s REAL NOT NULL DEFAULT 0,"
    "  cb_state INTEGER NOT NULL DEFAULT 0,"
    "  cb_attempts INTEGER NOT NULL DEFAULT 0,"
    "  results_expired INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX jobs_by_status ON jobs(status);"
    "CREATE TABLE uploads ("
    "  job_id TEXT PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,"
    "  path TEXT,"
    "  filename TEXT,"
    "  bytes INTEGER NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  deleted_ms INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE results ("
    "  job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,"
    "  format TEXT NOT NULL,"
    "  content_type TEXT NOT NULL,"
    "  body BLOB NOT NULL,"
    "  PRIMARY KEY (job_id, format));",
    /* 2: retention scans finished jobs by age */
    "CREATE INDEX jobs_by_finished ON jobs(finished_ms);",
    /* 3: API keys, stored as SHA-256 hashes (server/auth.c, cli/keys.c) */
    "CREATE TABLE api_keys ("
    "  id TEXT PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  prefix TEXT NOT NULL,"
    "  hash TEXT NOT NULL UNIQUE,"
    "  created_ms INTEGER NOT NULL,"
    "  last_used_ms INTEGER NOT NULL DEFAULT 0,"
    "  revoked_ms INTEGER NOT NULL DEFAULT 0);",
    /* 4: why a webhook was given up (or last failed), shown on the job */
    "ALTER TABLE jobs ADD COLUMN callback_error TEXT;",
    /*
     * 5: tenants. Each job belongs to the caller that created it (an auth
     * principal: a key id, "static", "jwt:SUB"; "" with auth off, which is
     * also what jobs from before this migration get). Admin keys see all.
     */
    "ALTER TABLE jobs ADD COLUMN owner TEXT NOT NULL DEFAULT '';"
    "CREATE INDEX jobs_by_owner ON jobs(owner, seq);"
    "ALTER TABLE api_keys ADD COLUMN admin INTEGER NOT NULL DEFAULT 0;",
};

static const char *const pg_migrations[] = {
    /* 1: jobs, upload metadata, rendered results (and the queue's lease, issue 17) */
    "CREATE TABLE jobs ("
    "  seq BIGSERIAL PRIMARY KEY,"
    "  id TEXT NOT NULL UNIQUE,"
    "  status TEXT NOT NULL,"
    "  params TEXT NOT NULL,"
    "  callback_url TEXT,"
    "  progress DOUBLE PRECISION NOT NULL DEFAULT 0,"
    "  created_ms BIGINT NOT NULL,"
    "  started_ms BIGINT NOT NULL DEFAULT 0,"
    "  finished_ms BIGINT NOT NULL DEFAULT 0,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  error_code TEXT,"
    "  error_message TEXT,"
    "  audio_s DOUBLE PRECISION NOT NULL DEFAULT 0,"
    "  run_s DOUBLE PRECISION NOT NULL DEFAULT 0,"
    "  cb_state INTEGER NOT NULL DEFAULT 0,"
    "  cb_attempts INTEGER NOT NULL DEFAULT 0,"
    "  results_expired INTEGER NOT NULL DEFAULT 0,"
    "  lease_owner TEXT,"
    "  lease_expires_ms BIGINT NOT NULL DEFAULT 0,"
    "  cb_owner TEXT,"
    "  cb_until_ms BIGINT NOT NULL DEFAULT 0);"
    "CREATE INDEX jobs_by_status ON jobs(status, seq);"
    "CREATE TABLE uploads ("
    "  job_id TEXT PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,"
    "  path TEXT,"
    "  filename TEXT,"
    "  bytes BIGINT NOT NULL,"
    "  created_ms BIGINT NOT NULL,"
    "  deleted_ms BIGINT NOT NULL DEFAULT 0);"
    "CREATE TABLE results ("
    "  job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,"
    "  format TEXT NOT NULL,"
    "  content_type TEXT NOT NULL,"
    "  body BYTEA NOT NULL,"
    "  PRIMARY KEY (job_id, format));",
    /* 2: retention scans finished jobs by age */
    "CREATE INDEX jobs_by_finished ON jobs(finished_ms);",
    /* 3: API keys, stored as SHA-256 hashes (server/auth.c, cli/keys.c) */
    "CREATE TABLE api_keys ("
    "  id TEXT PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  prefix TEXT NOT NULL,"
    "  hash TEXT NOT NULL UNIQUE,"
    "  created_ms BIGINT NOT NULL,"
    "  last_used_ms BIGINT NOT NULL DEFAULT 0,"
    "  revoked_ms BIGINT NOT NULL DEFAULT 0);",
    /* 4: why a webhook was given up (or last failed), shown on the job */
    "ALTER TABLE jobs ADD COLUMN callback_error TEXT;",
    /* 5: tenants: each job's owner (an auth principal; "" with auth off), admin keys */
    "ALTER TABLE jobs ADD COLUMN owner TEXT NOT NULL DEFAULT '';"
    "CREATE INDEX jobs_by_owner ON jobs(owner, seq);"
    "ALTER TABLE api_keys ADD COLUMN admin INTEGER NOT NULL DEFAULT 0;",
    /*
     * 6: the uploads themselves, so workers need no filesystem shared with
     * the API nodes: STORE_UPLOAD_CHUNK-byte pieces, numbered from 0
     */
    "CREATE TABLE upload_chunks ("
    "  job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,"
    "  n INTEGER NOT NULL,"
    "  data BYTEA NOT NULL,"
    "  PRIMARY KEY (job_id, n));",
    /* 7: per-key rate limits shared by every API node: a token bucket per key */
    "CREATE TABLE rate_buckets ("
    "  key TEXT PRIMARY KEY,"
    "  tokens DOUBLE PRECISION NOT NULL,"
    "  updated_ms BIGINT NOT NULL);",
};

int store_migration_count(void)
{
    return (int)(sizeof(migrations) / sizeof(migrations[0]));
}

const char *store_migration_sql(int i)
{
    if (i < 0 || i >= store_migration_count())
        return 0;
    return migrations[i];
}

int store_pg_migration_count(void)
{
    return (int)(sizeof(pg_migrations) / sizeof(pg_migrations[0]));
}

const char *store_pg_migration_sql(int i)
{
    if (i < 0 || i >= store_pg_migration_count())
        return 0;
    return pg_migrations[i];
}
