// Runs the decoder's fuzz entry point (decoder_fuzzer.cc) in the ordinary suite on valid
// messages and deterministic mutations of them: its invariants hold, and it keeps compiling.
#include <doctest/doctest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "bgp/message.h"
#include "tests/bgp/bgp_test_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace tapstack::bgp {
namespace {

std::vector<std::vector<uint8_t>> seeds() {
  const CodecOptions options{.four_octet_as = true, .external = true};
  Update update;
  update.withdrawn = {Prefix{0xc6130000, 16}};
  update.attributes.origin = Origin::Igp;
  update.attributes.as_path = std::vector<AsPathSegment>{{AsPathSegment::AsSequence, {65001}},
                                                         {AsPathSegment::AsSet, {1, 2}}};
  update.attributes.next_hop = 0xc6120001;
  update.attributes.multi_exit_disc = 5;
  update.attributes.communities = std::vector<uint32_t>{1, 2};
  update.attributes.transitive = {RawAttribute{0xe0, 99, {1}}};
  update.nlri = {Prefix{0xc6120500, 24}};
  return {encode(Open::make(65001, 90, 1), options),
          encode(update, options),
          encode(Keepalive{}, options),
          encode(Notification{6, 2, {1}}, options),
          encode(RouteRefresh{}, options),
          testing::update_message("800e0d 0001 01 04 c6120001 00 18c61206", "")};
}

TEST_CASE("the decoder's fuzz target holds its invariants on 30000 mutated messages") {
  std::mt19937 random(2385);
  const auto corpus = seeds();
  for (int i = 0; i < 30000; ++i) {
    std::vector<uint8_t> input = {static_cast<uint8_t>(random())};
    const auto& seed = corpus[random() % corpus.size()];
    input.insert(input.end(), seed.begin(), seed.end());
    const int mutations = 1 + static_cast<int>(random() % 4);
    for (int m = 0; m < mutations && input.size() > 1; ++m) {
      const size_t at = 1 + random() % (input.size() - 1);
      switch (random() % 4) {
        case 0:
          input[at] ^= static_cast<uint8_t>(1 << (random() % 8));
          break;
        case 1:
          input[at] = static_cast<uint8_t>(random());
          break;
        case 2:
          input.resize(at);
          break;
        case 3:
          input.insert(input.begin() + static_cast<std::ptrdiff_t>(at),
                       static_cast<uint8_t>(random()));
          break;
      }
    }
    // Keep the header's length honest half the time, so mutations reach the body parsers.
    if (i % 2 == 0 && input.size() >= 1 + kHeaderSize) {
      store_be16(&input[17], static_cast<uint16_t>(input.size() - 1));
    }
    CHECK(LLVMFuzzerTestOneInput(input.data(), input.size()) == 0);
  }
}

TEST_CASE("the fuzz target takes empty and tiny inputs") {
  CHECK(LLVMFuzzerTestOneInput(nullptr, 0) == 0);
  const uint8_t one[] = {3};
  CHECK(LLVMFuzzerTestOneInput(one, 1) == 0);
}

}  // namespace
}  // namespace tapstack::bgp
