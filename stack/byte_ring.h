// A byte FIFO for socket buffers: grows on demand up to a limit and gives its memory back
// when it empties, so that an idle connection costs next to nothing.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "stack/bytes.h"

namespace tapstack {

class ByteRing {
 public:
  explicit ByteRing(size_t limit = 0) : limit_(limit) {}

  size_t size() const { return size_; }
  size_t limit() const { return limit_; }
  size_t free() const { return limit_ - size_; }
  bool empty() const { return size_ == 0; }
  void set_limit(size_t limit) { limit_ = std::max(limit, size_); }
  size_t allocated() const { return buffer_.capacity(); }

  // Appends as much of data as fits under the limit; returns how much.
  size_t append(ByteView data) {
    const size_t n = std::min(data.size(), free());
    if (n == 0) return 0;
    reserve(size_ + n);
    const size_t tail = (head_ + size_) % buffer_.size();
    const size_t first = std::min(n, buffer_.size() - tail);
    std::copy_n(data.data(), first, buffer_.data() + tail);
    std::copy_n(data.data() + first, n - first, buffer_.data());
    size_ += n;
    return n;
  }
  // Copies out.size() bytes starting `offset` bytes from the front; offset + out.size() <= size().
  void copy_out(size_t offset, MutableByteView out) const {
    if (out.empty()) return;
    const size_t start = (head_ + offset) % buffer_.size();
    const size_t first = std::min(out.size(), buffer_.size() - start);
    std::copy_n(buffer_.data() + start, first, out.data());
    std::copy_n(buffer_.data(), out.size() - first, out.data() + first);
  }
  // Drops n bytes from the front.
  void consume(size_t n) {
    n = std::min(n, size_);
    size_ -= n;
    head_ = size_ == 0 ? 0 : (head_ + n) % buffer_.size();
    if (size_ == 0 && buffer_.size() > kKeepWhenEmpty) {
      std::vector<uint8_t>().swap(buffer_);
    }
  }

 private:
  static constexpr size_t kKeepWhenEmpty = 16 * 1024;

  void reserve(size_t needed) {
    if (needed <= buffer_.size()) return;
    size_t capacity = std::max<size_t>(buffer_.size() * 2, 4096);
    capacity = std::min(std::max(capacity, needed), std::max(limit_, needed));
    std::vector<uint8_t> bigger(capacity);
    if (size_ > 0) copy_out(0, {bigger.data(), size_});
    buffer_.swap(bigger);
    head_ = 0;
  }

  std::vector<uint8_t> buffer_;
  size_t head_ = 0;
  size_t size_ = 0;
  size_t limit_;
};

}  // namespace tapstack
