// Finding the MD5 option (RFC 2385 §3.0) with the rules of Linux's tcp_parse_md5sig_option(),
// and writing it as tcp_options_write() does.
#include <doctest/doctest.h>

#include <cstdint>
#include <optional>
#include <random>
#include <vector>

#include "md5opt/option.h"
#include "tests/md5/hex.h"

namespace tapstack::md5test {
namespace {

using md5opt::find_md5_option;
using md5opt::write_md5_option;

constexpr std::string_view kDigest = "00112233445566778899aabbccddeeff";

// A TCP header whose options area is exactly `options` (a multiple of 4 bytes).
std::vector<std::uint8_t> header_with(std::string_view options_hex) {
  std::vector<std::uint8_t> header(20, 0);
  const auto options = hex(options_hex);
  REQUIRE(options.size() % 4 == 0);
  REQUIRE(options.size() <= 40);
  header[12] = static_cast<std::uint8_t>((20 + options.size()) / 4 << 4);
  header.insert(header.end(), options.begin(), options.end());
  return header;
}

std::string md5_option(std::string_view length_hex = "12") {
  return std::string("13") + std::string(length_hex) + std::string(kDigest);
}

TEST_CASE("the usual layouts are found, the digest offset counted from the header") {
  CHECK(find_md5_option(header_with("0101" + md5_option())) == 24u);
  CHECK(find_md5_option(header_with(md5_option() + "0000")) == 22u);
  // Linux's established-state layout: NOP NOP timestamps, NOP NOP MD5.
  CHECK(find_md5_option(header_with("0101080a0000000100000002 0101" + md5_option())) == 36u);
  // A SYN: MSS, NOP NOP MD5, NOP window scale, NOP NOP SACK permitted.
  CHECK(find_md5_option(header_with("020405b4 0101" + md5_option() + "01030307 01010402")) == 28u);
}

TEST_CASE("no options, or a header that is not one, have no MD5 option") {
  CHECK_FALSE(find_md5_option(header_with("")));
  auto header = header_with("0101" + md5_option());
  header[12] = 0x40;  // data offset 4: below the fixed header
  CHECK_FALSE(find_md5_option(header));
  header[12] = 0xf0;  // data offset 15: 60 bytes, more than given
  CHECK_FALSE(find_md5_option(header));
  CHECK_FALSE(find_md5_option(std::vector<std::uint8_t>(19, 0)));
}

TEST_CASE("EOL ends the list: an MD5 option after it is not found") {
  CHECK_FALSE(find_md5_option(header_with("00" + md5_option() + "01")));
  CHECK_FALSE(find_md5_option(header_with("0100" + md5_option())));
}

TEST_CASE("a run of NOPs is skipped, as long as the option still fits after it") {
  std::string nops;
  for (int i = 0; i < 22; ++i) nops += "01";
  CHECK(find_md5_option(header_with(nops + md5_option())) == 20u + 22u + 2u);
  // 23 NOPs leave 17 bytes: the option cannot fit, the walk stops.
  CHECK_FALSE(find_md5_option(header_with(nops + "01" + md5_option().substr(0, 34))));
}

TEST_CASE("an option length of 0 or 1 ends the walk (no endless loop), with no option") {
  CHECK_FALSE(find_md5_option(header_with("0800" + md5_option())));
  CHECK_FALSE(find_md5_option(header_with("0801" + md5_option())));
  CHECK_FALSE(find_md5_option(header_with("1300" + md5_option())));
}

TEST_CASE("an option running past the end of the header means no option") {
  // Window scale claiming 40 bytes, then a well-formed MD5 option it would swallow.
  CHECK_FALSE(find_md5_option(header_with("0328" + md5_option())));
  // The MD5 option itself claiming 18 bytes where 17 are left.
  CHECK_FALSE(find_md5_option(header_with("010101" + md5_option().substr(0, 34))));
}

TEST_CASE("kind 19 must have length 18: Linux takes 17 or 19 as no option at all") {
  CHECK_FALSE(find_md5_option(header_with("0101" + md5_option("11").substr(0, 34) + "00")));
  CHECK_FALSE(find_md5_option(header_with("01" + md5_option("13") + "00")));
}

TEST_CASE("the first kind-19 option decides") {
  const std::string second = "1312ffffffffffffffffffffffffffffffff";
  // Two well-formed options: the first is the one (offset 22, not 40).
  CHECK(find_md5_option(header_with(md5_option() + second + "00000000")) == 22u);
  // A malformed first one hides a well-formed second.
  CHECK_FALSE(find_md5_option(header_with("1304 0000" + md5_option() + "0000")));
}

TEST_CASE("any options area gives no option or a well-formed one inside the header") {
  std::mt19937 random(2385);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<int> words(0, 10);
  std::uniform_int_distribution<int> kind(0, 3);
  const std::uint8_t kinds[] = {0, 1, 19, 8};
  for (int round = 0; round < 20000; ++round) {
    const int option_words = words(random);
    std::vector<std::uint8_t> header(20 + 4 * static_cast<std::size_t>(option_words));
    for (auto& b : header) b = static_cast<std::uint8_t>(byte(random));
    // Make kinds and lengths that matter common, not 1 in 256.
    for (std::size_t i = 20; i < header.size(); i += 2) {
      header[i] = kinds[kind(random)];
      if (i + 1 < header.size() && kind(random) == 0) header[i + 1] = 18;
    }
    header[12] = static_cast<std::uint8_t>((5 + option_words) << 4);
    const auto offset = find_md5_option(header);
    if (!offset) continue;
    CAPTURE(to_hex(header));
    REQUIRE(*offset >= 22u);
    CHECK(*offset + 16 <= header.size());
    CHECK(header[*offset - 2] == 19);
    CHECK(header[*offset - 1] == 18);
  }
}

TEST_CASE("write_md5_option writes NOP NOP 19 18 and 16 placeholder bytes") {
  std::vector<std::uint8_t> tcp(48, 0xaa);
  tcp[12] = 0x80;  // data offset 8: 12 bytes of options
  const auto digest_offset = write_md5_option(tcp, 20);
  REQUIRE(digest_offset);
  CHECK(*digest_offset == 24u);
  CHECK(to_hex(md5opt::ByteView(tcp).subspan(20, 20)) == "01011312" + std::string(32, '0'));
  CHECK(tcp[19] == 0xaa);
  CHECK(tcp[40] == 0xaa);  // nothing written past the 20 bytes
}

TEST_CASE("what write_md5_option writes, find_md5_option finds") {
  for (const std::size_t at : {20u, 24u, 32u, 40u}) {
    CAPTURE(at);
    std::vector<std::uint8_t> tcp(60, 0);
    tcp[12] = 0xf0;  // 60-byte header
    for (std::size_t i = 20; i < at; ++i) tcp[i] = md5opt::kOptionNop;
    const auto written = write_md5_option(tcp, at);
    REQUIRE(written);
    CHECK(find_md5_option(tcp) == written);
  }
}

TEST_CASE("write_md5_option refuses where 20 bytes do not fit") {
  std::vector<std::uint8_t> tcp(40, 0);
  CHECK(write_md5_option(tcp, 20) == 24u);
  CHECK_FALSE(write_md5_option(tcp, 21));
  CHECK_FALSE(write_md5_option(tcp, 41));
}

}  // namespace
}  // namespace tapstack::md5test
