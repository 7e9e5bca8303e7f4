// Regenerates data/kernel_segments.txt (run it through tools/md5-vectors, as root): two
// exchanges between kernel sockets signing with TCP_MD5SIG, IPv4 and IPv6, captured on lo in
// a private network namespace, written out as key and packet lines.
#include <sys/utsname.h>

#include <cstdio>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "tests/md5/hex.h"
#include "tests/md5/kernel_capture.h"
#include "tests/md5/vector_file.h"

namespace tapstack::md5test {
namespace {

constexpr std::string_view kFileHeader =
    R"(# Segments signed by the Linux kernel (RFC 2385 TCP MD5 signature option), for
# tests/md5/kernel_vectors_test.cc. Two kernel sockets in a private network namespace, each with
# setsockopt(TCP_MD5SIG) for the other, talk over lo while an AF_PACKET socket records the
# packets. Regenerate with tools/md5-vectors (as root); made by tests/md5/md5_capture.cc.
#
# "key <hex>" is the key (its text in the comment above it) for the packets that follow.
# "packet <hex>" is one IP packet as lo received it (the all-zero Ethernet header removed),
# the comment above it says what it is. The TCP checksums are as lo leaves them: with checksum
# offload, only the pseudo-header sum is filled in; RFC 2385 hashes the checksum as zero.
)";

std::string kernel_release() {
  utsname name{};
  return uname(&name) == 0 ? name.release : "unknown";
}

// The key and packet lines of one exchange, or an empty string after printing the error.
std::string capture_lines(const Exchange& exchange) {
  auto packets = capture_exchange(exchange);
  if (!packets) {
    fmt::print(stderr, "md5_capture: {}\n", packets.error().message);
    return {};
  }
  std::string lines = fmt::format("\n# key: \"{}\"\nkey {}\n", exchange.key,
                                  to_hex(md5opt::text_bytes(exchange.key)));
  for (const auto& packet : *packets) {
    const auto segment = tcp_segment_of(packet);
    lines += format_segment({describe(*segment), {}, packet});
  }
  return lines;
}

int run(const char* path) {
  if (auto status = enter_capture_namespace(); !status) {
    fmt::print(stderr, "md5_capture: {} (run as root)\n", status.error().message);
    return 1;
  }
  std::string text =
      std::string(kFileHeader) + fmt::format("# Captured from Linux {}.\n", kernel_release());
  for (const Exchange& exchange : {ipv4_exchange(), ipv6_exchange()}) {
    const std::string lines = capture_lines(exchange);
    if (lines.empty()) return 1;
    text += lines;
  }
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path, "w"), &std::fclose);
  if (!file) {
    fmt::print(stderr, "md5_capture: cannot write {}\n", path);
    return 1;
  }
  fmt::print(file.get(), "{}", text);
  return 0;
}

}  // namespace
}  // namespace tapstack::md5test

int main(int argc, char** argv) {
  if (argc != 2) {
    fmt::print(stderr, "usage: md5_capture OUTPUT_FILE   (as root; see tools/md5-vectors)\n");
    return 2;
  }
  return tapstack::md5test::run(argv[1]);
}
