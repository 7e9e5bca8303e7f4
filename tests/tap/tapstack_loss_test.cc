// `tapstack serve` and `tapstack connect` with 5 % of the TCP packets lost each way between the
// kernel and the stack (nftables in a bridge the test's namespace forwards through, see
// BridgedPeer): byte-exact all the same. At this loss rate both sides spend much of the time
// in retransmission timeouts, so the default size keeps the run short;
// TAPSTACK_LOSS_MIB=64 (bazel test --test_env=...) runs the full 64 MiB.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdlib>
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

constexpr int kLossPercent = 5;
constexpr uint64_t kDefaultMiB = 1;
constexpr milliseconds kTransferLimit{600'000};

uint64_t transfer_size() {
  const char* text = std::getenv("TAPSTACK_LOSS_MIB");
  const uint64_t mib = text ? std::strtoull(text, nullptr, 10) : 0;
  return (mib > 0 && mib <= 1024 ? mib : kDefaultMiB) << 20;
}

double seconds_since(steady_clock::time_point start) {
  return std::chrono::duration<double>(steady_clock::now() - start).count();
}

BridgedPeer lossy_peer() {
  auto peer = BridgedPeer::create(kLossPercent);
  REQUIRE_MESSAGE(peer, peer.error().message);
  return std::move(*peer);
}

void report_counters(const std::string& stats) {
  MESSAGE(fmt::format(
      "stack: {} segments in, {} out, {} retransmitted ({} timeouts, {} fast), "
      "{} out of order",
      stats_counter(stats, "TcpInSegs").value_or(0), stats_counter(stats, "TcpOutSegs").value_or(0),
      stats_counter(stats, "TcpRetransSegs").value_or(0),
      stats_counter(stats, "TcpExtTCPTimeouts").value_or(0),
      stats_counter(stats, "TcpExtTCPFastRetrans").value_or(0),
      stats_counter(stats, "TcpExtTCPOFOQueue").value_or(0)));
}

TEST_CASE("5 % loss: a kernel client's data reaches serve --output byte-exact") {
  enter_private_netns_or_skip();
  const BridgedPeer peer = lossy_peer();
  const uint64_t size = transfer_size();
  const std::string output = temporary_path("loss_serve.out");
  const std::string stats = temporary_path("loss_serve.json");
  auto serve = start_serve({"--port", "5000", "--once", "--output", output, "--stats", stats},
                           HostSide::Bridged);
  REQUIRE_MESSAGE(serve, serve.error().message);
  // The handshake may lose packets too: the kernel sends its SYN again after a second.
  auto socket = peer.within(
      [] { return KernelSocket::connect(kStackAddress, 5000, deadline_in(milliseconds(20'000))); });
  REQUIRE_MESSAGE(socket, socket.error().message);
  REQUIRE(socket->set_congestion_control("cubic"));

  const auto start = steady_clock::now();
  const Transfer transfer =
      exchange(*socket, {.seed = 21, .size = size}, deadline_in(kTransferLimit));
  MESSAGE(fmt::format("kernel → serve, {} MiB at {} % loss each way: {:.2f} s", size >> 20,
                      kLossPercent, seconds_since(start)));
  CHECK(transfer.ok());
  CHECK(transfer.sent == size);

  const ProcessResult result = serve->wait(milliseconds(60'000));
  CAPTURE(result.err);
  CHECK(result.describe() == "exit 0");
  const auto written = summarize_file(output);
  REQUIRE_MESSAGE(written, written.error().message);
  CHECK(written->size == size);
  CHECK(hex(written->digest) == hex(pattern_digest(21, size)));
  report_counters(stats);
  // The loss was real: segments arrived beyond holes.
  CHECK(stats_counter(stats, "TcpExtTCPOFOQueue").value_or(0) > 0);
}

TEST_CASE("5 % loss: connect and a kernel server exchange data both ways byte-exact") {
  enter_private_netns_or_skip();
  const BridgedPeer peer = lossy_peer();
  const uint64_t size = transfer_size();
  const std::string input = temporary_path("loss_connect.in");
  const std::string output = temporary_path("loss_connect.out");
  const std::string stats = temporary_path("loss_connect.json");
  REQUIRE(write_pattern_file(input, 22, size));
  KernelServer server = peer.within([size] {
    return KernelServer(5001, deadline_in(kTransferLimit), [size](KernelSocket& connection) {
      connection.set_congestion_control("cubic");
      return exchange(connection, {.seed = 23, .size = size}, deadline_in(kTransferLimit));
    });
  });

  const auto start = steady_clock::now();
  const ProcessResult result = run_process(
      tapstack_command(
          "connect",
          {"--to", "198.18.0.1:5001", "--input", input, "--output", output, "--stats", stats},
          HostSide::Bridged),
      kTransferLimit + milliseconds(30'000));
  MESSAGE(fmt::format("connect ⇄ kernel, {} MiB each way at {} % loss each way: {:.2f} s",
                      size >> 20, kLossPercent, seconds_since(start)));
  CAPTURE(result.err);
  CHECK(result.describe() == "exit 0");

  const Transfer kernel = server.join();
  CHECK(kernel.ok());
  CHECK(kernel.received == size);
  CHECK(hex(kernel.received_digest) == hex(pattern_digest(22, size)));
  const auto written = summarize_file(output);
  REQUIRE_MESSAGE(written, written.error().message);
  CHECK(written->size == size);
  CHECK(hex(written->digest) == hex(pattern_digest(23, size)));
  report_counters(stats);
  CHECK(stats_counter(stats, "TcpRetransSegs").value_or(0) > 0);
  CHECK(stats_counter(stats, "TcpExtTCPOFOQueue").value_or(0) > 0);
}

// Over IPv6 (a dual-stack stack, connections to 2001:db8::1 and ::2), at 2 % loss each way,
// with the TAP's offloads (TSO6, checksum) and without.
constexpr int kLossPercent6 = 2;

TEST_CASE("IPv6, 2 % loss: a kernel client's data reaches serve byte-exact, with and without "
          "offloads") {
  for (const bool offloads : {true, false}) {
    CAPTURE(offloads);
    enter_private_netns_or_skip();
    auto created = BridgedPeer::create(kLossPercent6);
    REQUIRE_MESSAGE(created, created.error().message);
    const BridgedPeer& peer = *created;
    const uint64_t size = transfer_size();
    const std::string output = temporary_path("loss6_serve.out");
    const std::string stats = temporary_path("loss6_serve.json");
    std::vector<std::string> options = {"--addr", "2001:db8::2/64", "--port",  "5000",
                                        "--once", "--output",       output,    "--stats",
                                        stats};
    if (!offloads) options.push_back("--no-offloads");
    auto serve = start_serve(options, HostSide::Bridged);
    REQUIRE_MESSAGE(serve, serve.error().message);
    auto socket = peer.within([] {
      return KernelSocket::connect(*IpAddress::parse("2001:db8::2"), 5000,
                                   deadline_in(milliseconds(20'000)));
    });
    REQUIRE_MESSAGE(socket, socket.error().message);
    REQUIRE(socket->set_congestion_control("cubic"));
    const auto start = steady_clock::now();
    const Transfer transfer =
        exchange(*socket, {.seed = 61, .size = size}, deadline_in(kTransferLimit));
    MESSAGE(fmt::format("kernel → serve over IPv6{}, {} MiB at {} % loss each way: {:.2f} s",
                        offloads ? "" : " (--no-offloads)", size >> 20, kLossPercent6,
                        seconds_since(start)));
    CHECK(transfer.ok());
    CHECK(transfer.sent == size);
    const ProcessResult result = serve->wait(milliseconds(60'000));
    CAPTURE(result.err);
    CHECK(result.describe() == "exit 0");
    const auto written = summarize_file(output);
    REQUIRE_MESSAGE(written, written.error().message);
    CHECK(written->size == size);
    CHECK(hex(written->digest) == hex(pattern_digest(61, size)));
    report_counters(stats);
    CHECK(stats_counter(stats, "Ip6InDelivers").value_or(0) > size / 1440);
    CHECK(stats_counter(stats, "TcpExtTCPOFOQueue").value_or(0) > 0);
  }
}

TEST_CASE("IPv6, 2 % loss: connect and a kernel server exchange data both ways byte-exact") {
  for (const bool offloads : {true, false}) {
    CAPTURE(offloads);
    enter_private_netns_or_skip();
    auto created = BridgedPeer::create(kLossPercent6);
    REQUIRE_MESSAGE(created, created.error().message);
    const BridgedPeer& peer = *created;
    const uint64_t size = transfer_size();
    const std::string input = temporary_path("loss6_connect.in");
    const std::string output = temporary_path("loss6_connect.out");
    const std::string stats = temporary_path("loss6_connect.json");
    REQUIRE(write_pattern_file(input, 62, size));
    KernelServer server = peer.within([size] {
      return KernelServer(5001, deadline_in(kTransferLimit), [size](KernelSocket& connection) {
        connection.set_congestion_control("cubic");
        return exchange(connection, {.seed = 63, .size = size}, deadline_in(kTransferLimit));
      });
    });
    std::vector<std::string> options = {"--addr",  "2001:db8::2/64", "--to",   "[2001:db8::1]:5001",
                                        "--input", input,            "--output", output,
                                        "--stats", stats};
    if (!offloads) options.push_back("--no-offloads");
    const auto start = steady_clock::now();
    const ProcessResult result =
        run_process(tapstack_command("connect", options, HostSide::Bridged),
                    kTransferLimit + milliseconds(30'000));
    MESSAGE(fmt::format("connect ⇄ kernel over IPv6{}, {} MiB each way at {} % loss: {:.2f} s",
                        offloads ? "" : " (--no-offloads)", size >> 20, kLossPercent6,
                        seconds_since(start)));
    CAPTURE(result.err);
    CHECK(result.describe() == "exit 0");
    const Transfer kernel = server.join();
    CHECK(kernel.ok());
    CHECK(kernel.received == size);
    CHECK(hex(kernel.received_digest) == hex(pattern_digest(62, size)));
    const auto written = summarize_file(output);
    REQUIRE_MESSAGE(written, written.error().message);
    CHECK(written->size == size);
    CHECK(hex(written->digest) == hex(pattern_digest(63, size)));
    report_counters(stats);
    CHECK(stats_counter(stats, "TcpRetransSegs").value_or(0) > 0);
  }
}

}  // namespace
}  // namespace tapstack::testing
