// IPv4 reassembly (RFC 791, RFC 815): any order, duplicates ignored, overlaps drop the
// datagram (RFC 5722's rule, which Linux applies to IPv4), 64 KiB limit, time and memory bounds.
#include <doctest/doctest.h>

#include <algorithm>
#include <numeric>

#include "tests/support/harness.h"

namespace tapstack::test {
namespace {

// An ICMP echo request of `payload` bytes, as the fragments [offset, offset + size) of its
// IP payload (offsets in bytes, multiples of 8 but for the last).
struct Fragmenter {
  explicit Fragmenter(size_t payload_size, uint16_t id = 77) : id(id) {
    Tins::ICMP icmp(Tins::ICMP::ECHO_REQUEST);
    icmp.id(1);
    icmp.sequence(1);
    Bytes data(payload_size);
    std::iota(data.begin(), data.end(), uint8_t{0});
    Tins::IP whole = ip_from_peer() / icmp / Tins::RawPDU(data);
    const Bytes serialized = whole.serialize();
    ip_payload.assign(serialized.begin() + 20, serialized.end());
  }
  Bytes fragment(size_t offset, size_t size, bool more) const {
    Tins::IP datagram = ip_from_peer() /
        Tins::RawPDU(Bytes(ip_payload.begin() + offset, ip_payload.begin() + offset + size));
    datagram.protocol(1);
    datagram.id(id);
    datagram.fragment_offset(static_cast<uint16_t>(offset / 8));
    datagram.flags(more ? Tins::IP::MORE_FRAGMENTS : Tins::IP::FLAG_RESERVED);
    return frame_from_peer(datagram);
  }
  // Splits the payload into pieces of `piece` bytes.
  std::vector<Bytes> all(size_t piece) const {
    std::vector<Bytes> out;
    for (size_t offset = 0; offset < ip_payload.size(); offset += piece) {
      const size_t size = std::min(piece, ip_payload.size() - offset);
      out.push_back(fragment(offset, size, offset + size < ip_payload.size()));
    }
    return out;
  }
  uint16_t id;
  Bytes ip_payload;
};

// Echo replies among what the stack sent, reassembled by libtins where we fragmented them.
size_t echo_replies(const std::vector<Bytes>& frames) {
  Tins::IPv4Reassembler reassembler;
  size_t replies = 0;
  for (const auto& f : frames) {
    Tins::EthernetII eth = parse(f);
    if (reassembler.process(eth) == Tins::IPv4Reassembler::FRAGMENTED) continue;
    const auto* icmp = eth.find_pdu<Tins::ICMP>();
    if (icmp && icmp->type() == Tins::ICMP::ECHO_REPLY) ++replies;
  }
  return replies;
}

TEST_CASE("fragments reassemble in any order") {
  const Fragmenter f(4000);
  auto fragments = f.all(1000 - 1000 % 8);
  std::vector<size_t> order(fragments.size());
  std::iota(order.begin(), order.end(), 0);
  int permutations = 0;
  do {
    Harness h;
    h.learn_peer();
    std::vector<Bytes> sent;
    for (size_t i : order) {
      for (auto& s : h.inject(fragments[i])) sent.push_back(std::move(s));
    }
    CHECK(echo_replies(sent) == 1);
    CHECK(h.count(Counter::IpReasmOKs) == 1);
    CHECK(h.count(Counter::IpReasmReqds) == fragments.size());
    CHECK(h.stack.reassembly_datagrams() == 0);
    CHECK(h.stack.reassembly_bytes() == 0);
    ++permutations;
  } while (std::next_permutation(order.begin(), order.end()));
  CHECK(permutations == 120);
}

TEST_CASE("the reassembled datagram is byte-exact") {
  const Fragmenter f(3000);
  Harness h;
  h.learn_peer();
  std::vector<Bytes> sent;
  for (const auto& fragment : f.all(1480)) {
    for (auto& s : h.inject(fragment)) sent.push_back(std::move(s));
  }
  // Reassemble our reply with libtins' own reassembler: the echo data must come back intact.
  Tins::IPv4Reassembler reassembler;
  Bytes reply_payload;
  for (const auto& s : sent) {
    Tins::EthernetII eth = parse(s);
    if (reassembler.process(eth) == Tins::IPv4Reassembler::REASSEMBLED) {
      reply_payload = eth.rfind_pdu<Tins::RawPDU>().payload();
    }
  }
  // libtins decodes the ICMP header; what follows it is the echo data.
  REQUIRE(reply_payload.size() == f.ip_payload.size() - 8);
  CHECK(std::equal(reply_payload.begin(), reply_payload.end(), f.ip_payload.begin() + 8));
}

TEST_CASE("duplicates are ignored and the datagram still completes") {
  const Fragmenter f(2000);
  const auto fragments = f.all(512);
  Harness h;
  h.learn_peer();
  h.inject(fragments[0]);
  h.inject(fragments[1]);
  h.inject(fragments[0]);
  h.inject(f.fragment(8, 256, true));  // wholly inside what arrived: a duplicate too
  std::vector<Bytes> sent;
  for (size_t i = 2; i < fragments.size(); ++i) sent = h.inject(fragments[i]);
  CHECK(echo_replies(sent) == 1);
  CHECK(h.drops(DropReason::IpFragDuplicate) == 2);
  CHECK(h.count(Counter::IpReasmFails) == 0);
}

TEST_CASE("overlapping fragments drop the whole datagram") {
  const Fragmenter f(2000);
  Harness h;
  h.learn_peer();
  h.inject(f.fragment(0, 512, true));
  h.inject(f.fragment(504, 512, true));  // overlaps the first by 8 bytes
  CHECK(h.drops(DropReason::IpFragOverlap) == 1);
  CHECK(h.count(Counter::IpReasmFails) == 1);
  CHECK(h.count(Counter::IpExtReasmOverlaps) == 1);
  CHECK(h.stack.reassembly_datagrams() == 0);
  // The rest arrives; nothing is delivered from a datagram already dropped.
  std::vector<Bytes> sent;
  for (size_t offset = 1016; offset < f.ip_payload.size(); offset += 512) {
    const size_t size = std::min<size_t>(512, f.ip_payload.size() - offset);
    for (auto& s : h.inject(f.fragment(offset, size, offset + size < f.ip_payload.size()))) {
      sent.push_back(std::move(s));
    }
  }
  CHECK(echo_replies(sent) == 0);
}

TEST_CASE("reassembly's verdicts and drops show in the trace, timer drops on a line of their own") {
  const Fragmenter f(2000);
  Harness h;
  std::vector<std::string> lines;
  h.stack.trace().set_sink([&](std::string_view line) { lines.emplace_back(line); });
  h.learn_peer();
  h.inject(f.fragment(0, 512, true));
  REQUIRE_FALSE(lines.empty());
  CHECK(lines.back().ends_with("| fragment held"));
  h.inject(f.fragment(504, 512, true));  // overlaps the first
  CHECK(lines.back().ends_with(
      "| dropped: ipv4: fragments overlap (RFC 5722) [counted: IpReasmFails, "
      "IpExtReasmOverlaps]"));
  h.inject(f.fragment(1024, 512, true));  // a new datagram, never completed
  lines.clear();
  h.advance(Duration::seconds(31));
  REQUIRE(lines.size() == 1);
  CHECK(lines[0] ==
        "timer: reassembly of 198.18.0.1 > 198.18.0.2 id 77 timed out | dropped: ipv4: "
        "reassembly did not complete in time [counted: IpReasmTimeout, IpReasmFails]");
}

TEST_CASE("fragments that disagree on the datagram's end drop it") {
  const Fragmenter f(2000);
  Harness h;
  h.inject(f.fragment(1024, 512, false));  // claims the datagram ends at 1536
  h.inject(f.fragment(1536, 472, true));   // but this reaches beyond
  CHECK(h.drops(DropReason::IpFragOverlap) == 1);
  CHECK(h.stack.reassembly_datagrams() == 0);
}

TEST_CASE("a non-last fragment must carry a multiple of 8 bytes") {
  const Fragmenter f(2000);
  Harness h;
  h.inject(f.fragment(0, 500, true));
  CHECK(h.drops(DropReason::IpFragBadLength) == 1);
  CHECK(h.stack.reassembly_datagrams() == 0);
}

TEST_CASE("fragments reaching beyond 65535 bytes drop the datagram") {
  const Fragmenter f(2000);
  Harness h;
  h.inject(f.fragment(0, 512, true));
  Tins::IP datagram = ip_from_peer() / Tins::RawPDU(Bytes(16, 0));
  datagram.protocol(1);
  datagram.id(f.id);
  datagram.fragment_offset(8190);  // 65520 + 20 + 16 > 65535
  h.inject(frame_from_peer(datagram));
  CHECK(h.drops(DropReason::IpFragTooBig) == 1);
  CHECK(h.stack.reassembly_datagrams() == 0);
  CHECK(h.stack.reassembly_bytes() == 0);
}

TEST_CASE("a datagram that never completes times out and frees its memory") {
  const Fragmenter f(2000);
  Harness h;
  h.learn_peer();
  h.inject(f.fragment(0, 512, true));
  CHECK(h.stack.reassembly_datagrams() == 1);
  CHECK(h.stack.reassembly_bytes() > 0);
  CHECK(h.advance(Duration::seconds(29)).empty());
  const auto sent = h.advance(Duration::seconds(1));
  CHECK(h.drops(DropReason::IpFragTimeout) == 1);
  CHECK(h.count(Counter::IpReasmTimeout) == 1);
  CHECK(h.stack.reassembly_datagrams() == 0);
  CHECK(h.stack.reassembly_bytes() == 0);
  // RFC 1122 §3.3.2: with the first fragment in hand, say so with Time Exceeded.
  REQUIRE(sent.size() == 1);
  const Tins::EthernetII eth = parse(sent[0]);
  const auto& icmp = eth.rfind_pdu<Tins::ICMP>();
  CHECK(icmp.type() == Tins::ICMP::TIME_EXCEEDED);
  CHECK(icmp.code() == 1);
}

TEST_CASE("without the first fragment, a timeout sends nothing") {
  const Fragmenter f(2000);
  Harness h;
  h.learn_peer();
  h.inject(f.fragment(512, 512, true));
  CHECK(h.advance(Duration::seconds(31)).empty());
  CHECK(h.drops(DropReason::IpFragTimeout) == 1);
}

TEST_CASE("memory is bounded: the oldest datagrams make room") {
  StackConfig config = default_config();
  config.reassembly.memory_limit = 16 * 1024;
  config.reassembly.max_datagrams = 1000;
  Harness h(config);
  for (uint16_t id = 0; id < 100; ++id) {
    const Fragmenter f(4000, id);
    h.inject(f.fragment(2048, 1024, true));
    CHECK(h.stack.reassembly_bytes() <= config.reassembly.memory_limit);
  }
  CHECK(h.drops(DropReason::IpFragMemoryLimit) > 0);
  CHECK(h.stack.reassembly_datagrams() < 100);
}

TEST_CASE("the number of datagrams in reassembly is bounded") {
  StackConfig config = default_config();
  config.reassembly.max_datagrams = 8;
  Harness h(config);
  for (uint16_t id = 0; id < 20; ++id) h.inject(Fragmenter(2000, id).fragment(0, 512, true));
  CHECK(h.stack.reassembly_datagrams() == 8);
  CHECK(h.drops(DropReason::IpFragMemoryLimit) == 12);
}

}  // namespace
}  // namespace tapstack::test
