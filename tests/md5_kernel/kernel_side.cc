#include "tests/md5_kernel/kernel_side.h"

#include "tools/tcp_md5sig.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "tap/system_error.h"

namespace tapstack::md5kernel {
namespace {

// A socket address of either family, and its length.
struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
};

SocketAddress socket_address(const IpAddress& address, uint16_t port) {
  SocketAddress result;
  if (address.is_ipv4()) {
    auto* in = reinterpret_cast<sockaddr_in*>(&result.storage);
    in->sin_family = AF_INET;
    std::memcpy(&in->sin_addr, address.bytes().data(), 4);
    in->sin_port = htons(port);
    result.length = sizeof(sockaddr_in);
  } else {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&result.storage);
    in6->sin6_family = AF_INET6;
    std::memcpy(&in6->sin6_addr, address.bytes().data(), 16);
    in6->sin6_port = htons(port);
    result.length = sizeof(sockaddr_in6);
  }
  return result;
}

Result<Fd> tcp_socket(const IpAddress& local, uint16_t port, std::span<const PeerKey> keys) {
  const SocketAddress address = socket_address(local, port);
  Fd fd(::socket(address.storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (fd.get() < 0) return errno_error(errno, "socket");
  const int one = 1;
  const int zero = 0;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (!local.is_ipv4()) setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  if (bind(fd.get(), address.get(), address.length) != 0) {
    return errno_error(errno, fmt::format("bind {}:{}", local, port));
  }
  for (const PeerKey& key : keys) {
    if (auto set = set_kernel_key(fd.get(), key); !set) return set.error();
  }
  return fd;
}

// The words of the line of `text` that starts at `at`.
std::vector<std::string_view> words_of_line(std::string_view text, size_t at) {
  const std::string_view line = text.substr(at, text.find('\n', at) - at);
  std::vector<std::string_view> words;
  for (size_t begin = 0; begin < line.size();) {
    const size_t end = std::min(line.find(' ', begin), line.size());
    if (end > begin) words.push_back(line.substr(begin, end - begin));
    begin = end + 1;
  }
  return words;
}

}  // namespace

Fd& Fd::operator=(Fd&& other) noexcept {
  if (this != &other) {
    reset();
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

void Fd::reset() {
  if (fd_ >= 0) ::close(std::exchange(fd_, -1));
}

Status set_kernel_key(int fd, const PeerKey& key) {
  return cli::set_tcp_md5sig(
      fd, key.peer, key.prefix_length,
      ByteView(reinterpret_cast<const uint8_t*>(key.key.data()), key.key.size()));
}

Result<Fd> kernel_listen(const IpAddress& address, uint16_t port, std::span<const PeerKey> keys) {
  auto fd = tcp_socket(address, port, keys);
  if (fd && ::listen(fd->get(), 16) != 0) return errno_error(errno, "listen");
  return fd;
}

Result<Fd> kernel_start_connect(const IpAddress& local, const IpAddress& remote, uint16_t port,
                                std::span<const PeerKey> keys) {
  auto fd = tcp_socket(local, 0, keys);
  if (!fd) return fd;
  const SocketAddress to = socket_address(remote, port);
  if (::connect(fd->get(), to.get(), to.length) != 0 &&
      errno != EINPROGRESS) {
    return errno_error(errno, "connect");
  }
  return fd;
}

std::optional<int> connect_result(int fd) {
  int error = 0;
  socklen_t length = sizeof error;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0) return errno;
  if (error != 0) return error;
  sockaddr_storage peer{};
  length = sizeof peer;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &length) == 0) return 0;
  return std::nullopt;  // ENOTCONN: still connecting
}

Fd try_accept(int listener) {
  return Fd(accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
}

Status set_congestion_control(int fd, const char* name) {
  if (setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, name, static_cast<socklen_t>(strlen(name))) !=
      0) {
    return errno_error(errno, "setsockopt(TCP_CONGESTION)");
  }
  return Ok{};
}

const char* to_string(Md5Drop drop) {
  switch (drop) {
    case Md5Drop::NotFound:
      return "TCPMD5NotFound";
    case Md5Drop::Unexpected:
      return "TCPMD5Unexpected";
    case Md5Drop::Failure:
      return "TCPMD5Failure";
  }
  return "?";
}

Md5Counters Md5Counters::only(Md5Drop drop, uint64_t count) {
  return {drop == Md5Drop::NotFound ? count : 0, drop == Md5Drop::Unexpected ? count : 0,
          drop == Md5Drop::Failure ? count : 0};
}

std::string Md5Counters::to_string() const {
  return fmt::format("TCPMD5NotFound {} TCPMD5Unexpected {} TCPMD5Failure {}", not_found,
                     unexpected, failure);
}

// /proc/net/netstat and /proc/net/snmp hold, per group, a line of names and then one of values.
// /proc/thread-self: the namespace of this thread, not of the process's first one.
uint64_t kernel_counter(std::string_view file, std::string_view group, std::string_view name) {
  std::ifstream in(fmt::format("/proc/thread-self/net/{}", file));
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string prefix = fmt::format("{}:", group);
  const size_t names_at = text.find(prefix);
  const size_t values_at = text.find(prefix, names_at + 1);
  if (values_at == std::string::npos) {
    throw std::runtime_error(fmt::format("no {} lines in {}", group, file));
  }
  const auto names = words_of_line(text, names_at);
  const auto values = words_of_line(text, values_at);
  const auto found = std::find(names.begin(), names.end(), name);
  if (found == names.end() || names.size() != values.size()) {
    throw std::runtime_error(fmt::format("no {} counter {} in {}", group, name, file));
  }
  return std::stoull(std::string(values[static_cast<size_t>(found - names.begin())]));
}

Md5Counters kernel_md5_counters() {
  return {kernel_counter("netstat", "TcpExt", "TCPMD5NotFound"),
          kernel_counter("netstat", "TcpExt", "TCPMD5Unexpected"),
          kernel_counter("netstat", "TcpExt", "TCPMD5Failure")};
}

Md5Counters stack_md5_counters(const Stack& stack) {
  const Counters& counters = stack.counters();
  return {counters[Counter::TcpExtTCPMD5NotFound], counters[Counter::TcpExtTCPMD5Unexpected],
          counters[Counter::TcpExtTCPMD5Failure]};
}

}  // namespace tapstack::md5kernel
