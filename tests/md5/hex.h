// Hex text for test vectors: "c0a8 3814" ↔ bytes. Spaces are ignored.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "md5opt/bytes.h"

namespace tapstack::md5test {

// nullopt on an odd number of digits or a character that is neither a hex digit nor a space.
std::optional<std::vector<std::uint8_t>> parse_hex(std::string_view text);
// The same, for literals in tests: an empty vector on bad input (which the test then fails on).
std::vector<std::uint8_t> hex(std::string_view text);
std::string to_hex(md5opt::ByteView bytes);

}  // namespace tapstack::md5test
