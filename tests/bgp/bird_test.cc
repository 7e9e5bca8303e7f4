// `tapstack bgp` against BIRD 2 over TCP-MD5, in the test's private network namespace: BIRD
// runs on the kernel side of tap0 (198.18.0.1, AS 65001) and signs with the kernel's
// TCP_MD5SIG (`password`); tapstack is 198.18.0.2, AS 65002, signing in userspace. BIRD has
// no kernel protocol: it never touches a routing table, and dies with the namespace's test.
#include <doctest/doctest.h>

#include <signal.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "tests/md5_kernel/kernel_side.h"
#include "tests/support/netns.h"
#include "tests/support/subprocess.h"
#include "tests/tap/tapstack_tcp.h"
#include "tests/tap/test_paths.h"

namespace tapstack::bgp {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;
using tapstack::testing::ChildProcess;
using tapstack::testing::ProcessResult;
using tapstack::testing::run_process;
using tapstack::testing::temporary_path;

constexpr const char* kBird = "/usr/sbin/bird";
constexpr const char* kBirdc = "/usr/sbin/birdc";
constexpr const char* kKey = "tapstack-bgp-md5";
constexpr const char* kBirdRoute = "198.18.200.0/24";  // BIRD's static route
constexpr const char* kOurRoute = "198.18.100.0/24";   // tapstack --announce
constexpr milliseconds kLimit{20'000};

// BIRD's control socket: in TEST_TMPDIR unless that path is too long for a Unix socket.
std::string socket_path() {
  const std::string path = temporary_path("bird.ctl");
  if (path.size() < 100) return path;
  char directory[] = "/tmp/tapstack-bird-XXXXXX";
  REQUIRE(mkdtemp(directory) != nullptr);
  return fmt::format("{}/bird.ctl", directory);
}

struct BirdConfig {
  std::string password = kKey;
  bool passive = true;  // wait for tapstack to connect
  std::string as = "65001";
  std::string peer_as = "65002";
};

class Bird {
 public:
  explicit Bird(const BirdConfig& config) : socket_(socket_path()) {
    const std::string conf = temporary_path("bird.conf");
    std::ofstream(conf) << fmt::format(
        "router id 198.18.0.1;\n"
        "log \"{}\" all;\n"
        "protocol device {{ scan time 1; }}\n"
        "protocol static birdstatic {{ ipv4; route {} blackhole; }}\n"
        "protocol bgp tapstack {{\n"
        "  local 198.18.0.1 as {};\n"
        "  neighbor 198.18.0.2 as {};\n"
        "  password \"{}\";\n"
        "  passive {};\n"
        "  connect delay time 1; connect retry time 1; error wait time 1, 2;\n"
        "  ipv4 {{ import all; export filter {{ bgp_community.add((65001, 7)); bgp_med = 5; "
        "accept; }}; }};\n"
        "}}\n",
        temporary_path("bird.log"), kBirdRoute, config.as, config.peer_as, config.password,
        config.passive ? "on" : "off");
    auto child = ChildProcess::start(
        {kBird, "-f", "-c", conf, "-s", socket_, "-P", temporary_path("bird.pid")});
    REQUIRE_MESSAGE(static_cast<bool>(child), (child ? "" : child.error().message));
    child_.emplace(std::move(*child));
    started_ = steady_clock::now();
    REQUIRE_MESSAGE(wait_until([&] {
                      return birdc({"show", "status"}).find("Daemon is up") != std::string::npos;
                    }),
                    "BIRD did not come up: ", log());
  }
  ~Bird() { stop(); }

  std::string birdc(const std::vector<std::string>& command) const {
    std::vector<std::string> argv = {kBirdc, "-s", socket_};
    argv.insert(argv.end(), command.begin(), command.end());
    return run_process(argv, milliseconds(5000)).out;
  }
  bool established() const {
    return birdc({"show", "protocols", "tapstack"}).find("Established") != std::string::npos;
  }
  bool has_route(const std::string& prefix) const {
    return birdc({"show", "route", "protocol", "tapstack"}).find(prefix) != std::string::npos;
  }
  void stop() {
    if (!child_) return;
    child_->send_signal(SIGTERM);
    child_->wait(milliseconds(10'000));
    child_.reset();
  }
  steady_clock::time_point started() const { return started_; }
  static std::string log() {
    std::ifstream in(temporary_path("bird.log"));
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  template <typename Predicate>
  static bool wait_until(Predicate predicate, milliseconds limit = kLimit) {
    const auto deadline = steady_clock::now() + limit;
    while (steady_clock::now() < deadline) {
      if (predicate()) return true;
      std::this_thread::sleep_for(milliseconds(100));
    }
    return predicate();
  }

 private:
  std::string socket_;
  std::optional<ChildProcess> child_;
  steady_clock::time_point started_;
};

void skip_without_bird() {
  if (access(kBird, X_OK) != 0 || access(kBirdc, X_OK) != 0) {
    tapstack::testing::skip_test("BIRD 2 is not installed (apt-get install bird2)");
  }
}

ChildProcess start_tapstack(const std::vector<std::string>& extra,
                            const std::string& local_as = "65002",
                            const std::string& peer_as = "65001") {
  std::vector<std::string> options = {
      "--peer",          "198.18.0.1", "--local-as", local_as,
      "--peer-as",       peer_as,      "--md5",      fmt::format("198.18.0.1={}", kKey),
      "--connect-retry", "1",          "--hold",     "9"};
  options.insert(options.end(), extra.begin(), extra.end());
  auto child = ChildProcess::start(tapstack::testing::tapstack_command("bgp", options));
  REQUIRE_MESSAGE(static_cast<bool>(child), (child ? "" : child.error().message));
  REQUIRE_MESSAGE(child->wait_for_stderr(fmt::format("bgp: AS {}", local_as), milliseconds(10'000)),
                  "tapstack bgp did not start");
  return std::move(*child);
}

TEST_CASE("tapstack bgp and BIRD over TCP-MD5: routes both ways, withdrawals, a restart") {
  skip_without_bird();
  tapstack::testing::enter_private_netns_or_skip();
  const std::string stats = temporary_path("bgp_stats.json");
  ChildProcess tapstack = start_tapstack({"--announce", kOurRoute, "--stats", stats});

  auto bird = std::make_unique<Bird>(BirdConfig{});
  REQUIRE_MESSAGE(tapstack.wait_for_stderr("-> Established", kLimit), Bird::log());
  const double seconds =
      std::chrono::duration<double>(steady_clock::now() - bird->started()).count();
  MESSAGE(fmt::format("Established {:.2f} s after BIRD answered its control socket", seconds));
  CHECK(Bird::wait_until([&] { return bird->established(); }));

  // BIRD's static route reaches tapstack, with BIRD's AS and next hop; ours reaches BIRD.
  CHECK(tapstack.wait_for_stdout(
      fmt::format("route {} next-hop 198.18.0.1 as-path 65001 communities 65001:7 origin igp "
                  "med 5",
                  kBirdRoute),
      kLimit));
  CHECK(Bird::wait_until([&] { return bird->has_route(kOurRoute); }));
  const std::string detail = bird->birdc({"show", "route", kOurRoute, "all"});
  CHECK(detail.find("BGP.as_path: 65002") != std::string::npos);
  CHECK(detail.find("BGP.next_hop: 198.18.0.2") != std::string::npos);

  // BIRD goes away: its route goes with the session, and the line says so (BIRD did not
  // withdraw it). It comes back: a new session.
  bird->stop();
  CHECK(tapstack.wait_for_stdout(
      fmt::format("withdraw {} (session with 198.18.0.1 ended: route dropped)\n", kBirdRoute),
      kLimit));
  bird = std::make_unique<Bird>(BirdConfig{});
  CHECK_MESSAGE(tapstack.wait_for_stderr("(session 2,", kLimit), Bird::log());
  CHECK(Bird::wait_until([&] { return bird->has_route(kOurRoute); }));

  // tapstack stops: Cease to BIRD, which withdraws our route.
  tapstack.send_signal(SIGTERM);
  const ProcessResult result = tapstack.wait(kLimit);
  CHECK(result.exit_code == 0);
  CHECK(Bird::wait_until([&] { return !bird->has_route(kOurRoute); }));
  // (BIRD's protocol status soon says "Neighbor lost": tap0 goes with tapstack.)
  CHECK(Bird::log().find("Received: Administrative shutdown") != std::string::npos);
  CHECK(tapstack::testing::count_lines_with(result.out, fmt::format("route {}", kBirdRoute)) == 2);
  CHECK(tapstack::testing::count_lines_with(
            result.out, fmt::format("withdraw {} (session with 198.18.0.1 ended: route dropped)",
                                    kBirdRoute)) == 2);
  CHECK(tapstack::testing::stats_counter(stats, "TcpExtTCPMD5Failure") == 0u);
}

// `{"type": ..., "time": "2026-12-03T16:02:11.123Z"}`: d for a digit, the rest literally.
bool ends_with_utc_time(std::string_view line) {
  constexpr std::string_view kEnd = R"(, "time": "dddd-dd-ddTdd:dd:dd.dddZ"})";
  if (!line.starts_with(R"({"type": ")") || line.size() < kEnd.size()) return false;
  const std::string_view end = line.substr(line.size() - kEnd.size());
  for (size_t i = 0; i < kEnd.size(); ++i) {
    const bool matches =
        kEnd[i] == 'd' ? std::isdigit(static_cast<unsigned char>(end[i])) != 0 : end[i] == kEnd[i];
    if (!matches) return false;
  }
  return true;
}

TEST_CASE("passive tapstack, BIRD connecting: Established, routes as JSON lines") {
  skip_without_bird();
  tapstack::testing::enter_private_netns_or_skip();
  ChildProcess tapstack =
      start_tapstack({"--passive", "--json", "--announce", "198.18.101.0/24,next-hop=198.18.0.9"});
  Bird bird(BirdConfig{.passive = false});
  CHECK_MESSAGE(tapstack.wait_for_stdout(R"("to": "Established")", kLimit), Bird::log());
  CHECK(tapstack.wait_for_stdout(
      R"({"type": "route", "prefix": "198.18.200.0/24", "next_hop": "198.18.0.1", )"
      R"("as_path": [65001], "communities": ["65001:7"], "origin": "igp", "med": 5, "time": "20)",
      kLimit));
  CHECK(Bird::wait_until([&] { return bird.has_route("198.18.101.0/24"); }));
  CHECK(bird.birdc({"show", "route", "198.18.101.0/24", "all"}).find("BGP.next_hop: 198.18.0.9") !=
        std::string::npos);

  // BIRD withdraws its route in an UPDATE; the session stays up.
  bird.birdc({"disable", "birdstatic"});
  CHECK(tapstack.wait_for_stdout(
      R"({"type": "withdraw", "prefix": "198.18.200.0/24", "reason": "peer-withdrew", "time": ")",
      kLimit));
  CHECK(bird.established());
  tapstack.send_signal(SIGTERM);
  const ProcessResult result = tapstack.wait(kLimit);
  CHECK(result.exit_code == 0);
  // Every line has its time: UTC to the millisecond, "2026-12-03T16:02:11.123Z".
  size_t lines = 0;
  for (size_t begin = 0, end; (end = result.out.find('\n', begin)) != std::string::npos;
       begin = end + 1, ++lines) {
    const std::string line = result.out.substr(begin, end - begin);
    CHECK_MESSAGE(ends_with_utc_time(line), line);
  }
  CHECK(lines >= 5);
}

TEST_CASE("4-octet AS numbers on both sides (RFC 6793): AS_TRANS in OPEN, full ASNs in paths") {
  skip_without_bird();
  tapstack::testing::enter_private_netns_or_skip();
  ChildProcess tapstack = start_tapstack({"--announce", kOurRoute}, "4200000002", "4200000001");
  Bird bird(BirdConfig{.as = "4200000001", .peer_as = "4200000002"});
  CHECK_MESSAGE(
      tapstack.wait_for_stdout(
          fmt::format("route {} next-hop 198.18.0.1 as-path 4200000001 ", kBirdRoute), kLimit),
      Bird::log());
  CHECK(Bird::wait_until([&] { return bird.has_route(kOurRoute); }));
  CHECK(bird.birdc({"show", "route", kOurRoute, "all"}).find("BGP.as_path: 4200000002") !=
        std::string::npos);
}

// The README's claims for another password, one per role: the side that receives the SYNs
// counts TcpExtTCPMD5Failure, the side that sends them sees no answer.
TEST_CASE("a wrong password, BIRD passive: the kernel counts our SYNs, our log says why") {
  skip_without_bird();
  tapstack::testing::enter_private_netns_or_skip();
  const std::string stats = temporary_path("bgp_wrong_active_stats.json");
  const uint64_t kernel_before = md5kernel::kernel_md5_counters().failure;
  Bird bird(BirdConfig{.password = "not-the-key"});
  ChildProcess tapstack = start_tapstack({"--stats", stats, "--json"});
  // --connect-retry 1: each attempt is given up after 1 s without an answer.
  CHECK(tapstack.wait_for_stderr(
      "connection attempt 2 failed: no answer in 1 s (our SYNs are signed with --md5: a peer "
      "without that key drops them unanswered); next attempt now",
      kLimit));
  CHECK_FALSE(bird.established());
  tapstack.send_signal(SIGTERM);
  const ProcessResult result = tapstack.wait(kLimit);
  CHECK(result.exit_code == 0);
  CHECK(result.err.find("connection attempt 1 failed: no answer in 1 s") != std::string::npos);
  CHECK(result.out.find(
            R"x({"type": "connect-failed", "attempt": 1, "why": "no answer in 1 s (our SYNs )x"
            R"x(are signed with --md5: a peer without that key drops them unanswered)", )x"
            R"x("next_attempt_in": 0, "time": "20)x") != std::string::npos);
  CHECK(result.err.find("-> OpenSent") == std::string::npos);
  const uint64_t kernel_failures = md5kernel::kernel_md5_counters().failure - kernel_before;
  CHECK(kernel_failures >= 2);  // our first two SYNs at least
  CHECK(tapstack::testing::stats_counter(stats, "TcpExtTCPMD5Failure") == 0u);  // BIRD sent none
  MESSAGE(fmt::format("the kernel's TcpExtTCPMD5Failure rose by {}", kernel_failures));
}

TEST_CASE(
    "a wrong password, tapstack passive: tapstack counts BIRD's SYNs as TcpExtTCPMD5Failure") {
  skip_without_bird();
  tapstack::testing::enter_private_netns_or_skip();
  const std::string stats = temporary_path("bgp_wrong_stats.json");
  const uint64_t kernel_before = md5kernel::kernel_md5_counters().failure;
  // tapstack listens; BIRD connects with another key: every SYN fails our check.
  ChildProcess tapstack = start_tapstack({"--passive", "--stats", stats});
  Bird bird(BirdConfig{.password = "not-the-key", .passive = false});
  std::this_thread::sleep_for(milliseconds(5000));
  CHECK_FALSE(bird.established());
  tapstack.send_signal(SIGTERM);
  const ProcessResult result = tapstack.wait(kLimit);
  CHECK(result.exit_code == 0);
  CHECK(result.err.find("-> OpenSent") == std::string::npos);
  CHECK(result.err.find("TcpExtTCPMD5Failure") != std::string::npos);
  const auto failures = tapstack::testing::stats_counter(stats, "TcpExtTCPMD5Failure");
  REQUIRE(failures);
  CHECK(*failures >= 2);  // BIRD's SYN and at least one retransmission or retry
  MESSAGE(fmt::format("TcpExtTCPMD5Failure {} after 5 s", *failures));
  CHECK(md5kernel::kernel_md5_counters().failure == kernel_before);  // we sent nothing back
}

TEST_CASE("SIGHUP: no configuration file to reload, so a Cease to BIRD, the stats, exit 0") {
  skip_without_bird();
  tapstack::testing::enter_private_netns_or_skip();
  const std::string stats = temporary_path("bgp_hup_stats.json");
  ChildProcess tapstack = start_tapstack({"--announce", kOurRoute, "--stats", stats});
  Bird bird(BirdConfig{});
  REQUIRE_MESSAGE(tapstack.wait_for_stderr("-> Established", kLimit), Bird::log());
  CHECK(Bird::wait_until([&] { return bird.has_route(kOurRoute); }));
  tapstack.send_signal(SIGHUP);
  const ProcessResult result = tapstack.wait(kLimit);
  CHECK(result.exit_code == 0);
  CHECK(result.err.find("bgp: SIGHUP: no configuration file to reload; stopping as on SIGTERM") !=
        std::string::npos);
  CHECK(result.err.find("stopped by SIGHUP") != std::string::npos);
  CHECK(Bird::wait_until(
      [&] { return Bird::log().find("Received: Administrative shutdown") != std::string::npos; }));
  CHECK(Bird::wait_until([&] { return !bird.has_route(kOurRoute); }));
  CHECK(tapstack::testing::stats_counter(stats, "TcpExtTCPMD5Failure") == 0u);
}

}  // namespace
}  // namespace tapstack::bgp
