// Segments the Linux kernel signed, stored as text (data/kernel_segments.txt):
//   # comment lines, the one before a packet saying what it is
//   key <hex>       the key for the packets that follow
//   packet <hex>    one IP packet (IPv4 or IPv6, carrying TCP) as lo carried it
// and reading the addresses and TCP segment out of such a packet.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "md5opt/error.h"
#include "md5opt/signer.h"

namespace tapstack::md5test {

struct KernelSegment {
  std::string what;  // the comment line just before the packet
  std::vector<std::uint8_t> key;
  std::vector<std::uint8_t> ip_packet;
};

md5opt::Result<std::vector<KernelSegment>> parse_vector_file(std::string_view text);
std::string format_segment(const KernelSegment& segment);  // comment and packet lines

// The addresses and TCP segment of an IPv4 or IPv6 packet carrying TCP (no IPv6 extension
// headers); nullopt for anything else. The segment points into ip_packet.
std::optional<md5opt::TcpSegment> tcp_segment_of(md5opt::ByteView ip_packet);

// "IPv4 198.18.0.2:40179 > 198.18.0.1:179 SYN ACK, 0 payload bytes"
std::string describe(const md5opt::TcpSegment& segment);
// The flags byte of the TCP header.
inline constexpr std::uint8_t kFin = 0x01, kSyn = 0x02, kPsh = 0x08, kAck = 0x10;
inline std::uint8_t tcp_flags(const md5opt::TcpSegment& segment) {
  return segment.header[13];
}

std::optional<std::string> read_file(const std::string& path);

}  // namespace tapstack::md5test
