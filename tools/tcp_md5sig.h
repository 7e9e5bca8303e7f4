// The kernel's side of RFC 2385: setsockopt(TCP_MD5SIG) on a kernel socket, as the seed's
// server.c and client.c call it, for the kernel peers of the demo, kernel-peer and the tests.
#pragma once

#include <cstdint>

#include "stack/address.h"
#include "stack/bytes.h"
#include "stack/error.h"

namespace tapstack::cli {

// The key for peers in peer/prefix_length on socket fd: TCP_MD5SIG for the address alone (a
// prefix of 32 for IPv4, 128 for IPv6), TCP_MD5SIG_EXT with TCP_MD5SIG_FLAG_PREFIX otherwise;
// an empty key deletes. At most 80 bytes (EINVAL). On an AF_INET socket the peer must be IPv4
// (tcp_v4_parse_md5_keys()); on an AF_INET6 one an IPv4 peer is given as ::ffff:A.B.C.D with
// its IPv4 prefix, which the kernel keeps as an AF_INET key, as tcp_v6_parse_md5_keys() does.
Status set_tcp_md5sig(int fd, const IpAddress& peer, uint8_t prefix_length, ByteView key);

}  // namespace tapstack::cli
