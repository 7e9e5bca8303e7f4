// Trace mode: for each frame in or out, one line naming every step it passed and its
// verdict ("rx ... | ipv4 ok | icmp echo -> reply"). Costs one branch when off.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <utility>

#include <fmt/format.h>

namespace tapstack {

class Trace {
 public:
  using Sink = std::function<void(std::string_view line)>;

  void set_sink(Sink sink) { sink_ = std::move(sink); }
  bool enabled() const { return static_cast<bool>(sink_); }

  // Starts a new line ("rx", "tx").
  template <typename... Args>
  void begin(fmt::format_string<Args...> format, Args&&... args) {
    if (!enabled()) return;
    flush();
    fmt::format_to(std::back_inserter(line_), format, std::forward<Args>(args)...);
  }
  // Appends " | step" to the current line.
  template <typename... Args>
  void step(fmt::format_string<Args...> format, Args&&... args) {
    if (!enabled()) return;
    line_ += " | ";
    fmt::format_to(std::back_inserter(line_), format, std::forward<Args>(args)...);
  }
  void flush() {
    if (!enabled() || line_.empty()) return;
    sink_(line_);
    line_.clear();
  }

 private:
  Sink sink_;
  std::string line_;
};

}  // namespace tapstack
