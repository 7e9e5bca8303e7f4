// TcpOptionPlan (stack/tcp/options.h): one plan per segment, its size, the SACK blocks the
// space left holds, the bytes it writes in Linux's order (read back by our own parser), and
// where the MD5 digest goes.
#include <doctest/doctest.h>

#include <array>
#include <string>
#include <vector>

#include "md5opt/option.h"
#include "stack/tcp/header.h"
#include "stack/tcp/options.h"

namespace tapstack::test {
namespace {

std::vector<uint8_t> written(const TcpOptionPlan& plan) {
  std::array<uint8_t, TcpOptionPlan::kSpace> out{};
  plan.write(out.data());
  return {out.begin(), out.begin() + static_cast<std::ptrdiff_t>(plan.size())};
}

TcpOptionPlan with_sack_blocks(TcpOptionPlan plan, uint8_t count) {
  for (uint8_t i = 0; i < count; ++i) plan.sack[i] = {Seq(100u * i), Seq(100u * i + 50)};
  plan.sack_count = count;
  return plan;
}

TEST_CASE("sizes, SACK room and trace words of the plans we send") {
  const TcpTimestamps ts{7, 9};
  struct Row {
    const char* segment;
    TcpOptionPlan plan;
    size_t size;
    size_t sack_capacity;
    std::string describe;
  };
  const Row rows[] = {
      {"reset, no key", {}, 0, 4, ""},
      {"reset with a key", {.md5 = true}, 20, 2, ""},
      {"SYN",
       {.mss = 1460, .sack_permitted = true, .timestamps = ts, .window_scale = 7},
       20,
       2,
       "mss 1460, sack-ok, timestamps, wscale 7"},
      {"SYN with a key",
       {.md5 = true, .mss = 1460, .sack_permitted = true, .window_scale = 7},
       32,
       0,
       "mss 1460, sack-ok, wscale 7"},
      {"SYN-ACK, timestamps alone", {.mss = 1460, .timestamps = ts}, 16, 2, "mss 1460, timestamps"},
      {"cookie SYN-ACK with a key", {.md5 = true, .mss = 1460}, 24, 1, "mss 1460"},
      {"ACK with timestamps", {.timestamps = ts}, 12, 3, "timestamps"},
      {"ACK with a key and timestamps", {.md5 = true, .timestamps = ts}, 32, 0, "timestamps"},
      {"ACK, 1 SACK block", with_sack_blocks({}, 1), 12, 4, "sack 1 block"},
      {"ACK, timestamps, 3 SACK blocks", with_sack_blocks({.timestamps = ts}, 3), 40, 3,
       "timestamps, sack 3 blocks"},
  };
  for (const Row& row : rows) {
    CAPTURE(row.segment);
    CHECK(row.plan.size() == row.size);
    CHECK(row.plan.sack_capacity() == row.sack_capacity);
    CHECK(row.plan.describe() == row.describe);
    CHECK(written(row.plan).size() == row.size);
  }
}

TEST_CASE("with MD5 a SYN is NOP NOP MD5, MSS, NOP NOP SACK-permitted, NOP window-scale") {
  const TcpOptionPlan plan{.md5 = true, .mss = 1460, .sack_permitted = true, .window_scale = 7};
  std::array<uint8_t, TcpOptionPlan::kSpace> out;
  out.fill(0xee);
  const auto digest_at = plan.write(out.data());
  REQUIRE(digest_at);
  CHECK(*digest_at == 4);
  const std::vector<uint8_t> expected = {1, 1, 19, 18, 0, 0, 0, 0,   0, 0, 0, 0, 0, 0, 0, 0,
                                         0, 0, 0,  0,  2, 4, 5, 180, 1, 1, 4, 2, 1, 3, 3, 7};
  CHECK(std::vector<uint8_t>(out.begin(), out.begin() + 32) == expected);
  CHECK(out[32] == 0xee);  // nothing written beyond size()
}

TEST_CASE("what a plan writes, our parser reads back") {
  const TcpOptionPlan syn{
      .mss = 1400, .sack_permitted = true, .timestamps = TcpTimestamps{1, 2}, .window_scale = 9};
  TcpOptions parsed;
  parse_tcp_options(written(syn), true, parsed);
  CHECK(parsed.mss == 1400);
  CHECK(parsed.sack_permitted);
  CHECK(parsed.ts_value == 1u);
  CHECK(parsed.ts_echo == 2u);
  CHECK(parsed.window_scale == 9);
  std::array<uint8_t, TcpOptionPlan::kSpace> out{};
  CHECK_FALSE(syn.write(out.data()));  // no MD5, no digest to place

  const TcpOptionPlan ack = with_sack_blocks({.md5 = true}, 2);
  TcpOptions parsed_ack;
  parse_tcp_options(written(ack), false, parsed_ack);
  REQUIRE(parsed_ack.md5_offset);
  CHECK(*parsed_ack.md5_offset == kTcpMinHeaderSize + 2);  // after NOP NOP
  REQUIRE(parsed_ack.sack_count == 2);
  CHECK(parsed_ack.sack[1].left == Seq(100));
  CHECK(parsed_ack.sack[1].right == Seq(150));
}

}  // namespace
}  // namespace tapstack::test
