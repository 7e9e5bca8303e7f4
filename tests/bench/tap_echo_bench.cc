// ICMP and ICMPv6 echo throughput, two ways each, IPv6 beside IPv4 in the same run. Prints
// figures; asserts nothing about speed.
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
#include <tins/icmpv6.h>
#include <tins/ip.h>
#include <tins/ipv6.h>
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
const Ipv6Interface kHostAddress6 = *Ipv6Interface::parse("2001:db8::1/64");
const Ipv6Interface kStackAddress6 = *Ipv6Interface::parse("2001:db8::2/64");
constexpr size_t kPayloadSize = 56;  // ping's default
constexpr uint16_t kEchoId = 0xbe7c;
StackConfig bench_config() {
  StackConfig config;
  config.mac = kStackMac;
  config.ipv4 = kStackAddress;
  config.ipv6 = kStackAddress6;
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

// Ethernet, IPv6 and ICMPv6 (its checksum over the pseudo-header, RFC 4443 §2.3) from the peer.
std::vector<uint8_t> ipv6_frame_from_peer(const MacAddress& destination_mac,
                                          const IpAddress& destination, Tins::PDU&& message) {
  Tins::IPv6 ip(destination.to_string(), kHostAddress6.address.to_string());
  ip.hop_limit(255);  // neighbour discovery takes nothing less (RFC 4861 §7.1.2)
  return (Tins::EthernetII(destination_mac.to_string(), std::string(kPeerMac)) / ip / message)
      .serialize();
}

std::vector<uint8_t> echo6_request_from_peer() {
  Tins::ICMPv6 icmp(Tins::ICMPv6::ECHO_REQUEST);
  icmp.identifier(kEchoId);
  icmp.sequence(1);
  Tins::RawPDU payload(std::vector<uint8_t>(kPayloadSize, 0x5a));
  return ipv6_frame_from_peer(kStackMac, kStackAddress6.address, icmp / payload);
}

// The peer's answer to the stack's Neighbor Solicitation: solicited, override, its MAC.
std::vector<uint8_t> neighbour_advertisement_from_peer() {
  Tins::ICMPv6 icmp(Tins::ICMPv6::NEIGHBOUR_ADVERT);
  icmp.target_addr(kHostAddress6.address.to_string());
  icmp.solicited(1);
  icmp.override(1);
  icmp.target_link_layer_addr(Tins::HWAddress<6>(std::string(kPeerMac)));
  return ipv6_frame_from_peer(kStackMac, kStackAddress6.address, std::move(icmp));
}

struct InMemoryRun {
  uint64_t requests = 0;
  uint64_t frames_out = 0;
  Duration elapsed;
};

// The same request into on_frame for `length`, every frame out drained after each.
InMemoryRun echo_in_memory(Stack& stack, const std::vector<uint8_t>& request, Instant& now,
                           Duration length) {
  InMemoryRun run;
  const Instant start = monotonic_now();
  Instant end = start;
  while (end - start < length) {
    for (int i = 0; i < 4096; ++i) {
      now += Duration::microseconds(1);  // virtual time, so the clock is not what we measure
      stack.on_frame(request, now);
      ++run.requests;
      while (stack.poll_transmit()) ++run.frames_out;
    }
    end = monotonic_now();
  }
  run.elapsed = end - start;
  return run;
}

double rate(uint64_t count, Duration elapsed) {
  return static_cast<double>(count) / elapsed.seconds_f();
}

InMemoryRun in_memory_ipv4(Duration length) {
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
  const InMemoryRun run = echo_in_memory(stack, echo_request_from_peer(), now, length);
  print_rate("in memory IPv4, on_frame + poll_transmit", run.requests, run.elapsed, "echoes");
  fmt::print("in memory IPv4: {} requests, {} frames out, IcmpOutEchoReps {}\n", run.requests,
             run.frames_out, stack.counters()[Counter::IcmpOutEchoReps]);
  return run;
}

// Time past DAD first (virtual), then one echo request: the stack solicits the peer's MAC and
// the bench answers, so that the timed echoes all find the neighbour REACHABLE.
InMemoryRun in_memory_ipv6(Duration length) {
  Stack stack(bench_config());
  Instant now = monotonic_now();
  stack.start(now);
  const Instant dad_over = now + Duration::seconds(2);
  while (now < dad_over) {
    now += Duration::milliseconds(10);
    stack.on_timer(now);
    while (stack.poll_transmit()) {
    }
  }
  const std::vector<uint8_t> request = echo6_request_from_peer();
  stack.on_frame(request, now);
  while (stack.poll_transmit()) {
  }
  stack.on_frame(neighbour_advertisement_from_peer(), now);
  while (stack.poll_transmit()) {
  }
  if (!stack.ndisc()->owns(kStackAddress6.address) ||
      !stack.ndisc()->lookup(kHostAddress6.address)) {
    fmt::print(
        "in memory IPv6: DAD not over or the peer's MAC not learnt; figures below mean "
        "little\n");
  }
  const InMemoryRun run = echo_in_memory(stack, request, now, length);
  print_rate("in memory IPv6, on_frame + poll_transmit", run.requests, run.elapsed, "echoes");
  fmt::print("in memory IPv6: {} requests, {} frames out, Icmp6OutEchoReplies {}\n", run.requests,
             run.frames_out, stack.counters()[Counter::Icmp6OutEchoReplies]);
  return run;
}

void in_memory_benchmark(Duration length) {
  const InMemoryRun ipv4 = in_memory_ipv4(length);
  const InMemoryRun ipv6 = in_memory_ipv6(length);
  fmt::print("in memory: IPv6 / IPv4 = {:.2f} (echoes per second)\n\n",
             rate(ipv6.requests, ipv6.elapsed) / rate(ipv4.requests, ipv4.elapsed));
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

// An ICMPv6 echo request (header and payload); the kernel fills in the checksum of a raw
// ICMPv6 socket's messages (RFC 3542 §3.1).
std::vector<uint8_t> icmp6_echo(uint16_t sequence) {
  std::vector<uint8_t> message(8 + kPayloadSize, 0x5a);
  message[0] = 128;
  message[1] = 0;
  store_be16(&message[2], 0);
  store_be16(&message[4], kEchoId);
  store_be16(&message[6], sequence);
  return message;
}

// One family's way of flooding: its raw socket's destination, requests and replies.
struct EchoFamily {
  std::string_view name;
  int domain;
  int protocol;
  sockaddr_storage destination;
  socklen_t destination_size;
  std::vector<uint8_t> (*request)(uint16_t sequence);
  size_t header_size(const uint8_t* packet) const {
    return domain == AF_INET ? (packet[0] & 0x0f) * 4u : 0;  // raw ICMPv6: no IPv6 header
  }
  uint8_t reply_type() const { return domain == AF_INET ? 0 : 129; }
};

EchoFamily ipv4_family() {
  EchoFamily family{"IPv4", AF_INET, IPPROTO_ICMP, {}, sizeof(sockaddr_in), icmp_echo};
  auto* destination = reinterpret_cast<sockaddr_in*>(&family.destination);
  destination->sin_family = AF_INET;
  destination->sin_addr.s_addr = htonl(kStackAddress.address.value);
  return family;
}

EchoFamily ipv6_family() {
  EchoFamily family{"IPv6", AF_INET6, IPPROTO_ICMPV6, {}, sizeof(sockaddr_in6), icmp6_echo};
  auto* destination = reinterpret_cast<sockaddr_in6*>(&family.destination);
  destination->sin6_family = AF_INET6;
  const auto bytes = kStackAddress6.address.bytes();
  std::copy(bytes.begin(), bytes.end(), destination->sin6_addr.s6_addr);
  return family;
}

// Counts the echo replies for kEchoId waiting on a raw socket of the family.
uint64_t receive_replies(int fd, const EchoFamily& family) {
  uint64_t replies = 0;
  uint8_t buffer[2048];
  for (;;) {
    const ssize_t size = recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
    if (size < 8) return replies;
    const size_t header = family.header_size(buffer);
    if (static_cast<size_t>(size) >= header + 8 && buffer[header] == family.reply_type() &&
        load_be16(&buffer[header + 4]) == kEchoId) {
      ++replies;
    }
  }
}

struct FloodResult {
  uint64_t sent = 0;
  uint64_t replies = 0;
  uint64_t stalls = 0;  // 10 ms without a reply: the window is presumed lost and refilled
  Duration elapsed;
};

// Keeps up to `window` requests in flight for `length`, as `ping -f` keeps one.
FloodResult flood(int fd, const EchoFamily& family, Duration length, uint64_t window) {
  FloodResult result;
  uint64_t in_flight = 0;
  const Instant start = monotonic_now();
  const Instant end = start + length;
  while (monotonic_now() < end) {
    for (; in_flight < window; ++in_flight) {
      const auto request = family.request(static_cast<uint16_t>(result.sent));
      if (sendto(fd, request.data(), request.size(), 0,
                 reinterpret_cast<const sockaddr*>(&family.destination),
                 family.destination_size) < 0) {
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
    const uint64_t replies = receive_replies(fd, family);
    result.replies += replies;
    in_flight -= std::min(in_flight, replies);
  }
  result.elapsed = monotonic_now() - start;
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
  // `ip -6 addr add 2001:db8::1/64 dev tap0 nodad`
  if (auto status = enable_ipv6("tap0"); !status) return status.error().message;
  if (auto status = netlink->add_ipv6_address("tap0", kHostAddress6); !status) {
    return status.error().message;
  }
  if (auto status = netlink->set_link_up("tap0"); !status) return status.error().message;
  setup.stack = std::make_unique<Stack>(bench_config());
  auto loop = EventLoop::create(*setup.tap, *setup.stack);
  if (!loop) return loop.error().message;
  setup.loop = std::move(*loop);
  return std::nullopt;
}

constexpr uint64_t kWindow = 64;

std::optional<FloodResult> flood_family(const EchoFamily& family, Duration length) {
  const int fd = socket(family.domain, SOCK_RAW | SOCK_CLOEXEC, family.protocol);
  if (fd < 0) {
    fmt::print("over TAP {}: skipped: no raw socket\n", family.name);
    return std::nullopt;
  }
  const FloodResult result = flood(fd, family, length, kWindow);
  close(fd);
  print_rate(fmt::format("over TAP {}, kernel raw socket, window {}", family.name, kWindow),
             result.replies, result.elapsed, "echo replies");
  fmt::print("over TAP {}: {} requests sent, {} replies, {} stalls\n", family.name, result.sent,
             result.replies, result.stalls);
  return result;
}

// One stack on one loop answers both families, one after the other; IPv6 once the stack's
// DAD (1 s) is over in real time.
void over_tap_benchmark(Duration length) {
  OverTap setup;
  if (auto problem = set_up_over_tap(setup)) {
    fmt::print("over TAP: skipped: {}\n", *problem);
    return;
  }
  setup.stack->start(monotonic_now());
  auto running = std::async(std::launch::async, [&setup] { return setup.loop->run(); });

  const auto ipv4 = flood_family(ipv4_family(), length);
  const Instant dad_over = monotonic_now() + Duration::milliseconds(1500);
  while (monotonic_now() < dad_over) usleep(10'000);
  const auto ipv6 = flood_family(ipv6_family(), length);
  setup.loop->request_stop();
  const Status status = running.get();

  if (ipv4 && ipv6 && ipv4->replies > 0) {
    fmt::print("over TAP: IPv6/IPv4 echo reply rate {:.2f}\n",
               rate(ipv6->replies, ipv6->elapsed) / rate(ipv4->replies, ipv4->elapsed));
  }
  const EventLoopStats& stats = setup.loop->stats();
  fmt::print("over TAP: loop: {} wake-ups, {} frames in, {} out, {} dropped{}; IPv6 address {}\n",
             stats.wakeups, stats.frames_received, stats.frames_sent,
             stats.send_drops + stats.send_errors,
             status ? "" : fmt::format(", loop failed: {}", status.error().message),
             setup.stack->ndisc()->owns(kStackAddress6.address) ? "owned (DAD over)" : "NOT owned");
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
