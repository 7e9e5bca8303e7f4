#include "stack/counters.h"

#include <fmt/format.h>

namespace tapstack {
namespace {

constexpr std::string_view kCounterNames[] = {
#define TAPSTACK_COUNTER_NAME(name) #name,
    TAPSTACK_COUNTERS(TAPSTACK_COUNTER_NAME)
#undef TAPSTACK_COUNTER_NAME
};

struct DropReasonInfo {
  std::string_view name;
  Counter counter;
  bool has_second;
  Counter second;
  std::string_view text;
};

constexpr DropReasonInfo kDropReasons[] = {
#define TAPSTACK_DROP_INFO(name, counter, counter2, text) \
  {#name, Counter::counter, Counter::counter2 != Counter::kCount, Counter::counter2, text},
// "None" as a second counter means the reason bumps one counter only.
#define None kCount
    TAPSTACK_DROP_REASONS(TAPSTACK_DROP_INFO)
#undef None
#undef TAPSTACK_DROP_INFO
};

static_assert(std::size(kCounterNames) == kCounterCount);
static_assert(std::size(kDropReasons) == kDropReasonCount);

}  // namespace

std::string_view counter_name(Counter counter) {
  return kCounterNames[static_cast<size_t>(counter)];
}
std::string_view drop_reason_name(DropReason reason) {
  return kDropReasons[static_cast<size_t>(reason)].name;
}
std::string_view drop_reason_text(DropReason reason) {
  return kDropReasons[static_cast<size_t>(reason)].text;
}

std::string drop_reason_counters(DropReason reason) {
  const DropReasonInfo& info = kDropReasons[static_cast<size_t>(reason)];
  if (!info.has_second) return std::string(counter_name(info.counter));
  return fmt::format("{}, {}", counter_name(info.counter), counter_name(info.second));
}

void Counters::count_drop(DropReason reason) {
  const DropReasonInfo& info = kDropReasons[static_cast<size_t>(reason)];
  ++drops_[static_cast<size_t>(reason)];
  add(info.counter);
  if (info.has_second) add(info.second);
}

std::string Counters::to_json() const {
  std::string out = "{";
  for (size_t i = 0; i < kCounterCount; ++i) {
    fmt::format_to(std::back_inserter(out), "{}\n  \"{}\": {}", i == 0 ? "" : ",",
                   kCounterNames[i], values_[i]);
  }
  out += ",\n  \"drops\": {";
  bool first = true;
  for (size_t i = 0; i < kDropReasonCount; ++i) {
    if (drops_[i] == 0) continue;
    fmt::format_to(std::back_inserter(out), "{}\n    \"{}\": {}", first ? "" : ",",
                   kDropReasons[i].name, drops_[i]);
    first = false;
  }
  out += first ? "}\n}\n" : "\n  }\n}\n";
  return out;
}

}  // namespace tapstack
