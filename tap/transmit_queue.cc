#include "tap/transmit_queue.h"

#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <bit>
#include <cstring>

#include <fmt/format.h>

#include "tap/system_error.h"

namespace tapstack {
namespace {

// A record is a 4-byte size and the frame, padded to 8 bytes. Two sizes are markers.
constexpr uint32_t kWrapMarker = 0xffffffff;  // the rest of the ring is unused; go to its start
constexpr uint32_t kStopMarker = 0xfffffffe;  // the queue is being destroyed
constexpr uint32_t kRecordHeader = 4;
// How often the consumer looks again before it sleeps: about a few microseconds, so that a
// steady stream of frames does not pay a futex wake-up each.
constexpr int kSpins = 200;

uint32_t padded(uint32_t size) {
  return (kRecordHeader + size + 7) & ~uint32_t{7};
}

void futex_wait(std::atomic<uint32_t>& word, uint32_t expected) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected, nullptr,
          nullptr, 0);
}
void futex_wake(std::atomic<uint32_t>& word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr,
          0);
}
static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t));

void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

}  // namespace

TransmitQueue::TransmitQueue(TapDevice& tap, size_t capacity, size_t tap_queue)
    : tap_(tap),
      tap_queue_(tap_queue),
      ring_(std::bit_ceil(std::max<size_t>(capacity, 1 << 16))),
      mask_(static_cast<uint32_t>(ring_.size() - 1)),
      thread_([this] { run(); }) {}

TransmitQueue::~TransmitQueue() {
  push_record({}, {}, true);  // the stop record: taken after everything queued before it
  thread_.join();
}

bool TransmitQueue::push(ByteView head, ByteView body) {
  return push_record(head, body, false);
}

bool TransmitQueue::push_record(ByteView head, ByteView body, bool stopping) {
  const size_t frame = head.size() + body.size();
  if (frame + kRecordHeader + 8 > ring_.size() / 2) return false;
  const uint32_t size = static_cast<uint32_t>(frame);
  const uint32_t need = padded(size);
  const uint32_t h = head_.load(std::memory_order_relaxed);
  const uint32_t offset = h & mask_;
  const uint32_t to_end = static_cast<uint32_t>(ring_.size()) - offset;
  const uint32_t wrap = need > to_end ? to_end : 0;
  const uint32_t capacity = static_cast<uint32_t>(ring_.size());
  // Wait for room. Linux: a full qdisc stops the queue; here the producer waits.
  for (;;) {
    const uint32_t t = tail_.load(std::memory_order_acquire);
    if (capacity - (h - t) >= wrap + need) break;
    producer_waiting_.store(true);
    const uint32_t again = tail_.load();
    if (capacity - (h - again) >= wrap + need) break;
    futex_wait(tail_, again);
  }
  producer_waiting_.store(false, std::memory_order_relaxed);
  uint32_t at = offset;
  if (wrap > 0) {
    std::memcpy(&ring_[at], &kWrapMarker, kRecordHeader);
    at = 0;
  }
  const uint32_t marker = stopping ? kStopMarker : size;
  std::memcpy(&ring_[at], &marker, kRecordHeader);
  if (!head.empty()) std::memcpy(&ring_[at + kRecordHeader], head.data(), head.size());
  if (!body.empty()) {
    std::memcpy(&ring_[at + kRecordHeader + head.size()], body.data(), body.size());
  }
  head_.store(h + wrap + need);  // seq_cst: ordered before the look at consumer_sleeping_
  if (consumer_sleeping_.load()) {
    consumer_sleeping_.store(false, std::memory_order_relaxed);
    futex_wake(head_);
  }
  return true;
}

void TransmitQueue::flush() {
  const uint32_t h = head_.load(std::memory_order_relaxed);
  for (;;) {
    if (tail_.load(std::memory_order_acquire) == h) break;
    producer_waiting_.store(true);
    const uint32_t t = tail_.load();
    if (t == h) break;
    futex_wait(tail_, t);
  }
  producer_waiting_.store(false, std::memory_order_relaxed);
}

void TransmitQueue::run() {
  // Signals (SIGINT, SIGUSR1, ...) are the loop's thread's to handle, not this one's.
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  // A name that top -H, perf report --sort comm and /proc/<pid>/task show: the kernel's
  // receive work for our frames is charged to these threads.
  pthread_setname_np(pthread_self(), fmt::format("tapstack-tx{}", tap_queue_).c_str());
  uint32_t t = tail_.load(std::memory_order_relaxed);
  for (;;) {
    uint32_t h = head_.load(std::memory_order_acquire);
    for (int spin = 0; h == t && spin < kSpins; ++spin) {
      cpu_relax();
      h = head_.load(std::memory_order_acquire);
    }
    if (h == t) {
      consumer_sleeping_.store(true);
      if (head_.load() == t) futex_wait(head_, t);
      consumer_sleeping_.store(false, std::memory_order_relaxed);
      continue;
    }
    while (t != h) {
      const uint32_t offset = t & mask_;
      uint32_t size;
      std::memcpy(&size, &ring_[offset], kRecordHeader);
      if (size == kStopMarker) {
        tail_.store(t + padded(0));
        futex_wake(tail_);
        return;
      }
      if (size == kWrapMarker) {
        t += static_cast<uint32_t>(ring_.size()) - offset;
      } else {
        write_one(&ring_[offset + kRecordHeader], size);
        t += padded(size);
      }
      tail_.store(t);  // seq_cst: ordered before the look at producer_waiting_
      // A waiting producer is woken when half the ring is free (or all of it, for flush()),
      // not for every frame: one wake-up per many frames.
      if ((h - t <= mask_ / 2 || t == h) && producer_waiting_.load()) futex_wake(tail_);
    }
  }
}

// Never blocks: a full TAP queue drops the frame, as a full device queue does in Linux (the
// stack's own retransmission recovers what matters).
void TransmitQueue::write_one(const uint8_t* record, uint32_t size) {
  const auto written = tap_.write(tap_queue_, {}, {record, size});
  if (written) {
    frames_sent_.fetch_add(1, std::memory_order_relaxed);
  } else if (is_would_block(written.error())) {
    send_drops_.fetch_add(1, std::memory_order_relaxed);
  } else {
    send_errors_.fetch_add(1, std::memory_order_relaxed);
    const std::lock_guard lock(error_mutex_);
    last_error_ = written.error().message;
  }
}

TransmitQueueStats TransmitQueue::stats() const {
  return {frames_sent_.load(std::memory_order_relaxed), send_drops_.load(std::memory_order_relaxed),
          send_errors_.load(std::memory_order_relaxed)};
}

std::string TransmitQueue::last_error() const {
  const std::lock_guard lock(error_mutex_);
  return last_error_;
}

size_t flow_queue(ByteView frame, size_t queues) {
  constexpr size_t kIpStart = 14;
  constexpr uint16_t kEthertypeIpv4 = 0x0800;
  constexpr uint8_t kProtocolTcp = 6;
  constexpr uint8_t kProtocolUdp = 17;
  if (queues <= 1 || frame.size() < kIpStart + 20) return 0;
  if (load_be16(&frame[12]) != kEthertypeIpv4) return 0;
  const ByteView ip = frame.subspan(kIpStart);
  const size_t ip_header = (ip[0] & 0x0f) * 4u;
  const bool fragment = (load_be16(&ip[6]) & 0x3fff) != 0;  // MF set or an offset
  if ((ip[9] != kProtocolTcp && ip[9] != kProtocolUdp) || fragment || ip.size() < ip_header + 4) {
    return 0;
  }
  const uint64_t addresses = uint64_t{load_be32(&ip[12])} << 32 | load_be32(&ip[16]);
  const uint64_t ports = load_be32(&ip[ip_header]);
  // A 64-bit mix (the finaliser of MurmurHash3), then Linux's reciprocal_scale() onto
  // [0, queues): neighbouring ports spread as well as distant ones.
  uint64_t hash = addresses ^ (ports * 0x9e3779b97f4a7c15);
  hash ^= hash >> 33;
  hash *= 0xff51afd7ed558ccd;
  hash ^= hash >> 33;
  hash *= 0xc4ceb9fe1a85ec53;
  hash ^= hash >> 33;
  return static_cast<size_t>(((hash & 0xffffffff) * queues) >> 32);
}

TransmitQueues::TransmitQueues(TapDevice& tap, size_t capacity) {
  for (size_t queue = 0; queue < tap.queue_count(); ++queue) {
    queues_.push_back(std::make_unique<TransmitQueue>(tap, capacity, queue));
  }
}

void TransmitQueues::flush() {
  for (const auto& queue : queues_) queue->flush();
}

TransmitQueueStats TransmitQueues::stats() const {
  TransmitQueueStats sum;
  for (const auto& queue : queues_) {
    const TransmitQueueStats one = queue->stats();
    sum.frames_sent += one.frames_sent;
    sum.send_drops += one.send_drops;
    sum.send_errors += one.send_errors;
  }
  return sum;
}

std::string TransmitQueues::last_error() const {
  for (const auto& queue : queues_) {
    if (std::string error = queue->last_error(); !error.empty()) return error;
  }
  return {};
}

}  // namespace tapstack
