// The README's first command, `bazel run //tools:demo`, as a test: it makes its own network
// namespace and TAP, every screen's exchange completes (ping, TCP both ways, a signed RFC 2385
// exchange with the seed's key, and the wrong, missing and unexpected key cases, each with
// the right counter moving on the right side), and it exits 0.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "tests/support/netns.h"
#include "tests/support/subprocess.h"

namespace tapstack::testing {
namespace {

std::string demo_binary() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  if (!srcdir || !workspace) return "tools/demo";
  return fmt::format("{}/{}/tools/demo", srcdir, workspace);
}

// The line of the demo's output that starts with prefix (after spaces), or "".
std::string line_starting(const std::string& text, std::string_view prefix, size_t from = 0) {
  for (size_t at = from; at < text.size();) {
    const size_t end = text.find('\n', at);
    std::string line = text.substr(at, end == std::string::npos ? std::string::npos : end - at);
    const size_t first = line.find_first_not_of(' ');
    if (first != std::string::npos && line.compare(first, prefix.size(), prefix) == 0) {
      return line;
    }
    if (end == std::string::npos) break;
    at = end + 1;
  }
  return "";
}

// The counters row `who` of the screen whose heading contains `screen`: NotFound, Unexpected,
// Failure.
std::vector<uint64_t> md5_row(const std::string& out, std::string_view screen,
                              std::string_view who) {
  const size_t at = out.find(screen);
  REQUIRE(at != std::string::npos);
  const std::string line = line_starting(out, who, at);
  REQUIRE(!line.empty());
  std::istringstream numbers(line.substr(line.find(')') + 1));
  std::vector<uint64_t> row;
  for (uint64_t n = 0; numbers >> n;) row.push_back(n);
  REQUIRE(row.size() == 3);
  return row;
}

// The SYN, and its retransmission when it came within the screen's 1.3 s: 1 or 2.
bool syns(uint64_t n) { return n == 1 || n == 2; }

TEST_CASE("the demo: every screen completes, counters move on the side that dropped") {
  if (const auto reason = kernel_tests_unavailable()) skip_test(*reason);
  const ProcessResult result = run_process({demo_binary()}, milliseconds(60'000));
  CAPTURE(result.out);
  CAPTURE(result.err);
  REQUIRE(result.describe() == "exit 0");
  CHECK(result.out.find("demo finished: all exchanges completed") != std::string::npos);
  CHECK(result.out.find("kernel received: \"signed reply from tapstack\"") != std::string::npos);
  CHECK(result.out.find("(tcp_v4_inbound_md5_hash)") != std::string::npos);
  CHECK(result.out.find("digest filled late (tcp_v4_md5_hash_skb)") != std::string::npos);
  // NotFound Unexpected Failure, ours then the kernel's; one SYN and its retransmission.
  using Row = std::vector<uint64_t>;
  CHECK(md5_row(result.out, "4. TCP-MD5", "tapstack") == Row{0, 0, 0});
  CHECK(md5_row(result.out, "4. TCP-MD5", "Linux") == Row{0, 0, 0});
  const Row wrong = md5_row(result.out, "5. A wrong key", "tapstack");
  CHECK((wrong[0] == 0 && wrong[1] == 0 && syns(wrong[2])));
  CHECK(md5_row(result.out, "5. A wrong key", "Linux") == Row{0, 0, 0});
  const Row missing = md5_row(result.out, "6. A missing key", "tapstack");
  CHECK((syns(missing[0]) && missing[1] == 0 && missing[2] == 0));
  CHECK(md5_row(result.out, "6. A missing key", "Linux") == Row{0, 0, 0});
  CHECK(md5_row(result.out, "7. An unexpected key", "tapstack") == Row{0, 0, 0});
  const Row unexpected = md5_row(result.out, "7. An unexpected key", "Linux");
  CHECK((unexpected[0] == 0 && syns(unexpected[1]) && unexpected[2] == 0));
  // Screen 8: the same signed exchange over IPv6, checked by the kernel in its IPv6 path.
  CHECK(result.out.find("kernel received: \"signed reply over IPv6 from tapstack\"") !=
        std::string::npos);
  CHECK(result.out.find("digest ok (tcp_v6_inbound_md5_hash)") != std::string::npos);
  CHECK(md5_row(result.out, "8. TCP-MD5 over IPv6", "tapstack") == Row{0, 0, 0});
  CHECK(md5_row(result.out, "8. TCP-MD5 over IPv6", "Linux") == Row{0, 0, 0});
  CHECK(result.out.find("tshark -r /tmp/tapstack-demo.pcap") != std::string::npos);
}

}  // namespace
}  // namespace tapstack::testing
