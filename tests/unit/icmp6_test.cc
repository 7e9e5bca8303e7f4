// ICMPv6 (RFC 4443) alone, over a fake IPv6 layer: echo both ways, the checksum over the
// pseudo-header, the errors we send and the rules of §2.4 that forbid them, the rate limit,
// Packet Too Big received (RFC 8201), neighbour discovery handed on.
#include <doctest/doctest.h>

#include <cerrno>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "tests/unit/ip6_fakes.h"

namespace tapstack::test6 {
namespace {

NdiscConfig no_dad() {
  NdiscConfig config;
  config.dad_transmits = 0;
  return config;
}

// A world where kOurs and kOurLinkLocal are ours already.
struct Icmp6World : World {
  explicit Icmp6World(Icmp6Config config = {}) : World(no_dad(), config) {
    ndisc.add_address(kOurs, now);
    ndisc.add_address(kOurLinkLocal, now);
    icmp6.start(now);
  }
  void receive(const Packet& p) { icmp6.input(p.datagram(), now); }
  void receive(const IpAddress& source, const IpAddress& destination, const Bytes& message) {
    receive(packet(source, destination, 58, with_checksum(message, source, destination)));
  }
};

Bytes echo(uint8_t type, uint16_t id, uint16_t sequence, const Bytes& data) {
  Bytes m = {type,
             0,
             0,
             0,
             static_cast<uint8_t>(id >> 8),
             static_cast<uint8_t>(id),
             static_cast<uint8_t>(sequence >> 8),
             static_cast<uint8_t>(sequence)};
  append(m, data);
  return m;
}

// A UDP datagram from the peer (next header 17): what a port unreachable is about.
Packet udp_from_peer(const IpAddress& destination = kOurs, size_t size = 12,
                     const IpAddress& source = kPeer) {
  Bytes udp(size, 0xab);
  return packet(source, destination, 17, udp);
}

Bytes error_message(uint8_t type, uint8_t code, uint32_t parameter, ByteView quoted) {
  Bytes m = {type,
             code,
             0,
             0,
             static_cast<uint8_t>(parameter >> 24),
             static_cast<uint8_t>(parameter >> 16),
             static_cast<uint8_t>(parameter >> 8),
             static_cast<uint8_t>(parameter)};
  append(m, quoted);
  return m;
}

TEST_CASE("an echo request to our address is answered from it, checksum over the pseudo-header") {
  Icmp6World w;
  w.receive(kPeer, kOurs, echo(128, 0x1234, 7, {'a', 'b', 'c'}));
  const SentPayload reply = w.take_payload();
  CHECK(reply.source == kOurs);
  CHECK(reply.destination == kPeer);
  CHECK(reply.next_header == 58);
  CHECK(reply.hop_limit == 64);
  CHECK(reply.payload == with_checksum(echo(129, 0x1234, 7, {'a', 'b', 'c'}), kOurs, kPeer));
  CHECK(checksum_of(kOurs, kPeer, reply.payload) == 0);
  CHECK(w.count(Counter::Icmp6InMsgs) == 1);
  CHECK(w.count(Counter::Icmp6InEchos) == 1);
  CHECK(w.count(Counter::Icmp6OutMsgs) == 1);
  CHECK(w.count(Counter::Icmp6OutEchoReplies) == 1);
}

TEST_CASE("an echo request to all nodes is answered from a unicast address of ours") {
  Icmp6World w;
  const IpAddress peer_link_local = ip("fe80::1");
  w.receive(peer_link_local, ipv6_all_nodes(), echo(128, 1, 1, {}));
  w.receive(kPeer, ipv6_all_nodes(), echo(128, 1, 2, {}));
  const SentPayload first = w.take_payload();
  CHECK(first.source == kOurLinkLocal);
  CHECK(first.destination == peer_link_local);
  CHECK(first.payload == with_checksum(echo(129, 1, 1, {}), kOurLinkLocal, peer_link_local));
  const SentPayload second = w.take_payload();
  CHECK(second.source == kOurs);
  CHECK_FALSE(is_ipv6_multicast(second.source));
}

TEST_CASE("no echo reply without an address to send it from, or to an unspecified source") {
  Icmp6World w;
  w.links.no_source = true;
  w.receive(kPeer, ipv6_all_nodes(), echo(128, 1, 1, {}));
  w.links.no_source = false;
  w.receive(ipv6_unspecified(), kOurs, echo(128, 1, 2, {}));
  CHECK(w.links.payloads.empty());
  CHECK(w.count(Counter::Icmp6InEchos) == 2);
}

TEST_CASE("a message with a wrong checksum or shorter than 4 bytes is dropped") {
  Icmp6World w;
  Bytes request = with_checksum(echo(128, 1, 1, {1, 2}), kPeer, kOurs);
  request[9] ^= 0x01;
  w.receive(packet(kPeer, kOurs, 58, request));
  // The same bytes summed as if from another source: the pseudo-header is in the sum.
  w.receive(packet(ip("2001:db8::9"), kOurs, 58, with_checksum(echo(128, 1, 1, {}), kPeer, kOurs)));
  w.receive(packet(kPeer, kOurs, 58, Bytes{128, 0, 0}));
  CHECK(w.links.payloads.empty());
  CHECK(w.drops(DropReason::Icmp6BadChecksum) == 2);
  CHECK(w.count(Counter::Icmp6InCsumErrors) == 2);
  CHECK(w.drops(DropReason::Icmp6Truncated) == 1);
  CHECK(w.count(Counter::Icmp6InErrors) == 3);
  CHECK(w.count(Counter::Icmp6InEchos) == 0);
}

TEST_CASE("a checksum the link vouched for is not checked again") {
  Icmp6World w;
  Packet p = packet(kPeer, kOurs, 58, echo(128, 1, 1, {}));  // checksum field left 0
  p.checksum_offloaded = true;
  w.receive(p);
  CHECK(w.links.payloads.size() == 1);
  CHECK(w.drops(DropReason::Icmp6BadChecksum) == 0);
}

TEST_CASE("a dropped message says why in the trace") {
  Icmp6World w;
  std::vector<std::string> lines;
  w.trace.set_sink([&](std::string_view line) { lines.emplace_back(line); });
  w.trace.begin("rx");
  w.receive(packet(kPeer, kOurs, 58, echo(128, 1, 1, {})));  // checksum field left 0
  w.trace.flush();
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].ends_with(fmt::format("| dropped: {} [counted: {}]",
                                       drop_reason_text(DropReason::Icmp6BadChecksum),
                                       drop_reason_counters(DropReason::Icmp6BadChecksum))));
}

TEST_CASE("echo replies are kept for poll_echo_reply, at most 1024") {
  Icmp6World w;
  w.receive(kPeer, kOurs, echo(129, 9, 1, Bytes(56, 0)));
  const auto reply = w.icmp6.poll_echo_reply();
  REQUIRE(reply);
  CHECK(reply->from == kPeer);
  CHECK(reply->id == 9);
  CHECK(reply->sequence == 1);
  CHECK(reply->payload_size == 56);
  CHECK(reply->received == w.now);
  CHECK_FALSE(w.icmp6.poll_echo_reply());
  for (uint16_t sequence = 0; sequence < 1030; ++sequence) {
    w.receive(kPeer, kOurs, echo(129, 9, sequence, {}));
  }
  CHECK(w.icmp6.poll_echo_reply()->sequence == 6);  // the oldest six made room
  CHECK(w.count(Counter::Icmp6InEchoReplies) == 1031);
}

TEST_CASE("send_echo_request: a request from the address the IP layer picks") {
  Icmp6World w;
  REQUIRE(w.icmp6.send_echo_request(kPeer, 0x0102, 0x0304, Bytes{9, 8, 7}, w.now));
  const SentPayload sent = w.take_payload();
  CHECK(sent.source == kOurs);
  CHECK(sent.destination == kPeer);
  CHECK(sent.payload == with_checksum(echo(128, 0x0102, 0x0304, {9, 8, 7}), kOurs, kPeer));
  CHECK(w.count(Counter::Icmp6OutEchos) == 1);
  w.links.no_source = true;
  const Status failed = w.icmp6.send_echo_request(kPeer, 1, 1, {}, w.now);
  REQUIRE_FALSE(failed);
  CHECK(failed.error().code == EADDRNOTAVAIL);
}

TEST_CASE("port unreachable quotes the packet, from the address it was sent to") {
  Icmp6World w;
  const Packet offending = udp_from_peer();
  w.icmp6.port_unreachable(offending.datagram(), w.now);
  const SentPayload sent = w.take_payload();
  CHECK(sent.source == kOurs);
  CHECK(sent.destination == kPeer);
  CHECK(sent.payload == with_checksum(error_message(1, 4, 0, offending.bytes), kOurs, kPeer));
  CHECK(w.count(Counter::Icmp6OutDestUnreachs) == 1);
  CHECK(w.count(Counter::Icmp6OutMsgs) == 1);
}

TEST_CASE("an error quotes as much as fits in 1280 bytes") {
  Icmp6World w;
  const Packet offending = udp_from_peer(kOurs, 2000);
  w.icmp6.port_unreachable(offending.datagram(), w.now);
  const SentPayload sent = w.take_payload();
  REQUIRE(sent.payload.size() == 1280 - 40);
  const ByteView quoted(offending.bytes.data(), 1280 - 40 - 8);
  CHECK(sent.payload == with_checksum(error_message(1, 4, 0, quoted), kOurs, kPeer));
}

TEST_CASE("parameter problem carries its code and pointer; reassembly time exceeded is code 1") {
  Icmp6World w;
  const Packet offending = udp_from_peer();
  w.icmp6.parameter_problem(offending.datagram(), {.code = 1, .pointer = 6}, w.now);
  CHECK(w.take_payload().payload ==
        with_checksum(error_message(4, 1, 6, offending.bytes), kOurs, kPeer));
  CHECK(w.count(Counter::Icmp6OutParmProblems) == 1);
  // A first fragment: a Fragment header (offset 0, M set) before the UDP header.
  const Bytes fragment = {17, 0, 0x00, 0x01, 0, 0, 0, 42, 0x12, 0x34, 0, 179, 0, 16, 0, 0};
  const Packet first = packet(kPeer, kOurs, 44, fragment);
  w.icmp6.reassembly_time_exceeded(first.bytes, w.now);
  CHECK(w.take_payload().payload ==
        with_checksum(error_message(3, 1, 0, first.bytes), kOurs, kPeer));
  CHECK(w.count(Counter::Icmp6OutTimeExcds) == 1);
}

TEST_CASE("no error about an ICMPv6 error or a neighbour discovery message; one about an echo") {
  Icmp6World w;
  const Bytes dest_unreach = {1, 4, 0, 0, 0, 0, 0, 0};
  const Bytes time_exceeded = {3, 0, 0, 0, 0, 0, 0, 0};
  const Bytes ns = solicitation(kOurs);
  w.icmp6.parameter_problem(packet(kPeer, kOurs, 58, dest_unreach).datagram(), {}, w.now);
  w.icmp6.parameter_problem(packet(kPeer, kOurs, 58, ns).datagram(), {}, w.now);
  // The error behind a destination options header (8 bytes of padding) is found all the same.
  Bytes behind_options = {58, 0, 1, 4, 0, 0, 0, 0};
  append(behind_options, time_exceeded);
  w.icmp6.parameter_problem(packet(kPeer, kOurs, 60, behind_options).datagram(), {}, w.now);
  // An ICMPv6 message too short to show its type counts as an error.
  w.icmp6.parameter_problem(packet(kPeer, kOurs, 58, {}).datagram(), {}, w.now);
  CHECK(w.links.payloads.empty());
  w.icmp6.parameter_problem(packet(kPeer, kOurs, 58, echo(128, 1, 1, {})).datagram(), {}, w.now);
  CHECK(w.links.payloads.size() == 1);
}

TEST_CASE("no error about a packet to a group, unless a parameter problem asks for one") {
  Icmp6World w;
  const Packet to_group = udp_from_peer(ipv6_all_nodes());
  w.icmp6.port_unreachable(to_group.datagram(), w.now);
  w.icmp6.parameter_problem(to_group.datagram(), {.code = 2, .pointer = 42}, w.now);
  w.icmp6.reassembly_time_exceeded(to_group.bytes, w.now);
  CHECK(w.links.payloads.empty());
  w.icmp6.parameter_problem(to_group.datagram(),
                            {.code = 2, .pointer = 42, .even_if_multicast = true}, w.now);
  const SentPayload sent = w.take_payload();
  CHECK(sent.source == kOurs);  // never the group
  CHECK(sent.destination == kPeer);
  CHECK(sent.payload == with_checksum(error_message(4, 2, 42, to_group.bytes), kOurs, kPeer));
}

TEST_CASE("no error to an unspecified or multicast source, nor without an address to send from") {
  Icmp6World w;
  w.icmp6.port_unreachable(udp_from_peer(kOurs, 12, ipv6_unspecified()).datagram(), w.now);
  w.icmp6.port_unreachable(udp_from_peer(kOurs, 12, ip("ff02::1:2")).datagram(), w.now);
  w.icmp6.parameter_problem(udp_from_peer(kOurs, 12, ipv6_unspecified()).datagram(),
                            {.even_if_multicast = true}, w.now);
  // To a group, so the source is the IP layer's choice: there is none.
  w.links.no_source = true;
  w.icmp6.parameter_problem(udp_from_peer(ipv6_all_nodes()).datagram(), {.even_if_multicast = true},
                            w.now);
  CHECK(w.links.payloads.empty());
  CHECK(w.count(Counter::Icmp6OutMsgs) == 0);
}

TEST_CASE("errors are limited by a token bucket") {
  Icmp6Config config;
  config.errors_per_second = 10;
  config.error_burst = 2;
  Icmp6World w(config);
  const Packet offending = udp_from_peer();
  for (int i = 0; i < 3; ++i) w.icmp6.port_unreachable(offending.datagram(), w.now);
  CHECK(w.links.payloads.size() == 2);
  CHECK(w.drops(DropReason::Icmp6RateLimited) == 1);
  CHECK(w.count(Counter::Icmp6OutRateLimitHost) == 1);
  w.now += Duration::milliseconds(99);  // 0.99 of a token
  w.icmp6.port_unreachable(offending.datagram(), w.now);
  CHECK(w.links.payloads.size() == 2);
  w.now += Duration::milliseconds(2);
  w.icmp6.port_unreachable(offending.datagram(), w.now);
  CHECK(w.links.payloads.size() == 3);
  CHECK(w.drops(DropReason::Icmp6RateLimited) == 2);
  // The errors the rules forbid take no token.
  w.now += Duration::seconds(1);
  for (int i = 0; i < 5; ++i)
    w.icmp6.port_unreachable(udp_from_peer(ipv6_all_nodes()).datagram(), w.now);
  for (int i = 0; i < 2; ++i) w.icmp6.port_unreachable(offending.datagram(), w.now);
  CHECK(w.links.payloads.size() == 5);
}

TEST_CASE("packet too big: the handler hears the quoted destination and an MTU of at least 1280") {
  Icmp6World w;
  std::vector<std::pair<IpAddress, uint32_t>> heard;
  w.icmp6.set_packet_too_big_handler(
      [&](const IpAddress& destination, uint32_t mtu) { heard.emplace_back(destination, mtu); });
  const IpAddress far = ip("2001:db8:1::7");
  const Packet ours = packet(kOurs, far, 6, Bytes(20, 0));
  const ByteView quoted(ours.bytes);
  const IpAddress router = ip("2001:db8::fe");
  w.receive(router, kOurs, error_message(2, 0, 1000, quoted));
  w.receive(router, kOurs, error_message(2, 0, 1400, quoted));
  w.receive(router, kOurs, error_message(2, 0, 1400, quoted.first(39)));  // header cut short
  REQUIRE(heard.size() == 2);
  CHECK(heard[0] == std::pair{far, uint32_t{1280}});
  CHECK(heard[1] == std::pair{far, uint32_t{1400}});
  CHECK(w.count(Counter::Icmp6InPktTooBigs) == 3);
  CHECK(w.drops(DropReason::Icmp6Malformed) == 1);
  CHECK(w.links.payloads.empty());  // no error about an error
}

TEST_CASE("errors received are counted by type") {
  Icmp6World w;
  const Packet ours = packet(kOurs, kPeer, 17, Bytes(8, 0));
  w.receive(kPeer, kOurs, error_message(1, 4, 0, ours.bytes));
  w.receive(kPeer, kOurs, error_message(3, 0, 0, ours.bytes));
  w.receive(kPeer, kOurs, error_message(4, 0, 6, ours.bytes));
  CHECK(w.count(Counter::Icmp6InDestUnreachs) == 1);
  CHECK(w.count(Counter::Icmp6InTimeExcds) == 1);
  CHECK(w.count(Counter::Icmp6InParmProblems) == 1);
  CHECK(w.count(Counter::Icmp6InMsgs) == 3);
  CHECK(w.links.payloads.empty());
}

TEST_CASE("a neighbor solicitation goes on to neighbour discovery and is answered") {
  Icmp6World w;
  const Bytes ns =
      with_checksum(solicitation(kOurs, kPeerMac), kPeer, solicited_node_multicast(kOurs));
  w.receive(packet(kPeer, solicited_node_multicast(kOurs), 58, ns, 255));
  CHECK(w.count(Counter::Icmp6InNeighborSolicits) == 1);
  const SentPayload na = w.take_payload();
  CHECK(na.payload[0] == 136);
  CHECK(na.hop_limit == 255);
  CHECK(w.count(Counter::Icmp6OutNeighborAdvertisements) == 1);
}

}  // namespace
}  // namespace tapstack::test6
