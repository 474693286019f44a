/*
 * Tests of the API-key rows of store.h (store/keys.c + sqlite.c or
 * postgres.c: store_under_test.h), a fresh database each.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "store/store.h"
#include "store_under_test.h"

static struct store *keys_open(char *dir)
{
    CHECK(mkdtemp(dir) != NULL);
    return sut_open(dir);
}

static void keys_cleanup(struct store *s, const char *dir)
{
    sut_cleanup(s, strdup(dir));
}

static struct store_key key_row(const char *id, const char *hash, int64_t created)
{
    struct store_key k = {0};
    snprintf(k.id, sizeof(k.id), "%s", id);
    snprintf(k.name, sizeof(k.name), "label %s", id);
    snprintf(k.prefix, sizeof(k.prefix), "sk-scribed-Ab");
    snprintf(k.hash_hex, sizeof(k.hash_hex), "%s", hash);
    k.created_ms = created;
    return k;
}

TEST(store_keys_insert_list_revoke_touch)
{
    char dir[] = "/tmp/sd_keys_XXXXXX";
    struct store *s = keys_open(dir);
    struct sd_error e_ = {0}, *e = &e_;
    struct store_key *ks = NULL;
    int n = -1;
    CHECK_OK(store_key_list(s, &ks, &n, e), e);
    CHECK_EQ_INT(n, 0);
    free(ks);
    struct store_key a = key_row("key_a", "aa", 1000), b = key_row("key_b", "bb", 2000);
    b.admin = true;
    CHECK_OK(store_key_insert(s, &b, e), e);
    CHECK_OK(store_key_insert(s, &a, e), e);
    /* same id or same hash again: refused */
    CHECK_EQ_INT(store_key_insert(s, &a, e), SD_EINVAL);
    struct store_key c = key_row("key_c", "aa", 3000);
    CHECK_EQ_INT(store_key_insert(s, &c, e), SD_EINVAL);
    CHECK_OK(store_key_revoke(s, "key_b", 5000, e), e);
    CHECK_OK(store_key_revoke(s, "key_b", 9000, e), e); /* idempotent, first time kept */
    CHECK_EQ_INT(store_key_revoke(s, "key_zz", 5000, e), SD_ENOTFOUND);
    CHECK_OK(store_key_touch(s, "key_a", 7000, e), e);
    CHECK_OK(store_key_touch(s, "key_a", 6000, e), e); /* never moves back */
    CHECK_OK(store_key_list(s, &ks, &n, e), e);
    CHECK_EQ_INT(n, 2);
    CHECK_STR(ks[0].id, "key_a"); /* oldest first */
    CHECK_STR(ks[0].name, "label key_a");
    CHECK_STR(ks[0].hash_hex, "aa");
    CHECK_EQ_INT(ks[0].last_used_ms, 7000);
    CHECK_EQ_INT(ks[0].revoked_ms, 0);
    CHECK_STR(ks[1].id, "key_b");
    CHECK_EQ_INT(ks[1].revoked_ms, 5000);
    CHECK(!ks[0].admin);
    CHECK(ks[1].admin);
    free(ks);
    keys_cleanup(s, dir);
}

TEST(store_keys_survive_reopen)
{
    char dir[] = "/tmp/sd_keys_XXXXXX";
    struct store *s = keys_open(dir);
    struct sd_error e_ = {0}, *e = &e_;
    struct store_key a = key_row("key_a", "aa", 1000);
    CHECK_OK(store_key_insert(s, &a, e), e);
    store_close(s);
    s = sut_open(dir);
    struct store_key *ks = NULL;
    int n = 0;
    CHECK_OK(store_key_list(s, &ks, &n, e), e);
    CHECK_EQ_INT(n, 1);
    free(ks);
    keys_cleanup(s, dir);
}
