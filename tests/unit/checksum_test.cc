// The Internet checksum (RFC 1071) against the plain 16-bit definition: every length, every
// split into pieces (odd ones included), and RFC 1071's own example.
#include <doctest/doctest.h>

#include <random>
#include <vector>

#include "stack/checksum.h"

namespace tapstack {
namespace {

// RFC 1071 §4.1, word by word.
uint16_t reference(const std::vector<uint8_t>& bytes) {
  uint32_t sum = 0;
  for (size_t i = 0; i < bytes.size(); i += 2) {
    sum += uint32_t{bytes[i]} << 8 | (i + 1 < bytes.size() ? bytes[i + 1] : 0);
    sum = (sum & 0xffff) + (sum >> 16);
  }
  return static_cast<uint16_t>(~sum);
}

TEST_CASE("RFC 1071 §3's example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2") {
  const std::vector<uint8_t> bytes = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  CHECK(internet_checksum(bytes) == static_cast<uint16_t>(~0xddf2));
}

TEST_CASE("every length up to 2 KiB, in one piece and split anywhere, equals the definition") {
  std::mt19937 random(1071);
  for (size_t length = 0; length <= 2048; ++length) {
    std::vector<uint8_t> bytes(length);
    for (auto& b : bytes) b = static_cast<uint8_t>(random());
    if (length % 7 == 0) std::fill(bytes.begin(), bytes.end(), 0xff);  // carries everywhere
    CAPTURE(length);
    const uint16_t expected = reference(bytes);
    CHECK(internet_checksum(bytes) == expected);
    const size_t cut1 = length == 0 ? 0 : random() % (length + 1);
    const size_t cut2 = cut1 + (length == cut1 ? 0 : random() % (length - cut1 + 1));
    InternetChecksum pieces;
    pieces.add(ByteView(bytes).first(cut1));
    pieces.add(ByteView(bytes).subspan(cut1, cut2 - cut1));
    pieces.add(ByteView(bytes).subspan(cut2));
    CHECK(pieces.finish() == expected);
  }
}

}  // namespace
}  // namespace tapstack
