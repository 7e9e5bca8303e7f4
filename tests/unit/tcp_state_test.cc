// The RFC 9293 state machine (§3.3.2, Figure 5), one row per transition, as segment scripts:
// the peer sends, we assert what the stack answers and the state it reaches.
#include <doctest/doctest.h>

#include <cerrno>

#include <string>
#include <string_view>
#include <vector>

#include <functional>

#include "tests/support/tcp_script.h"

namespace tapstack::test {
namespace {

constexpr uint32_t P = TcpScript::kPeerIss + 1;  // the peer's first data byte

// A connection established passively, and helpers to move it along.
struct Row {
  const char* name;
  std::function<SocketId(TcpScript&)> setup;  // reaches the "from" state
  TcpState from;
  std::function<std::vector<Segment>(TcpScript&, SocketId)> event;
  TcpState to;
  std::vector<uint8_t> answer;  // flags of what the stack sends in response
};

SocketId established(TcpScript& t) { return t.establish_passive(); }
SocketId fin_wait_1(TcpScript& t) {
  const SocketId id = t.establish_passive();
  REQUIRE(t.tcp().shutdown(id, ShutdownHow::Write, t.now));
  REQUIRE(t.sent().size() == 1);
  return id;
}
SocketId fin_wait_2(TcpScript& t) {
  const SocketId id = fin_wait_1(t);
  REQUIRE(t.send(ACK, P, t.iss + 2).empty());
  return id;
}
SocketId close_wait(TcpScript& t) {
  const SocketId id = t.establish_passive();
  REQUIRE(t.send(FIN | ACK, P, t.iss + 1).size() == 1);
  return id;
}
SocketId closing(TcpScript& t) {
  const SocketId id = fin_wait_1(t);
  REQUIRE(t.send(FIN | ACK, P, t.iss + 1).size() == 1);  // FIN that does not ack ours
  return id;
}
SocketId last_ack(TcpScript& t) {
  const SocketId id = close_wait(t);
  REQUIRE(t.tcp().shutdown(id, ShutdownHow::Write, t.now));
  REQUIRE(t.sent().size() == 1);
  return id;
}
SocketId time_wait(TcpScript& t) {
  const SocketId id = fin_wait_2(t);
  REQUIRE(t.send(FIN | ACK, P, t.iss + 2).size() == 1);
  return id;
}
SocketId syn_sent(TcpScript& t) {
  auto id = t.tcp().connect(ip(kPeerIp), TcpScript::kPeerPort, t.now, TcpScript::kOurPort);
  REQUIRE(id);
  const auto syn = t.sent();
  REQUIRE(syn.size() == 1);
  t.iss = syn[0].seq;
  return *id;
}
SocketId syn_received_active(TcpScript& t) {
  const SocketId id = syn_sent(t);
  REQUIRE(t.send(SYN, TcpScript::kPeerIss, 0).size() == 1);
  return id;
}

std::vector<uint8_t> flags_of(const std::vector<Segment>& segments) {
  std::vector<uint8_t> flags;
  for (const auto& s : segments) flags.push_back(s.flags & ~PSH);
  return flags;
}

TEST_CASE("every transition of RFC 9293's state diagram") {
  const Row rows[] = {
      {"SYN-SENT: SYN-ACK -> ESTABLISHED", syn_sent, TcpState::SynSent,
       [](TcpScript& t, SocketId) { return t.send(SYN | ACK, TcpScript::kPeerIss, t.iss + 1); },
       TcpState::Established, {ACK}},
      {"SYN-SENT: SYN -> SYN-RECEIVED (simultaneous open)", syn_sent, TcpState::SynSent,
       [](TcpScript& t, SocketId) { return t.send(SYN, TcpScript::kPeerIss, 0); },
       TcpState::SynReceived, {SYN | ACK}},
      {"SYN-RECEIVED (active): ACK -> ESTABLISHED", syn_received_active, TcpState::SynReceived,
       [](TcpScript& t, SocketId) { return t.send(ACK, P, t.iss + 1); }, TcpState::Established,
       {}},
      {"ESTABLISHED: close -> FIN-WAIT-1", established, TcpState::Established,
       [](TcpScript& t, SocketId id) {
         REQUIRE(t.tcp().shutdown(id, ShutdownHow::Write, t.now));
         return t.sent();
       },
       TcpState::FinWait1, {FIN | ACK}},
      {"ESTABLISHED: FIN -> CLOSE-WAIT", established, TcpState::Established,
       [](TcpScript& t, SocketId) { return t.send(FIN | ACK, P, t.iss + 1); },
       TcpState::CloseWait, {ACK}},
      {"FIN-WAIT-1: ACK of FIN -> FIN-WAIT-2", fin_wait_1, TcpState::FinWait1,
       [](TcpScript& t, SocketId) { return t.send(ACK, P, t.iss + 2); }, TcpState::FinWait2, {}},
      {"FIN-WAIT-1: FIN -> CLOSING (simultaneous close)", fin_wait_1, TcpState::FinWait1,
       [](TcpScript& t, SocketId) { return t.send(FIN | ACK, P, t.iss + 1); },
       TcpState::Closing, {ACK}},
      {"FIN-WAIT-1: FIN + ACK of FIN -> TIME-WAIT", fin_wait_1, TcpState::FinWait1,
       [](TcpScript& t, SocketId) { return t.send(FIN | ACK, P, t.iss + 2); },
       TcpState::TimeWait, {ACK}},
      {"FIN-WAIT-2: FIN -> TIME-WAIT", fin_wait_2, TcpState::FinWait2,
       [](TcpScript& t, SocketId) { return t.send(FIN | ACK, P, t.iss + 2); },
       TcpState::TimeWait, {ACK}},
      {"CLOSING: ACK of FIN -> TIME-WAIT", closing, TcpState::Closing,
       [](TcpScript& t, SocketId) { return t.send(ACK, P + 1, t.iss + 2); }, TcpState::TimeWait,
       {}},
      {"CLOSE-WAIT: close -> LAST-ACK", close_wait, TcpState::CloseWait,
       [](TcpScript& t, SocketId id) {
         REQUIRE(t.tcp().shutdown(id, ShutdownHow::Write, t.now));
         return t.sent();
       },
       TcpState::LastAck, {FIN | ACK}},
      {"LAST-ACK: ACK of FIN -> CLOSED", last_ack, TcpState::LastAck,
       [](TcpScript& t, SocketId) { return t.send(ACK, P + 1, t.iss + 2); }, TcpState::Closed,
       {}},
      {"TIME-WAIT: 2 MSL -> CLOSED", time_wait, TcpState::TimeWait,
       [](TcpScript& t, SocketId) { return t.wait(Duration::seconds(120)); }, TcpState::Closed,
       {}},
  };
  for (const Row& row : rows) {
    const std::string name = row.name;
    CAPTURE(name);
    TcpScript t;
    const SocketId id = row.setup(t);
    REQUIRE(t.state(id) == row.from);
    std::string trace;
    t.stack.trace().set_sink([&](std::string_view line) { trace += std::string(line) + "\n"; });
    const auto answer = row.event(t, id);
    CHECK(t.state(id) == row.to);
    CHECK(flags_of(answer) == row.answer);
    // Every change of state is one step of the trace (Tcp::set_state), "OLD → NEW"; FIN-WAIT-1
    // to TIME-WAIT passes FIN-WAIT-2.
    CAPTURE(trace);
    CHECK(trace.find(std::string(tcp_state_name(row.from)) + " → ") != std::string::npos);
    CHECK(trace.find("→ " + std::string(tcp_state_name(row.to))) != std::string::npos);
  }
}

// Linux's tcp_set_state(): ESTABLISHED or CLOSE-WAIT straight to CLOSED, for whatever cause.
TEST_CASE("TcpEstabResets counts every way from ESTABLISHED or CLOSE-WAIT to CLOSED") {
  struct Case {
    const char* name;
    std::function<SocketId(TcpScript&)> setup;
    std::function<void(TcpScript&, SocketId)> end;
    uint64_t resets;
  };
  const auto abort = [](TcpScript& t, SocketId id) { REQUIRE(t.tcp().abort(id, t.now)); };
  const Case cases[] = {
      {"ESTABLISHED: reset received", established,
       [](TcpScript& t, SocketId) { t.send(RST, P, 0); }, 1},
      {"ESTABLISHED: abort", established, abort, 1},
      {"CLOSE-WAIT: abort", close_wait, abort, 1},
      {"ESTABLISHED: close with unread data", established,
       [](TcpScript& t, SocketId id) {
         REQUIRE(t.send(ACK | PSH, P, t.iss + 1, text("unread")).empty());
         REQUIRE(t.tcp().close(id, t.now));
       },
       1},
      {"FIN-WAIT-1: abort", fin_wait_1, abort, 0},
      {"SYN-SENT: abort", syn_sent, abort, 0},
  };
  for (const Case& c : cases) {
    const std::string name = c.name;
    CAPTURE(name);
    TcpScript t;
    const SocketId id = c.setup(t);
    c.end(t, id);
    CHECK(t.count(Counter::TcpEstabResets) == c.resets);
  }
}

TEST_CASE("LISTEN: SYN -> SYN-RECEIVED with our MSS; ACK -> ESTABLISHED and acceptable") {
  TcpScript t;
  const SocketId l = *t.tcp().listen(TcpScript::kOurPort, 4);
  CHECK(t.tcp().events(l) == 0);
  const auto synack = t.send(SYN, 1000, 0, {}, 65535, 1460);
  REQUIRE(synack.size() == 1);
  CHECK(synack[0].flags == (SYN | ACK));
  CHECK(synack[0].ack == 1001);
  CHECK(synack[0].mss == 1460);
  CHECK_FALSE(t.tcp().accept(l));
  CHECK(t.tcp().accept(l).error().code == EAGAIN);
  CHECK(t.send(ACK, 1001, synack[0].seq + 1).empty());
  CHECK(t.tcp().events(l) == socket_event::kAcceptable);
  const auto id = t.tcp().accept(l);
  REQUIRE(id);
  CHECK(t.state(*id) == TcpState::Established);
  CHECK((t.tcp().events(*id) & socket_event::kConnected) != 0);
  CHECK(t.count(Counter::TcpPassiveOpens) == 1);
}

TEST_CASE("SYN-SENT: close -> CLOSED with nothing sent") {
  TcpScript t;
  const SocketId id = syn_sent(t);
  REQUIRE(t.tcp().close(id, t.now));
  CHECK(t.sent().empty());
  CHECK(t.tcp().connection_count() == 0);
}

TEST_CASE("LISTEN: close -> CLOSED; half-open children are reset") {
  TcpScript t;
  const SocketId l = *t.tcp().listen(TcpScript::kOurPort, 4);
  REQUIRE(t.send(SYN, 1000, 0).size() == 1);
  REQUIRE(t.tcp().close(l, t.now));
  const auto rst = t.sent();
  REQUIRE(rst.size() == 1);
  CHECK(rst[0].has(RST));
  CHECK(t.tcp().connection_count() == 0);
  // Nobody listens any more: a new SYN is refused.
  const auto refused = t.send(SYN, 5000, 0);
  REQUIRE(refused.size() == 1);
  CHECK(refused[0].flags == (RST | ACK));
}

TEST_CASE("a segment to a closed port is answered with RST (RFC 9293 §3.10.7.1)") {
  TcpScript t;
  // Without ACK: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>
  auto rst = t.send(SYN, 7000, 0);
  REQUIRE(rst.size() == 1);
  CHECK(rst[0].flags == (RST | ACK));
  CHECK(rst[0].seq == 0);
  CHECK(rst[0].ack == 7001);
  // With ACK: <SEQ=SEG.ACK><CTL=RST>
  rst = t.send(ACK | PSH, 7001, 12345, text("hello"));
  REQUIRE(rst.size() == 1);
  CHECK(rst[0].flags == RST);
  CHECK(rst[0].seq == 12345);
  // A RST is never answered.
  CHECK(t.send(RST, 7001, 0).empty());
  CHECK(t.drops(DropReason::TcpNoSocket) == 2);
  CHECK(t.count(Counter::TcpOutRsts) == 2);
}

TEST_CASE("RST in each state (RFC 9293 §3.10.7.4 step 2, RFC 5961 §3.2)") {
  struct Case {
    const char* name;
    std::function<SocketId(TcpScript&)> setup;
    uint32_t rst_seq;
    int error;
  };
  const Case cases[] = {
      {"ESTABLISHED", established, P, ECONNRESET},
      {"FIN-WAIT-1", fin_wait_1, P, ECONNRESET},
      {"FIN-WAIT-2", fin_wait_2, P, ECONNRESET},
      {"CLOSE-WAIT", close_wait, P + 1, ECONNRESET},
      {"CLOSING", closing, P + 1, 0},
      {"LAST-ACK", last_ack, P + 1, 0},
      {"SYN-RECEIVED (active)", syn_received_active, P, ECONNREFUSED},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    TcpScript t;
    const SocketId id = c.setup(t);
    CHECK(t.send(RST, c.rst_seq, 0).empty());
    CHECK(t.state(id) == TcpState::Closed);
    uint8_t buffer[8];
    const auto read = t.tcp().receive(id, buffer, t.now);
    if (c.error != 0) {
      REQUIRE_FALSE(read);
      CHECK(read.error().code == c.error);
    } else {
      CHECK(read);
    }
  }
}

TEST_CASE("SYN-SENT: RST with an acceptable ACK means connection refused") {
  TcpScript t;
  const SocketId id = syn_sent(t);
  CHECK(t.send(RST | ACK, 0, t.iss + 1).empty());
  CHECK(t.state(id) == TcpState::Closed);
  CHECK((t.tcp().events(id) & socket_event::kError) != 0);
  uint8_t buffer[1];
  CHECK(t.tcp().receive(id, buffer, t.now).error().code == ECONNREFUSED);
  CHECK(t.count(Counter::TcpAttemptFails) == 1);
}

TEST_CASE("SYN-SENT: an unacceptable ACK is answered with RST, a bare RST ignored") {
  TcpScript t;
  const SocketId id = syn_sent(t);
  const auto rst = t.send(SYN | ACK, 1000, t.iss + 5);
  REQUIRE(rst.size() == 1);
  CHECK(rst[0].flags == RST);
  CHECK(rst[0].seq == t.iss + 5);
  CHECK(t.send(RST, 1000, 0).empty());
  CHECK(t.state(id) == TcpState::SynSent);
}

TEST_CASE("RST in the window but not at rcv_nxt gets a challenge ACK (RFC 5961 §3.2)") {
  TcpScript t;
  const SocketId id = t.establish_passive();
  const auto challenge = t.send(RST, P + 100, 0);
  REQUIRE(challenge.size() == 1);
  CHECK(challenge[0].flags == ACK);
  CHECK(challenge[0].ack == P);
  CHECK(t.state(id) == TcpState::Established);
  CHECK(t.count(Counter::TcpExtTCPChallengeACK) == 1);
  // Outside the window: silently dropped.
  CHECK(t.send(RST, P + 100000, 0).empty());
  CHECK(t.drops(DropReason::TcpRstOutOfWindow) == 1);
  CHECK(t.state(id) == TcpState::Established);
}

TEST_CASE("a SYN on an established connection gets a challenge ACK (RFC 5961 §4)") {
  TcpScript t;
  const SocketId id = t.establish_passive();
  const auto challenge = t.send(SYN, 99999, 0);
  REQUIRE(challenge.size() == 1);
  CHECK(challenge[0].flags == ACK);
  CHECK(t.state(id) == TcpState::Established);
}

// RFC 5961 as a table: what an attacker's blind segment at an established connection gets.
TEST_CASE("RFC 5961 challenge ACKs, table-driven: RST, SYN and ACK at every place in the window") {
  enum class Outcome { ChallengeAck, Reset, Dropped, Accepted };
  struct Row {
    const char* name;
    uint8_t flags;
    int64_t seq;  // relative to rcv_nxt
    int64_t ack;  // relative to snd_nxt (our data: 100 bytes in flight, snd_una = snd_nxt - 100)
    Outcome outcome;
  };
  const std::vector<Row> rows = {
      {"RST at rcv_nxt", RST, 0, 0, Outcome::Reset},                              // §3.2 1)
      {"RST in the window, not at rcv_nxt", RST, 1000, 0, Outcome::ChallengeAck},  // §3.2 3)
      {"RST at the window's last byte", RST, 65534, 0, Outcome::ChallengeAck},
      {"RST beyond the window", RST, 70000, 0, Outcome::Dropped},                 // §3.2 2)
      {"RST before the window", RST, -1, 0, Outcome::Dropped},
      {"SYN at rcv_nxt", SYN, 0, 0, Outcome::ChallengeAck},                       // §4.2
      {"SYN in the window", SYN, 5000, 0, Outcome::ChallengeAck},
      {"SYN beyond the window", SYN, 70000, 0, Outcome::ChallengeAck},  // RFC 9293 §3.10.7.4
      {"SYN-ACK in the window", SYN | ACK, 10, 0, Outcome::ChallengeAck},
      {"ACK of data not sent", ACK, 0, 1, Outcome::ChallengeAck},                 // §5.2
      {"ACK far ahead", ACK, 0, 1 << 20, Outcome::ChallengeAck},
      {"ACK older than the largest window", ACK, 0, -100 - 70000, Outcome::ChallengeAck},
      {"old ACK inside the window", ACK, 0, -100 - 1000, Outcome::Accepted},
      {"ACK of what is in flight", ACK, 0, 0, Outcome::Accepted},
  };
  for (const Row& row : rows) {
    CAPTURE(row.name);
    TcpScript t;
    const SocketId id = t.establish_passive();
    REQUIRE(t.tcp().send(id, Bytes(100, 'x'), t.now));
    REQUIRE(t.sent().size() == 1);
    const uint32_t snd_nxt = t.iss + 101;
    const auto before = t.count(Counter::TcpExtTCPChallengeACK);
    const auto out = t.send(row.flags, static_cast<uint32_t>(P + row.seq),
                            static_cast<uint32_t>(snd_nxt + row.ack));
    const bool challenged = t.count(Counter::TcpExtTCPChallengeACK) == before + 1;
    switch (row.outcome) {
      case Outcome::ChallengeAck:
        CHECK(challenged);
        REQUIRE(out.size() == 1);
        CHECK(out[0].flags == ACK);
        CHECK(out[0].seq == snd_nxt);
        CHECK(out[0].ack == P);
        CHECK(t.state(id) == TcpState::Established);
        break;
      case Outcome::Reset:
        CHECK(out.empty());
        CHECK((t.tcp().events(id) & socket_event::kError) != 0);
        break;
      case Outcome::Dropped:
        CHECK(out.empty());
        CHECK_FALSE(challenged);
        CHECK(t.state(id) == TcpState::Established);
        break;
      case Outcome::Accepted:
        CHECK_FALSE(challenged);
        CHECK(t.state(id) == TcpState::Established);
        break;
    }
  }
}

TEST_CASE("challenge ACKs are limited to 1000 a second for the stack (RFC 5961 §7)") {
  TcpScript t;
  const SocketId id = t.establish_passive();
  size_t answered = 0;
  for (int i = 0; i < 1500; ++i) answered += t.send(RST, P + 1000, 0).size();
  CHECK(answered == 1000);
  CHECK(t.count(Counter::TcpExtTCPChallengeACK) == 1000);
  CHECK(t.state(id) == TcpState::Established);
  t.wait(Duration::seconds(1));
  CHECK(t.send(RST, P + 1000, 0).size() == 1);  // a new second, a new allowance
}

TEST_CASE("connecting to a neighbour that never answers ARP fails with EHOSTUNREACH, as Linux") {
  TcpScript t;
  const Ipv4Address silent = ip("198.18.0.9");
  auto id = t.tcp().connect(silent, 80, t.now);
  REQUIRE(id);
  t.wait(Duration::seconds(2));
  CHECK(t.state(*id) == TcpState::SynSent);
  t.wait(Duration::seconds(3));  // three requests a second apart, then the neighbour fails
  CHECK(t.count(Counter::ArpResolveFailures) == 1);
  CHECK((t.tcp().events(*id) & socket_event::kError) != 0);
  const Status error = t.tcp().take_error(*id);
  REQUIRE_FALSE(error);
  CHECK(error.error().code == EHOSTUNREACH);
  CHECK(t.tcp().take_error(*id));  // handed over once, as SO_ERROR
  // A connection to a neighbour that answers is not touched.
  const SocketId other = t.establish_active();
  CHECK(t.state(other) == TcpState::Established);
}

TEST_CASE("SYN with RST or FIN is dropped unanswered, at a connection and at a listener") {
  TcpScript t;
  const SocketId id = t.establish_passive();
  CHECK(t.send(SYN | FIN, P, t.iss + 1).empty());
  CHECK(t.send(SYN | RST, P, t.iss + 1).empty());
  CHECK(t.send(SYN | FIN, 5000, 0, {}, 65535, std::nullopt, 40001).empty());  // the listener
  CHECK(t.send(SYN | RST | ACK, 5000, 0, {}, 65535, std::nullopt, 40001).empty());
  CHECK(t.drops(DropReason::TcpBadFlags) == 4);
  CHECK(t.state(id) == TcpState::Established);
  CHECK(t.tcp().connection_count() == 2);
}

TEST_CASE("TIME-WAIT acknowledges a retransmitted FIN and restarts 2 MSL") {
  TcpScript t;
  const SocketId id = time_wait(t);
  t.wait(Duration::seconds(100));
  const auto ack = t.send(FIN | ACK, P, t.iss + 2);
  REQUIRE(ack.size() == 1);
  CHECK(ack[0].flags == ACK);
  CHECK(ack[0].ack == P + 1);
  t.wait(Duration::seconds(100));
  CHECK(t.state(id) == TcpState::TimeWait);
  t.wait(Duration::seconds(20));
  CHECK(t.state(id) == TcpState::Closed);
  CHECK(t.count(Counter::TcpExtTW) == 1);
}

TEST_CASE("TIME-WAIT: a new SYN with a higher sequence number reopens the connection") {
  TcpScript t;
  const SocketId id = t.establish_passive();
  REQUIRE(t.tcp().close(id, t.now));
  REQUIRE(t.sent().size() == 1);                    // our FIN
  REQUIRE(t.send(FIN | ACK, P, t.iss + 2).size() == 1);  // -> TIME-WAIT
  const auto synack = t.send(SYN, P + 100000, 0);
  REQUIRE(synack.size() == 1);
  CHECK(synack[0].flags == (SYN | ACK));
  CHECK(synack[0].ack == P + 100001);
  CHECK(t.count(Counter::TcpExtTWRecycled) == 1);
}

TEST_CASE("half-close: each direction shuts down on its own") {
  TcpScript t;
  const SocketId id = t.establish_passive();
  REQUIRE(t.send(FIN | ACK | PSH, P, t.iss + 1, text("bye")).size() == 1);
  CHECK(t.state(id) == TcpState::CloseWait);
  CHECK(t.read_all(id) == "bye");
  CHECK((t.tcp().events(id) & socket_event::kPeerClosed) != 0);
  // We can still send after the peer's FIN.
  REQUIRE(t.tcp().send(id, text("still here"), t.now));
  const auto data = t.sent();
  REQUIRE(data.size() == 1);
  CHECK(data[0].payload == text("still here"));
  CHECK(data[0].ack == P + 4);
}

TEST_CASE("send after shutdown fails with EPIPE; receive after FIN reads end of stream") {
  TcpScript t;
  const SocketId id = t.establish_passive();
  REQUIRE(t.tcp().shutdown(id, ShutdownHow::Write, t.now));
  const auto result = t.tcp().send(id, text("x"), t.now);
  REQUIRE_FALSE(result);
  CHECK(result.error().code == EPIPE);
  t.send(FIN | ACK, P, t.iss + 2);
  uint8_t buffer[4];
  CHECK(*t.tcp().receive(id, buffer, t.now) == 0);
}

TEST_CASE("close with unread data sends RST (RFC 2525 §2.17)") {
  TcpScript t;
  const SocketId id = t.establish_passive();
  REQUIRE(t.send(ACK | PSH, P, t.iss + 1, text("unread")).empty());
  REQUIRE(t.tcp().close(id, t.now));
  const auto rst = t.sent();
  REQUIRE(rst.size() == 1);
  CHECK(rst[0].has(RST));
  CHECK(t.count(Counter::TcpExtTCPAbortOnClose) == 1);
}

TEST_CASE("abort sends RST and frees the connection") {
  TcpScript t;
  const SocketId id = t.establish_passive();
  REQUIRE(t.tcp().abort(id, t.now));
  const auto rst = t.sent();
  REQUIRE(rst.size() == 1);
  CHECK(rst[0].flags == (RST | ACK));
  CHECK(rst[0].seq == t.iss + 1);
  CHECK_FALSE(t.tcp().info(id));
}

TEST_CASE("the listen backlog bounds connections waiting to be accepted") {
  TcpScript t;
  const SocketId l = *t.tcp().listen(TcpScript::kOurPort, 2);
  for (uint16_t port = 1; port <= 3; ++port) {
    const auto synack = t.send(SYN, 1000, 0, {}, 65535, std::nullopt, port);
    if (port <= 2) {
      REQUIRE(synack.size() == 1);
      t.send(ACK, 1001, synack[0].seq + 1, {}, 65535, std::nullopt, port);
    } else {
      CHECK(synack.empty());
    }
  }
  CHECK(t.drops(DropReason::TcpListenOverflow) == 1);
  CHECK(t.count(Counter::TcpExtListenOverflows) == 1);
  CHECK(t.tcp().accept(l));
  CHECK(t.tcp().accept(l));
  CHECK_FALSE(t.tcp().accept(l));
}

}  // namespace
}  // namespace tapstack::test
