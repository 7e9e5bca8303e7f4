// TCP header and options: parsing (RFC 9293 §3.1, RFC 7323, RFC 2018, RFC 2385's option
// location) and writing, plus the checksum over the IPv4 pseudo-header.
#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include "stack/address.h"
#include "stack/bytes.h"
#include "stack/counters.h"
#include "stack/seq.h"

namespace tapstack {

constexpr size_t kTcpMinHeaderSize = 20;
constexpr size_t kTcpMaxHeaderSize = 60;

namespace tcp_flags {
constexpr uint8_t kFin = 0x01;
constexpr uint8_t kSyn = 0x02;
constexpr uint8_t kRst = 0x04;
constexpr uint8_t kPsh = 0x08;
constexpr uint8_t kAck = 0x10;
constexpr uint8_t kUrg = 0x20;
}  // namespace tcp_flags

namespace tcp_option {
constexpr uint8_t kEnd = 0;
constexpr uint8_t kNop = 1;
constexpr uint8_t kMss = 2;
constexpr uint8_t kWindowScale = 3;
constexpr uint8_t kSackPermitted = 4;
constexpr uint8_t kSack = 5;
constexpr uint8_t kTimestamps = 8;
constexpr uint8_t kMd5 = 19;
}  // namespace tcp_option

struct SackBlock {
  Seq left;
  Seq right;
};

// What the options of one segment say. Malformed options end the walk, as in Linux's
// tcp_parse_options(): what was parsed before them stands.
struct TcpOptions {
  std::optional<uint16_t> mss;
  std::optional<uint8_t> window_scale;
  bool sack_permitted = false;
  std::optional<uint32_t> ts_value;
  uint32_t ts_echo = 0;
  uint8_t sack_count = 0;
  std::array<SackBlock, 4> sack{};
  // Where an MD5 signature option (kind 19, length 18) starts in the header, if any.
  std::optional<uint8_t> md5_offset;
};

struct TcpSegment {
  // The addresses of the datagram that carried it (the pseudo-header's).
  IpAddress source_address;
  IpAddress destination_address;
  uint16_t source_port = 0;
  uint16_t destination_port = 0;
  Seq seq;
  Seq ack;
  uint8_t flags = 0;
  uint16_t window = 0;
  uint8_t header_length = kTcpMinHeaderSize;
  TcpOptions options;
  ByteView header;  // the whole header, options included
  ByteView payload;

  bool has(uint8_t flag) const { return (flags & flag) != 0; }
  // Sequence space the segment occupies: its data, plus one each for SYN and FIN.
  uint32_t length() const {
    return static_cast<uint32_t>(payload.size()) + (has(tcp_flags::kSyn) ? 1 : 0) +
           (has(tcp_flags::kFin) ? 1 : 0);
  }
};

// Header length and checksum checks, then the options. Linux: tcp_v4_rcv()'s header checks,
// tcp_parse_options()
std::optional<DropReason> parse_tcp(ByteView segment, const IpAddress& source,
                                    const IpAddress& destination, TcpSegment& out,
                                    bool verify_checksum = true);
void parse_tcp_options(ByteView options, bool syn, TcpOptions& out);

// The checksum of a whole segment (its checksum field included) with the pseudo-header of
// the addresses' family (RFC 9293 §3.1 for IPv4, RFC 8200 §8.1 for IPv6); 0 for a segment
// whose checksum is right.
uint16_t tcp_checksum(ByteView segment, const IpAddress& source, const IpAddress& destination);
// The pseudo-header's sum alone, not complemented: what the checksum field holds for a link
// that completes the checksum (checksum offload; Linux: ~tcp_v4_check(len, saddr, daddr, 0)).
uint16_t tcp_pseudo_header_sum(size_t length, const IpAddress& source,
                               const IpAddress& destination);

// Flags as tcpdump prints them: "S", "S.", "P.", "F.", "R", ...
std::string tcp_flags_text(uint8_t flags);

}  // namespace tapstack
