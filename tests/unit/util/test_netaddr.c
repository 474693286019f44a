/* Tests of util/netaddr.c: which addresses webhooks may reach. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "check.h"
#include "util/netaddr.h"

static bool public_addr(const char *text)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (strchr(text, ':')) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        CHECK(inet_pton(AF_INET6, text, &a->sin6_addr) == 1);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        CHECK(inet_pton(AF_INET, text, &a->sin_addr) == 1);
    }
    return sd_addr_is_public((const struct sockaddr *)&ss);
}

TEST(netaddr_private_and_special_addresses_are_refused)
{
    static const char *const refused[] = {
        "127.0.0.1", "127.8.9.1", "0.0.0.0", "10.1.2.3", "172.16.0.1", "172.31.255.255",
        "192.168.1.1", "169.254.169.254", "100.64.0.1", "224.0.0.1", "255.255.255.255",
        "::1", "::", "fd00::1", "fe80::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
        "2001:db8::1", "192.0.2.1", "198.51.100.7", "203.0.113.9", "fec0::1",
        /* IPv4-compatible ::/96 (issue 16: [::127.0.0.1] got through) */
        "::127.0.0.1", "::10.0.0.1", "::8.8.8.8", "::169.254.169.254",
        /* translated ::ffff:0:0:0/96 */
        "::ffff:0:127.0.0.1", "::ffff:0:10.1.1.1",
        /* NAT64 64:ff9b::/96 to a private v4, and the local-use /48 */
        "64:ff9b::127.0.0.1", "64:ff9b::a9fe:a9fe", "64:ff9b::192.168.0.1", "64:ff9b:1::1",
        "64:ff9b:1::8.8.8.8",
        /* 6to4 2002::/16 whose embedded v4 is private */
        "2002:7f00:1::1", "2002:a00:1::", "2002:a9fe:a9fe::1", "2002:c0a8:101::1",
        /* Teredo 2001::/32 (the v4 behind it is hidden), benchmarking, discard */
        "2001::1", "2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001:2::1", "100::1"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        CHECK_MSG(!public_addr(refused[i]), "%s should not be public", refused[i]);
}

TEST(netaddr_public_addresses_are_allowed)
{
    static const char *const allowed[] = {
        "8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "2606:4700::1111", "::ffff:8.8.8.8",
        /* the embedding forms lead to a public v4 */
        "64:ff9b::8.8.8.8", "2002:808:808::1", "::ffff:0:8.8.8.8", "2001:4860:4860::8888",
        "2a00:1450::1"};
    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
        CHECK_MSG(public_addr(allowed[i]), "%s should be public", allowed[i]);
}
