// Kernel TCP sockets for the peer side of interop tests, in the test's own network namespace.
// Every call that waits is bounded by a deadline: a test may fail, never hang.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string_view>
#include <thread>
#include <vector>

#include "stack/address.h"
#include "stack/error.h"
#include "tests/support/byte_pattern.h"

namespace tapstack::testing {

using Deadline = std::chrono::steady_clock::time_point;

inline Deadline deadline_in(std::chrono::milliseconds time) {
  return std::chrono::steady_clock::now() + time;
}

class KernelSocket {
 public:
  // Listens on 0.0.0.0:port: any address, since the TAP's may not exist yet.
  static Result<KernelSocket> listen(uint16_t port, int backlog = 512);
  // Listens on address:port; an IPv6 address (:: for any) makes a dual-stack socket
  // (IPV6_V6ONLY off), which takes IPv4 connections too.
  static Result<KernelSocket> listen_on(const IpAddress& address, uint16_t port,
                                        int backlog = 512);
  // Either family (an Ipv4Address converts).
  static Result<KernelSocket> connect(const IpAddress& address, uint16_t port, Deadline deadline);
  // Starts a connection without waiting for it (exchange() waits as it goes), so that many
  // can be on their way at once.
  static Result<KernelSocket> start_connect(const IpAddress& address, uint16_t port);
  Result<KernelSocket> accept(Deadline deadline) const;

  explicit KernelSocket(int fd) : fd_(fd) {}
  KernelSocket(KernelSocket&& other) noexcept;
  KernelSocket& operator=(KernelSocket&& other) noexcept;
  KernelSocket(const KernelSocket&) = delete;
  KernelSocket& operator=(const KernelSocket&) = delete;
  ~KernelSocket() { close(); }

  int fd() const { return fd_; }
  Status shutdown_write() const;
  // Makes close() send a reset instead of a FIN (SO_LINGER on, with a zero timeout).
  Status set_reset_on_close() const;
  // TCP_CONGESTION; the namespace's default may be bbr, tests compare with "cubic".
  Status set_congestion_control(std::string_view name) const;
  void close();

 private:
  int fd_ = -1;
};

// What one side of a connection moved.
struct Transfer {
  uint64_t sent = 0;
  uint64_t received = 0;
  Digest received_digest{};
  int error = 0;           // the errno that ended it (ECONNRESET, ...); 0 if it ended well
  bool timed_out = false;  // the deadline came first

  bool ok() const { return error == 0 && !timed_out; }
};

// What a socket sends in exchange(): the first `size` bytes of pattern stream `seed`.
struct Outgoing {
  uint64_t seed = 0;
  uint64_t size = 0;
};

// Sends the outgoing bytes, then shuts down writing, while reading all the peer sends until
// its end of stream: both at once, so that neither direction's window can stall the other.
Transfer exchange(KernelSocket& socket, Outgoing outgoing, Deadline deadline);
// The same for many sockets at once, in one poll() loop: outgoing[i] goes out on sockets[i].
std::vector<Transfer> exchange_all(std::span<KernelSocket> sockets,
                                   std::span<const Outgoing> outgoing, Deadline deadline);

// An echo server's side: sends back everything it reads; at the peer's end of stream, once all
// is sent back, shuts down writing.
Transfer echo(KernelSocket& socket, Deadline deadline);

// A kernel server on a thread of its own: listens at construction (on [::]:port, for clients of
// both families, so a client may start
// right away), then accepts one connection and runs `session` on it. join() returns what the
// session returned, or a Transfer with the accept's error.
class KernelServer {
 public:
  using Session = std::function<Transfer(KernelSocket& connection)>;
  KernelServer(uint16_t port, Deadline deadline, Session session);
  KernelServer(const KernelServer&) = delete;
  KernelServer& operator=(const KernelServer&) = delete;
  ~KernelServer();
  Transfer join();

 private:
  std::optional<KernelSocket> listener_;
  std::thread thread_;
  Transfer result_;
};

}  // namespace tapstack::testing
