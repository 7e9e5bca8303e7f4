#include "stack/tcp/header.h"

#include <string>

#include "stack/checksum.h"
#include "stack/ipv4.h"

namespace tapstack {

std::optional<DropReason> parse_tcp(ByteView segment, const IpAddress& source,
                                    const IpAddress& destination, TcpSegment& out,
                                    bool verify_checksum) {
  if (segment.size() < kTcpMinHeaderSize) return DropReason::TcpTruncated;
  const uint8_t* p = segment.data();
  const size_t header_length = (p[12] >> 4) * 4u;
  if (header_length < kTcpMinHeaderSize || header_length > segment.size()) {
    return DropReason::TcpBadHeaderLength;
  }
  if (verify_checksum && tcp_checksum(segment, source, destination) != 0) {
    return DropReason::TcpBadChecksum;
  }
  out.source_address = source;
  out.destination_address = destination;
  out.source_port = load_be16(p);
  out.destination_port = load_be16(p + 2);
  out.seq = Seq(load_be32(p + 4));
  out.ack = Seq(load_be32(p + 8));
  out.flags = p[13] & 0x3f;
  out.window = load_be16(p + 14);
  out.header_length = static_cast<uint8_t>(header_length);
  out.header = segment.first(header_length);
  out.payload = segment.subspan(header_length);
  out.options = TcpOptions{};
  parse_tcp_options(out.header.subspan(kTcpMinHeaderSize), out.has(tcp_flags::kSyn), out.options);
  return std::nullopt;
}

// Linux: tcp_parse_options()
void parse_tcp_options(ByteView options, bool syn, TcpOptions& out) {
  size_t i = 0;
  while (i < options.size()) {
    const uint8_t kind = options[i];
    if (kind == tcp_option::kEnd) return;
    if (kind == tcp_option::kNop) {
      ++i;
      continue;
    }
    if (i + 1 >= options.size()) return;
    const uint8_t size = options[i + 1];
    // A length below 2 would never advance ("silly options"); beyond the header is a lie.
    if (size < 2 || size > options.size() - i) return;
    const uint8_t* value = options.data() + i + 2;
    switch (kind) {
      case tcp_option::kMss:
        if (size == 4 && syn) out.mss = load_be16(value);
        break;
      case tcp_option::kWindowScale:
        if (size == 3 && syn) out.window_scale = value[0];
        break;
      case tcp_option::kSackPermitted:
        if (size == 2 && syn) out.sack_permitted = true;
        break;
      case tcp_option::kTimestamps:
        if (size == 10) {
          out.ts_value = load_be32(value);
          out.ts_echo = load_be32(value + 4);
        }
        break;
      case tcp_option::kSack:
        if (size >= 10 && (size - 2) % 8 == 0) {
          out.sack_count = 0;
          for (size_t b = 0; b < (size - 2u) / 8 && b < out.sack.size(); ++b) {
            out.sack[b] = {Seq(load_be32(value + b * 8)), Seq(load_be32(value + b * 8 + 4))};
            ++out.sack_count;
          }
        }
        break;
      case tcp_option::kMd5:
        if (size == 18) out.md5_offset = static_cast<uint8_t>(kTcpMinHeaderSize + i);
        break;
      default:
        break;
    }
    i += size;
  }
}

namespace {

// The addresses of any other pair (IPv6, or mixed): byte by byte. Out of line, so that the
// IPv4 case below inlines into each checksum.
[[gnu::noinline]] void add_addresses(InternetChecksum& sum, const IpAddress& source,
                                     const IpAddress& destination) {
  sum.add(source.bytes());
  sum.add(destination.bytes());
}

// Both pseudo-headers sum alike: the two addresses, the protocol, and the length (16 bits in
// IPv4's, 32 in IPv6's, whose upper half is zero for any segment an IP datagram holds).
[[gnu::always_inline]] inline void add_pseudo_header(InternetChecksum& sum, size_t length,
                                                     const IpAddress& source,
                                                     const IpAddress& destination) {
  if (source.is_ipv4() && destination.is_ipv4()) {  // the common case: two words
    sum.add_u32(load_be32(source.bytes().data()));
    sum.add_u32(load_be32(destination.bytes().data()));
  } else {
    add_addresses(sum, source, destination);
  }
  sum.add_u16(kProtocolTcp);
  sum.add_u32(static_cast<uint32_t>(length));
}

}  // namespace

uint16_t tcp_checksum(ByteView segment, const IpAddress& source, const IpAddress& destination) {
  InternetChecksum sum;
  add_pseudo_header(sum, segment.size(), source, destination);
  sum.add(segment);
  return sum.finish();
}

uint16_t tcp_pseudo_header_sum(size_t length, const IpAddress& source,
                               const IpAddress& destination) {
  InternetChecksum sum;
  add_pseudo_header(sum, length, source, destination);
  return static_cast<uint16_t>(~sum.finish());
}

std::string tcp_flags_text(uint8_t flags) {
  std::string text;
  if (flags & tcp_flags::kSyn) text += 'S';
  if (flags & tcp_flags::kFin) text += 'F';
  if (flags & tcp_flags::kRst) text += 'R';
  if (flags & tcp_flags::kPsh) text += 'P';
  if (flags & tcp_flags::kUrg) text += 'U';
  if (flags & tcp_flags::kAck) text += '.';
  return text.empty() ? "none" : text;
}

}  // namespace tapstack
