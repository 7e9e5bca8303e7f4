// The checks every kernel-signed segment must pass, for the stored vectors and for segments
// captured live: it verifies, our signer reproduces the kernel's digest, and every byte RFC 2385
// §2.0 covers is covered (and the ones it leaves out are left out).
#pragma once

#include "md5opt/signer.h"
#include "tests/md5/vector_file.h"

namespace tapstack::md5test {

// Runs doctest CHECKs on one segment; the segment must hold an IP packet carrying TCP.
void check_kernel_segment(md5opt::Md5Signer& signer, const KernelSegment& segment);

}  // namespace tapstack::md5test
