#include "tests/md5/kernel_capture.h"

#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <linux/rtnetlink.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string_view>

#include <fmt/format.h>

#include "tests/md5/vector_file.h"

namespace tapstack::md5test {
namespace {

using md5opt::Error;
using md5opt::IpAddress;
using md5opt::Ok;
using md5opt::Result;
using md5opt::Status;

constexpr std::size_t kEthernetHeaderSize = 14;

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  int get() const { return fd_; }
  bool ok() const { return fd_ >= 0; }

 private:
  int fd_;
};

Error system_error(std::string_view what) {
  return Error{errno, fmt::format("{}: {}", what, std::strerror(errno))};
}

IpAddress ip(std::string_view text) {
  return *IpAddress::parse(text);
}

sockaddr_storage socket_address(const IpAddress& address, std::uint16_t port) {
  sockaddr_storage storage{};
  if (address.is_ipv4()) {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    std::memcpy(&v4->sin_addr, address.bytes().data(), 4);
  } else {
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    std::memcpy(&v6->sin6_addr, address.bytes().data(), 16);
  }
  return storage;
}

socklen_t socket_address_size(const IpAddress& address) {
  return address.is_ipv4() ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
}

// `ip link set lo up`
Status bring_loopback_up() {
  Fd fd(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd.ok()) return system_error("socket(AF_INET)");
  ifreq request{};
  std::strncpy(request.ifr_name, "lo", IFNAMSIZ - 1);
  if (ioctl(fd.get(), SIOCGIFFLAGS, &request) != 0) return system_error("SIOCGIFFLAGS lo");
  request.ifr_flags = static_cast<short>(request.ifr_flags | IFF_UP);
  if (ioctl(fd.get(), SIOCSIFFLAGS, &request) != 0) return system_error("SIOCSIFFLAGS lo");
  return Ok{};
}

struct AddressRequest {
  nlmsghdr header;
  ifaddrmsg message;
  alignas(NLMSG_ALIGNTO) std::uint8_t attributes[2 * RTA_SPACE(16)];
};

void append_attribute(AddressRequest& request, unsigned short type, md5opt::ByteView value) {
  auto* attribute = reinterpret_cast<rtattr*>(reinterpret_cast<std::uint8_t*>(&request) +
                                              NLMSG_ALIGN(request.header.nlmsg_len));
  attribute->rta_type = type;
  attribute->rta_len = static_cast<unsigned short>(RTA_LENGTH(value.size()));
  std::memcpy(RTA_DATA(attribute), value.data(), value.size());
  request.header.nlmsg_len = NLMSG_ALIGN(request.header.nlmsg_len) + RTA_ALIGN(attribute->rta_len);
}

Status netlink_transact(AddressRequest& request, std::string_view what) {
  Fd fd(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!fd.ok()) return system_error("socket(AF_NETLINK)");
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (sendto(fd.get(), &request, request.header.nlmsg_len, 0, reinterpret_cast<sockaddr*>(&kernel),
             sizeof kernel) < 0) {
    return system_error(what);
  }
  alignas(nlmsghdr) std::uint8_t answer[4096];
  const ssize_t n = recv(fd.get(), answer, sizeof answer, 0);
  if (n < 0) return system_error(what);
  const auto* reply = reinterpret_cast<const nlmsghdr*>(answer);
  if (!NLMSG_OK(reply, static_cast<unsigned>(n)) || reply->nlmsg_type != NLMSG_ERROR) {
    return Error{EPROTO, fmt::format("{}: no acknowledgement from the kernel", what)};
  }
  const auto* error = static_cast<const nlmsgerr*>(NLMSG_DATA(reply));
  if (error->error != 0) {
    errno = -error->error;
    return system_error(what);
  }
  return Ok{};
}

// `ip addr add ADDRESS/32 dev lo` or `ip addr add ADDRESS/128 dev lo nodad`
Status add_loopback_address(const IpAddress& address) {
  AddressRequest request{};
  request.header.nlmsg_len = NLMSG_LENGTH(sizeof(ifaddrmsg));
  request.header.nlmsg_type = RTM_NEWADDR;
  request.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
  request.message.ifa_family = address.is_ipv4() ? AF_INET : AF_INET6;
  request.message.ifa_prefixlen = static_cast<unsigned char>(address.bit_length());
  request.message.ifa_flags = address.is_ipv4() ? 0 : IFA_F_NODAD;
  request.message.ifa_index = if_nametoindex("lo");
  append_attribute(request, IFA_LOCAL, address.bytes());
  append_attribute(request, IFA_ADDRESS, address.bytes());
  return netlink_transact(request, fmt::format("adding {} to lo", address.to_string()));
}

// setsockopt(TCP_MD5SIG) exactly as the seed's server.c and client.c do it.
Status set_md5_key(int fd, const IpAddress& peer, std::string_view key) {
  tcp_md5sig command{};
  const sockaddr_storage address = socket_address(peer, 0);
  std::memcpy(&command.tcpm_addr, &address, sizeof address);
  command.tcpm_keylen = static_cast<std::uint16_t>(key.size());
  std::memcpy(command.tcpm_key, key.data(), key.size());
  if (setsockopt(fd, IPPROTO_TCP, TCP_MD5SIG, &command, sizeof command) != 0) {
    return system_error("setsockopt(TCP_MD5SIG)");
  }
  return Ok{};
}

// A TCP socket bound to address:port, with a key for peer and a 3 s limit on every wait.
Result<int> md5_socket(const IpAddress& address, std::uint16_t port, const IpAddress& peer,
                       std::string_view key) {
  const int fd = socket(address.is_ipv4() ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return system_error("socket(SOCK_STREAM)");
  const int on = 1;
  const timeval limit{3, 0};
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
  const sockaddr_storage local = socket_address(address, port);
  if (bind(fd, reinterpret_cast<const sockaddr*>(&local), socket_address_size(address)) != 0) {
    Error error = system_error(fmt::format("bind {}:{}", address.to_string(), port));
    close(fd);
    return error;
  }
  if (auto status = set_md5_key(fd, peer, key); !status) {
    close(fd);
    return status.error();
  }
  return fd;
}

Status send_all(int fd, std::string_view bytes) {
  if (send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(bytes.size())) {
    return system_error("send");
  }
  return Ok{};
}

// Reads exactly `size` bytes, or to end of stream when size is 0 (then expects no bytes).
Status receive(int fd, std::size_t size) {
  std::string bytes(size + 1, '\0');
  std::size_t got = 0;
  while (got < size) {
    const ssize_t n = recv(fd, bytes.data() + got, size - got, 0);
    if (n <= 0) return n == 0 ? Error{EPIPE, "stream ended early"} : system_error("recv");
    got += static_cast<std::size_t>(n);
  }
  if (size > 0) return Ok{};
  const ssize_t n = recv(fd, bytes.data(), 1, 0);
  if (n < 0) return system_error("recv, expecting the end of the stream");
  if (n > 0) return Error{EPROTO, "more bytes where the end of the stream was expected"};
  return Ok{};
}

// The conversation: connect, request, reply, client half-close, server close.
Status converse(const Exchange& exchange, int listener, int client) {
  const sockaddr_storage server = socket_address(exchange.server, exchange.server_port);
  if (connect(client, reinterpret_cast<const sockaddr*>(&server),
              socket_address_size(exchange.server)) != 0) {
    return system_error("connect");
  }
  Fd accepted(accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
  if (!accepted.ok()) return system_error("accept");
  const timeval limit{3, 0};
  setsockopt(accepted.get(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  if (auto status = send_all(client, exchange.request); !status) return status;
  if (auto status = receive(accepted.get(), exchange.request.size()); !status) return status;
  if (auto status = send_all(accepted.get(), exchange.reply); !status) return status;
  if (auto status = receive(client, exchange.reply.size()); !status) return status;
  if (shutdown(client, SHUT_WR) != 0) return system_error("shutdown");
  if (auto status = receive(accepted.get(), 0); !status) return status;
  return Ok{};  // closing `accepted` sends the server's FIN
}

// Between the exchange's two addresses, to or from its server port.
bool belongs_to(const md5opt::TcpSegment& segment, const Exchange& exchange) {
  const auto port = [&](std::size_t at) {
    return static_cast<std::uint16_t>(segment.header[at] << 8 | segment.header[at + 1]);
  };
  const bool forward = segment.source == exchange.client &&
                       segment.destination == exchange.server && port(2) == exchange.server_port;
  const bool backward = segment.source == exchange.server &&
                        segment.destination == exchange.client && port(0) == exchange.server_port;
  return forward || backward;
}

// Every packet lo received (not the copies it sent, which are the same packets), until lo has
// been quiet for 300 ms.
Packets drain(int packet_socket, const Exchange& exchange) {
  Packets packets;
  std::vector<std::uint8_t> frame(65536 + kEthernetHeaderSize);
  pollfd ready{packet_socket, POLLIN, 0};
  while (poll(&ready, 1, 300) == 1) {
    sockaddr_ll from{};
    socklen_t from_size = sizeof from;
    const ssize_t n = recvfrom(packet_socket, frame.data(), frame.size(), 0,
                               reinterpret_cast<sockaddr*>(&from), &from_size);
    if (n <= static_cast<ssize_t>(kEthernetHeaderSize) || from.sll_pkttype == PACKET_OUTGOING) {
      continue;
    }
    std::vector<std::uint8_t> packet(frame.begin() + kEthernetHeaderSize, frame.begin() + n);
    const auto segment = tcp_segment_of(packet);
    if (segment && belongs_to(*segment, exchange)) packets.push_back(std::move(packet));
  }
  return packets;
}

Result<int> open_packet_socket() {
  const int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
  if (fd < 0) return system_error("socket(AF_PACKET)");
  sockaddr_ll lo{};
  lo.sll_family = AF_PACKET;
  lo.sll_protocol = htons(ETH_P_ALL);
  lo.sll_ifindex = static_cast<int>(if_nametoindex("lo"));
  if (bind(fd, reinterpret_cast<const sockaddr*>(&lo), sizeof lo) != 0) {
    Error error = system_error("bind AF_PACKET to lo");
    close(fd);
    return error;
  }
  return fd;
}

}  // namespace

Exchange ipv4_exchange() {
  return {ip("198.18.0.2"),
          ip("198.18.0.1"),
          40179,
          179,
          "tapstack kernel vectors",
          "OPEN from the client",
          "OPEN from the server, and KEEPALIVE"};
}

Exchange ipv6_exchange() {
  constexpr std::string_view kLongestKey =
      "An eighty-byte key, the longest TCP_MD5SIG_MAXKEYLEN allows: RFC 2385 over IPv6.";
  static_assert(kLongestKey.size() == 80);
  return {ip("2001:db8::2"),
          ip("2001:db8::1"),
          40179,
          179,
          std::string(kLongestKey),
          "OPEN from the client",
          "OPEN from the server, and KEEPALIVE"};
}

Status enter_capture_namespace() {
  if (unshare(CLONE_NEWNET) != 0) return system_error("unshare(CLONE_NEWNET)");
  if (auto status = bring_loopback_up(); !status) return status;
  for (const Exchange& exchange : {ipv4_exchange(), ipv6_exchange()}) {
    for (const IpAddress& address : {exchange.client, exchange.server}) {
      if (auto status = add_loopback_address(address); !status) return status;
    }
  }
  return Ok{};
}

Result<Packets> capture_around_listener(const Exchange& exchange,
                                        const std::function<void(int listener)>& act) {
  auto packet_socket = open_packet_socket();
  if (!packet_socket) return packet_socket.error();
  Fd capture(*packet_socket);
  auto listener = md5_socket(exchange.server, exchange.server_port, exchange.client, exchange.key);
  if (!listener) return listener.error();
  Fd listening(*listener);
  if (listen(listening.get(), 4) != 0) return system_error("listen");
  act(listening.get());
  return drain(capture.get(), exchange);
}

Result<Packets> capture_exchange(const Exchange& exchange) {
  std::optional<Error> failure;
  const auto converse_as_client = [&](int listener) {
    auto client = md5_socket(exchange.client, exchange.client_port, exchange.server, exchange.key);
    if (!client) {
      failure = client.error();
      return;
    }
    Fd connecting(*client);
    auto status = converse(exchange, listener, connecting.get());
    // The client closes after the server's FIN, sending the last ACK.
    if (status) status = receive(connecting.get(), 0);
    if (!status) failure = status.error();
  };
  auto packets = capture_around_listener(exchange, converse_as_client);
  if (failure) return *failure;
  return packets;
}

}  // namespace tapstack::md5test
