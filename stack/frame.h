// Frame buffers: fixed-capacity storage that is allocated once and reused, so that the steady
// state moves frames without touching the heap.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "stack/bytes.h"

namespace tapstack {

// Largest Ethernet II frame the stack handles: a 9000-byte jumbo MTU plus the 14-byte header.
constexpr size_t kMaxFrameSize = 9014;
constexpr size_t kEthernetHeaderSize = 14;

// Storage for one frame of up to `capacity` bytes (the MTU plus the Ethernet header).
struct FrameBuffer {
  explicit FrameBuffer(size_t capacity = kMaxFrameSize) : bytes(capacity) {}
  std::vector<uint8_t> bytes;
  size_t size = 0;

  ByteView view() const { return {bytes.data(), size}; }
};

// A bounded FIFO of frames waiting to be taken by poll_transmit(); its buffers are allocated
// at construction and reused.
class FrameRing {
 public:
  FrameRing(size_t capacity, size_t frame_size) : frames_(capacity, FrameBuffer(frame_size)) {}

  bool full() const { return count_ == frames_.size(); }
  bool empty() const { return count_ == 0; }
  size_t size() const { return count_; }
  // The slot to fill; valid until push() or the next call. Only when !full().
  FrameBuffer& back_slot() { return frames_[(head_ + count_) % frames_.size()]; }
  void push() { ++count_; }
  FrameBuffer& front() { return frames_[head_]; }
  void pop() {
    head_ = (head_ + 1) % frames_.size();
    --count_;
  }

 private:
  std::vector<FrameBuffer> frames_;
  size_t head_ = 0;
  size_t count_ = 0;
};

}  // namespace tapstack
