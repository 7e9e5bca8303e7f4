// A transmit thread for a TAP device: the event loop's thread queues frames here and goes on,
// a thread of the queue's own writes them to the TAP.
//
// Why a thread: a write(2) to a TAP is not a hand-over. Linux runs the whole receive path of
// the frame inside that system call (tun_get_user() → netif_receive_skb(): IP, TCP, the
// verification of an RFC 2385 digest in plain C, waking the reader; and for an ACK, the
// kernel sender's next segments, each signed, all before write() returns). Done on the
// stack's thread, that work and ours take turns on one core; done here, they run side by
// side. Linux's own drivers make the same split between the stack and the device's queue.
//
// The queue is one contiguous ring of bytes, allocated once, holding frames back to back;
// one producer (the loop's thread) and one consumer (the transmit thread). When it is full,
// push() waits for room: the queue exerts back-pressure, like a qdisc, instead of dropping.
//
// A multi-queue TAP (IFF_MULTI_QUEUE) gets one TransmitQueue per queue (TransmitQueues):
// Linux then runs the receive work of N writers on N cores. Frames of one flow always take
// the same queue, so they are never reordered against each other.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "stack/bytes.h"
#include "tap/tap_device.h"

namespace tapstack {

struct TransmitQueueStats {
  uint64_t frames_sent = 0;  // written to the TAP
  uint64_t send_drops = 0;   // the TAP's queue was full (EAGAIN)
  uint64_t send_errors = 0;  // the write failed otherwise
};

class TransmitQueue {
 public:
  // capacity: bytes of frames the queue holds (rounded up to a power of two); the thread
  // writes to the TAP's queue `tap_queue`.
  TransmitQueue(TapDevice& tap, size_t capacity, size_t tap_queue = 0);
  TransmitQueue(const TransmitQueue&) = delete;
  TransmitQueue& operator=(const TransmitQueue&) = delete;
  // Writes what is queued, then stops the thread.
  ~TransmitQueue();

  // Queues head and body as one write (head: a virtio-net header, or empty). Waits while the
  // queue is full. Frames larger than the queue's capacity are refused (false).
  bool push(ByteView head, ByteView body);
  // Returns when every frame pushed so far has been written (or failed).
  void flush();
  // Whether every frame pushed so far has been written: a write on the producer's thread
  // now keeps the order of frames.
  bool idle() const {
    return tail_.load(std::memory_order_acquire) == head_.load(std::memory_order_relaxed);
  }

  TransmitQueueStats stats() const;
  std::string last_error() const;

 private:
  bool push_record(ByteView head, ByteView body, bool stopping);
  void run();
  void write_one(const uint8_t* record, uint32_t size);

  TapDevice& tap_;
  size_t tap_queue_;
  std::vector<uint8_t> ring_;
  uint32_t mask_;
  // Byte positions, free-running modulo 2^32: the producer advances head_, the consumer
  // tail_. Both are futex words: the consumer sleeps on head_, the producer on tail_.
  alignas(64) std::atomic<uint32_t> head_{0};
  alignas(64) std::atomic<uint32_t> tail_{0};
  std::atomic<bool> consumer_sleeping_{false};
  std::atomic<bool> producer_waiting_{false};
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> frames_sent_{0};
  std::atomic<uint64_t> send_drops_{0};
  std::atomic<uint64_t> send_errors_{0};
  mutable std::mutex error_mutex_;
  std::string last_error_;
  std::thread thread_;
};

// Which of `queues` queues the frame leaves by: a hash of its flow, the IPv4 addresses and TCP
// or UDP ports, so that a connection's segments keep their order; 0 for everything else (ARP,
// ICMP, fragments), which has no order to keep across flows. Linux makes the same choice for
// its own multi-queue devices by skb_get_hash() (netdev_pick_tx()); any hash that is the same
// for every segment of a connection will do here.
size_t flow_queue(ByteView frame, size_t queues);

// One TransmitQueue per queue of the TAP, each frame pushed to its flow's.
class TransmitQueues {
 public:
  // capacity: bytes each queue holds.
  TransmitQueues(TapDevice& tap, size_t capacity);

  size_t size() const { return queues_.size(); }
  TransmitQueue& operator[](size_t queue) { return *queues_[queue]; }
  size_t queue_of(ByteView frame) const { return flow_queue(frame, queues_.size()); }

  // Queues head and frame on the frame's flow's queue (head: a virtio-net header, or empty).
  bool push(ByteView head, ByteView frame) { return queues_[queue_of(frame)]->push(head, frame); }
  void flush();
  // The sums over the queues.
  TransmitQueueStats stats() const;
  // The last error any queue saw; empty when none did.
  std::string last_error() const;

 private:
  std::vector<std::unique_ptr<TransmitQueue>> queues_;
};

}  // namespace tapstack
