// What RFC 2385 costs per segment: signing (Md5Signer::sign_in_place) and verifying
// (inbound_verdict) a 1448-byte data segment and a 0-byte ACK, against the plain MD5 primitive
// of the same library over the same bytes in one call. Three MD5s: OpenSSL's low-level MD5_*
// (md5opt's choice), OpenSSL's EVP interface (defined here, for the comparison) and nettle.
// Figures only, no assertions on time:
//   bazel run //tests/md5:md5_bench
// Each figure is the fastest of 15 rounds (the one least disturbed by the rest of the machine).
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "md5opt/md5_nettle.h"
#include "md5opt/option.h"
#include "md5opt/signer.h"
#include "md5opt/verdict.h"

namespace tapstack::md5test {
namespace {

using namespace md5opt;

constexpr std::string_view kKey = "a typical BGP password";
std::uint64_t sink = 0;  // printed at the end, so that no measured work can be optimised away
long openssl_allocations = 0;

void* counting_malloc(std::size_t size, const char*, int) {
  ++openssl_allocations;
  return std::malloc(size);
}
void* counting_realloc(void* p, std::size_t size, const char*, int) {
  ++openssl_allocations;
  return std::realloc(p, size);
}
void plain_free(void* p, const char*, int) {
  std::free(p);
}

// OpenSSL 3 EVP as the project brief first proposed: EVP_MD fetched once, EVP_MD_CTX reused.
class EvpMd5 final : public Md5 {
 public:
  EvpMd5() : md_(EVP_MD_fetch(nullptr, "MD5", nullptr)), context_(EVP_MD_CTX_new()) {}
  ~EvpMd5() override {
    EVP_MD_CTX_free(context_);
    EVP_MD_free(md_);
  }
  std::string_view library() const override { return "EVP"; }
  void begin() override { EVP_DigestInit_ex2(context_, md_, nullptr); }
  void update(ByteView bytes) override { EVP_DigestUpdate(context_, bytes.data(), bytes.size()); }
  std::optional<Digest> finish() override {
    Digest digest{};
    unsigned int size = 0;
    if (EVP_DigestFinal_ex(context_, digest.data(), &size) != 1) return std::nullopt;
    return digest;
  }

 private:
  EVP_MD* md_;
  EVP_MD_CTX* context_;
};

double nanoseconds_per_call(const std::function<void()>& call) {
  using Clock = std::chrono::steady_clock;
  int calls = 64;
  for (Clock::time_point start = Clock::now(); Clock::now() - start < std::chrono::milliseconds(5);
       calls *= 2) {
    for (int i = 0; i < calls; ++i) call();
  }
  double best = 1e18;
  for (int round = 0; round < 15; ++round) {
    const auto start = Clock::now();
    for (int i = 0; i < calls; ++i) call();
    const std::chrono::duration<double, std::nano> elapsed = Clock::now() - start;
    best = std::min(best, elapsed.count() / calls);
  }
  return best;
}

double openssl_allocations_per_call(const std::function<void()>& call) {
  const long before = openssl_allocations;
  for (int i = 0; i < 1000; ++i) call();
  return static_cast<double>(openssl_allocations - before) / 1000;
}

struct Segment {
  IpAddress source = *IpAddress::parse("198.18.0.2");
  IpAddress destination = *IpAddress::parse("198.18.0.1");
  std::vector<std::uint8_t> tcp;  // 40-byte header (NOP NOP MD5), then the payload
  std::size_t digest_offset = 0;
  std::vector<std::uint8_t> hashed;  // what the digest covers, in one piece, for plain MD5
};

Segment make_segment(std::size_t payload_size) {
  Segment s;
  s.tcp.assign(40 + payload_size, 0);
  const std::uint8_t fixed[] = {0x9c, 0xf3, 0x00, 0xb3, 1, 2, 3, 4, 5, 6, 7, 8, 0xa0, 0x10, 0x01};
  std::copy(std::begin(fixed), std::end(fixed), s.tcp.begin());
  for (std::size_t i = 40; i < s.tcp.size(); ++i) s.tcp[i] = static_cast<std::uint8_t>(i * 7);
  s.digest_offset = *write_md5_option(s.tcp, 20);
  std::uint8_t pseudo[12] = {198, 18, 0, 2, 198, 18, 0, 1, 0, 6};
  store_be16(&pseudo[10], static_cast<std::uint16_t>(s.tcp.size()));
  s.hashed.assign(std::begin(pseudo), std::end(pseudo));
  s.hashed.insert(s.hashed.end(), s.tcp.begin(), s.tcp.begin() + 20);
  s.hashed.insert(s.hashed.end(), s.tcp.begin() + 40, s.tcp.end());
  const ByteView key = text_bytes(kKey);
  s.hashed.insert(s.hashed.end(), key.begin(), key.end());
  return s;
}

void bench_library(std::unique_ptr<Md5> md5, std::size_t payload_size) {
  Segment s = make_segment(payload_size);
  Md5Signer signer(std::move(md5));
  const Md5Key key = *Md5Key::make(text_bytes(kKey));
  const TcpSegment parts = *split_segment(s.source, s.destination, s.tcp);
  const auto raw_call = [&] { sink += (*signer.md5().digest_of(s.hashed))[0]; };
  const auto sign_call = [&] {
    sink += signer.sign_in_place(s.source, s.destination, s.tcp, s.digest_offset, key.bytes()).ok();
  };
  const auto verify_call = [&] {
    sink += static_cast<int>(inbound_verdict(signer, &key, s.digest_offset, parts));
  };
  const double raw = nanoseconds_per_call(raw_call);
  const double sign = nanoseconds_per_call(sign_call);
  const double verify = nanoseconds_per_call(verify_call);
  fmt::print("{:<8} {:>5} B | {:7.0f} | {:7.0f}  {:.3f}x | {:7.0f}  {:.3f}x | {:.0f}\n",
             signer.md5().library(), payload_size, raw, sign, sign / raw, verify, verify / raw,
             openssl_allocations_per_call(sign_call));
}

// The time of a failing verdict with the first or the last digest byte wrong: equal when the
// comparison does not stop at the first difference.
void bench_failure_timing(std::size_t payload_size) {
  Segment s = make_segment(payload_size);
  Md5Signer signer;
  const Md5Key key = *Md5Key::make(text_bytes(kKey));
  (void)signer.sign_in_place(s.source, s.destination, s.tcp, s.digest_offset, key.bytes());
  for (const std::size_t wrong : {std::size_t{0}, kDigestSize - 1}) {
    auto tcp = s.tcp;
    tcp[s.digest_offset + wrong] ^= 1;
    const TcpSegment parts = *split_segment(s.source, s.destination, tcp);
    const double ns = nanoseconds_per_call(
        [&] { sink += static_cast<int>(inbound_verdict(signer, &key, s.digest_offset, parts)); });
    fmt::print("Failure verdict, {} B segment, digest byte {:2} wrong: {:5.0f} ns\n", payload_size,
               wrong, ns);
  }
}

}  // namespace
}  // namespace tapstack::md5test

int main() {
  using namespace tapstack::md5test;
  CRYPTO_set_mem_functions(counting_malloc, counting_realloc, plain_free);
  fmt::print("RFC 2385 per segment, ns (ratio to plain MD5 of the same bytes in one call)\n");
  fmt::print(
      "MD5      payload | raw MD5 |   sign          |   verify        | OpenSSL "
      "allocations per signed segment\n");
  for (const std::size_t payload : {std::size_t{1448}, std::size_t{0}}) {
    bench_library(tapstack::md5opt::make_openssl_md5(), payload);
    bench_library(std::make_unique<EvpMd5>(), payload);
    bench_library(tapstack::md5opt::make_nettle_md5(), payload);
  }
  fmt::print("\nConstant-time comparison (OpenSSL):\n");
  bench_failure_timing(0);
  fmt::print("\n(sink {})\n", sink % 10);
  return 0;
}
