// Lines for the person running the program go to stderr as "tapstack: ...", so that stdout
// carries nothing but data (serve's print mode, connect's output).
#pragma once

#include <string.h>

#include <cstdio>
#include <string>
#include <string_view>
#include <utility>

#include <fmt/format.h>

#include "tools/cli.h"

namespace tapstack::cli {

template <typename... Args>
void report(fmt::format_string<Args...> format, Args&&... args) {
  fmt::print(stderr, "{}: {}\n", kProgram, fmt::format(format, std::forward<Args>(args)...));
}

// One line saying what failed; the exit code that goes with it.
inline int runtime_failure(std::string_view message) {
  report("{}", message);
  return kExitFailure;
}

// "SIGINT", or "signal 42" for one without a name.
inline std::string signal_name(int signal_number) {
  const char* abbreviation = sigabbrev_np(signal_number);
  return abbreviation ? fmt::format("SIG{}", abbreviation)
                      : fmt::format("signal {}", signal_number);
}

// RFC 2385 §2.0: a host drops, without a word, a segment that fails its MD5 check, so a key
// mismatch looks like a peer that is not there. Said after a connection left unanswered.
inline std::string_view unanswered_signed_syn_hint() {
  return " (our SYNs are signed with --md5: a peer without that key drops them unanswered)";
}

// "30 s", "0.5 s": a duration as a person gave it.
inline std::string seconds_text(Duration duration) {
  return fmt::format("{:g} s", duration.seconds_f());
}

}  // namespace tapstack::cli
