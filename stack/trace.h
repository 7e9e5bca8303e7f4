// Trace mode: for each frame in or out, one line naming every step it passed and its
// verdict ("rx ... | ipv4 ok | icmp echo -> reply"). Costs one branch when off.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

namespace tapstack {

class Trace {
 public:
  using Sink = std::function<void(std::string_view line)>;

  void set_sink(Sink sink) { sink_ = std::move(sink); }
  bool enabled() const { return static_cast<bool>(sink_); }
  // Whether a line has begun and not been flushed.
  bool in_line() const { return !line_.empty(); }

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
  // A whole line of its own (a segment sent while a received one is being handled): it is
  // printed after the current line, so that causes come before effects.
  template <typename... Args>
  void line(fmt::format_string<Args...> format, Args&&... args) {
    if (!enabled()) return;
    std::string text = fmt::format(format, std::forward<Args>(args)...);
    if (line_.empty()) {
      sink_(text);
    } else {
      pending_.push_back(std::move(text));
    }
  }
  void flush() {
    if (!enabled()) return;
    if (!line_.empty()) sink_(line_);
    line_.clear();
    for (const auto& text : pending_) sink_(text);
    pending_.clear();
  }

 private:
  Sink sink_;
  std::string line_;
  std::vector<std::string> pending_;
};

}  // namespace tapstack
