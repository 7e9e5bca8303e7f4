// RFC 2385 in the TCP layer, as segment scripts: option placement, which segments are signed
// and with which key, resets for no connection, TIME-WAIT.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include <fmt/format.h>

#include "md5opt/option.h"
#include "md5opt/signer.h"
#include "md5opt/verdict.h"
#include "stack/checksum.h"
#include "tests/support/tcp_script.h"

namespace tapstack::test {
namespace {

constexpr uint32_t P = TcpScript::kPeerIss + 1;
const md5opt::IpAddress kPeer = *md5opt::IpAddress::parse(kPeerIp);
const md5opt::IpAddress kUs = *md5opt::IpAddress::parse(kOurIp);

ByteView key(std::string_view text) {
  return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}

// The TCP segment of a frame the stack sent (IPv4 header without options).
ByteView tcp_of(const Bytes& frame) {
  const ByteView ip = ByteView(frame).subspan(kEthernetHeaderSize);
  return ip.subspan(20, load_be16(&ip[2]) - 20u);
}

// A script whose peer signs: its segments carry NOP NOP MD5, signed with a key.
class SignedScript : public TcpScript {
 public:
  // The peer sends a segment signed with k (from_port as its port); returns the raw answers.
  // An empty k: the segment goes unsigned.
  std::vector<Bytes> send_signed(std::string_view k, uint8_t flags, uint32_t seq, uint32_t ack,
                                 uint16_t from_port = kPeerPort, uint16_t to_port = kOurPort) {
    Tins::TCP tcp(to_port, from_port);
    tcp.flags(static_cast<Tins::small_uint<12>>(flags));
    tcp.seq(seq);
    tcp.ack_seq(ack);
    tcp.window(65535);
    if (!k.empty()) {
      tcp.add_option(Tins::TCP::option(Tins::TCP::NOP));
      tcp.add_option(Tins::TCP::option(Tins::TCP::NOP));
      const std::vector<uint8_t> zeros(16, 0);
      tcp.add_option(Tins::TCP::option(19, zeros.begin(), zeros.end()));
    }
    if (flags & SYN) tcp.mss(1460);
    Tins::IP datagram = ip_from_peer() / tcp;
    Bytes frame = frame_from_peer(datagram);
    if (k.empty()) return inject(frame);
    const size_t ip_length = load_be16(&frame[kEthernetHeaderSize + 2]);
    MutableByteView segment{frame.data() + kEthernetHeaderSize + 20, ip_length - 20};
    const auto digest_at = md5opt::find_md5_option(segment);
    REQUIRE(digest_at);
    REQUIRE(signer.sign_in_place(kPeer, kUs, segment, *digest_at, key(k)));
    store_be16(&segment[16], 0);
    store_be16(&segment[16], tcp_checksum(segment, ip(kPeerIp), ip(kOurIp)));
    return inject(frame);
  }
  // Whether a frame we sent carries a digest that verifies under k.
  bool verifies(const Bytes& frame, std::string_view k) {
    const auto segment = md5opt::split_segment(kUs, kPeer, tcp_of(frame));
    REQUIRE(segment);
    md5opt::KeyTable keys;
    REQUIRE(keys.add(kUs, key(k)));  // the verdict looks the key up by the sender: us
    return md5opt::inbound_verdict(signer, keys, *segment) == md5opt::Md5Verdict::Ok;
  }
  // A signed handshake with a listener holding k for the peer; returns the accepted socket.
  // An empty k: a listener without keys, and an unsigned handshake.
  SocketId establish_signed(std::string_view k) {
    listener = *tcp().listen(kOurPort, 4);
    if (!k.empty()) REQUIRE(tcp().set_md5_key(listener, ip(kPeerIp), 32, key(k)));
    const auto synack = send_signed(k, SYN, kPeerIss, 0);
    REQUIRE(synack.size() == 1);
    REQUIRE((k.empty() || verifies(synack[0], k)));
    iss = segments(synack)[0].seq;
    REQUIRE(send_signed(k, ACK, kPeerIss + 1, iss + 1).empty());
    return *tcp().accept(listener);
  }
  // establish_signed(k), then we close first and the peer's FIN puts us in TIME-WAIT.
  SocketId time_wait_signed(std::string_view k) {
    const SocketId id = establish_signed(k);
    REQUIRE(tcp().shutdown(id, ShutdownHow::Write, now));
    REQUIRE(drain().size() == 1);
    send_signed(k, ACK, kPeerIss + 1, iss + 2);
    REQUIRE(send_signed(k, FIN | ACK, kPeerIss + 1, iss + 2).size() == 1);
    REQUIRE(state(id) == TcpState::TimeWait);
    return id;
  }

  md5opt::Md5Signer signer;
};

TEST_CASE("the SYN-ACK carries NOP NOP MD5 first, then MSS, and is signed with the listener's key") {
  SignedScript t;
  const SocketId l = *t.tcp().listen(TcpScript::kOurPort, 4);
  REQUIRE(t.tcp().set_md5_key(l, ip(kPeerIp), 32, key("12345")));
  const auto synack = t.send_signed("12345", SYN, 1000, 0);
  REQUIRE(synack.size() == 1);
  const ByteView tcp = tcp_of(synack[0]);
  REQUIRE((tcp[12] >> 4) * 4u == 20u + 20u + 4u);
  const uint8_t expected[] = {1, 1, 19, 18};
  CHECK(std::equal(expected, expected + 4, tcp.begin() + 20));
  CHECK(tcp[40] == tcp_option::kMss);
  CHECK(load_be16(&tcp[42]) == 1460);
  CHECK(t.verifies(synack[0], "12345"));
  CHECK_FALSE(t.verifies(synack[0], "12346"));
}

TEST_CASE("data, pure ACKs, FIN and reset are all signed; data segments carry 1440 bytes") {
  SignedScript t;
  const SocketId id = t.establish_signed("12345");
  REQUIRE(t.tcp().send(id, Bytes(3000, 'x'), t.now));
  const auto data = t.drain();
  REQUIRE(data.size() == 2);  // 1440 + 1440; Nagle holds the last 120 bytes
  CHECK(tcp_of(data[0]).size() - 40 == 1440);
  for (const auto& frame : data) CHECK(t.verifies(frame, "12345"));
  const auto rest = t.send_signed("12345", ACK, P, t.iss + 1 + 2880);
  REQUIRE(rest.size() == 1);
  CHECK(tcp_of(rest[0]).size() - 40 == 120);
  CHECK(t.verifies(rest[0], "12345"));
  t.send_signed("12345", ACK, P, t.iss + 1 + 3000);
  const auto delayed = t.wait(Duration::milliseconds(100));
  CHECK(delayed.empty());
  REQUIRE(t.tcp().shutdown(id, ShutdownHow::Write, t.now));
  const auto fin = t.drain();
  REQUIRE(fin.size() == 1);
  CHECK(t.verifies(fin[0], "12345"));
  REQUIRE(t.tcp().abort(id, t.now));
  const auto rst = t.drain();
  REQUIRE(rst.size() == 1);
  CHECK(SignedScript::segments(rst)[0].has(RST));
  CHECK(t.verifies(rst[0], "12345"));
}

TEST_CASE("a wrong digest, a missing option, an unexpected one: dropped before any state, unanswered") {
  SignedScript t;
  const SocketId id = t.establish_signed("12345");
  // An in-window RST signed with the wrong key would reset an unsigned connection.
  CHECK(t.send_signed("wrong", RST, P, 0).empty());
  CHECK(t.drops(DropReason::Md5Failure) == 1);
  // Unsigned data.
  CHECK(t.send(ACK | PSH, P, t.iss + 1, text("spoof")).empty());
  CHECK(t.drops(DropReason::Md5NotFound) == 1);
  CHECK(t.state(id) == TcpState::Established);
  CHECK(t.read_all(id).empty());
  // An unkeyed listener given a signed SYN: Unexpected.
  SignedScript u;
  u.tcp().listen(TcpScript::kOurPort, 4);
  CHECK(u.send_signed("12345", SYN, 1000, 0).empty());
  CHECK(u.drops(DropReason::Md5Unexpected) == 1);
  CHECK(u.count(Counter::TcpExtTCPMD5Unexpected) == 1);
}

// Trace mode speaks the seed's words: each step names the Linux function that does it.
TEST_CASE("trace: a signed handshake and a wrong digest, step by step in Linux's names") {
  SignedScript t;
  std::vector<std::string> lines;
  t.stack.trace().set_sink([&](std::string_view line) { lines.emplace_back(line); });
  const SocketId l = *t.tcp().listen(TcpScript::kOurPort, 4);
  REQUIRE(t.tcp().set_md5_key(l, ip(kPeerIp), 32, key("12345")));
  lines.clear();
  const auto synack = t.send_signed("12345", SYN, TcpScript::kPeerIss, 0);
  REQUIRE(synack.size() == 1);
  const std::string all = fmt::format("{}", fmt::join(lines, "\n"));
  CAPTURE(all);
  REQUIRE(lines.size() == 2);
  const std::string& rx = lines[0];
  const std::string& tx = lines[1];
  for (const char* step : {" S seq=", "(tcp_v4_rcv) | checksum ok", "lookup: listener :",
                           "md5: key for 198.18.0.1 expected (tcp_md5_do_lookup), option found "
                           "(tcp_parse_md5sig_option), digest ok (tcp_v4_inbound_md5_hash)",
                           "syn → new connection", "(tcp_conn_request)"}) {
    CHECK(rx.find(step) != std::string::npos);
  }
  CHECK(tx.starts_with("tx "));
  for (const char* step : {" S. seq=", "options: md5 reserved 20 bytes first, then mss 1460",
                           "(tcp_synack_options)", "digest slot at +24 (tcp_options_write)",
                           "digest filled late (tcp_v4_md5_hash_skb)", "| checksum"}) {
    CHECK(tx.find(step) != std::string::npos);
  }
  // The digest slot is where the trace says: after NOP NOP kind length.
  CHECK(md5opt::find_md5_option(tcp_of(synack[0])) == 24u);
  lines.clear();
  CHECK(t.send_signed("wrong", ACK, TcpScript::kPeerIss + 1, 1).empty());
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].find("dropped") != std::string::npos);
  CAPTURE(lines[0]);
  CHECK(lines[0].find("TcpExtTCPMD5Failure") != std::string::npos);
  CHECK(lines[0].find("digest ok") == std::string::npos);
}

TEST_CASE(
    "trace: a reset for no socket and a TIME-WAIT ACK name the Linux functions that send them") {
  SignedScript t;
  const SocketId id = t.time_wait_signed("12345");
  std::vector<std::string> lines;
  t.stack.trace().set_sink([&](std::string_view line) { lines.emplace_back(line); });
  REQUIRE(t.send_signed("12345", FIN | ACK, P, t.iss + 2).size() == 1);
  REQUIRE(lines.size() == 2);
  CAPTURE(lines[1]);
  CHECK(lines[1].find("options: md5 reserved 20 bytes first (tcp_v4_timewait_ack) | md5 option "
                      "written, digest slot at +24 (tcp_v4_send_ack) | digest filled late "
                      "(tcp_v4_md5_hash_hdr)") != std::string::npos);
  CHECK(t.state(id) == TcpState::TimeWait);
  // A signed segment for no socket, verified by the key of a listener on its source port.
  const SocketId l = *t.tcp().listen(179, 4);
  REQUIRE(t.tcp().set_md5_key(l, ip(kPeerIp), 32, key("bgp-key")));
  lines.clear();
  REQUIRE(t.send_signed("bgp-key", ACK, 5000, 7000, 179, 40001).size() == 1);
  REQUIRE(lines.size() == 2);
  CAPTURE(lines[0]);
  CAPTURE(lines[1]);
  CHECK(lines[0].find("md5: key for 198.18.0.1 expected (tcp_md5_do_lookup), option found "
                      "(tcp_parse_md5sig_option), digest ok") != std::string::npos);
  CHECK(lines[1].find("options: md5 reserved 20 bytes first (tcp_v4_send_reset) | md5 option "
                      "written, digest slot at +24 (tcp_v4_send_reset) | digest filled late "
                      "(tcp_v4_md5_hash_hdr)") != std::string::npos);
  // Unsigned, for no socket: RFC 2385 is not in use, and the trace says nothing of it (no
  // "digest ok"); the reset goes unsigned.
  lines.clear();
  REQUIRE(t.send_signed("", SYN, 9000, 0, 40002, 7777).size() == 1);
  REQUIRE(lines.size() == 2);
  CHECK(lines[0].find("md5") == std::string::npos);
  CHECK(lines[1].find("md5") == std::string::npos);
}

TEST_CASE("RFC 2385's three drops are spelled once: verdict, drop reason, counter, meaning") {
  for (const Md5DropCase& drop : kMd5DropCases) {
    CAPTURE(md5opt::to_string(drop.verdict));
    CHECK_FALSE(md5opt::accepted(drop.verdict));
    CHECK(&md5_drop_case(drop.verdict) == &drop);
    CHECK(drop_reason_counters(drop.reason) == md5opt::nstat_counter(drop.verdict));
    CHECK_FALSE(drop.meaning.empty());
  }
}

// RFC 1122 §4.2.2.13: a SYN beyond TIME-WAIT reopens the connection. It is the listener's SYN
// then, checked with the listener's key as it is now, as Linux does (TCP_TW_SYN, then the
// listener's tcp_inbound_hash()); the old connection's key does not matter. A SYN that fails
// is dropped unanswered and leaves TIME-WAIT as it was.
TEST_CASE("a SYN reusing a TIME-WAIT pair is checked with the listener's key of now") {
  struct Case {
    std::string_view name;
    std::string_view old_key;       // the listener's key when the old connection began
    std::string_view listener_key;  // its key now ("": none)
    std::string_view syn_key;       // what the new SYN is signed with ("": unsigned)
    std::optional<DropReason> dropped;
  };
  const Case cases[] = {
      {"no key before, a key added, unsigned SYN", "", "new", "", DropReason::Md5NotFound},
      {"no key before, a key added, SYN signed with it", "", "new", "new", std::nullopt},
      {"key changed, SYN signed with the old one", "old", "new", "old", DropReason::Md5Failure},
      {"key changed, SYN signed with the new one", "old", "new", "new", std::nullopt},
      {"key deleted, SYN signed with the old one", "old", "", "old", DropReason::Md5Unexpected},
      {"key deleted, unsigned SYN", "old", "", "", std::nullopt},
      {"key kept, SYN signed with it", "old", "old", "old", std::nullopt},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    SignedScript t;
    const SocketId id = t.time_wait_signed(c.old_key);
    if (c.listener_key != c.old_key) {
      REQUIRE(t.tcp().set_md5_key(t.listener, ip(kPeerIp), 32, key(c.listener_key)));
    }
    const uint32_t isn = P + 100000;
    const auto answer = t.send_signed(c.syn_key, SYN, isn, 0);
    if (c.dropped) {
      CHECK(answer.empty());
      CHECK(t.drops(*c.dropped) == 1);
      CHECK(t.count(Counter::TcpExtTWRecycled) == 0);
      CHECK(t.state(id) == TcpState::TimeWait);
      continue;
    }
    REQUIRE(answer.size() == 1);
    const Segment synack = SignedScript::segments(answer)[0];
    CHECK(synack.flags == (SYN | ACK));
    CHECK(synack.ack == isn + 1);
    if (c.listener_key.empty()) {
      CHECK_FALSE(md5opt::find_md5_option(tcp_of(answer[0])));
    } else {
      CHECK(t.verifies(answer[0], c.listener_key));
    }
    CHECK(t.count(Counter::TcpExtTWRecycled) == 1);
  }
}

TEST_CASE("SYN cookies under a key: the cookie SYN-ACK is signed, and only a signed ACK redeems it") {
  SignedScript t;
  const SocketId l = *t.tcp().listen(TcpScript::kOurPort, 1);
  REQUIRE(t.tcp().set_md5_key(l, ip(kPeerIp), 32, key("12345")));
  REQUIRE(t.send_signed("12345", SYN, 5000, 0, 50001).size() == 1);  // fills the SYN queue
  const auto cookie_synack = t.send_signed("12345", SYN, 6000, 0, 50002);
  REQUIRE(cookie_synack.size() == 1);
  CHECK(t.stack.counters()[Counter::TcpExtSyncookiesSent] == 1);
  CHECK(t.verifies(cookie_synack[0], "12345"));
  const auto synack = TcpScript::segments(cookie_synack)[0];
  CHECK(synack.options.size() == 24);  // NOP NOP MD5 first, then MSS alone
  CHECK(synack.options[2] == 19);
  CHECK(synack.mss.has_value());
  const size_t connections = t.tcp().connection_count();
  // The right cookie without a signature, or signed with another key: dropped before the
  // cookie is even looked at, unanswered.
  CHECK(t.send(ACK, 6001, synack.seq + 1, {}, 65535, std::nullopt, 50002).empty());
  CHECK(t.drops(DropReason::Md5NotFound) == 1);
  CHECK(t.send_signed("54321", ACK, 6001, synack.seq + 1, 50002).empty());
  CHECK(t.drops(DropReason::Md5Failure) == 1);
  CHECK(t.tcp().connection_count() == connections);
  CHECK(t.stack.counters()[Counter::TcpExtSyncookiesRecv] == 0);
  // Signed with the key: the connection, which keeps signing with it.
  CHECK(t.send_signed("12345", ACK, 6001, synack.seq + 1, 50002).empty());
  CHECK(t.stack.counters()[Counter::TcpExtSyncookiesRecv] == 1);
  const auto accepted = t.tcp().accept(l);
  REQUIRE(accepted);
  CHECK(t.tcp().info(*accepted)->md5);
  REQUIRE(t.tcp().send(*accepted, text("signed"), t.now));
  const auto data = t.drain();
  REQUIRE(data.size() == 1);
  CHECK(t.verifies(data[0], "12345"));
}

TEST_CASE("TIME-WAIT answers a retransmitted FIN with a signed ACK") {
  SignedScript t;
  const SocketId id = t.establish_signed("12345");
  REQUIRE(t.tcp().shutdown(id, ShutdownHow::Write, t.now));
  REQUIRE(t.drain().size() == 1);
  t.send_signed("12345", ACK, P, t.iss + 2);
  REQUIRE(t.send_signed("12345", FIN | ACK, P, t.iss + 2).size() == 1);
  REQUIRE(t.state(id) == TcpState::TimeWait);
  const auto again = t.send_signed("12345", FIN | ACK, P, t.iss + 2);
  REQUIRE(again.size() == 1);
  CHECK(t.verifies(again[0], "12345"));
}

TEST_CASE("no connection: unsigned segments get a reset; signed ones only when a listener's key verifies them") {
  SignedScript t;
  // Unsigned, no listener anywhere: an unsigned reset, as for any closed port.
  auto rst = t.send(SYN, 5000, 0, {}, 65535, std::nullopt, 4444);
  REQUIRE(rst.size() == 1);
  CHECK(rst[0].has(RST));
  // Signed, nothing that could check it: silence.
  CHECK(t.send_signed("12345", ACK, 5000, 7000, 179, 40001).empty());
  CHECK(t.drops(DropReason::TcpNoSocketSigned) == 1);
  // A listener on the segment's source port (our end of a lost session would have been
  // there) has the peer's key: the reset goes out, signed with it. A wrong digest: silence.
  const SocketId l = *t.tcp().listen(179, 4);
  REQUIRE(t.tcp().set_md5_key(l, ip(kPeerIp), 32, key("bgp-key")));
  CHECK(t.send_signed("not it", ACK, 5000, 7000, 179, 40001).empty());
  CHECK(t.drops(DropReason::TcpNoSocketSigned) == 2);
  const auto signed_rst = t.send_signed("bgp-key", ACK, 5000, 7000, 179, 40001);
  REQUIRE(signed_rst.size() == 1);
  CHECK(SignedScript::segments(signed_rst)[0].flags == RST);
  CHECK(SignedScript::segments(signed_rst)[0].seq == 7000);
  CHECK(t.verifies(signed_rst[0], "bgp-key"));
}

TEST_CASE("a key changed on a live connection signs from the next segment on") {
  SignedScript t;
  const SocketId id = t.establish_signed("old");
  REQUIRE(t.tcp().set_md5_key(id, ip(kPeerIp), 32, key("new")));
  REQUIRE(t.tcp().send(id, text("hi"), t.now));
  const auto data = t.drain();
  REQUIRE(data.size() == 1);
  CHECK(t.verifies(data[0], "new"));
  CHECK_FALSE(t.verifies(data[0], "old"));
  // The peer still on the old key is dropped now; on the new one it is heard.
  CHECK(t.send_signed("old", ACK, P, t.iss + 3).empty());
  CHECK(t.drops(DropReason::Md5Failure) == 1);
  CHECK(t.send_signed("new", ACK, P, t.iss + 3).empty());
  CHECK(t.tcp().info(id)->send_queue == 0);
}

}  // namespace
}  // namespace tapstack::test
