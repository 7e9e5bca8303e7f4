// A main() for a fuzz entry point without libFuzzer: runs LLVMFuzzerTestOneInput on each file
// named on the command line, or on standard input when none is. With it a target builds
// with afl-clang-fast++ (AFL++ gives the input as a file, @@, or on stdin) or with any
// compiler, to replay a crash under a debugger.
#include <cstdint>
#include <fstream>
#include <iostream>
#include <iterator>
#include <vector>

#include <fmt/format.h>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

std::vector<uint8_t> read_all(std::istream& in) {
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    const std::vector<uint8_t> input = read_all(std::cin);
    return LLVMFuzzerTestOneInput(input.data(), input.size());
  }
  for (int i = 1; i < argc; ++i) {
    std::ifstream file(argv[i], std::ios::binary);
    if (!file) {
      fmt::print(stderr, "cannot read {}\n", argv[i]);
      return 2;
    }
    const std::vector<uint8_t> input = read_all(file);
    LLVMFuzzerTestOneInput(input.data(), input.size());
  }
  return 0;
}
