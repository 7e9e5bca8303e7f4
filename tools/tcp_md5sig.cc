#include "tools/tcp_md5sig.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "tap/system_error.h"

namespace tapstack::cli {

Status set_tcp_md5sig(int fd, Ipv4Address peer, uint8_t prefix_length, ByteView key) {
  tcp_md5sig md5{};
  if (key.size() > sizeof md5.tcpm_key) return Error{EINVAL, "key longer than 80 bytes"};
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(peer.value);
  std::memcpy(&md5.tcpm_addr, &address, sizeof address);
  md5.tcpm_keylen = static_cast<uint16_t>(key.size());
  std::memcpy(md5.tcpm_key, key.data(), key.size());
  int option = TCP_MD5SIG;
  if (prefix_length != 32) {
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
