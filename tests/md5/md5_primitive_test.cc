// The MD5 primitive (RFC 1321) through our wrapper, for both libraries: the test suite of
// RFC 1321 §A.5, whole and fed in pieces, with the context reused between digests.
#include <doctest/doctest.h>

#include <memory>
#include <string_view>
#include <vector>

#include "md5opt/md5.h"
#include "md5opt/md5_nettle.h"
#include "tests/md5/hex.h"

namespace tapstack::md5test {
namespace {

using md5opt::Md5;
using md5opt::text_bytes;

struct Rfc1321Vector {
  std::string_view message;
  std::string_view digest;
};

// RFC 1321 §A.5 "Test suite".
constexpr Rfc1321Vector kRfc1321Suite[] = {
    {"", "d41d8cd98f00b204e9800998ecf8427e"},
    {"a", "0cc175b9c0f1b6a831c399e269772661"},
    {"abc", "900150983cd24fb0d6963f7d28e17f72"},
    {"message digest", "f96b697d7cb7938d525a2f31aaf161d0"},
    {"abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"},
    {"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
     "d174ab98d277d9f5a5611c2c9f419d9f"},
    {"1234567890123456789012345678901234567890"
     "1234567890123456789012345678901234567890",
     "57edf4a22be3c955ac49da2e2107b67a"},
};

std::vector<std::unique_ptr<Md5>> both_libraries() {
  std::vector<std::unique_ptr<Md5>> libraries;
  libraries.push_back(md5opt::make_openssl_md5());
  libraries.push_back(md5opt::make_nettle_md5());
  return libraries;
}

TEST_CASE("RFC 1321 test suite, each message in one update") {
  for (auto& md5 : both_libraries()) {
    for (const auto& vector : kRfc1321Suite) {
      CAPTURE(md5->library());
      CAPTURE(vector.message);
      const auto digest = md5->digest_of(text_bytes(vector.message));
      REQUIRE(digest);
      CHECK(to_hex(*digest) == vector.digest);
    }
  }
}

TEST_CASE("RFC 1321 test suite, each message one byte at a time") {
  for (auto& md5 : both_libraries()) {
    for (const auto& vector : kRfc1321Suite) {
      CAPTURE(md5->library());
      CAPTURE(vector.message);
      md5->begin();
      for (const std::uint8_t byte : text_bytes(vector.message)) md5->update({&byte, 1});
      const auto digest = md5->finish();
      REQUIRE(digest);
      CHECK(to_hex(*digest) == vector.digest);
    }
  }
}

TEST_CASE("a reused context forgets the previous message at begin()") {
  for (auto& md5 : both_libraries()) {
    CAPTURE(md5->library());
    md5->begin();
    md5->update(text_bytes("something left over"));  // never finished
    const auto digest = md5->digest_of(text_bytes("abc"));
    REQUIRE(digest);
    CHECK(to_hex(*digest) == "900150983cd24fb0d6963f7d28e17f72");
  }
}

}  // namespace
}  // namespace tapstack::md5test
