// The MD5 primitive (RFC 1321) that RFC 2385 §2.0 builds on, as one reusable context:
// begin(), update() any number of times, finish(). It comes from a crypto library; this file
// names the interface, md5_openssl.cc and md5_nettle.cc implement it. OpenSSL is the default:
// measured faster per full-sized segment than nettle (tests/md5/md5_bench.cc).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include "md5opt/bytes.h"

namespace tapstack::md5opt {

inline constexpr std::size_t kDigestSize = 16;
using Digest = std::array<std::uint8_t, kDigestSize>;

// One MD5 computation at a time; the context is kept and reused, never allocated per segment
// (Linux keeps a per-CPU tcp_md5sig_pool for the same reason).
class Md5 {
 public:
  virtual ~Md5() = default;
  virtual std::string_view library() const = 0;  // "OpenSSL", "nettle"
  virtual void begin() = 0;
  virtual void update(ByteView bytes) = 0;
  // The digest of everything given since begin(); nullopt if the library failed on the way.
  virtual std::optional<Digest> finish() = 0;

  std::optional<Digest> digest_of(ByteView bytes) {
    begin();
    update(bytes);
    return finish();
  }
};

// OpenSSL's MD5 (libcrypto's MD5_CTX, reused: no allocation per digest).
std::unique_ptr<Md5> make_openssl_md5();

}  // namespace tapstack::md5opt
