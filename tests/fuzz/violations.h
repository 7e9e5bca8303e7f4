// What a fuzz target found wrong in one input, as sentences for the crash report and for the
// replay test's failure message.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

namespace tapstack::fuzz {

class Violations {
 public:
  template <typename... Args>
  void check(bool ok, fmt::format_string<Args...> format, Args&&... args) {
    if (!ok) items_.push_back(fmt::format(format, std::forward<Args>(args)...));
  }
  void add(std::string text) { items_.push_back(std::move(text)); }
  bool empty() const { return items_.empty(); }
  const std::vector<std::string>& items() const { return items_; }
  // One violation a line.
  std::string text() const {
    std::string out;
    for (const auto& item : items_) out += item + "\n";
    return out;
  }

 private:
  std::vector<std::string> items_;
};

}  // namespace tapstack::fuzz
