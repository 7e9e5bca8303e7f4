// The Internet checksum (RFC 1071), accumulated over several pieces.
#pragma once

#include <cstdint>

#include "stack/bytes.h"

namespace tapstack {

class InternetChecksum {
 public:
  // Adds bytes as if they followed what was added before (pieces of odd length are fine).
  void add(ByteView bytes);
  void add_u16(uint16_t value) { sum_ += value; }
  void add_u32(uint32_t value) { sum_ += (value >> 16) + (value & 0xffff); }
  // The one's complement of the folded sum, ready to store big-endian.
  uint16_t finish() const;

 private:
  uint64_t sum_ = 0;
  bool odd_ = false;  // the last piece ended in the middle of a 16-bit word
};

inline uint16_t internet_checksum(ByteView bytes) {
  InternetChecksum sum;
  sum.add(bytes);
  return sum.finish();
}

}  // namespace tapstack
