// md5opt (RFC 2385) on arbitrary segments and keys: the option walk, the split at the data
// offset, the inbound verdict, and a sign-then-verify round trip that must hold for any
// segment that has a well-formed MD5 option.
#include <algorithm>

#include "md5opt/option.h"
#include "md5opt/verdict.h"
#include "stack/tcp/tcp.h"
#include "tests/fuzz/records.h"
#include "tests/fuzz/targets.h"

namespace tapstack::fuzz {
namespace {

using md5opt::Md5Verdict;

const md5opt::IpAddress kMd5Source = IpAddress(Ipv4Address::from_octets(198, 18, 0, 1));
const md5opt::IpAddress kMd5Destination = IpAddress(Ipv4Address::from_octets(198, 18, 0, 2));

std::optional<size_t> expected_header_size(ByteView tcp) {
  if (tcp.size() < 20) return std::nullopt;
  const size_t size = (tcp[12] >> 4) * 4u;
  if (size < 20 || size > tcp.size()) return std::nullopt;
  return size;
}

// The verdict follows from whether there is a key and whether there is an option.
void check_verdict(Md5Verdict verdict, bool key, bool option, Violations& v) {
  const bool fits = key ? (option ? verdict == Md5Verdict::Ok || verdict == Md5Verdict::Failure
                                  : verdict == Md5Verdict::NotFound)
                        : verdict == (option ? Md5Verdict::Unexpected : Md5Verdict::Unsigned);
  v.check(fits, "verdict {} with key {} and option {}", md5opt::to_string(verdict), key, option);
}

// Signed with the key, the segment verifies; changed in a byte the digest covers, it fails.
void check_round_trip(Bytes segment, size_t digest_at, ByteView key, Violations& v) {
  md5opt::Md5Signer signer;
  md5opt::KeyTable keys;
  (void)keys.add(kMd5Source, key);
  const auto signed_ok = signer.sign_in_place(kMd5Source, kMd5Destination, segment, digest_at, key);
  if (!signed_ok) return v.add(fmt::format("sign_in_place: {}", signed_ok.error().message));
  const auto verdict = [&] {
    const auto split = md5opt::split_segment(kMd5Source, kMd5Destination, segment);
    return md5opt::inbound_verdict(signer, keys, *split);
  };
  v.check(verdict() == Md5Verdict::Ok, "a segment just signed does not verify: {}",
          md5opt::to_string(verdict()));
  const size_t header_size = *expected_header_size(segment);
  const size_t covered = segment.size() > header_size ? segment.size() - 1 : 4;  // payload or seq
  segment[covered] ^= 0x01;
  v.check(verdict() == Md5Verdict::Failure, "a signed segment changed at byte {} still gives {}",
          covered, md5opt::to_string(verdict()));
}

// An option written into a 40-byte header is found where write_md5_option() said.
void check_write(ByteView segment, Violations& v) {
  Bytes header(40, tcp_option::kNop);
  std::copy_n(segment.begin(), std::min<size_t>(segment.size(), 20), header.begin());
  header[12] = 10 << 4;
  const auto written = md5opt::write_md5_option(header, 20);
  const auto found = md5opt::find_md5_option(header);
  v.check(written == std::optional<size_t>(24) && found == written,
          "write_md5_option gave {}, find_md5_option {}", written.value_or(0), found.value_or(0));
}

}  // namespace

Violations fuzz_md5_option(ByteView input) {
  Violations v;
  if (input.size() < 2) return v;
  const size_t key_size = std::min<size_t>(input[1] % (md5opt::kMaxKeySize + 1), input.size() - 2);
  const ByteView key = input.subspan(2, key_size);
  const Bytes segment(input.begin() + 2 + static_cast<ptrdiff_t>(key_size), input.end());

  const auto header_size = md5opt::tcp_header_size(segment);
  v.check(header_size == expected_header_size(segment), "tcp_header_size {} for data offset {}",
          header_size.value_or(0), segment.size() >= 20 ? segment[12] >> 4 : -1);
  const auto digest_at = md5opt::find_md5_option(segment);
  if (digest_at) {
    v.check(header_size && *digest_at >= 22 && *digest_at + 16 <= *header_size &&
                segment[*digest_at - 2] == 19 && segment[*digest_at - 1] == 18,
            "find_md5_option: digest at {} is not inside a kind 19, length 18 option", *digest_at);
  }
  const auto split = md5opt::split_segment(kMd5Source, kMd5Destination, segment);
  v.check(split.has_value() == header_size.has_value(), "split_segment and tcp_header_size differ");
  if (!split) return v;
  v.check(split->header.size() == *header_size &&
              split->header.size() + split->payload.size() == segment.size(),
          "split_segment: {} + {} bytes of {}", split->header.size(), split->payload.size(),
          segment.size());
  md5opt::Md5Signer signer;
  md5opt::KeyTable keys;
  if (!key.empty()) (void)keys.add(kMd5Source, key);
  check_verdict(md5opt::inbound_verdict(signer, keys, *split), !key.empty(), digest_at.has_value(),
                v);
  if (!key.empty() && digest_at) check_round_trip(segment, *digest_at, key, v);
  check_write(segment, v);
  const ByteView half = key.first(key.size() / 2);
  v.check(
      md5opt::constant_time_equal(half, key.subspan(half.size(), half.size())) ==
          std::equal(half.begin(), half.end(), key.begin() + static_cast<ptrdiff_t>(half.size())),
      "constant_time_equal disagrees with std::equal");
  return v;
}

}  // namespace tapstack::fuzz
