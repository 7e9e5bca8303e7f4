#include "tools/build_info.h"

#include <fmt/format.h>

#include "tools/cli.h"

// Bazel's compilation mode, from local_defines in tools/BUILD.
#if defined(TAPSTACK_COMPILATION_MODE_opt)
#define TAPSTACK_COMPILATION_MODE "opt"
#elif defined(TAPSTACK_COMPILATION_MODE_dbg)
#define TAPSTACK_COMPILATION_MODE "dbg"
#elif defined(TAPSTACK_COMPILATION_MODE_fastbuild)
#define TAPSTACK_COMPILATION_MODE "fastbuild"
#else
#define TAPSTACK_COMPILATION_MODE "unknown"
#endif

#if defined(__SANITIZE_ADDRESS__)
#define TAPSTACK_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TAPSTACK_SANITIZED 1
#endif
#endif
#ifndef TAPSTACK_SANITIZED
#define TAPSTACK_SANITIZED 0
#endif

#if defined(__OPTIMIZE__)
#define TAPSTACK_OPTIMIZE 1
#else
#define TAPSTACK_OPTIMIZE 0
#endif

namespace tapstack::cli {

BuildInfo build_info() {
  BuildInfo info;
  info.compilation_mode = TAPSTACK_COMPILATION_MODE;
  info.sanitized = TAPSTACK_SANITIZED;
  info.optimised = info.compilation_mode == "opt" && TAPSTACK_OPTIMIZE && !info.sanitized;
#if defined(__clang__)
  info.compiler = "clang " __clang_version__;
#elif defined(__GNUC__)
  info.compiler = "gcc " __VERSION__;
#else
  info.compiler = "unknown compiler";
#endif
  return info;
}

std::string describe_build() {
  const BuildInfo info = build_info();
  return fmt::format("{} (bazel -c {}{}, {})", info.optimised ? "optimised build" : "not optimised",
                     info.compilation_mode, info.sanitized ? ", AddressSanitizer and UBSan" : "",
                     info.compiler);
}

std::string slow_build_warning() {
  if (build_info().optimised) return {};
  return fmt::format(
      "{}: this binary is {}, several times slower than the optimised one; for speed, build "
      "it with 'bazel build //tools:tapstack'",
      kProgram, describe_build());
}

}  // namespace tapstack::cli
