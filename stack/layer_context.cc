#include "stack/layer_context.h"

namespace tapstack {

void LayerContext::drop(DropReason reason) {
  counters.count_drop(reason);
  if (!trace.enabled()) return;
  if (trace.in_line()) {
    trace.step("dropped: {} [counted: {}]", drop_reason_text(reason), drop_reason_counters(reason));
  } else {
    trace.line("dropped: {} [counted: {}]", drop_reason_text(reason), drop_reason_counters(reason));
  }
}

}  // namespace tapstack
