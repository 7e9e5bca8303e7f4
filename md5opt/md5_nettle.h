// RFC 1321 MD5 from nettle: the measured alternative to OpenSSL (tests/md5/md5_bench.cc).
// A separate target, //md5opt:nettle_md5, so that md5opt itself links only libcrypto.
#pragma once

#include <memory>

#include "md5opt/md5.h"

namespace tapstack::md5opt {

// nettle's md5_ctx never fails and needs no set-up.
std::unique_ptr<Md5> make_nettle_md5();

}  // namespace tapstack::md5opt
