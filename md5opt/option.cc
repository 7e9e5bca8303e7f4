// RFC 2385 §3.0: the MD5 signature option, parsed and written; the option list as RFC 9293
// §3.1 lays it out.
#include "md5opt/option.h"

#include <algorithm>

namespace tapstack::md5opt {

std::optional<std::size_t> tcp_header_size(ByteView tcp) {
  if (tcp.size() < kTcpFixedHeaderSize) return std::nullopt;
  const std::size_t size = std::size_t{tcp[12]} >> 4 << 2;  // data offset, in 32-bit words
  if (size < kTcpFixedHeaderSize || size > tcp.size()) return std::nullopt;
  return size;
}

// Linux: tcp_parse_md5sig_option()
std::optional<std::size_t> find_md5_option(ByteView tcp) {
  const auto header_size = tcp_header_size(tcp);
  if (!header_size) return std::nullopt;
  std::size_t at = kTcpFixedHeaderSize;
  // Fewer than 18 bytes left cannot hold the option: stop there, as Linux does.
  while (*header_size - at >= kMd5OptionLength) {
    const std::uint8_t kind = tcp[at];
    if (kind == kOptionEnd) return std::nullopt;
    if (kind == kOptionNop) {
      ++at;
      continue;
    }
    const std::size_t length = tcp[at + 1];
    // A length below 2 would never advance; one past the header reads what is not options.
    if (length < 2 || length > *header_size - at) return std::nullopt;
    if (kind == kOptionMd5) {
      if (length != kMd5OptionLength) return std::nullopt;
      return at + 2;
    }
    at += length;
  }
  return std::nullopt;
}

// Linux: tcp_options_write()
std::optional<std::size_t> write_md5_option(MutableByteView tcp, std::size_t option_offset) {
  if (option_offset > tcp.size() || tcp.size() - option_offset < kMd5OptionSpace) {
    return std::nullopt;
  }
  std::uint8_t* option = tcp.data() + option_offset;
  option[0] = kOptionNop;
  option[1] = kOptionNop;
  option[2] = kOptionMd5;
  option[3] = kMd5OptionLength;
  std::fill(option + 4, option + kMd5OptionSpace, std::uint8_t{0});
  return option_offset + 4;
}

}  // namespace tapstack::md5opt
