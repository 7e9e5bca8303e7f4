#include "tap/memory_release.h"

#include <malloc.h>

#include "stack/tcp/tcp.h"

namespace tapstack {

bool MemoryRelease::poll(Stack& stack, Instant now) {
  pending_ += stack.tcp().take_freed_buffer_bytes();
  if (options_.threshold == 0 || pending_ < options_.threshold) return false;
  if (!last_release_.is_never() && now - last_release_ < options_.min_interval) return false;
  malloc_trim(0);
  pending_ = 0;
  last_release_ = now;
  ++releases_;
  return true;
}

Instant MemoryRelease::next_deadline() const {
  if (options_.threshold == 0 || pending_ < options_.threshold || last_release_.is_never()) {
    return Instant::never();
  }
  return last_release_ + options_.min_interval;
}

}  // namespace tapstack
