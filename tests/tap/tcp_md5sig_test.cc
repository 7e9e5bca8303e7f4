// set_tcp_md5sig() against the kernel, on its loopback in a private namespace: IPv6 keys
// (sockaddr_in6 in tcpm_addr), IPv6 prefixes (TCP_MD5SIG_EXT), IPv4 keys on an AF_INET6 socket
// (::ffff:A.B.C.D), and IPv4 as before. A connection forms only when both ends hold the
// same key for each other; with another key the kernel drops the SYN (TcpExtTCPMD5Failure).
#include <doctest/doctest.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "tap/netlink.h"
#include "tests/support/netns.h"
#include "tools/tcp_md5sig.h"

namespace tapstack::testing {
namespace {

constexpr uint16_t kPort = 6666;

struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

ByteView text(std::string_view key) {
  return {reinterpret_cast<const uint8_t*>(key.data()), key.size()};
}

sockaddr_in6 ipv6_address(const IpAddress& address, uint16_t port) {
  sockaddr_in6 result{};
  result.sin6_family = AF_INET6;
  result.sin6_port = htons(port);
  if (address.is_ipv4()) {
    result.sin6_addr.s6_addr[10] = result.sin6_addr.s6_addr[11] = 0xff;
    std::memcpy(&result.sin6_addr.s6_addr[12], address.bytes().data(), 4);
  } else {
    std::memcpy(&result.sin6_addr, address.bytes().data(), 16);
  }
  return result;
}

// The namespace's loopback with 2001:db8::1 (no DAD) and 198.18.0.1.
void set_up_loopback() {
  enter_private_netns_or_skip();
  auto netlink = Rtnetlink::open();
  REQUIRE(netlink);
  REQUIRE(enable_ipv6("lo"));
  REQUIRE(netlink->add_ipv6_address("lo", *Ipv6Interface::parse("2001:db8::1/128")));
  REQUIRE(netlink->add_ipv4_address("lo", *Ipv4Interface::parse("198.18.0.1/32")));
}

// A dual-stack listener (AF_INET6, IPV6_V6ONLY=0) with a key for listener_peer/prefix, and a
// client of to's family with a key for to: whether the handshake completes within a second.
bool handshake(const IpAddress& listener_peer, uint8_t prefix, std::string_view listener_key,
               const IpAddress& to, std::string_view client_key) {
  Fd listener(::socket(AF_INET6, SOCK_STREAM, 0));
  REQUIRE(listener.fd >= 0);
  const int off = 0;
  const int on = 1;
  REQUIRE(setsockopt(listener.fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off) == 0);
  REQUIRE(setsockopt(listener.fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) == 0);
  const sockaddr_in6 any = ipv6_address(IpAddress::ipv6(std::array<uint8_t, 16>{}), kPort);
  REQUIRE(::bind(listener.fd, reinterpret_cast<const sockaddr*>(&any), sizeof any) == 0);
  const Status listener_set =
      cli::set_tcp_md5sig(listener.fd, listener_peer, prefix, text(listener_key));
  REQUIRE_MESSAGE(listener_set, (listener_set ? "" : listener_set.error().message));
  REQUIRE(::listen(listener.fd, 4) == 0);

  const int family = to.is_ipv4() ? AF_INET : AF_INET6;
  Fd client(::socket(family, SOCK_STREAM | SOCK_NONBLOCK, 0));
  REQUIRE(client.fd >= 0);
  const Status client_set =
      cli::set_tcp_md5sig(client.fd, to, static_cast<uint8_t>(to.bit_length()), text(client_key));
  REQUIRE_MESSAGE(client_set, (client_set ? "" : client_set.error().message));
  int result = 0;
  if (family == AF_INET6) {
    const sockaddr_in6 address = ipv6_address(to, kPort);
    result = ::connect(client.fd, reinterpret_cast<const sockaddr*>(&address), sizeof address);
  } else {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(kPort);
    std::memcpy(&address.sin_addr, to.bytes().data(), 4);
    result = ::connect(client.fd, reinterpret_cast<const sockaddr*>(&address), sizeof address);
  }
  REQUIRE((result == 0 || errno == EINPROGRESS));
  pollfd entry{client.fd, POLLOUT, 0};
  if (::poll(&entry, 1, 1000) != 1) return false;
  int error = 0;
  socklen_t length = sizeof error;
  REQUIRE(getsockopt(client.fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0);
  return error == 0;
}

IpAddress ip(std::string_view text) {
  return *IpAddress::parse(text);
}

TEST_CASE("set_tcp_md5sig: IPv6 keys, IPv6 prefixes and IPv4 keys on an IPv6 socket") {
  set_up_loopback();
  CHECK(handshake(ip("2001:db8::1"), 128, "k6", ip("2001:db8::1"), "k6"));
  CHECK(handshake(ip("2001:db8::"), 64, "k6", ip("2001:db8::1"), "k6"));  // TCP_MD5SIG_EXT
  CHECK(handshake(ip("198.18.0.1"), 32, "k4", ip("198.18.0.1"), "k4"));   // ::ffff:198.18.0.1
  CHECK(handshake(ip("198.18.0.0"), 24, "k4", ip("198.18.0.1"), "k4"));   // mapped, a prefix
  // The kernel drops what the keys do not match: no handshake.
  CHECK_FALSE(handshake(ip("2001:db8::1"), 128, "k6", ip("2001:db8::1"), "other"));
  CHECK_FALSE(handshake(ip("2001:db8:1::"), 64, "k6", ip("2001:db8::1"), "k6"));
}

TEST_CASE("set_tcp_md5sig: an IPv6 peer on an IPv4 socket is refused before the kernel") {
  set_up_loopback();
  Fd socket(::socket(AF_INET, SOCK_STREAM, 0));
  REQUIRE(socket.fd >= 0);
  const Status set = cli::set_tcp_md5sig(socket.fd, ip("2001:db8::1"), 128, text("k"));
  REQUIRE_FALSE(set);
  CHECK(set.error().code == EAFNOSUPPORT);
  CHECK(cli::set_tcp_md5sig(socket.fd, ip("198.18.0.1"), 32, text("k")));
  CHECK(cli::set_tcp_md5sig(socket.fd, ip("198.18.0.0"), 24, text("k")));
}

}  // namespace
}  // namespace tapstack::testing
