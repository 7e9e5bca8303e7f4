#include "tests/support/byte_pattern.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include <fmt/format.h>

#include "tap/system_error.h"

namespace tapstack::testing {
namespace {

// SplitMix64 of the word's index: any word of any stream computed on its own.
uint64_t pattern_word(uint64_t seed, uint64_t index) {
  uint64_t z = seed * 0x9e3779b97f4a7c15ULL + index + 1;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

constexpr size_t kChunk = 1 << 20;

struct FileCloser {
  void operator()(std::FILE* file) const { std::fclose(file); }
};

}  // namespace

std::string hex(const Digest& digest) {
  return fmt::format("{:02x}", fmt::join(digest, ""));
}

Sha256::Sha256() : context_(EVP_MD_CTX_new()) {
  EVP_DigestInit_ex(context_, EVP_sha256(), nullptr);
}

Sha256::~Sha256() {
  EVP_MD_CTX_free(context_);
}

void Sha256::update(ByteView data) {
  EVP_DigestUpdate(context_, data.data(), data.size());
}

Digest Sha256::finish() {
  Digest digest{};
  EVP_DigestFinal_ex(context_, digest.data(), nullptr);
  return digest;
}

// Byte k of a word is bits 8k..8k+7: little-endian order, so whole words are stored with
// memcpy and only the ragged ends go byte by byte.
void fill_pattern(uint64_t seed, uint64_t offset, MutableByteView out) {
  static_assert(std::endian::native == std::endian::little);
  size_t i = 0;
  while (i < out.size()) {
    const uint64_t position = offset + i;
    const uint64_t word = pattern_word(seed, position / 8);
    if (position % 8 == 0 && out.size() - i >= 8) {
      std::memcpy(out.data() + i, &word, 8);
      i += 8;
    } else {
      out[i] = static_cast<uint8_t>(word >> (8 * (position % 8)));
      ++i;
    }
  }
}

Digest pattern_digest(uint64_t seed, uint64_t size) {
  Sha256 sha;
  std::vector<uint8_t> chunk(kChunk);
  for (uint64_t offset = 0; offset < size; offset += kChunk) {
    const size_t length = static_cast<size_t>(std::min<uint64_t>(kChunk, size - offset));
    fill_pattern(seed, offset, MutableByteView(chunk).first(length));
    sha.update(ByteView(chunk).first(length));
  }
  return sha.finish();
}

Status write_pattern_file(const std::string& path, uint64_t seed, uint64_t size) {
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "wb"));
  if (!file) return errno_error(errno, fmt::format("creating {}", path));
  std::vector<uint8_t> chunk(kChunk);
  for (uint64_t offset = 0; offset < size; offset += kChunk) {
    const size_t length = static_cast<size_t>(std::min<uint64_t>(kChunk, size - offset));
    fill_pattern(seed, offset, MutableByteView(chunk).first(length));
    if (std::fwrite(chunk.data(), 1, length, file.get()) != length) {
      return errno_error(errno, fmt::format("writing {}", path));
    }
  }
  if (std::fclose(file.release()) != 0) return errno_error(errno, fmt::format("writing {}", path));
  return Ok{};
}

Result<FileSummary> summarize_file(const std::string& path) {
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
  if (!file) return errno_error(errno, fmt::format("opening {}", path));
  Sha256 sha;
  FileSummary summary;
  std::vector<uint8_t> chunk(kChunk);
  for (;;) {
    const size_t length = std::fread(chunk.data(), 1, chunk.size(), file.get());
    sha.update(ByteView(chunk).first(length));
    summary.size += length;
    if (length < chunk.size()) break;
  }
  if (std::ferror(file.get())) return errno_error(errno, fmt::format("reading {}", path));
  summary.digest = sha.finish();
  return summary;
}

}  // namespace tapstack::testing
