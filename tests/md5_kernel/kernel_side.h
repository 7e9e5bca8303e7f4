// The Linux kernel as the peer: ordinary TCP sockets with their keys set through
// setsockopt(IPPROTO_TCP, TCP_MD5SIG) exactly as the seed's server.c and client.c set them
// (TCP_MD5SIG_EXT with TCP_MD5SIG_FLAG_PREFIX for a prefix), and the kernel's RFC 2385 counters
// read from /proc/net/netstat, beside the stack's counters of the same names.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include <fmt/format.h>

#include "stack/address.h"
#include "stack/error.h"
#include "stack/stack.h"

namespace tapstack::md5kernel {

// Setup steps that must not fail: an Error becomes a std::runtime_error "what: message",
// which doctest reports as the test's failure.
inline void ok_or_throw(const Status& status, std::string_view what) {
  if (!status) throw std::runtime_error(fmt::format("{}: {}", what, status.error().message));
}
template <typename T>
T value_or_throw(Result<T> result, std::string_view what) {
  if (!result) throw std::runtime_error(fmt::format("{}: {}", what, result.error().message));
  return std::move(*result);
}

// A key for the peers in peer/prefix_length, as either side sets it.
struct PeerKey {
  IpAddress peer;  // either family
  uint8_t prefix_length = 32;  // up to 32, or 128 for IPv6
  std::string key;
};

// An owned file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  int get() const { return fd_; }
  void reset();

 private:
  int fd_ = -1;
};

// setsockopt(TCP_MD5SIG) for a /32 key, as the seed does; TCP_MD5SIG_EXT with
// TCP_MD5SIG_FLAG_PREFIX for any other prefix length. An empty key deletes.
Status set_kernel_key(int fd, const PeerKey& key);

// A non-blocking kernel listener on address:port holding these keys.
// An IPv6 address makes an AF_INET6 socket (:: with IPV6_V6ONLY off: dual stack).
Result<Fd> kernel_listen(const IpAddress& address, uint16_t port, std::span<const PeerKey> keys);
// A non-blocking connect from `local` (any port) to remote:port with these keys set first.
Result<Fd> kernel_start_connect(const IpAddress& local, const IpAddress& remote, uint16_t port,
                                std::span<const PeerKey> keys);
// nullopt while a non-blocking connect is under way; then 0 when connected, else its errno.
std::optional<int> connect_result(int fd);
// A connection waiting on a non-blocking listener, or an empty Fd.
Fd try_accept(int listener);
// TCP_CONGESTION: the namespace's default may be bbr; comparisons set "cubic".
Status set_congestion_control(int fd, const char* name);

// The three ways an RFC 2385 check drops a segment (Linux: tcp_inbound_md5_hash()).
enum class Md5Drop { NotFound, Unexpected, Failure };
const char* to_string(Md5Drop drop);

// The three RFC 2385 drop counters, by their nstat names without the prefix.
struct Md5Counters {
  // `count` under one counter, zero under the others.
  static Md5Counters only(Md5Drop drop, uint64_t count);

  uint64_t not_found = 0;   // TCPMD5NotFound
  uint64_t unexpected = 0;  // TCPMD5Unexpected
  uint64_t failure = 0;     // TCPMD5Failure

  Md5Counters operator-(const Md5Counters& before) const {
    return {not_found - before.not_found, unexpected - before.unexpected, failure - before.failure};
  }
  bool operator==(const Md5Counters&) const = default;
  bool zero() const { return *this == Md5Counters{}; }
  std::string to_string() const;
};

// A counter of the kernel's in the calling thread's network namespace, as `nstat -az` shows
// it: kernel_counter("snmp", "Tcp", "RetransSegs"), kernel_counter("netstat", "TcpExt", ...).
// Throws std::runtime_error if it cannot be read.
uint64_t kernel_counter(std::string_view file, std::string_view group, std::string_view name);
// TcpExt TCPMD5NotFound, TCPMD5Unexpected and TCPMD5Failure.
Md5Counters kernel_md5_counters();
// The stack's counters of the same names (TcpExtTCPMD5NotFound, ...).
Md5Counters stack_md5_counters(const Stack& stack);

}  // namespace tapstack::md5kernel
