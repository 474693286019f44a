/*
 * Tests of server/auth.c: key generation and hashing, the key cache over a real
 * store, JWTs, the gate's count of connections per address.
 */
#include <nettle/hmac.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "server/auth.h"
#include "server/config.h"
#include "telemetry/log.h"

static struct store *auth_store(char *dir)
{
    char path[512];
    struct store *s = NULL;
    struct sd_error e_ = {0}, *e = &e_;
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/scribed.db", dir);
    CHECK_OK(store_open_sqlite(path, &s, e), e);
    return s;
}

static void auth_store_done(struct store *s, const char *dir)
{
    char cmd[600];
    store_close(s);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

/* A new key stored in s; its id in id. */
static void add_key(struct store *s, char key[AUTH_KEY_MAX], char *id, size_t id_n)
{
    struct sd_error e_ = {0}, *e = &e_;
    struct store_key row = {0};
    CHECK_OK(auth_key_generate(key, &row, 1000, e), e);
    snprintf(row.name, sizeof(row.name), "test");
    CHECK_OK(store_key_insert(s, &row, e), e);
    snprintf(id, id_n, "%s", row.id);
}

TEST(auth_key_format_and_hash)
{
    struct sd_error e_ = {0}, *e = &e_;
    char k1[AUTH_KEY_MAX], k2[AUTH_KEY_MAX], hex[65];
    struct store_key r1 = {0}, r2 = {0};
    CHECK_OK(auth_key_generate(k1, &r1, 5, e), e);
    CHECK_OK(auth_key_generate(k2, &r2, 5, e), e);
    CHECK(strncmp(k1, "sk-scribed-", 11) == 0);
    CHECK_EQ_INT(strlen(k1), 11 + 43);
    CHECK(strcmp(k1, k2) != 0);
    CHECK(strcmp(r1.id, r2.id) != 0);
    CHECK(strncmp(r1.id, "key_", 4) == 0);
    CHECK(strncmp(k1, r1.prefix, strlen(r1.prefix)) == 0);
    CHECK_EQ_INT(strlen(r1.prefix), 15);
    auth_key_hash_hex(k1, hex);
    CHECK_STR(hex, r1.hash_hex);
    CHECK(strstr(r1.hash_hex, k1 + 11) == NULL);
    CHECK_EQ_INT(r1.created_ms, 5);
    for (const char *p = k1 + 11; *p; p++)
        CHECK(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", *p));
    /* SHA-256("abc") */
    auth_key_hash_hex("abc", hex);
    CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(auth_off_without_keys_on_with_static)
{
    struct sd_error e_ = {0}, *e = &e_;
    struct auth *a = NULL;
    char who[AUTH_PRINCIPAL_MAX];
    struct auth_opts none = {0};
    CHECK_OK(auth_create(&none, NULL, &a, e), e);
    CHECK(!auth_required(a, 0));
    auth_destroy(a);
    struct auth_opts st = {.static_key = "s3cret-static"};
    CHECK_OK(auth_create(&st, NULL, &a, e), e);
    CHECK(auth_required(a, 0));
    CHECK_EQ_INT(auth_verify(a, "s3cret-static", 0, 0, who, sizeof(who), NULL), AUTH_OK);
    CHECK_STR(who, "static");
    CHECK_EQ_INT(auth_verify(a, "s3cret-stati", 0, 0, who, sizeof(who), NULL), AUTH_INVALID);
    CHECK_STR(who, "");
    CHECK_EQ_INT(auth_verify(a, "", 0, 0, who, sizeof(who), NULL), AUTH_MISSING);
    CHECK_EQ_INT(auth_verify(a, NULL, 0, 0, who, sizeof(who), NULL), AUTH_MISSING);
    auth_destroy(a);
}

TEST(auth_stored_keys_create_revoke_refresh)
{
    char dir[] = "/tmp/sd_auth_XXXXXX";
    struct store *s = auth_store(dir);
    struct sd_error e_ = {0}, *e = &e_;
    struct auth *a = NULL;
    char who[AUTH_PRINCIPAL_MAX], k1[AUTH_KEY_MAX], k2[AUTH_KEY_MAX], id1[64], id2[64];
    struct auth_opts o = {.refresh_ms = 1000};
    CHECK_OK(auth_create(&o, s, &a, e), e);
    CHECK(!auth_required(a, 0));
    add_key(s, k1, id1, sizeof(id1));
    /* the cache is fresh for 1 s: the new key is not seen yet, then it is */
    CHECK(!auth_required(a, 500));
    CHECK(auth_required(a, 1500));
    CHECK_EQ_INT(auth_verify(a, k1, 1500, 42000, who, sizeof(who), NULL), AUTH_OK);
    CHECK_STR(who, id1);
    CHECK_EQ_INT(auth_verify(a, "sk-scribed-nope", 1500, 0, who, sizeof(who), NULL), AUTH_INVALID);
    add_key(s, k2, id2, sizeof(id2));
    CHECK_OK(store_key_revoke(s, id1, 2000, e), e);
    CHECK_EQ_INT(auth_verify(a, k1, 1600, 0, who, sizeof(who), NULL), AUTH_OK); /* cached */
    CHECK_EQ_INT(auth_verify(a, k1, 2600, 0, who, sizeof(who), NULL), AUTH_REVOKED);
    CHECK_STR(who, id1);
    CHECK_EQ_INT(auth_verify(a, k2, 2600, 0, who, sizeof(who), NULL), AUTH_OK);
    CHECK_STR(who, id2);
    /* the last use of k1 (42000) went to the store at the refresh */
    struct store_key *ks = NULL;
    int n = 0;
    CHECK_OK(store_key_list(s, &ks, &n, e), e);
    CHECK_EQ_INT(n, 2);
    int i1 = strcmp(ks[0].id, id1) == 0 ? 0 : 1; /* same created_ms: the order is by id */
    CHECK_STR(ks[i1].id, id1);
    CHECK_EQ_INT(ks[i1].last_used_ms, 42000);
    CHECK_EQ_INT(ks[1 - i1].last_used_ms, 0);
    free(ks);
    auth_destroy(a);
    /* revoking every key keeps auth on */
    CHECK_OK(store_key_revoke(s, id2, 3000, e), e);
    CHECK_OK(auth_create(&o, s, &a, e), e);
    CHECK(auth_required(a, 0));
    CHECK_EQ_INT(auth_verify(a, k2, 0, 0, who, sizeof(who), NULL), AUTH_REVOKED);
    auth_destroy(a);
    auth_store_done(s, dir);
}

/* ---- JWTs made here with nettle, checked by auth_jwt_check ---- */

static void b64u(const char *in, size_t n, char *out)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t j = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)(unsigned char)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)(unsigned char)in[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)in[i + 2];
        out[j++] = t[(v >> 18) & 63];
        out[j++] = t[(v >> 12) & 63];
        if (i + 1 < n)
            out[j++] = t[(v >> 6) & 63];
        if (i + 2 < n)
            out[j++] = t[v & 63];
    }
    out[j] = '\0';
}

static void make_jwt(const char *secret, const char *header, const char *payload, char *out)
{
    char h[512], p[512], sig64[64];
    uint8_t mac[32];
    b64u(header, strlen(header), h);
    b64u(payload, strlen(payload), p);
    sprintf(out, "%s.%s", h, p);
    struct hmac_sha256_ctx c;
    hmac_sha256_set_key(&c, strlen(secret), (const uint8_t *)secret);
    hmac_sha256_update(&c, strlen(out), (const uint8_t *)out);
    hmac_sha256_digest(&c, 32, mac);
    b64u((const char *)mac, 32, sig64);
    strcat(out, ".");
    strcat(out, sig64);
}

#define HS256 "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
#define SECRET "jwt-test-secret"

static enum auth_outcome jwt(const char *header, const char *payload, int64_t now, char *sub)
{
    char tok[1200];
    make_jwt(SECRET, header, payload, tok);
    return auth_jwt_check(SECRET, strlen(SECRET), tok, NULL, now, sub, 48, NULL);
}

TEST(auth_jwt_hs256_claims)
{
    char sub[48];
    CHECK_EQ_INT(jwt(HS256, "{\"sub\":\"alice\",\"exp\":2000}", 1000, sub), AUTH_OK);
    CHECK_STR(sub, "alice");
    /* sub is sanitised for logs */
    CHECK_EQ_INT(jwt(HS256, "{\"sub\":\"a\\\"b\\nc\",\"exp\":2000}", 1000, sub), AUTH_OK);
    CHECK_STR(sub, "a_b_c");
    CHECK_EQ_INT(jwt(HS256, "{\"exp\":2000}", 1000, sub), AUTH_OK);
    CHECK_STR(sub, "-");
    CHECK_EQ_INT(jwt(HS256, "{\"sub\":\"a\",\"exp\":900}", 1000, sub), AUTH_EXPIRED);
    CHECK_EQ_INT(jwt(HS256, "{\"sub\":\"a\",\"exp\":990}", 1000, sub), AUTH_OK); /* 30 s skew */
    CHECK_EQ_INT(jwt(HS256, "{\"sub\":\"a\",\"exp\":5000,\"nbf\":2000}", 1000, sub),
                 AUTH_EXPIRED);
    CHECK_EQ_INT(jwt(HS256, "{\"sub\":\"a\",\"exp\":5000,\"nbf\":900}", 1000, sub), AUTH_OK);
    CHECK_EQ_INT(jwt(HS256, "{\"sub\":\"a\"}", 1000, sub), AUTH_BAD_TOKEN); /* exp required */
    CHECK_EQ_INT(jwt(HS256, "{\"sub\":\"a\",\"exp\":\"2000\"}", 1000, sub), AUTH_BAD_TOKEN);
    CHECK_EQ_INT(jwt(HS256, "[1,2]", 1000, sub), AUTH_BAD_TOKEN);
}

static enum auth_outcome jwt_ruled(const char *payload, const struct auth_jwt_rules *r,
                                   const char **why)
{
    char tok[1200], sub[48];
    make_jwt(SECRET, HS256, payload, tok);
    return auth_jwt_check(SECRET, strlen(SECRET), tok, r, 1000000, sub, sizeof(sub), why);
}

/* issue 16: a token with exp 1e300 never expired; aud and iss were not checked */
TEST(auth_jwt_lifetime_cap_audience_issuer)
{
    struct auth_jwt_rules day = {.max_lifetime_s = 86400};
    const char *why = NULL;
    CHECK_EQ_INT(jwt_ruled("{\"exp\":1e300}", &day, &why), AUTH_BAD_TOKEN);
    CHECK(strstr(why, "longer"));
    CHECK_EQ_INT(jwt_ruled("{\"exp\":1e300}", NULL, NULL), AUTH_OK); /* no rules: as before */
    CHECK_EQ_INT(jwt_ruled("{\"exp\":1086400}", &day, NULL), AUTH_OK);
    CHECK_EQ_INT(jwt_ruled("{\"exp\":1086430}", &day, NULL), AUTH_OK); /* skew */
    CHECK_EQ_INT(jwt_ruled("{\"exp\":1086500}", &day, NULL), AUTH_BAD_TOKEN);
    /* exp - iat counts too, though the token has little left to live */
    CHECK_EQ_INT(jwt_ruled("{\"exp\":1000100,\"iat\":900000}", &day, NULL), AUTH_BAD_TOKEN);
    CHECK_EQ_INT(jwt_ruled("{\"exp\":1000100,\"iat\":999000}", &day, NULL), AUTH_OK);
    CHECK_EQ_INT(jwt_ruled("{\"exp\":1000100,\"iat\":\"x\"}", &day, NULL), AUTH_BAD_TOKEN);
    CHECK_EQ_INT(jwt_ruled("{\"exp\":1000100,\"iat\":1000500}", &day, NULL), AUTH_BAD_TOKEN);

    struct auth_jwt_rules aud = {.max_lifetime_s = 86400, .audience = "scribed",
                                 .issuer = "https://idp.example"};
    const char *ok = "{\"exp\":1000100,\"aud\":\"scribed\",\"iss\":\"https://idp.example\"}";
    CHECK_EQ_INT(jwt_ruled(ok, &aud, NULL), AUTH_OK);
    CHECK_EQ_INT(jwt_ruled("{\"exp\":1000100,\"aud\":[\"other\",\"scribed\"],"
                           "\"iss\":\"https://idp.example\"}", &aud, NULL), AUTH_OK);
    CHECK_EQ_INT(jwt_ruled("{\"exp\":1000100,\"aud\":\"other\",\"iss\":\"https://idp.example\"}",
                           &aud, &why), AUTH_BAD_TOKEN);
    CHECK(strstr(why, "aud"));
    CHECK_EQ_INT(jwt_ruled("{\"exp\":1000100,\"iss\":\"https://idp.example\"}", &aud, NULL),
                 AUTH_BAD_TOKEN);
    CHECK_EQ_INT(jwt_ruled("{\"exp\":1000100,\"aud\":\"scribed\",\"iss\":\"https://evil\"}",
                           &aud, &why), AUTH_BAD_TOKEN);
    CHECK(strstr(why, "iss"));
    CHECK_EQ_INT(jwt_ruled("{\"exp\":1000100,\"aud\":\"scribed\"}", &aud, NULL), AUTH_BAD_TOKEN);
    CHECK_EQ_INT(jwt_ruled("{\"exp\":1000100,\"aud\":7,\"iss\":\"https://idp.example\"}",
                           &aud, NULL), AUTH_BAD_TOKEN);
}

TEST(auth_jwt_rejects_alg_and_signature)
{
    char sub[48], tok[1200];
    const char *why = NULL;
    CHECK_EQ_INT(jwt("{\"alg\":\"none\"}", "{\"exp\":2000}", 1000, sub), AUTH_BAD_TOKEN);
    CHECK_EQ_INT(jwt("{\"alg\":\"HS512\"}", "{\"exp\":2000}", 1000, sub), AUTH_BAD_TOKEN);
    CHECK_EQ_INT(jwt("{\"alg\":\"hs256\"}", "{\"exp\":2000}", 1000, sub), AUTH_BAD_TOKEN);
    CHECK_EQ_INT(jwt("{}", "{\"exp\":2000}", 1000, sub), AUTH_BAD_TOKEN);
    /* "none" with an empty signature */
    char h[128], p[128];
    b64u("{\"alg\":\"none\"}", 14, h);
    b64u("{\"exp\":2000}", 12, p);
    sprintf(tok, "%s.%s.", h, p);
    CHECK_EQ_INT(auth_jwt_check(SECRET, strlen(SECRET), tok, NULL, 1000, sub, 48, &why),
                 AUTH_BAD_TOKEN);
    CHECK(strstr(why, "HS256") != NULL);
    /* signed with another secret */
    make_jwt("other", HS256, "{\"exp\":2000}", tok);
    CHECK_EQ_INT(auth_jwt_check(SECRET, strlen(SECRET), tok, NULL, 1000, sub, 48, &why),
                 AUTH_BAD_TOKEN);
    CHECK(strstr(why, "signature") != NULL);
    /* payload changed after signing */
    make_jwt(SECRET, HS256, "{\"sub\":\"a\",\"exp\":2000}", tok);
    char *d1 = strchr(tok, '.');
    d1[2] ^= 1;
    CHECK_EQ_INT(auth_jwt_check(SECRET, strlen(SECRET), tok, NULL, 1000, sub, 48, NULL),
                 AUTH_BAD_TOKEN);
    /* shapes */
    const char *bad[] = {"", "abc", "a.b", "a.b.c.d", "eyJ.eyJ.", "!!!.eyJ.abc", NULL};
    for (int i = 0; bad[i]; i++)
        CHECK_EQ_INT(auth_jwt_check(SECRET, strlen(SECRET), bad[i], NULL, 1000, sub, 48, NULL),
                     AUTH_BAD_TOKEN);
    /* no secret: nothing verifies */
    make_jwt(SECRET, HS256, "{\"exp\":2000}", tok);
    CHECK_EQ_INT(auth_jwt_check("", 0, tok, NULL, 1000, sub, 48, NULL), AUTH_BAD_TOKEN);
}

TEST(auth_verify_routes_jwts_and_keys)
{
    struct sd_error e_ = {0}, *e = &e_;
    struct auth *a = NULL;
    char who[AUTH_PRINCIPAL_MAX], tok[1200];
    struct auth_opts o = {.jwt_secret = SECRET, .static_key = "k"};
    CHECK_OK(auth_create(&o, NULL, &a, e), e);
    make_jwt(SECRET, HS256, "{\"sub\":\"svc-1\",\"exp\":2000}", tok);
    CHECK_EQ_INT(auth_verify(a, tok, 0, 1000 * 1000, who, sizeof(who), NULL), AUTH_OK);
    CHECK_STR(who, "jwt:svc-1");
    CHECK_EQ_INT(auth_verify(a, tok, 0, 3000 * 1000, who, sizeof(who), NULL), AUTH_EXPIRED);
    CHECK_EQ_INT(auth_verify(a, "k", 0, 0, who, sizeof(who), NULL), AUTH_OK);
    auth_destroy(a);
}

/* A gate from `serve` flags (no store: no stored keys), logging nowhere. */
static struct auth_gate *gate_with(int argc, char **argv, struct config *c, struct sd_log **log)
{
    struct sd_error e_ = {0}, *e = &e_;
    struct auth_gate *g = NULL;
    CHECK_OK(config_parse(c, argc, argv, NULL, e), e);
    *log = log_create(stderr, LOG_ERROR);
    CHECK_OK(auth_gate_create(c, NULL, *log, &g, e), e);
    return g;
}

TEST(auth_gate_counts_connections_per_address)
{
    struct config c;
    struct sd_log *log;
    char *argv[] = {"serve", "--max-connections-per-ip", "2", NULL};
    struct auth_gate *g = gate_with(3, argv, &c, &log);
    CHECK(auth_gate_connect(g, "10.0.0.1"));
    CHECK(auth_gate_connect(g, "10.0.0.1"));
    CHECK(!auth_gate_connect(g, "10.0.0.1")); /* not counted: nothing to release */
    CHECK(auth_gate_connect(g, "10.0.0.2"));
    CHECK(auth_gate_connect(g, "::ffff:10.0.0.2")); /* the same address, v4-mapped */
    CHECK(!auth_gate_connect(g, "10.0.0.2"));
    auth_gate_disconnect(g, "10.0.0.1");
    CHECK(auth_gate_connect(g, "10.0.0.1"));
    /* IPv6 counts by /64: one subscriber's block */
    CHECK(auth_gate_connect(g, "2001:db8:1:2::1"));
    CHECK(auth_gate_connect(g, "2001:db8:1:2::ff"));
    CHECK(!auth_gate_connect(g, "2001:db8:1:2:aa::1"));
    CHECK(auth_gate_connect(g, "2001:db8:1:3::1"));
    auth_gate_destroy(g);
    log_destroy(log);
    config_clear(&c);

    char *off[] = {"serve", "--max-connections-per-ip", "0", NULL};
    g = gate_with(3, off, &c, &log);
    for (int i = 0; i < 1000; i++)
        CHECK(auth_gate_connect(g, "10.0.0.1"));
    auth_gate_disconnect(g, "10.0.0.1"); /* harmless when nothing is counted */
    auth_gate_destroy(g);
    log_destroy(log);
    config_clear(&c);
}
