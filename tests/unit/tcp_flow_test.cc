// Reliable delivery and flow control as segment scripts: retransmission (RFC 6298), delayed
// ACK (RFC 1122 §4.2.3.2), Nagle (RFC 896), zero window and persist probes (RFC 9293
// §3.8.6.1), keepalive (RFC 1122 §4.2.3.6), out-of-order data.
#include <doctest/doctest.h>

#include "tests/support/tcp_script.h"

namespace tapstack::test {
namespace {

constexpr uint32_t P = TcpScript::kPeerIss + 1;

TEST_CASE("data is acknowledged after the delayed-ACK time, or at once every second full segment") {
  TcpScript t;
  const SocketId id = t.establish_passive();
  // One small segment: no ACK yet; the delayed ACK fires after 40 ms.
  CHECK(t.send(ACK | PSH, P, t.iss + 1, text("abc")).empty());
  CHECK(t.stack.next_deadline() == t.now + Duration::milliseconds(40));
  CHECK(t.wait(Duration::milliseconds(39)).empty());
  const auto delayed = t.wait(Duration::milliseconds(1));
  REQUIRE(delayed.size() == 1);
  CHECK(delayed[0].ack == P + 3);
  CHECK(t.count(Counter::TcpExtDelayedACKs) == 1);
  // Two full-sized segments: the second is acknowledged at once.
  const Bytes full(1460, 'x');
  CHECK(t.send(ACK, P + 3, t.iss + 1, full).empty());
  const auto ack = t.send(ACK, P + 3 + 1460, t.iss + 1, full);
  REQUIRE(ack.size() == 1);
  CHECK(ack[0].ack == P + 3 + 2920);
  CHECK(t.read_all(id).size() == 3 + 2920);
}

// Linux's __tcp_ack_snd_check() counts bytes: more than one rcv_mss (536 before a larger
// segment has been seen) unacknowledged is answered at once, so a run of small segments is
// not left to the delayed-ACK timer.
TEST_CASE("a run of small segments is acknowledged once it adds up to more than rcv_mss") {
  TcpScript t;
  t.establish_passive();
  const Bytes small(64, 's');
  for (uint32_t i = 0; i < 8; ++i) {  // 512 bytes: not yet more than 536
    CHECK(t.send(ACK | PSH, P + 64 * i, t.iss + 1, small).empty());
  }
  const auto ack = t.send(ACK | PSH, P + 512, t.iss + 1, small);  // 576 bytes
  REQUIRE(ack.size() == 1);
  CHECK(ack[0].ack == P + 576);
  CHECK(t.count(Counter::TcpExtDelayedACKs) == 0);
  // Counting starts again from what that ACK covered.
  CHECK(t.send(ACK | PSH, P + 576, t.iss + 1, small).empty());
}

// Stack::begin_burst()/end_burst(): frames read in one wake-up are acknowledged once, as GRO
// makes Linux acknowledge what one NIC poll brought, up to 64 KiB unacknowledged.
TEST_CASE("within a burst of frames, data is acknowledged once, at the end of the burst") {
  TcpScript t;
  t.establish_passive();
  const Bytes full(1460, 'b');
  t.stack.begin_burst();
  for (uint32_t i = 0; i < 6; ++i) CHECK(t.send(ACK, P + 1460 * i, t.iss + 1, full).empty());
  t.stack.end_burst(t.now);
  const auto acks = t.sent();
  REQUIRE(acks.size() == 1);
  CHECK(acks[0].ack == P + 6 * 1460);
  // Out of order is not held back: the duplicate ACK goes at once, burst or not.
  t.stack.begin_burst();
  CHECK(t.send(ACK, P + 7 * 1460, t.iss + 1, full).size() == 1);
  t.stack.end_burst(t.now);
  CHECK(t.sent().empty());
}

TEST_CASE("a burst is acknowledged at least every 64 KiB") {
  TcpScript t;
  // Window scaling, so that our window holds more than 64 KiB.
  t.establish_passive_with([](Tins::TCP& syn) {
    syn.mss(1460);
    syn.winscale(7);
  });
  const Bytes full(1460, 'g');
  // Two segments first: their ACK offers the scaled window, beyond the SYN-ACK's 65,535.
  t.send(ACK, P, t.iss + 1, full);
  REQUIRE(t.send(ACK, P + 1460, t.iss + 1, full).size() == 1);
  std::vector<Segment> acks;
  t.stack.begin_burst();
  for (uint32_t i = 2; i < 52; ++i) {
    for (const Segment& s : t.send(ACK, P + 1460 * i, t.iss + 1, full)) acks.push_back(s);
  }
  REQUIRE(acks.size() == 1);
  CHECK(acks[0].ack == P + 47 * 1460);  // the first time 64 KiB or more waited
  t.stack.end_burst(t.now);
  const auto last = t.sent();
  REQUIRE(last.size() == 1);
  CHECK(last[0].ack == P + 52 * 1460);
}

TEST_CASE("out-of-order data is queued, acknowledged at once, and delivered when the gap fills") {
  TcpScript t;
  const SocketId id = t.establish_passive();
  auto dup = t.send(ACK, P + 5, t.iss + 1, text("world"));
  REQUIRE(dup.size() == 1);
  CHECK(dup[0].ack == P);  // a duplicate ACK tells the sender of the hole
  CHECK(t.read_all(id).empty());
  const auto ack = t.send(ACK, P, t.iss + 1, text("hello"));
  REQUIRE(ack.size() == 1);
  CHECK(ack[0].ack == P + 10);
  CHECK(t.read_all(id) == "helloworld");
  CHECK(t.count(Counter::TcpExtTCPOFOQueue) == 1);
}

// Found by fuzzing (tests/fuzz/regressions/receive_path/out_of_order_beyond_fin.bin): what was
// queued out of order stayed after the FIN, and when the FIN came with the segment that filled
// the gap, the queued bytes beyond it were delivered as if they were part of the stream.
TEST_CASE("data queued beyond the peer's FIN is dropped, never delivered (Linux: tcp_fin())") {
  TcpScript t;
  const SocketId id = t.establish_passive();
  const size_t memory = t.tcp().buffer_memory();
  t.send(ACK, P + 4, t.iss + 1, text("junk"));
  CHECK(t.tcp().buffer_memory() == memory + 4);
  const auto ack = t.send(FIN | ACK | PSH, P, t.iss + 1, text("abcd"));
  REQUIRE(ack.size() == 1);
  CHECK(ack[0].ack == P + 5);
  CHECK(t.read_all(id) == "abcd");
  CHECK(t.state(id) == TcpState::CloseWait);
  CHECK(t.tcp().check_invariants().empty());
}

// A bulk flow empties its receive buffer every time the application reads; allocating and
// faulting in megabytes again each time cost more than the data (docs/performance.md).
TEST_CASE("an emptied receive buffer keeps its memory while the flow goes on, then gives it back") {
  TcpScript t;
  const SocketId id = t.establish_passive();
  const size_t idle = t.tcp().buffer_memory();
  const std::string chunk(20'000, 'x');  // more than a small buffer keeps
  t.send(ACK, P, t.iss + 1, text(chunk));
  CHECK(t.read_all(id) == chunk);
  const size_t held = t.tcp().buffer_memory();
  CHECK(held > idle + 16 * 1024);
  t.wait(Duration::milliseconds(500));
  CHECK(t.tcp().buffer_memory() == held);  // ready for the next burst
  t.send(ACK, P + 20'000, t.iss + 1, text(chunk));
  CHECK(t.read_all(id) == chunk);
  CHECK(t.tcp().buffer_memory() == held);  // the same memory, not allocated again
  t.wait(Duration::milliseconds(1100));
  CHECK(t.tcp().buffer_memory() == idle);  // idle for a second: given back
  CHECK(t.tcp().check_invariants().empty());
}

TEST_CASE("overlapping and duplicate segments are delivered once") {
  TcpScript t;
  const SocketId id = t.establish_passive();
  t.send(ACK, P + 6, t.iss + 1, text("ghij"));
  t.send(ACK, P + 4, t.iss + 1, text("efgh"));
  t.send(ACK, P + 4, t.iss + 1, text("efgh"));
  t.send(ACK, P, t.iss + 1, text("abcdef"));
  t.send(ACK, P, t.iss + 1, text("abc"));  // old: answered, not delivered again
  CHECK(t.read_all(id) == "abcdefghij");
}

TEST_CASE("a lost segment is retransmitted after the RTO, with exponential backoff") {
  TcpScript t;
  const SocketId id = t.establish_passive();
  REQUIRE(t.tcp().send(id, text("ping"), t.now));
  const auto first = t.sent();
  REQUIRE(first.size() == 1);
  // The handshake measured an RTT of 0: RTO is the 200 ms floor.
  CHECK(t.wait(Duration::milliseconds(199)).empty());
  auto again = t.wait(Duration::milliseconds(1));
  REQUIRE(again.size() == 1);
  CHECK(again[0].seq == first[0].seq);
  CHECK(again[0].payload == text("ping"));
  // Then 400 ms, then 800 ms (RFC 6298 §5.5).
  CHECK(t.wait(Duration::milliseconds(399)).empty());
  CHECK(t.wait(Duration::milliseconds(1)).size() == 1);
  CHECK(t.wait(Duration::milliseconds(799)).empty());
  CHECK(t.wait(Duration::milliseconds(1)).size() == 1);
  CHECK(t.count(Counter::TcpRetransSegs) == 3);
  CHECK(t.count(Counter::TcpExtTCPTimeouts) == 3);
  // An ACK ends it; the connection carries on.
  t.send(ACK, P, first[0].seq + 4);
  CHECK(t.tcp().info(id)->send_queue == 0);
  CHECK(t.wait(Duration::seconds(200)).empty());
}

TEST_CASE("after the retry limit the connection fails with ETIMEDOUT") {
  StackConfig config = TcpScript::script_config();
  config.tcp.retries2 = 3;
  TcpScript t(config);
  const SocketId id = t.establish_passive();
  REQUIRE(t.tcp().send(id, text("lost"), t.now));
  t.sent();
  const auto retransmissions = t.wait(Duration::seconds(600));
  CHECK(retransmissions.size() == 3);
  CHECK(t.state(id) == TcpState::Closed);
  uint8_t buffer[4];
  CHECK(t.tcp().receive(id, buffer, t.now).error().code == ETIMEDOUT);
  CHECK(t.count(Counter::TcpExtTCPAbortOnTimeout) == 1);
}

TEST_CASE("an unanswered SYN is retried syn_retries times, then ETIMEDOUT") {
  StackConfig config = TcpScript::script_config();
  config.tcp.syn_retries = 2;
  TcpScript t(config);
  const auto id = t.tcp().connect(ip(kPeerIp), TcpScript::kPeerPort, t.now, TcpScript::kOurPort);
  REQUIRE(id);
  CHECK(t.sent().size() == 1);
  CHECK(t.wait(Duration::seconds(1)).size() == 1);  // 1 s
  CHECK(t.wait(Duration::seconds(2)).size() == 1);  // 2 s
  CHECK(t.wait(Duration::seconds(4)).empty());
  CHECK(t.state(*id) == TcpState::Closed);
  uint8_t buffer[1];
  CHECK(t.tcp().receive(*id, buffer, t.now).error().code == ETIMEDOUT);
  CHECK(t.count(Counter::TcpAttemptFails) == 1);
}

TEST_CASE("RTT measurement sets the RTO (RFC 6298 §2, with Linux's 200 ms floor)") {
  TcpScript t;
  const SocketId id = t.establish_active();
  REQUIRE(t.tcp().send(id, text("x"), t.now));
  const auto data = t.sent();
  t.wait(Duration::milliseconds(100));
  t.send(ACK, P, data[0].seq + 1);
  const TcpInfo info = *t.tcp().info(id);
  // Samples: the handshake's 0 ms, then 100 ms.
  CHECK(info.srtt == Duration::milliseconds(100) / 8);
  CHECK(info.rto >= Duration::milliseconds(200));
  CHECK(info.rto < Duration::milliseconds(400));
}

TEST_CASE("Nagle: one small segment in flight at a time, unless no-delay") {
  for (const bool no_delay : {false, true}) {
    CAPTURE(no_delay);
    TcpScript t;
    const SocketId id = t.establish_passive();
    SocketOptions options = *t.tcp().options(id);
    options.no_delay = no_delay;
    REQUIRE(t.tcp().set_options(id, options));
    REQUIRE(t.tcp().send(id, text("a"), t.now));
    REQUIRE(t.tcp().send(id, text("b"), t.now));
    REQUIRE(t.tcp().send(id, text("c"), t.now));
    const auto out = t.sent();
    CHECK(out.size() == (no_delay ? 3u : 1u));
    if (!no_delay) {
      // The ACK of the first releases the rest, coalesced.
      const auto rest = t.send(ACK, P, t.iss + 2);
      REQUIRE(rest.size() == 1);
      CHECK(rest[0].payload == text("bc"));
    }
  }
}

TEST_CASE("data larger than the MSS leaves in MSS-sized segments, within the peer's window") {
  TcpScript t;
  const SocketId id = t.establish_passive(1000);
  const Bytes data(5000, 'd');
  REQUIRE(*t.tcp().send(id, data, t.now) == 5000);
  const auto out = t.sent();
  REQUIRE(out.size() == 5);
  for (const auto& s : out) CHECK(s.payload.size() == 1000);
}

TEST_CASE("zero window: persist probes until the window opens, then data flows") {
  TcpScript t;
  const SocketId id = t.establish_passive();
  // The peer shuts its window.
  t.send(ACK, P, t.iss + 1, {}, 0);
  REQUIRE(t.tcp().send(id, text("blocked"), t.now));
  CHECK(t.sent().empty());
  // Probes at the RTO (200 ms here), backing off; no data, an old sequence number.
  CHECK(t.wait(Duration::milliseconds(199)).empty());
  const auto probe = t.wait(Duration::milliseconds(1));
  REQUIRE(probe.size() == 1);
  CHECK(probe[0].payload.empty());
  CHECK(probe[0].seq == t.iss);
  CHECK(t.count(Counter::TcpExtTCPWinProbe) == 1);
  CHECK(t.send(ACK, P, t.iss + 1, {}, 0).empty());  // still shut
  // The answer proves the peer alive but the window stays shut: the backoff goes on.
  CHECK(t.wait(Duration::milliseconds(399)).empty());
  CHECK(t.wait(Duration::milliseconds(1)).size() == 1);
  CHECK(t.wait(Duration::milliseconds(799)).empty());
  CHECK(t.count(Counter::TcpExtTCPWinProbe) == 2);
  CHECK(t.state(id) == TcpState::Established);
  // The window opens: the data goes at once.
  const auto data = t.send(ACK, P, t.iss + 1, {}, 1000);
  REQUIRE(data.size() == 1);
  CHECK(data[0].payload == text("blocked"));
}

TEST_CASE("our zero window: data beyond it is dropped; reading reopens it with an update") {
  StackConfig config = TcpScript::script_config();
  config.tcp.defaults.receive_buffer = 4096;
  TcpScript t(config);
  const SocketId id = t.establish_passive();
  const Bytes chunk(1024, 'z');
  uint32_t seq = P;
  std::vector<Segment> acks;
  for (int i = 0; i < 4; ++i, seq += 1024) {
    for (auto& s : t.send(ACK, seq, t.iss + 1, chunk)) acks.push_back(s);
  }
  for (auto& s : t.wait(Duration::milliseconds(50))) acks.push_back(s);
  REQUIRE_FALSE(acks.empty());
  CHECK(acks.back().window == 0);
  // Data beyond a zero window is dropped and acknowledged with the same ack.
  const auto refused = t.send(ACK, seq, t.iss + 1, chunk);
  REQUIRE(refused.size() == 1);
  CHECK(refused[0].ack == seq);
  CHECK(t.drops(DropReason::TcpZeroWindow) == 1);
  // Reading opens the window: a window update goes out.
  CHECK(t.read_all(id).size() == 4096);
  const auto update = t.sent();
  REQUIRE(update.size() == 1);
  CHECK(update[0].window == 4096);
}

// Linux's tcp_cleanup_rbuf(): a read sends a window update only when the window the peer
// knows is at most half the largest we can offer and the new one is at least twice it.
TEST_CASE("reading sends a window update only when the window at least doubles") {
  StackConfig config = TcpScript::script_config();
  config.tcp.defaults.receive_buffer = 64'000;  // the largest window we can offer
  TcpScript t(config);
  const SocketId id = t.establish_passive();
  const Bytes chunk(1000, 'w');
  uint32_t seq = P;
  auto send_unread = [&](int count) {
    for (int i = 0; i < count; ++i, seq += 1000) t.send(ACK, seq, t.iss + 1, chunk);
    t.wait(Duration::milliseconds(50));  // the last delayed ACK
  };
  send_unread(20);  // the peer knows 44,000 bytes of window: more than half of 64,000
  CHECK(t.read_all(id).size() == 20'000);
  CHECK(t.sent().empty());
  // The ACKs of the next data carry the reopened window; 40,000 bytes left unread bring
  // what the peer knows down to 24,000, and reading them at least doubles it.
  send_unread(40);
  CHECK(t.read_all(id).size() == 40'000);
  const auto update = t.sent();
  REQUIRE(update.size() == 1);
  CHECK(update[0].ack == seq);
  // Sent by the read (of 4 KiB) that first freed twice the 24,000 bytes; none after it.
  CHECK(update[0].window >= 48'000);
  CHECK(update[0].window < 48'000 + 4096);
}

TEST_CASE("keepalive probes an idle connection and gives up when nobody answers") {
  TcpScript t;
  const SocketId id = t.establish_passive();
  SocketOptions options = *t.tcp().options(id);
  options.keepalive = true;
  options.keepalive_idle = Duration::seconds(10);
  options.keepalive_interval = Duration::seconds(2);
  options.keepalive_probes = 3;
  REQUIRE(t.tcp().set_options(id, options));
  CHECK(t.wait(Duration::milliseconds(9999)).empty());
  auto probe = t.wait(Duration::milliseconds(1));
  REQUIRE(probe.size() == 1);
  CHECK(probe[0].seq == t.iss);  // snd_una - 1: the peer must answer
  // An answer resets the count and the idle time.
  t.send(ACK, P, t.iss + 1);
  CHECK(t.wait(Duration::milliseconds(9999)).empty());
  CHECK(t.wait(Duration::milliseconds(1)).size() == 1);
  CHECK(t.wait(Duration::seconds(2)).size() == 1);
  CHECK(t.wait(Duration::seconds(2)).size() == 1);
  const auto reset = t.wait(Duration::seconds(2));
  REQUIRE(reset.size() == 1);
  CHECK(reset[0].has(RST));
  CHECK(t.state(id) == TcpState::Closed);
  uint8_t buffer[1];
  CHECK(t.tcp().receive(id, buffer, t.now).error().code == ETIMEDOUT);
}

TEST_CASE("FIN-WAIT-2 of a closed socket times out") {
  TcpScript t;
  const SocketId id = t.establish_passive();
  REQUIRE(t.tcp().close(id, t.now));
  REQUIRE(t.sent().size() == 1);
  t.send(ACK, P, t.iss + 2);
  CHECK(t.tcp().connection_count() == 2);  // the listener and the orphan
  t.wait(Duration::seconds(60));
  CHECK(t.tcp().connection_count() == 1);
}

TEST_CASE("three duplicate ACKs trigger a fast retransmit without waiting for the RTO") {
  TcpScript t;
  const SocketId id = t.establish_passive();
  REQUIRE(t.tcp().send(id, Bytes(1460 * 6, 'q'), t.now));
  const auto flight = t.sent();
  REQUIRE(flight.size() == 6);
  // The first segment is lost; three later ones arrive and produce duplicate ACKs.
  for (int i = 0; i < 2; ++i) CHECK(t.send(ACK, P, t.iss + 1).empty());
  const auto retransmit = t.send(ACK, P, t.iss + 1);
  REQUIRE_FALSE(retransmit.empty());
  CHECK(retransmit[0].seq == t.iss + 1);
  CHECK(t.count(Counter::TcpExtTCPFastRetrans) == 1);
  CHECK(t.count(Counter::TcpExtTCPTimeouts) == 0);
}

TEST_CASE("limited transmit (RFC 3042): the first two duplicate ACKs each send a new segment") {
  TcpScript t;
  const SocketId id = t.establish_passive();
  // More than the initial window of ten segments.
  REQUIRE(t.tcp().send(id, Bytes(1460 * 14, 'q'), t.now));
  const auto flight = t.sent();
  REQUIRE(flight.size() == 10);
  const uint32_t next = t.iss + 1 + 10 * 1460;
  // The first segment is lost; the peer acknowledges what came before it, again and again.
  for (uint32_t i = 0; i < 2; ++i) {
    const auto out = t.send(ACK, P, t.iss + 1);
    REQUIRE(out.size() == 1);
    CHECK(out[0].seq == next + i * 1460);  // new data, beyond cwnd
    CHECK(out[0].payload.size() == 1460);
  }
  const auto third = t.send(ACK, P, t.iss + 1);
  REQUIRE_FALSE(third.empty());
  CHECK(third[0].seq == t.iss + 1);  // now the fast retransmit
  CHECK(t.count(Counter::TcpExtTCPFastRetrans) == 1);
  CHECK(t.count(Counter::TcpExtTCPTimeouts) == 0);
}

TEST_CASE("the initial window: ten segments by default (RFC 6928), or as configured") {
  for (const uint32_t segments : {10u, 4u, 1u}) {
    CAPTURE(segments);
    StackConfig config = TcpScript::script_config();
    config.tcp.initial_window_segments = segments;
    TcpScript t(config);
    const SocketId id = t.establish_passive();
    REQUIRE(t.tcp().send(id, Bytes(1460 * 20, 'w'), t.now));
    CHECK(t.sent().size() == segments);
    CHECK(t.tcp().info(id)->cwnd == segments * 1460);
  }
}

// Grows the window by sending `rounds` flights of data and acknowledging each at once (slow
// start); returns the cwnd reached. The peer's window (65535, unscaled) bounds each flight.
uint32_t grow_window(TcpScript& t, SocketId id, int rounds) {
  uint32_t acked = t.iss + 1;
  for (int i = 0; i < rounds; ++i) {
    REQUIRE(t.tcp().send(id, Bytes(60'000, 'g'), t.now));
    // Acknowledge every flight at once, until nothing more comes.
    for (auto flight = t.sent(); !flight.empty(); flight = t.send(ACK, P, acked)) {
      for (const Segment& seg : flight) {
        acked = std::max(acked, seg.seq + static_cast<uint32_t>(seg.payload.size()));
      }
    }
  }
  REQUIRE(t.tcp().info(id)->unacked == 0);
  return t.tcp().info(id)->cwnd;
}

TEST_CASE("after an idle spell longer than the RTO, cwnd restarts from the initial window") {
  // RFC 5681 §4.1 (RFC 2861) as Linux does it: halved per RTO idle, not below the initial
  // window; ssthresh keeps three quarters of the old window.
  TcpScript t;
  const SocketId id = t.establish_passive();
  const uint32_t grown = grow_window(t, id, 12);
  REQUIRE(grown >= 3 * 10 * 1460);
  const Duration rto = t.tcp().info(id)->rto;
  SUBCASE("idle for many RTOs: back to the initial window") {
    t.wait(rto * 10);
    REQUIRE(t.tcp().send(id, Bytes(60'000, 'h'), t.now));
    CHECK(t.sent().size() == 10);
    CHECK(t.tcp().info(id)->cwnd == 10 * 1460);
    // Never below three quarters of the old window (Linux: tcp_current_ssthresh()); here it
    // was still "infinite", from the handshake, and stays so.
    CHECK(t.tcp().info(id)->ssthresh >= grown / 2 + grown / 4);
  }
  SUBCASE("idle for one and a half RTOs: halved once") {
    t.wait(Duration::nanoseconds(rto.ns() * 3 / 2));
    REQUIRE(t.tcp().send(id, Bytes(60'000, 'h'), t.now));
    t.sent();
    CHECK(t.tcp().info(id)->cwnd == grown / 2);
  }
  SUBCASE("idle for less than the RTO: the window stays") {
    t.wait(rto - Duration::milliseconds(1));
    REQUIRE(t.tcp().send(id, Bytes(60'000, 'h'), t.now));
    t.sent();
    CHECK(t.tcp().info(id)->cwnd == grown);
  }
}

TEST_CASE("with slow_start_after_idle off, the window survives an idle spell") {
  StackConfig config = TcpScript::script_config();
  config.tcp.slow_start_after_idle = false;
  TcpScript t(config);
  const SocketId id = t.establish_passive();
  const uint32_t grown = grow_window(t, id, 12);
  REQUIRE(grown >= 3 * 10 * 1460);
  t.wait(Duration::seconds(10));
  REQUIRE(t.tcp().send(id, Bytes(60'000, 'h'), t.now));
  t.sent();
  CHECK(t.tcp().info(id)->cwnd == grown);
}

}  // namespace
}  // namespace tapstack::test
