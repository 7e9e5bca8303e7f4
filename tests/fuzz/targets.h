// The fuzz targets, each a function from one input to what the input showed wrong. The
// libFuzzer entry points (*_fuzzer.cc), the standalone main for AFL++ and plain replays
// (standalone_main.cc) and the corpus replay test all call these same functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "stack/bytes.h"
#include "tests/fuzz/violations.h"

namespace tapstack::fuzz {

// parse_tcp() and parse_tcp_options() (stack/tcp/header.h) on one segment. Input: a control
// byte (bit 0: fix the checksum first; bit 1: parse the raw options as a SYN's), then the
// TCP segment, from 198.18.0.1 to 198.18.0.2.
Violations fuzz_tcp_header(ByteView input);

// md5opt's option parser, segment split, signer and verdict (RFC 2385). Input: a control
// byte, a key length (mod 81), the key, then the TCP segment.
Violations fuzz_md5_option(ByteView input);

// Raw Ethernet frames into a stack with a keyed listener and two established connections,
// in virtual time. Input: records (records.h); the world is world.h.
Violations fuzz_receive_path(ByteView input);

struct Target {
  std::string_view name;
  Violations (*run)(ByteView input);
};

inline constexpr Target kTargets[] = {
    {"tcp_header", fuzz_tcp_header},
    {"md5_option", fuzz_md5_option},
    {"receive_path", fuzz_receive_path},
};

// The body of every LLVMFuzzerTestOneInput: runs the target and, when the input broke an
// invariant, prints what and aborts, which libFuzzer and AFL++ report as a crash.
int run_or_abort(Violations (*run)(ByteView input), const uint8_t* data, size_t size);

}  // namespace tapstack::fuzz
