/*
 * fuzz_jwt.c - libFuzzer target over credential checking: JWTs (HS256) and
 * API keys as a client presents them in a header.
 *
 * Random bytes almost never carry a valid signature, which would leave the
 * claims parser unreached; so for half the inputs (first byte odd) the
 * harness treats the rest as "header.payload", base64url-encodes the two
 * parts and signs them with the secret, the way a token issuer would, before
 * checking. The other half go in as presented credentials, through
 * auth_verify with a static key and a JWT secret configured.
 * Contracts: no crash, leak or sanitizer report; every refusal says why; a
 * principal is plain text (it reaches logs and rate-limit bucket names).
 */
#include <nettle/base64.h>
#include <nettle/hmac.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_common.h"
#include "server/auth.h"

#define SECRET "fuzz-secret-0123456789abcdef0123"
#define STATIC_KEY "sk-scribed-FUZZFUZZFUZZFUZZFUZZFUZZFUZZFUZZFUZZFUZ"

static size_t b64url(const uint8_t *in, size_t n, char *out)
{
    struct base64_encode_ctx ctx;
    base64url_encode_init(&ctx);
    size_t k = base64_encode_update(&ctx, out, n, in);
    k += base64_encode_final(&ctx, out + k);
    while (k && out[k - 1] == '=') /* JWTs drop the padding */
        k--;
    out[k] = '\0';
    return k;
}

static void check_principal(const char *p)
{
    for (const char *c = p; *c; c++)
        FUZZ_REQUIRE(*c > ' ' && *c < 127 && *c != '"' && *c != '\\', "principal is plain text");
}

static void check_signed(const uint8_t *data, size_t size)
{
    const uint8_t *dot = memchr(data, '.', size);
    size_t n_head = dot ? (size_t)(dot - data) : 0;
    const uint8_t *payload = dot ? dot + 1 : data;
    size_t n_payload = size - (size_t)(payload - data);
    char *tok = malloc(2 * size + 128);
    FUZZ_REQUIRE(tok != NULL, "malloc");
    size_t k = b64url(dot ? data : (const uint8_t *)"{\"alg\":\"HS256\"}", dot ? n_head : 15, tok);
    tok[k++] = '.';
    k += b64url(payload, n_payload, tok + k);
    uint8_t mac[SHA256_DIGEST_SIZE];
    struct hmac_sha256_ctx h;
    hmac_sha256_set_key(&h, strlen(SECRET), (const uint8_t *)SECRET);
    hmac_sha256_update(&h, k, (const uint8_t *)tok);
    hmac_sha256_digest(&h, sizeof(mac), mac);
    tok[k++] = '.';
    b64url(mac, sizeof(mac), tok + k);

    char sub[AUTH_PRINCIPAL_MAX];
    const char *why = NULL;
    /* half the inputs with the rules a deployment may set: a lifetime cap, aud, iss */
    static const struct auth_jwt_rules none = {0}, strict = {86400, "scribed", "https://idp"};
    enum auth_outcome o = auth_jwt_check(SECRET, strlen(SECRET), tok,
                                         (size & 1) ? &strict : &none, 1767225600, sub,
                                         sizeof(sub), &why);
    if (o == AUTH_OK)
        check_principal(sub);
    else
        FUZZ_REQUIRE(why && why[0], "a refused token says why");
    free(tok);
}

static void check_presented(const uint8_t *data, size_t size)
{
    static struct auth *a;
    if (!a) {
        struct auth_opts o = {.static_key = STATIC_KEY, .jwt_secret = SECRET,
                              .jwt = {86400, "scribed", NULL}, .refresh_ms = 1000};
        struct sd_error err = {0};
        FUZZ_REQUIRE(auth_create(&o, NULL, &a, &err) == SD_OK, "auth_create");
    }
    char *cred = malloc(size + 1);
    FUZZ_REQUIRE(cred != NULL, "malloc");
    memcpy(cred, data, size);
    cred[size] = '\0';
    char principal[AUTH_PRINCIPAL_MAX];
    bool admin = false;
    enum auth_outcome o = auth_verify(a, cred, 1000, 1767225600000, principal, sizeof(principal),
                                      &admin);
    FUZZ_REQUIRE(auth_outcome_name(o) != NULL, "outcome has a name");
    if (o == AUTH_OK)
        check_principal(principal);
    free(cred);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (size == 0 || size > 16384)
        return 0;
    if (data[0] & 1)
        check_signed(data + 1, size - 1);
    else
        check_presented(data + 1, size - 1);
    return 0;
}
