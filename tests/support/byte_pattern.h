// Test data that needs no storage: byte i of stream `seed` is a function of (seed, i), so a
// sender and a checker agree on 64 MiB without keeping it, and SHA-256 digests say whether
// what arrived is what was sent.
#pragma once

#include <openssl/evp.h>

#include <array>
#include <cstdint>
#include <string>
#include <utility>

#include "stack/bytes.h"
#include "stack/error.h"

namespace tapstack::testing {

using Digest = std::array<uint8_t, 32>;
std::string hex(const Digest& digest);

// SHA-256 through OpenSSL's EVP interface.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&& other) noexcept : context_(std::exchange(other.context_, nullptr)) {}
  Sha256& operator=(Sha256&&) = delete;
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(ByteView data);
  Digest finish();

 private:
  EVP_MD_CTX* context_;
};

// Fills out with bytes [offset, offset + out.size()) of stream seed.
void fill_pattern(uint64_t seed, uint64_t offset, MutableByteView out);
// The digest of the first size bytes of stream seed.
Digest pattern_digest(uint64_t seed, uint64_t size);
// Writes the first size bytes of stream seed to a new file at path.
Status write_pattern_file(const std::string& path, uint64_t seed, uint64_t size);

// What a file holds, as a size and a digest.
struct FileSummary {
  uint64_t size = 0;
  Digest digest{};
};
Result<FileSummary> summarize_file(const std::string& path);

}  // namespace tapstack::testing
