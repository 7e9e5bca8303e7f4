// The simulated network itself: topology, virtual time, each impairment, injection, and
// determinism (same seed, same run bit for bit).
#include "tests/sim/network.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "tests/sim/frames.h"
#include "tests/sim/hosts.h"

namespace tapstack::sim {
namespace {

Duration ms(int64_t n) {
  return Duration::milliseconds(n);
}
Instant at_ms(int64_t n) {
  return Instant{} + ms(n);
}

// A frame from host n's MAC to dst carrying `index` and its complement, so that a flipped
// bit in the index shows.
std::vector<uint8_t> numbered_frame(uint8_t from, MacAddress dst, uint32_t index,
                                    size_t payload_size = 46) {
  std::vector<uint8_t> payload(payload_size);
  const uint32_t complement = ~index;
  std::memcpy(payload.data(), &index, sizeof index);
  std::memcpy(payload.data() + 4, &complement, sizeof complement);
  return make_ethernet(dst, host_mac(from), 0x88b5, payload);  // IEEE local experimental
}

uint32_t index_of(const std::vector<uint8_t>& frame) {
  uint32_t index;
  std::memcpy(&index, frame.data() + 14, sizeof index);
  return index;
}

// The index of a frame that arrived exactly as numbered_frame(1, host 2, index) made it.
std::optional<uint32_t> intact_index(const std::vector<uint8_t>& frame) {
  const uint32_t index = index_of(frame);
  if (frame != numbered_frame(1, host_mac(2), index)) return std::nullopt;
  return index;
}

int differing_bits(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  int bits = 0;
  for (size_t i = 0; i < a.size(); ++i) bits += std::popcount(static_cast<uint8_t>(a[i] ^ b[i]));
  return bits;
}

TEST_CASE("a hub delivers each frame to every other port after the link delay") {
  Network net(1);
  const SegmentId hub = net.add_segment({.delay = ms(2)});
  RawHost h1, h2, h3;
  net.attach(hub, h1);
  net.attach(hub, h2);
  net.attach(hub, h3);

  h1.send(numbered_frame(1, host_mac(2), 7));
  net.run_for(ms(5));

  CHECK(h1.received().empty());
  for (const RawHost* host : {&h2, &h3}) {
    REQUIRE(host->received().size() == 1);
    CHECK(host->received()[0].time == at_ms(2));
    CHECK(index_of(host->received()[0].frame) == 7);
  }
}

TEST_CASE("a switch learns source MACs and sends unicast only to its owner") {
  Network net(1);
  const SegmentId lan = net.add_segment({}, SegmentKind::Switch);
  RawHost h1, h2, h3;
  net.attach(lan, h1);
  net.attach(lan, h2);
  net.attach(lan, h3);

  h2.send(numbered_frame(2, host_mac(1), 0));  // unknown destination: flooded
  net.run_for(ms(1));
  CHECK(h1.received().size() == 1);
  CHECK(h3.received().size() == 1);

  h1.send(numbered_frame(1, host_mac(2), 1));  // h2 is known now
  h1.send(numbered_frame(1, MacAddress::broadcast(), 2));
  net.run_for(ms(1));
  CHECK(h2.received().size() == 2);
  REQUIRE(h3.received().size() == 2);
  CHECK(index_of(h3.received()[1].frame) == 2);
}

TEST_CASE("bandwidth serializes frames one after another and the queue drops at its tail") {
  Network net(1);
  // 1250 bytes at 1 Mbit/s take 10 ms on the wire; two frames fit in the queue.
  const SegmentId link =
      net.add_segment({.delay = ms(1), .bandwidth_bps = 1'000'000, .queue_frames = 2});
  RawHost sender, receiver;
  net.attach(link, sender);
  const PortId to_receiver = net.attach(link, receiver);

  for (uint32_t i = 0; i < 3; ++i) sender.send(numbered_frame(1, host_mac(2), i, 1236));
  net.run_for(ms(50));

  REQUIRE(receiver.received().size() == 2);
  CHECK(receiver.received()[0].time == at_ms(11));
  CHECK(receiver.received()[1].time == at_ms(21));
  CHECK(net.port_stats(to_receiver).queue_drops == 1);

  sender.send(numbered_frame(1, host_mac(2), 3, 1236));  // the queue has drained by now
  net.run_for(ms(50));
  REQUIRE(receiver.received().size() == 3);
  CHECK(receiver.received()[2].time == at_ms(50 + 11));
}

struct RateCase {
  const char* name;
  Impairments impairments;
  double probability;
};

// 10000 frames, one per millisecond, from one host to another.
TEST_CASE("each impairment happens at its rate and does what it says") {
  const RateCase cases[] = {
      {"loss", {.loss = 0.3, .delay = ms(1)}, 0.3},
      {"duplicate", {.duplicate = 0.2, .delay = ms(1)}, 0.2},
      {"corrupt", {.corrupt = 0.1, .delay = ms(1)}, 0.1},
      {"reorder", {.reorder = 0.25, .reorder_delay = ms(10), .delay = ms(1)}, 0.25},
      {"jitter alone", {.delay = ms(1), .jitter = ms(5)}, 0.0},
  };
  for (const RateCase& c : cases) {
    CAPTURE(c.name);
    Network net(42);
    const SegmentId link = net.add_segment(c.impairments);
    RawHost sender, receiver;
    net.attach(link, sender);
    const PortId port = net.attach(link, receiver);
    constexpr int kFrames = 10000;
    for (uint32_t i = 0; i < kFrames; ++i) {
      sender.send(numbered_frame(1, host_mac(2), i));
      net.run_for(ms(1));
    }
    net.run_for(ms(100));
    const LinkStats& stats = net.port_stats(port);
    const uint64_t happened =
        stats.lost + stats.duplicated + stats.corrupted + stats.reordered + stats.queue_drops;
    const double sigma = std::sqrt(kFrames * c.probability * (1 - c.probability));
    CHECK(std::abs(static_cast<double>(happened) - kFrames * c.probability) <= 5 * sigma);

    const auto& received = receiver.received();
    CHECK(stats.frames == kFrames);
    CHECK(received.size() == kFrames - stats.lost + stats.duplicated);
    CHECK(stats.delivered == received.size());
    size_t flipped = 0, late = 0;
    uint32_t highest = 0;
    for (const auto& r : received) {
      const auto index = intact_index(r.frame);
      if (!index) {
        ++flipped;
        continue;
      }
      if (*index < highest) ++late;
      highest = std::max(highest, *index);
    }
    CHECK(flipped == stats.corrupted);
    CHECK(late <= stats.reordered);
    CHECK(late * 2 >= stats.reordered);  // most held-back frames are passed by a later one
  }
}

TEST_CASE("a corrupted frame differs from the original in exactly one bit") {
  Network net(3);
  const SegmentId link = net.add_segment({.corrupt = 1.0});
  RawHost sender, receiver;
  net.attach(link, sender);
  net.attach(link, receiver);
  const auto frame = numbered_frame(1, host_mac(2), 5, 200);
  for (int i = 0; i < 100; ++i) sender.send(frame);
  net.run_for(ms(1));
  REQUIRE(receiver.received().size() == 100);
  for (const auto& r : receiver.received()) CHECK(differing_bits(r.frame, frame) == 1);
}

TEST_CASE("a direction of a link can be impaired alone") {
  Network net(1);
  const SegmentId link = net.add_segment();
  RawHost h1, h2;
  net.attach(link, h1);
  const PortId toward_h2 = net.attach(link, h2);
  net.set_port_impairments(toward_h2, {.loss = 1.0});
  h1.send(numbered_frame(1, host_mac(2), 0));
  h2.send(numbered_frame(2, host_mac(1), 1));
  net.run_for(ms(1));
  CHECK(h2.received().empty());
  CHECK(h1.received().size() == 1);
  CHECK(net.port_stats(toward_h2).lost == 1);
}

TEST_CASE("inject hands a frame to one endpoint at the given instant, unimpaired") {
  Network net(1);
  const SegmentId link = net.add_segment({.loss = 1.0});
  RawHost h1, h2;
  const PortId p1 = net.attach(link, h1);
  net.attach(link, h2);
  std::vector<WireEventKind> seen;
  net.add_observer([&](const WireEvent& e) { seen.push_back(e.kind); });

  net.inject(p1, numbered_frame(2, host_mac(1), 9), at_ms(5));
  net.run_for(ms(4));
  CHECK(h1.received().empty());
  net.run_for(ms(10));
  REQUIRE(h1.received().size() == 1);
  CHECK(h1.received()[0].time == at_ms(5));
  CHECK(h2.received().empty());
  CHECK(seen == std::vector{WireEventKind::Inject});
  CHECK_THROWS(net.inject(p1, numbered_frame(2, host_mac(1), 9), at_ms(1)));
}

// An endpoint with a list of deadlines that records when its timer ran.
class Alarm final : public Endpoint {
 public:
  explicit Alarm(std::vector<Instant> deadlines) : deadlines_(std::move(deadlines)) {}
  void on_frame(ByteView, Instant) override {}
  void on_timer(Instant now) override {
    fired.push_back(now);
    if (!stuck) deadlines_.erase(deadlines_.begin());
  }
  Instant next_deadline() const override {
    return deadlines_.empty() ? Instant::never() : deadlines_.front();
  }
  std::optional<ByteView> poll_transmit() override { return std::nullopt; }
  std::vector<Instant> fired;
  bool stuck = false;

 private:
  std::vector<Instant> deadlines_;
};

TEST_CASE("virtual time jumps to each deadline and run_until stops where it should") {
  Network net(1);
  Alarm alarm({at_ms(3), at_ms(3000)});
  net.attach(net.add_segment(), alarm);

  CHECK(net.step());
  CHECK(net.now() == at_ms(3));
  CHECK_FALSE(net.run_until([] { return false; }, ms(100)));
  CHECK(net.now() == at_ms(103));
  CHECK(net.run_until([&] { return alarm.fired.size() == 2; }, Duration::seconds(10)));
  CHECK(net.now() == at_ms(3000));
  CHECK(alarm.fired == std::vector{at_ms(3), at_ms(3000)});
  CHECK_FALSE(net.step());  // nothing left to happen
}

TEST_CASE("a deadline still due after on_timer is reported instead of spinning") {
  Network net(1);
  Alarm alarm({at_ms(1)});
  alarm.stuck = true;
  net.attach(net.add_segment(), alarm);
  CHECK_THROWS_AS(net.run_for(ms(10)), std::logic_error);
}

struct RunOutcome {
  uint64_t digest;
  uint64_t frames;
  std::string counters_a;
  std::string counters_b;
  LinkStats stats;
};

// Two stacks ping each other through every impairment at once.
RunOutcome run_impaired_pings(uint64_t seed) {
  Network net(seed);
  const SegmentId lan = net.add_segment({.loss = 0.1,
                                         .duplicate = 0.1,
                                         .corrupt = 0.05,
                                         .reorder = 0.2,
                                         .reorder_delay = ms(3),
                                         .delay = ms(1),
                                         .jitter = Duration::microseconds(300),
                                         .bandwidth_bps = 10'000'000,
                                         .queue_frames = 8});
  TraceDigest digest;
  net.add_observer(digest.observer());
  Stack& a = net.add_stack(lan, host_config(1, seed));
  Stack& b = net.add_stack(lan, host_config(2, seed));
  const std::vector<uint8_t> payload(3000, 0x5a);  // three fragments each way
  for (uint16_t seq = 0; seq < 40; ++seq) {
    (void)a.send_echo_request(host_ip(2), 1, seq, payload, net.now());
    (void)b.send_echo_request(host_ip(1), 2, seq, ByteView(payload).first(100), net.now());
    net.run_for(ms(7));
  }
  net.run_for(Duration::seconds(40));
  return {digest.value(), digest.frames(), a.counters().to_json(), b.counters().to_json(),
          net.segment_stats(lan)};
}

TEST_CASE("the same seed gives the same run bit for bit; another seed another run") {
  const RunOutcome first = run_impaired_pings(7);
  const RunOutcome again = run_impaired_pings(7);
  const RunOutcome other = run_impaired_pings(8);

  REQUIRE(first.frames > 100);
  CHECK(first.stats.lost > 0);
  CHECK(first.stats.duplicated > 0);
  CHECK(first.stats.corrupted > 0);
  CHECK(first.stats.reordered > 0);
  CHECK(first.digest == again.digest);
  CHECK(first.frames == again.frames);
  CHECK(first.counters_a == again.counters_a);
  CHECK(first.counters_b == again.counters_b);
  CHECK(first.stats == again.stats);
  CHECK(first.digest != other.digest);
}

}  // namespace
}  // namespace tapstack::sim
