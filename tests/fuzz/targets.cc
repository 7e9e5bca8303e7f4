#include "tests/fuzz/targets.h"

#include <cstdlib>

#include <fmt/format.h>

#include "tests/fuzz/records.h"
#include "tests/fuzz/world.h"

namespace tapstack::fuzz {
namespace {

constexpr size_t kMaxRecords = 64;  // bounds the time one input takes

}  // namespace

Violations fuzz_receive_path(ByteView input) {
  World world;
  std::vector<Record> records = parse_records(input);
  if (records.size() > kMaxRecords) records.resize(kMaxRecords);
  for (const Record& record : records) {
    if (!world.violations().empty()) break;
    world.step(record);
  }
  return world.violations();
}

int run_or_abort(Violations (*run)(ByteView input), const uint8_t* data, size_t size) {
  const Violations violations = run({data, size});
  if (violations.empty()) return 0;
  fmt::print(stderr, "==tapstack-fuzz== invariant violated:\n{}", violations.text());
  std::abort();
}

}  // namespace tapstack::fuzz
