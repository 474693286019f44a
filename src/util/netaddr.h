/*
 * netaddr.h - is an address on the public internet? Used to keep webhooks
 * (callback_url) from reaching loopback, private networks and link-local
 * addresses such as the cloud metadata service (server-side request forgery).
 */
#ifndef SD_UTIL_NETADDR_H
#define SD_UTIL_NETADDR_H

#include <stdbool.h>
#include <sys/socket.h>

/*
 * False for unspecified, loopback, private (RFC 1918, fc00::/7), shared
 * (100.64/10), link-local, multicast, documentation and reserved addresses;
 * true otherwise. IPv6 forms that lead to an IPv4 address (mapped
 * ::ffff:0:0/96, translated ::ffff:0:0:0/96, NAT64 64:ff9b::/96, 6to4
 * 2002::/16) are judged by that address; IPv4-compatible ::/96, local-use
 * NAT64 64:ff9b:1::/48, Teredo 2001::/32 and discard 100::/64 are refused.
 * Unknown families are not public. Check the address actually connected to
 * (jobs/callback.c does, per connection, after DNS).
 */
bool sd_addr_is_public(const struct sockaddr *sa);

#endif
