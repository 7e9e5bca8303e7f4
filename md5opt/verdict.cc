// RFC 2385 §2.0: checking the digest of a received segment, with Linux's three drop cases.
#include "md5opt/verdict.h"

#include <openssl/crypto.h>

#include "md5opt/option.h"

namespace tapstack::md5opt {

std::string_view to_string(Md5Verdict verdict) {
  switch (verdict) {
    case Md5Verdict::Unsigned:
      return "Unsigned";
    case Md5Verdict::Ok:
      return "Ok";
    case Md5Verdict::NotFound:
      return "NotFound";
    case Md5Verdict::Unexpected:
      return "Unexpected";
    case Md5Verdict::Failure:
      return "Failure";
  }
  return "?";
}

std::string_view nstat_counter(Md5Verdict verdict) {
  switch (verdict) {
    case Md5Verdict::NotFound:
      return "TcpExtTCPMD5NotFound";
    case Md5Verdict::Unexpected:
      return "TcpExtTCPMD5Unexpected";
    case Md5Verdict::Failure:
      return "TcpExtTCPMD5Failure";
    case Md5Verdict::Unsigned:
    case Md5Verdict::Ok:
      return {};
  }
  return {};
}

// Linux: the rest of tcp_inbound_md5_hash()
Md5Verdict verify_digest(Md5Signer& signer, const Md5Key& key, std::size_t digest_offset,
                         const TcpSegment& segment) {
  // An offset from elsewhere that does not lie in the header cannot be checked: drop.
  if (digest_offset > segment.header.size() ||
      segment.header.size() - digest_offset < kDigestSize) {
    return Md5Verdict::Failure;
  }
  const auto computed = signer.digest(segment, key.bytes());
  if (!computed) return Md5Verdict::Failure;
  const ByteView received = segment.header.subspan(digest_offset, kDigestSize);
  return constant_time_equal(received, *computed) ? Md5Verdict::Ok : Md5Verdict::Failure;
}

// Linux: tcp_inbound_md5_hash()
Md5Verdict inbound_verdict(Md5Signer& signer, const Md5Key* expected_key,
                           std::optional<std::size_t> digest_offset, const TcpSegment& segment) {
  if (const auto decided = verdict_without_digest(expected_key, digest_offset)) return *decided;
  return verify_digest(signer, *expected_key, *digest_offset, segment);
}

// Linux: tcp_v4_inbound_md5_hash()
Md5Verdict inbound_verdict(Md5Signer& signer, const KeyTable& keys, const TcpSegment& segment) {
  return inbound_verdict(signer, keys.lookup(segment.source), find_md5_option(segment.header),
                         segment);
}

bool constant_time_equal(ByteView a, ByteView b) {
  if (a.size() != b.size()) return false;  // the sizes are public: 16 and 16
  // OpenSSL's CRYPTO_memcmp is written so that no compiler can turn it into an early exit.
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace tapstack::md5opt
