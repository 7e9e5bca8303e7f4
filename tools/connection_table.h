// The stack's sockets as a table in the manner of `ss -tni`: one line per socket with its
// state, queues, addresses, and the TCP internals a person debugging a connection asks for
// first (rtt, rto, cwnd, mss, ssthresh, retransmits, window scaling, timestamps, SACK, MD5).
#pragma once

#include <string>

#include "stack/tcp/tcp.h"

namespace tapstack::cli {

// The header and one line per socket, each ending in '\n'; only the header when there are
// none.
std::string connection_table(const Tcp& tcp);

}  // namespace tapstack::cli
