// The real clock at the edge of the sans-I/O core: CLOCK_MONOTONIC as an Instant.
#pragma once

#include "stack/time.h"

namespace tapstack {

// Nanoseconds since an arbitrary origin (boot), never going backwards.
Instant monotonic_now();

}  // namespace tapstack
