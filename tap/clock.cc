#include "tap/clock.h"

#include <time.h>

namespace tapstack {

Instant monotonic_now() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);  // cannot fail for CLOCK_MONOTONIC on Linux
  return Instant::from_ns(int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec);
}

}  // namespace tapstack
