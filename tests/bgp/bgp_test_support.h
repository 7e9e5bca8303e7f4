// Small vocabulary for the BGP unit tests: hex byte strings, messages built and decoded.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "bgp/message.h"

namespace tapstack::bgp::testing {

// "ffff 0013 04" → bytes; spaces are ignored.
inline std::vector<uint8_t> hex(std::string_view text) {
  std::vector<uint8_t> bytes;
  int high = -1;
  for (const char c : text) {
    if (c == ' ' || c == '\n') continue;
    const int nibble = c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
    if (high < 0) {
      high = nibble;
    } else {
      bytes.push_back(static_cast<uint8_t>(high << 4 | nibble));
      high = -1;
    }
  }
  return bytes;
}

inline const std::string kMarker = "ffffffffffffffffffffffffffffffff";

// A message of `type` with `body` (hex), its header's length computed.
inline std::vector<uint8_t> message(uint8_t type, std::string_view body) {
  std::vector<uint8_t> bytes = hex(kMarker);
  const std::vector<uint8_t> payload = hex(body);
  const size_t length = kHeaderSize + payload.size();
  bytes.push_back(static_cast<uint8_t>(length >> 8));
  bytes.push_back(static_cast<uint8_t>(length));
  bytes.push_back(type);
  bytes.insert(bytes.end(), payload.begin(), payload.end());
  return bytes;
}

// An UPDATE with no withdrawn routes, the attributes (hex) and NLRI (hex) given.
inline std::vector<uint8_t> update_message(std::string_view attributes, std::string_view nlri) {
  const size_t length = hex(attributes).size();
  const std::string body = fmt::format("0000{:04x}{}{}", length, attributes, nlri);
  return message(2, body);
}

inline constexpr uint32_t ip(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  return uint32_t{a} << 24 | uint32_t{b} << 16 | uint32_t{c} << 8 | d;
}

}  // namespace tapstack::bgp::testing
