// `tapstack serve` end to end against kernel clients, in a private network namespace: 64 MiB
// byte-exact into a file, print to stdout, discard, 200 concurrent echo connections, a peer
// that resets, and SIGTERM with connections open; and over a multi-queue TAP (--tap-queues 2),
// one connection of 16 MiB and 50 concurrent echo connections.
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/socket.h>

#include <chrono>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "tests/support/byte_pattern.h"
#include "tests/support/kernel_socket.h"
#include "tests/support/netns.h"
#include "tests/support/subprocess.h"
#include "tests/tap/tapstack_tcp.h"
#include "tests/tap/test_paths.h"

namespace tapstack::testing {
namespace {

using std::chrono::steady_clock;

constexpr uint64_t k64MiB = uint64_t{64} << 20;
constexpr milliseconds kConnectLimit{10'000};
constexpr milliseconds kTransferLimit{60'000};
constexpr milliseconds kExitLimit{10'000};

double seconds_since(steady_clock::time_point start) {
  return std::chrono::duration<double>(steady_clock::now() - start).count();
}

KernelSocket connect_to_serve(uint16_t port) {
  auto socket = KernelSocket::connect(kStackAddress, port, deadline_in(kConnectLimit));
  REQUIRE_MESSAGE(socket, socket.error().message);
  return std::move(*socket);
}

// How many transfers came back whole: all sent, all echoed, the digest right; each one that
// did not is a failed check with its index and error.
size_t count_echoed(const std::vector<Transfer>& transfers, const std::vector<Outgoing>& outgoing) {
  size_t exact = 0;
  for (size_t i = 0; i < transfers.size(); ++i) {
    const Transfer& t = transfers[i];
    CAPTURE(i);
    CAPTURE(t.error);
    CAPTURE(t.timed_out);
    const bool echoed = t.ok() && t.sent == outgoing[i].size && t.received == outgoing[i].size &&
                        t.received_digest == pattern_digest(outgoing[i].seed, outgoing[i].size);
    CHECK(echoed);
    exact += echoed;
  }
  return exact;
}

TEST_CASE("serve --once --output: 64 MiB from a kernel client arrive byte-exact") {
  enter_private_netns_or_skip();
  const std::string output = temporary_path("serve_64mib.out");
  auto serve = start_serve({"--port", "5000", "--once", "--output", output});
  REQUIRE_MESSAGE(serve, serve.error().message);

  KernelSocket socket = connect_to_serve(5000);
  REQUIRE(socket.set_congestion_control("cubic"));
  const auto start = steady_clock::now();
  const Transfer transfer =
      exchange(socket, {.seed = 1, .size = k64MiB}, deadline_in(kTransferLimit));
  MESSAGE(fmt::format("kernel → serve: 64 MiB in {:.2f} s", seconds_since(start)));
  CHECK(transfer.ok());
  CHECK(transfer.sent == k64MiB);
  CHECK(transfer.received == 0);  // print mode sends nothing back, then closes

  const ProcessResult result = serve->wait(kExitLimit);
  CAPTURE(result.err);
  CHECK(result.describe() == "exit 0");
  CHECK(result.out.empty());
  CHECK(count_lines_with(result.err, "connection 1 from 198.18.0.1:") == 2);
  CHECK(count_lines_with(result.err, "opened") == 1);
  CHECK(count_lines_with(result.err, "closed: 67108864 bytes in, 0 bytes out") == 1);

  const auto written = summarize_file(output);
  REQUIRE_MESSAGE(written, written.error().message);
  CHECK(written->size == k64MiB);
  CHECK(hex(written->digest) == hex(pattern_digest(1, k64MiB)));
}

TEST_CASE("serve prints to stdout by default, and logs on stderr") {
  enter_private_netns_or_skip();
  auto serve = start_serve({"--port", "7", "--once"});
  REQUIRE_MESSAGE(serve, serve.error().message);
  KernelSocket socket = connect_to_serve(7);
  const Transfer transfer =
      exchange(socket, {.seed = 2, .size = 1000}, deadline_in(kTransferLimit));
  CHECK(transfer.ok());

  const ProcessResult result = serve->wait(kExitLimit);
  CHECK(result.describe() == "exit 0");
  std::vector<uint8_t> expected(1000);
  fill_pattern(2, 0, expected);
  CHECK(result.out == std::string(expected.begin(), expected.end()));
  CHECK(result.err.find("closed: 1000 bytes in, 0 bytes out") != std::string::npos);
}

TEST_CASE("serve --mode discard counts and writes nothing") {
  enter_private_netns_or_skip();
  auto serve = start_serve({"--port", "9", "--mode", "discard", "--once"});
  REQUIRE_MESSAGE(serve, serve.error().message);
  KernelSocket socket = connect_to_serve(9);
  const Transfer transfer =
      exchange(socket, {.seed = 3, .size = 3 << 20}, deadline_in(kTransferLimit));
  CHECK(transfer.ok());
  CHECK(transfer.received == 0);

  const ProcessResult result = serve->wait(kExitLimit);
  CHECK(result.describe() == "exit 0");
  CHECK(result.out.empty());
  CHECK(result.err.find("closed: 3145728 bytes in, 0 bytes out") != std::string::npos);
}

TEST_CASE("serve --mode echo: 200 concurrent kernel connections, each echoed byte-exact") {
  enter_private_netns_or_skip();
  constexpr size_t kConnections = 200;
  auto serve = start_serve({"--port", "7", "--mode", "echo"});
  REQUIRE_MESSAGE(serve, serve.error().message);

  std::vector<KernelSocket> sockets;
  std::vector<Outgoing> outgoing;
  for (size_t i = 0; i < kConnections; ++i) {
    auto socket = KernelSocket::start_connect(kStackAddress, 7);
    REQUIRE_MESSAGE(socket, socket.error().message);
    sockets.push_back(std::move(*socket));
    outgoing.push_back({.seed = 100 + i, .size = 2048 + 37 * i});  // 2 to 9 KiB
  }
  const auto start = steady_clock::now();
  const std::vector<Transfer> transfers =
      exchange_all(sockets, outgoing, deadline_in(kTransferLimit));
  MESSAGE(fmt::format("{} echo connections in {:.2f} s", kConnections, seconds_since(start)));
  CHECK(count_echoed(transfers, outgoing) == kConnections);

  // Every connection is closed on our side too before serve is stopped: the kernel has our
  // FIN when its exchange ends, but serve reports a close once our end is gone, after the
  // kernel's ACK of that FIN arrived; a SIGTERM before that finds it open and resets it.
  CHECK(serve->wait_for_stderr(" closed: ", kConnections, kExitLimit));
  serve->send_signal(SIGTERM);
  const ProcessResult result = serve->wait(kExitLimit);
  CHECK(result.describe() == "exit 0");
  CHECK(count_lines_with(result.err, " opened") == kConnections);
  CHECK(count_lines_with(result.err, " closed: ") == kConnections);
  CHECK(count_lines_with(result.err, "aborted") == 0);
  CHECK(result.err.find("stopped by SIGTERM") != std::string::npos);
  CHECK(result.err.find(fmt::format("{} connections", kConnections)) != std::string::npos);
}

TEST_CASE("serve --tap-queues 2: one kernel connection byte-exact, then 50 echoed at once") {
  enter_private_netns_or_skip();
  constexpr uint64_t k16MiB = uint64_t{16} << 20;
  constexpr size_t kConnections = 50;
  auto serve = start_serve({"--port", "5000", "--mode", "echo", "--tap-queues", "2"});
  REQUIRE_MESSAGE(serve, serve.error().message);

  {
    KernelSocket socket = connect_to_serve(5000);
    REQUIRE(socket.set_congestion_control("cubic"));
    const Transfer transfer =
        exchange(socket, {.seed = 7, .size = k16MiB}, deadline_in(kTransferLimit));
    CHECK(transfer.ok());
    CHECK(transfer.received == k16MiB);
    CHECK(transfer.received_digest == pattern_digest(7, k16MiB));
  }
  // Many flows: the stack's frames spread over both queues and their threads, the kernel's
  // over both by its own hash, and every connection still gets its bytes whole and in order.
  std::vector<KernelSocket> sockets;
  std::vector<Outgoing> outgoing;
  for (size_t i = 0; i < kConnections; ++i) {
    auto socket = KernelSocket::start_connect(kStackAddress, 5000);
    REQUIRE_MESSAGE(socket, socket.error().message);
    sockets.push_back(std::move(*socket));
    outgoing.push_back({.seed = 200 + i, .size = 65536 + 1021 * i});
  }
  const std::vector<Transfer> transfers =
      exchange_all(sockets, outgoing, deadline_in(kTransferLimit));
  CHECK(count_echoed(transfers, outgoing) == kConnections);

  serve->send_signal(SIGTERM);
  const ProcessResult result = serve->wait(kExitLimit);
  CAPTURE(result.err);
  CHECK(result.describe() == "exit 0");
  CHECK(result.err.find("(MTU 1500, 2 queues)") != std::string::npos);
  CHECK(count_lines_with(result.err, " closed: ") == kConnections + 1);
  CHECK(count_lines_with(result.err, "aborted") == 0);
  CHECK(result.err.find("dropped (TAP queue full)") == std::string::npos);
}

TEST_CASE("serve --once: a peer that resets is reported, and the exit is 1") {
  enter_private_netns_or_skip();
  auto serve = start_serve({"--port", "5000", "--once", "--mode", "discard"});
  REQUIRE_MESSAGE(serve, serve.error().message);
  KernelSocket socket = connect_to_serve(5000);
  REQUIRE(socket.set_reset_on_close());
  REQUIRE(send(socket.fd(), "abc", 3, MSG_NOSIGNAL) == 3);
  REQUIRE(serve->wait_for_stderr("opened", kConnectLimit));
  socket.close();

  const ProcessResult result = serve->wait(kExitLimit);
  CAPTURE(result.err);
  CHECK(result.describe() == "exit 1");
  CHECK(count_lines_with(result.err, "connection 1 from 198.18.0.1:") == 2);
  CHECK(result.err.find("reset by peer") != std::string::npos);
}

TEST_CASE("serve --mode echo: a peer that never reads, then resets, is retired") {
  enter_private_netns_or_skip();
  auto serve = start_serve({"--port", "7", "--mode", "echo", "--once"});
  REQUIRE_MESSAGE(serve, serve.error().message);
  KernelSocket socket = connect_to_serve(7);
  // Send until every buffer on the way is full: the echo has nowhere to go, so serve stops
  // reading too, and only the reset can tell it the connection is over.
  const std::vector<uint8_t> chunk(64 * 1024, 0x77);
  uint64_t sent = 0;
  for (const auto until = steady_clock::now() + milliseconds(1'000); steady_clock::now() < until;) {
    const ssize_t n = send(socket.fd(), chunk.data(), chunk.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) sent += static_cast<uint64_t>(n);
  }
  CHECK(sent < uint64_t{64} << 20);  // it did get stuck
  REQUIRE(socket.set_reset_on_close());
  socket.close();

  const ProcessResult result = serve->wait(kExitLimit);
  CAPTURE(result.err);
  CHECK(result.describe() == "exit 1");
  CHECK(result.err.find("connection 1 from 198.18.0.1:") != std::string::npos);
  CHECK(result.err.find("reset by peer") != std::string::npos);
}

TEST_CASE("serve stopped by SIGTERM resets the connections still open, exit 0") {
  enter_private_netns_or_skip();
  auto serve = start_serve({"--port", "5000"});
  REQUIRE_MESSAGE(serve, serve.error().message);
  KernelSocket socket = connect_to_serve(5000);
  REQUIRE(serve->wait_for_stderr("opened", kConnectLimit));
  serve->send_signal(SIGTERM);

  // The reset reaches the kernel before the TAP goes away with the process.
  const Transfer transfer = exchange(socket, {.seed = 4, .size = 0}, deadline_in(kExitLimit));
  CHECK(transfer.error == ECONNRESET);
  const ProcessResult result = serve->wait(kExitLimit);
  CHECK(result.describe() == "exit 0");
  CHECK(result.err.find("connection 1 from 198.18.0.1:") != std::string::npos);
  CHECK(result.err.find("aborted: 0 bytes in, 0 bytes out") != std::string::npos);
}

}  // namespace
}  // namespace tapstack::testing
