// TCP over another IP layer: two Tcp layers, each given the IP layer TcpContext asks for (a
// wire between them here), with IPv6 addresses from 2001:db8::/32. Nothing of TCP changes for
// the family: the handshake, data, the checksum's pseudo-header, the MSS from the route, and
// RFC 2385 over the IPv6 pseudo-header (RFC 2385 §2.0 item 1 with RFC 8200 §8.1's addresses).
#include <doctest/doctest.h>

#include <cerrno>
#include <deque>
#include <string_view>
#include <vector>

#include "md5opt/option.h"
#include "stack/checksum.h"
#include "stack/tcp/header.h"
#include "stack/tcp/tcp.h"

namespace tapstack {
namespace {

const IpAddress kA = *IpAddress::parse("2001:db8::1");
const IpAddress kB = *IpAddress::parse("2001:db8::2");
constexpr uint16_t kPort = 179;
constexpr uint16_t kMtu = 1500;

ByteView text(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

struct Sent {
  IpAddress source;
  IpAddress destination;
  std::vector<uint8_t> segment;
};

// One end's IP layer: a route to any IPv6 address, from our own; what TCP sends is kept.
class WireEnd final : public TcpIpLayer {
 public:
  explicit WireEnd(IpAddress self) : self_(self) {}
  Result<IpRoute> route(const IpAddress& remote) const override {
    if (remote.is_ipv4()) return Error{ENETUNREACH, "no IPv4 on this wire"};
    return IpRoute{.source = self_, .mtu = kMtu};
  }
  Status send_segment(const IpAddress& source, const IpAddress& destination, ByteView segment,
                      Instant, const FrameOffload&) override {
    sent.push_back({source, destination, {segment.begin(), segment.end()}});
    return Ok{};
  }
  const LinkOffloads& link_offloads() const override { return offloads_; }

  std::deque<Sent> sent;

 private:
  IpAddress self_;
  LinkOffloads offloads_;
};

struct End {
  explicit End(IpAddress self, uint64_t seed) : random(seed), ip(self) {}
  Counters counters;
  Trace trace;
  Random random;
  WireEnd ip;
  Tcp tcp{TcpContext{{counters, trace}, random, ip}, TcpConfig{}};
};

// The IPv6 pseudo-header written out byte by byte (RFC 8200 §8.1) and summed with the segment:
// 0 when the segment's checksum is right. Independent of the stack's own pseudo-header code.
uint16_t ipv6_checksum(const Sent& s) {
  std::vector<uint8_t> buffer;
  const ByteView src = s.source.bytes();
  const ByteView dst = s.destination.bytes();
  buffer.insert(buffer.end(), src.begin(), src.end());
  buffer.insert(buffer.end(), dst.begin(), dst.end());
  const auto length = static_cast<uint32_t>(s.segment.size());
  for (int shift : {24, 16, 8, 0}) buffer.push_back(static_cast<uint8_t>(length >> shift));
  buffer.insert(buffer.end(), {0, 0, 0, 6});
  buffer.insert(buffer.end(), s.segment.begin(), s.segment.end());
  return internet_checksum(buffer);
}

// Carries what from sent to to, checking each segment on the way; returns how many went.
size_t carry(End& from, End& to, Instant now, std::vector<Sent>* seen = nullptr) {
  size_t n = 0;
  while (!from.ip.sent.empty()) {
    const Sent s = std::move(from.ip.sent.front());
    from.ip.sent.pop_front();
    CHECK(!s.source.is_ipv4());
    CHECK(ipv6_checksum(s) == 0);
    to.tcp.input({.source = s.source, .destination = s.destination, .segment = s.segment}, now);
    if (seen) seen->push_back(s);
    ++n;
  }
  return n;
}

void exchange(End& a, End& b, Instant now, std::vector<Sent>* from_a = nullptr) {
  for (int round = 0; round < 10; ++round) {
    if (carry(a, b, now, from_a) + carry(b, a, now) == 0) return;
  }
}

// b listens on kPort with listener_key for a; a connects to it signing with connect_key.
// Returns a's socket; its SYN waits in a.ip.sent.
SocketId connect_signed(End& a, End& b, std::string_view listener_key, std::string_view connect_key,
                        Instant now, SocketId* listener_out) {
  const auto listener = b.tcp.listen(kPort, 4);
  REQUIRE(listener);
  REQUIRE(b.tcp.set_md5_key(*listener, kA, 128, text(listener_key)));
  const auto id = a.tcp.open();
  REQUIRE(id);
  REQUIRE(a.tcp.set_md5_key(*id, kB, 128, text(connect_key)));
  REQUIRE(a.tcp.connect(*id, kB, kPort, now));
  if (listener_out) *listener_out = *listener;
  return *id;
}

TEST_CASE("a connection over IPv6 addresses, signed with RFC 2385, through the TcpIpLayer") {
  End a(kA, 1);
  End b(kB, 2);
  const Instant now = Instant::from_ns(1'000'000'000);
  SocketId listener = 0;
  const SocketId id = connect_signed(a, b, "wire key", "wire key", now, &listener);

  // The SYN: to kB from the route's source, MSS from the route (1500 less 40 and 20), signed.
  REQUIRE(a.ip.sent.size() == 1);
  const Sent syn = a.ip.sent.front();
  CHECK(syn.source == kA);
  CHECK(syn.destination == kB);
  TcpSegment parsed;
  REQUIRE(!parse_tcp(syn.segment, syn.source, syn.destination, parsed));
  CHECK(parsed.options.mss == 1440);
  CHECK(md5opt::find_md5_option(parsed.header).has_value());

  std::vector<Sent> from_a;
  exchange(a, b, now, &from_a);
  const auto accepted = b.tcp.accept(listener);
  REQUIRE(accepted);
  const auto queued = a.tcp.send(id, text("over IPv6"), now);
  REQUIRE(queued);
  CHECK(*queued == 9);
  exchange(a, b, now, &from_a);
  uint8_t buffer[64];
  const auto got = b.tcp.receive(*accepted, buffer, now);
  REQUIRE(got);
  CHECK(std::string_view(reinterpret_cast<const char*>(buffer), *got) == "over IPv6");

  // Every segment a sent was signed, and b checked each digest over the IPv6 pseudo-header.
  for (const Sent& s : from_a) {
    TcpSegment seg;
    REQUIRE(!parse_tcp(s.segment, s.source, s.destination, seg));
    CHECK(md5opt::find_md5_option(seg.header).has_value());
  }
  CHECK(b.counters[Counter::TcpInSegs] == from_a.size());
  CHECK(b.counters[Counter::TcpExtTCPMD5Failure] == 0);
  CHECK(b.counters[Counter::TcpExtTCPMD5NotFound] == 0);

  const auto info_a = a.tcp.info(id);
  const auto info_b = b.tcp.info(*accepted);
  REQUIRE(info_a);
  REQUIRE(info_b);
  CHECK(info_a->state == TcpState::Established);
  CHECK(info_a->local_address == kA);
  CHECK(info_a->remote_address == kB);
  CHECK(info_b->local_address == kB);
  CHECK(info_b->remote_address == kA);
  CHECK(info_a->md5);
  CHECK(info_a->mss == 1440);
}

TEST_CASE("over IPv6 too, a segment signed with another key is dropped unanswered") {
  End a(kA, 3);
  End b(kB, 4);
  const Instant now = Instant::from_ns(1'000'000'000);
  connect_signed(a, b, "the listener's key", "another key", now, nullptr);
  CHECK(carry(a, b, now) == 1);
  CHECK(b.ip.sent.empty());
  CHECK(b.counters[Counter::TcpExtTCPMD5Failure] == 1);
  CHECK(b.counters.drops(DropReason::Md5Failure) == 1);
}

TEST_CASE("the IP layer decides what TCP may connect to") {
  End a(kA, 5);
  const auto refused =
      a.tcp.connect(Ipv4Address::from_octets(198, 18, 0, 1), kPort, Instant::from_ns(1));
  REQUIRE(!refused);
  CHECK(refused.error().code == ENETUNREACH);
  CHECK(a.ip.sent.empty());
  CHECK(a.tcp.connection_count() == 0);
}

}  // namespace
}  // namespace tapstack
