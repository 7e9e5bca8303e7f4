// The RFC 4271 §8 state machine as scripts in virtual time: an event in, exactly the outputs
// expected out, time advanced, outputs again.
#include <doctest/doctest.h>

#include <algorithm>

#include <fmt/format.h>

#include "bgp/fsm.h"
#include "tests/bgp/bgp_test_support.h"

namespace tapstack::bgp {
namespace {

using testing::ip;

constexpr uint32_t kLocalAs = 65002;
constexpr uint32_t kPeerAs = 65001;
const CodecOptions kCodec{.four_octet_as = true, .external = true};

PeerConfig config(bool passive = false, uint16_t hold = 90) {
  PeerConfig c;
  c.local_as = kLocalAs;
  c.peer_as = kPeerAs;
  c.router_id = ip(198, 18, 0, 2);
  c.hold_time = hold;
  c.passive = passive;
  c.connect_retry = Duration::seconds(10);
  c.idle_hold = Duration::seconds(2);
  return c;
}

Update route(uint8_t third_octet, uint32_t first_as = kPeerAs) {
  Update update;
  update.attributes.origin = Origin::Igp;
  update.attributes.as_path =
      std::vector<AsPathSegment>{{AsPathSegment::AsSequence, {first_as, 64999}}};
  update.attributes.next_hop = ip(198, 18, 0, 1);
  update.attributes.communities = std::vector<uint32_t>{kPeerAs << 16 | 7};
  update.nlri = {Prefix{ip(198, 18, third_octet, 0), 24}};
  return update;
}

// What came out of the machine, sorted by kind.
struct Seen {
  int open_tcp = 0;
  int close_tcp = 0;
  std::vector<Message> sent;
  std::vector<State> states;
  std::vector<Prefix> learned;
  std::vector<Prefix> withdrawn;
  std::vector<bool> withdrawn_as_session_ended;
  std::vector<ConnectFailed> failed;
  std::vector<std::string> notes;

  template <typename T>
  int count_sent() const {
    return static_cast<int>(std::count_if(
        sent.begin(), sent.end(), [](const Message& m) { return std::holds_alternative<T>(m); }));
  }
  std::optional<Notification> notification() const {
    for (const Message& m : sent) {
      if (auto* n = std::get_if<Notification>(&m)) return *n;
    }
    return std::nullopt;
  }
  bool nothing() const {
    return open_tcp == 0 && close_tcp == 0 && sent.empty() && states.empty() && learned.empty() &&
           withdrawn.empty() && failed.empty() && notes.empty();
  }
};

// One FSM, its clock, and the far side's messages.
struct Rig {
  explicit Rig(PeerConfig c = config()) : fsm(c) {}

  Seen out() {
    Seen seen;
    for (Output& o : fsm.take_outputs()) {
      if (std::holds_alternative<OpenTcp>(o)) ++seen.open_tcp;
      if (std::holds_alternative<CloseTcp>(o)) ++seen.close_tcp;
      if (auto* s = std::get_if<SendBytes>(&o)) {
        Decoded d = decode(s->bytes, fsm.codec());
        REQUIRE(std::holds_alternative<Message>(d));
        seen.sent.push_back(std::get<Message>(d));
      }
      if (auto* s = std::get_if<StateChanged>(&o)) seen.states.push_back(s->to);
      if (auto* r = std::get_if<RouteLearned>(&o)) seen.learned.push_back(r->prefix);
      if (auto* r = std::get_if<RouteWithdrawn>(&o)) {
        seen.withdrawn.push_back(r->prefix);
        seen.withdrawn_as_session_ended.push_back(r->session_ended);
      }
      if (auto* f = std::get_if<ConnectFailed>(&o)) seen.failed.push_back(*f);
      if (auto* n = std::get_if<Note>(&o)) seen.notes.push_back(n->text);
    }
    return seen;
  }
  void peer(const Message& m) { fsm.receive(encode(m, kCodec), now); }
  void advance(Duration d) {
    now += d;
    fsm.on_timer(now);
  }
  // Start, connect, OPEN both ways, KEEPALIVE: Established, outputs taken.
  void establish(uint16_t peer_hold = 90) {
    fsm.start(now);
    fsm.tcp_connected(now);
    peer(Open::make(kPeerAs, peer_hold, ip(198, 18, 0, 1)));
    peer(Keepalive{});
    REQUIRE(fsm.state() == State::Established);
    out();
  }

  Fsm fsm;
  Instant now = Instant::from_ns(1'000'000'000);
};

TEST_CASE("active: Idle → Connect → OpenSent → OpenConfirm → Established (§8.2.2)") {
  Rig r;
  r.fsm.start(r.now);
  Seen s = r.out();
  CHECK(s.open_tcp == 1);
  CHECK(s.states == std::vector{State::Connect});

  r.fsm.tcp_connected(r.now);
  s = r.out();
  REQUIRE(s.sent.size() == 1);
  const Open& open = std::get<Open>(s.sent[0]);
  CHECK(open.sender_as() == kLocalAs);
  CHECK(open.hold_time == 90);
  CHECK(s.states == std::vector{State::OpenSent});

  r.peer(Open::make(kPeerAs, 30, ip(198, 18, 0, 1)));
  s = r.out();
  CHECK(s.count_sent<Keepalive>() == 1);
  CHECK(s.states == std::vector{State::OpenConfirm});
  CHECK(r.fsm.negotiated_hold_time() == 30);  // the smaller of 90 and 30

  r.fsm.set_announcements({route(9)});
  r.peer(Keepalive{});
  s = r.out();
  CHECK(s.states == std::vector{State::Established});
  CHECK(s.count_sent<Update>() == 1);  // the announcements go out at once
}

TEST_CASE("passive: Active until the peer connects; no connection of our own") {
  Rig r(config(/*passive=*/true));
  r.fsm.start(r.now);
  Seen s = r.out();
  CHECK(s.open_tcp == 0);
  CHECK(s.states == std::vector{State::Active});
  r.advance(Duration::seconds(600));
  CHECK(r.out().nothing());
  r.fsm.tcp_connected(r.now);
  CHECK(r.out().states == std::vector{State::OpenSent});
}

TEST_CASE("Connect: ConnectRetry expiry tries again; a failed connection goes to Active") {
  Rig r;
  r.fsm.start(r.now);
  r.out();
  r.advance(Duration::seconds(10));
  Seen s = r.out();
  CHECK(s.close_tcp == 1);
  CHECK(s.open_tcp == 1);
  CHECK(s.states.empty());

  r.fsm.tcp_failed(r.now);
  CHECK(r.out().states == std::vector{State::Active});
  r.advance(Duration::seconds(9));
  CHECK(r.out().nothing());
  r.advance(Duration::seconds(1));
  s = r.out();
  CHECK(s.open_tcp == 1);
  CHECK(s.states == std::vector{State::Connect});
}

TEST_CASE("each failed attempt is reported: its number, timed out or not, the next one's time") {
  Rig r;
  const Instant start = r.now;
  r.fsm.start(r.now);
  CHECK(r.fsm.next_attempt().is_never());  // connecting
  r.out();
  r.advance(Duration::seconds(10));  // attempt 1 unanswered: attempt 2 at once
  Seen s = r.out();
  REQUIRE(s.failed.size() == 1);
  CHECK(s.failed[0].attempt == 1);
  CHECK(s.failed[0].timed_out);
  CHECK(s.failed[0].next == r.now);

  r.fsm.tcp_failed(r.now);  // attempt 2 refused: attempt 3 a ConnectRetry time later
  s = r.out();
  REQUIRE(s.failed.size() == 1);
  CHECK(s.failed[0].attempt == 2);
  CHECK_FALSE(s.failed[0].timed_out);
  CHECK(s.failed[0].next == start + Duration::seconds(20));
  CHECK(r.fsm.next_attempt() == start + Duration::seconds(20));

  r.advance(Duration::seconds(10));
  r.fsm.tcp_connected(r.now);
  r.peer(Open::make(kPeerAs, 90, ip(198, 18, 0, 1)));
  r.peer(Keepalive{});
  r.fsm.tcp_failed(r.now);  // Established, then lost: the count starts again
  CHECK(r.fsm.next_attempt() == r.now + Duration::seconds(2));  // the idle hold time
  r.out();
  r.advance(Duration::seconds(2));
  r.fsm.tcp_failed(r.now);
  s = r.out();
  REQUIRE(s.failed.size() == 1);
  CHECK(s.failed[0].attempt == 1);
}

TEST_CASE("passive: no attempts of ours, so none to report and no next one") {
  Rig r(config(/*passive=*/true));
  r.fsm.start(r.now);
  r.fsm.tcp_connected(r.now);
  r.fsm.tcp_failed(r.now);
  CHECK(r.out().failed.empty());
  CHECK(r.fsm.next_attempt().is_never());
}

TEST_CASE("keepalives every hold/3; silence for the hold time ends with NOTIFICATION 4/0") {
  Rig r;
  r.establish(9);
  CHECK(r.fsm.negotiated_hold_time() == 9);
  r.advance(Duration::seconds(3));
  CHECK(r.out().count_sent<Keepalive>() == 1);
  r.advance(Duration::seconds(3));
  CHECK(r.out().count_sent<Keepalive>() == 1);
  r.advance(Duration::seconds(3));
  const Seen s = r.out();
  REQUIRE(s.notification());
  CHECK(s.notification()->code == 4);
  CHECK(s.close_tcp == 1);
  CHECK(s.states == std::vector{State::Idle});
}

TEST_CASE("KEEPALIVE and UPDATE from the peer restart the hold timer") {
  Rig r;
  r.establish(9);
  r.advance(Duration::seconds(8));
  r.peer(Keepalive{});
  r.advance(Duration::seconds(8));
  r.peer(route(5));
  r.advance(Duration::seconds(8));
  CHECK(r.fsm.state() == State::Established);
  r.advance(Duration::seconds(1));
  CHECK(r.fsm.state() == State::Idle);
}

TEST_CASE("hold time 0 on either side: no keepalives, no hold timer (§4.2)") {
  Rig r;
  r.establish(0);
  CHECK(r.fsm.negotiated_hold_time() == 0);
  CHECK(r.fsm.next_deadline().is_never());
  r.advance(Duration::seconds(3600));
  CHECK(r.out().nothing());
  CHECK(r.fsm.state() == State::Established);
}

TEST_CASE("after an error, an automatic restart once the idle hold time has passed") {
  Rig r;
  r.establish();
  r.peer(Notification{6, 2, {}});
  Seen s = r.out();
  CHECK(s.states == std::vector{State::Idle});
  CHECK(s.close_tcp == 1);
  CHECK(s.sent.empty());  // no NOTIFICATION answers a NOTIFICATION
  r.advance(Duration::seconds(1));
  CHECK(r.out().nothing());
  r.advance(Duration::seconds(1));
  s = r.out();
  CHECK(s.open_tcp == 1);
  CHECK(s.states == std::vector{State::Connect});
}

TEST_CASE("ManualStop: Cease / Administrative Shutdown, Idle, and no restart") {
  Rig r;
  r.establish();
  r.fsm.stop(r.now);
  const Seen s = r.out();
  REQUIRE(s.notification());
  CHECK(*s.notification() == Notification{6, cease::kAdministrativeShutdown, {}});
  CHECK(s.close_tcp == 1);
  CHECK(s.states == std::vector{State::Idle});
  r.advance(Duration::seconds(3600));
  CHECK(r.out().nothing());
}

TEST_CASE("OPEN checks: the peer's AS and identifier (§6.2)") {
  Rig r;
  r.fsm.start(r.now);
  r.fsm.tcp_connected(r.now);
  r.out();
  r.peer(Open::make(65099, 90, ip(198, 18, 0, 1)));
  Seen s = r.out();
  REQUIRE(s.notification());
  CHECK(s.notification()->code == 2);
  CHECK(s.notification()->subcode == open_error::kBadPeerAs);
  CHECK(s.states == std::vector{State::Idle});

  Rig same;
  same.fsm.start(same.now);
  same.fsm.tcp_connected(same.now);
  same.out();
  same.peer(Open::make(kPeerAs, 90, ip(198, 18, 0, 2)));  // our own router id
  CHECK(same.out().notification()->subcode == open_error::kBadBgpIdentifier);
}

TEST_CASE("messages a state does not expect: FSM Error with RFC 6608's subcodes") {
  SUBCASE("KEEPALIVE in OpenSent") {
    Rig r;
    r.fsm.start(r.now);
    r.fsm.tcp_connected(r.now);
    r.out();
    r.peer(Keepalive{});
    CHECK(*r.out().notification() == Notification{5, fsm_error::kUnexpectedInOpenSent, {}});
  }
  SUBCASE("UPDATE in OpenConfirm") {
    Rig r;
    r.fsm.start(r.now);
    r.fsm.tcp_connected(r.now);
    r.peer(Open::make(kPeerAs, 90, ip(198, 18, 0, 1)));
    r.out();
    r.peer(route(5));
    CHECK(*r.out().notification() == Notification{5, fsm_error::kUnexpectedInOpenConfirm, {}});
  }
  SUBCASE("OPEN in Established") {
    Rig r;
    r.establish();
    r.peer(Open::make(kPeerAs, 90, ip(198, 18, 0, 1)));
    CHECK(*r.out().notification() == Notification{5, fsm_error::kUnexpectedInEstablished, {}});
  }
}

TEST_CASE("a malformed message in Established: its NOTIFICATION, close, Idle") {
  Rig r;
  r.establish();
  std::vector<uint8_t> bad = encode(Keepalive{}, kCodec);
  bad[0] = 0;
  r.fsm.receive(bad, r.now);
  const Seen s = r.out();
  CHECK(*s.notification() == Notification{1, header_error::kConnectionNotSynchronized, {}});
  CHECK(s.notes ==
        std::vector<std::string>{
            "sent NOTIFICATION Message Header Error / Connection Not Synchronized (1/1)"});
  CHECK(s.close_tcp == 1);
  CHECK(s.states == std::vector{State::Idle});
}

TEST_CASE("routes: learned, withdrawn, treat-as-withdraw, and all withdrawn when it ends") {
  Rig r;
  r.establish();
  r.peer(route(5));
  r.peer(route(6));
  CHECK(r.out().learned == std::vector<Prefix>{{ip(198, 18, 5, 0), 24}, {ip(198, 18, 6, 0), 24}});
  CHECK(r.fsm.routes().size() == 2);

  Update withdraw;
  withdraw.withdrawn = {Prefix{ip(198, 18, 5, 0), 24}, Prefix{ip(198, 18, 77, 0), 24}};
  r.peer(withdraw);
  CHECK(r.out().withdrawn == std::vector<Prefix>{{ip(198, 18, 5, 0), 24}});  // 77 was unknown

  // RFC 7606: a bad ORIGIN withdraws 198.18.6.0/24 instead of resetting the session.
  const auto bad_origin =
      testing::update_message("40010109 4002060201 0000fde9 400304c6120001", "18c61206");
  r.fsm.receive(bad_origin, r.now);
  Seen s = r.out();
  CHECK(s.withdrawn == std::vector<Prefix>{{ip(198, 18, 6, 0), 24}});
  CHECK(s.withdrawn_as_session_ended == std::vector{false});
  CHECK(s.sent.empty());
  REQUIRE(s.notes.size() == 1);
  CHECK(s.notes[0] == "treat-as-withdraw: malformed ORIGIN");
  CHECK(r.fsm.state() == State::Established);

  r.peer(route(8));
  r.out();
  r.fsm.tcp_failed(r.now);
  s = r.out();
  CHECK(s.withdrawn == std::vector<Prefix>{{ip(198, 18, 8, 0), 24}});
  CHECK(s.withdrawn_as_session_ended == std::vector{true});  // not the peer's withdrawal
  CHECK(s.states == std::vector{State::Idle});
}

TEST_CASE("an external peer's AS_PATH must begin with its AS (§6.3): 3/11") {
  Rig r;
  r.establish();
  r.peer(route(5, /*first_as=*/64512));
  CHECK(*r.out().notification() == Notification{3, update_error::kMalformedAsPath, {}});
}

TEST_CASE("messages split anywhere across receive() calls are framed whole") {
  Rig r;
  r.fsm.start(r.now);
  r.fsm.tcp_connected(r.now);
  r.out();
  std::vector<uint8_t> stream = encode(Open::make(kPeerAs, 90, ip(198, 18, 0, 1)), kCodec);
  const auto keepalive = encode(Keepalive{}, kCodec);
  const auto update = encode(route(5), kCodec);
  stream.insert(stream.end(), keepalive.begin(), keepalive.end());
  stream.insert(stream.end(), update.begin(), update.end());
  for (const uint8_t byte : stream) r.fsm.receive(ByteView(&byte, 1), r.now);
  const Seen s = r.out();
  CHECK(s.states == std::vector{State::OpenConfirm, State::Established});
  CHECK(s.learned.size() == 1);
}

TEST_CASE("ROUTE-REFRESH in Established sends the announcements again (RFC 2918 §4)") {
  Rig r;
  r.fsm.set_announcements({route(9, kLocalAs), route(10, kLocalAs)});
  r.establish();
  r.peer(RouteRefresh{1, 1});
  CHECK(r.out().count_sent<Update>() == 2);
}

TEST_CASE("TCP closing in OpenSent: back to Active, ConnectRetry reconnects") {
  Rig r;
  r.fsm.start(r.now);
  r.fsm.tcp_connected(r.now);
  r.out();
  r.fsm.tcp_failed(r.now);
  Seen s = r.out();
  CHECK(s.close_tcp == 1);
  CHECK(s.states == std::vector{State::Active});
  r.advance(Duration::seconds(10));
  s = r.out();
  CHECK(s.open_tcp == 1);
  CHECK(s.states == std::vector{State::Connect});
}

TEST_CASE("OpenSent: no OPEN within the large hold time (240 s) → 4/0") {
  Rig r;
  r.fsm.start(r.now);
  r.fsm.tcp_connected(r.now);
  r.out();
  r.advance(Duration::seconds(239));
  CHECK(r.out().nothing());
  r.advance(Duration::seconds(1));
  CHECK(r.out().notification()->code == 4);
}

TEST_CASE("ManualStop before a connection is up: Idle, no NOTIFICATION, no restart") {
  for (const bool passive : {false, true}) {
    CAPTURE(passive);
    Rig r(config(passive));
    r.fsm.start(r.now);
    r.out();
    r.fsm.stop(r.now);
    const Seen s = r.out();
    CHECK(s.sent.empty());
    CHECK(s.close_tcp == (passive ? 0 : 1));  // the connection being made is dropped
    CHECK(s.states == std::vector{State::Idle});
    r.advance(Duration::seconds(3600));
    CHECK(r.out().nothing());
  }
}

TEST_CASE("OpenConfirm: keepalives while waiting, hold timer expiry → 4/0") {
  Rig r;
  r.fsm.start(r.now);
  r.fsm.tcp_connected(r.now);
  r.peer(Open::make(kPeerAs, 9, ip(198, 18, 0, 1)));
  r.out();
  r.advance(Duration::seconds(3));
  CHECK(r.out().count_sent<Keepalive>() == 1);
  CHECK(r.fsm.state() == State::OpenConfirm);
  r.advance(Duration::seconds(6));
  const Seen s = r.out();
  CHECK(s.notification()->code == 4);
  CHECK(s.states == std::vector{State::Idle});
}

TEST_CASE("a NOTIFICATION in OpenSent or OpenConfirm ends the attempt without an answer") {
  Rig r;
  r.fsm.start(r.now);
  r.fsm.tcp_connected(r.now);
  r.out();
  r.peer(Notification{2, open_error::kBadPeerAs, {}});
  Seen s = r.out();
  CHECK(s.sent.empty());
  CHECK(s.close_tcp == 1);
  CHECK(s.states == std::vector{State::Idle});

  Rig confirm;
  confirm.fsm.start(confirm.now);
  confirm.fsm.tcp_connected(confirm.now);
  confirm.peer(Open::make(kPeerAs, 90, ip(198, 18, 0, 1)));
  confirm.out();
  confirm.fsm.tcp_failed(confirm.now);
  s = confirm.out();
  CHECK(s.close_tcp == 1);
  CHECK(s.states == std::vector{State::Idle});
}

TEST_CASE("iBGP: LOCAL_PREF is read and no leftmost-AS check applies") {
  PeerConfig c = config();
  c.peer_as = kLocalAs;
  Fsm fsm(c);
  const Instant now = Instant::from_ns(0);
  const CodecOptions internal{.four_octet_as = true, .external = false};
  fsm.start(now);
  fsm.tcp_connected(now);
  fsm.receive(encode(Open::make(kLocalAs, 90, ip(198, 18, 0, 1)), internal), now);
  fsm.receive(encode(Keepalive{}, internal), now);
  REQUIRE(fsm.state() == State::Established);
  Update update = route(5);
  update.attributes.as_path = std::vector<AsPathSegment>{};
  update.attributes.local_pref = 250;
  fsm.receive(encode(update, internal), now);
  REQUIRE(fsm.routes().size() == 1);
  CHECK(fsm.routes().begin()->second.local_pref == 250u);
}

}  // namespace
}  // namespace tapstack::bgp
