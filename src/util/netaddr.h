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
 * (100.64/10), link-local, multicast and reserved addresses, IPv4-mapped
 * IPv6 included; true otherwise. Unknown families are not public.
 */
bool sd_addr_is_public(const struct sockaddr *sa);

#endif
