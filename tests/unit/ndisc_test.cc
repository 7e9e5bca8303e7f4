// Neighbour discovery (RFC 4861) and DAD (RFC 4862 §5.4) alone, over a fake IPv6 layer and
// link: solicitations answered, duplicate address detection passing and failing, resolution
// with its queue and its failure, the states of §7.3 with their exact times, the cache bound,
// and the validation of §7.1.
#include <doctest/doctest.h>

#include <string>

#include "tests/unit/ip6_fakes.h"

namespace tapstack::test6 {
namespace {

const IpAddress kOurGroup = solicited_node_multicast(kOurs);   // ff02::1:ff00:2
const IpAddress kPeerGroup = solicited_node_multicast(kPeer);  // ff02::1:ff00:1
const MacAddress kOtherMac = mac("02:00:00:00:00:07");

NdiscConfig no_dad() {
  NdiscConfig config;
  config.dad_transmits = 0;
  return config;
}

// A world where kOurs is ours already.
struct NdiscWorld : World {
  explicit NdiscWorld(NdiscConfig config = no_dad()) : World(config) {
    ndisc.add_address(kOurs, now);
  }
  // An IPv6 packet of ours to kPeer, as the Stack hands it to Ndisc::send.
  Bytes data(uint8_t tag) const { return packet(kOurs, kPeer, 17, Bytes{tag, tag}).bytes; }
  void send(uint8_t tag) { ndisc.send(kPeer, data(tag), now); }
  // kPeer answers: an advertisement with its MAC.
  void advertise(uint8_t flags, MacAddress peer_mac = kPeerMac) {
    to_ndisc(kPeer, kOurs, advertisement(kPeer, flags, peer_mac));
  }
  // kPeer resolved and REACHABLE.
  void resolve() {
    send(0);
    advertise(0x60);
    links.payloads.clear();
    links.frames.clear();
  }
};

Bytes expected_solicitation(const IpAddress& source, const IpAddress& destination,
                            const IpAddress& target, bool with_option) {
  return with_checksum(solicitation(target, with_option ? std::optional{kOurMac} : std::nullopt),
                       source, destination);
}

void check_solicitation(const SentPayload& sent, const IpAddress& source,
                        const IpAddress& destination, const IpAddress& target) {
  CHECK(sent.source == source);
  CHECK(sent.destination == destination);
  CHECK(sent.next_header == 58);
  CHECK(sent.hop_limit == 255);
  CHECK(sent.payload ==
        expected_solicitation(source, destination, target, !is_ipv6_unspecified(source)));
}

TEST_CASE("a solicitation for our address: a solicited, overriding advertisement with our MAC") {
  NdiscWorld w;
  w.to_ndisc(kPeer, kOurGroup, solicitation(kOurs, kPeerMac));
  const SentPayload na = w.take_payload();
  CHECK(na.source == kOurs);
  CHECK(na.destination == kPeer);
  CHECK(na.hop_limit == 255);
  // Type 136, S and O set (0x60), our address, option 2 of length 1 with our MAC.
  const Bytes expected = {136, 0, 0, 0, 0x60, 0, 0, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
                          0,   0, 0, 0, 0,    0, 0, 2, 2,    1,    0x02, 0,    0, 0, 0, 2};
  CHECK(na.payload == with_checksum(expected, kOurs, kPeer));
  CHECK(w.count(Counter::Icmp6OutNeighborAdvertisements) == 1);
  CHECK(w.count(Counter::Icmp6OutMsgs) == 1);
  // §7.2.3: the asker is learned, STALE.
  CHECK(w.ndisc.state(kPeer) == NeighbourState::Stale);
  CHECK(w.ndisc.lookup(kPeer) == kPeerMac);
}

TEST_CASE("a DAD probe for our address is answered to all nodes, not solicited") {
  NdiscWorld w;
  w.to_ndisc(ipv6_unspecified(), kOurGroup, solicitation(kOurs));
  const SentPayload na = w.take_payload();
  CHECK(na.source == kOurs);
  CHECK(na.destination == ipv6_all_nodes());
  CHECK(na.payload == with_checksum(advertisement(kOurs, 0x20, kOurMac), kOurs, ipv6_all_nodes()));
  CHECK(w.ndisc.entries() == 0);
}

TEST_CASE("a solicitation for another address is dropped") {
  NdiscWorld w;
  w.to_ndisc(kPeer, solicited_node_multicast(ip("2001:db8::9")),
             solicitation(ip("2001:db8::9"), kPeerMac));
  CHECK(w.links.payloads.empty());
  CHECK(w.drops(DropReason::NdiscNotForUs) == 1);
  CHECK(w.ndisc.entries() == 0);
}

TEST_CASE("DAD: probes from :: one interval apart; the address is ours after the last") {
  NdiscConfig config;
  config.dad_transmits = 2;
  World w(config);
  w.ndisc.add_address(kOurs, w.now);
  check_solicitation(w.take_payload(), ipv6_unspecified(), kOurGroup, kOurs);
  CHECK(w.ndisc.tentative(kOurs));
  CHECK_FALSE(w.ndisc.owns(kOurs));
  CHECK(w.ndisc.joined(mac("33:33:ff:00:00:02")));
  CHECK(w.ndisc.joined(mac("33:33:00:00:00:01")));
  CHECK_FALSE(w.ndisc.joined(mac("33:33:ff:00:00:03")));
  CHECK(w.ndisc.next_deadline() == w.now + Duration::seconds(1));
  w.advance(Duration::milliseconds(999));
  CHECK(w.links.payloads.empty());
  w.advance(Duration::milliseconds(1));
  check_solicitation(w.take_payload(), ipv6_unspecified(), kOurGroup, kOurs);
  w.advance(Duration::milliseconds(999));
  CHECK(w.ndisc.tentative(kOurs));
  w.advance(Duration::milliseconds(1));
  CHECK(w.ndisc.owns(kOurs));
  CHECK_FALSE(w.ndisc.tentative(kOurs));
  CHECK(w.links.payloads.empty());
  CHECK(w.ndisc.next_deadline() == Instant::never());
  CHECK(w.count(Counter::Icmp6OutNeighborSolicits) == 2);
  CHECK(w.ndisc.dad_failures().empty());
}

TEST_CASE("DAD fails when another node probes for the same address") {
  World w;
  w.ndisc.add_address(kOurs, w.now);
  w.links.payloads.clear();
  w.to_ndisc(ipv6_unspecified(), kOurGroup, solicitation(kOurs));
  CHECK(w.links.payloads.empty());
  CHECK_FALSE(w.ndisc.owns(kOurs));
  CHECK_FALSE(w.ndisc.tentative(kOurs));
  CHECK_FALSE(w.ndisc.joined(mac("33:33:ff:00:00:02")));
  CHECK(w.count(Counter::NdiscDadFailures) == 1);
  REQUIRE(w.ndisc.dad_failures().size() == 1);
  CHECK(w.ndisc.dad_failures()[0] ==
        "2001:db8::2 is in use by another node probing for it at the same time");
  w.advance(Duration::seconds(5));
  CHECK_FALSE(w.ndisc.owns(kOurs));
}

TEST_CASE("DAD fails when a node advertises the address, and names its MAC") {
  World w;
  w.ndisc.add_address(kOurs, w.now);
  w.links.payloads.clear();
  w.to_ndisc(kOurs, ipv6_all_nodes(), advertisement(kOurs, 0x20, kOtherMac));
  CHECK_FALSE(w.ndisc.owns(kOurs));
  CHECK_FALSE(w.ndisc.tentative(kOurs));
  CHECK(w.count(Counter::NdiscDadFailures) == 1);
  REQUIRE(w.ndisc.dad_failures().size() == 1);
  CHECK(w.ndisc.dad_failures()[0] == "2001:db8::2 is in use by 02:00:00:00:00:07");
}

TEST_CASE("a node resolving our tentative address is ignored; DAD goes on") {
  World w;
  w.ndisc.add_address(kOurs, w.now);
  w.links.payloads.clear();
  w.to_ndisc(kPeer, kOurGroup, solicitation(kOurs, kPeerMac));
  CHECK(w.links.payloads.empty());
  CHECK(w.ndisc.entries() == 0);
  w.advance(Duration::seconds(1));
  CHECK(w.ndisc.owns(kOurs));
}

TEST_CASE("resolution: one solicitation, the packets wait, the advertisement sends them") {
  NdiscWorld w;
  w.send(1);
  w.send(2);
  check_solicitation(w.take_payload(), kOurs, kPeerGroup, kPeer);
  CHECK(w.links.payloads.empty());
  CHECK(w.links.frames.empty());
  CHECK(w.ndisc.state(kPeer) == NeighbourState::Incomplete);
  CHECK_FALSE(w.ndisc.lookup(kPeer));
  w.advertise(0x60);
  REQUIRE(w.links.frames.size() == 2);
  CHECK(w.links.frames[0].destination == kPeerMac);
  CHECK(w.links.frames[0].ethertype == 0x86dd);
  CHECK(w.links.frames[0].payload == w.data(1));
  CHECK(w.links.frames[1].payload == w.data(2));
  CHECK(w.ndisc.state(kPeer) == NeighbourState::Reachable);
  w.send(3);
  CHECK(w.links.frames.size() == 3);
  CHECK(w.links.payloads.empty());
}

TEST_CASE("an advertisement without the target's MAC does not resolve") {
  NdiscWorld w;
  w.send(1);
  w.to_ndisc(kPeer, kOurs, advertisement(kPeer, 0x60));
  CHECK(w.links.frames.empty());
  CHECK(w.ndisc.state(kPeer) == NeighbourState::Incomplete);
  // Unsolicited with the MAC: resolved, but only STALE.
  w.advertise(0x20);
  CHECK(w.links.frames.size() == 1);
  CHECK(w.ndisc.state(kPeer) == NeighbourState::Stale);
}

TEST_CASE("a solicitation from a neighbour being resolved resolves it and sends what waited") {
  NdiscWorld w;
  w.send(1);
  w.links.payloads.clear();
  w.to_ndisc(kPeer, kOurGroup, solicitation(kOurs, kPeerMac));
  REQUIRE(w.links.frames.size() == 1);
  CHECK(w.links.frames[0].destination == kPeerMac);
  // Sent through a STALE entry: DELAY (§7.3.3).
  CHECK(w.ndisc.state(kPeer) == NeighbourState::Delay);
  CHECK(w.take_payload().payload[0] == 136);
}

TEST_CASE("the queue of a neighbour being resolved is bounded, the oldest dropped") {
  NdiscConfig config = no_dad();
  config.max_queued_per_entry = 2;
  NdiscWorld w(config);
  w.send(1);
  w.send(2);
  w.send(3);
  CHECK(w.drops(DropReason::NdiscQueueFull) == 1);
  CHECK(w.count(Counter::NdiscUnresolvedDiscards) == 1);
  w.advertise(0x60);
  REQUIRE(w.links.frames.size() == 2);
  CHECK(w.links.frames[0].payload == w.data(2));
  CHECK(w.links.frames[1].payload == w.data(3));
}

TEST_CASE("with no queue, a packet for a neighbour being resolved is dropped, not kept") {
  NdiscConfig config = no_dad();
  config.max_queued_per_entry = 0;
  NdiscWorld w(config);
  w.send(1);
  w.send(2);
  CHECK(w.drops(DropReason::NdiscQueueFull) == 2);
  CHECK(w.links.payloads.size() == 1);  // the solicitation all the same
  w.advertise(0x60);
  CHECK(w.links.frames.empty());
  CHECK(w.ndisc.state(kPeer) == NeighbourState::Reachable);
}

TEST_CASE("resolution fails after three solicitations one second apart") {
  NdiscWorld w;
  const Instant start = w.now;
  w.send(1);
  w.send(2);
  check_solicitation(w.take_payload(), kOurs, kPeerGroup, kPeer);
  CHECK(w.ndisc.next_deadline() == start + Duration::seconds(1));
  CHECK(w.advance(Duration::milliseconds(999)).empty());
  CHECK(w.links.payloads.empty());
  CHECK(w.advance(Duration::milliseconds(1)).empty());
  check_solicitation(w.take_payload(), kOurs, kPeerGroup, kPeer);
  CHECK(w.advance(Duration::seconds(1)).empty());
  check_solicitation(w.take_payload(), kOurs, kPeerGroup, kPeer);
  CHECK(w.ndisc.next_deadline() == start + Duration::seconds(3));
  CHECK(w.advance(Duration::seconds(1) - Duration::nanoseconds(1)).empty());
  CHECK(w.drops(DropReason::NdiscResolveFailed) == 0);
  const auto unreachable = w.advance(Duration::nanoseconds(1));
  REQUIRE(unreachable.size() == 1);
  CHECK(unreachable[0] == kPeer);
  CHECK(w.now == start + Duration::seconds(3));
  CHECK(w.links.payloads.empty());
  CHECK(w.links.frames.empty());
  CHECK(w.drops(DropReason::NdiscResolveFailed) == 2);
  CHECK(w.count(Counter::NdiscResolveFailures) == 1);
  CHECK(w.count(Counter::Icmp6OutNeighborSolicits) == 3);
  CHECK(w.ndisc.entries() == 0);
  CHECK(w.ndisc.next_deadline() == Instant::never());
}

TEST_CASE("REACHABLE → STALE → DELAY → PROBE → REACHABLE") {
  NdiscWorld w;
  w.resolve();
  const Instant resolved = w.now;
  CHECK(w.ndisc.next_deadline() == resolved + Duration::seconds(30));
  w.advance(Duration::seconds(30));
  CHECK(w.ndisc.state(kPeer) == NeighbourState::Stale);
  CHECK(w.links.payloads.empty());
  w.send(1);  // goes out at once, to the MAC we have
  CHECK(w.links.frames.size() == 1);
  CHECK(w.ndisc.state(kPeer) == NeighbourState::Delay);
  CHECK(w.ndisc.next_deadline() == w.now + Duration::seconds(5));
  w.advance(Duration::seconds(5));
  CHECK(w.ndisc.state(kPeer) == NeighbourState::Probe);
  check_solicitation(w.take_payload(), kOurs, kPeer, kPeer);  // unicast now
  // Still sent to the MAC we have.
  w.send(2);
  CHECK(w.links.frames.size() == 2);
  w.advertise(0x60);
  CHECK(w.ndisc.state(kPeer) == NeighbourState::Reachable);
  CHECK(w.ndisc.next_deadline() == w.now + Duration::seconds(30));
}

TEST_CASE("PROBE fails after three unicast solicitations") {
  NdiscWorld w;
  w.resolve();
  w.advance(Duration::seconds(30));
  w.send(1);
  const Instant delayed = w.now;
  w.advance(Duration::seconds(5));
  check_solicitation(w.take_payload(), kOurs, kPeer, kPeer);
  w.advance(Duration::seconds(1));
  check_solicitation(w.take_payload(), kOurs, kPeer, kPeer);
  w.advance(Duration::seconds(1));
  check_solicitation(w.take_payload(), kOurs, kPeer, kPeer);
  CHECK(w.advance(Duration::seconds(1) - Duration::nanoseconds(1)).empty());
  const auto unreachable = w.advance(Duration::nanoseconds(1));
  REQUIRE(unreachable.size() == 1);
  CHECK(unreachable[0] == kPeer);
  CHECK(w.now == delayed + Duration::seconds(8));
  CHECK(w.count(Counter::NdiscResolveFailures) == 1);
  CHECK(w.drops(DropReason::NdiscResolveFailed) == 0);  // nothing was waiting
  CHECK_FALSE(w.ndisc.state(kPeer));
}

TEST_CASE("confirm() makes a neighbour REACHABLE again without a probe") {
  NdiscWorld w;
  w.resolve();
  w.advance(Duration::seconds(30));
  w.send(1);
  CHECK(w.ndisc.state(kPeer) == NeighbourState::Delay);
  w.ndisc.confirm(kPeer, w.now);
  CHECK(w.ndisc.state(kPeer) == NeighbourState::Reachable);
  w.advance(Duration::seconds(10));
  CHECK(w.links.payloads.empty());
  w.ndisc.confirm(ip("2001:db8::9"), w.now);  // unknown: nothing
  CHECK(w.ndisc.entries() == 1);
}

TEST_CASE("advertisements received: the override and solicited rules of §7.2.5") {
  NdiscWorld w;
  w.resolve();
  // Another MAC, no override: the MAC stays, the entry is no longer trusted.
  w.advertise(0x40, kOtherMac);
  CHECK(w.ndisc.lookup(kPeer) == kPeerMac);
  CHECK(w.ndisc.state(kPeer) == NeighbourState::Stale);
  // Override, unsolicited, another MAC: taken, STALE.
  w.advertise(0x20, kOtherMac);
  CHECK(w.ndisc.lookup(kPeer) == kOtherMac);
  CHECK(w.ndisc.state(kPeer) == NeighbourState::Stale);
  // Solicited, same MAC, no override: REACHABLE.
  w.advertise(0x40, kOtherMac);
  CHECK(w.ndisc.state(kPeer) == NeighbourState::Reachable);
  // Unsolicited, same MAC: nothing changes.
  w.advertise(0x00, kOtherMac);
  CHECK(w.ndisc.state(kPeer) == NeighbourState::Reachable);
  // For a neighbour we have no entry for: ignored.
  w.to_ndisc(ip("2001:db8::9"), kOurs, advertisement(ip("2001:db8::9"), 0x60, kOtherMac));
  CHECK(w.ndisc.entries() == 1);
}

TEST_CASE("a STALE entry unused for stale_lifetime goes") {
  NdiscWorld w;
  w.to_ndisc(kPeer, kOurGroup, solicitation(kOurs, kPeerMac));
  CHECK(w.ndisc.state(kPeer) == NeighbourState::Stale);
  CHECK(w.ndisc.next_deadline() == w.now + Duration::seconds(60));
  w.advance(Duration::seconds(60) - Duration::nanoseconds(1));
  CHECK(w.ndisc.entries() == 1);
  w.advance(Duration::nanoseconds(1));
  CHECK(w.ndisc.entries() == 0);
  CHECK(w.ndisc.next_deadline() == Instant::never());
}

TEST_CASE("a neighbour gone STALE is removed stale_lifetime after its last use, not after") {
  NdiscWorld w;
  w.resolve();  // its last use: now
  const Instant used = w.now;
  w.advance(Duration::seconds(30));
  CHECK(w.ndisc.state(kPeer) == NeighbourState::Stale);
  CHECK(w.ndisc.next_deadline() == used + Duration::seconds(60));
  w.advance(Duration::seconds(30));
  CHECK(w.ndisc.entries() == 0);
}

TEST_CASE("the cache is bounded: the oldest resolved entry goes; entries being resolved stay") {
  NdiscConfig config = no_dad();
  config.max_entries = 2;
  NdiscWorld w(config);
  const IpAddress a = ip("2001:db8::a");
  const IpAddress b = ip("2001:db8::b");
  const IpAddress c = ip("2001:db8::c");
  w.to_ndisc(a, kOurGroup, solicitation(kOurs, mac("02:00:00:00:00:0a")));
  w.now += Duration::seconds(1);
  w.to_ndisc(b, kOurGroup, solicitation(kOurs, mac("02:00:00:00:00:0b")));
  w.now += Duration::seconds(1);
  w.ndisc.send(c, w.data(1), w.now);
  CHECK(w.count(Counter::NdiscCacheEvictions) == 1);
  CHECK_FALSE(w.ndisc.state(a));
  CHECK(w.ndisc.state(b) == NeighbourState::Stale);
  CHECK(w.ndisc.state(c) == NeighbourState::Incomplete);
  w.ndisc.send(ip("2001:db8::d"), w.data(2), w.now);
  CHECK(w.count(Counter::NdiscCacheEvictions) == 2);
  CHECK(w.ndisc.entries() == 2);
  // Both being resolved: no room for a third.
  w.ndisc.send(ip("2001:db8::e"), w.data(3), w.now);
  CHECK(w.drops(DropReason::NdiscCacheFull) == 1);
  CHECK(w.ndisc.entries() == 2);
  CHECK_FALSE(w.ndisc.state(ip("2001:db8::e")));
}

TEST_CASE("§7.1 validation: what fails it is dropped") {
  NdiscWorld w;
  w.resolve();
  const Bytes ns = solicitation(kOurs, kPeerMac);
  Bytes bad_code = ns;
  bad_code[1] = 1;
  Bytes zero_option = ns;
  zero_option[25] = 0;
  Bytes past_end = ns;
  past_end[25] = 2;
  Bytes long_address = ns;  // a link-layer option of 16 bytes: not an Ethernet address
  long_address[25] = 2;
  long_address.resize(long_address.size() + 8);
  struct Case {
    const char* what;
    IpAddress source;
    IpAddress destination;
    Bytes message;
    uint8_t hop_limit;
  };
  const Case cases[] = {
      {"hop limit 254", kPeer, kOurGroup, ns, 254},
      {"code 1", kPeer, kOurGroup, bad_code, 255},
      {"23 bytes", kPeer, kOurGroup, Bytes(ns.begin(), ns.begin() + 23), 255},
      {"multicast target", kPeer, kOurGroup, solicitation(kOurGroup, kPeerMac), 255},
      {"option of length 0", kPeer, kOurGroup, zero_option, 255},
      {"option past the end", kPeer, kOurGroup, past_end, 255},
      {"link-layer option not 8 bytes", kPeer, kOurGroup, long_address, 255},
      {"DAD probe to a unicast address", ipv6_unspecified(), kOurs, solicitation(kOurs), 255},
      {"DAD probe with a source MAC", ipv6_unspecified(), kOurGroup, ns, 255},
      {"solicited advertisement to a group", kPeer, ipv6_all_nodes(),
       advertisement(kPeer, 0x60, kOtherMac), 255},
      {"advertisement, hop limit 64", kPeer, kOurs, advertisement(kPeer, 0x20, kOtherMac), 64},
  };
  uint64_t dropped = 0;
  for (const Case& c : cases) {
    CAPTURE(c.what);
    w.to_ndisc(c.source, c.destination, c.message, c.hop_limit);
    CHECK(w.drops(DropReason::NdiscBadMessage) == ++dropped);
    CHECK(w.links.payloads.empty());
    CHECK(w.ndisc.lookup(kPeer) == kPeerMac);
    CHECK(w.ndisc.state(kPeer) == NeighbourState::Reachable);
  }
  CHECK(w.count(Counter::Icmp6InErrors) == dropped);
}

TEST_CASE("router solicitations, advertisements and redirects are ignored") {
  NdiscWorld w;
  w.to_ndisc(kPeer, ipv6_all_nodes(), Bytes{134, 0, 0, 0, 64, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0});
  w.to_ndisc(kPeer, ipv6_all_routers(), Bytes{133, 0, 0, 0, 0, 0, 0, 0});
  CHECK(w.links.payloads.empty());
  CHECK(w.ndisc.entries() == 0);
  CHECK(w.drops(DropReason::NdiscBadMessage) == 0);
}

TEST_CASE("neighbour state names are those of `ip -6 neigh`") {
  CHECK(neighbour_state_name(NeighbourState::Incomplete) == "INCOMPLETE");
  CHECK(neighbour_state_name(NeighbourState::Reachable) == "REACHABLE");
  CHECK(neighbour_state_name(NeighbourState::Stale) == "STALE");
  CHECK(neighbour_state_name(NeighbourState::Delay) == "DELAY");
  CHECK(neighbour_state_name(NeighbourState::Probe) == "PROBE");
}

}  // namespace
}  // namespace tapstack::test6
