// `tapstack serve --md5` and `tapstack connect --md5` end to end against kernel sockets that
// set TCP_MD5SIG as the seed's server.c and client.c do (port 6666, key "12345"), in a private
// network namespace: the tap0 side is 198.18.0.1/24 (plus .3 and .4 for more clients), the
// stack 198.18.0.2/24. Matching keys carry data byte-exact both ways and move no counter on
// either side; keys that do not match keep the connection from forming, and the side that
// dropped counts it (ours in the --stats JSON and on stderr, the kernel's in /proc/net/netstat).
#include <doctest/doctest.h>

#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "tests/md5_kernel/kernel_side.h"
#include "tests/support/byte_pattern.h"
#include "tests/support/netns.h"
#include "tests/support/subprocess.h"
#include "tests/tap/tapstack_tcp.h"
#include "tests/tap/test_paths.h"

namespace tapstack::md5kernel {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;
using testing::ChildProcess;
using testing::ProcessOptions;
using testing::ProcessResult;
using testing::run_process;
using testing::start_serve;
using testing::stats_counter;
using testing::tapstack_command;
using testing::temporary_path;

constexpr Ipv4Address kKernel = Ipv4Address::from_octets(198, 18, 0, 1);
constexpr Ipv4Address kKernel3 = Ipv4Address::from_octets(198, 18, 0, 3);
constexpr Ipv4Address kKernel4 = Ipv4Address::from_octets(198, 18, 0, 4);
constexpr Ipv4Address kStack = Ipv4Address::from_octets(198, 18, 0, 2);
constexpr uint16_t kSeedPort = 6666;
constexpr const char* kSeedKey = "12345";
constexpr milliseconds kLimit{30'000};
constexpr size_t kPayload = 1 << 20;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_file(const std::string& path, const std::string& data) {
  std::ofstream(path, std::ios::binary) << data;
}

// Text and a pattern after it, so that a byte out of place shows.
std::string message(uint64_t seed) {
  std::string data = fmt::format("recv msg from client: seed {}\n", seed);
  std::vector<uint8_t> pattern(kPayload);
  testing::fill_pattern(seed, 0, pattern);
  data.append(pattern.begin(), pattern.end());
  return data;
}

bool wait_ready(int fd, short events, steady_clock::time_point deadline) {
  for (;;) {
    const auto left =
        std::chrono::duration_cast<milliseconds>(deadline - steady_clock::now()).count();
    if (left <= 0) return false;
    pollfd entry{fd, events, 0};
    if (::poll(&entry, 1, static_cast<int>(left)) > 0) return true;
  }
}

// On a non-blocking connected socket: sends `out` (then FIN) while reading until the peer's FIN.
// The bytes read, or nullopt on error or when the deadline passed.
std::optional<std::string> exchange(int fd, const std::string& out,
                                    steady_clock::time_point deadline) {
  std::string in;
  size_t sent = 0;
  bool shut = false;
  char buffer[65536];
  for (;;) {
    if (sent == out.size() && !shut) {
      ::shutdown(fd, SHUT_WR);
      shut = true;
    }
    short events = POLLIN;
    if (!shut) events |= POLLOUT;
    if (!wait_ready(fd, events, deadline)) return std::nullopt;
    if (!shut) {
      const ssize_t n = ::send(fd, out.data() + sent, out.size() - sent, MSG_DONTWAIT);
      if (n > 0) sent += static_cast<size_t>(n);
      if (n < 0 && errno != EAGAIN) return std::nullopt;
    }
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
    if (n == 0) {
      if (shut) return in;
      continue;  // cannot happen before our FIN in these tests: the peer reads all first
    }
    if (n > 0) in.append(buffer, static_cast<size_t>(n));
    if (n < 0 && errno != EAGAIN) return std::nullopt;
  }
}

// Waits for a non-blocking connect; 0, or the errno it failed with (ETIMEDOUT at the deadline).
int wait_connected(int fd, steady_clock::time_point deadline) {
  for (;;) {
    if (const auto result = connect_result(fd)) return *result;
    if (steady_clock::now() >= deadline) return ETIMEDOUT;
    std::this_thread::sleep_for(milliseconds(10));
  }
}

// The kernel side of tap0 gets .3 and .4 as well, for clients with keys of their own.
void add_kernel_addresses() {
  for (const char* address : {"198.18.0.3/24", "198.18.0.4/24"}) {
    const ProcessResult added =
        run_process({"/usr/sbin/ip", "addr", "add", address, "dev", "tap0"}, milliseconds(5000));
    REQUIRE_MESSAGE(added.exit_code == 0, added.err);
  }
}

uint64_t stats_value(const std::string& path, std::string_view name) {
  const auto value = stats_counter(path, name);
  REQUIRE_MESSAGE(value, fmt::format("{} missing from {}", name, path));
  return *value;
}

TEST_CASE("the seed's client.c (key 12345, port 6666) -> tapstack serve --md5 --mode print") {
  testing::enter_private_netns_or_skip();
  const std::string stats = temporary_path("serve_md5_stats.json");
  // To a file: the test reads the child's stdout pipe only at the end.
  const std::string output = temporary_path("serve_md5_out");
  auto serve = start_serve({"--port", "6666", "--md5", "198.18.0.1=12345", "--mode", "print",
                            "--once", "--stats", stats, "--output", output});
  REQUIRE_MESSAGE(static_cast<bool>(serve), (serve ? "" : serve.error().message));
  const Md5Counters kernel_before = kernel_md5_counters();

  const std::vector<PeerKey> keys = {{kStack, 32, kSeedKey}};
  auto client = value_or_throw(kernel_start_connect(kKernel, kStack, kSeedPort, keys), "connect");
  const auto deadline = steady_clock::now() + kLimit;
  REQUIRE(wait_connected(client.get(), deadline) == 0);
  const std::string sent = message(1);
  const auto reply = exchange(client.get(), sent, deadline);
  REQUIRE(reply);
  CHECK(reply->empty());  // print mode sends nothing back

  const ProcessResult result = serve->wait(kLimit);
  CAPTURE(result.err);
  CHECK(result.describe() == "exit 0");
  const std::string printed = read_file(output);
  CHECK(printed.size() == sent.size());
  CHECK(printed == sent);
  CHECK(result.err.find("TCP-MD5 key for 198.18.0.1") != std::string::npos);
  CHECK(result.err.find("failing RFC 2385") == std::string::npos);
  CHECK((kernel_md5_counters() - kernel_before).zero());
  for (const char* name :
       {"TcpExtTCPMD5NotFound", "TcpExtTCPMD5Unexpected", "TcpExtTCPMD5Failure"}) {
    CHECK(stats_value(stats, name) == 0);
  }
}

// A kernel server like the seed's server.c, with keys, on port 6666: accepts one connection,
// reads all, then sends reply and closes. What it received, or nullopt.
struct KernelServer {
  explicit KernelServer(std::vector<PeerKey> keys, std::string reply)
      // On any address, as the seed's server does: tap0 comes with tapstack.
      : listener(value_or_throw(kernel_listen(Ipv4Address{}, kSeedPort, keys), "listen")),
        thread([this, reply = std::move(reply)] {
          const auto deadline = steady_clock::now() + kLimit;
          if (!wait_ready(listener.get(), POLLIN, deadline)) return;
          Fd connection = try_accept(listener.get());
          if (connection.get() < 0) return;
          accepted = true;
          // Read all first, as the seed's server does, then answer.
          received = exchange_after_read(connection.get(), reply, deadline);
        }) {}
  ~KernelServer() {
    if (thread.joinable()) thread.join();
  }

  static std::optional<std::string> exchange_after_read(int fd, const std::string& reply,
                                                        steady_clock::time_point deadline) {
    std::string in;
    char buffer[65536];
    for (;;) {
      if (!wait_ready(fd, POLLIN, deadline)) return std::nullopt;
      const ssize_t n = ::recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
      if (n == 0) break;
      if (n > 0) in.append(buffer, static_cast<size_t>(n));
      if (n < 0 && errno != EAGAIN) return std::nullopt;
    }
    size_t sent = 0;
    while (sent < reply.size()) {
      if (!wait_ready(fd, POLLOUT, deadline)) return std::nullopt;
      const ssize_t n = ::send(fd, reply.data() + sent, reply.size() - sent, MSG_DONTWAIT);
      if (n < 0 && errno != EAGAIN) return std::nullopt;
      if (n > 0) sent += static_cast<size_t>(n);
    }
    return in;
  }

  Fd listener;
  bool accepted = false;
  std::optional<std::string> received;
  std::thread thread;
};

TEST_CASE("tapstack connect --md5 -> the seed's server.c, byte-exact both ways") {
  testing::enter_private_netns_or_skip();
  // The same key five ways: the seed's text; hex for a /24 prefix; a longer prefix winning
  // over a shorter one with another key; from a file only its owner may read, as the README
  // advises to keep it out of ps; from the environment.
  const std::string key_file = temporary_path("seed.key");
  write_file(key_file, "12345\n");
  REQUIRE(::chmod(key_file.c_str(), 0600) == 0);
  REQUIRE(::setenv("TAPSTACK_SEED_KEY", "hex:3132333435", 1) == 0);
  const std::vector<std::vector<std::string>> key_options = {
      {"--md5", "198.18.0.1=12345"},
      {"--md5", "198.18.0.0/24=hex:3132333435"},
      {"--md5", "198.18.0.0/16=wrong", "--md5", "198.18.0.0/25=12345"},
      {"--md5", "198.18.0.1=@" + key_file},
      {"--md5", "198.18.0.1=env:TAPSTACK_SEED_KEY"},
  };
  uint64_t seed = 10;
  for (const auto& keys : key_options) {
    CAPTURE(fmt::format("{}", fmt::join(keys, " ")));
    const std::string input = temporary_path("connect_md5_in");
    const std::string output = temporary_path("connect_md5_out");
    const std::string sent = message(++seed);
    const std::string reply = message(++seed);
    write_file(input, sent);
    const Md5Counters kernel_before = kernel_md5_counters();
    std::optional<ProcessResult> result;
    {
      KernelServer server({{kStack, 32, kSeedKey}}, reply);
      std::vector<std::string> options = {"--to", "198.18.0.1:6666", "--input", input,
                                          "--output", output};
      options.insert(options.end(), keys.begin(), keys.end());
      result = run_process(tapstack_command("connect", options), kLimit);
      server.thread.join();
      REQUIRE(server.received);
      CHECK(*server.received == sent);
    }
    CAPTURE(result->err);
    CHECK(result->describe() == "exit 0");
    CHECK(result->err.empty());
    CHECK(read_file(output) == reply);
    CHECK((kernel_md5_counters() - kernel_before).zero());
  }
}

TEST_CASE("keys that do not match: tapstack connect fails in one line, the kernel counts") {
  testing::enter_private_netns_or_skip();
  struct Case {
    std::string name;
    std::vector<PeerKey> kernel_keys;
    std::vector<std::string> our_keys;
    Md5Drop drop;
    bool hint;  // our SYNs were signed: the error line says a mismatch may be why
  };
  const std::vector<Case> cases = {
      {"our key is wrong", {{kStack, 32, kSeedKey}}, {"--md5", "198.18.0.1=54321"},
       Md5Drop::Failure, true},
      {"we have no key", {{kStack, 32, kSeedKey}}, {}, Md5Drop::NotFound, false},
      {"the kernel has no key", {}, {"--md5", "198.18.0.1=12345"}, Md5Drop::Unexpected, true},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    auto listener =
        value_or_throw(kernel_listen(Ipv4Address{}, kSeedPort, c.kernel_keys), "listen");
    const Md5Counters before = kernel_md5_counters();
    std::vector<std::string> options = {"--to", "198.18.0.1:6666", "--timeout", "2.5"};
    const auto started = steady_clock::now();
    options.insert(options.end(), c.our_keys.begin(), c.our_keys.end());
    ProcessOptions no_input{.stdin_path = "/dev/null"};
    const ProcessResult result =
        run_process(tapstack_command("connect", options), kLimit, no_input);
    CAPTURE(result.err);
    CHECK(result.describe() == "exit 1");
    CHECK(result.err.starts_with("tapstack: connecting to 198.18.0.1:6666 timed out"));
    CHECK((result.err.find("signed with --md5") != std::string::npos) == c.hint);
    CHECK(try_accept(listener.get()).get() < 0);  // the connection never formed
    const Md5Counters moved = kernel_md5_counters() - before;
    CAPTURE(moved.to_string());
    // The SYN and its retransmission at 1 s (RFC 6298 §2.1's initial RTO; the next would be at
    // 3 s): each dropped under the same counter, the others unmoved.
    const uint64_t dropped = std::max({moved.not_found, moved.unexpected, moved.failure});
    CHECK(moved == Md5Counters::only(c.drop, dropped));
    CHECK(dropped >= 1);
    CHECK(dropped <= 2);
    CHECK(steady_clock::now() - started < std::chrono::seconds(10));
  }
}

TEST_CASE("keys that do not match: tapstack serve drops, counts and says so on stderr") {
  testing::enter_private_netns_or_skip();
  const std::string stats = temporary_path("serve_mismatch_stats.json");
  // Keys for .1 and .3; none for .4.
  auto serve = start_serve({"--port", "6666", "--md5", "198.18.0.1=12345", "--md5",
                            "198.18.0.3=12345", "--mode", "discard", "--stats", stats});
  REQUIRE_MESSAGE(static_cast<bool>(serve), (serve ? "" : serve.error().message));
  add_kernel_addresses();
  const Md5Counters kernel_before = kernel_md5_counters();

  const std::vector<PeerKey> wrong = {{kStack, 32, "54321"}};
  const std::vector<PeerKey> right = {{kStack, 32, kSeedKey}};
  std::vector<Fd> clients;
  clients.push_back(value_or_throw(kernel_start_connect(kKernel, kStack, kSeedPort, wrong), "1"));
  clients.push_back(value_or_throw(kernel_start_connect(kKernel3, kStack, kSeedPort, {}), "3"));
  clients.push_back(value_or_throw(kernel_start_connect(kKernel4, kStack, kSeedPort, right), "4"));
  std::this_thread::sleep_for(milliseconds(2500));  // the SYN and its retransmission at 1 s
  for (const Fd& client : clients) CHECK_FALSE(connect_result(client.get()).has_value());
  clients.clear();  // closing a connect under way sends nothing

  serve->send_signal(SIGTERM);
  const ProcessResult result = serve->wait(kLimit);
  CAPTURE(result.err);
  CHECK(result.describe() == "exit 0");
  CHECK(result.err.find("connection 1") == std::string::npos);  // nothing was accepted
  for (const char* name :
       {"TcpExtTCPMD5NotFound", "TcpExtTCPMD5Unexpected", "TcpExtTCPMD5Failure"}) {
    CAPTURE(name);
    CHECK(stats_value(stats, name) >= 1);
    CHECK(result.err.find(fmt::format("({})", name)) != std::string::npos);
  }
  // Nothing was answered, so the kernel dropped nothing either.
  CHECK((kernel_md5_counters() - kernel_before).zero());
  CHECK(stats_value(stats, "TcpOutRsts") == 0);
  CHECK(stats_value(stats, "TcpPassiveOpens") == 0);
}

TEST_CASE("serve: SIGUSR1 writes --stats and SIGUSR2 prints the connection table, running on") {
  testing::enter_private_netns_or_skip();
  const std::string stats = temporary_path("serve_signal_stats.json");
  auto serve = start_serve({"--port", "6666", "--md5", "198.18.0.1=12345", "--mode", "discard",
                            "--stats", stats});
  REQUIRE_MESSAGE(static_cast<bool>(serve), (serve ? "" : serve.error().message));
  CHECK(read_file(stats).empty());  // written on request or at exit, not before

  const std::vector<PeerKey> keys = {{kStack, 32, kSeedKey}};
  auto client = value_or_throw(kernel_start_connect(kKernel, kStack, kSeedPort, keys), "connect");
  const auto deadline = steady_clock::now() + kLimit;
  REQUIRE(wait_connected(client.get(), deadline) == 0);
  REQUIRE(serve->wait_for_stderr("connection 1 from", kLimit));

  serve->send_signal(SIGUSR1);
  std::optional<uint64_t> opens;
  while (!(opens = stats_counter(stats, "TcpPassiveOpens")) && steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  CHECK(opens == 1u);

  serve->send_signal(SIGUSR2);
  REQUIRE(serve->wait_for_stderr("198.18.0.1:", kLimit));
  REQUIRE(serve->wait_for_stderr("md5:yes\n", kLimit));

  client = Fd();  // close: FIN
  serve->send_signal(SIGTERM);
  const ProcessResult result = serve->wait(kLimit);
  CAPTURE(result.err);
  CHECK(result.describe() == "exit 0");
  // The table: the listener, and the connection with its TCP internals.
  CHECK(result.err.find("State ") != std::string::npos);
  const size_t established = result.err.find("ESTABLISHED");
  REQUIRE(established != std::string::npos);
  const std::string row = result.err.substr(established, result.err.find('\n', established) -
                                                             established);
  CAPTURE(row);
  for (const char* field : {"198.18.0.2:6666", "198.18.0.1:", "rtt:", "rto:", "cwnd:",
                            "mss:1440", "md5:yes"}) {
    CHECK(row.find(field) != std::string::npos);
  }
  CHECK(result.err.find("LISTEN") != std::string::npos);
  CHECK(stats_value(stats, "TcpPassiveOpens") == 1);  // rewritten at exit, still valid JSON
}

}  // namespace
}  // namespace tapstack::md5kernel
