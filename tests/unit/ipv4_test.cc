// IPv4 input checks (RFC 791, RFC 1122 §3.2.1): every malformed datagram is dropped with the
// right reason and counter, and nothing crashes.
#include <doctest/doctest.h>

#include <functional>

#include "stack/checksum.h"
#include "stack/ipv4.h"
#include "tests/support/harness.h"

namespace tapstack::test {
namespace {

constexpr size_t kIp = kEthernetHeaderSize;  // where the IPv4 header starts in a frame

void fix_ip_checksum(Bytes& frame) {
  const size_t ihl = (frame[kIp] & 0x0f) * 4u;
  store_be16(&frame[kIp + 10], 0);
  if (kIp + ihl <= frame.size()) {
    store_be16(&frame[kIp + 10], internet_checksum({&frame[kIp], ihl}));
  }
}

struct MalformedCase {
  const char* name;
  std::function<void(Bytes&)> mutate;
  DropReason reason;
  Counter counter;
};

TEST_CASE("malformed IPv4 datagrams are dropped with their reason and counter") {
  const MalformedCase cases[] = {
      {"truncated below 20 bytes", [](Bytes& f) { f.resize(kIp + 19); },
       DropReason::IpTruncated, Counter::IpInHdrErrors},
      {"empty after ethernet", [](Bytes& f) { f.resize(kIp); }, DropReason::IpTruncated,
       Counter::IpInHdrErrors},
      {"version 6", [](Bytes& f) { f[kIp] = 0x65; fix_ip_checksum(f); },
       DropReason::IpBadVersion, Counter::IpInHdrErrors},
      {"IHL 4", [](Bytes& f) { f[kIp] = 0x44; }, DropReason::IpBadHeaderLength,
       Counter::IpInHdrErrors},
      {"IHL 0", [](Bytes& f) { f[kIp] = 0x40; }, DropReason::IpBadHeaderLength,
       Counter::IpInHdrErrors},
      {"IHL beyond the frame", [](Bytes& f) { f[kIp] = 0x4f; f.resize(kIp + 40); },
       DropReason::IpTruncated, Counter::IpInHdrErrors},
      {"total length beyond the frame",
       [](Bytes& f) { store_be16(&f[kIp + 2], static_cast<uint16_t>(f.size())); fix_ip_checksum(f); },
       DropReason::IpTotalLengthBeyondFrame, Counter::IpExtInTruncatedPkts},
      {"total length below the header",
       [](Bytes& f) { store_be16(&f[kIp + 2], 19); fix_ip_checksum(f); },
       DropReason::IpBadHeaderLength, Counter::IpInHdrErrors},
      {"bad header checksum", [](Bytes& f) { f[kIp + 10] ^= 0x01; }, DropReason::IpBadChecksum,
       Counter::IpExtInCsumErrors},
      {"TTL 0", [](Bytes& f) { f[kIp + 8] = 0; fix_ip_checksum(f); }, DropReason::IpTtlZero,
       Counter::IpInHdrErrors},
      {"not our address",
       [](Bytes& f) { store_be32(&f[kIp + 16], ip("198.18.0.3").value); fix_ip_checksum(f); },
       DropReason::IpNotForUs, Counter::IpInAddrErrors},
      {"multicast source",
       [](Bytes& f) { store_be32(&f[kIp + 12], 0xe0000001); fix_ip_checksum(f); },
       DropReason::IpBadSource, Counter::IpInAddrErrors},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    Harness h;
    Bytes frame = echo_request_frame(1, 1, 32);
    c.mutate(frame);
    const auto sent = h.inject(frame);
    CHECK(sent.empty());
    CHECK(h.drops(c.reason) == 1);
    CHECK(h.count(c.counter) == 1);
    CHECK(h.count(Counter::IpInReceives) == 1);
    CHECK(h.count(Counter::IpInDelivers) == 0);
  }
}

TEST_CASE("a bad checksum counts as a header error too, as Linux counts it") {
  Harness h;
  Bytes frame = echo_request_frame(1, 1, 8);
  frame[kIp + 10] ^= 0xff;
  h.inject(frame);
  CHECK(h.count(Counter::IpInHdrErrors) == 1);
  CHECK(h.count(Counter::IpExtInCsumErrors) == 1);
}

TEST_CASE("IPv4 options are tolerated and skipped") {
  Harness h;
  h.learn_peer();
  Tins::ICMP icmp(Tins::ICMP::ECHO_REQUEST);
  icmp.id(7);
  Tins::IP datagram = ip_from_peer() / icmp / Tins::RawPDU(Bytes(16, 0xab));
  datagram.add_option(Tins::IP::option(Tins::IP::NOOP));
  datagram.add_option(Tins::IP::option(Tins::IP::NOOP));
  datagram.add_option(Tins::IP::option(Tins::IP::NOOP));
  datagram.add_option(Tins::IP::option(Tins::IP::NOOP));
  const auto sent = h.inject(frame_from_peer(datagram));
  REQUIRE(sent.size() == 1);
  const auto reply = parse(sent[0]);
  CHECK(reply.rfind_pdu<Tins::ICMP>().type() == Tins::ICMP::ECHO_REPLY);
  CHECK(reply.rfind_pdu<Tins::ICMP>().id() == 7);
  CHECK(reply.rfind_pdu<Tins::RawPDU>().payload() == Bytes(16, 0xab));
}

TEST_CASE("ethernet padding after the datagram is ignored") {
  Harness h;
  h.learn_peer();
  Bytes frame = echo_request_frame(3, 4, 0);  // 42 bytes: below Ethernet's 60-byte minimum
  frame.resize(60, 0);
  const auto sent = h.inject(frame);
  REQUIRE(sent.size() == 1);
  CHECK(parse(sent[0]).rfind_pdu<Tins::IP>().tot_len() == 28);
}

TEST_CASE("a datagram for an unknown protocol gets protocol-unreachable") {
  Harness h;
  h.learn_peer();
  Tins::IP datagram = ip_from_peer() / Tins::RawPDU(Bytes(40, 0x11));
  datagram.protocol(253);
  const auto sent = h.inject(frame_from_peer(datagram));
  REQUIRE(sent.size() == 1);
  const auto reply = parse(sent[0]);
  const auto& icmp = reply.rfind_pdu<Tins::ICMP>();
  CHECK(icmp.type() == Tins::ICMP::DEST_UNREACHABLE);
  CHECK(icmp.code() == 2);
  CHECK(reply.rfind_pdu<Tins::IP>().dst_addr() == ip4(kPeerIp));
  CHECK(h.count(Counter::IpInUnknownProtos) == 1);
  CHECK(h.count(Counter::IcmpOutDestUnreachs) == 1);
}

TEST_CASE("protocol-unreachable is rate limited") {
  StackConfig config = default_config();
  config.icmp.error_burst = 3;
  config.icmp.errors_per_second = 1;
  Harness h(config);
  h.learn_peer();
  Tins::IP datagram = ip_from_peer() / Tins::RawPDU(Bytes(8, 0));
  datagram.protocol(253);
  size_t answered = 0;
  for (int i = 0; i < 10; ++i) answered += h.inject(frame_from_peer(datagram)).size();
  CHECK(answered == 3);
  CHECK(h.count(Counter::IcmpOutRateLimitGlobal) == 7);
  h.advance(Duration::seconds(1));
  CHECK(h.inject(frame_from_peer(datagram)).size() == 1);
}

TEST_CASE("no ICMP error answers a broadcast datagram") {
  Harness h;
  h.learn_peer();
  Tins::IP datagram = ip_from_peer("198.18.0.255") / Tins::RawPDU(Bytes(8, 0));
  datagram.protocol(253);
  CHECK(h.inject(frame_from_peer(datagram, "ff:ff:ff:ff:ff:ff")).empty());
  CHECK(h.count(Counter::IpInUnknownProtos) == 1);
}

TEST_CASE("echo requests are answered byte for byte") {
  Harness h;
  h.learn_peer();
  const auto sent = h.inject(echo_request_frame(0x1234, 9, 56));
  REQUIRE(sent.size() == 1);
  const auto reply = parse(sent[0]);
  CHECK(reply.dst_addr() == hw(kPeerMac));
  CHECK(reply.src_addr() == hw(kOurMac));
  const auto& icmp = reply.rfind_pdu<Tins::ICMP>();
  CHECK(icmp.type() == Tins::ICMP::ECHO_REPLY);
  CHECK(icmp.id() == 0x1234);
  CHECK(icmp.sequence() == 9);
  CHECK(reply.rfind_pdu<Tins::RawPDU>().payload().size() == 56);
  // libtins recomputes checksums on serialize; ours must already match.
  Tins::EthernetII reparsed = reply;
  Bytes again = reparsed.serialize();
  CHECK(again == sent[0]);
  CHECK(h.count(Counter::IcmpInEchos) == 1);
  CHECK(h.count(Counter::IcmpOutEchoReps) == 1);
}

TEST_CASE("ICMP with a bad checksum or truncated header is dropped") {
  Harness h;
  h.learn_peer();
  Bytes frame = echo_request_frame(1, 1, 8);
  frame[kIp + 20 + 2] ^= 0x55;  // the ICMP checksum (libtins pads the frame to 60 bytes)
  CHECK(h.inject(frame).empty());
  CHECK(h.drops(DropReason::IcmpBadChecksum) == 1);
  CHECK(h.count(Counter::IcmpInCsumErrors) == 1);

  Tins::IP short_icmp = ip_from_peer() / Tins::RawPDU(Bytes{8, 0, 0, 0});
  short_icmp.protocol(1);
  CHECK(h.inject(frame_from_peer(short_icmp)).empty());
  CHECK(h.drops(DropReason::IcmpTruncated) == 1);
}

TEST_CASE("outgoing datagrams beyond the MTU are fragmented") {
  Harness h;
  h.learn_peer();
  const auto sent = h.inject(echo_request_frame(1, 1, 4000));  // arrives as one jumbo frame
  REQUIRE(sent.size() == 3);  // 4008 bytes of ICMP in 1480 + 1480 + 1048
  size_t total = 0;
  for (size_t i = 0; i < sent.size(); ++i) {
    const Tins::EthernetII eth = parse(sent[i]);
    const auto& fragment = eth.rfind_pdu<Tins::IP>();
    CHECK(fragment.fragment_offset() * 8 == total);
    CHECK((fragment.flags() & Tins::IP::MORE_FRAGMENTS) == (i + 1 < sent.size() ? Tins::IP::MORE_FRAGMENTS : 0));
    CHECK(sent[i].size() <= 1514);
    total += fragment.tot_len() - 20u;
  }
  CHECK(total == 4008);
  CHECK(h.count(Counter::IpFragCreates) == 3);
  CHECK(h.count(Counter::IpFragOKs) == 1);
}

}  // namespace
}  // namespace tapstack::test

namespace tapstack::test {
namespace {

// Found by fuzzing: at an MTU where MTU - 20 is no multiple of 8, a datagram that fits was cut
// at the multiple of 8 below it.
TEST_CASE("a datagram that fits an MTU of 576 leaves whole") {
  StackConfig config = default_config();
  config.mtu = 576;
  Harness h(config);
  h.learn_peer();
  REQUIRE(h.stack.send_ipv4(ip(kPeerIp), kProtocolUdp, Bytes(576 - 20, 0x55), h.now));
  const auto sent = h.drain();
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].size() == 14 + 576u);
  CHECK(h.count(Counter::IpFragCreates) == 0);
}

}  // namespace
}  // namespace tapstack::test
