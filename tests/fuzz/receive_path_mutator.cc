// libFuzzer's hooks for the structure-aware mutator of the receive-path target (mutator.h).
// Only in libFuzzer builds: LLVMFuzzerMutate comes from libFuzzer.
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/mutator.h"

extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size);

namespace {

tapstack::fuzz::Mutator mutator_for(unsigned int seed) {
  return tapstack::fuzz::Mutator(seed, LLVMFuzzerMutate);
}

}  // namespace

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size,
                                          unsigned int seed) {
  return mutator_for(seed).mutate(data, size, max_size);
}

extern "C" size_t LLVMFuzzerCustomCrossOver(const uint8_t* data1, size_t size1,
                                            const uint8_t* data2, size_t size2, uint8_t* out,
                                            size_t max_out_size, unsigned int seed) {
  return mutator_for(seed).cross_over({data1, size1}, {data2, size2}, out, max_out_size);
}
