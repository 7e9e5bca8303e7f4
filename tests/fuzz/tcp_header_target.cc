// The TCP header and option parser against what the bytes say (RFC 9293 §3.1, RFC 7323,
// RFC 2018, RFC 2385 §3.0), and against md5opt's own walk to the MD5 option.
#include <algorithm>

#include "md5opt/option.h"
#include "stack/tcp/header.h"
#include "tests/fuzz/records.h"
#include "tests/fuzz/targets.h"

namespace tapstack::fuzz {
namespace {

constexpr Ipv4Address kHeaderSource = Ipv4Address::from_octets(198, 18, 0, 1);
constexpr Ipv4Address kHeaderDestination = Ipv4Address::from_octets(198, 18, 0, 2);
constexpr uint8_t kFixChecksum = 0x01;
constexpr uint8_t kSynOptions = 0x02;
constexpr size_t kOptionSpace = kTcpMaxHeaderSize - kTcpMinHeaderSize;

std::string_view name(std::optional<DropReason> reason) {
  return reason ? drop_reason_name(*reason) : "accepted";
}

// Linux's tcp_v4_rcv() checks, in its order.
std::optional<DropReason> expected_reason(ByteView segment) {
  if (segment.size() < kTcpMinHeaderSize) return DropReason::TcpTruncated;
  const size_t header_size = (segment[12] >> 4) * 4u;
  if (header_size < kTcpMinHeaderSize || header_size > segment.size()) {
    return DropReason::TcpBadHeaderLength;
  }
  if (tcp_checksum(segment, kHeaderSource, kHeaderDestination) != 0)
    return DropReason::TcpBadChecksum;
  return std::nullopt;
}

void check_fields(ByteView s, const TcpSegment& seg, Violations& v) {
  const size_t header_size = (s[12] >> 4) * 4u;
  v.check(seg.source_port == load_be16(&s[0]) && seg.destination_port == load_be16(&s[2]),
          "ports {} > {} differ from the bytes", seg.source_port, seg.destination_port);
  v.check(seg.seq.value() == load_be32(&s[4]) && seg.ack.value() == load_be32(&s[8]),
          "seq {} ack {} differ from the bytes", seg.seq.value(), seg.ack.value());
  v.check(seg.flags == (s[13] & 0x3f), "flags {:#x} from byte {:#x}", seg.flags, s[13]);
  v.check(seg.window == load_be16(&s[14]), "window {} differs from the bytes", seg.window);
  v.check(seg.header_length == header_size && seg.header.size() == header_size &&
              seg.header.data() == s.data(),
          "header of {} bytes where the data offset says {}", seg.header.size(), header_size);
  v.check(
      seg.payload.data() == s.data() + header_size && seg.payload.size() == s.size() - header_size,
      "payload of {} bytes where {} follow the header", seg.payload.size(), s.size() - header_size);
}

// What the option walk found must be there in the option bytes, and allowed where it is.
void check_options(const TcpOptions& o, ByteView options, bool syn, Violations& v) {
  v.check(o.sack_count <= o.sack.size(), "{} SACK blocks", o.sack_count);
  v.check(syn || (!o.mss && !o.window_scale && !o.sack_permitted),
          "MSS, window scale or SACK-permitted taken from a segment without SYN");
  if (!o.md5_offset) return;
  const size_t at = *o.md5_offset - kTcpMinHeaderSize;
  v.check(*o.md5_offset >= kTcpMinHeaderSize && at + 18 <= options.size() &&
              options[at] == tcp_option::kMd5 && options[at + 1] == 18,
          "md5_offset {} does not point at a kind 19, length 18 option", *o.md5_offset);
}

// find_md5_option() walks like parse_tcp_options() up to the first MD5 option, so what it
// finds the option parser found as well (it may find a later one too).
void check_md5_location(ByteView header, const TcpOptions& o, Violations& v) {
  const auto at = md5opt::find_md5_option(header);
  if (!at) return;
  v.check(*at >= kTcpMinHeaderSize + 2 && *at + 16 <= header.size() && header[*at - 2] == 19 &&
              header[*at - 1] == 18,
          "find_md5_option: digest at {} is not inside a kind 19, length 18 option", *at);
  v.check(o.md5_offset.has_value(), "find_md5_option found a digest at {}, parse_tcp_options none",
          *at);
}

}  // namespace

Violations fuzz_tcp_header(ByteView input) {
  Violations v;
  if (input.empty()) return v;
  const uint8_t control = input[0];
  Bytes segment(input.begin() + 1, input.end());
  if ((control & kFixChecksum) && segment.size() >= kTcpMinHeaderSize) {
    store_be16(&segment[16], 0);
    store_be16(&segment[16], tcp_checksum(segment, kHeaderSource, kHeaderDestination));
  }
  TcpSegment seg;
  const auto reason = parse_tcp(segment, kHeaderSource, kHeaderDestination, seg);
  const auto expected = expected_reason(segment);
  v.check(reason == expected, "parse_tcp: {} where {} was expected", name(reason), name(expected));
  if (!reason && !expected) {
    check_fields(segment, seg, v);
    check_options(seg.options, seg.header.subspan(kTcpMinHeaderSize), seg.has(tcp_flags::kSyn), v);
    check_md5_location(seg.header, seg.options, v);
  }
  // The option parser alone, on the first bytes whatever they are (a header holds 40 at most).
  const ByteView raw = ByteView(segment).first(std::min(segment.size(), kOptionSpace));
  TcpOptions direct;
  parse_tcp_options(raw, (control & kSynOptions) != 0, direct);
  check_options(direct, raw, (control & kSynOptions) != 0, v);
  return v;
}

}  // namespace tapstack::fuzz
