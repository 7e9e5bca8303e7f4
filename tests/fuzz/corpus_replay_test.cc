// Every corpus and regression input of the fuzz targets, replayed through the same target
// functions the libFuzzer entry points call, in the ordinary suite (gcc, no libFuzzer; ASan
// and UBSan under --config=asan). A regression input is a bug the fuzzer found: its case
// fails until the bug is fixed, and stays afterwards to keep it fixed.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tests/fuzz/targets.h"

namespace tapstack::fuzz {
namespace {

namespace fs = std::filesystem;

std::vector<uint8_t> read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Runs every file under tests/fuzz/KIND/TARGET through the target; returns how many.
size_t replay(std::string_view kind, const Target& target) {
  const fs::path dir = fs::path("tests/fuzz") / kind / target.name;
  if (!fs::is_directory(dir)) return 0;
  size_t count = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::vector<uint8_t> input = read_file(entry.path());
    const Violations violations = target.run(input);
    CHECK_MESSAGE(violations.empty(), entry.path().string() << ":\n" << violations.text());
    ++count;
  }
  return count;
}

TEST_CASE("every corpus input of every fuzz target replays without a violation") {
  for (const Target& target : kTargets) {
    CAPTURE(target.name);
    CHECK(replay("corpus", target) > 0);
  }
}

TEST_CASE("every regression input replays without a violation (each is a bug found by fuzzing)") {
  for (const Target& target : kTargets) replay("regressions", target);
}

}  // namespace
}  // namespace tapstack::fuzz
