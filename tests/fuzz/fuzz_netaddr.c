/*
 * fuzz_netaddr.c - libFuzzer target over the webhook address check
 * (sd_addr_is_public), compared with an independent table of the ranges
 * that must never be reached (IANA special-purpose registries), written as
 * prefix lists, including every IPv6 form that leads to an IPv4 address:
 * mapped ::ffff:0:0/96, translated ::ffff:0:0:0/96, NAT64 64:ff9b::/96
 * and 6to4 2002::/16 (the v4 address in bytes 2-5) are judged by that
 * address; compatible ::/96 and Teredo 2001::/32 are refused whole.
 *
 * Input: first byte even: 4 bytes of IPv4; odd: 16 bytes of IPv6.
 * Contract: the check agrees with the table. A disagreement either way is a
 * finding: a private address let through is a server-side request forgery.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_common.h"
#include "util/netaddr.h"

struct range {
    uint8_t net[16];
    int bits;
};

static bool in_range(const uint8_t *a, const struct range *r)
{
    int full = r->bits / 8, rest = r->bits % 8;
    if (memcmp(a, r->net, (size_t)full) != 0)
        return false;
    return rest == 0 || ((a[full] ^ r->net[full]) & (0xFF << (8 - rest))) == 0;
}

static bool in_any(const uint8_t *a, const struct range *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (in_range(a, &v[i]))
            return true;
    return false;
}

/* IANA IPv4 special-purpose ranges a webhook must never reach. */
static const struct range v4_never[] = {
    {{0}, 8},            {{10}, 8},           {{100, 64}, 10},     {{127}, 8},
    {{169, 254}, 16},    {{172, 16}, 12},     {{192, 0, 0}, 24},   {{192, 0, 2}, 24},
    {{192, 168}, 16},    {{198, 18}, 15},     {{198, 51, 100}, 24}, {{203, 0, 113}, 24},
    {{224}, 3},
};

static bool v4_blocked(const uint8_t *a)
{
    return in_any(a, v4_never, sizeof(v4_never) / sizeof(v4_never[0]));
}

/* IPv6 forms whose last 32 bits are the IPv4 address reached. */
static const struct range v6_embedding[] = {
    {{[10] = 0xFF, [11] = 0xFF}, 96},                     /* ::ffff:0:0/96 mapped */
    {{[8] = 0xFF, [9] = 0xFF}, 96},                       /* ::ffff:0:0:0/96 translated */
    {{0, 0x64, 0xFF, 0x9B}, 96},                          /* 64:ff9b::/96 NAT64 */
};
static const struct range v6_sixtofour = {{0x20, 0x02}, 16}; /* v4 in bytes 2-5 */
static const struct range v6_never[] = {
    {{0}, 96},                                            /* ::/96, IPv4-compatible included */
    {{0, 0x64, 0xFF, 0x9B, 0, 1}, 48},                    /* local-use NAT64 */
    {{0x01}, 64},                                         /* 100::/64 discard */
    {{0x20, 0x01, 0, 0}, 32},                             /* Teredo */
    {{0x20, 0x01, 0, 0x02, 0, 0}, 48},                    /* benchmarking */
    {{0x20, 0x01, 0x0D, 0xB8}, 32},                       /* documentation */
    {{0xFC}, 7},                                          /* unique local */
    {{0xFE, 0x80}, 10},                                   /* link-local */
    {{0xFE, 0xC0}, 10},                                   /* site-local */
    {{0xFF}, 8},                                          /* multicast */
};

static bool v6_blocked(const uint8_t *a)
{
    if (in_any(a, v6_embedding, sizeof(v6_embedding) / sizeof(v6_embedding[0])))
        return v4_blocked(a + 12);
    if (in_range(a, &v6_sixtofour))
        return v4_blocked(a + 2);
    return in_any(a, v6_never, sizeof(v6_never) / sizeof(v6_never[0]));
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (size < 1)
        return 0;
    char text[INET6_ADDRSTRLEN] = "";
    if ((data[0] & 1) == 0 && size >= 5) {
        struct sockaddr_in in = {.sin_family = AF_INET};
        memcpy(&in.sin_addr, data + 1, 4);
        inet_ntop(AF_INET, &in.sin_addr, text, sizeof(text));
        bool pub = sd_addr_is_public((const struct sockaddr *)&in);
        if (pub == v4_blocked(data + 1))
            fprintf(stderr, "%s: checked %s\n", text, pub ? "public" : "private");
        FUZZ_REQUIRE(pub != v4_blocked(data + 1), "IPv4 check agrees with the table");
    } else if ((data[0] & 1) == 1 && size >= 17) {
        struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
        memcpy(&in6.sin6_addr, data + 1, 16);
        inet_ntop(AF_INET6, &in6.sin6_addr, text, sizeof(text));
        bool pub = sd_addr_is_public((const struct sockaddr *)&in6);
        if (pub == v6_blocked(data + 1))
            fprintf(stderr, "%s: checked %s\n", text, pub ? "public" : "private");
        FUZZ_REQUIRE(pub != v6_blocked(data + 1), "IPv6 check agrees with the table");
    }
    return 0;
}
