// `tapstack connect`: one TCP connection from the stack to a peer, with the input streamed to
// it and what it sends back streamed to the output (like `nc -N`).
#pragma once

#include "tools/cli.h"

namespace tapstack::cli {

// Returns 0 when both directions closed cleanly; 1, having said why in one line on stderr,
// when the connection was refused, reset or timed out, or the input or output failed.
int run_connect(const ConnectOptions& options);

}  // namespace tapstack::cli
