// The libFuzzer (and AFL++) entry point of the tcp_header target: see targets.h.
#include "tests/fuzz/targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return tapstack::fuzz::run_or_abort(tapstack::fuzz::fuzz_tcp_header, data, size);
}
