// ARP (RFC 826) between stacks on a simulated segment: resolution under loss, packets queued
// while resolving, giving up on a silent address, cache expiry.
#include <cmath>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <fmt/format.h>

#include "stack/stack.h"
#include "tests/sim/frames.h"
#include "tests/sim/hosts.h"
#include "tests/sim/network.h"

namespace tapstack::sim {
namespace {

Duration ms(int64_t n) {
  return Duration::milliseconds(n);
}
Duration seconds(int64_t n) {
  return Duration::seconds(n);
}

// describe(), without the IP id of datagrams other than ICMP echo.
std::string summary(ByteView frame) {
  const auto ip = parse_ipv4(frame);
  if (!ip || ip->protocol == kProtocolIcmp) return describe(frame);
  return fmt::format("{} > {} proto {}", ip->source.to_string(), ip->destination.to_string(),
                     ip->protocol);
}

// What one port sent, in order, with the time it left: "arp who-has ...", "... echo ...".
struct SentLog {
  struct Line {
    Instant time;
    std::string text;
  };
  SentLog(Network& net, PortId port) {
    net.add_observer([this, port](const WireEvent& e) {
      if (e.kind == WireEventKind::Transmit && e.port == port) {
        lines.push_back({e.time, summary(e.frame)});
      }
    });
  }
  std::vector<std::string> texts() const {
    std::vector<std::string> out;
    for (const Line& line : lines) out.push_back(line.text);
    return out;
  }
  std::vector<Instant> times_of(const std::string& text) const {
    std::vector<Instant> out;
    for (const Line& line : lines) {
      if (line.text == text) out.push_back(line.time);
    }
    return out;
  }
  std::vector<Line> lines;
};

size_t drain_replies(Stack& stack) {
  size_t n = 0;
  while (stack.poll_echo_reply()) ++n;
  return n;
}

// Pings `to` once a second until a reply arrives; false when `tries` pings went unanswered.
bool ping_until_answered(Network& net, Stack& from, Ipv4Address to, int tries) {
  for (uint16_t seq = 0; seq < tries; ++seq) {
    REQUIRE(from.send_echo_request(to, 1, seq, {}, net.now()));
    if (net.run_until([&] { return drain_replies(from) > 0; }, seconds(1))) return true;
  }
  return false;
}

const std::string kWhoHas2 = "arp who-has 198.18.0.2 tell 198.18.0.1";

TEST_CASE("ARP resolves under 30% loss as often as the retry budget allows") {
  struct Case {
    int max_requests;
    double expected_failure_rate;  // each try needs request and reply through: 1 - 0.7 * 0.7
  };
  for (const Case c : {Case{1, 0.51}, Case{3, std::pow(0.51, 3)}, Case{20, 0.0}}) {
    CAPTURE(c.max_requests);
    constexpr int kSeeds = 400;
    int failures = 0;
    for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
      Network net(seed);
      const SegmentId lan = net.add_segment({.loss = 0.3, .delay = ms(1)});
      StackConfig config_a = host_config(1, seed);
      config_a.arp.max_requests = c.max_requests;
      Stack& a = net.add_stack(lan, config_a);
      net.add_stack(lan, host_config(2, seed));

      REQUIRE(a.send_echo_request(host_ip(2), 1, 0, {}, net.now()));
      net.run_until([&] { return a.counters()[Counter::ArpResolveFailures] > 0; },
                    seconds(c.max_requests + 1));
      const bool resolved = a.arp_lookup(host_ip(2)).has_value();
      CHECK(resolved == (a.counters()[Counter::ArpResolveFailures] == 0));
      CHECK(a.counters()[Counter::ArpOutRequests] <= static_cast<uint64_t>(c.max_requests));
      if (!resolved) ++failures;
    }
    const double expected = kSeeds * c.expected_failure_rate;
    const double sigma =
        std::sqrt(kSeeds * c.expected_failure_rate * (1 - c.expected_failure_rate));
    INFO(fmt::format("{} of {} resolutions failed, expected {:.1f} ± {:.1f}", failures, kSeeds,
                     expected, sigma));
    CHECK(std::abs(failures - expected) <= 4 * sigma);
  }
}

TEST_CASE("with generous retries every ping through 30% loss is eventually answered") {
  for (uint64_t seed = 1; seed <= 100; ++seed) {
    CAPTURE(seed);
    Network net(seed);
    const SegmentId lan = net.add_segment({.loss = 0.3, .delay = ms(1)});
    StackConfig config_a = host_config(1, seed);
    config_a.arp.max_requests = 20;
    Stack& a = net.add_stack(lan, config_a);
    StackConfig config_b = host_config(2, seed);
    config_b.arp.max_requests = 20;
    net.add_stack(lan, config_b);
    CHECK(ping_until_answered(net, a, host_ip(2), 40));
  }
}

TEST_CASE("packets sent while resolving leave in order once the reply arrives") {
  Network net(1);
  const SegmentId lan = net.add_segment({.delay = ms(1)});
  Stack& a = net.add_stack(lan, host_config(1));
  Stack& b = net.add_stack(lan, host_config(2));
  SentLog sent(net, net.port_of(a));

  const uint8_t payload[32] = {};
  REQUIRE(a.send_echo_request(host_ip(2), 9, 0, payload, net.now()));
  REQUIRE(a.send_echo_request(host_ip(2), 9, 1, payload, net.now()));
  REQUIRE(a.send_ipv4(host_ip(2), 253, payload, net.now()));  // RFC 3692 experimental
  REQUIRE(a.send_echo_request(host_ip(2), 9, 2, payload, net.now()));
  REQUIRE(a.send_echo_request(host_ip(2), 9, 3, payload, net.now()));
  size_t replies = 0;
  CHECK(net.run_until([&] { return (replies += drain_replies(a)) == 4; }, seconds(1)));

  // The request leaves at once; the reply is back after two 1 ms hops; all go then.
  const std::string echo = "198.18.0.1 > 198.18.0.2 icmp echo request id 9 seq ";
  CHECK(sent.texts() == std::vector<std::string>{kWhoHas2, echo + "0 len 32", echo + "1 len 32",
                                                 "198.18.0.1 > 198.18.0.2 proto 253",
                                                 echo + "2 len 32", echo + "3 len 32"});
  REQUIRE(sent.lines.size() == 6);
  CHECK(sent.lines[0].time == Instant{});
  for (size_t i = 1; i < 6; ++i) CHECK(sent.lines[i].time == Instant{} + ms(2));
  CHECK(a.counters()[Counter::ArpOutRequests] == 1);
  CHECK(a.counters()[Counter::IcmpOutEchos] == 4);
  CHECK(b.counters()[Counter::IcmpInEchos] == 4);
  CHECK(a.counters()[Counter::IcmpInEchoReps] == 4);
  CHECK(b.counters().drops(DropReason::IpUnknownProtocol) == 1);
  CHECK(a.counters()[Counter::IcmpInDestUnreachs] == 1);  // protocol 253 unreachable
}

TEST_CASE("an address nobody owns: requests at the retransmit interval, then the queue drops") {
  struct Case {
    Duration retransmit_interval;
    int max_requests;
  };
  for (const Case c : {Case{seconds(1), 3}, Case{ms(250), 5}, Case{seconds(2), 1}}) {
    CAPTURE(c.max_requests);
    const Instant t0 = Instant{} + seconds(1000);  // not at the clock's origin
    Network net(1, t0);
    const SegmentId lan = net.add_segment({.delay = ms(1)});
    StackConfig config = host_config(1);
    config.arp.retransmit_interval = c.retransmit_interval;
    config.arp.max_requests = c.max_requests;
    Stack& a = net.add_stack(lan, config);
    net.add_stack(lan, host_config(2));
    SentLog sent(net, net.port_of(a));

    REQUIRE(a.send_echo_request(host_ip(99), 1, 0, {}, net.now()));
    REQUIRE(a.send_echo_request(host_ip(99), 1, 1, {}, net.now()));
    const auto& counters = a.counters();
    REQUIRE(net.run_until([&] { return counters.drops(DropReason::ArpResolveFailed) > 0; },
                          seconds(60)));

    std::vector<Instant> expected_requests;
    for (int i = 0; i < c.max_requests; ++i) {
      expected_requests.push_back(t0 + c.retransmit_interval * i);
    }
    CHECK(sent.times_of("arp who-has 198.18.0.99 tell 198.18.0.1") == expected_requests);
    CHECK(net.now() == t0 + c.retransmit_interval * c.max_requests);  // the last one waited too
    CHECK(counters.drops(DropReason::ArpResolveFailed) == 2);
    CHECK(counters[Counter::ArpUnresolvedDiscards] == 2);
    CHECK(counters[Counter::ArpResolveFailures] == 1);
    CHECK_FALSE(a.arp_lookup(host_ip(99)));

    net.run_for(seconds(30));  // and then silence
    CHECK(sent.lines.size() == static_cast<size_t>(c.max_requests));
    CHECK(counters[Counter::ArpUnresolvedDiscards] == 2);
  }
}

TEST_CASE("a cache entry expires after its lifetime and the next send resolves again") {
  for (const Duration lifetime : {seconds(10), seconds(60)}) {
    CAPTURE(lifetime.ms());
    Network net(1);
    const SegmentId lan = net.add_segment({.delay = ms(1)});
    StackConfig config = host_config(1);
    config.arp.entry_lifetime = lifetime;
    Stack& a = net.add_stack(lan, config);
    net.add_stack(lan, host_config(2));
    SentLog sent(net, net.port_of(a));

    REQUIRE(ping_until_answered(net, a, host_ip(2), 1));
    const Instant learned = Instant{} + ms(2);  // the reply's arrival
    CHECK(a.arp_lookup(host_ip(2)) == host_mac(2));

    net.run_until([] { return false; }, (learned + lifetime - ms(1)) - net.now());
    CHECK(a.arp_lookup(host_ip(2)) == host_mac(2));
    net.run_for(ms(2));
    CHECK_FALSE(a.arp_lookup(host_ip(2)));

    const Instant resend = net.now();
    REQUIRE(ping_until_answered(net, a, host_ip(2), 1));
    CHECK(sent.times_of(kWhoHas2) == std::vector{Instant{}, resend});
    CHECK(a.counters()[Counter::ArpOutRequests] == 2);
    CHECK(a.arp_lookup(host_ip(2)) == host_mac(2));
  }
}

TEST_CASE("the queue of a resolving entry is bounded") {
  struct Case {
    size_t limit;
    int sent;
    uint64_t dropped;
  };
  for (const Case c : {Case{64, 5, 0}, Case{3, 5, 2}, Case{1, 4, 3}}) {
    CAPTURE(c.limit);
    Network net(1);
    const SegmentId lan = net.add_segment({.delay = ms(1)});
    StackConfig config = host_config(1);
    config.arp.max_queued_per_entry = c.limit;
    Stack& a = net.add_stack(lan, config);
    Stack& b = net.add_stack(lan, host_config(2));
    for (uint16_t seq = 0; seq < c.sent; ++seq) {
      REQUIRE(a.send_echo_request(host_ip(2), 1, seq, {}, net.now()));
    }
    net.run_for(ms(100));
    CHECK(a.counters().drops(DropReason::ArpQueueFull) == c.dropped);
    CHECK(b.counters()[Counter::IcmpInEchos] == c.sent - c.dropped);
    CHECK(drain_replies(a) == c.sent - c.dropped);
  }
}

}  // namespace
}  // namespace tapstack::sim
