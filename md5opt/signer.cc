// RFC 2385 §2.0: the digest, and signing a segment in place. The pseudo-headers are RFC 9293
// §3.1 (IPv4) and RFC 8200 §8.1 (IPv6).
#include "md5opt/signer.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <limits>

#include <fmt/format.h>

#include "md5opt/key_table.h"
#include "md5opt/option.h"

namespace tapstack::md5opt {
namespace {

constexpr std::uint8_t kProtocolTcp = 6;
constexpr std::size_t kChecksumOffset = 16;
// The largest pseudo-header (IPv6: 40 bytes), the fixed TCP header and, for a segment without
// payload, the key: a pure ACK is hashed in one update, like plain MD5 of one buffer.
using HeaderScratch = std::array<std::uint8_t, 40 + kTcpFixedHeaderSize + kMaxKeySize>;

// RFC 9293 §3.1: source, destination, a zero byte, protocol 6, TCP length (16 bits).
std::size_t write_ipv4_pseudo_header(std::uint8_t* out, const TcpSegment& segment,
                                     std::size_t tcp_length) {
  std::copy_n(segment.source.bytes().data(), 4, out);
  std::copy_n(segment.destination.bytes().data(), 4, out + 4);
  out[8] = 0;
  out[9] = kProtocolTcp;
  store_be16(out + 10, static_cast<std::uint16_t>(tcp_length));
  return 12;
}

// RFC 8200 §8.1: source, destination, TCP length (32 bits), three zero bytes, next header 6.
std::size_t write_ipv6_pseudo_header(std::uint8_t* out, const TcpSegment& segment,
                                     std::size_t tcp_length) {
  std::copy_n(segment.source.bytes().data(), 16, out);
  std::copy_n(segment.destination.bytes().data(), 16, out + 16);
  store_be32(out + 32, static_cast<std::uint32_t>(tcp_length));
  out[36] = out[37] = out[38] = 0;
  out[39] = kProtocolTcp;
  return 40;
}

// The pseudo-header followed by the fixed 20 header bytes with the checksum zeroed.
// Linux: tcp_v4_md5_hash_headers(), tcp_v6_md5_hash_headers()
std::size_t write_hashed_headers(HeaderScratch& out, const TcpSegment& segment) {
  const std::size_t tcp_length = segment.header.size() + segment.payload.size();
  const std::size_t pseudo_header_size =
      segment.source.is_ipv4() ? write_ipv4_pseudo_header(out.data(), segment, tcp_length)
                               : write_ipv6_pseudo_header(out.data(), segment, tcp_length);
  std::uint8_t* header = out.data() + pseudo_header_size;
  std::copy_n(segment.header.begin(), kTcpFixedHeaderSize, header);
  header[kChecksumOffset] = header[kChecksumOffset + 1] = 0;
  return pseudo_header_size + kTcpFixedHeaderSize;
}

std::optional<Error> check_segment(const TcpSegment& segment) {
  if (segment.source.family() != segment.destination.family()) {
    return Error{EINVAL, fmt::format("the addresses {} and {} are of different families",
                                     segment.source.to_string(), segment.destination.to_string())};
  }
  if (segment.header.size() < kTcpFixedHeaderSize) {
    return Error{EINVAL,
                 fmt::format("a TCP header has 20 bytes or more, not {}", segment.header.size())};
  }
  const std::size_t tcp_length = segment.header.size() + segment.payload.size();
  if (segment.source.is_ipv4() && tcp_length > std::numeric_limits<std::uint16_t>::max()) {
    return Error{EMSGSIZE, fmt::format("{} bytes do not fit an IPv4 TCP length", tcp_length)};
  }
  return std::nullopt;
}

}  // namespace

std::optional<TcpSegment> split_segment(const IpAddress& source, const IpAddress& destination,
                                        ByteView tcp) {
  const auto header_size = tcp_header_size(tcp);
  if (!header_size) return std::nullopt;
  return TcpSegment{source, destination, tcp.first(*header_size), tcp.subspan(*header_size)};
}

// Linux: tcp_v4_md5_hash_skb(), tcp_v6_md5_hash_skb()
Result<Digest> Md5Signer::digest(const TcpSegment& segment, ByteView key) {
  if (auto error = check_segment(segment)) return std::move(*error);
  HeaderScratch scratch;
  const std::size_t headers = write_hashed_headers(scratch, segment);
  md5_->begin();
  if (segment.payload.empty() && key.size() <= kMaxKeySize) {
    // No payload (a SYN, a pure ACK): the key goes after the headers, one update for all.
    std::copy(key.begin(), key.end(), scratch.begin() + static_cast<std::ptrdiff_t>(headers));
    md5_->update(ByteView(scratch.data(), headers + key.size()));
  } else {
    md5_->update(ByteView(scratch.data(), headers));
    md5_->update(segment.payload);  // Linux: tcp_md5_hash_skb_data()
    md5_->update(key);              // Linux: tcp_md5_hash_key()
  }
  if (auto digest = md5_->finish()) return *digest;
  return Error{EIO, fmt::format("{} failed to compute an MD5 digest", md5_->library())};
}

Status Md5Signer::sign_in_place(const IpAddress& source, const IpAddress& destination,
                                MutableByteView tcp, std::size_t digest_offset, ByteView key) {
  const auto segment = split_segment(source, destination, tcp);
  if (!segment) return Error{EINVAL, "the TCP data offset does not fit the segment"};
  if (digest_offset < kTcpFixedHeaderSize || digest_offset > segment->header.size() ||
      segment->header.size() - digest_offset < kDigestSize) {
    return Error{EINVAL, fmt::format("the digest at {} is not inside the {}-byte header's options",
                                     digest_offset, segment->header.size())};
  }
  auto digest = this->digest(*segment, key);
  if (!digest) return digest.error();
  std::copy(digest->begin(), digest->end(),
            tcp.begin() + static_cast<std::ptrdiff_t>(digest_offset));
  return Ok{};
}

}  // namespace tapstack::md5opt
