/*
 * keys.c - `scribed keys create|list|revoke`: API keys in the service's
 * database (DIR/scribed.db, or --database-url / SCRIBED_DATABASE_URL). A new key is printed once, alone on the last
 * line of stdout, and only its SHA-256 is stored (server/auth.c). Safe while
 * the service runs: it picks up new and revoked keys within a few seconds.
 * Run it as the user the service runs as, so the database files keep their
 * owner. It never prints or logs a stored key: there is none to print.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "server/auth.h"
#include "store/store.h"
#include "util/clock.h"

struct keys_args {
    const char *verb;
    const char *data_dir;
    const char *database_url;  /* NULL or "": DATA_DIR/scribed.db */
    const char *name;
    const char *id;
    int json;
    int admin;
};

/* What was wrong (one line, when known), then the usage; exit status 2. */
static int keys_usage(const char *why)
{
    if (why && *why)
        fprintf(stderr, "scribed keys: %s\n", why);
    fprintf(stderr,
            "usage: scribed keys create [--name LABEL] [--admin] [--data-dir DIR]\n"
            "       scribed keys list [--json] [--data-dir DIR]\n"
            "       scribed keys revoke KEY_ID [--data-dir DIR]\n"
            "  --database-url URL (or $SCRIBED_DATABASE_URL) names a shared PostgreSQL\n"
            "  store instead of DIR/scribed.db.\n"
            "  DIR defaults to $SCRIBED_DATA_DIR, else ./data. `create` prints the new key\n"
            "  once, alone on its last line; only its hash is stored. The running service\n"
            "  accepts new keys and refuses revoked ones within a few seconds. Each key\n"
            "  sees only the jobs it created; an --admin key sees and cancels every job.\n");
    return 2;
}

/* Flag value from "--flag VALUE" or "--flag=VALUE"; NULL if argv[*i] is not that flag. */
static const char *flag_value(int argc, char **argv, int *i, const char *flag, bool *missing)
{
    size_t n = strlen(flag);
    if (strncmp(argv[*i], flag, n) != 0)
        return NULL;
    if (argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (argv[*i][n] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        *missing = true;
        return NULL;
    }
    return argv[++*i];
}

/* False on a command line that is not one of the usage's, saying why in why[why_n]. */
static bool keys_parse(int argc, char **argv, struct keys_args *a, char *why, size_t why_n)
{
    memset(a, 0, sizeof(*a));
    a->data_dir = getenv("SCRIBED_DATA_DIR");
    a->database_url = getenv("SCRIBED_DATABASE_URL");
    if (argc < 2) {
        snprintf(why, why_n, "a command is needed: create, list or revoke");
        return false;
    }
    a->verb = argv[1];
    if (strcmp(a->verb, "create") != 0 && strcmp(a->verb, "list") != 0 &&
        strcmp(a->verb, "revoke") != 0) {
        snprintf(why, why_n, "unknown keys command '%.64s'", a->verb);
        return false;
    }
    for (int i = 2; i < argc; i++) {
        bool missing = false;
        const char *v;
        if ((v = flag_value(argc, argv, &i, "--data-dir", &missing)) != NULL)
            a->data_dir = v;
        else if ((v = flag_value(argc, argv, &i, "--database-url", &missing)) != NULL)
            a->database_url = v;
        else if ((v = flag_value(argc, argv, &i, "--name", &missing)) != NULL)
            a->name = v;
        else if (strcmp(argv[i], "--json") == 0)
            a->json = 1;
        else if (strcmp(argv[i], "--admin") == 0)
            a->admin = 1;
        else if (!missing && argv[i][0] != '-' && !a->id)
            a->id = argv[i];
        else {
            if (missing)
                snprintf(why, why_n, "%.64s needs a value", argv[i]);
            else
                snprintf(why, why_n, "unexpected argument '%.64s'", argv[i]);
            return false;
        }
    }
    if (!a->data_dir || !*a->data_dir)
        a->data_dir = "./data";
    return true;
}

static enum sd_err keys_open(const struct keys_args *a, bool create, struct store **s,
                             struct sd_error *err)
{
    char db[4096];
    if (a->database_url && *a->database_url)
        return store_open(a->database_url, s, err);
    snprintf(db, sizeof(db), "%s/scribed.db", a->data_dir);
    if (create && mkdir(a->data_dir, 0750) != 0 && errno != EEXIST)
        return sd_fail(err, SD_EIO, "cannot create %s: %s", a->data_dir, strerror(errno));
    if (!create && access(db, F_OK) != 0)
        return sd_fail(err, SD_ENOTFOUND, "no database at %s (wrong --data-dir?)", db);
    return store_open_sqlite(db, s, err);
}

static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= sizeof(((struct store_key *)0)->name))
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

static int keys_create(const struct keys_args *a, struct store *s, struct sd_error *err)
{
    const char *name = a->name ? a->name : "default";
    if (a->id || !valid_name(name)) {
        fprintf(stderr, "scribed keys create: --name must be 1-63 printable characters\n");
        return 2;
    }
    char key[AUTH_KEY_MAX];
    struct store_key row = {0};
    if (auth_key_generate(key, &row, sd_wall_ms(), err) != SD_OK)
        return -1;
    snprintf(row.name, sizeof(row.name), "%s", name);
    row.admin = a->admin != 0;
    if (store_key_insert(s, &row, err) != SD_OK) {
        explicit_bzero(key, sizeof(key));
        return -1;
    }
    printf("created %sAPI key %s (\"%s\"); it is shown this once, store it now:\n%s\n",
           row.admin ? "admin " : "", row.id, row.name, key);
    fflush(stdout);
    explicit_bzero(key, sizeof(key));
    return 0;
}

static void fmt_time(int64_t ms, char *out, size_t n)
{
    if (ms <= 0) {
        snprintf(out, n, "-");
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int keys_list(const struct keys_args *a, struct store *s, struct sd_error *err)
{
    struct store_key *k = NULL;
    int n = 0;
    if (store_key_list(s, &k, &n, err) != SD_OK)
        return -1;
    if (!a->json)
        printf("%-20s %-20s %-16s %-20s %-20s %s\n", "ID", "NAME", "PREFIX", "CREATED",
               "LAST USED", "STATUS");
    for (int i = 0; i < n; i++) {
        char c[32], u[32], r[32];
        fmt_time(k[i].created_ms, c, sizeof(c));
        fmt_time(k[i].last_used_ms, u, sizeof(u));
        fmt_time(k[i].revoked_ms, r, sizeof(r));
        if (a->json) { /* one JSON object per line */
            json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s?, s:b}", "id", k[i].id, "name",
                                  k[i].name, "prefix", k[i].prefix, "created", c, "last_used",
                                  k[i].last_used_ms ? u : NULL, "revoked",
                                  k[i].revoked_ms ? r : NULL, "admin", k[i].admin);
            char *line = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
            printf("%s\n", line ? line : "{}");
            free(line);
            json_decref(o);
        } else
            printf("%-20s %-20s %-16s %-20s %-20s %s%s%s\n", k[i].id, k[i].name, k[i].prefix, c,
                   u, k[i].revoked_ms ? "revoked " : "active", k[i].revoked_ms ? r : "",
                   k[i].admin ? " admin" : "");
    }
    free(k);
    return 0;
}

static int keys_revoke(const struct keys_args *a, struct store *s, struct sd_error *err)
{
    if (!a->id) {
        fprintf(stderr, "scribed keys revoke: which key? (its id, from `scribed keys list`)\n");
        return 2;
    }
    if (strncmp(a->id, AUTH_KEY_PREFIX, strlen(AUTH_KEY_PREFIX)) == 0) {
        /* someone pasted the key itself: find it by hash, never echo it */
        char hex[2 * AUTH_HASH_BYTES + 1];
        struct store_key *k = NULL;
        int n = 0;
        auth_key_hash_hex(a->id, hex);
        if (store_key_list(s, &k, &n, err) != SD_OK)
            return -1;
        const char *id = NULL;
        for (int i = 0; i < n; i++)
            if (strcmp(k[i].hash_hex, hex) == 0)
                id = k[i].id;
        enum sd_err rc = id ? store_key_revoke(s, id, sd_wall_ms(), err)
                            : sd_fail(err, SD_ENOTFOUND, "that key is not in this database");
        if (rc == SD_OK)
            printf("revoked %s\n", id);
        free(k);
        return rc == SD_OK ? 0 : -1;
    }
    if (store_key_revoke(s, a->id, sd_wall_ms(), err) != SD_OK)
        return -1;
    printf("revoked %s\n", a->id);
    return 0;
}

int cmd_keys(int argc, char **argv)
{
    struct keys_args a;
    struct sd_error err = {0};
    struct store *s = NULL;
    char why[160] = "";
    if (!keys_parse(argc, argv, &a, why, sizeof(why)))
        return keys_usage(why);
    bool create = strcmp(a.verb, "create") == 0;
    if (keys_open(&a, create, &s, &err) != SD_OK) {
        fprintf(stderr, "scribed keys %s: %s\n", a.verb, err.msg);
        return 1;
    }
    int rc = create                         ? keys_create(&a, s, &err)
             : strcmp(a.verb, "list") == 0 ? keys_list(&a, s, &err)
                                            : keys_revoke(&a, s, &err);
    store_close(s);
    if (rc < 0) {
        fprintf(stderr, "scribed keys %s: %s\n", a.verb, err.msg);
        return 1;
    }
    return rc;
}
