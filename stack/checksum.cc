#include "stack/checksum.h"

namespace tapstack {

void InternetChecksum::add(ByteView bytes) {
  size_t i = 0;
  if (odd_ && !bytes.empty()) {
    sum_ += bytes[0];
    i = 1;
    odd_ = false;
  }
  for (; i + 1 < bytes.size(); i += 2) sum_ += load_be16(&bytes[i]);
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
