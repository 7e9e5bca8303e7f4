// The TCP socket API of the stack against the kernel over TAP, in-process: the stack and its
// event loop run on the test's thread, the kernel's sockets are non-blocking and driven from
// the same thread, so every step of a close or a reset can be watched in order, on both sides.
// Each test has a namespace of its own (the kernel 198.18.0.1/24, the stack 198.18.0.2/24).
#include <doctest/doctest.h>

#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "stack/stack.h"
#include "stack/tcp/tcp.h"
#include "tap/clock.h"
#include "tap/event_loop.h"
#include "tap/netlink.h"
#include "tap/tap_device.h"
#include "tests/support/kernel_socket.h"
#include "tests/support/netns.h"

namespace tapstack::testing {
namespace {

using namespace socket_event;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr Ipv4Address kKernel = Ipv4Address::from_octets(198, 18, 0, 1);
constexpr uint16_t kKernelPort = 6000;
constexpr uint16_t kStackPort = 7000;
constexpr milliseconds kStepLimit{10'000};

// What the kernel's side of one connection has read so far.
struct KernelReader {
  std::string data;
  bool end_of_stream = false;
  int error = 0;

  // Reads what is there without waiting; true once something final happened.
  void poll(const KernelSocket& socket) {
    char buffer[4096];
    while (!end_of_stream && error == 0) {
      const ssize_t n = recv(socket.fd(), buffer, sizeof buffer, MSG_DONTWAIT);
      if (n < 0) {
        if (errno != EAGAIN && errno != EINTR) error = errno;
        return;
      }
      end_of_stream = n == 0;
      data.append(buffer, static_cast<size_t>(n));
    }
  }
};

class StackOnTap {
 public:
  StackOnTap() {
    enter_private_netns_or_skip();
    auto tap = TapDevice::open("tap0");
    REQUIRE_MESSAGE(tap, tap.error().message);
    tap_.emplace(std::move(*tap));
    auto netlink = Rtnetlink::open();
    REQUIRE(netlink);
    REQUIRE(netlink->add_ipv4_address("tap0", *Ipv4Interface::parse("198.18.0.1/24")));
    REQUIRE(netlink->set_link_up("tap0"));
    StackConfig config;
    config.mac = {{0x02, 0x00, 0xc6, 0x12, 0x00, 0x02}};
    config.ipv4 = *Ipv4Interface::parse("198.18.0.2/24");
    config.seed = 793;
    stack_ = std::make_unique<Stack>(config);
    auto loop = EventLoop::create(*tap_, *stack_);
    REQUIRE_MESSAGE(loop, loop.error().message);
    loop_ = std::move(*loop);
    stack_->start(monotonic_now());
  }

  Tcp& tcp() { return stack_->tcp(); }
  const Stack& stack() const { return *stack_; }
  Instant now() const { return monotonic_now(); }

  // Runs the loop on this thread until done() holds; false if the limit passes first.
  template <typename Done>
  bool pump_until(Done done, milliseconds limit = kStepLimit) {
    const auto deadline = steady_clock::now() + limit;
    while (!done()) {
      if (steady_clock::now() > deadline) return false;
      const Status status = loop_->run_once(Duration::milliseconds(5));
      REQUIRE_MESSAGE(status, status.error().message);
    }
    return true;
  }

  TcpState state(SocketId socket) {
    const auto info = tcp().info(socket);
    REQUIRE_MESSAGE(info, info.error().message);
    return info->state;
  }

  // Everything our socket receives until `size` bytes, the end of stream or an error.
  struct Received {
    std::string data;
    bool end_of_stream = false;
    int error = 0;
  };
  Received receive(SocketId socket, size_t size) {
    Received received;
    pump_until([&] {
      uint8_t buffer[4096];
      while (received.data.size() < size) {
        auto n = tcp().receive(socket, buffer, now());
        if (!n) {
          if (n.error().code != EAGAIN) received.error = n.error().code;
          return received.error != 0;
        }
        if (*n == 0) return received.end_of_stream = true;
        received.data.append(reinterpret_cast<const char*>(buffer), *n);
      }
      return true;
    });
    return received;
  }

  void send(SocketId socket, std::string_view text) {
    const auto sent = tcp().send(
        socket, ByteView(reinterpret_cast<const uint8_t*>(text.data()), text.size()), now());
    REQUIRE_MESSAGE(sent, sent.error().message);
    REQUIRE(*sent == text.size());
  }

  // Our connection to the kernel's listener, and the kernel's end of it.
  std::pair<SocketId, KernelSocket> connect_to_kernel() {
    auto listener = KernelSocket::listen(kKernelPort);
    REQUIRE_MESSAGE(listener, listener.error().message);
    auto socket = tcp().connect(kKernel, kKernelPort, now());
    REQUIRE_MESSAGE(socket, socket.error().message);
    std::optional<KernelSocket> accepted;
    REQUIRE(pump_until([&] {
      if (auto a = listener->accept(deadline_in(milliseconds(1)))) accepted.emplace(std::move(*a));
      return accepted && (tcp().events(*socket) & kConnected);
    }));
    return {*socket, std::move(*accepted)};
  }

  // The kernel's connection to our listener, and our end of it.
  std::pair<SocketId, KernelSocket> connect_from_kernel() {
    auto listener = tcp().listen(kStackPort, 8);
    REQUIRE_MESSAGE(listener, listener.error().message);
    auto kernel = KernelSocket::start_connect(*Ipv4Address::parse("198.18.0.2"), kStackPort);
    REQUIRE_MESSAGE(kernel, kernel.error().message);
    std::optional<SocketId> accepted;
    REQUIRE(pump_until([&] {
      if (auto a = tcp().accept(*listener)) accepted = *a;
      return accepted.has_value();
    }));
    return {*accepted, std::move(*kernel)};
  }

  // Reads on the kernel's side until its end of stream or an error.
  KernelReader kernel_read_to_end(const KernelSocket& kernel) {
    KernelReader reader;
    pump_until([&] {
      reader.poll(kernel);
      return reader.end_of_stream || reader.error != 0;
    });
    return reader;
  }

 private:
  std::optional<TapDevice> tap_;
  std::unique_ptr<Stack> stack_;
  std::unique_ptr<EventLoop> loop_;
};

void kernel_send(const KernelSocket& kernel, std::string_view text) {
  REQUIRE(::send(kernel.fd(), text.data(), text.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(text.size()));
}

TEST_CASE_FIXTURE(StackOnTap,
                  "the kernel closes first: end of stream, CLOSE-WAIT, LAST-ACK, CLOSED") {
  auto [socket, kernel] = connect_to_kernel();
  kernel_send(kernel, "from the kernel");
  REQUIRE(kernel.shutdown_write());

  const auto received = receive(socket, 1000);
  CHECK(received.data == "from the kernel");
  CHECK(received.end_of_stream);
  CHECK((tcp().events(socket) & kPeerClosed) != 0);
  CHECK(state(socket) == TcpState::CloseWait);

  send(socket, "our answer");
  REQUIRE(tcp().shutdown(socket, ShutdownHow::Write, now()));
  const KernelReader reader = kernel_read_to_end(kernel);
  CHECK(reader.data == "our answer");
  CHECK(reader.end_of_stream);
  CHECK(pump_until([&] { return (tcp().events(socket) & kClosed) != 0; }));
  CHECK(state(socket) == TcpState::Closed);
  CHECK((tcp().events(socket) & kError) == 0);
  CHECK(tcp().close(socket, now()));
  CHECK(tcp().connection_count() == 0);
}

TEST_CASE_FIXTURE(StackOnTap, "we close first: FIN-WAIT-2, then TIME-WAIT at the kernel's FIN") {
  auto [socket, kernel] = connect_to_kernel();
  send(socket, "from the stack");
  REQUIRE(tcp().shutdown(socket, ShutdownHow::Write, now()));

  const KernelReader reader = kernel_read_to_end(kernel);
  CHECK(reader.data == "from the stack");
  CHECK(reader.end_of_stream);
  CHECK(pump_until([&] { return state(socket) == TcpState::FinWait2; }));

  kernel_send(kernel, "the kernel's last words");
  kernel.close();
  const auto received = receive(socket, 1000);
  CHECK(received.data == "the kernel's last words");
  CHECK(received.end_of_stream);
  CHECK(state(socket) == TcpState::TimeWait);
  CHECK((tcp().events(socket) & kClosed) != 0);
}

TEST_CASE_FIXTURE(StackOnTap,
                  "the kernel resets (SO_LINGER 0): ECONNRESET, and the socket is dead") {
  auto [socket, kernel] = connect_to_kernel();
  REQUIRE(kernel.set_reset_on_close());
  kernel.close();

  CHECK(pump_until([&] { return (tcp().events(socket) & kError) != 0; }));
  const auto received = receive(socket, 1000);
  CHECK(received.error == ECONNRESET);
  CHECK(state(socket) == TcpState::Closed);
  CHECK(stack().counters()[Counter::TcpEstabResets] == 1);
  const auto sent = tcp().send(socket, ByteView(), now());
  CHECK_FALSE(sent);
}

TEST_CASE_FIXTURE(StackOnTap, "the kernel resets a connection we accepted: ECONNRESET") {
  auto [socket, kernel] = connect_from_kernel();
  kernel_send(kernel, "abc");
  REQUIRE(kernel.set_reset_on_close());
  kernel.close();
  const auto received = receive(socket, 1000);
  // The reset may overtake nothing: the bytes before it are readable, then the error.
  CHECK((received.data == "abc" || received.data.empty()));
  CHECK(received.error == ECONNRESET);
}

TEST_CASE_FIXTURE(StackOnTap, "a closed kernel port: ECONNREFUSED") {
  auto socket = tcp().connect(kKernel, kKernelPort + 1, now());
  REQUIRE(socket);
  CHECK(pump_until([&] { return (tcp().events(*socket) & kError) != 0; }));
  const auto received = receive(*socket, 1);
  CHECK(received.error == ECONNREFUSED);
  CHECK(stack().counters()[Counter::TcpAttemptFails] == 1);
}

TEST_CASE_FIXTURE(StackOnTap, "we abort: the kernel's read fails with ECONNRESET") {
  auto [socket, kernel] = connect_to_kernel();
  REQUIRE(tcp().abort(socket, now()));
  const KernelReader reader = kernel_read_to_end(kernel);
  CHECK(reader.error == ECONNRESET);
  CHECK(stack().counters()[Counter::TcpOutRsts] == 1);
}

TEST_CASE_FIXTURE(StackOnTap,
                  "we close with unread data: a reset, as Linux does (RFC 2525 §2.17)") {
  auto [socket, kernel] = connect_to_kernel();
  kernel_send(kernel, "never read");
  REQUIRE(pump_until([&] { return (tcp().events(socket) & kReadable) != 0; }));
  REQUIRE(tcp().close(socket, now()));
  const KernelReader reader = kernel_read_to_end(kernel);
  CHECK(reader.error == ECONNRESET);
  CHECK(stack().counters()[Counter::TcpExtTCPAbortOnClose] == 1);
}

TEST_CASE_FIXTURE(StackOnTap, "a kernel client: data both ways, it closes first, we close after") {
  auto [socket, kernel] = connect_from_kernel();
  kernel_send(kernel, "request");
  REQUIRE(kernel.shutdown_write());
  const auto received = receive(socket, 1000);
  CHECK(received.data == "request");
  CHECK(received.end_of_stream);
  send(socket, "response");
  REQUIRE(tcp().close(socket, now()));
  const KernelReader reader = kernel_read_to_end(kernel);
  CHECK(reader.data == "response");
  CHECK(reader.end_of_stream);
  CHECK(pump_until([&] { return tcp().connection_count() == 1; }));  // the listener alone
}

}  // namespace
}  // namespace tapstack::testing
