// `tapstack connect` end to end against kernel servers, in a private network namespace: 64 MiB
// each way at once, byte-exact; stdin to stdout through a kernel echo server; either side
// closing first; and the failures, each exit 1 with one line: refused, reset, no answer to
// SYN, --timeout, a reader of stdout that went away.
#include <doctest/doctest.h>

#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>
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
constexpr milliseconds kTransferLimit{60'000};
constexpr milliseconds kRunLimit{90'000};
// Well below the 64 MiB a program that slurped its input would hold. Under ASan freed memory
// waits in quarantine (256 MiB by default), and the resident set says nothing.
constexpr long kMaxResidentKiB = 40 << 10;
#ifdef __SANITIZE_ADDRESS__
constexpr bool kResidentSetMeansSomething = false;
#else
constexpr bool kResidentSetMeansSomething = true;
#endif

std::vector<std::string> connect_to(uint16_t port, std::vector<std::string> extra) {
  std::vector<std::string> options = {"--to", fmt::format("198.18.0.1:{}", port)};
  options.insert(options.end(), extra.begin(), extra.end());
  return tapstack_command("connect", options);
}

std::string pattern_file(const std::string& name, uint64_t seed, uint64_t size) {
  const std::string path = temporary_path(name);
  const Status written = write_pattern_file(path, seed, size);
  REQUIRE_MESSAGE(written, written.error().message);
  return path;
}

void check_one_error_line(const ProcessResult& result, std::string_view expected) {
  CAPTURE(result.err);
  CHECK(result.describe() == "exit 1");
  CHECK(result.err.starts_with("tapstack: "));
  CHECK(std::count(result.err.begin(), result.err.end(), '\n') == 1);
  CHECK(result.err.find(expected) != std::string::npos);
}

TEST_CASE("connect: 64 MiB each way at once with a kernel server, byte-exact") {
  enter_private_netns_or_skip();
  const std::string input = pattern_file("connect_in", 10, k64MiB);
  const std::string output = temporary_path("connect_out");
  KernelServer server(5001, deadline_in(kTransferLimit), [](KernelSocket& connection) {
    connection.set_congestion_control("cubic");
    return exchange(connection, {.seed = 11, .size = k64MiB}, deadline_in(kTransferLimit));
  });

  const auto start = steady_clock::now();
  const ProcessResult result =
      run_process(connect_to(5001, {"--input", input, "--output", output}), kRunLimit);
  MESSAGE(fmt::format("connect ⇄ kernel: 64 MiB each way in {:.2f} s",
                      std::chrono::duration<double>(steady_clock::now() - start).count()));
  CAPTURE(result.err);
  CHECK(result.describe() == "exit 0");
  CHECK(result.err.empty());
  CHECK(result.out.empty());

  // Streamed, not slurped: the largest child so far (tapstack) never held the 64 MiB.
  rusage children{};
  getrusage(RUSAGE_CHILDREN, &children);
  MESSAGE(fmt::format("largest resident set of a child: {} MiB", children.ru_maxrss >> 10));
  if (kResidentSetMeansSomething) CHECK(children.ru_maxrss < kMaxResidentKiB);

  const Transfer kernel = server.join();
  CHECK(kernel.ok());
  CHECK(kernel.sent == k64MiB);
  CHECK(kernel.received == k64MiB);
  CHECK(hex(kernel.received_digest) == hex(pattern_digest(10, k64MiB)));
  const auto written = summarize_file(output);
  REQUIRE_MESSAGE(written, written.error().message);
  CHECK(written->size == k64MiB);
  CHECK(hex(written->digest) == hex(pattern_digest(11, k64MiB)));
}

TEST_CASE("connect: stdin through a kernel echo server to stdout") {
  enter_private_netns_or_skip();
  const std::string input = pattern_file("echo_in", 12, 300'000);
  KernelServer server(7, deadline_in(kTransferLimit), [](KernelSocket& connection) {
    return echo(connection, deadline_in(kTransferLimit));
  });
  ProcessOptions options;
  options.stdin_path = input;
  const ProcessResult result = run_process(connect_to(7, {}), kRunLimit, options);
  CAPTURE(result.err);
  CHECK(result.describe() == "exit 0");
  CHECK(server.join().ok());
  std::vector<uint8_t> expected(300'000);
  fill_pattern(12, 0, expected);
  CHECK(result.out.size() == expected.size());
  CHECK(result.out == std::string(expected.begin(), expected.end()));
}

TEST_CASE("connect: 8 MiB from a pipe on stdin, through a kernel echo server, to a file") {
  enter_private_netns_or_skip();
  constexpr uint64_t kSize = 8 << 20;
  const std::string input = pattern_file("pipe_in", 17, kSize);
  const std::string output = temporary_path("pipe_out");
  KernelServer server(7, deadline_in(kTransferLimit), [](KernelSocket& connection) {
    return echo(connection, deadline_in(kTransferLimit));
  });
  // A pipe is never ready as a file is: the input is read as it comes, between turns.
  const ProcessResult result = run_process({"/bin/bash", "-c",
                                            fmt::format("cat '{}' | {} --output '{}'", input,
                                                        fmt::join(connect_to(7, {}), " "), output)},
                                           kRunLimit);
  CAPTURE(result.err);
  CHECK(result.describe() == "exit 0");
  CHECK(server.join().ok());
  const auto written = summarize_file(output);
  REQUIRE_MESSAGE(written, written.error().message);
  CHECK(written->size == kSize);
  CHECK(hex(written->digest) == hex(pattern_digest(17, kSize)));
}

TEST_CASE("connect: the kernel closes first; what it sent arrives, exit 0") {
  enter_private_netns_or_skip();
  // 1 MiB is more than the kernel's receive buffer and our send buffer hold, so our FIN
  // cannot leave before the kernel starts reading, well after its own FIN.
  const std::string input = pattern_file("closes_first_in", 13, 1 << 20);
  KernelServer server(5002, deadline_in(kTransferLimit), [](KernelSocket& connection) {
    const char hello[] = "the kernel says goodbye first\n";
    send(connection.fd(), hello, sizeof hello - 1, MSG_NOSIGNAL);
    connection.shutdown_write();
    std::this_thread::sleep_for(milliseconds(300));
    return exchange(connection, {}, deadline_in(kTransferLimit));
  });
  const ProcessResult result = run_process(connect_to(5002, {"--input", input}), kRunLimit);
  CAPTURE(result.err);
  CHECK(result.describe() == "exit 0");
  CHECK(result.out == "the kernel says goodbye first\n");
  const Transfer kernel = server.join();
  CHECK(kernel.ok());
  CHECK(kernel.received == 1 << 20);
  CHECK(hex(kernel.received_digest) == hex(pattern_digest(13, 1 << 20)));
}

TEST_CASE("connect: we close first; the kernel answers after our FIN, exit 0") {
  enter_private_netns_or_skip();
  const std::string input = pattern_file("we_close_first_in", 14, 5000);
  KernelServer server(5003, deadline_in(kTransferLimit), [](KernelSocket& connection) {
    // Read to the end of our stream first, then answer and close.
    std::string received;
    char buffer[4096];
    for (ssize_t n; (n = recv(connection.fd(), buffer, sizeof buffer, 0)) != 0;) {
      if (n < 0 && errno != EAGAIN && errno != EINTR) return Transfer{.error = errno};
      if (n < 0) std::this_thread::sleep_for(milliseconds(1));
      if (n > 0) received.append(buffer, static_cast<size_t>(n));
    }
    const std::string answer = fmt::format("got {} bytes\n", received.size());
    send(connection.fd(), answer.data(), answer.size(), MSG_NOSIGNAL);
    return Transfer{.received = received.size()};
  });
  const ProcessResult result = run_process(connect_to(5003, {"--input", input}), kRunLimit);
  CAPTURE(result.err);
  CHECK(result.describe() == "exit 0");
  CHECK(result.out == "got 5000 bytes\n");
  CHECK(server.join().ok());
}

TEST_CASE("connect: a closed port is refused: exit 1, one line") {
  enter_private_netns_or_skip();
  const ProcessResult result = run_process(connect_to(5004, {"--input", "/dev/null"}), kRunLimit);
  check_one_error_line(result, "connection to 198.18.0.1:5004 refused");
}

TEST_CASE("connect: the kernel resets (SO_LINGER 0): exit 1, one line") {
  enter_private_netns_or_skip();
  const std::string input = pattern_file("reset_in", 15, 1 << 20);
  KernelServer server(5005, deadline_in(kTransferLimit), [](KernelSocket& connection) {
    connection.set_reset_on_close();
    char buffer[1000];
    recv(connection.fd(), buffer, sizeof buffer, 0);
    return Transfer{};  // the connection closes here, with a reset
  });
  const ProcessResult result = run_process(connect_to(5005, {"--input", input}), kRunLimit);
  check_one_error_line(result, "connection to 198.18.0.1:5005 reset by peer");
  server.join();
}

TEST_CASE("connect: no answer to SYN (no such host): exit 1 after --timeout") {
  enter_private_netns_or_skip();
  const auto start = steady_clock::now();
  const ProcessResult result = run_process(
      tapstack_command("connect", {"--to", "198.18.0.9:5000", "--timeout", "1.5"}), kRunLimit);
  const double elapsed = std::chrono::duration<double>(steady_clock::now() - start).count();
  check_one_error_line(result, "connecting to 198.18.0.9:5000 timed out after 1.5 s");
  CHECK(elapsed >= 1.5);
  CHECK(elapsed < 10);
}

TEST_CASE("connect: no such host on the link: ARP fails in about 3 s, exit 1 (EHOSTUNREACH)") {
  enter_private_netns_or_skip();
  const auto start = steady_clock::now();
  const ProcessResult result = run_process(
      tapstack_command("connect", {"--to", "198.18.0.9:5000"}, HostSide::Configured), kRunLimit,
      ProcessOptions{.stdin_path = "/dev/null"});
  const double elapsed = std::chrono::duration<double>(steady_clock::now() - start).count();
  check_one_error_line(result, "cannot reach 198.18.0.9:5000: no answer to ARP");
  CHECK(elapsed >= 2);
  CHECK(elapsed < 15);  // well before the 30 s handshake limit
}

TEST_CASE("connect: a peer that never closes runs into --timeout: exit 1, one line") {
  enter_private_netns_or_skip();
  KernelServer server(5006, deadline_in(kTransferLimit), [](KernelSocket&) {
    // Holds the connection open, sending nothing and never closing, until the client gave up.
    std::this_thread::sleep_for(milliseconds(3000));
    return Transfer{};
  });
  const ProcessResult result =
      run_process(connect_to(5006, {"--input", "/dev/null", "--timeout", "1"}), kRunLimit);
  check_one_error_line(result, "did not finish within --timeout 1 s");
  server.join();
}

TEST_CASE("connect: a reader of stdout that goes away is reported (no death by SIGPIPE)") {
  enter_private_netns_or_skip();
  KernelServer server(5007, deadline_in(kTransferLimit), [](KernelSocket& connection) {
    return exchange(connection, {.seed = 16, .size = 8 << 20}, deadline_in(kTransferLimit));
  });
  std::string command;
  for (const std::string& word : connect_to(5007, {"--input", "/dev/null"})) {
    command += fmt::format("'{}' ", word);
  }
  const ProcessResult result = run_process(
      {"/bin/bash", "-c", command + "| head -c 1000 >/dev/null; exit ${PIPESTATUS[0]}"}, kRunLimit);
  check_one_error_line(result, "writing stdout: Broken pipe");
  // Our reset reaches the kernel in CLOSE-WAIT (we sent FIN at once): Linux reports EPIPE
  // there, ECONNRESET in ESTABLISHED (tcp_reset()).
  const int kernel_error = server.join().error;
  CHECK((kernel_error == EPIPE || kernel_error == ECONNRESET));
}

}  // namespace
}  // namespace tapstack::testing
