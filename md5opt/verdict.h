// The inbound check of RFC 2385 §2.0: a receiver with a key for the sender computes the digest
// and compares; a segment that fails is dropped silently, and no reply is sent for it. Linux
// adds the two cases where only one side uses the option, and counts each drop:
//   key expected, no option  → NotFound    (TcpExtTCPMD5NotFound)
//   option, no key expected  → Unexpected  (TcpExtTCPMD5Unexpected)
//   wrong digest             → Failure     (TcpExtTCPMD5Failure)
// The check comes before any connection state is touched (RFC 2385 §2.0, §4.0).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "md5opt/bytes.h"
#include "md5opt/key_table.h"
#include "md5opt/signer.h"

namespace tapstack::md5opt {

enum class Md5Verdict : std::uint8_t {
  Unsigned,    // no key for the peer and no option: RFC 2385 is not in use; accept
  Ok,          // the digest is right; accept
  NotFound,    // a key for the peer but no option; drop
  Unexpected,  // an option but no key for the peer; drop
  Failure,     // the digest is wrong (or could not be computed); drop
};

constexpr bool accepted(Md5Verdict verdict) {
  return verdict == Md5Verdict::Unsigned || verdict == Md5Verdict::Ok;
}
// "Ok", "NotFound", ... for traces.
std::string_view to_string(Md5Verdict verdict);
// The nstat counter a drop counts under ("TcpExtTCPMD5NotFound", ...); empty when accepted.
std::string_view nstat_counter(Md5Verdict verdict);

// What the key and the option decide alone: Unsigned (neither), NotFound (a key, no option),
// Unexpected (an option, no key); nullopt when there are both and the digest decides
// (verify_digest). Costs nothing per unsigned segment, so a stack calls it first.
// Linux: the start of tcp_inbound_md5_hash()
constexpr std::optional<Md5Verdict> verdict_without_digest(
    const Md5Key* expected_key, std::optional<std::size_t> digest_offset) {
  if (!expected_key && !digest_offset) return Md5Verdict::Unsigned;
  if (!digest_offset) return Md5Verdict::NotFound;
  if (!expected_key) return Md5Verdict::Unexpected;
  return std::nullopt;
}

// Ok or Failure: the digest at digest_offset of the segment's header, checked under key.
// Linux: the rest of tcp_inbound_md5_hash()
Md5Verdict verify_digest(Md5Signer& signer, const Md5Key& key, std::size_t digest_offset,
                         const TcpSegment& segment);

// The verdict on a received segment, given the key looked up for its source (nullptr: none)
// and where find_md5_option() found the digest (nullopt: no option): the two above in turn.
// Linux: tcp_inbound_md5_hash()
Md5Verdict inbound_verdict(Md5Signer& signer, const Md5Key* expected_key,
                           std::optional<std::size_t> digest_offset, const TcpSegment& segment);

// The same, looking the key up by the segment's source and parsing the option itself.
// Linux: tcp_v4_inbound_md5_hash() (older kernels), tcp_v6_inbound_md5_hash()
Md5Verdict inbound_verdict(Md5Signer& signer, const KeyTable& keys, const TcpSegment& segment);

// True when a and b hold the same bytes, in a time that does not depend on where they differ,
// so that an attacker cannot learn a valid digest byte by byte from response timing.
bool constant_time_equal(ByteView a, ByteView b);

}  // namespace tapstack::md5opt
