// An in-memory network in virtual time: any number of sans-I/O stacks (or other endpoints) on
// broadcast segments, with seeded impairments. Nothing here reads a clock or draws randomness
// of its own, so one seed gives one run, bit for bit.
//
// Model: a segment is a hub (every frame goes to every other port) or a learning switch
// (unicast goes to the port that last sent from that MAC, everything else floods). A frame
// offered to a port passes that port's impairments, which model the link toward that port:
//   loss -> duplication -> per copy: output queue and serialization (bandwidth, drop tail)
//   -> corruption -> propagation delay + jitter (order kept) -> optional reordering delay.
// So a point-to-point link is a segment with two ports, and set_port_impairments() makes its
// two directions differ.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <queue>
#include <vector>

#include "stack/address.h"
#include "stack/bytes.h"
#include "stack/random.h"
#include "stack/stack.h"
#include "stack/time.h"

namespace tapstack::sim {

// What the link toward one port does to the frames it carries. Probabilities are 0..1; a knob
// left at 0 draws no random number, so turning one knob on does not reshuffle the others.
struct Impairments {
  double loss = 0;       // a frame is lost
  double duplicate = 0;  // a second copy is delivered as well
  double corrupt = 0;    // one random bit of a copy is flipped
  double reorder = 0;    // a copy is held back by an extra delay, so later frames pass it
  Duration reorder_delay = Duration::milliseconds(10);  // the extra delay: uniform in (0, this]
  Duration delay = Duration::zero();                    // propagation delay
  Duration jitter = Duration::zero();  // extra delay uniform in [0, jitter]; keeps the order
  uint64_t bandwidth_bps = 0;          // serialization rate; 0 = infinitely fast
  size_t queue_frames = 0;             // frames waiting for (or on) the wire; 0 = unbounded
};

// What a link did. One "frame" is one frame offered toward one port.
struct LinkStats {
  uint64_t frames = 0;
  uint64_t delivered = 0;  // copies handed to the receiver (duplicates included)
  uint64_t bytes_delivered = 0;
  uint64_t lost = 0;
  uint64_t duplicated = 0;
  uint64_t corrupted = 0;
  uint64_t reordered = 0;
  uint64_t queue_drops = 0;

  LinkStats& operator+=(const LinkStats& other);
  bool operator==(const LinkStats&) const = default;
};

struct SegmentId {
  uint32_t index = 0;
};
struct PortId {
  uint32_t index = 0;
  bool operator==(const PortId&) const = default;
};

enum class SegmentKind { Hub, Switch };

// Anything that can sit on a port: a Stack (through attach()), a scripted raw host, a fuzzer.
class Endpoint {
 public:
  virtual ~Endpoint() = default;
  virtual void on_frame(ByteView frame, Instant now) = 0;
  virtual void on_timer(Instant now) = 0;
  virtual Instant next_deadline() const = 0;
  // Same contract as Stack::poll_transmit(): the view stays valid until the next call.
  virtual std::optional<ByteView> poll_transmit() = 0;
};

// An endpoint without a stack: records what it receives and sends what a test gives it.
class RawHost final : public Endpoint {
 public:
  struct Received {
    Instant time;
    std::vector<uint8_t> frame;
  };

  void send(ByteView frame) { outbox_.emplace_back(frame.begin(), frame.end()); }
  const std::vector<Received>& received() const { return received_; }
  void clear() { received_.clear(); }

  void on_frame(ByteView frame, Instant now) override;
  void on_timer(Instant) override {}
  Instant next_deadline() const override { return Instant::never(); }
  std::optional<ByteView> poll_transmit() override;

 private:
  std::vector<Received> received_;
  std::deque<std::vector<uint8_t>> outbox_;
  std::vector<uint8_t> sending_;
};

enum class WireEventKind {
  Transmit,   // an endpoint sent the frame; port = sender
  Deliver,    // the frame reached an endpoint; port = receiver (frame as received)
  Inject,     // a test put the frame straight into an endpoint; port = receiver
  Lost,       // lost on the link toward port
  QueueDrop,  // dropped at the tail of the output queue toward port
};

struct WireEvent {
  Instant time;
  WireEventKind kind;
  PortId port;
  ByteView frame;          // valid only during the callback
  bool corrupted = false;  // Deliver: a bit of this copy was flipped on the way
};

class Network {
 public:
  using Observer = std::function<void(const WireEvent&)>;

  explicit Network(uint64_t seed, Instant start = Instant{});
  ~Network();
  Network(const Network&) = delete;
  Network& operator=(const Network&) = delete;

  // Topology. Impairments given to a segment apply to every port on it, present and future.
  SegmentId add_segment(const Impairments& impairments = {}, SegmentKind kind = SegmentKind::Hub);
  PortId attach(SegmentId segment, Endpoint& endpoint);
  PortId attach(SegmentId segment, Stack& stack);
  // A stack owned by the network, started (stack.start()) at now().
  Stack& add_stack(SegmentId segment, StackConfig config);
  PortId port_of(const Stack& stack) const;

  void set_impairments(SegmentId segment, const Impairments& impairments);
  // Only the link toward this port (one direction of a point-to-point link).
  void set_port_impairments(PortId port, const Impairments& impairments);
  const LinkStats& port_stats(PortId port) const;
  LinkStats segment_stats(SegmentId segment) const;

  void add_observer(Observer observer);
  // Hands frame to the endpoint on port at the instant at (>= now()), with no impairment.
  void inject(PortId port, ByteView frame, Instant at);
  void inject(const Stack& stack, ByteView frame, Instant at) { inject(port_of(stack), frame, at); }

  // Virtual time.
  Instant now() const { return now_; }
  // Advances to the next instant something happens (a delivery or an endpoint's deadline),
  // if that is not after limit, and runs everything due then. False when nothing was due.
  bool step(Instant limit = Instant::never());
  // Steps until done() holds or max virtual time has passed; true when done() holds.
  bool run_until(const std::function<bool()>& done, Duration max);
  // Runs everything due in the next d; now() is then exactly now() + d.
  void run_for(Duration d);

 private:
  struct Segment;
  struct Port;
  struct Event {
    Instant time;
    uint64_t sequence;  // ties broken by creation order: deterministic
    uint32_t port;
    uint32_t buffer;
    bool injected;
    bool corrupted;
  };
  struct Later {
    bool operator()(const Event& a, const Event& b) const {
      return a.time != b.time ? a.time > b.time : a.sequence > b.sequence;
    }
  };

  Instant next_event_time() const;
  void deliver_due(uint64_t batch_end);
  void run_timers_due();
  void drain(uint32_t port);
  void drain_all();
  void transmit(uint32_t from, ByteView frame);
  void offer(uint32_t to, ByteView frame);
  void enqueue_copy(uint32_t to, ByteView frame);
  void schedule(Instant time, uint32_t port, ByteView frame, bool injected, bool corrupted);
  uint32_t allocate_buffer(ByteView frame);
  void notify(const WireEvent& event) const;

  Random random_;  // only to seed each segment's own source
  Instant now_;
  uint64_t next_sequence_ = 0;
  std::vector<std::unique_ptr<Segment>> segments_;
  std::vector<std::unique_ptr<Port>> ports_;
  std::vector<std::unique_ptr<Stack>> owned_stacks_;
  std::vector<Observer> observers_;
  std::priority_queue<Event, std::vector<Event>, Later> events_;
  std::vector<std::vector<uint8_t>> buffers_;
  std::vector<uint32_t> free_buffers_;
};

// Hashes every delivered or injected frame with its time and port (FNV-1a, 64 bits): two
// runs are the same run exactly when their digests are equal.
class TraceDigest {
 public:
  Network::Observer observer();
  uint64_t value() const { return hash_; }
  uint64_t frames() const { return frames_; }

 private:
  void add(const WireEvent& event);
  void mix(const uint8_t* bytes, size_t size);
  uint64_t hash_ = 0xcbf29ce484222325ULL;
  uint64_t frames_ = 0;
};

}  // namespace tapstack::sim
