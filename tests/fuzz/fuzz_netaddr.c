/*
 * fuzz_netaddr.c - libFuzzer target over the webhook address check
 * (sd_addr_is_public), compared with an independent table of the ranges
 * that must never be reached (IANA special-purpose registries), including
 * every IPv6 form that embeds an IPv4 address: mapped ::ffff:0:0/96,
 * compatible ::/96, NAT64 64:ff9b::/96, 6to4 2002::/16 (the v4 address in
 * bytes 2-5) and Teredo 2001::/32 (refused whole: its v4 part is obfuscated).
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

static bool v4_blocked(const uint8_t *a)
{
    return a[0] == 0 || a[0] == 10 || a[0] == 127 ||              /* this net, private, loopback */
           (a[0] == 100 && (a[1] & 0xC0) == 64) ||                 /* 100.64/10 */
           (a[0] == 169 && a[1] == 254) ||                         /* link-local, metadata */
           (a[0] == 172 && (a[1] & 0xF0) == 16) ||                 /* 172.16/12 */
           (a[0] == 192 && a[1] == 168) ||                         /* 192.168/16 */
           (a[0] == 192 && a[1] == 0 && a[2] == 0) ||              /* 192.0.0/24 */
           (a[0] == 198 && (a[1] & 0xFE) == 18) ||                 /* 198.18/15 */
           a[0] >= 224;                                            /* multicast, reserved */
}

static bool prefix(const uint8_t *a, const uint8_t *p, int bits)
{
    for (int i = 0; i < bits / 8; i++)
        if (a[i] != p[i])
            return false;
    return true;
}

static bool v6_blocked(const uint8_t *a)
{
    static const uint8_t zero[16], mapped[12] = {[10] = 0xFF, [11] = 0xFF},
                         nat64[12] = {0, 0x64, 0xFF, 0x9B}, six2four[2] = {0x20, 0x02},
                         teredo[4] = {0x20, 0x01, 0, 0}, doc[4] = {0x20, 0x01, 0x0D, 0xB8};
    if (prefix(a, mapped, 96) || prefix(a, zero, 96) || prefix(a, nat64, 96))
        return v4_blocked(a + 12) || prefix(a, zero, 96); /* compatible ::/96 is deprecated */
    if (prefix(a, six2four, 16))
        return v4_blocked(a + 2);
    if (prefix(a, teredo, 32) || prefix(a, doc, 32))
        return true;
    return (a[0] & 0xFE) == 0xFC || (a[0] == 0xFE && (a[1] & 0xC0) == 0x80) || a[0] == 0xFF;
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
