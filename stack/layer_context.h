// What every layer of the stack shares: its counters, its trace, and the one drop path.
#pragma once

#include "stack/counters.h"
#include "stack/trace.h"

namespace tapstack {

struct LayerContext {
  Counters& counters;
  Trace& trace;

  // The one way anything is dropped: counts the reason (its counters, and the per-reason
  // tally of the --stats JSON) and says so in the trace, as a step of the line being built,
  // or as a line of its own when none is (a drop on a timer).
  void drop(DropReason reason);
};

}  // namespace tapstack
