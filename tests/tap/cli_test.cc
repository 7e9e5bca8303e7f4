// The tapstack argument parser and the default MAC, without running anything.
#include <doctest/doctest.h>

#include <string_view>
#include <variant>
#include <vector>

#include <fmt/format.h>

#include "tools/cli.h"

namespace tapstack::cli {
namespace {

Parsed<UpOptions> up(std::vector<std::string_view> args) {
  return parse_up(args);
}

// The usage error of a command line that must be refused, or "" when it was accepted.
std::string usage_error(std::vector<std::string_view> args) {
  const auto parsed = up(std::move(args));
  const auto* error = std::get_if<UsageError>(&parsed);
  return error ? error->message : "";
}

Ipv4Interface interface(std::string_view text) {
  return *Ipv4Interface::parse(text);
}

TEST_CASE("up: the required options alone") {
  const auto parsed = up({"--tap", "tap0", "--addr", "198.18.0.2/24"});
  REQUIRE(std::holds_alternative<UpOptions>(parsed));
  const CommonOptions& options = std::get<UpOptions>(parsed).common;
  CHECK(options.tap == "tap0");
  CHECK(options.addr == interface("198.18.0.2/24"));
  CHECK_FALSE(options.host_addr);
  CHECK_FALSE(options.mac);
  CHECK(options.pcap_path.empty());
  CHECK(options.stats_path.empty());
  CHECK_FALSE(options.trace);
}

TEST_CASE("up: every common option, in both spellings") {
  const auto parsed =
      up({"--tap=t1", "--addr", "198.18.0.2/24", "--host-addr=198.18.0.1/24", "--mac",
          "02:00:00:00:00:09", "--pcap", "out.pcap", "--stats=s.json", "--trace"});
  REQUIRE(std::holds_alternative<UpOptions>(parsed));
  const CommonOptions& options = std::get<UpOptions>(parsed).common;
  CHECK(options.tap == "t1");
  CHECK(options.host_addr == interface("198.18.0.1/24"));
  CHECK(options.mac == MacAddress::parse("02:00:00:00:00:09"));
  CHECK(options.pcap_path == "out.pcap");
  CHECK(options.stats_path == "s.json");
  CHECK(options.trace);
}

TEST_CASE("up: help wins") {
  CHECK(std::holds_alternative<HelpRequested>(up({"--help"})));
  CHECK(std::holds_alternative<HelpRequested>(up({"--tap", "tap0", "-h"})));
}

TEST_CASE("up: bad command lines are usage errors that say what is wrong") {
  struct Case {
    std::vector<std::string_view> args;
    std::string_view expected;  // a part of the message
  };
  const std::vector<Case> cases = {
      {{}, "missing --tap"},
      {{"--tap", "tap0"}, "missing --addr"},
      {{"--addr", "198.18.0.2/24"}, "missing --tap"},
      {{"--tap"}, "option --tap needs a value"},
      {{"--tap", "--addr", "198.18.0.2/24"}, "option --tap needs a value"},
      {{"--tap=", "--addr", "198.18.0.2/24"}, "option --tap needs a value"},
      {{"--tap", "tap0", "--addr", "198.18.0.2/24", "--bogus"}, "unknown option '--bogus'"},
      {{"--tap", "tap0", "--addr", "198.18.0.2/24", "stray"}, "unexpected argument 'stray'"},
      {{"--tap", "tap0", "--tap", "tap1", "--addr", "198.18.0.2/24"}, "--tap given twice"},
      {{"--tap", "abcdefghijklmnop", "--addr", "198.18.0.2/24"}, "at most 15"},
      {{"--tap", "a/b", "--addr", "198.18.0.2/24"}, "bad --tap"},
      {{"--tap", "tap0", "--addr", "198.18.0.2"}, "bad --addr '198.18.0.2'"},
      {{"--tap", "tap0", "--addr", "198.18.0.256/24"}, "bad --addr"},
      {{"--tap", "tap0", "--addr", "198.18.0.2/33"}, "bad --addr"},
      {{"--tap", "tap0", "--addr", "198.18.0.2/0"}, "prefix length 0"},
      {{"--tap", "tap0", "--addr", "198.18.0.255/24"}, "broadcast address of its subnet"},
      {{"--tap", "tap0", "--addr", "198.18.0.0/24"}, "network address"},
      {{"--tap", "tap0", "--addr", "224.0.0.1/24"}, "multicast"},
      {{"--tap", "tap0", "--addr", "127.0.0.2/8"}, "loopback"},
      {{"--tap", "tap0", "--addr", "198.18.0.2/24", "--host-addr", "x"}, "bad --host-addr"},
      {{"--tap", "tap0", "--addr", "198.18.0.2/24", "--host-addr", "198.18.0.2/24"},
       "both 198.18.0.2"},
      {{"--tap", "tap0", "--addr", "198.18.0.2/24", "--host-addr", "198.19.0.1/24"},
       "not in the same subnet"},
      {{"--tap", "tap0", "--addr", "198.18.0.2/24", "--mac", "02:00:00:00:00"}, "bad --mac"},
      {{"--tap", "tap0", "--addr", "198.18.0.2/24", "--mac", "01:00:5e:00:00:01"}, "unicast"},
      {{"--tap", "tap0", "--addr", "198.18.0.2/24", "--mac", "00:00:00:00:00:00"}, "unicast"},
      {{"--tap", "tap0", "--addr", "198.18.0.2/24", "--trace=yes"}, "takes no value"},
      {{"--tap", "tap0", "--addr", "198.18.0.2/24", "--pcap"}, "option --pcap needs a value"},
  };
  for (const Case& c : cases) {
    CAPTURE(fmt::format("{}", fmt::join(c.args, " ")));
    const std::string message = usage_error(c.args);
    CHECK(message.find(c.expected) != std::string::npos);
    CHECK(message.find('\n') == std::string::npos);  // one line on stderr
  }
}

TEST_CASE("the common options parse inside another command's loop") {
  // A later command (`serve`) adds --port and reuses the common parser unchanged.
  const std::vector<std::string_view> args = {"--port", "179",    "--tap",
                                              "tap0",   "--addr", "198.18.0.2/24"};
  CommandLine line(args);
  CommonOptions options;
  std::string_view port;
  while (line.next()) {
    if (parse_common_option(line, options)) continue;
    if (line.is("--port")) {
      port = line.value();
      continue;
    }
    line.reject();
  }
  check_common_options(line, options);
  CHECK_FALSE(line.error());
  CHECK(port == "179");
  CHECK(options.tap == "tap0");
}

TEST_CASE("derive_mac: locally administered unicast made of the IPv4 address") {
  const MacAddress kernel = *MacAddress::parse("5e:11:22:33:44:55");
  const MacAddress mac = derive_mac(*Ipv4Address::parse("198.18.0.2"), kernel);
  CHECK(mac.to_string() == "02:00:c6:12:00:02");
  CHECK((mac.bytes[0] & 0x02) != 0);  // locally administered
  CHECK_FALSE(mac.is_multicast());
  CHECK(derive_mac(*Ipv4Address::parse("198.18.0.3"), kernel).to_string() == "02:00:c6:12:00:03");
}

TEST_CASE("derive_mac: never the kernel side's MAC") {
  const Ipv4Address address = *Ipv4Address::parse("198.18.0.2");
  const MacAddress clash = *MacAddress::parse("02:00:c6:12:00:02");
  const MacAddress mac = derive_mac(address, clash);
  CHECK(mac != clash);
  CHECK(mac.to_string() == "02:01:c6:12:00:02");
  CHECK_FALSE(mac.is_multicast());
}

}  // namespace
}  // namespace tapstack::cli
