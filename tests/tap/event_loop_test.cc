// EventLoop against a real TAP device in a private namespace: it stops when asked (from
// another thread or by a signal), drains the TAP per wake-up within its budget, drives the
// stack's timers from next_deadline(), and counts frames it could not send.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <thread>

#include <tins/arp.h>
#include <tins/ethernetII.h>

#include "stack/stack.h"
#include "tap/clock.h"
#include "tap/event_loop.h"
#include "tap/tap_device.h"
#include "tests/support/netns.h"

namespace tapstack {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr Ipv4Interface kStackAddress = {Ipv4Address::from_octets(198, 18, 0, 2), 24};
constexpr MacAddress kStackMac = {{0x02, 0x00, 0xc6, 0x12, 0x00, 0x02}};

StackConfig quiet_config() {
  StackConfig config;
  config.mac = kStackMac;
  config.ipv4 = kStackAddress;
  config.gratuitous_arp = false;  // nothing leaves unless a test makes it
  return config;
}

// A TAP in a fresh namespace with the kernel side up, a stack and a loop over it.
struct LoopOverTap {
  explicit LoopOverTap(StackConfig config = quiet_config(), EventLoopOptions options = {}) {
    tap.emplace(testing::open_tap_in_private_netns("tap0", Ipv4Interface::parse("198.18.0.1/24")));
    stack = std::make_unique<Stack>(config);
    auto created = EventLoop::create(*tap, *stack, options);
    REQUIRE_MESSAGE(created, created.error().message);
    loop = std::move(*created);
  }

  std::optional<TapDevice> tap;
  std::unique_ptr<Stack> stack;
  std::unique_ptr<EventLoop> loop;
};

// Runs loop.run() on a thread; the result is ready when run() returns.
std::future<Status> run_in_thread(EventLoop& loop) {
  return std::async(std::launch::async, [&loop] { return loop.run(); });
}

TEST_CASE("request_stop from another thread ends an idle run()") {
  LoopOverTap fixture;
  auto running = run_in_thread(*fixture.loop);
  std::this_thread::sleep_for(milliseconds(100));  // let it reach its (unbounded) sleep
  CHECK(running.wait_for(milliseconds(0)) == std::future_status::timeout);
  fixture.loop->request_stop();
  REQUIRE(running.wait_for(milliseconds(2'000)) == std::future_status::ready);
  CHECK(running.get());
  CHECK(fixture.loop->stop_requested());
}

// An application's input (a pipe, here) wakes the loop while watched: the hook runs at once
// instead of at a deadline, which an idle loop does not have.
TEST_CASE("a watched descriptor wakes the loop") {
  LoopOverTap fixture;
  int pipe_fds[2];
  REQUIRE(pipe(pipe_fds) == 0);
  std::atomic<int> hook_runs = 0;
  fixture.loop->set_iteration_hook([&](Instant) { ++hook_runs; });
  fixture.loop->watch(pipe_fds[0], POLLIN);
  auto running = run_in_thread(*fixture.loop);
  std::this_thread::sleep_for(milliseconds(100));  // asleep: nothing to read, no deadline
  const int before = hook_runs;
  REQUIRE(write(pipe_fds[1], "x", 1) == 1);
  // The pipe stays readable (nobody reads it), so a watched pipe wakes the loop again and
  // again; unwatched, only the kernel's few frames on a new link (IPv6 neighbour discovery)
  // would wake it.
  constexpr int kWakeUps = 1000;
  for (int i = 0; i < 200 && hook_runs <= before + kWakeUps; ++i) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  fixture.loop->request_stop();
  REQUIRE(running.wait_for(milliseconds(2'000)) == std::future_status::ready);
  CHECK(running.get());
  CHECK(hook_runs > before + kWakeUps);
  close(pipe_fds[0]);
  close(pipe_fds[1]);
}

TEST_CASE("SIGINT and SIGTERM stop run() while StopOnSignals lives") {
  for (const int signal_number : {SIGINT, SIGTERM}) {
    CAPTURE(signal_number);
    LoopOverTap fixture;
    StopOnSignals signals(*fixture.loop);
    auto running = run_in_thread(*fixture.loop);
    std::this_thread::sleep_for(milliseconds(100));
    kill(getpid(), signal_number);
    REQUIRE(running.wait_for(milliseconds(2'000)) == std::future_status::ready);
    CHECK(running.get());
    CHECK(signals.received() == signal_number);
  }
}

// Frames from the kernel side: the kernel transmits them on tap0, so they wait in the TAP's
// queue until the loop reads them.
void kernel_sends_arp_requests(int count) {
  const int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_ll address{};
  address.sll_family = AF_PACKET;
  address.sll_ifindex = static_cast<int>(if_nametoindex("tap0"));
  address.sll_halen = 6;
  const auto frame =
      Tins::ARP::make_arp_request("198.18.0.2", "198.18.0.1", "02:00:c6:12:00:01").serialize();
  for (int i = 0; i < count; ++i) {
    CHECK(sendto(fd, frame.data(), frame.size(), 0, reinterpret_cast<sockaddr*>(&address),
                 sizeof address) == static_cast<ssize_t>(frame.size()));
  }
  close(fd);
}

TEST_CASE("one wake-up drains the TAP, up to the read budget") {
  SUBCASE("everything waiting") {
    LoopOverTap fixture;
    kernel_sends_arp_requests(20);
    REQUIRE(fixture.loop->run_once(Duration::milliseconds(500)));
    CHECK(fixture.loop->stats().wakeups == 1);
    CHECK(fixture.stack->counters()[Counter::ArpInRequests] == 20);
    CHECK(fixture.stack->counters()[Counter::ArpOutReplies] == 20);
    CHECK(fixture.loop->stats().frames_sent == 20);
  }
  SUBCASE("no more than the budget") {
    LoopOverTap fixture(quiet_config(), EventLoopOptions{.read_budget = 8});
    kernel_sends_arp_requests(20);
    REQUIRE(fixture.loop->run_once(Duration::milliseconds(500)));
    CHECK(fixture.loop->stats().frames_received == 8);
    REQUIRE(fixture.loop->run_once(Duration::milliseconds(500)));
    CHECK(fixture.loop->stats().frames_received >= 16);
  }
}

TEST_CASE("the loop runs the stack's timers: ARP retries, then gives up") {
  StackConfig config = quiet_config();
  config.arp.retransmit_interval = Duration::milliseconds(100);
  config.arp.max_requests = 3;
  LoopOverTap fixture(config);
  Stack& stack = *fixture.stack;
  // Nobody has 198.18.0.9: the stack asks three times, 100 ms apart, then gives up.
  bool sent = false;
  fixture.loop->set_iteration_hook([&](Instant now) {
    if (sent) return;
    const uint8_t payload[8] = {};
    CHECK(stack.send_echo_request(*Ipv4Address::parse("198.18.0.9"), 1, 1, payload, now));
    sent = true;
  });
  const auto start = steady_clock::now();
  while (stack.counters()[Counter::ArpResolveFailures] == 0 &&
         steady_clock::now() - start < milliseconds(5'000)) {
    REQUIRE(fixture.loop->run_once(Duration::seconds(1)));
  }
  const auto elapsed = steady_clock::now() - start;
  CHECK(stack.counters()[Counter::ArpResolveFailures] == 1);
  CHECK(stack.counters()[Counter::ArpOutRequests] == 3);
  // The retries waited for their deadlines rather than firing early.
  CHECK(elapsed >= milliseconds(200));
  // ... and the loop slept between them instead of spinning.
  CHECK(fixture.loop->stats().wakeups < 50);
  CHECK(stack.next_deadline().is_never());
}

TEST_CASE("a frame the TAP refuses is counted, not fatal") {
  testing::enter_private_netns_or_skip();
  auto tap = TapDevice::open("tap0");  // left down: the kernel refuses its frames (EIO)
  REQUIRE(tap);
  Stack stack(quiet_config());
  auto loop = EventLoop::create(*tap, stack);
  REQUIRE(loop);
  const uint8_t payload[8] = {};
  // Resolving 198.18.0.1 sends an ARP request at once, through the loop's sink.
  CHECK(stack.send_echo_request(*Ipv4Address::parse("198.18.0.1"), 1, 1, payload, monotonic_now()));
  CHECK((*loop)->stats().frames_sent == 0);
  CHECK((*loop)->stats().send_errors == 1);
  CHECK((*loop)->last_send_error().find("is it up?") != std::string::npos);
  CHECK((*loop)->run_once(Duration::milliseconds(10)));
}

}  // namespace
}  // namespace tapstack
