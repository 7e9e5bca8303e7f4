// RFC 1321 MD5 from OpenSSL's libcrypto, through the low-level MD5_Init/MD5_Update/MD5_Final
// on one MD5_CTX that is reused. OpenSSL 3.0 deprecates these in favour of EVP, but its
// EVP_DigestInit_ex2 frees and allocates the provider's context on every call, even with the
// EVP_MD fetched once and the EVP_MD_CTX reused: one malloc and free per segment, and about
// 50 ns more per pure ACK (1.4x plain MD5). The low-level calls allocate nothing.
// tests/md5/md5_bench.cc measures both.
#define OPENSSL_SUPPRESS_DEPRECATED  // MD5_Init and friends, on purpose (see above)

#include <openssl/md5.h>

#include <memory>

#include "md5opt/md5.h"

namespace tapstack::md5opt {
namespace {

class OpenSslMd5 final : public Md5 {
 public:
  std::string_view library() const override { return "OpenSSL"; }
  void begin() override { ok_ = MD5_Init(&context_) == 1; }
  void update(ByteView bytes) override {
    ok_ = ok_ && MD5_Update(&context_, bytes.data(), bytes.size()) == 1;
  }
  std::optional<Digest> finish() override {
    Digest digest{};
    ok_ = ok_ && MD5_Final(digest.data(), &context_) == 1;
    if (!ok_) return std::nullopt;
    return digest;
  }

 private:
  MD5_CTX context_{};
  bool ok_ = false;  // false until begin() succeeds, and after any failed step
};

}  // namespace

std::unique_ptr<Md5> make_openssl_md5() {
  return std::make_unique<OpenSslMd5>();
}

}  // namespace tapstack::md5opt
