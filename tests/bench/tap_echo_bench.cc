// ICMP echo throughput, two ways. Prints figures; asserts nothing about speed.
//
//   in memory: echo request frames straight into Stack::on_frame, replies taken with
//              poll_transmit(): the cost of the core alone.
//   over TAP:  in a private network namespace, the kernel sends echo requests from a raw
//              socket (a bounded window in flight, like `ping -f`) to the stack running on an
//              EventLoop: the cost of the whole path, system calls included.
//
// bazel run //tests/bench:tap_echo_bench -- [seconds per benchmark, 1..60]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <future>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <tins/arp.h>
#include <tins/ethernetII.h>
#include <tins/icmp.h>
#include <tins/ip.h>
#include <tins/rawpdu.h>

#include "stack/checksum.h"
#include "stack/stack.h"
#include "tap/clock.h"
#include "tap/event_loop.h"
#include "tap/netlink.h"
#include "tap/tap_device.h"
#include "tests/support/netns.h"

namespace tapstack {
namespace {

constexpr Ipv4Interface kHostAddress = {Ipv4Address::from_octets(198, 18, 0, 1), 24};
constexpr Ipv4Interface kStackAddress = {Ipv4Address::from_octets(198, 18, 0, 2), 24};
constexpr MacAddress kStackMac = {{0x02, 0x00, 0xc6, 0x12, 0x00, 0x02}};
constexpr std::string_view kPeerMac = "02:00:c6:12:00:01";
constexpr size_t kPayloadSize = 56;  // ping's default
constexpr uint16_t kEchoId = 0xbe7c;

StackConfig bench_config() {
  StackConfig config;
  config.mac = kStackMac;
  config.ipv4 = kStackAddress;
  config.gratuitous_arp = false;
  config.seed = 1;
  return config;
}

std::vector<uint8_t> arp_request_from_peer() {
  return Tins::ARP::make_arp_request(kStackAddress.address.to_string(),
                                     kHostAddress.address.to_string(), std::string(kPeerMac))
      .serialize();
}

std::vector<uint8_t> echo_request_from_peer() {
  Tins::ICMP icmp(Tins::ICMP::ECHO_REQUEST);
  icmp.id(kEchoId);
  icmp.sequence(1);
  return (Tins::EthernetII(kStackMac.to_string(), std::string(kPeerMac)) /
          Tins::IP(kStackAddress.address.to_string(), kHostAddress.address.to_string()) / icmp /
          Tins::RawPDU(std::vector<uint8_t>(kPayloadSize, 0x5a)))
      .serialize();
}

void print_rate(std::string_view what, uint64_t count, Duration elapsed, std::string_view unit) {
  const double seconds = elapsed.seconds_f();
  fmt::print("{}: {} {} in {:.2f} s = {:.0f} {}/s ({:.0f} ns each)\n", what, count, unit, seconds,
             static_cast<double>(count) / seconds, unit,
             count ? static_cast<double>(elapsed.ns()) / static_cast<double>(count) : 0.0);
}

void in_memory_benchmark(Duration length) {
  Stack stack(bench_config());
  Instant now = monotonic_now();
  stack.start(now);
  // The peer asks for our MAC first, which also teaches the stack the peer's.
  stack.on_frame(arp_request_from_peer(), now);
  while (stack.poll_transmit()) {
  }
  if (!stack.arp_lookup(kHostAddress.address)) {
    fmt::print(
        "in memory: the stack did not learn the peer's MAC from its ARP request; "
        "replies will wait for ARP\n");
  }

  const std::vector<uint8_t> request = echo_request_from_peer();
  uint64_t requests = 0;
  uint64_t replies = 0;
  const Instant start = monotonic_now();
  Instant end = start;
  while (end - start < length) {
    for (int i = 0; i < 4096; ++i) {
      now += Duration::microseconds(1);  // virtual time, so the clock is not what we measure
      stack.on_frame(request, now);
      ++requests;
      while (stack.poll_transmit()) ++replies;
    }
    end = monotonic_now();
  }
  print_rate("in memory, on_frame + poll_transmit", requests, end - start, "echoes");
  fmt::print("in memory: {} requests, {} frames out, IcmpOutEchoReps {}\n", requests, replies,
             stack.counters()[Counter::IcmpOutEchoReps]);
}

// An ICMP echo request (header and payload) with its checksum.
std::vector<uint8_t> icmp_echo(uint16_t sequence) {
  std::vector<uint8_t> message(8 + kPayloadSize, 0x5a);
  message[0] = 8;
  message[1] = 0;
  store_be16(&message[2], 0);
  store_be16(&message[4], kEchoId);
  store_be16(&message[6], sequence);
  store_be16(&message[2], internet_checksum(message));
  return message;
}

// Counts the echo replies for kEchoId waiting on a raw ICMP socket (IP header included).
uint64_t receive_replies(int fd) {
  uint64_t replies = 0;
  uint8_t buffer[2048];
  for (;;) {
    const ssize_t size = recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
    if (size < 28) return replies;
    const size_t header = (buffer[0] & 0x0f) * 4u;
    if (static_cast<size_t>(size) >= header + 8 && buffer[header] == 0 &&
        load_be16(&buffer[header + 4]) == kEchoId) {
      ++replies;
    }
  }
}

struct FloodResult {
  uint64_t sent = 0;
  uint64_t replies = 0;
  uint64_t stalls = 0;  // 10 ms without a reply: the window is presumed lost and refilled
};

// Keeps up to `window` requests in flight for `length`, as `ping -f` keeps one.
FloodResult flood(int fd, Duration length, uint64_t window) {
  sockaddr_in destination{};
  destination.sin_family = AF_INET;
  destination.sin_addr.s_addr = htonl(kStackAddress.address.value);
  FloodResult result;
  uint64_t in_flight = 0;
  const Instant end = monotonic_now() + length;
  while (monotonic_now() < end) {
    for (; in_flight < window; ++in_flight) {
      const auto request = icmp_echo(static_cast<uint16_t>(result.sent));
      if (sendto(fd, request.data(), request.size(), 0,
                 reinterpret_cast<const sockaddr*>(&destination), sizeof destination) < 0) {
        break;
      }
      ++result.sent;
    }
    pollfd readable{fd, POLLIN, 0};
    if (poll(&readable, 1, 10) == 0) {
      ++result.stalls;
      in_flight = 0;
      continue;
    }
    const uint64_t replies = receive_replies(fd);
    result.replies += replies;
    in_flight -= std::min(in_flight, replies);
  }
  return result;
}

struct OverTap {
  std::optional<TapDevice> tap;
  std::unique_ptr<Stack> stack;
  std::unique_ptr<EventLoop> loop;
};

std::optional<std::string> set_up_over_tap(OverTap& setup) {
  if (auto reason = testing::kernel_tests_unavailable()) return *reason;
  if (auto status = testing::enter_private_netns(); !status) return status.error().message;
  auto tap = TapDevice::open("tap0");
  if (!tap) return tap.error().message;
  setup.tap.emplace(std::move(*tap));
  auto netlink = Rtnetlink::open();
  if (!netlink) return netlink.error().message;
  if (auto status = netlink->add_ipv4_address("tap0", kHostAddress); !status) {
    return status.error().message;
  }
  if (auto status = netlink->set_link_up("tap0"); !status) return status.error().message;
  setup.stack = std::make_unique<Stack>(bench_config());
  auto loop = EventLoop::create(*setup.tap, *setup.stack);
  if (!loop) return loop.error().message;
  setup.loop = std::move(*loop);
  return std::nullopt;
}

void over_tap_benchmark(Duration length) {
  OverTap setup;
  if (auto problem = set_up_over_tap(setup)) {
    fmt::print("over TAP: skipped: {}\n", *problem);
    return;
  }
  const int fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
  if (fd < 0) {
    fmt::print("over TAP: skipped: no raw ICMP socket\n");
    return;
  }
  setup.stack->start(monotonic_now());
  auto running = std::async(std::launch::async, [&setup] { return setup.loop->run(); });

  constexpr uint64_t kWindow = 64;
  const Instant start = monotonic_now();
  const FloodResult result = flood(fd, length, kWindow);
  const Duration elapsed = monotonic_now() - start;
  setup.loop->request_stop();
  const Status status = running.get();
  close(fd);

  print_rate(fmt::format("over TAP, kernel raw socket, window {}", kWindow), result.replies,
             elapsed, "echo replies");
  const EventLoopStats& stats = setup.loop->stats();
  fmt::print(
      "over TAP: {} requests sent, {} replies, {} stalls; loop: {} wake-ups, {} frames "
      "in, {} out, {} dropped{}\n",
      result.sent, result.replies, result.stalls, stats.wakeups, stats.frames_received,
      stats.frames_sent, stats.send_drops + stats.send_errors,
      status ? "" : fmt::format(", loop failed: {}", status.error().message));
}

Duration length_from_arguments(int argc, char** argv) {
  int seconds = 3;
  if (argc > 1) {
    const std::string_view text = argv[1];
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), seconds);
    if (error != std::errc() || end != text.data() + text.size() || seconds < 1 || seconds > 60) {
      fmt::print(stderr, "tap_echo_bench: the argument is seconds per benchmark, 1 to 60\n");
      std::exit(2);
    }
  }
  return Duration::seconds(seconds);
}

}  // namespace
}  // namespace tapstack

int main(int argc, char** argv) {
  const tapstack::Duration length = tapstack::length_from_arguments(argc, argv);
  tapstack::in_memory_benchmark(length);
  tapstack::over_tap_benchmark(length);
  return 0;
}
