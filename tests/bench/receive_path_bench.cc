// The in-memory receive path: how many small segments one stack takes per second on one core,
// on an established connection, with its replies (ACKs) drained and thrown away.
//
// A sender stack pushes 64-byte segments (TCP_NODELAY, one segment per send) to a receiver
// stack; every frame the receiver is given, and every read its application makes, is recorded
// with its virtual instant. A fresh receiver with the same configuration and seed is then
// given the same recording: the core is deterministic, so it goes through the same states, and
// the clock measures only Stack::on_frame() (parse, checksum, demultiplex, RFC 2385 verdict,
// state processing, the receive buffer, the ACKs it sends) and the reads. The timed loop
// allocates nothing: the frames are built before it starts.
//
// Figures: segments per second without a key, with an RFC 2385 key (every segment's digest
// checked), and raw MD5 over the same bytes as each signed segment's digest covers (libcrypto,
// one context reused, as the stack does) for the ceiling that signing sets.
//
// bazel run //tests/bench:receive_path_bench -- [thousands of segments; 200] [runs; 5]
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "md5opt/signer.h"
#include "stack/stack.h"
#include "stack/tcp/tcp.h"
#include "tests/sim/hosts.h"

namespace tapstack {
namespace {

using Clock = std::chrono::steady_clock;

constexpr uint16_t kPort = 179;
constexpr size_t kSegmentBytes = 64;
constexpr std::string_view kKey = "bench-key";

// What the receiver was given, in order.
struct Event {
  enum class Kind { Frame, Read, Timer } kind;
  Instant now;
  std::vector<uint8_t> frame;
};

struct Recording {
  std::vector<Event> events;
  size_t data_segments = 0;     // frames that carry payload
  size_t handshake_events = 0;  // events before the first data segment
  size_t other_sizes = 0;       // data segments not of kSegmentBytes (should be none)
};

// Payload bytes of an Ethernet + IPv4 + TCP frame.
size_t tcp_payload_size(ByteView frame) {
  if (frame.size() < 14 + 20 + 20) return 0;
  const size_t ip_header = (frame[14] & 0x0f) * 4u;
  const size_t total = static_cast<size_t>(frame[16]) << 8 | frame[17];
  const size_t tcp_header = (frame[14 + ip_header + 12] >> 4) * 4u;
  return total - ip_header - tcp_header;
}

// Transmit queues long enough that a round of the recording never overflows them.
StackConfig bench_config(uint8_t host) {
  StackConfig config = sim::host_config(host, 7);
  config.transmit_queue_frames = 4096;
  return config;
}
StackConfig receiver_config() {
  return bench_config(1);
}
StackConfig sender_config() {
  return bench_config(2);
}

// The receiver's side of the connection: a listener (keyed when signed), the accepted socket,
// reads into a buffer of its own.
class Receiver {
 public:
  Receiver(bool signed_) : stack_(receiver_config()), buffer_(64 << 10) {
    listener_ = *stack_.tcp().listen(kPort, 4);
    if (signed_) {
      (void)stack_.tcp().set_md5_key(listener_, sim::host_ip(2), 32, as_bytes(kKey));
    }
  }
  Stack& stack() { return stack_; }
  void read_all(Instant now) {
    if (socket_ == 0) {
      auto accepted = stack_.tcp().accept(listener_);
      if (!accepted) return;
      socket_ = *accepted;
    }
    while (true) {
      auto n = stack_.tcp().receive(socket_, buffer_, now);
      if (!n || *n == 0) break;
      received_ += *n;
    }
  }
  uint64_t received() const { return received_; }

  static ByteView as_bytes(std::string_view text) {
    return ByteView(reinterpret_cast<const uint8_t*>(text.data()), text.size());
  }

 private:
  Stack stack_;
  SocketId listener_ = 0;
  SocketId socket_ = 0;
  std::vector<uint8_t> buffer_;
  uint64_t received_ = 0;
};

// Runs the sender against a receiver until `segments` data segments have been given to it.
Recording record(size_t segments, bool signed_) {
  Recording recording;
  Receiver receiver(signed_);
  Stack sender(sender_config());
  Instant now = Instant::from_ns(1'000'000'000);
  receiver.stack().start(now);
  sender.start(now);
  auto socket = *sender.tcp().open();
  SocketOptions options = *sender.tcp().options(socket);
  options.no_delay = true;
  (void)sender.tcp().set_options(socket, options);
  if (signed_) {
    (void)sender.tcp().set_md5_key(socket, sim::host_ip(1), 32, Receiver::as_bytes(kKey));
  }
  const std::vector<uint8_t> chunk(kSegmentBytes, 0x5a);
  size_t sent = 0;
  // Sinks instead of the transmit queues, whose bounds a fast sender would overflow: the
  // sender's frames go to the receiver as they are made, the receiver's wait in `replies`.
  sender.set_transmit_sink([&](ByteView frame, const FrameOffload&) {
    const size_t payload = tcp_payload_size(frame);
    if (payload != 0 && payload != kSegmentBytes) ++recording.other_sizes;
    if (payload != 0 && recording.data_segments++ == 0) {
      recording.handshake_events = recording.events.size();
    }
    recording.events.push_back(
        {Event::Kind::Frame, now, std::vector<uint8_t>(frame.begin(), frame.end())});
    receiver.stack().on_frame(frame, now);
  });
  std::deque<std::vector<uint8_t>> replies;
  receiver.stack().set_transmit_sink([&](ByteView frame, const FrameOffload&) {
    replies.emplace_back(frame.begin(), frame.end());
  });
  (void)sender.tcp().connect(socket, sim::host_ip(1), kPort, now);
  while (recording.data_segments < segments) {
    const size_t before = recording.events.size();
    // One segment per send: a new chunk only when everything before it is on the wire.
    while (sent < segments) {
      auto info = sender.tcp().info(socket);
      if (!info || info->state != TcpState::Established || info->send_queue != info->unacked) {
        break;
      }
      if (!sender.tcp().send(socket, chunk, now)) break;
      ++sent;
    }
    receiver.read_all(now);
    recording.events.push_back({Event::Kind::Read, now, {}});
    bool moved = recording.events.size() > before + 1 || !replies.empty();
    while (!replies.empty()) {
      const std::vector<uint8_t> frame = std::move(replies.front());
      replies.pop_front();
      sender.on_frame(frame, now);
    }
    if (!moved) {
      const Instant next = std::min(sender.next_deadline(), receiver.stack().next_deadline());
      if (next == Instant::never()) break;
      now = std::max(now, next);
      sender.on_timer(now);
      receiver.stack().on_timer(now);
      recording.events.push_back({Event::Kind::Timer, now, {}});
    }
  }
  return recording;
}

struct Replay {
  double seconds = 0;
  size_t replies = 0;
  uint64_t received = 0;
  uint64_t dropped = 0;
};

// Gives a fresh receiver the recording; times the part after the handshake.
Replay replay(const Recording& recording, bool signed_) {
  Receiver receiver(signed_);
  Replay result;
  receiver.stack().set_transmit_sink(
      [&result](ByteView, const FrameOffload&) { ++result.replies; });
  receiver.stack().start(recording.events.front().now);
  auto give = [&](const Event& event) {
    switch (event.kind) {
      case Event::Kind::Frame:
        return receiver.stack().on_frame(event.frame, event.now);
      case Event::Kind::Read:
        return receiver.read_all(event.now);
      case Event::Kind::Timer:
        return receiver.stack().on_timer(event.now);
    }
  };
  const auto data_start = recording.events.begin() + recording.handshake_events;
  std::for_each(recording.events.begin(), data_start, give);
  result.replies = 0;
  const auto start = Clock::now();
  std::for_each(data_start, recording.events.end(), give);
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  result.received = receiver.received();
  for (size_t reason = 0; reason < kDropReasonCount; ++reason) {
    result.dropped += receiver.stack().counters().drops(static_cast<DropReason>(reason));
  }
  return result;
}

// Raw MD5 over what one signed segment's digest covers: pseudo-header (12), TCP header (20),
// payload (64), key.
double md5_digests_per_second(size_t count) {
  md5opt::Md5Signer signer;
  std::vector<uint8_t> header(20, 0x11);
  std::vector<uint8_t> payload(kSegmentBytes, 0x5a);
  const uint8_t source[4] = {198, 18, 0, 2};
  const uint8_t destination[4] = {198, 18, 0, 1};
  const md5opt::TcpSegment segment{md5opt::IpAddress::ipv4(source),
                                   md5opt::IpAddress::ipv4(destination), header, payload};
  uint64_t sink = 0;
  const auto start = Clock::now();
  for (size_t i = 0; i < count; ++i) {
    header[4] = static_cast<uint8_t>(i);
    auto digest = signer.digest(segment, Receiver::as_bytes(kKey));
    sink += digest ? (*digest)[0] : 0;
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (sink == 1) std::fputc(' ', stdout);  // keeps the loop from being optimised away
  return static_cast<double>(count) / seconds;
}

size_t parse_arg(int argc, char** argv, int index, size_t fallback, size_t low, size_t high) {
  if (argc <= index) return fallback;
  const std::string_view text = argv[index];
  size_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc{} || end != text.data() + text.size() || value < low || value > high) {
    fmt::print(stderr,
               "usage: receive_path_bench [thousands of segments, 1..5000] [runs, 1..50]\n");
    std::exit(2);
  }
  return value;
}

void run(std::string_view name, bool signed_, size_t segments, size_t runs) {
  const Recording recording = record(segments, signed_);
  std::vector<double> rates;
  Replay last;
  for (size_t i = 0; i < runs; ++i) {
    last = replay(recording, signed_);
    rates.push_back(static_cast<double>(recording.data_segments) / last.seconds);
  }
  std::sort(rates.begin(), rates.end());
  const bool whole =
      last.received == recording.data_segments * kSegmentBytes && recording.other_sizes == 0;
  fmt::print(
      "{:<34} {:>6.2f} M segments/s (median; {:.2f}–{:.2f}), {:>5.1f} ns each, "
      "{:.2f} replies per segment, {} drops{}\n",
      name, rates[rates.size() / 2] / 1e6, rates.front() / 1e6, rates.back() / 1e6,
      1e9 / rates[rates.size() / 2],
      static_cast<double>(last.replies) / static_cast<double>(recording.data_segments),
      last.dropped,
      whole ? ""
            : fmt::format(" — {} bytes arrived, not {}; {} segments of another size", last.received,
                          recording.data_segments * kSegmentBytes, recording.other_sizes));
}

}  // namespace
}  // namespace tapstack

int main(int argc, char** argv) {
  using namespace tapstack;
  const size_t segments = parse_arg(argc, argv, 1, 200, 1, 5000) * 1000;
  const size_t runs = parse_arg(argc, argv, 2, 5, 1, 50);
  fmt::print(
      "In-memory receive path, one stack on one core: {} segments of {} bytes per run, "
      "{} runs\n\n",
      segments, kSegmentBytes, runs);
  run("no key", false, segments, runs);
  run("RFC 2385 key (digest checked)", true, segments, runs);
  std::vector<double> md5;
  for (size_t i = 0; i < runs; ++i) md5.push_back(md5_digests_per_second(segments));
  std::sort(md5.begin(), md5.end());
  fmt::print(
      "{:<34} {:>6.2f} M digests/s (median; {:.2f}–{:.2f}), {:>5.1f} ns each "
      "(12 + 20 + {} bytes and the key)\n",
      "raw MD5 (libcrypto), the same bytes", md5[md5.size() / 2] / 1e6, md5.front() / 1e6,
      md5.back() / 1e6, 1e9 / md5[md5.size() / 2], kSegmentBytes);
  return 0;
}
