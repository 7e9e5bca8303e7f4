#include "tests/tap/tapstack_tcp.h"

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <utility>

#include <fmt/format.h>

#include "tests/tap/test_paths.h"

namespace tapstack::testing {

std::vector<std::string> tapstack_command(const std::string& command,
                                          const std::vector<std::string>& extra, HostSide host) {
  std::vector<std::string> args = {tapstack_binary(), command,        "--tap", "tap0",
                                   "--addr",          "198.18.0.2/24"};
  if (host == HostSide::Configured) args.insert(args.end(), {"--host-addr", "198.18.0.1/24"});
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

Result<ChildProcess> start_serve(const std::vector<std::string>& extra, HostSide host) {
  auto child = ChildProcess::start(tapstack_command("serve", extra, host));
  if (!child) return child.error();
  if (!child->wait_for_stderr("listening on", milliseconds(10'000))) {
    return Error{ETIMEDOUT, "tapstack serve did not say it was listening"};
  }
  return child;
}

namespace {

Status run_all(const std::vector<std::vector<std::string>>& commands) {
  for (const auto& argv : commands) {
    const ProcessResult result = run_process(argv, milliseconds(10'000));
    if (result.exit_code != 0) {
      return Error{EIO,
                   fmt::format("{}: {}: {}", fmt::join(argv, " "), result.describe(), result.err)};
    }
  }
  return Ok{};
}

}  // namespace

Result<BridgedPeer> BridgedPeer::create(int loss_percent) {
  auto peer_namespace = PeerNamespace::create();
  if (!peer_namespace) return peer_namespace.error();
  BridgedPeer peer(std::move(*peer_namespace));
  if (auto built = peer.build(loss_percent); !built) return built.error();
  return peer;
}

// The test's namespace: tap0 and vethT on bridge br0, nftables dropping TCP over IPv4 and
// IPv6 in the bridge's forward hook. The peer's: vethK with 198.18.0.1/24 and 2001:db8::1/64. Offloads off on the veth pair, so that
// each dropped packet is one segment, as on the wire.
Status BridgedPeer::build(int loss_percent) const {
  const std::string rules_path = temporary_path("bridge_loss.nft");
  std::ofstream(rules_path) << fmt::format(
      "table bridge tapstack_loss {{\n"
      "  chain forward {{ type filter hook forward priority 0;\n"
      "    ip protocol tcp numgen random mod 100 < {0} drop\n"
      "    ip6 nexthdr tcp numgen random mod 100 < {0} drop\n"
      "  }}\n"
      "}}\n",
      loss_percent);
  const std::string ip = "/usr/sbin/ip";
  const std::string ethtool = "/usr/sbin/ethtool";
  auto status = run_all({
      {ip, "tuntap", "add", "dev", "tap0", "mode", "tap"},
      {ip, "link", "add", "br0", "type", "bridge"},
      {ip, "link", "set", "tap0", "master", "br0"},
      {ip, "link", "add", "vethT", "type", "veth", "peer", "name", "vethK", "netns",
       namespace_.path()},
      {ip, "link", "set", "vethT", "master", "br0"},
      {ethtool, "-K", "vethT", "tso", "off", "gso", "off", "gro", "off"},
      {ip, "link", "set", "br0", "up"},
      {ip, "link", "set", "tap0", "up"},
      {ip, "link", "set", "vethT", "up"},
      {"/usr/sbin/nft", "-f", rules_path},
  });
  if (!status) return status;
  return within([&] {
    return run_all({
        {ip, "link", "set", "lo", "up"},
        {ip, "addr", "add", "198.18.0.1/24", "dev", "vethK"},
        {ip, "-6", "addr", "add", "2001:db8::1/64", "dev", "vethK", "nodad"},
        {ethtool, "-K", "vethK", "tso", "off", "gso", "off", "gro", "off"},
        {ip, "link", "set", "vethK", "up"},
    });
  });
}

std::optional<uint64_t> stats_counter(const std::string& stats_path, std::string_view name) {
  std::ifstream file(stats_path);
  const std::string json((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  const std::string key = fmt::format("\"{}\": ", name);
  const size_t at = json.find(key);
  if (at == std::string::npos) return std::nullopt;
  return std::strtoull(json.c_str() + at + key.size(), nullptr, 10);
}

size_t count_lines_with(const std::string& text, std::string_view needle) {
  size_t count = 0;
  size_t begin = 0;
  while (begin < text.size()) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    if (std::string_view(text).substr(begin, end - begin).find(needle) != std::string_view::npos) {
      ++count;
    }
    begin = end + 1;
  }
  return count;
}

}  // namespace tapstack::testing
