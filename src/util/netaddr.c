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
    if (b0 >= 224)
        return false;                         /* multicast, reserved, broadcast */
    return true;
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
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
    if (memcmp(b, mapped, 12) == 0)
        return ipv4_is_public((uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 |
                              (uint32_t)b[14] << 8 | b[15]);
    static const uint8_t zero[15] = {0};
    if (memcmp(b, zero, 15) == 0)
        return false;                         /* :: and ::1 */
    if ((b[0] & 0xFE) == 0xFC)
        return false;                         /* fc00::/7 unique local */
    if (b[0] == 0xFE && (b[1] & 0xC0) == 0x80)
        return false;                         /* fe80::/10 link-local */
    if (b[0] == 0xFF)
        return false;                         /* multicast */
    if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0D && b[3] == 0xB8)
        return false;                         /* 2001:db8::/32 documentation */
    return true;
}
