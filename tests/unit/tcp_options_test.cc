// RFC 7323 (window scaling, timestamps, PAWS) and RFC 2018 (SACK) as negotiated on the SYNs
// and used after, and how they share the option space with RFC 2385 as Linux has them share it.
#include <doctest/doctest.h>

#include "tests/support/tcp_script.h"

namespace tapstack::test {
namespace {

constexpr uint32_t P = TcpScript::kPeerIss + 1;

Bytes key(std::string_view text) { return Bytes(text.begin(), text.end()); }

// A Linux-like SYN: MSS, SACK-permitted, timestamps, window scale 7.
void linux_syn_options(Tins::TCP& tcp) {
  tcp.mss(1460);
  tcp.sack_permitted();
  tcp.timestamp(5000, 0);
  tcp.winscale(7);
}

TEST_CASE("our SYN offers MSS, SACK-permitted, timestamps and window scale, in Linux's layout") {
  TcpScript t;
  REQUIRE(t.tcp().connect(ip(kPeerIp), TcpScript::kPeerPort, t.now, TcpScript::kOurPort));
  const auto syn = t.sent();
  REQUIRE(syn.size() == 1);
  CHECK(syn[0].mss == 1460);
  CHECK(syn[0].sack_permitted);
  CHECK(syn[0].timestamps);
  CHECK(syn[0].window_scale == 7);  // a 4 MiB buffer needs a shift of 7 to fit 16 bits
  // mss(4) | sack-permitted(2) + timestamps(10) | nop, wscale(3)
  REQUIRE(syn[0].options.size() == 20);
  CHECK(syn[0].options[4] == 4);
  CHECK(syn[0].options[6] == 8);
  CHECK(syn[0].options[16] == 1);
  CHECK(syn[0].options[17] == 3);
}

TEST_CASE("a SYN-ACK answers only what the SYN offered") {
  TcpScript t;
  t.tcp().listen(TcpScript::kOurPort, 4);
  const auto plain = t.send(SYN, 1000, 0, {}, 65535, 1460);
  REQUIRE(plain.size() == 1);
  CHECK_FALSE(plain[0].window_scale);
  CHECK_FALSE(plain[0].sack_permitted);
  CHECK_FALSE(plain[0].timestamps);
  CHECK(plain[0].window == 65535);

  TcpScript u;
  u.tcp().listen(TcpScript::kOurPort, 4);
  const auto full = u.send_with(SYN, 1000, 0, linux_syn_options);
  REQUIRE(full.size() == 1);
  CHECK(full[0].window_scale == 7);
  CHECK(full[0].sack_permitted);
  REQUIRE(full[0].timestamps);
  CHECK(full[0].timestamps->second == 5000);  // echoes the peer's TSval
}

TEST_CASE("with MD5, SYNs carry NOP NOP MD5, MSS, NOP NOP SACK-permitted, NOP window-scale") {
  TcpScript t;
  const auto id = *t.tcp().open();
  REQUIRE(t.tcp().set_md5_key(id, ip(kPeerIp), 32, key("12345")));
  REQUIRE(t.tcp().connect(id, ip(kPeerIp), TcpScript::kPeerPort, t.now, TcpScript::kOurPort));
  const auto syn = t.sent();
  REQUIRE(syn.size() == 1);
  const uint8_t expected_kinds[] = {1, 1, 19, 18};
  REQUIRE(syn[0].options.size() == 32);
  CHECK(std::equal(expected_kinds, expected_kinds + 4, syn[0].options.begin()));
  const uint8_t rest[] = {2, 4, 0x05, 0xb4, 1, 1, 4, 2, 1, 3, 3, 7};
  CHECK(std::equal(rest, rest + 12, syn[0].options.begin() + 20));
  CHECK_FALSE(syn[0].timestamps);
}

TEST_CASE("window scaling: windows are shifted both ways once agreed") {
  TcpScript t;
  t.listener = *t.tcp().listen(TcpScript::kOurPort, 4);
  const auto synack = t.send_with(SYN, 1000, 0, [](Tins::TCP& tcp) {
    tcp.mss(1460);
    tcp.winscale(2);
  });
  REQUIRE(synack.size() == 1);
  t.iss = synack[0].seq;
  // The peer's window of 1000 means 4000 bytes.
  t.send(ACK, P, t.iss + 1, {}, 1000);
  const SocketId id = *t.tcp().accept(t.listener);
  CHECK(t.tcp().info(id)->peer_window == 4000);
  CHECK(t.tcp().info(id)->window_scaling);
  // Ours is the 4 MiB buffer shifted by 7, capped at the field: 65535 << 7 would be more.
  REQUIRE(t.tcp().send(id, text("x"), t.now));
  const auto data = t.sent();
  REQUIRE(data.size() == 1);
  CHECK(data[0].window == (4u << 20) >> 7);
}

TEST_CASE("timestamps: every segment carries them; PAWS drops an old duplicate") {
  TcpScript t;
  t.listener = *t.tcp().listen(TcpScript::kOurPort, 4);
  const auto synack = t.send_with(SYN, 1000, 0, linux_syn_options);
  t.iss = synack[0].seq;
  const uint32_t our_ts = synack[0].timestamps->first;
  t.send_with(ACK, P, t.iss + 1, [&](Tins::TCP& tcp) { tcp.timestamp(5010, our_ts); });
  const SocketId id = *t.tcp().accept(t.listener);
  CHECK(t.tcp().info(id)->timestamps);
  t.send_with(ACK | PSH, P, t.iss + 1, [&](Tins::TCP& tcp) { tcp.timestamp(5020, our_ts); }, text("new"));
  // An old duplicate: in the window, but its TSval is older than the last seen.
  const auto answer = t.send_with(ACK | PSH, P + 3, t.iss + 1,
                                  [&](Tins::TCP& tcp) { tcp.timestamp(4000, our_ts); }, text("old"));
  REQUIRE(answer.size() == 1);
  CHECK(answer[0].ack == P + 3);
  CHECK(answer[0].timestamps->second == 5020);
  CHECK(t.drops(DropReason::TcpPawsRejected) == 1);
  CHECK(t.count(Counter::TcpExtPAWSEstab) == 1);
  CHECK(t.read_all(id) == "new");
}

TEST_CASE("SACK blocks describe what arrived out of order, the latest first") {
  TcpScript t;
  const SocketId id = t.establish_passive_with_sack();
  CHECK(t.tcp().info(id)->sack);
  const auto first = t.send(ACK, P + 10, t.iss + 1, text("bbbbb"));
  REQUIRE(first.size() == 1);
  REQUIRE(first[0].sack.size() == 1);
  CHECK(first[0].sack[0] == std::pair<uint32_t, uint32_t>{P + 10, P + 15});
  const auto second = t.send(ACK, P + 20, t.iss + 1, text("ccccc"));
  REQUIRE(second.size() == 1);
  REQUIRE(second[0].sack.size() == 2);
  CHECK(second[0].sack[0] == std::pair<uint32_t, uint32_t>{P + 20, P + 25});
  CHECK(second[0].sack[1] == std::pair<uint32_t, uint32_t>{P + 10, P + 15});
  // The gaps fill: no blocks any more.
  t.send(ACK, P + 15, t.iss + 1, text("ddddd"));
  const auto filled = t.send(ACK, P, t.iss + 1, text("aaaaaaaaaa"));
  REQUIRE(filled.size() == 1);
  CHECK(filled[0].sack.empty());
  CHECK(t.read_all(id) == "aaaaaaaaaabbbbbdddddccccc");
}

TEST_CASE("D-SACK (RFC 2883): a duplicate is reported once, as the first block, before the others") {
  TcpScript t;
  const SocketId id = t.establish_passive_with_sack();
  t.send(ACK, P, t.iss + 1, text("aaaaa"));
  t.wait(Duration::seconds(1));  // the delayed ACK

  // A whole duplicate: answered at once, the duplicate range as the only block.
  auto answer = t.send(ACK, P, t.iss + 1, text("aaaaa"));
  REQUIRE(answer.size() == 1);
  CHECK(answer[0].ack == P + 5);
  REQUIRE(answer[0].sack.size() == 1);
  CHECK(answer[0].sack[0] == std::pair<uint32_t, uint32_t>{P, P + 5});
  CHECK(t.stack.counters()[Counter::TcpExtTCPDSACKOldSent] == 1);

  // Reported once: the next ACK carries no block.
  answer = t.send(ACK, P + 5, t.iss + 1, text("bbbbb"));
  t.wait(Duration::seconds(1));
  for (const auto& s : answer) CHECK(s.sack.empty());

  // With a hole: the D-SACK first, then the out-of-order block.
  REQUIRE(t.send(ACK, P + 30, t.iss + 1, text("zzzzz")).size() == 1);
  answer = t.send(ACK, P + 2, t.iss + 1, text("aaabbbbbccc"));  // partly old, partly new
  REQUIRE(answer.size() == 1);
  CHECK(answer[0].ack == P + 13);
  REQUIRE(answer[0].sack.size() == 2);
  CHECK(answer[0].sack[0] == std::pair<uint32_t, uint32_t>{P + 2, P + 10});
  CHECK(answer[0].sack[1] == std::pair<uint32_t, uint32_t>{P + 30, P + 35});
  CHECK(t.read_all(id) == "aaaaabbbbbccc");

  // Our side: a D-SACK from the peer is recognised, counted, and marks nothing.
  REQUIRE(t.tcp().send(id, text("0123456789"), t.now));
  REQUIRE(t.sent().size() == 1);
  t.send_with(ACK, P + 13, t.iss + 11, [&](Tins::TCP& tcp) {
    tcp.sack({t.iss + 1, t.iss + 11});
  });
  CHECK(t.stack.counters()[Counter::TcpExtTCPDSACKRecv] == 1);
  CHECK(t.tcp().info(id)->sacked == 0);
}

TEST_CASE("several losses in one window: SACK recovery resends every hole without a timeout") {
  TcpScript t;
  const SocketId id = t.establish_passive_with_sack(1000);
  REQUIRE(t.tcp().send(id, Bytes(10 * 1000, 's'), t.now));
  REQUIRE(t.sent().size() == 10);
  const uint32_t base = t.iss + 1;
  // Segments 0 and 4 are lost; the peer SACKs the rest as they arrive.
  std::vector<Segment> resent;
  auto sack_ack = [&](std::vector<std::pair<uint32_t, uint32_t>> blocks) {
    for (auto& s : t.send_with(ACK, P, base, [&](Tins::TCP& tcp) {
           std::vector<uint32_t> edges;
           for (auto [l, r] : blocks) {
             edges.push_back(base + l * 1000);
             edges.push_back(base + r * 1000);
           }
           tcp.sack(edges);
         })) {
      resent.push_back(s);
    }
  };
  sack_ack({{1, 2}});
  sack_ack({{1, 3}});
  sack_ack({{1, 4}});
  sack_ack({{5, 6}, {1, 4}});
  sack_ack({{5, 7}, {1, 4}});
  sack_ack({{5, 8}, {1, 4}});
  std::vector<uint32_t> holes;
  for (const auto& s : resent) {
    if (s.payload.size() == 1000) holes.push_back((s.seq - base) / 1000);
  }
  CHECK(holes == std::vector<uint32_t>{0, 4});
  CHECK(t.count(Counter::TcpExtTCPSackRecovery) == 1);
  CHECK(t.count(Counter::TcpExtTCPTimeouts) == 0);
  CHECK(t.tcp().info(id)->in_recovery);
  // The cumulative ACK for all ten ends the recovery.
  t.send(ACK, P, base + 10 * 1000);
  CHECK_FALSE(t.tcp().info(id)->in_recovery);
  CHECK(t.tcp().info(id)->send_queue == 0);
}

TEST_CASE("data and a shutdown queued before the handshake completes go out after it") {
  TcpScript t;
  const auto id = t.tcp().connect(ip(kPeerIp), TcpScript::kPeerPort, t.now, TcpScript::kOurPort);
  REQUIRE(id);
  const auto syn = t.sent();
  REQUIRE(t.tcp().send(*id, text("early"), t.now));
  REQUIRE(t.tcp().shutdown(*id, ShutdownHow::Write, t.now));
  CHECK(t.sent().empty());
  const auto out = t.send(SYN | ACK, TcpScript::kPeerIss, syn[0].seq + 1, {}, 65535, 1460);
  REQUIRE_FALSE(out.empty());
  CHECK(out.back().has(FIN));
  CHECK(out.back().payload == text("early"));
  CHECK(t.state(*id) == TcpState::FinWait1);
}

}  // namespace
}  // namespace tapstack::test
