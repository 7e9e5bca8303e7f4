#include "stack/checksum.h"

namespace tapstack {

void InternetChecksum::add(ByteView bytes) {
  size_t i = 0;
  if (odd_ && !bytes.empty()) {
    sum_ += bytes[0];
    i = 1;
    odd_ = false;
  }
  // 32-bit words at a time: 2^16 is 1 modulo 0xffff, so the high half of each word adds like
  // a 16-bit word of its own (RFC 1071 §2(C), "parallel summation"); finish() folds. The
  // 64-bit sum cannot overflow for less than 2^32 words.
  uint64_t sum = 0;
  for (; i + 8 <= bytes.size(); i += 8) {
    sum += load_be32(&bytes[i]);
    sum += load_be32(&bytes[i + 4]);
  }
  for (; i + 1 < bytes.size(); i += 2) sum += load_be16(&bytes[i]);
  sum_ += sum;
  if (i < bytes.size()) {
    sum_ += uint32_t{bytes[i]} << 8;
    odd_ = true;
  }
}

uint16_t InternetChecksum::finish() const {
  uint64_t sum = sum_;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

}  // namespace tapstack
