#include "tests/md5/vector_file.h"

#include <cerrno>
#include <cstdio>
#include <memory>
#include <utility>

#include <fmt/format.h>

#include "md5opt/option.h"
#include "tests/md5/hex.h"

namespace tapstack::md5test {
namespace {

using md5opt::ByteView;
using md5opt::Error;
using md5opt::IpAddress;

std::uint16_t load_be16(const std::uint8_t* p) {
  return static_cast<std::uint16_t>(p[0] << 8 | p[1]);
}

std::optional<md5opt::TcpSegment> ipv4_segment(ByteView packet) {
  const std::size_t header_size = std::size_t{packet[0] & 0x0fu} * 4;
  const std::size_t total = load_be16(&packet[2]);
  if (header_size < 20 || total < header_size || total > packet.size() || packet[9] != 6) {
    return std::nullopt;
  }
  return md5opt::split_segment(IpAddress::ipv4(packet.subspan<12, 4>()),
                               IpAddress::ipv4(packet.subspan<16, 4>()),
                               packet.subspan(header_size, total - header_size));
}

std::optional<md5opt::TcpSegment> ipv6_segment(ByteView packet) {
  if (packet.size() < 40) return std::nullopt;
  const std::size_t payload = load_be16(&packet[4]);
  if (40 + payload > packet.size() || packet[6] != 6) return std::nullopt;
  return md5opt::split_segment(IpAddress::ipv6(packet.subspan<8, 16>()),
                               IpAddress::ipv6(packet.subspan<24, 16>()),
                               packet.subspan(40, payload));
}

std::string flag_names(std::uint8_t flags) {
  static constexpr std::pair<std::uint8_t, std::string_view> kNames[] = {
      {0x02, "SYN"}, {0x01, "FIN"}, {0x04, "RST"}, {0x08, "PSH"}, {0x10, "ACK"}, {0x20, "URG"}};
  std::string names;
  for (const auto& [bit, name] : kNames) {
    if (flags & bit) names += names.empty() ? std::string(name) : fmt::format(" {}", name);
  }
  return names;
}

}  // namespace

md5opt::Result<std::vector<KernelSegment>> parse_vector_file(std::string_view text) {
  std::vector<KernelSegment> segments;
  KernelSegment next;
  int line_number = 0;
  while (!text.empty()) {
    const std::size_t end = text.find('\n');
    const std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
    ++line_number;
    if (line.empty()) continue;
    if (line.starts_with('#')) {
      next.what = std::string(line.substr(line.starts_with("# ") ? 2 : 1));
      continue;
    }
    const bool is_key = line.starts_with("key ");
    const bool is_packet = line.starts_with("packet ");
    const auto bytes = parse_hex(line.substr(line.find(' ') + 1));
    if ((!is_key && !is_packet) || !bytes) {
      return Error{EINVAL, fmt::format("line {}: not a comment, key or packet line", line_number)};
    }
    if (is_key) {
      next.key = *bytes;
    } else {
      next.ip_packet = *bytes;
      segments.push_back(next);
    }
  }
  return segments;
}

std::string format_segment(const KernelSegment& segment) {
  return fmt::format("# {}\npacket {}\n", segment.what, to_hex(segment.ip_packet));
}

std::optional<md5opt::TcpSegment> tcp_segment_of(ByteView ip_packet) {
  if (ip_packet.empty()) return std::nullopt;
  if (ip_packet[0] >> 4 == 4 && ip_packet.size() >= 20) return ipv4_segment(ip_packet);
  if (ip_packet[0] >> 4 == 6) return ipv6_segment(ip_packet);
  return std::nullopt;
}

std::string describe(const md5opt::TcpSegment& segment) {
  const auto endpoint = [&](const IpAddress& address, std::size_t port_offset) {
    const std::uint16_t port = load_be16(&segment.header[port_offset]);
    if (address.is_ipv4()) return fmt::format("{}:{}", address.to_string(), port);
    return fmt::format("[{}]:{}", address.to_string(), port);
  };
  return fmt::format("{} {} > {} {}, {} payload bytes", segment.source.is_ipv4() ? "IPv4" : "IPv6",
                     endpoint(segment.source, 0), endpoint(segment.destination, 2),
                     flag_names(tcp_flags(segment)), segment.payload.size());
}

std::optional<std::string> read_file(const std::string& path) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                       &std::fclose);
  if (!file) return std::nullopt;
  std::string text;
  char buffer[4096];
  while (const std::size_t n = std::fread(buffer, 1, sizeof buffer, file.get())) {
    text.append(buffer, n);
  }
  return text;
}

}  // namespace tapstack::md5test
