// How this binary was built: `tapstack --version` says it, and a build that is not the
// optimised one says so once at start, with the command that builds the fast one.
#pragma once

#include <string>
#include <string_view>

namespace tapstack::cli {

struct BuildInfo {
  std::string_view compilation_mode;  // Bazel's: "opt", "fastbuild" or "dbg"
  bool optimised = false;             // -c opt, compiler optimisation on, no sanitizer
  bool sanitized = false;             // AddressSanitizer (and UBSan with it)
  std::string_view compiler;
};

BuildInfo build_info();

// "optimised build (bazel -c opt, gcc 12.2.0)" or "not optimised (bazel -c fastbuild, …)".
std::string describe_build();

// The line a non-optimised build prints on stderr when a command starts; empty when optimised.
std::string slow_build_warning();

}  // namespace tapstack::cli
