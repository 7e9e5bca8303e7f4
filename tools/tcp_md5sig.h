// The kernel's side of RFC 2385: setsockopt(TCP_MD5SIG) on a kernel socket, as the seed's
// server.c and client.c call it, for the kernel peers of the demo, kernel-peer and the tests.
#pragma once

#include <cstdint>

#include "stack/address.h"
#include "stack/bytes.h"
#include "stack/error.h"

namespace tapstack::cli {

// The key for peers in peer/prefix_length on socket fd: TCP_MD5SIG for a /32, TCP_MD5SIG_EXT
// with TCP_MD5SIG_FLAG_PREFIX otherwise; an empty key deletes. At most 80 bytes (EINVAL).
// In the kernel this reaches tcp_v4_parse_md5_keys().
Status set_tcp_md5sig(int fd, Ipv4Address peer, uint8_t prefix_length, ByteView key);

}  // namespace tapstack::cli
