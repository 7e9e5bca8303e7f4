// A byte FIFO for socket buffers: grows on demand up to a limit, and gives its memory back
// when its owner says so (trim(): the TCP layer does once a buffer has stayed empty for a
// while), so that an idle connection costs next to nothing and a busy one does not allocate,
// fault in and copy its buffer again every time the application drains it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>

#include "stack/bytes.h"

namespace tapstack {

class ByteRing {
 public:
  explicit ByteRing(size_t limit = 0) : limit_(narrow(limit)) {}

  size_t size() const { return size_; }
  size_t limit() const { return limit_; }
  size_t free() const { return limit_ - size_; }
  bool empty() const { return size_ == 0; }
  void set_limit(size_t limit) { limit_ = std::max(narrow(limit), size_); }
  size_t allocated() const { return capacity_; }

  // Appends as much of data as fits under the limit; returns how much.
  size_t append(ByteView data) {
    const size_t n = std::min(data.size(), free());
    if (n == 0) return 0;
    reserve(size_ + n);
    const size_t tail = (head_ + size_) % capacity_;
    const size_t first = std::min(n, capacity_ - tail);
    std::copy_n(data.data(), first, buffer_.get() + tail);
    std::copy_n(data.data() + first, n - first, buffer_.get());
    size_ += static_cast<uint32_t>(n);
    return n;
  }
  // Copies out.size() bytes starting `offset` bytes from the front; offset + out.size() <= size().
  void copy_out(size_t offset, MutableByteView out) const {
    if (out.empty()) return;
    const size_t start = (head_ + offset) % capacity_;
    const size_t first = std::min(out.size(), capacity_ - start);
    std::copy_n(buffer_.get() + start, first, out.data());
    std::copy_n(buffer_.get(), out.size() - first, out.data() + first);
  }
  // Drops n bytes from the front.
  void consume(size_t n) {
    n = std::min<size_t>(n, size_);
    size_ -= static_cast<uint32_t>(n);
    head_ = size_ == 0 ? 0 : static_cast<uint32_t>((head_ + n) % capacity_);
  }
  // Whether trim() would give memory back: empty, and holding some.
  bool trimmable() const { return size_ == 0 && capacity_ > 0; }
  // Gives the memory back when trimmable(); returns how many bytes that was.
  size_t trim() {
    if (!trimmable()) return 0;
    const size_t freed = capacity_;
    buffer_.reset();
    capacity_ = 0;
    return freed;
  }

 private:
  // Memory is not zeroed: every byte is written by append() before it is read.
  void reserve(size_t needed) {
    if (needed <= capacity_) return;
    size_t capacity = std::max<size_t>(size_t{capacity_} * 2, 4096);
    capacity = std::min(std::max(capacity, needed), std::max<size_t>(limit_, needed));
    std::unique_ptr<uint8_t[]> bigger(new uint8_t[capacity]);
    if (size_ > 0) copy_out(0, {bigger.get(), size_});
    buffer_ = std::move(bigger);
    capacity_ = static_cast<uint32_t>(capacity);
    head_ = 0;
  }
  // Socket buffers are bounded by SocketOptions' 32-bit sizes: 32-bit bookkeeping makes the
  // ring 24 bytes instead of 40, in every connection.
  static uint32_t narrow(size_t n) {
    return static_cast<uint32_t>(std::min<size_t>(n, UINT32_MAX));
  }

  std::unique_ptr<uint8_t[]> buffer_;
  uint32_t capacity_ = 0;
  uint32_t head_ = 0;
  uint32_t size_ = 0;
  uint32_t limit_;
};

}  // namespace tapstack
