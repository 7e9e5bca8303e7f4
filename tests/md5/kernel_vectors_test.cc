// Segments the Linux kernel signed (data/kernel_segments.txt, made by tools/md5-vectors):
// each verifies with our verdict, re-signs to the kernel's bytes, and fails when any byte the
// digest covers changes.
#include <doctest/doctest.h>

#include <cstdlib>
#include <string>

#include <fmt/format.h>

#include "md5opt/signer.h"
#include "tests/md5/kernel_checks.h"
#include "tests/md5/vector_file.h"

namespace tapstack::md5test {
namespace {

std::string data_path() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  if (!srcdir || !workspace) return "tests/md5/data/kernel_segments.txt";
  return fmt::format("{}/{}/tests/md5/data/kernel_segments.txt", srcdir, workspace);
}

std::vector<KernelSegment> stored_segments() {
  const auto text = read_file(data_path());
  REQUIRE_MESSAGE(text, "cannot read " << data_path());
  auto segments = parse_vector_file(*text);
  REQUIRE_MESSAGE(segments.ok(), segments.error().message);
  return *segments;
}

TEST_CASE("the stored segments cover SYN, SYN-ACK, data and FIN, over IPv4 and IPv6") {
  for (const bool ipv4 : {true, false}) {
    int syn = 0, syn_ack = 0, data = 0, fin = 0;
    for (const auto& segment : stored_segments()) {
      const auto parts = tcp_segment_of(segment.ip_packet);
      REQUIRE(parts);
      if (parts->source.is_ipv4() != ipv4) continue;
      const auto flags = tcp_flags(*parts);
      syn += flags == kSyn;
      syn_ack += flags == (kSyn | kAck);
      data += !parts->payload.empty();
      fin += (flags & kFin) != 0;
    }
    CAPTURE(ipv4);
    CHECK(syn >= 1);
    CHECK(syn_ack >= 1);
    CHECK(data >= 2);
    CHECK(fin >= 2);
  }
}

TEST_CASE("every stored kernel segment verifies, re-signs identically, and breaks when changed") {
  md5opt::Md5Signer signer;
  const auto segments = stored_segments();
  CHECK(segments.size() >= 16);
  for (const auto& segment : segments) check_kernel_segment(signer, segment);
}

}  // namespace
}  // namespace tapstack::md5test
