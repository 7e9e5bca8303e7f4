// Bit corruption on the wire: every damaged frame a stack sees is dropped and counted under the
// check that caught it, and nothing damaged is delivered as if it were whole. The oracle is the
// independent parser of frames.h, not the stack's own.
#include <map>
#include <set>
#include <tuple>
#include <vector>

#include <doctest/doctest.h>

#include "stack/stack.h"
#include "tests/sim/frames.h"
#include "tests/sim/hosts.h"
#include "tests/sim/network.h"

namespace tapstack::sim {
namespace {

Duration ms(int64_t n) {
  return Duration::milliseconds(n);
}

// What a correct host must do with a frame, judged without the stack's code.
enum class Verdict {
  Accept,            // whole, or damaged only where nothing checks (the source MAC)
  DropIpChecksum,    // the IP header parses but its checksum is wrong
  DropIcmpChecksum,  // Ethernet and IP fine, ICMP checksum wrong
  DropOther,         // wrong destination MAC, ethertype, version, lengths
};

Verdict judge(ByteView frame, uint8_t host) {
  const auto ethernet = parse_ethernet(frame);
  if (!ethernet || ethernet->destination != host_mac(host)) return Verdict::DropOther;
  const auto ip = parse_ipv4(frame);
  if (!ip) return Verdict::DropOther;
  if (!ip->checksum_ok) return Verdict::DropIpChecksum;
  // With a good checksum the header is as sent: to us, ICMP, not a fragment.
  if (reference_checksum(ip->payload) != 0) return Verdict::DropIcmpChecksum;
  return Verdict::Accept;
}

uint64_t all_drops(const Counters& counters) {
  uint64_t sum = 0;
  for (size_t r = 0; r < kDropReasonCount; ++r) sum += counters.drops(static_cast<DropReason>(r));
  return sum;
}

TEST_CASE("corrupted frames are dropped by the check that catches them, never delivered") {
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    CAPTURE(seed);
    Network net(seed);
    const SegmentId lan = net.add_segment({.delay = ms(1)});
    Stack& a = net.add_stack(lan, host_config(1, seed));
    Stack& b = net.add_stack(lan, host_config(2, seed));
    // Resolve ARP on a clean wire: ARP has no checksum (the Ethernet FCS guards it in life).
    REQUIRE(a.send_echo_request(host_ip(2), 1, 0, {}, net.now()));
    REQUIRE(net.run_until([&] { return a.poll_echo_reply().has_value(); }, ms(100)));
    const Counters before_a = a.counters(), before_b = b.counters();

    net.set_impairments(lan, {.corrupt = 0.3, .delay = ms(1)});
    std::map<uint8_t, std::map<Verdict, uint64_t>> verdicts;  // host -> verdict -> frames
    const PortId port_a = net.port_of(a);
    net.add_observer([&](const WireEvent& e) {
      if (e.kind != WireEventKind::Deliver) return;
      const uint8_t host = e.port == port_a ? 1 : 2;
      ++verdicts[host][judge(e.frame, host)];
    });
    constexpr uint16_t kPings = 300;
    const std::vector<uint8_t> payload(64, 0xa5);
    for (uint16_t seq = 1; seq <= kPings; ++seq) {
      REQUIRE(a.send_echo_request(host_ip(2), 2, seq, payload, net.now()));
      net.run_for(ms(5));
    }
    net.run_for(ms(100));

    REQUIRE(net.segment_stats(lan).corrupted > 50);
    std::set<uint16_t> answered;
    while (auto reply = a.poll_echo_reply()) {
      CHECK(reply->id == 2);
      CHECK(reply->payload_size == 64);
      CHECK(answered.insert(reply->sequence).second);  // each once
      CHECK(reply->sequence >= 1);
      CHECK(reply->sequence <= kPings);
    }
    for (const auto& [host, stack, before] :
         {std::tuple{1, &a, &before_a}, std::tuple{2, &b, &before_b}}) {
      CAPTURE(host);
      auto& v = verdicts[static_cast<uint8_t>(host)];
      const Counters& now = stack->counters();
      auto delta = [&](Counter c) { return now[c] - (*before)[c]; };
      REQUIRE(v[Verdict::DropIpChecksum] > 0);
      REQUIRE(v[Verdict::DropIcmpChecksum] > 0);
      CHECK(delta(Counter::IpExtInCsumErrors) == v[Verdict::DropIpChecksum]);
      CHECK(delta(Counter::IcmpInCsumErrors) == v[Verdict::DropIcmpChecksum]);
      CHECK(delta(Counter::IpInHdrErrors) >=
            v[Verdict::DropIpChecksum]);  // a checksum error is one
      CHECK(all_drops(now) - all_drops(*before) ==
            v[Verdict::DropIpChecksum] + v[Verdict::DropIcmpChecksum] + v[Verdict::DropOther]);
      const Counter accepted = host == 1 ? Counter::IcmpInEchoReps : Counter::IcmpInEchos;
      CHECK(delta(accepted) == v[Verdict::Accept]);
    }
    CHECK(answered.size() == verdicts[1][Verdict::Accept]);
  }
}

}  // namespace
}  // namespace tapstack::sim
