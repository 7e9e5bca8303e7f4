// errno values turned into the project's Error values, with the message a person can act on.
#pragma once

#include <cerrno>
#include <string>
#include <string_view>

#include "stack/error.h"

namespace tapstack {

// "Operation not permitted" for EPERM; thread-safe, unlike strerror().
std::string errno_text(int code);

// Error{code, "<what>: <errno text>"}.
Error errno_error(int code, std::string_view what);

// Non-blocking I/O found nothing to do (EAGAIN). Such errors carry no message, so that the
// hot path allocates nothing.
inline Error would_block_error() {
  return Error{EAGAIN, {}};
}
inline bool is_would_block(const Error& error) {
  return error.code == EAGAIN;
}

// What a person does about a missing capability; appended to EPERM messages.
inline constexpr std::string_view kNeedNetAdmin =
    "needs CAP_NET_ADMIN: run as root, or grant it with `setcap cap_net_admin+ep <program>`";

}  // namespace tapstack
