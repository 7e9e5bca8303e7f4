// RFC 1321 MD5 from nettle (-lnettle): a plain struct md5_ctx, reused.
#include "md5opt/md5_nettle.h"

#include <nettle/md5.h>

namespace tapstack::md5opt {
namespace {

class NettleMd5 final : public Md5 {
 public:
  std::string_view library() const override { return "nettle"; }
  void begin() override { md5_init(&context_); }
  void update(ByteView bytes) override { md5_update(&context_, bytes.size(), bytes.data()); }
  std::optional<Digest> finish() override {
    Digest digest{};
    md5_digest(&context_, digest.size(), digest.data());
    return digest;
  }

 private:
  md5_ctx context_{};
};

}  // namespace

std::unique_ptr<Md5> make_nettle_md5() {
  return std::make_unique<NettleMd5>();
}

}  // namespace tapstack::md5opt
