// Paths tests need: the tapstack binary (for tests with //tools:tapstack in their data) and
// files in the test's private temporary directory.
#pragma once

#include <cstdlib>
#include <string>

#include <fmt/format.h>

namespace tapstack::testing {

inline std::string tapstack_binary() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  if (!srcdir || !workspace) return "tools/tapstack";  // run by hand from the runfiles tree
  return fmt::format("{}/{}/tools/tapstack", srcdir, workspace);
}

// A file name in the test's private temporary directory.
inline std::string temporary_path(std::string_view name) {
  const char* directory = std::getenv("TEST_TMPDIR");
  return fmt::format("{}/{}", directory ? directory : "/tmp", name);
}

}  // namespace tapstack::testing
