#include "tap/system_error.h"

#include <cerrno>
#include <system_error>

#include <fmt/format.h>

namespace tapstack {

std::string errno_text(int code) {
  return std::generic_category().message(code);
}

Error errno_error(int code, std::string_view what) {
  return Error{code, fmt::format("{}: {}", what, errno_text(code))};
}

}  // namespace tapstack
