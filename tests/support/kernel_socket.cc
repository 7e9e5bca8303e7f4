#include "tests/support/kernel_socket.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include "tap/system_error.h"

namespace tapstack::testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr size_t kChunk = 64 * 1024;

int milliseconds_left(Deadline deadline) {
  const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
  return static_cast<int>(std::clamp<int64_t>(left, 0, 1000));
}

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

// Waits for events on fd until the deadline: the revents, 0 when the time ran out.
short wait_for(int fd, short events, Deadline deadline) {
  while (Clock::now() < deadline) {
    pollfd entry{fd, events, 0};
    if (poll(&entry, 1, milliseconds_left(deadline)) > 0) return entry.revents;
  }
  return 0;
}

bool is_transient(int error) {
  return error == EAGAIN || error == EINTR;
}

}  // namespace

Result<KernelSocket> KernelSocket::listen(uint16_t port, int backlog) {
  return listen_on(Ipv4Address{}, port, backlog);
}

Result<KernelSocket> KernelSocket::listen_on(const IpAddress& address, uint16_t port,
                                             int backlog) {
  const SocketAddress local = socket_address(address, port);
  KernelSocket socket(
      ::socket(local.storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (socket.fd() < 0) return errno_error(errno, "socket");
  const int one = 1;
  const int zero = 0;
  setsockopt(socket.fd(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (!address.is_ipv4()) setsockopt(socket.fd(), IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  if (bind(socket.fd(), local.get(), local.length) != 0) {
    return errno_error(errno, "bind");
  }
  if (::listen(socket.fd(), backlog) != 0) return errno_error(errno, "listen");
  return socket;
}

Result<KernelSocket> KernelSocket::start_connect(const IpAddress& address, uint16_t port) {
  const SocketAddress to = socket_address(address, port);
  KernelSocket socket(
      ::socket(to.storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (socket.fd() < 0) return errno_error(errno, "socket");
  if (::connect(socket.fd(), to.get(), to.length) != 0 &&
      errno != EINPROGRESS) {
    return errno_error(errno, "connect");
  }
  return socket;
}

Result<KernelSocket> KernelSocket::connect(const IpAddress& address, uint16_t port,
                                           Deadline deadline) {
  auto socket = start_connect(address, port);
  if (!socket) return socket;
  if (!(wait_for(socket->fd(), POLLOUT, deadline) & (POLLOUT | POLLERR | POLLHUP))) {
    return Error{ETIMEDOUT, "connect: timed out"};
  }
  int error = 0;
  socklen_t length = sizeof error;
  getsockopt(socket->fd(), SOL_SOCKET, SO_ERROR, &error, &length);
  if (error != 0) return errno_error(error, "connect");
  return socket;
}

Result<KernelSocket> KernelSocket::accept(Deadline deadline) const {
  while (Clock::now() < deadline) {
    const int fd = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd >= 0) return KernelSocket(fd);
    if (!is_transient(errno)) return errno_error(errno, "accept");
    wait_for(fd_, POLLIN, deadline);
  }
  return Error{ETIMEDOUT, "accept: timed out"};
}

KernelSocket::KernelSocket(KernelSocket&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

KernelSocket& KernelSocket::operator=(KernelSocket&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

Status KernelSocket::shutdown_write() const {
  if (::shutdown(fd_, SHUT_WR) != 0) return errno_error(errno, "shutdown");
  return Ok{};
}

Status KernelSocket::set_reset_on_close() const {
  const linger option{1, 0};
  if (setsockopt(fd_, SOL_SOCKET, SO_LINGER, &option, sizeof option) != 0) {
    return errno_error(errno, "SO_LINGER");
  }
  return Ok{};
}

Status KernelSocket::set_congestion_control(std::string_view name) const {
  if (setsockopt(fd_, IPPROTO_TCP, TCP_CONGESTION, name.data(),
                 static_cast<socklen_t>(name.size())) != 0) {
    return errno_error(errno, "TCP_CONGESTION");
  }
  return Ok{};
}

void KernelSocket::close() {
  if (fd_ >= 0) ::close(std::exchange(fd_, -1));
}

namespace {

// One socket's side of exchange(): the pattern out, a chunk at a time, and a digest of
// everything in.
class Exchanger {
 public:
  Exchanger(int fd, Outgoing outgoing) : fd_(fd), outgoing_(outgoing) {}

  bool done() const { return transfer_.error != 0 || (end_of_stream_ && shut_); }
  short events() const {
    return static_cast<short>((end_of_stream_ ? 0 : POLLIN) | (shut_ ? 0 : POLLOUT));
  }

  void on_ready(short revents, std::vector<uint8_t>& buffer) {
    if (revents & (POLLIN | POLLERR | POLLHUP)) receive_some(buffer);
    if (transfer_.error == 0 && (revents & POLLOUT) && !shut_) send_some();
  }

  Transfer finish(bool timed_out) {
    transfer_.timed_out = timed_out && !done();
    transfer_.received_digest = sha_.finish();
    return transfer_;
  }

 private:
  void receive_some(std::vector<uint8_t>& buffer) {
    const ssize_t n = recv(fd_, buffer.data(), buffer.size(), MSG_DONTWAIT);
    if (n < 0) {
      if (!is_transient(errno)) transfer_.error = errno;
      return;
    }
    if (n == 0) end_of_stream_ = true;
    sha_.update(ByteView(buffer).first(static_cast<size_t>(n)));
    transfer_.received += static_cast<uint64_t>(n);
  }

  void send_some() {
    if (transfer_.sent == outgoing_.size) {
      shut_ = true;
      if (::shutdown(fd_, SHUT_WR) != 0) transfer_.error = errno;
      return;
    }
    if (begin_ == end_) refill();
    const ssize_t n = send(fd_, chunk_.data() + begin_, end_ - begin_, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) {
      if (!is_transient(errno)) transfer_.error = errno;
      return;
    }
    begin_ += static_cast<size_t>(n);
    transfer_.sent += static_cast<uint64_t>(n);
  }

  void refill() {
    const size_t length =
        static_cast<size_t>(std::min<uint64_t>(kChunk, outgoing_.size - transfer_.sent));
    chunk_.resize(kChunk);
    fill_pattern(outgoing_.seed, transfer_.sent, MutableByteView(chunk_).first(length));
    begin_ = 0;
    end_ = length;
  }

  int fd_;
  Outgoing outgoing_;
  Transfer transfer_;
  Sha256 sha_;
  std::vector<uint8_t> chunk_;  // allocated at the first send: many sockets send a little
  size_t begin_ = 0;
  size_t end_ = 0;
  bool end_of_stream_ = false;
  bool shut_ = false;
};

}  // namespace

Transfer exchange(KernelSocket& socket, Outgoing outgoing, Deadline deadline) {
  return exchange_all(std::span(&socket, 1), std::span(&outgoing, 1), deadline).front();
}

std::vector<Transfer> exchange_all(std::span<KernelSocket> sockets,
                                   std::span<const Outgoing> outgoing, Deadline deadline) {
  std::vector<Exchanger> exchangers;
  for (size_t i = 0; i < sockets.size(); ++i) exchangers.emplace_back(sockets[i].fd(), outgoing[i]);
  std::vector<uint8_t> buffer(kChunk);
  std::vector<pollfd> fds;
  std::vector<size_t> polled;  // fds[k] is exchangers[polled[k]]
  bool timed_out = false;
  for (;;) {
    fds.clear();
    polled.clear();
    for (size_t i = 0; i < exchangers.size(); ++i) {
      if (exchangers[i].done()) continue;
      fds.push_back({sockets[i].fd(), exchangers[i].events(), 0});
      polled.push_back(i);
    }
    if (fds.empty()) break;
    if (Clock::now() >= deadline) {
      timed_out = true;
      break;
    }
    if (poll(fds.data(), fds.size(), milliseconds_left(deadline)) <= 0) continue;
    for (size_t k = 0; k < fds.size(); ++k) {
      if (fds[k].revents) exchangers[polled[k]].on_ready(fds[k].revents, buffer);
    }
  }
  std::vector<Transfer> transfers;
  for (Exchanger& exchanger : exchangers) transfers.push_back(exchanger.finish(timed_out));
  return transfers;
}

Transfer echo(KernelSocket& socket, Deadline deadline) {
  Transfer transfer;
  Sha256 sha;
  std::vector<uint8_t> pending(kChunk);  // read and not yet sent back
  size_t begin = 0;
  size_t end = 0;
  bool end_of_stream = false;
  while (transfer.error == 0 && !(end_of_stream && begin == end)) {
    if (Clock::now() >= deadline) {
      transfer.timed_out = true;
      break;
    }
    const short events = static_cast<short>(begin == end ? POLLIN : POLLOUT);
    if (!wait_for(socket.fd(), events, std::min(deadline, deadline_in(milliseconds(100))))) {
      continue;
    }
    const ssize_t n = begin == end ? recv(socket.fd(), pending.data(), pending.size(), MSG_DONTWAIT)
                                   : send(socket.fd(), pending.data() + begin, end - begin,
                                          MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) {
      if (!is_transient(errno)) transfer.error = errno;
    } else if (begin == end) {
      end_of_stream = n == 0;
      sha.update(ByteView(pending).first(static_cast<size_t>(n)));
      transfer.received += static_cast<uint64_t>(n);
      begin = 0;
      end = static_cast<size_t>(n);
    } else {
      begin += static_cast<size_t>(n);
      transfer.sent += static_cast<uint64_t>(n);
    }
  }
  if (transfer.ok() && ::shutdown(socket.fd(), SHUT_WR) != 0) transfer.error = errno;
  transfer.received_digest = sha.finish();
  return transfer;
}

KernelServer::KernelServer(uint16_t port, Deadline deadline, Session session) {
  // [::] with IPV6_V6ONLY off: clients of either family.
  auto listener = KernelSocket::listen_on(*IpAddress::parse("::"), port);
  if (!listener) {
    result_.error = listener.error().code;
    return;
  }
  listener_.emplace(std::move(*listener));
  thread_ = std::thread([this, deadline, session = std::move(session)] {
    auto connection = listener_->accept(deadline);
    if (!connection) {
      result_.error = connection.error().code;
      result_.timed_out = connection.error().code == ETIMEDOUT;
      return;
    }
    result_ = session(*connection);
  });
}

KernelServer::~KernelServer() {
  if (thread_.joinable()) thread_.join();
}

Transfer KernelServer::join() {
  if (thread_.joinable()) thread_.join();
  return result_;
}

}  // namespace tapstack::testing
