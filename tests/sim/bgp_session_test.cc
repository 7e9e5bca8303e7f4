// Two BGP speakers (bgp/speaker.h) on two stacks of the simulated network, their session signed
// with TCP-MD5 (RFC 2385): it comes up and each learns the other's route, through loss too;
// after one side stops (Cease) and starts again it comes back; with another key it never
// comes up, and the side that receives the SYNs counts them as TcpExtTCPMD5Failure. Virtual
// time: no root, no TAP.
#include <algorithm>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include <doctest/doctest.h>

#include "bgp/speaker.h"
#include "stack/stack.h"
#include "stack/tcp/tcp.h"
#include "tests/sim/frames.h"
#include "tests/sim/hosts.h"
#include "tests/sim/network.h"

namespace tapstack::sim {
namespace {

constexpr uint8_t kPassiveHost = 1;  // listens on port 179
constexpr uint8_t kActiveHost = 2;   // connects
constexpr uint8_t kProtocolTcp = 6;
constexpr uint8_t kTcpOptionMd5 = 19;  // RFC 2385 §3.0

Duration ms(int64_t n) {
  return Duration::milliseconds(n);
}
Duration seconds(int64_t n) {
  return Duration::seconds(n);
}

uint32_t as_of(uint8_t host) {
  return 65000 + host;
}

// Each host announces one /24 of its own: 198.18.101.0/24, 198.18.102.0/24.
bgp::Prefix announced_by(uint8_t host) {
  return bgp::Prefix{Ipv4Address::from_octets(198, 18, 100 + host, 0).value, 24};
}

bgp::SpeakerConfig config_of(uint8_t host, std::string_view key) {
  const uint8_t peer = host == kPassiveHost ? kActiveHost : kPassiveHost;
  bgp::SpeakerConfig config;
  config.local_address = host_ip(host);
  config.peer = host_ip(peer);
  config.local_as = as_of(host);
  config.peer_as = as_of(peer);
  config.hold_time = 30;
  config.connect_retry = seconds(1);
  config.passive = host == kPassiveHost;
  config.md5_keys = {{host_ip(peer), 32, std::vector<uint8_t>(key.begin(), key.end())}};
  config.announcements = {{announced_by(host), std::nullopt}};
  return config;
}

// RFC 2385 §3.0: whether a TCP segment's options hold kind 19 with length 18. Parsed here
// rather than with md5opt/, so that the oracle is not the code under test.
bool signed_segment(ByteView tcp) {
  if (tcp.size() < 20) return false;
  const size_t header = (tcp[12] >> 4) * 4u;
  for (size_t at = 20; at < header && at < tcp.size();) {
    const uint8_t kind = tcp[at];
    if (kind == 0) return false;
    if (kind == 1) {
      ++at;
      continue;
    }
    if (at + 1 >= tcp.size() || tcp[at + 1] < 2) return false;
    if (kind == kTcpOptionMd5) return tcp[at + 1] == 18;
    at += tcp[at + 1];
  }
  return false;
}

// A host: its stack, the speaker it runs now (a restart makes a new one), and every event
// its speakers reported.
struct Host {
  uint8_t number = 0;
  Stack* stack = nullptr;
  std::string key;
  std::unique_ptr<bgp::Speaker> speaker;
  std::vector<bgp::SpeakerEvent> events;

  void start(Instant now) {
    speaker = std::make_unique<bgp::Speaker>(stack->tcp(), config_of(number, key));
    REQUIRE(speaker->start(now) == std::nullopt);
  }
  bool established() const { return speaker && speaker->state() == bgp::State::Established; }
  bool has_route(bgp::Prefix prefix) const { return speaker && speaker->routes().contains(prefix); }
  template <typename T>
  std::vector<T> events_of() const {
    std::vector<T> found;
    for (const bgp::SpeakerEvent& event : events) {
      if (const T* e = std::get_if<T>(&event)) found.push_back(*e);
    }
    return found;
  }
  // The state changes reported, as "Idle -> Active", ...
  std::vector<std::string> transitions() const {
    std::vector<std::string> found;
    for (const auto& state : events_of<bgp::SessionStateChanged>()) {
      found.push_back(std::string(bgp::state_name(state.change.from)) + " -> " +
                      std::string(bgp::state_name(state.change.to)));
    }
    return found;
  }
};

// Two stacks on one link, host 1 passive and host 2 active, each with its key for the other,
// and every TCP segment on the wire looked at for its MD5 option.
class TwoSpeakers {
 public:
  TwoSpeakers(uint64_t seed, Impairments link, std::string_view passive_key,
              std::string_view active_key)
      : net_(seed) {
    const SegmentId segment = net_.add_segment(link);
    for (auto [host, number, key] : {std::tuple{&passive_, kPassiveHost, passive_key},
                                     std::tuple{&active_, kActiveHost, active_key}}) {
      host->number = number;
      host->stack = &net_.add_stack(segment, host_config(number, seed));
      host->key = key;
    }
    net_.add_observer([this](const WireEvent& e) {
      if (e.kind != WireEventKind::Transmit) return;
      const auto ip = parse_ipv4(e.frame);
      if (!ip || ip->protocol != kProtocolTcp) return;
      ++tcp_segments_;
      if (signed_segment(ip->payload)) ++signed_segments_;
    });
  }

  void start() {
    passive_.start(net_.now());
    active_.start(net_.now());
  }

  // Runs the network and polls the speakers after every step and at their deadlines, until
  // done() holds (true) or max has passed (false).
  bool run_until(const std::function<bool()>& done, Duration max) {
    const Instant end = net_.now() + max;
    for (;;) {
      poll();
      if (done()) return true;
      if (net_.now() >= end) return false;
      Instant wake = end;
      for (const Host* host : {&passive_, &active_}) {
        if (host->speaker) wake = std::min(wake, host->speaker->next_deadline());
      }
      if (wake <= net_.now()) FAIL("a speaker's deadline is not in the future");
      if (!net_.step(wake)) net_.run_for(wake - net_.now());
    }
  }
  void run_for(Duration d) {
    run_until([] { return false; }, d);
  }

  // Both sides Established, each with the other's route.
  bool session_up() const {
    return passive_.established() && active_.established() &&
           passive_.has_route(announced_by(kActiveHost)) &&
           active_.has_route(announced_by(kPassiveHost));
  }

  Network& net() { return net_; }
  Host& passive() { return passive_; }
  Host& active() { return active_; }
  uint64_t tcp_segments() const { return tcp_segments_; }
  uint64_t signed_segments() const { return signed_segments_; }

 private:
  void poll() {
    for (Host* host : {&passive_, &active_}) {
      if (!host->speaker) continue;
      host->speaker->poll(net_.now());
      REQUIRE(host->speaker->failure() == std::nullopt);
      for (bgp::SpeakerEvent& event : host->speaker->take_events()) {
        host->events.push_back(std::move(event));
      }
    }
  }

  Network net_;
  Host passive_;
  Host active_;
  uint64_t tcp_segments_ = 0;
  uint64_t signed_segments_ = 0;
};

const Impairments kClean{.delay = ms(1)};

TEST_CASE("two speakers with the same TCP-MD5 key reach Established and learn each other's route") {
  TwoSpeakers s(1, kClean, "secret", "secret");
  s.start();
  REQUIRE(s.run_until([&] { return s.session_up(); }, seconds(5)));

  CHECK(s.passive().transitions() ==
        std::vector<std::string>{"Idle -> Active", "Active -> OpenSent", "OpenSent -> OpenConfirm",
                                 "OpenConfirm -> Established"});
  CHECK(s.active().transitions() ==
        std::vector<std::string>{"Idle -> Connect", "Connect -> OpenSent",
                                 "OpenSent -> OpenConfirm", "OpenConfirm -> Established"});
  CHECK(s.passive().events_of<bgp::SessionStateChanged>().back().session == 1);
  // RFC 4271 §5.1.2 and §5.1.3: to an external peer, our AS alone in the path, our address as
  // the next hop.
  const bgp::PathAttributes& route = s.active().speaker->routes().at(announced_by(kPassiveHost));
  CHECK(route.next_hop == host_ip(kPassiveHost).value);
  CHECK(route.as_path ==
        std::vector<bgp::AsPathSegment>{{bgp::AsPathSegment::AsSequence, {as_of(kPassiveHost)}}});
  CHECK(route.origin == bgp::Origin::Igp);
  const auto learned = s.passive().events_of<bgp::RouteLearned>();
  REQUIRE(learned.size() == 1);
  CHECK(learned[0].prefix == announced_by(kActiveHost));

  // Keepalives hold it up; every segment either side sent was signed.
  s.run_for(seconds(60));
  CHECK(s.session_up());
  CHECK(s.active().events_of<bgp::SessionStateChanged>().size() == 4);
  CHECK(s.tcp_segments() > 20);
  CHECK(s.signed_segments() == s.tcp_segments());
  for (const Host* host : {&s.passive(), &s.active()}) {
    CHECK(host->stack->counters()[Counter::TcpExtTCPMD5Failure] == 0);
  }
}

TEST_CASE("through 20% loss each way the session comes up, stays up and carries the routes") {
  for (uint64_t seed = 1; seed <= 3; ++seed) {
    CAPTURE(seed);
    TwoSpeakers s(seed, {.loss = 0.2, .delay = ms(1)}, "secret", "secret");
    s.start();
    REQUIRE(s.run_until([&] { return s.session_up(); }, seconds(60)));
    s.run_for(seconds(120));
    CHECK(s.session_up());
    CHECK(s.net().segment_stats(SegmentId{0}).lost > 10);
    CHECK(s.active().stack->counters()[Counter::TcpRetransSegs] +
              s.passive().stack->counters()[Counter::TcpRetransSegs] >
          0);
    CHECK(s.signed_segments() == s.tcp_segments());
  }
}

TEST_CASE("one side stops with a Cease and starts again: the session and the routes come back") {
  TwoSpeakers s(1, kClean, "secret", "secret");
  s.start();
  REQUIRE(s.run_until([&] { return s.session_up(); }, seconds(5)));

  Host& restarted = s.active();
  restarted.speaker->stop(s.net().now());
  CHECK(restarted.speaker->state() == bgp::State::Idle);
  // The NOTIFICATION and the FIN are delivered before the speaker goes.
  REQUIRE(s.run_until(
      [&] {
        restarted.speaker->forget_closed();
        return !restarted.speaker->closing();
      },
      seconds(2)));
  const auto notes = restarted.events_of<bgp::Note>();
  REQUIRE(!notes.empty());
  CHECK(notes.back().text == "sent NOTIFICATION Cease / Administrative Shutdown (6/2)");
  restarted.speaker.reset();

  // The other side ends its session and drops the route it had from it.
  Host& other = s.passive();
  REQUIRE(s.run_until([&] { return !other.established(); }, seconds(1)));
  const auto ended = other.events_of<bgp::SessionStateChanged>().back();
  CHECK(ended.change.to == bgp::State::Idle);
  CHECK(ended.change.why == "peer sent NOTIFICATION Cease / Administrative Shutdown (6/2)");
  const auto withdrawn = other.events_of<bgp::RouteWithdrawn>();
  REQUIRE(withdrawn.size() == 1);
  CHECK(withdrawn[0].prefix == announced_by(kActiveHost));
  CHECK(withdrawn[0].session_ended);
  CHECK(other.speaker->routes().empty());

  restarted.start(s.net().now());
  REQUIRE(s.run_until([&] { return s.session_up(); }, seconds(30)));
  CHECK(other.events_of<bgp::SessionStateChanged>().back().session == 2);
  CHECK(other.events_of<bgp::RouteLearned>().size() == 2);
  CHECK(s.signed_segments() == s.tcp_segments());
}

TEST_CASE("with another key the session never comes up; the listener counts TCPMD5Failure") {
  TwoSpeakers s(1, kClean, "secret", "another");
  s.start();
  s.run_for(seconds(10));

  CHECK(s.passive().transitions() == std::vector<std::string>{"Idle -> Active"});
  CHECK(s.passive().events_of<bgp::RouteLearned>().empty());
  CHECK(s.active().events_of<bgp::RouteLearned>().empty());
  // RFC 2385 §2.0: the passive side drops each signed SYN without a word; the active side
  // hears nothing, and says after each ConnectRetry time that the attempt went unanswered.
  const Counters& listener = s.passive().stack->counters();
  CHECK(listener[Counter::TcpExtTCPMD5Failure] >= 9);
  CHECK(listener.drops(DropReason::Md5Failure) == listener[Counter::TcpExtTCPMD5Failure]);
  CHECK(listener[Counter::TcpPassiveOpens] == 0);
  CHECK(listener[Counter::TcpOutSegs] == 0);
  CHECK(s.active().stack->counters()[Counter::TcpExtTCPMD5Failure] == 0);
  const auto failed = s.active().events_of<bgp::AttemptFailed>();
  REQUIRE(failed.size() >= 9);
  for (size_t i = 0; i < failed.size(); ++i) {
    CAPTURE(i);
    CHECK(failed[i].failed.attempt == i + 1);
    CHECK(failed[i].failed.timed_out);
  }
  CHECK(s.active().speaker->signs());
}

TEST_CASE("the same seed gives the same session, frame for frame") {
  auto digest = [](uint64_t seed) {
    TwoSpeakers s(seed, {.loss = 0.2, .delay = ms(1)}, "secret", "secret");
    TraceDigest trace;
    s.net().add_observer(trace.observer());
    s.start();
    s.run_for(seconds(20));
    return trace.value();
  };
  CHECK(digest(7) == digest(7));
  CHECK(digest(7) != digest(8));
}

}  // namespace
}  // namespace tapstack::sim
