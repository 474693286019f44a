/* netaddr.c - public-address test for outgoing requests (netaddr.h). */
#include "util/netaddr.h"

#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

static bool ipv4_is_public(uint32_t a) /* host byte order */
{
    uint8_t b0 = (uint8_t)(a >> 24), b1 = (uint8_t)(a >> 16);
    if (b0 == 0 || b0 == 10 || b0 == 127)
        return false;                         /* this network, private, loopback */
    if (b0 == 100 && (b1 & 0xC0) == 64)
        return false;                         /* 100.64/10 shared (carrier NAT) */
    if (b0 == 169 && b1 == 254)
        return false;                         /* link-local: cloud metadata lives here */
    if (b0 == 172 && (b1 & 0xF0) == 16)
        return false;                         /* 172.16/12 */
    if (b0 == 192 && b1 == 168)
        return false;                         /* 192.168/16 */
    if (b0 == 192 && b1 == 0 && (uint8_t)(a >> 8) == 0)
        return false;                         /* 192.0.0/24 protocol assignments */
    if (b0 == 198 && (b1 & 0xFE) == 18)
        return false;                         /* 198.18/15 benchmarking */
    if ((b0 == 192 && b1 == 0 && (uint8_t)(a >> 8) == 2) ||
        (b0 == 198 && b1 == 51 && (uint8_t)(a >> 8) == 100) ||
        (b0 == 203 && b1 == 0 && (uint8_t)(a >> 8) == 113))
        return false;                         /* documentation (TEST-NET-1, -2, -3) */
    if (b0 >= 224)
        return false;                         /* multicast, reserved, broadcast */
    return true;
}

/* The IPv4 address in 4 bytes at p (network order) -> host order. */
static uint32_t v4_at(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/*
 * IPv6 forms that carry an IPv4 address reach that address (through the
 * kernel, a NAT64 or a 6to4 relay), so they are as public as it is:
 * ::ffff:0:0/96 mapped, ::ffff:0:0:0/96 translated (SIIT), 64:ff9b::/96
 * NAT64, 2002::/16 6to4. True when b is one; *v4 receives the address.
 */
static bool ipv6_embeds_v4(const uint8_t *b, uint32_t *v4)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
    static const uint8_t translated[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0, 0};
    static const uint8_t nat64[12] = {0, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0};
    if (memcmp(b, mapped, 12) == 0 || memcmp(b, translated, 12) == 0 ||
        memcmp(b, nat64, 12) == 0) {
        *v4 = v4_at(b + 12);
        return true;
    }
    if (b[0] == 0x20 && b[1] == 0x02) {
        *v4 = v4_at(b + 2);
        return true;
    }
    return false;
}

bool sd_addr_is_public(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return ipv4_is_public(ntohl(in->sin_addr.s_addr));
    }
    if (sa->sa_family != AF_INET6)
        return false;
    const uint8_t *b = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
    uint32_t v4 = 0;
    if (ipv6_embeds_v4(b, &v4))
        return ipv4_is_public(v4);
    static const uint8_t zero[12] = {0};
    if (memcmp(b, zero, 12) == 0)
        return false;                         /* ::/96: ::, ::1, IPv4-compatible ::a.b.c.d */
    if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xFF && b[3] == 0x9B && b[4] == 0 && b[5] == 1)
        return false;                         /* 64:ff9b:1::/48 local-use NAT64 */
    if (b[0] == 0x01 && b[1] == 0 && b[2] == 0 && b[3] == 0 && b[4] == 0 && b[5] == 0 &&
        b[6] == 0 && b[7] == 0)
        return false;                         /* 100::/64 discard-only */
    if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0 && b[3] == 0)
        return false;                         /* 2001::/32 Teredo: tunnels to hidden v4 */
    if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0 && b[3] == 0x02 && b[4] == 0 && b[5] == 0)
        return false;                         /* 2001:2::/48 benchmarking */
    if ((b[0] & 0xFE) == 0xFC)
        return false;                         /* fc00::/7 unique local */
    if (b[0] == 0xFE && (b[1] & 0xC0) == 0x80)
        return false;                         /* fe80::/10 link-local */
    if (b[0] == 0xFE && (b[1] & 0xC0) == 0xC0)
        return false;                         /* fec0::/10 site-local (deprecated) */
    if (b[0] == 0xFF)
        return false;                         /* multicast */
    if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0D && b[3] == 0xB8)
        return false;                         /* 2001:db8::/32 documentation */
    return true;
}
