// SYN cookies (RFC 4987 §3.6) and the bounded listen queues, as segment scripts: a full queue
// of half-open connections answers with a cookie and keeps nothing; the ACK that returns a
// valid cookie makes the connection; a forged or stale one gets a reset; a full accept queue
// drops SYNs; and a flood of 100,000 SYNs from random sources leaves memory bounded while an
// established connection keeps flowing and a new client still connects through a cookie.
#include <doctest/doctest.h>

#include <random>
#include <string>

#include "stack/checksum.h"
#include "tests/support/tcp_script.h"

namespace tapstack::test {
namespace {

constexpr uint16_t kBacklog = 2;

uint64_t count(TcpScript& t, Counter counter) { return t.stack.counters()[counter]; }

// A SYN offering MSS 1400, window scaling and SACK.
std::vector<Segment> offer(TcpScript& t, uint32_t seq, uint16_t port, uint16_t mss = 1400) {
  return t.send_with(
      SYN, seq, 0,
      [&](Tins::TCP& tcp) {
        tcp.mss(mss);
        tcp.winscale(7);
        tcp.sack_permitted();
      },
      {}, port);
}

// A listener with a small backlog whose half-open queue is full: two SYNs answered normally.
void fill_syn_queue(TcpScript& t, uint16_t first_port = 50001) {
  t.listener = t.listener ? t.listener : *t.tcp().listen(TcpScript::kOurPort, kBacklog);
  const uint64_t cookies = count(t, Counter::TcpExtSyncookiesSent);
  for (uint16_t port = first_port; port < first_port + kBacklog; ++port) {
    const auto synack = offer(t, 7000, port);
    REQUIRE(synack.size() == 1);
    CHECK(synack[0].window_scale.has_value());  // a normal SYN-ACK offers what we support
    CHECK(synack[0].sack_permitted);
  }
  REQUIRE(count(t, Counter::TcpExtSyncookiesSent) == cookies);
}

TEST_CASE("a full SYN queue answers with a cookie and keeps nothing; the ACK makes the connection") {
  TcpScript t;
  fill_syn_queue(t);
  const size_t connections = t.tcp().connection_count();

  const auto synack = offer(t, 9000, 50003);
  REQUIRE(synack.size() == 1);
  CHECK(synack[0].flags == (SYN | ACK));
  CHECK(synack[0].ack == 9001);
  CHECK(synack[0].mss == 1460);  // ours
  // Nothing a cookie cannot carry: no window scaling, SACK or timestamps.
  CHECK_FALSE(synack[0].window_scale.has_value());
  CHECK_FALSE(synack[0].sack_permitted);
  CHECK_FALSE(synack[0].timestamps.has_value());
  CHECK(t.tcp().connection_count() == connections);
  CHECK(count(t, Counter::TcpExtSyncookiesSent) == 1);
  CHECK(count(t, Counter::TcpExtTCPReqQFullDoCookies) == 1);

  // The handshake's ACK, with data: the connection is made from the cookie at once.
  const uint32_t cookie = synack[0].seq;
  CHECK(t.send(ACK | PSH, 9001, cookie + 1, text("hello"), 65535, std::nullopt, 50003).size() <=
        1);  // at most an ACK for the data
  CHECK(count(t, Counter::TcpExtSyncookiesRecv) == 1);
  CHECK(t.tcp().connection_count() == connections + 1);
  const auto accepted = t.tcp().accept(t.listener);
  REQUIRE(accepted);
  CHECK(t.state(*accepted) == TcpState::Established);
  CHECK(t.read_all(*accepted) == "hello");
  const TcpInfo info = *t.tcp().info(*accepted);
  CHECK(info.remote_port == 50003);
  CHECK(info.mss == 1300);  // the largest cookie MSS not above the peer's 1400
  CHECK_FALSE(info.window_scaling);
  CHECK_FALSE(info.sack);

  // The connection works both ways: our data starts right after the cookie.
  REQUIRE(t.tcp().send(*accepted, text("world"), t.now));
  const auto out = t.sent();
  REQUIRE(out.size() == 1);
  CHECK(out[0].seq == cookie + 1);
  CHECK(out[0].payload == text("world"));
}

TEST_CASE("a forged cookie gets a reset; a cookie older than two ticks too; none are checked when idle") {
  TcpScript t;
  fill_syn_queue(t);
  const auto synack = t.send(SYN, 9000, 0, {}, 65535, 1460, 50003);
  REQUIRE(synack.size() == 1);
  const uint32_t cookie = synack[0].seq;

  // Wrong by one in the ACK, or from another port: not a valid cookie.
  auto answer = t.send(ACK, 9001, cookie + 2, {}, 65535, std::nullopt, 50003);
  REQUIRE(answer.size() == 1);
  CHECK(answer[0].has(RST));
  answer = t.send(ACK, 9001, cookie + 1, {}, 65535, std::nullopt, 50004);
  REQUIRE(answer.size() == 1);
  CHECK(answer[0].has(RST));
  CHECK(count(t, Counter::TcpExtSyncookiesFailed) == 2);
  CHECK(count(t, Counter::TcpExtSyncookiesRecv) == 0);

  // Four minutes on (the half-open connections gave up meanwhile), the queue is filled again
  // and overflows, so cookies are checked — but this one is three ticks old.
  t.wait(Duration::seconds(240));
  fill_syn_queue(t, 51001);
  REQUIRE(t.send(SYN, 9500, 0, {}, 65535, 1460, 51100).size() == 1);
  CHECK(count(t, Counter::TcpExtSyncookiesSent) == 2);
  answer = t.send(ACK, 9001, cookie + 1, {}, 65535, std::nullopt, 50003);
  REQUIRE(answer.size() == 1);
  CHECK(answer[0].has(RST));
  CHECK(count(t, Counter::TcpExtSyncookiesFailed) == 3);

  // With no cookie sent for more than two minutes, an ACK to the listener is not a guess at
  // one: a plain reset, nothing counted.
  t.wait(Duration::seconds(180));
  answer = t.send(ACK, 9501, 12345, {}, 65535, std::nullopt, 51100);
  REQUIRE(answer.size() == 1);
  CHECK(answer[0].has(RST));
  CHECK(count(t, Counter::TcpExtSyncookiesFailed) == 3);
}

TEST_CASE("a full accept queue drops SYNs, cookies or not; syn_cookies off drops on a full SYN queue") {
  TcpScript t;
  t.listener = *t.tcp().listen(TcpScript::kOurPort, 1);
  const auto synack = t.send(SYN, 7000, 0, {}, 65535, 1460, 50001);
  REQUIRE(synack.size() == 1);
  REQUIRE(t.send(ACK, 7001, synack[0].seq + 1, {}, 65535, std::nullopt, 50001).empty());
  // One connection waits in the accept queue, which holds one.
  CHECK(t.send(SYN, 8000, 0, {}, 65535, 1460, 50002).empty());
  CHECK(t.stack.counters().drops(DropReason::TcpListenOverflow) == 1);
  CHECK(count(t, Counter::TcpExtSyncookiesSent) == 0);

  TcpConfig no_cookies;
  no_cookies.syn_cookies = false;
  StackConfig config = TcpScript::script_config();
  config.tcp = no_cookies;
  TcpScript u(config);
  u.listener = *u.tcp().listen(TcpScript::kOurPort, 1);
  REQUIRE(u.send(SYN, 7000, 0, {}, 65535, 1460, 50001).size() == 1);
  CHECK(u.send(SYN, 8000, 0, {}, 65535, 1460, 50002).empty());
  CHECK(count(u, Counter::TcpExtTCPReqQFullDrop) == 1);
  CHECK(count(u, Counter::TcpExtSyncookiesSent) == 0);
}

// A SYN from source:port, made by patching a template: the flood's frames, fast.
class SynFactory {
 public:
  SynFactory() {
    Tins::TCP tcp(TcpScript::kOurPort, 1);
    tcp.flags(SYN);
    tcp.window(65535);
    tcp.mss(1460);
    Tins::IP datagram = ip_from_peer() / tcp;
    frame_ = frame_from_peer(datagram);
  }
  const Bytes& make(Ipv4Address source, uint16_t port, uint32_t seq) {
    uint8_t* header = frame_.data() + kEthernetHeaderSize;
    store_be32(header + 12, source.value);
    store_be16(header + 10, 0);
    store_be16(header + 10, internet_checksum(ByteView(header, 20)));
    uint8_t* tcp = header + 20;
    const size_t tcp_length = load_be16(header + 2) - 20u;
    store_be16(tcp, port);
    store_be32(tcp + 4, seq);
    store_be16(tcp + 16, 0);
    store_be16(tcp + 16, tcp_checksum(ByteView(tcp, tcp_length), source, ip(kOurIp)));
    return frame_;
  }

 private:
  Bytes frame_;
};

TEST_CASE("100,000 SYNs from random sources: memory bounded, a connection flows, a client connects") {
  constexpr int kSyns = 100'000;
  constexpr int kBacklogFlood = 128;
  TcpScript t;
  // The established connection, from the listener that is about to be flooded.
  const SocketId established = t.establish_passive();
  t.tcp().close(t.listener, t.now);
  t.listener = *t.tcp().listen(TcpScript::kOurPort, kBacklogFlood);

  SynFactory factory;
  std::mt19937_64 random(42);
  uint32_t peer_seq = TcpScript::kPeerIss + 1;
  std::string received;
  size_t most_connections = 0;
  size_t most_memory = 0;
  for (int i = 0; i < kSyns; ++i) {
    // Spoofed sources all over 198.18.0.0/15, off our link: the answers go nowhere.
    const Ipv4Address source{0xC6120000u | static_cast<uint32_t>(random() & 0x1FFFF)};
    if (source == ip(kPeerIp) || source == ip(kOurIp)) continue;
    t.inject(factory.make(source, static_cast<uint16_t>(1024 + random() % 60000),
                          static_cast<uint32_t>(random())));
    if (i % 1000 == 0) {
      // The established connection keeps moving data meanwhile.
      const Bytes chunk(1000, static_cast<uint8_t>('a' + (i / 1000) % 26));
      t.send(ACK | PSH, peer_seq, t.iss + 1, chunk);
      peer_seq += 1000;
      received += t.read_all(established);
      t.advance(Duration::milliseconds(10));
      most_connections = std::max(most_connections, t.tcp().connection_count());
      most_memory = std::max(most_memory, t.tcp().buffer_memory());
    }
  }
  // Bounded: the listener, the established connection, at most a backlog of half-open ones.
  MESSAGE("most connections during the flood: " << most_connections
                                                << ", most buffer memory: " << most_memory);
  CHECK(most_connections <= 2u + kBacklogFlood);
  CHECK(t.tcp().connection_count() <= 2u + kBacklogFlood);
  CHECK(count(t, Counter::TcpExtSyncookiesSent) >= static_cast<uint64_t>(kSyns - kBacklogFlood - 200));
  CHECK(received.size() == static_cast<size_t>(peer_seq - TcpScript::kPeerIss - 1));
  CHECK(t.state(established) == TcpState::Established);

  // A legitimate client, during the flood: its SYN gets a cookie, its ACK a connection.
  const auto synack = t.send(SYN, 424242, 0, {}, 65535, 1460, 55555);
  REQUIRE(synack.size() == 1);
  CHECK_FALSE(synack[0].window_scale.has_value());  // a cookie
  t.send(ACK, 424243, synack[0].seq + 1, text("legitimate"), 65535, std::nullopt, 55555);
  const auto accepted = t.tcp().accept(t.listener);
  REQUIRE(accepted);
  CHECK(t.read_all(*accepted) == "legitimate");
  CHECK(t.tcp().info(*accepted)->remote_port == 55555);
}

}  // namespace
}  // namespace tapstack::test
