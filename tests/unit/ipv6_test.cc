// IPv6 (RFC 8200): the fixed header's checks (Linux's ipv6_rcv()), the extension-header walk
// with its bounds (AMNESIA:33), options by their action bits (§4.2), routing headers (§4.4,
// RFC 5095), Fragment headers (§4.5, RFC 6946), the header writer and the pseudo-header (§8.1).
// Every packet is built here byte by byte.
#include <doctest/doctest.h>

#include <algorithm>
#include <optional>
#include <vector>

#include "stack/ipv6.h"
#include "stack/tcp/header.h"

namespace tapstack {
namespace {

using Bytes = std::vector<uint8_t>;

// 2001:db8::1 and 2001:db8::2, as bytes and as addresses.
const Bytes kSourceBytes{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
const Bytes kDestinationBytes{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
const IpAddress kSource = *IpAddress::parse("2001:db8::1");
const IpAddress kDestination = *IpAddress::parse("2001:db8::2");

constexpr uint8_t kTcp = 6;
constexpr uint8_t kHopByHop = 0;
constexpr uint8_t kRouting = 43;
constexpr uint8_t kFragment = 44;
constexpr uint8_t kNoNext = 59;
constexpr uint8_t kDestOpts = 60;

Bytes operator+(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// The fixed header: version 6, the given next header and payload length, hop limit 64.
Bytes fixed_header(uint8_t next_header, size_t payload_length, const Bytes& source = kSourceBytes) {
  Bytes h{0x60,
          0,
          0,
          0,
          static_cast<uint8_t>(payload_length >> 8),
          static_cast<uint8_t>(payload_length),
          next_header,
          64};
  return h + source + kDestinationBytes;
}

// A fixed header with next_header followed by `rest`, whose size is the payload length.
Bytes packet(uint8_t next_header, const Bytes& rest) {
  return fixed_header(next_header, rest.size()) + rest;
}

// A hop-by-hop, destination options or routing header: the next header, Hdr Ext Len for
// the body (which must make the header a multiple of 8), then the body.
Bytes extension(uint8_t next_header, const Bytes& body) {
  REQUIRE((2 + body.size()) % 8 == 0);
  return Bytes{next_header, static_cast<uint8_t>((2 + body.size()) / 8 - 1)} + body;
}
// An options header whose only content is a PadN of 4 zero bytes.
Bytes padded(uint8_t next_header) {
  return extension(next_header, {1, 4, 0, 0, 0, 0});
}
Bytes routing(uint8_t next_header, uint8_t type, uint8_t segments_left) {
  return extension(next_header, {type, segments_left, 0, 0, 0, 0});
}
Bytes fragment_header(uint8_t next_header, uint16_t offset, bool more, uint32_t id) {
  const uint16_t field = static_cast<uint16_t>(offset | (more ? 1 : 0));
  return {next_header,
          0,
          static_cast<uint8_t>(field >> 8),
          static_cast<uint8_t>(field),
          static_cast<uint8_t>(id >> 24),
          static_cast<uint8_t>(id >> 16),
          static_cast<uint8_t>(id >> 8),
          static_cast<uint8_t>(id)};
}
Bytes data(size_t n) {
  return Bytes(n, 0xab);
}

// parse_ipv6 and then the walk, which must both succeed.
Ipv6Datagram walked(const Bytes& bytes) {
  Ipv6Datagram d;
  REQUIRE_FALSE(parse_ipv6(bytes, d).has_value());
  const auto problem = walk_ipv6_extensions(d);
  REQUIRE_FALSE(problem.has_value());
  return d;
}
// The walk's problem with a packet whose fixed header parses.
Ipv6Problem walk_problem(const Bytes& bytes) {
  Ipv6Datagram d;
  REQUIRE_FALSE(parse_ipv6(bytes, d).has_value());
  const auto problem = walk_ipv6_extensions(d);
  REQUIRE(problem.has_value());
  return *problem;
}

TEST_CASE("parse_ipv6: the fixed header's fields, link padding cut off") {
  Bytes bytes = packet(kTcp, data(20));
  bytes[0] = 0x6a;  // traffic class 0xab, flow label 0xcdef1
  bytes[1] = 0xbc;
  bytes[2] = 0xde;
  bytes[3] = 0xf1;
  bytes[7] = 3;
  bytes.resize(bytes.size() + 6, 0);  // Ethernet padding
  Ipv6Datagram d;
  REQUIRE_FALSE(parse_ipv6(bytes, d).has_value());
  CHECK(d.header.traffic_class == 0xab);
  CHECK(d.header.flow_label == 0xcdef1);
  CHECK(d.header.payload_length == 20);
  CHECK(d.header.next_header == kTcp);
  CHECK(d.header.hop_limit == 3);
  CHECK(d.header.source == kSource);
  CHECK(d.header.destination == kDestination);
  CHECK(d.packet.size() == 60);
  CHECK(d.payload.size() == 20);
  CHECK(d.payload_offset == 40);
  CHECK(d.protocol == kTcp);
  CHECK(d.protocol_field == 6);
  CHECK_FALSE(d.fragment.has_value());
}

TEST_CASE("parse_ipv6: the checks of ipv6_rcv()") {
  struct Row {
    const char* name;
    Bytes bytes;
    DropReason reason;
  };
  Bytes version4 = packet(kTcp, data(20));
  version4[0] = 0x40;
  Bytes beyond = packet(kTcp, data(20));
  beyond.pop_back();
  const Bytes multicast_source{0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  const Row rows[] = {
      {"shorter than 40 bytes", Bytes(39, 0x60), DropReason::Ip6Truncated},
      {"version 4", version4, DropReason::Ip6BadVersion},
      {"payload length beyond the frame", beyond, DropReason::Ip6PayloadBeyondFrame},
      {"jumbogram", fixed_header(kHopByHop, 0) + data(8), DropReason::Ip6Jumbogram},
      {"multicast source", fixed_header(kTcp, 20, multicast_source) + data(20),
       DropReason::Ip6BadSource},
  };
  for (const Row& row : rows) {
    CAPTURE(row.name);
    Ipv6Datagram d;
    CHECK(parse_ipv6(row.bytes, d) == row.reason);
  }
}

TEST_CASE("parse_ipv6: payload length 0 is an empty packet unless hop-by-hop follows") {
  Ipv6Datagram d;
  REQUIRE_FALSE(parse_ipv6(fixed_header(kNoNext, 0), d).has_value());
  CHECK(d.payload.empty());
  CHECK_FALSE(walk_ipv6_extensions(d).has_value());
  CHECK(d.protocol == kNoNext);
}

TEST_CASE("write_ipv6_header writes what parse_ipv6 reads") {
  Ipv6Header h;
  h.traffic_class = 0xab;
  h.flow_label = 0xcdef1;
  h.payload_length = 0x1234;
  h.next_header = kTcp;
  h.hop_limit = 255;
  h.source = kSource;
  h.destination = kDestination;
  Bytes out(40);
  write_ipv6_header(out.data(), h);
  const Bytes expected =
      Bytes{0x6a, 0xbc, 0xde, 0xf1, 0x12, 0x34, kTcp, 255} + kSourceBytes + kDestinationBytes;
  CHECK(out == expected);
}

TEST_CASE("ipv6_pseudo_header_sum: RFC 8200 §8.1, and TCP's agrees") {
  // The sum by hand: the 16-bit words of both addresses, the length's two halves, the protocol.
  const uint32_t length = 0x12345;
  uint32_t sum = 0;
  for (size_t i = 0; i < 16; i += 2) {
    sum += uint32_t{kSourceBytes[i]} << 8 | kSourceBytes[i + 1];
    sum += uint32_t{kDestinationBytes[i]} << 8 | kDestinationBytes[i + 1];
  }
  sum += (length >> 16) + (length & 0xffff) + kTcp;
  while (sum > 0xffff) sum = (sum >> 16) + (sum & 0xffff);
  CHECK(ipv6_pseudo_header_sum(kSource, kDestination, length, kTcp) == sum);
  CHECK(ipv6_pseudo_header_sum(kSource, kDestination, 1460, kTcp) ==
        tcp_pseudo_header_sum(1460, kSource, kDestination));
  CHECK(ipv6_pseudo_header_sum(kSource, kDestination, 8, 58) !=
        ipv6_pseudo_header_sum(kSource, kDestination, 8, kTcp));
}

TEST_CASE("walk: no extension headers stops at once") {
  const Ipv6Datagram d = walked(packet(kTcp, data(20)));
  CHECK(d.protocol == kTcp);
  CHECK(d.payload_offset == 40);
  CHECK(d.protocol_field == 6);
  CHECK(d.payload.size() == 20);
}

TEST_CASE("walk: hop-by-hop, destination options and a spent routing header are passed") {
  const Bytes rest = padded(kDestOpts) + padded(kRouting) + routing(kTcp, 2, 0) + data(20);
  const Ipv6Datagram d = walked(packet(kHopByHop, rest));
  CHECK(d.protocol == kTcp);
  CHECK(d.payload_offset == 64);
  CHECK(d.protocol_field == 56);  // the routing header's next header
  CHECK(d.payload.size() == 20);
  CHECK_FALSE(d.fragment.has_value());
}

TEST_CASE("walk: the next header after the chain is not the walk's concern") {
  CHECK(walked(packet(kDestOpts, padded(kNoNext))).protocol == kNoNext);
  const Ipv6Datagram d = walked(packet(kDestOpts, padded(253) + data(4)));
  CHECK(d.protocol == 253);
  CHECK(d.payload_offset == 48);
}

TEST_CASE("walk: at most 8 extension headers") {
  // Each header names the next; the last of the chain names TCP.
  Bytes chain8;
  for (int i = 0; i < 8; ++i) chain8 = chain8 + padded(i == 7 ? kTcp : kDestOpts);
  const Ipv6Datagram d = walked(packet(kDestOpts, chain8 + data(20)));
  CHECK(d.protocol == kTcp);
  CHECK(d.payload_offset == 40 + 64);

  Bytes chain9;
  for (int i = 0; i < 9; ++i) chain9 = chain9 + padded(i == 8 ? kTcp : kDestOpts);
  const Ipv6Problem p = walk_problem(packet(kDestOpts, chain9 + data(20)));
  CHECK(p.reason == DropReason::Ip6ExtTooMany);
  CHECK_FALSE(p.icmp.has_value());
}

TEST_CASE("walk: at most 2048 bytes of extension headers") {
  // A hop-by-hop header of 2048 bytes (Hdr Ext Len 255): one PadN after another.
  Bytes body;
  while (body.size() < 2046) {
    const size_t n = std::min<size_t>(255, 2046 - body.size() - 2);
    body = body + Bytes{1, static_cast<uint8_t>(n)} + Bytes(n, 0);
  }
  REQUIRE(body.size() == 2046);
  const Bytes biggest = extension(kTcp, body);
  REQUIRE(biggest.size() == 2048);
  CHECK(walked(packet(kHopByHop, biggest + data(20))).payload_offset == 40 + 2048);

  Bytes then_more = biggest;
  then_more[0] = kDestOpts;
  const Ipv6Problem p = walk_problem(packet(kHopByHop, then_more + padded(kTcp) + data(20)));
  CHECK(p.reason == DropReason::Ip6ExtTooMany);
}

TEST_CASE("walk: a header running past the payload length") {
  struct Row {
    const char* name;
    Bytes bytes;
  };
  Bytes long_header = padded(kTcp);
  long_header[1] = 1;  // claims 16 bytes
  Bytes within_frame = packet(kDestOpts, long_header);
  within_frame.resize(within_frame.size() + 8, 0);  // the frame has bytes past the payload
  const Row rows[] = {
      {"no room for the length byte", packet(kDestOpts, Bytes{kTcp})},
      {"longer than the payload", packet(kDestOpts, long_header)},
      {"longer than the payload, though not the frame", within_frame},
      {"a Fragment header cut short", packet(kFragment, Bytes{kTcp, 0, 0, 8})},
  };
  for (const Row& row : rows) {
    CAPTURE(row.name);
    const Ipv6Problem p = walk_problem(row.bytes);
    CHECK(p.reason == DropReason::Ip6ExtTruncated);
    CHECK_FALSE(p.icmp.has_value());
  }
}

TEST_CASE("walk: hop-by-hop anywhere but first is an unrecognized next header") {
  const Ipv6Problem p = walk_problem(packet(kDestOpts, padded(kHopByHop) + padded(kTcp)));
  CHECK(p.reason == DropReason::Ip6HopByHopNotFirst);
  REQUIRE(p.icmp.has_value());
  CHECK(p.icmp->code == 1);
  CHECK(p.icmp->pointer == 40);  // the destination options header's next-header byte
}

TEST_CASE("walk: options by the two high bits of their type (RFC 8200 §4.2)") {
  struct Row {
    uint8_t type;
    std::optional<DropReason> reason;
    std::optional<uint8_t> code;
    bool even_if_multicast;
  };
  const Row rows[] = {
      {0x1e, std::nullopt, std::nullopt, false},                  // 00: skipped
      {0x5e, DropReason::Ip6UnknownOption, std::nullopt, false},  // 01: discarded
      {0x9e, DropReason::Ip6UnknownOption, 2, true},              // 10: reported, even to multicast
      {0xde, DropReason::Ip6UnknownOption, 2, false},             // 11: reported unless multicast
  };
  for (const uint8_t header : {kHopByHop, kDestOpts}) {
    for (const Row& row : rows) {
      CAPTURE(header);
      CAPTURE(row.type);
      // Pad1, then the option with 3 bytes of data: at offset 43 of the packet.
      const Bytes bytes = packet(header, extension(kTcp, {0, row.type, 3, 7, 7, 7}) + data(20));
      Ipv6Datagram d;
      REQUIRE_FALSE(parse_ipv6(bytes, d).has_value());
      const auto problem = walk_ipv6_extensions(d);
      if (!row.reason) {
        CHECK_FALSE(problem.has_value());
        CHECK(d.protocol == kTcp);
        continue;
      }
      REQUIRE(problem.has_value());
      CHECK(problem->reason == *row.reason);
      CHECK(problem->icmp.has_value() == row.code.has_value());
      if (!row.code) continue;
      CHECK(problem->icmp->code == *row.code);
      CHECK(problem->icmp->pointer == 43);
      CHECK(problem->icmp->even_if_multicast == row.even_if_multicast);
    }
  }
}

TEST_CASE("walk: Pad1 and PadN fill a header; an option past its header is dropped") {
  CHECK(walked(packet(kDestOpts, extension(kTcp, {0, 0, 0, 0, 0, 0}) + data(20))).protocol == kTcp);
  CHECK(walked(packet(kDestOpts, extension(kTcp, {0, 1, 2, 0, 0, 0}) + data(20))).protocol == kTcp);
  // A PadN claiming 5 bytes of padding where 4 remain, and an option with no length byte.
  const Ipv6Problem past = walk_problem(packet(kDestOpts, extension(kTcp, {1, 5, 0, 0, 0, 0})));
  CHECK(past.reason == DropReason::Ip6BadOption);
  CHECK_FALSE(past.icmp.has_value());
  const Ipv6Problem cut = walk_problem(packet(kDestOpts, extension(kTcp, {0, 0, 0, 0, 0, 0x1e})));
  CHECK(cut.reason == DropReason::Ip6BadOption);
}

TEST_CASE("walk: routing headers (RFC 8200 §4.4, RFC 5095)") {
  struct Row {
    const char* name;
    uint8_t type;
    uint8_t segments_left;
    std::optional<DropReason> reason;
  };
  const Row rows[] = {
      {"type 0, segments left", 0, 1, DropReason::Ip6RoutingType0},
      {"type 0, none left: unrecognized type, skipped", 0, 0, std::nullopt},
      {"type 2, none left: skipped", 2, 0, std::nullopt},
      {"type 4, segments left", 4, 2, DropReason::Ip6RoutingUnknown},
      {"type 253, segments left", 253, 1, DropReason::Ip6RoutingUnknown},
  };
  for (const Row& row : rows) {
    CAPTURE(row.name);
    // After a destination options header: the routing header starts at 48.
    const Bytes bytes =
        packet(kDestOpts, padded(kRouting) + routing(kTcp, row.type, row.segments_left) + data(20));
    Ipv6Datagram d;
    REQUIRE_FALSE(parse_ipv6(bytes, d).has_value());
    const auto problem = walk_ipv6_extensions(d);
    if (!row.reason) {
      CHECK_FALSE(problem.has_value());
      CHECK(d.protocol == kTcp);
      CHECK(d.payload_offset == 56);
      continue;
    }
    REQUIRE(problem.has_value());
    CHECK(problem->reason == *row.reason);
    REQUIRE(problem->icmp.has_value());
    CHECK(problem->icmp->code == 0);
    CHECK(problem->icmp->pointer == 50);  // the routing type
    CHECK_FALSE(problem->icmp->even_if_multicast);
  }
}

TEST_CASE("walk: an atomic fragment is passed over (RFC 6946)") {
  const Ipv6Datagram d = walked(packet(kFragment, fragment_header(kTcp, 0, false, 9) + data(20)));
  CHECK_FALSE(d.fragment.has_value());
  CHECK(d.protocol == kTcp);
  CHECK(d.payload_offset == 48);
  CHECK(d.protocol_field == 40);
  CHECK(d.payload.size() == 20);
}

TEST_CASE("walk: a fragment stops the walk with its fields") {
  const Bytes rest = padded(kFragment) + fragment_header(kTcp, 1480, true, 0x12345678) + data(1232);
  const Ipv6Datagram d = walked(packet(kHopByHop, rest));
  REQUIRE(d.fragment.has_value());
  CHECK(d.fragment->id == 0x12345678);
  CHECK(d.fragment->offset == 1480);
  CHECK(d.fragment->more);
  CHECK(d.fragment->header_offset == 48);
  CHECK(d.fragment->next_header_field == 40);
  CHECK(d.protocol == kFragment);
  CHECK(d.payload_offset == 48);

  const Ipv6Datagram last = walked(packet(kFragment, fragment_header(kTcp, 8, false, 1) + data(3)));
  REQUIRE(last.fragment.has_value());
  CHECK(last.fragment->offset == 8);
  CHECK_FALSE(last.fragment->more);
  CHECK(last.fragment->header_offset == 40);
  CHECK(last.fragment->next_header_field == 6);
}

TEST_CASE("walk: fragment lengths (RFC 8200 §4.5)") {
  SUBCASE("M set and not a multiple of 8: Parameter Problem at the payload length") {
    const Ipv6Problem p =
        walk_problem(packet(kFragment, fragment_header(kTcp, 0, true, 1) + data(12)));
    CHECK(p.reason == DropReason::Ip6FragBadLength);
    REQUIRE(p.icmp.has_value());
    CHECK(p.icmp->code == 0);
    CHECK(p.icmp->pointer == 4);
  }
  SUBCASE("M set and empty: dropped without a report") {
    const Ipv6Problem p = walk_problem(packet(kFragment, fragment_header(kTcp, 8, true, 1)));
    CHECK(p.reason == DropReason::Ip6FragBadLength);
    CHECK_FALSE(p.icmp.has_value());
  }
  SUBCASE("the last fragment may be any length") {
    CHECK(walked(packet(kFragment, fragment_header(kTcp, 16, false, 1) + data(5))).fragment);
  }
  SUBCASE("ending at 65535 is the most there can be") {
    const Ipv6Datagram d =
        walked(packet(kFragment, fragment_header(kTcp, 65528, false, 1) + data(7)));
    CHECK(d.fragment->offset == 65528);
  }
  SUBCASE("beyond 65535: Parameter Problem at the fragment offset") {
    const Ipv6Problem p =
        walk_problem(packet(kFragment, fragment_header(kTcp, 65528, false, 1) + data(8)));
    CHECK(p.reason == DropReason::Ip6FragTooBig);
    REQUIRE(p.icmp.has_value());
    CHECK(p.icmp->code == 0);
    CHECK(p.icmp->pointer == 42);
  }
  SUBCASE("beyond 65535 with the unfragmentable headers counted") {
    const Bytes rest = padded(kFragment) + fragment_header(kTcp, 65520, false, 1) + data(8);
    // With the 8-byte header before it, the reassembled payload would be 65536 bytes.
    const Ipv6Problem p = walk_problem(packet(kDestOpts, rest));
    CHECK(p.reason == DropReason::Ip6FragTooBig);
    REQUIRE(p.icmp.has_value());
    CHECK(p.icmp->code == 0);
    CHECK(p.icmp->pointer == 50);
  }
}

}  // namespace
}  // namespace tapstack
