// `tapstack serve`: a TCP server on the stack that prints, echoes or discards what each
// connection sends.
#pragma once

#include "tools/cli.h"

namespace tapstack::cli {

// Runs until SIGINT, SIGTERM or SIGHUP (exit 0), or with --once until the first connection has
// closed (exit 0, or 1 when it failed). Returns the exit code, having said why on stderr.
int run_serve(const ServeOptions& options);

}  // namespace tapstack::cli
