#include "tests/sim/network.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

namespace tapstack::sim {

LinkStats& LinkStats::operator+=(const LinkStats& other) {
  frames += other.frames;
  delivered += other.delivered;
  bytes_delivered += other.bytes_delivered;
  lost += other.lost;
  duplicated += other.duplicated;
  corrupted += other.corrupted;
  reordered += other.reordered;
  queue_drops += other.queue_drops;
  return *this;
}

void RawHost::on_frame(ByteView frame, Instant now) {
  received_.push_back({now, std::vector<uint8_t>(frame.begin(), frame.end())});
}

std::optional<ByteView> RawHost::poll_transmit() {
  if (outbox_.empty()) return std::nullopt;
  sending_ = std::move(outbox_.front());
  outbox_.pop_front();
  return ByteView(sending_);
}

namespace {

class StackEndpoint final : public Endpoint {
 public:
  explicit StackEndpoint(Stack& stack) : stack_(stack) {}
  void on_frame(ByteView frame, Instant now) override { stack_.on_frame(frame, now); }
  void on_timer(Instant now) override { stack_.on_timer(now); }
  Instant next_deadline() const override { return stack_.next_deadline(); }
  std::optional<ByteView> poll_transmit() override { return stack_.poll_transmit(); }
  const Stack& stack() const { return stack_; }

 private:
  Stack& stack_;
};

std::optional<MacAddress> mac_at(ByteView frame, size_t offset) {
  if (frame.size() < offset + 6) return std::nullopt;
  MacAddress mac;
  std::memcpy(mac.bytes.data(), frame.data() + offset, 6);
  return mac;
}

}  // namespace

struct Network::Segment {
  Segment(SegmentKind kind, const Impairments& impairments, uint64_t seed)
      : kind(kind), impairments(impairments), random(seed) {}
  SegmentKind kind;
  Impairments impairments;
  Random random;
  std::vector<uint32_t> ports;
  std::vector<std::pair<MacAddress, uint32_t>> learned;  // Switch: MAC -> port, few entries
};

struct Network::Port {
  uint32_t segment;
  Endpoint* endpoint;
  std::unique_ptr<Endpoint> adapter;  // set when the network wraps a Stack
  const Stack* stack = nullptr;
  Impairments impairments;
  LinkStats stats;
  Instant wire_free;                 // when the output link finishes its current frame
  std::deque<Instant> queue_finish;  // when each queued frame leaves the output link
  Instant last_in_order;             // latest delivery time of a frame not reordered
};

Network::Network(uint64_t seed, Instant start) : random_(seed), now_(start) {}
Network::~Network() = default;

SegmentId Network::add_segment(const Impairments& impairments, SegmentKind kind) {
  segments_.push_back(std::make_unique<Segment>(kind, impairments, random_.next_u64()));
  return SegmentId{static_cast<uint32_t>(segments_.size() - 1)};
}

PortId Network::attach(SegmentId segment, Endpoint& endpoint) {
  Segment& seg = *segments_.at(segment.index);
  auto port = std::make_unique<Port>();
  port->segment = segment.index;
  port->endpoint = &endpoint;
  port->impairments = seg.impairments;
  port->wire_free = now_;
  port->last_in_order = now_;
  ports_.push_back(std::move(port));
  const auto index = static_cast<uint32_t>(ports_.size() - 1);
  seg.ports.push_back(index);
  return PortId{index};
}

PortId Network::attach(SegmentId segment, Stack& stack) {
  auto adapter = std::make_unique<StackEndpoint>(stack);
  const PortId id = attach(segment, *adapter);
  ports_[id.index]->adapter = std::move(adapter);
  ports_[id.index]->stack = &stack;
  return id;
}

Stack& Network::add_stack(SegmentId segment, StackConfig config) {
  owned_stacks_.push_back(std::make_unique<Stack>(std::move(config)));
  Stack& stack = *owned_stacks_.back();
  attach(segment, stack);
  stack.start(now_);
  return stack;
}

PortId Network::port_of(const Stack& stack) const {
  for (size_t i = 0; i < ports_.size(); ++i) {
    if (ports_[i]->stack == &stack) return PortId{static_cast<uint32_t>(i)};
  }
  throw std::invalid_argument("sim::Network::port_of: stack is not attached");
}

void Network::set_impairments(SegmentId segment, const Impairments& impairments) {
  Segment& seg = *segments_.at(segment.index);
  seg.impairments = impairments;
  for (uint32_t port : seg.ports) ports_[port]->impairments = impairments;
}

void Network::set_port_impairments(PortId port, const Impairments& impairments) {
  ports_.at(port.index)->impairments = impairments;
}

const LinkStats& Network::port_stats(PortId port) const {
  return ports_.at(port.index)->stats;
}

LinkStats Network::segment_stats(SegmentId segment) const {
  LinkStats sum;
  for (uint32_t port : segments_.at(segment.index)->ports) sum += ports_[port]->stats;
  return sum;
}

void Network::add_observer(Observer observer) {
  observers_.push_back(std::move(observer));
}

void Network::inject(PortId port, ByteView frame, Instant at) {
  if (port.index >= ports_.size()) throw std::out_of_range("sim::Network::inject: no such port");
  if (at < now_) throw std::invalid_argument("sim::Network::inject: time is in the past");
  schedule(at, port.index, frame, /*injected=*/true, /*corrupted=*/false);
}

bool Network::step(Instant limit) {
  drain_all();  // frames a test made between steps leave now
  const Instant next = next_event_time();
  if (next.is_never() || next > limit) return false;
  now_ = std::max(now_, next);
  deliver_due(next_sequence_);
  run_timers_due();
  return true;
}

bool Network::run_until(const std::function<bool()>& done, Duration max) {
  const Instant deadline = now_ + max;
  while (!done()) {
    if (!step(deadline)) {
      now_ = std::max(now_, deadline);
      return done();
    }
  }
  return true;
}

void Network::run_for(Duration d) {
  const Instant end = now_ + d;
  while (step(end)) {
  }
  now_ = std::max(now_, end);
}

Instant Network::next_event_time() const {
  Instant next = events_.empty() ? Instant::never() : events_.top().time;
  for (const auto& port : ports_) next = std::min(next, port->endpoint->next_deadline());
  return next;
}

// Frames scheduled while this batch runs (a reply with zero delay) wait for the next step, so
// one step always ends, even when two endpoints answer each other forever.
void Network::deliver_due(uint64_t batch_end) {
  while (!events_.empty() && events_.top().time <= now_ && events_.top().sequence < batch_end) {
    const Event event = events_.top();
    events_.pop();
    const std::vector<uint8_t>& buffer = buffers_[event.buffer];
    const ByteView frame(buffer.data(), buffer.size());
    Port& port = *ports_[event.port];
    if (!event.injected) {
      ++port.stats.delivered;
      port.stats.bytes_delivered += frame.size();
    }
    if (!observers_.empty()) {
      notify({now_, event.injected ? WireEventKind::Inject : WireEventKind::Deliver,
              PortId{event.port}, frame, event.corrupted});
    }
    port.endpoint->on_frame(frame, now_);
    free_buffers_.push_back(event.buffer);
    drain(event.port);
  }
}

void Network::run_timers_due() {
  for (uint32_t i = 0; i < ports_.size(); ++i) {
    Endpoint& endpoint = *ports_[i]->endpoint;
    if (endpoint.next_deadline() > now_) continue;
    endpoint.on_timer(now_);
    drain(i);
    // A deadline that on_timer() leaves in the past would spin virtual time forever.
    if (endpoint.next_deadline() <= now_) {
      throw std::logic_error(fmt::format(
          "sim::Network: port {}: next_deadline() is {} ns, still due after on_timer({} ns)", i,
          endpoint.next_deadline().ns(), now_.ns()));
    }
  }
}

void Network::drain(uint32_t port) {
  Endpoint& endpoint = *ports_[port]->endpoint;
  while (auto frame = endpoint.poll_transmit()) transmit(port, *frame);
}

void Network::drain_all() {
  for (uint32_t i = 0; i < ports_.size(); ++i) drain(i);
}

void Network::transmit(uint32_t from, ByteView frame) {
  if (!observers_.empty()) notify({now_, WireEventKind::Transmit, PortId{from}, frame});
  Segment& segment = *segments_[ports_[from]->segment];
  if (segment.kind == SegmentKind::Switch) {
    if (auto source = mac_at(frame, 6); source && !source->is_multicast()) {
      auto it = std::find_if(segment.learned.begin(), segment.learned.end(),
                             [&](const auto& entry) { return entry.first == *source; });
      if (it == segment.learned.end()) {
        segment.learned.emplace_back(*source, from);
      } else {
        it->second = from;
      }
    }
    if (auto destination = mac_at(frame, 0); destination && !destination->is_multicast()) {
      for (const auto& [mac, port] : segment.learned) {
        if (mac != *destination) continue;
        if (port != from) offer(port, frame);
        return;
      }
    }
  }
  for (uint32_t to : segment.ports) {
    if (to != from) offer(to, frame);
  }
}

void Network::offer(uint32_t to, ByteView frame) {
  Port& port = *ports_[to];
  const Impairments& impairments = port.impairments;
  Random& random = segments_[port.segment]->random;
  ++port.stats.frames;
  if (impairments.loss > 0 && random.chance(impairments.loss)) {
    ++port.stats.lost;
    if (!observers_.empty()) notify({now_, WireEventKind::Lost, PortId{to}, frame});
    return;
  }
  const bool twice = impairments.duplicate > 0 && random.chance(impairments.duplicate);
  enqueue_copy(to, frame);
  if (twice) {
    ++port.stats.duplicated;
    enqueue_copy(to, frame);
  }
}

void Network::enqueue_copy(uint32_t to, ByteView frame) {
  Port& port = *ports_[to];
  const Impairments& impairments = port.impairments;
  Random& random = segments_[port.segment]->random;

  Instant on_wire_end = now_;
  if (impairments.bandwidth_bps > 0) {
    while (!port.queue_finish.empty() && port.queue_finish.front() <= now_) {
      port.queue_finish.pop_front();
    }
    if (impairments.queue_frames > 0 && port.queue_finish.size() >= impairments.queue_frames) {
      ++port.stats.queue_drops;
      if (!observers_.empty()) notify({now_, WireEventKind::QueueDrop, PortId{to}, frame});
      return;
    }
    const auto bits = static_cast<unsigned __int128>(frame.size()) * 8;
    const auto serialization = Duration::nanoseconds(
        static_cast<int64_t>(bits * 1'000'000'000 / impairments.bandwidth_bps));
    port.wire_free = std::max(now_, port.wire_free) + serialization;
    port.queue_finish.push_back(port.wire_free);
    on_wire_end = port.wire_free;
  }

  const uint32_t buffer = allocate_buffer(frame);
  const bool corrupted =
      impairments.corrupt > 0 && !frame.empty() && random.chance(impairments.corrupt);
  if (corrupted) {
    const uint64_t bit = random.below(frame.size() * 8);
    buffers_[buffer][bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    ++port.stats.corrupted;
  }

  Instant arrival = on_wire_end + impairments.delay;
  if (impairments.jitter > Duration::zero()) {
    const auto span = static_cast<uint64_t>(impairments.jitter.ns()) + 1;
    arrival += Duration::nanoseconds(static_cast<int64_t>(random.below(span)));
  }
  arrival = std::max(arrival, port.last_in_order);  // jitter alone never reorders
  port.last_in_order = arrival;
  if (impairments.reorder > 0 && random.chance(impairments.reorder)) {
    const auto span = static_cast<uint64_t>(std::max<int64_t>(impairments.reorder_delay.ns(), 1));
    arrival += Duration::nanoseconds(static_cast<int64_t>(random.below(span)) + 1);
    ++port.stats.reordered;
  }
  events_.push({arrival, next_sequence_++, to, buffer, /*injected=*/false, corrupted});
}

void Network::schedule(Instant time, uint32_t port, ByteView frame, bool injected, bool corrupted) {
  events_.push({time, next_sequence_++, port, allocate_buffer(frame), injected, corrupted});
}

uint32_t Network::allocate_buffer(ByteView frame) {
  uint32_t index;
  if (free_buffers_.empty()) {
    index = static_cast<uint32_t>(buffers_.size());
    buffers_.emplace_back();
  } else {
    index = free_buffers_.back();
    free_buffers_.pop_back();
  }
  buffers_[index].assign(frame.begin(), frame.end());
  return index;
}

void Network::notify(const WireEvent& event) const {
  for (const auto& observer : observers_) observer(event);
}

Network::Observer TraceDigest::observer() {
  return [this](const WireEvent& event) { add(event); };
}

void TraceDigest::add(const WireEvent& event) {
  if (event.kind != WireEventKind::Deliver && event.kind != WireEventKind::Inject) return;
  const int64_t time = event.time.ns();
  const uint32_t port = event.port.index;
  const uint64_t size = event.frame.size();
  mix(reinterpret_cast<const uint8_t*>(&time), sizeof time);
  mix(reinterpret_cast<const uint8_t*>(&port), sizeof port);
  mix(reinterpret_cast<const uint8_t*>(&size), sizeof size);
  mix(event.frame.data(), event.frame.size());
  ++frames_;
}

void TraceDigest::mix(const uint8_t* bytes, size_t size) {
  for (size_t i = 0; i < size; ++i) {
    hash_ ^= bytes[i];
    hash_ *= 0x100000001b3ULL;
  }
}

}  // namespace tapstack::sim
