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
        "2001:db8::1"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        CHECK_MSG(!public_addr(refused[i]), "%s should not be public", refused[i]);
}

TEST(netaddr_public_addresses_are_allowed)
{
    static const char *const allowed[] = {"8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1",
                                          "2606:4700::1111", "::ffff:8.8.8.8"};
    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
        CHECK_MSG(public_addr(allowed[i]), "%s should be public", allowed[i]);
}
