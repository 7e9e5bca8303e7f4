// IPv6 reassembly (RFC 8200 §4.5): any order, duplicates ignored, overlaps drop the datagram
// (RFC 5722), the first fragment holds the header chain (RFC 7112), 65535 bytes at most, the
// time, memory and datagram-count bounds. Fragments are built here byte by byte.
#include <doctest/doctest.h>

#include <algorithm>
#include <numeric>
#include <vector>

#include "stack/reassembly6.h"

namespace tapstack {
namespace {

using Bytes = std::vector<uint8_t>;

const IpAddress kSource = *IpAddress::parse("2001:db8::1");
const IpAddress kDestination = *IpAddress::parse("2001:db8::2");
constexpr uint8_t kIcmpv6 = 58;
constexpr uint8_t kTcp = 6;
constexpr uint8_t kFragmentType = 44;
constexpr uint8_t kDestOpts = 60;

Bytes operator+(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

Bytes fixed_header(uint8_t next_header, size_t payload_length) {
  Bytes h{0x60,
          0,
          0,
          0,
          static_cast<uint8_t>(payload_length >> 8),
          static_cast<uint8_t>(payload_length),
          next_header,
          64};
  h = h + Bytes{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return h + Bytes{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
}
// A destination options header holding one PadN of 4 bytes.
Bytes padded(uint8_t next_header) {
  return {next_header, 0, 1, 4, 0, 0, 0, 0};
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

// The upper-layer bytes of a datagram: 0, 1, 2, ... (mod 251, so that pieces differ).
Bytes upper_layer(size_t n) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(i % 251);
  return b;
}

// Cuts a datagram of `whole` upper-layer bytes into fragments. `unfragmentable` goes between
// the fixed header and each Fragment header (its first byte must be 44).
struct Fragmenter {
  Bytes whole = {};
  uint32_t id = 7;
  uint8_t next_header = kIcmpv6;
  Bytes unfragmentable = {};

  // The fragment [offset, offset + size) of whole.
  Bytes fragment(size_t offset, size_t size, bool more) const {
    const Bytes piece(whole.begin() + static_cast<std::ptrdiff_t>(offset),
                      whole.begin() + static_cast<std::ptrdiff_t>(offset + size));
    const Bytes rest = unfragmentable +
                       fragment_header(next_header, static_cast<uint16_t>(offset), more, id) +
                       piece;
    return fixed_header(unfragmentable.empty() ? kFragmentType : kDestOpts, rest.size()) + rest;
  }
  std::vector<Bytes> all(size_t piece) const {
    std::vector<Bytes> out;
    for (size_t offset = 0; offset < whole.size(); offset += piece) {
      const size_t size = std::min(piece, whole.size() - offset);
      out.push_back(fragment(offset, size, offset + size < whole.size()));
    }
    return out;
  }
};

// A fragment as the walk hands it on (parse_ipv6 and walk_ipv6_extensions both pass).
Ipv6Datagram walked(const Bytes& bytes) {
  Ipv6Datagram d;
  REQUIRE_FALSE(parse_ipv6(bytes, d).has_value());
  REQUIRE_FALSE(walk_ipv6_extensions(d).has_value());
  REQUIRE(d.fragment.has_value());
  return d;
}

// A fragment with its Fragment header at 40, the fields filled in by hand: what the walk
// would refuse, handed to the reassembler directly.
Ipv6Datagram unwalked(const Bytes& bytes, uint16_t offset, bool more, uint32_t id) {
  Ipv6Datagram d;
  REQUIRE_FALSE(parse_ipv6(bytes, d).has_value());
  d.fragment = Ipv6FragmentInfo{
      .id = id, .offset = offset, .more = more, .header_offset = 40, .next_header_field = 6};
  return d;
}

struct World {
  explicit World(ReassemblyConfig config = {}) : reassembler(config, context) {}
  Counters counters;
  Trace trace;
  LayerContext context{counters, trace};
  Reassembler6 reassembler;
  Instant now = Instant::from_ns(1'000'000'000);

  Fragment6Verdict add(const Bytes& bytes) { return reassembler.add(walked(bytes), now); }
};

using Outcome = Fragment6Verdict::Outcome;

TEST_CASE("fragments in order make the datagram") {
  World w;
  Fragmenter f{.whole = upper_layer(2400)};
  const auto fragments = f.all(1000);
  REQUIRE(fragments.size() == 3);
  CHECK(w.add(fragments[0]).outcome == Outcome::Held);
  CHECK(w.add(fragments[1]).outcome == Outcome::Held);
  CHECK(w.reassembler.datagrams() == 1);
  CHECK(w.reassembler.bytes() > 0);
  const Fragment6Verdict v = w.add(fragments[2]);
  REQUIRE(v.outcome == Outcome::Complete);
  CHECK(v.payload_offset == 40);
  CHECK(v.protocol_field == 6);
  const Bytes expected = fixed_header(kIcmpv6, 2400) + f.whole;
  CHECK(Bytes(v.datagram.begin(), v.datagram.end()) == expected);
  CHECK(w.counters[Counter::Ip6ReasmReqds] == 3);
  CHECK(w.counters[Counter::Ip6ReasmOKs] == 1);
  CHECK(w.counters[Counter::Ip6ReasmFails] == 0);
  CHECK(w.reassembler.datagrams() == 0);
  CHECK(w.reassembler.bytes() == 0);
}

TEST_CASE("fragments in any order make the same datagram") {
  Fragmenter f{.whole = upper_layer(3000)};
  const auto fragments = f.all(800);
  REQUIRE(fragments.size() == 4);
  const Bytes expected = fixed_header(kIcmpv6, 3000) + f.whole;
  std::vector<size_t> order(fragments.size());
  std::iota(order.begin(), order.end(), 0);
  int permutations = 0;
  do {
    World w;
    Fragment6Verdict last;
    for (size_t i : order) last = w.add(fragments[i]);
    REQUIRE(last.outcome == Outcome::Complete);
    CHECK(Bytes(last.datagram.begin(), last.datagram.end()) == expected);
    CHECK(w.counters[Counter::Ip6ReasmOKs] == 1);
    CHECK(w.reassembler.bytes() == 0);
    ++permutations;
  } while (std::next_permutation(order.begin(), order.end()));
  CHECK(permutations == 24);
}

TEST_CASE("the unfragmentable part is kept and its last next header patched") {
  World w;
  Fragmenter f{.whole = upper_layer(1500), .next_header = kTcp, .unfragmentable = padded(44)};
  const auto fragments = f.all(1000);
  CHECK(w.add(fragments[1]).outcome == Outcome::Held);
  const Fragment6Verdict v = w.add(fragments[0]);
  REQUIRE(v.outcome == Outcome::Complete);
  // The destination options header now names TCP; the payload length counts it.
  const Bytes expected = fixed_header(kDestOpts, 8 + 1500) + padded(kTcp) + f.whole;
  CHECK(Bytes(v.datagram.begin(), v.datagram.end()) == expected);
  CHECK(v.payload_offset == 48);
  CHECK(v.protocol_field == 40);

  // The walk resumes where the verdict says and finds TCP.
  Ipv6Datagram d;
  REQUIRE_FALSE(parse_ipv6(v.datagram, d).has_value());
  REQUIRE_FALSE(walk_ipv6_extensions(d).has_value());
  CHECK(d.protocol == kTcp);
  CHECK(d.payload_offset == 48);
  CHECK(d.payload.size() == 1500);
}

TEST_CASE("an overlap drops the whole datagram (RFC 5722)") {
  World w;
  Fragmenter f{.whole = upper_layer(3000)};
  CHECK(w.add(f.fragment(0, 1000, true)).outcome == Outcome::Held);
  const Fragment6Verdict v = w.add(f.fragment(992, 1000, true));
  CHECK(v.outcome == Outcome::Dropped);
  CHECK_FALSE(v.icmp.has_value());
  CHECK(w.counters.drops(DropReason::Ip6FragOverlap) == 1);
  CHECK(w.counters[Counter::Ip6ReasmFails] == 1);
  CHECK(w.reassembler.datagrams() == 0);
  CHECK(w.reassembler.bytes() == 0);
  // What is left no longer completes anything.
  CHECK(w.add(f.fragment(1000, 2000, false)).outcome == Outcome::Held);
  CHECK(w.counters[Counter::Ip6ReasmOKs] == 0);
}

TEST_CASE("a last fragment that disagrees with the length drops the datagram") {
  World w;
  Fragmenter f{.whole = upper_layer(3000)};
  CHECK(w.add(f.fragment(1000, 1000, false)).outcome == Outcome::Held);
  CHECK(w.add(f.fragment(2000, 1000, true)).outcome == Outcome::Dropped);
  CHECK(w.counters.drops(DropReason::Ip6FragOverlap) == 1);
  CHECK(w.reassembler.datagrams() == 0);
}

TEST_CASE("a duplicate is ignored and the datagram kept") {
  World w;
  Fragmenter f{.whole = upper_layer(2000)};
  CHECK(w.add(f.fragment(0, 1000, true)).outcome == Outcome::Held);
  const Fragment6Verdict dup = w.add(f.fragment(0, 1000, true));
  CHECK(dup.outcome == Outcome::Dropped);
  CHECK(w.counters.drops(DropReason::Ip6FragDuplicate) == 1);
  CHECK(w.counters[Counter::Ip6ReasmDuplicates] == 1);
  CHECK(w.counters[Counter::Ip6ReasmFails] == 0);
  CHECK(w.reassembler.datagrams() == 1);
  const Fragment6Verdict v = w.add(f.fragment(1000, 1000, false));
  REQUIRE(v.outcome == Outcome::Complete);
  CHECK(Bytes(v.datagram.begin(), v.datagram.end()) == fixed_header(kIcmpv6, 2000) + f.whole);
  CHECK(w.counters[Counter::Ip6ReasmReqds] == 3);
}

TEST_CASE("fragments of different datagrams are kept apart by id") {
  World w;
  Fragmenter a{.whole = upper_layer(2000), .id = 1};
  Fragmenter b{.whole = Bytes(2000, 0x55), .id = 2};
  CHECK(w.add(a.fragment(0, 1000, true)).outcome == Outcome::Held);
  CHECK(w.add(b.fragment(1000, 1000, false)).outcome == Outcome::Held);
  CHECK(w.reassembler.datagrams() == 2);
  const Fragment6Verdict v = w.add(b.fragment(0, 1000, true));
  REQUIRE(v.outcome == Outcome::Complete);
  CHECK(Bytes(v.datagram.begin(), v.datagram.end()) == fixed_header(kIcmpv6, 2000) + b.whole);
  CHECK(w.reassembler.datagrams() == 1);
}

TEST_CASE("time runs out: Time Exceeded gets the first fragment as received") {
  World w;
  Fragmenter f{.whole = upper_layer(3000)};
  Fragmenter headless{.whole = upper_layer(3000), .id = 8};
  const Bytes first = f.fragment(0, 1000, true);
  const Instant start = w.now;
  CHECK(w.add(f.fragment(2000, 1000, false)).outcome == Outcome::Held);
  CHECK(w.add(first).outcome == Outcome::Held);
  w.now = start + Duration::seconds(5);
  CHECK(w.add(headless.fragment(1000, 1000, true)).outcome == Outcome::Held);
  CHECK(w.reassembler.next_deadline() == start + Duration::seconds(30));

  std::vector<Bytes> expired;
  const auto collect = [&](ByteView packet) { expired.emplace_back(packet.begin(), packet.end()); };
  w.reassembler.on_timer(start + Duration::seconds(29), collect);
  CHECK(expired.empty());
  CHECK(w.reassembler.datagrams() == 2);
  w.reassembler.on_timer(start + Duration::seconds(30), collect);
  REQUIRE(expired.size() == 1);
  CHECK(expired[0] == first);
  CHECK(w.reassembler.datagrams() == 1);
  CHECK(w.reassembler.next_deadline() == start + Duration::seconds(35));
  // Without its first fragment a datagram expires without a report.
  w.reassembler.on_timer(start + Duration::seconds(35), collect);
  CHECK(expired.size() == 1);
  CHECK(w.counters.drops(DropReason::Ip6FragTimeout) == 2);
  CHECK(w.counters[Counter::Ip6ReasmTimeout] == 2);
  CHECK(w.counters[Counter::Ip6ReasmFails] == 2);
  CHECK(w.reassembler.datagrams() == 0);
  CHECK(w.reassembler.bytes() == 0);
  CHECK(w.reassembler.next_deadline() == Instant::never());
}

TEST_CASE("the memory bound evicts the oldest datagram") {
  World w(ReassemblyConfig{.memory_limit = 3000});
  for (uint32_t id = 1; id <= 3; ++id) {
    Fragmenter f{.whole = upper_layer(2000), .id = id};
    CHECK(w.add(f.fragment(0, 1000, true)).outcome == Outcome::Held);
    CHECK(w.reassembler.bytes() <= 3000);
  }
  CHECK(w.counters.drops(DropReason::Ip6FragMemoryLimit) == 1);
  CHECK(w.reassembler.datagrams() == 2);
  // The first datagram is gone: its last fragment starts a new one.
  Fragmenter first{.whole = upper_layer(2000), .id = 1};
  CHECK(w.add(first.fragment(1000, 1000, false)).outcome == Outcome::Held);
  // One that cannot fit even alone is dropped.
  Fragmenter huge{.whole = upper_layer(8000), .id = 9};
  CHECK(w.add(huge.fragment(0, 4000, true)).outcome == Outcome::Dropped);
  CHECK(w.reassembler.bytes() <= 3000);
}

TEST_CASE("at most max_datagrams are pending") {
  World w(ReassemblyConfig{.max_datagrams = 2});
  for (uint32_t id = 1; id <= 3; ++id) {
    Fragmenter f{.whole = upper_layer(2000), .id = id};
    CHECK(w.add(f.fragment(0, 1000, true)).outcome == Outcome::Held);
  }
  CHECK(w.reassembler.datagrams() == 2);
  CHECK(w.counters.drops(DropReason::Ip6FragMemoryLimit) == 1);
  Fragmenter third{.whole = upper_layer(2000), .id = 3};
  CHECK(w.add(third.fragment(1000, 1000, false)).outcome == Outcome::Complete);
}

TEST_CASE("65535 bytes of payload is the most a datagram reassembles to") {
  SUBCASE("exactly 65535") {
    World w;
    Fragmenter f{.whole = upper_layer(65535)};
    Fragment6Verdict last;
    for (const Bytes& fragment : f.all(8192)) last = w.add(fragment);
    REQUIRE(last.outcome == Outcome::Complete);
    REQUIRE(last.datagram.size() == 40 + 65535);
    CHECK(last.datagram[4] == 0xff);
    CHECK(last.datagram[5] == 0xff);
  }
  SUBCASE("one byte more: Parameter Problem at the fragment offset") {
    World w;
    const Bytes bytes = fixed_header(kFragmentType, 8 + 8) +
                        fragment_header(kIcmpv6, 65528, false, 7) + upper_layer(8);
    const Fragment6Verdict v = w.reassembler.add(unwalked(bytes, 65528, false, 7), w.now);
    CHECK(v.outcome == Outcome::Dropped);
    REQUIRE(v.icmp.has_value());
    CHECK(v.icmp->code == 0);
    CHECK(v.icmp->pointer == 42);
    CHECK(w.counters.drops(DropReason::Ip6FragTooBig) == 1);
    CHECK(w.counters[Counter::Ip6ReasmFails] == 1);
    CHECK(w.counters[Counter::Ip6ReasmReqds] == 1);
  }
  SUBCASE("a first fragment with a longer unfragmentable part than the last one's") {
    World w;
    // The later fragments pass their own check (no headers before their Fragment header),
    // but with the first fragment's 8-byte header the payload would be 65543 bytes.
    Fragmenter f{.whole = upper_layer(65535), .unfragmentable = padded(44)};
    Fragmenter plain{.whole = upper_layer(65535)};
    CHECK(w.add(f.fragment(0, 1000, true)).outcome == Outcome::Held);
    CHECK(w.add(plain.fragment(65520, 15, false)).outcome == Outcome::Held);
    CHECK(w.add(plain.fragment(1000, 64520, true)).outcome == Outcome::Dropped);
    CHECK(w.counters.drops(DropReason::Ip6FragTooBig) == 1);
    CHECK(w.counters[Counter::Ip6ReasmOKs] == 0);
    CHECK(w.reassembler.datagrams() == 0);
    CHECK(w.reassembler.bytes() == 0);
  }
}

TEST_CASE("a fragment with M set whose length is not a multiple of 8") {
  World w;
  const Bytes bytes = fixed_header(kFragmentType, 8 + 1001) + fragment_header(kIcmpv6, 0, true, 7) +
                      upper_layer(1001);
  const Fragment6Verdict v = w.reassembler.add(unwalked(bytes, 0, true, 7), w.now);
  CHECK(v.outcome == Outcome::Dropped);
  REQUIRE(v.icmp.has_value());
  CHECK(v.icmp->code == 0);
  CHECK(v.icmp->pointer == 4);
  CHECK(w.counters.drops(DropReason::Ip6FragBadLength) == 1);
  CHECK(w.counters[Counter::Ip6InHdrErrors] == 1);
  CHECK(w.counters[Counter::Ip6ReasmFails] == 1);
  CHECK(w.reassembler.datagrams() == 0);
}

TEST_CASE("the first fragment must hold the header chain through the upper layer (RFC 7112)") {
  struct Row {
    const char* name;
    uint8_t next_header;
    Bytes data;  // a multiple of 8: the fragment has M set
    bool refused;
  };
  // A destination options header of 24 bytes of which the fragment holds 8.
  const Bytes cut_header{kIcmpv6, 2, 1, 4, 0, 0, 0, 0};
  const Row rows[] = {
      {"TCP, 16 of its 20 bytes", kTcp, upper_layer(16), true},
      {"TCP, all 20 bytes", kTcp, upper_layer(24), false},
      {"ICMPv6, 8 bytes", kIcmpv6, upper_layer(8), false},
      {"an extension header cut off", kDestOpts, cut_header, true},
      {"an extension header, then ICMPv6", kDestOpts, padded(kIcmpv6) + upper_layer(8), false},
  };
  for (const Row& row : rows) {
    CAPTURE(row.name);
    World w;
    const Bytes rest = fragment_header(row.next_header, 0, true, 7) + row.data;
    const Fragment6Verdict v = w.add(fixed_header(kFragmentType, rest.size()) + rest);
    if (!row.refused) {
      CHECK(v.outcome == Outcome::Held);
      continue;
    }
    CHECK(v.outcome == Outcome::Dropped);
    REQUIRE(v.icmp.has_value());
    CHECK(v.icmp->code == 3);
    CHECK(v.icmp->pointer == 0);
    CHECK(w.counters.drops(DropReason::Ip6FragNoUpperHeader) == 1);
    CHECK(w.reassembler.datagrams() == 0);
  }
}

TEST_CASE("a first fragment whose header chain the walk refuses is dropped with its problem") {
  World w;
  // A hop-by-hop header after the Fragment header (at 48): once reassembled it would sit
  // right after the fixed header, so it is refused here, where it is not.
  const Bytes rest = fragment_header(0, 0, true, 7) + padded(kIcmpv6) + upper_layer(8);
  const Fragment6Verdict v = w.add(fixed_header(kFragmentType, rest.size()) + rest);
  CHECK(v.outcome == Outcome::Dropped);
  REQUIRE(v.icmp.has_value());
  CHECK(v.icmp->code == 1);
  CHECK(v.icmp->pointer == 40);  // the Fragment header's next-header byte
  CHECK(w.counters.drops(DropReason::Ip6HopByHopNotFirst) == 1);
  CHECK(w.reassembler.datagrams() == 0);
}

}  // namespace
}  // namespace tapstack
