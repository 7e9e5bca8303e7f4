#include "tools/tcp_md5sig.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "tap/system_error.h"

namespace tapstack::cli {
namespace {

// peer as a sockaddr of fd's family, in tcpm_addr; false when an AF_INET socket is given an
// IPv6 peer.
bool store_peer(sockaddr_storage& storage, int domain, const IpAddress& peer) {
  const ByteView bytes = peer.bytes();
  if (domain == AF_INET6) {
    sockaddr_in6 address{};
    address.sin6_family = AF_INET6;
    if (peer.is_ipv4()) {  // ::ffff:A.B.C.D (RFC 4291 §2.5.5.2)
      address.sin6_addr.s6_addr[10] = 0xff;
      address.sin6_addr.s6_addr[11] = 0xff;
      std::memcpy(&address.sin6_addr.s6_addr[12], bytes.data(), 4);
    } else {
      std::memcpy(&address.sin6_addr, bytes.data(), 16);
    }
    std::memcpy(&storage, &address, sizeof address);
    return true;
  }
  if (!peer.is_ipv4()) return false;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  std::memcpy(&address.sin_addr, bytes.data(), 4);
  std::memcpy(&storage, &address, sizeof address);
  return true;
}

}  // namespace

Status set_tcp_md5sig(int fd, const IpAddress& peer, uint8_t prefix_length, ByteView key) {
  tcp_md5sig md5{};
  if (key.size() > sizeof md5.tcpm_key) return Error{EINVAL, "key longer than 80 bytes"};
  int domain = AF_INET;
  socklen_t length = sizeof domain;
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &length) != 0) {
    return errno_error(errno, "getsockopt(SO_DOMAIN) before setsockopt(TCP_MD5SIG)");
  }
  if (!store_peer(md5.tcpm_addr, domain, peer)) {
    return Error{
        EAFNOSUPPORT,
        fmt::format("setsockopt(TCP_MD5SIG) for {}: an IPv6 peer on an IPv4 socket", peer)};
  }
  md5.tcpm_keylen = static_cast<uint16_t>(key.size());
  std::memcpy(md5.tcpm_key, key.data(), key.size());
  int option = TCP_MD5SIG;
  if (prefix_length != peer.bit_length()) {
    option = TCP_MD5SIG_EXT;
    md5.tcpm_flags = TCP_MD5SIG_FLAG_PREFIX;
    md5.tcpm_prefixlen = prefix_length;
  }
  if (setsockopt(fd, IPPROTO_TCP, option, &md5, sizeof md5) != 0) {
    return errno_error(errno, fmt::format("setsockopt(TCP_MD5SIG{}) for {}/{}",
                                          option == TCP_MD5SIG ? "" : "_EXT", peer,
                                          prefix_length));
  }
  return Ok{};
}

}  // namespace tapstack::cli
