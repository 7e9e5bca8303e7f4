// The tapstack argument parser and the default MAC, without running anything.
#include <doctest/doctest.h>

#include <stdlib.h>
#include <sys/stat.h>

#include <fstream>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <fmt/format.h>

#include "tests/tap/test_paths.h"
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
  CHECK(options.tap_queues == 1);
}

TEST_CASE("up: every common option, in both spellings") {
  const auto parsed = up({"--tap=t1", "--addr", "198.18.0.2/24", "--host-addr=198.18.0.1/24",
                          "--mac", "02:00:00:00:00:09", "--pcap", "out.pcap", "--stats=s.json",
                          "--trace", "--tap-queues=16"});
  REQUIRE(std::holds_alternative<UpOptions>(parsed));
  const CommonOptions& options = std::get<UpOptions>(parsed).common;
  CHECK(options.tap == "t1");
  CHECK(options.host_addr == interface("198.18.0.1/24"));
  CHECK(options.mac == MacAddress::parse("02:00:00:00:00:09"));
  CHECK(options.pcap_path == "out.pcap");
  CHECK(options.stats_path == "s.json");
  CHECK(options.trace);
  CHECK(options.tap_queues == 16);
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
      {{"--tap", "tap0", "--addr", "198.18.0.2/24", "--tap-queues", "0"}, "bad --tap-queues '0'"},
      {{"--tap", "tap0", "--addr", "198.18.0.2/24", "--tap-queues", "17"}, "from 1 to 16"},
      {{"--tap", "tap0", "--addr", "198.18.0.2/24", "--tap-queues", "two"}, "bad --tap-queues"},
      {{"--tap", "tap0", "--addr", "198.18.0.2/24", "--tap-queues", "2x"}, "bad --tap-queues"},
      {{"--tap", "tap0", "--addr", "198.18.0.2/24", "--tap-queues", "-1"}, "bad --tap-queues"},
      {{"--tap", "tap0", "--addr", "198.18.0.2/24", "--tap-queues=+2"}, "bad --tap-queues"},
      {{"--tap", "tap0", "--addr", "198.18.0.2/24", "--tap-queues"}, "needs a value"},
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

TEST_CASE("an unknown option close to a known one says what was meant") {
  struct Case {
    std::vector<std::string_view> extra;
    std::string_view expected;  // the whole message
  };
  const std::vector<Case> cases = {
      {{"--host_addr", "x"}, "unknown option '--host_addr'; did you mean '--host-addr'?"},
      {{"--tap-queue", "2"}, "unknown option '--tap-queue'; did you mean '--tap-queues'?"},
      {{"--no-ofloads"}, "unknown option '--no-ofloads'; did you mean '--no-offloads'?"},
      {{"--tarce"}, "unknown option '--tarce'; did you mean '--trace'?"},  // a swap is one edit
      {{"--stat", "f"}, "unknown option '--stat'; did you mean '--stats'?"},
      {{"--host", "x"}, "unknown option '--host'; did you mean '--host-addr'?"},  // to a '-'
      {{"--hepl"}, "unknown option '--hepl'; did you mean '--help'?"},
      {{"--bogus"}, "unknown option '--bogus'"},  // nothing close: no guess
      {{"--port", "5"}, "unknown option '--port'"},
      {{"-x"}, "unknown option '-x'"},
  };
  for (const Case& c : cases) {
    std::vector<std::string_view> args = {"--tap", "tap0", "--addr", "198.18.0.2/24"};
    args.insert(args.end(), c.extra.begin(), c.extra.end());
    CAPTURE(fmt::format("{}", fmt::join(args, " ")));
    CHECK(usage_error(args) == c.expected);
  }
  // The guess comes from the names the loop asked about, whichever command it is.
  const auto serve = parse_serve(std::vector<std::string_view>{
      "--tap", "tap0", "--addr", "198.18.0.2/24", "--port", "1", "--md5-key", "x"});
  REQUIRE(std::holds_alternative<UsageError>(serve));
  CHECK(std::get<UsageError>(serve).message == "unknown option '--md5-key'; did you mean '--md5'?");
}

TEST_CASE("closest_name: one or two edits, or a name up to a '-'") {
  const std::vector<std::string> known = {"--md5-key", "--passive", "--local-as", "--to", "-h"};
  CHECK(closest_name("--md5", known) == "--md5-key");
  CHECK(closest_name("--md5-ke", known) == "--md5-key");
  CHECK(closest_name("--pasive", known) == "--passive");
  CHECK(closest_name("--local_as", known) == "--local-as");
  CHECK(closest_name("--lcoal-sa", known) == "--local-as");  // two swaps in a long name
  CHECK(closest_name("--tx", known) == "--to");
  CHECK_FALSE(closest_name("--md", known));  // "md" is not "md5" up to a '-'
  CHECK_FALSE(closest_name("--tap", known));
  CHECK_FALSE(closest_name("--active", known));
  CHECK_FALSE(closest_name("-x", known));  // too short to guess, and -h is never a guess
  CHECK_FALSE(closest_name("--x", std::vector<std::string>{}));
}

// --md5 values walked as serve and connect walk them; keys, or the usage error.
struct Md5Parse {
  std::vector<Md5KeyOption> keys;
  std::string error;
};
Md5Parse parse_md5(const std::vector<std::string>& values) {
  std::vector<std::string_view> args;
  for (const auto& value : values) args.insert(args.end(), {"--md5", value});
  CommandLine line(args);
  Md5Parse result;
  while (line.next()) {
    if (line.is_repeatable("--md5")) {
      parse_md5_option(line, line.value(), result.keys);
    } else {
      line.reject();
    }
  }
  if (line.error()) result.error = line.error()->message;
  return result;
}

std::string key_text(const Md5KeyOption& key) {
  return std::string(key.key.begin(), key.key.end());
}

TEST_CASE("--md5: the seed's key, hex keys and prefixes, repeatable") {
  const auto parsed = parse_md5({"198.18.0.1=12345", "198.18.1.0/24=hex:3132333435",
                                 "198.18.2.7=a=b c", "198.18.3.0/0=hex:00FF"});
  REQUIRE(parsed.error == "");
  REQUIRE(parsed.keys.size() == 4);
  CHECK(parsed.keys[0].peer == *Ipv4Address::parse("198.18.0.1"));
  CHECK(parsed.keys[0].prefix_length == 32);
  CHECK(key_text(parsed.keys[0]) == "12345");
  CHECK(parsed.keys[0].peer_text() == "198.18.0.1");
  CHECK(parsed.keys[1].prefix_length == 24);
  CHECK(key_text(parsed.keys[1]) == "12345");  // hex 31..35 is "12345"
  CHECK(parsed.keys[1].peer_text() == "198.18.1.0/24");
  CHECK(key_text(parsed.keys[2]) == "a=b c");  // the key is all after the first '='
  CHECK(parsed.keys[3].prefix_length == 0);
  CHECK(parsed.keys[3].key == std::vector<uint8_t>{0x00, 0xff});
  CHECK(md5_keys_text(parsed.keys) ==
        ", TCP-MD5 keys for 198.18.0.1, 198.18.1.0/24, 198.18.2.7 and 198.18.3.0/0");
}

TEST_CASE("--md5: again replaces, empty deletes, as TCP_MD5SIG does on one socket") {
  auto parsed = parse_md5({"198.18.0.1=old", "198.18.0.1/24=wide", "198.18.0.1=new"});
  REQUIRE(parsed.error == "");
  REQUIRE(parsed.keys.size() == 2);  // /32 and /24 of the same address are two keys
  CHECK(key_text(parsed.keys[0]) == "new");
  CHECK(key_text(parsed.keys[1]) == "wide");

  parsed = parse_md5({"198.18.0.1=old", "198.18.0.1/24=wide", "198.18.0.1="});
  REQUIRE(parsed.error == "");
  REQUIRE(parsed.keys.size() == 1);
  CHECK(parsed.keys[0].prefix_length == 24);

  parsed = parse_md5({"198.18.0.1=old", "198.18.0.1=hex:"});  // an empty hex key deletes too
  CHECK(parsed.error == "");
  CHECK(parsed.keys.empty());
}

TEST_CASE("--md5: bad values are one-line usage errors that never show the key") {
  const std::string eighty(80, 'k');
  const std::string eighty_one(81, 'k');
  CHECK(parse_md5({"198.18.0.1=" + eighty}).error == "");
  CHECK(parse_md5({"198.18.0.1=hex:" + std::string(160, 'a')}).error == "");
  struct Case {
    std::vector<std::string> values;
    std::string_view expected;
  };
  const std::vector<Case> cases = {
      {{"198.18.0.1=" + eighty_one}, "81 bytes; TCP-MD5 keys are 1 to 80 bytes"},
      {{"198.18.0.1=hex:" + std::string(162, 'a')}, "81 bytes"},
      {{"198.18.0.1="}, "no earlier --md5 set one for 198.18.0.1"},
      {{"198.18.0.1=x", "198.18.0.1/24="}, "no earlier --md5 set one for 198.18.0.1/24"},
      {{"198.18.0.1"}, "expected PEER[/PREFIX]=KEY"},
      {{"=12345"}, "bad --md5 peer ''"},
      {{"peer=12345"}, "bad --md5 peer 'peer'"},
      {{"2001:db8::1/129=12345"}, "bad --md5 prefix '129': expected a length from 0 to 128"},
      {{"2001:db8::1/=12345"}, "bad --md5 prefix ''"},
      {{"2001:db8::zz=12345"}, "bad --md5 peer '2001:db8::zz'"},
      {{"[2001:db8::1]=12345"}, "bad --md5 peer '[2001:db8::1]'"},
      {{"198.18.0.1/33=12345"}, "bad --md5 prefix '33': expected a length from 0 to 32"},
      {{"198.18.0.1/=12345"}, "bad --md5 prefix ''"},
      {{"198.18.0.1/x=12345"}, "bad --md5 prefix 'x'"},
      {{"198.18.0.1=hex:123"}, "pairs of hex digits"},
      {{"198.18.0.1=hex:zz12secret"}, "pairs of hex digits"},
  };
  for (const Case& c : cases) {
    const auto parsed = parse_md5(c.values);
    CAPTURE(fmt::format("{}", fmt::join(c.values, " ")));
    CHECK(parsed.error.find(c.expected) != std::string::npos);
    CHECK(parsed.error.find('\n') == std::string::npos);
    CHECK(parsed.error.find("secret") == std::string::npos);
    CHECK(parsed.error.find(eighty_one) == std::string::npos);
  }
}

// A key file with the given text and mode, in the test's temporary directory.
std::string key_file(std::string_view name, std::string_view text, mode_t mode) {
  const std::string path = testing::temporary_path(name);
  std::ofstream(path, std::ios::trunc) << text;
  REQUIRE(chmod(path.c_str(), mode) == 0);
  return path;
}

TEST_CASE("--md5 PEER=@FILE: the key from a file only its owner may use") {
  const std::string text = key_file("text.key", "12345\n", 0600);
  const std::string hex = key_file("hex.key", "hex:3132333435", 0400);
  const std::string newlines = key_file("newlines.key", "k\n\n", 0600);
  const auto parsed =
      parse_md5({"198.18.0.1=@" + text, "198.18.0.0/24=@" + hex, "198.18.0.3=@" + newlines});
  REQUIRE(parsed.error == "");
  REQUIRE(parsed.keys.size() == 3);
  CHECK(key_text(parsed.keys[0]) == "12345");  // one trailing newline is not the key's
  CHECK(key_text(parsed.keys[1]) == "12345");  // the file may hold hex:
  CHECK(key_text(parsed.keys[2]) == "k\n");    // only one is dropped

  struct Case {
    std::string value;
    std::string expected;  // the whole message
  };
  const std::string open = key_file("open.key", "secret\n", 0644);
  const std::string group = key_file("group.key", "secret", 0620);
  const std::string empty = key_file("empty.key", "\n", 0600);
  const std::string missing = testing::temporary_path("missing.key");
  const std::string directory = testing::temporary_path("");
  const std::vector<Case> cases = {
      {"198.18.0.1=@" + open,
       fmt::format("bad --md5 key file '{}' for 198.18.0.1: mode 0644 lets group or others at "
                   "the key; make it private to its owner with chmod 600 '{}'",
                   open, open)},
      {"198.18.0.0/24=@" + group,
       fmt::format("bad --md5 key file '{}' for 198.18.0.0/24: mode 0620 lets group or others at "
                   "the key; make it private to its owner with chmod 600 '{}'",
                   group, group)},
      {"198.18.0.1=@" + missing,
       fmt::format("bad --md5 key file '{}' for 198.18.0.1: No such file or directory", missing)},
      {"198.18.0.1=@" + directory,
       fmt::format("bad --md5 key file '{}' for 198.18.0.1: not a regular file", directory)},
      {"198.18.0.1=@/dev/null",
       "bad --md5 key file '/dev/null' for 198.18.0.1: not a regular file"},
      {"198.18.0.1=@" + empty,
       fmt::format("bad --md5 key file '{}' for 198.18.0.1: it is empty", empty)},
      {"198.18.0.1=@",
       "bad --md5 key file '' for 198.18.0.1: @ needs a file name, like "
       "@/etc/tapstack/peer.key"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.value);
    const auto refused = parse_md5({c.value});
    CHECK(refused.error == c.expected);
    CHECK(refused.error.find("secret") == std::string::npos);
  }
}

TEST_CASE("--md5 PEER=env:NAME: the key from the environment") {
  REQUIRE(setenv("TAPSTACK_TEST_KEY", "12345", 1) == 0);
  REQUIRE(setenv("TAPSTACK_TEST_HEX", "hex:3132333435", 1) == 0);
  REQUIRE(setenv("TAPSTACK_TEST_EMPTY", "", 1) == 0);
  unsetenv("TAPSTACK_TEST_UNSET");
  const auto parsed =
      parse_md5({"198.18.0.1=env:TAPSTACK_TEST_KEY", "198.18.0.3=env:TAPSTACK_TEST_HEX"});
  REQUIRE(parsed.error == "");
  REQUIRE(parsed.keys.size() == 2);
  CHECK(key_text(parsed.keys[0]) == "12345");
  CHECK(key_text(parsed.keys[1]) == "12345");
  CHECK(parse_md5({"198.18.0.1=env:TAPSTACK_TEST_UNSET"}).error ==
        "bad --md5 key for 198.18.0.1: environment variable TAPSTACK_TEST_UNSET is not set");
  CHECK(parse_md5({"198.18.0.1=env:TAPSTACK_TEST_EMPTY"}).error ==
        "bad --md5 key for 198.18.0.1: environment variable TAPSTACK_TEST_EMPTY is empty");
  CHECK(parse_md5({"198.18.0.1=env:"}).error ==
        "bad --md5 key for 198.18.0.1: env: needs a variable name, like env:PEER_KEY");
  // A text key that begins with @ or env: is given in hex: "@k" is 40 6b.
  const auto literal = parse_md5({"198.18.0.1=hex:406b"});
  REQUIRE(literal.keys.size() == 1);
  CHECK(key_text(literal.keys[0]) == "@k");
}

// One KEY alone, as tapstack bgp's --md5-key gives it: the forms and limits of --md5's KEY,
// errors said of the option.
TEST_CASE("parse_md5_key: one KEY in every form, md5opt's length limit, errors of its option") {
  struct Parsed {
    std::optional<std::vector<uint8_t>> key;
    std::string error;
  };
  const auto parse = [](std::string_view text) {
    const std::vector<std::string_view> none;
    CommandLine line(none);
    Parsed parsed{parse_md5_key(line, text, {"--md5-key", ""}), ""};
    if (line.error()) parsed.error = line.error()->message;
    return parsed;
  };
  CHECK(parse("12345").key == std::vector<uint8_t>{'1', '2', '3', '4', '5'});
  CHECK(parse("hex:00ff").key == std::vector<uint8_t>{0x00, 0xff});
  CHECK(parse("hex:").key == std::vector<uint8_t>{});  // empty: the caller decides
  REQUIRE(setenv("TAPSTACK_TEST_KEY", "hex:3132", 1) == 0);
  CHECK(parse("env:TAPSTACK_TEST_KEY").key == std::vector<uint8_t>{'1', '2'});
  const std::string file = key_file("one-key", "k\n", 0600);
  CHECK(parse("@" + file).key == std::vector<uint8_t>{'k'});
  CHECK(parse(std::string(80, 'k')).key.has_value());
  CHECK(parse(std::string(81, 'k')).error ==
        "bad --md5-key: 81 bytes; TCP-MD5 keys are 1 to 80 bytes (TCP_MD5SIG_MAXKEYLEN)");
  CHECK(parse("hex:zz").error ==
        "bad --md5-key: after hex: expected pairs of hex digits (two per byte)");
  unsetenv("TAPSTACK_TEST_UNSET");
  CHECK(parse("env:TAPSTACK_TEST_UNSET").error ==
        "bad --md5-key: environment variable TAPSTACK_TEST_UNSET is not set");
  const std::string open_file = key_file("open-key", "k", 0644);
  CHECK(parse("@" + open_file).error.starts_with(
      fmt::format("bad --md5-key file '{}': mode 0644", open_file)));
}

TEST_CASE("--md5 on serve and connect") {
  const auto serve = parse_serve(std::vector<std::string_view>{
      "--tap", "tap0", "--addr", "198.18.0.2/24", "--port", "6666", "--md5", "198.18.0.1=12345",
      "--md5=198.18.1.0/24=other"});
  REQUIRE(std::holds_alternative<ServeOptions>(serve));
  CHECK(std::get<ServeOptions>(serve).md5_keys.size() == 2);
  const auto connect = parse_connect(std::vector<std::string_view>{
      "--tap", "tap0", "--addr", "198.18.0.2/24", "--to", "198.18.0.1:6666", "--md5",
      "198.18.0.1=12345"});
  REQUIRE(std::holds_alternative<ConnectOptions>(connect));
  CHECK(key_text(std::get<ConnectOptions>(connect).md5_keys.at(0)) == "12345");
}

TEST_CASE("derive_mac: locally administered unicast made of the IPv4 address") {
  const MacAddress kernel = *MacAddress::parse("5e:11:22:33:44:55");
  const MacAddress mac = derive_mac(*Ipv4Address::parse("198.18.0.2"), kernel);
  CHECK(mac.to_string() == "02:00:c6:12:00:02");
  CHECK((mac.bytes[0] & 0x02) != 0);  // locally administered
  CHECK_FALSE(mac.is_multicast());
  CHECK(derive_mac(*Ipv4Address::parse("198.18.0.3"), kernel).to_string() == "02:00:c6:12:00:03");
}

TEST_CASE("derive_mac: from the last four bytes of an IPv6 address when there is no IPv4 one") {
  const MacAddress kernel = *MacAddress::parse("5e:11:22:33:44:55");
  CHECK(derive_mac(*IpAddress::parse("2001:db8::2"), kernel).to_string() == "02:00:00:00:00:02");
  CHECK(derive_mac(*IpAddress::parse("2001:db8::c612:1:2"), kernel).to_string() ==
        "02:00:00:01:00:02");
  const MacAddress clash = *MacAddress::parse("02:00:00:00:00:02");
  CHECK(derive_mac(*IpAddress::parse("2001:db8::2"), clash).to_string() == "02:01:00:00:00:02");
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

namespace tapstack::cli {
namespace {

Ipv6Interface interface6(std::string_view text) {
  return *Ipv6Interface::parse(text);
}

IpAddress ip(std::string_view text) {
  return *IpAddress::parse(text);
}

const CommonOptions& common_of(const Parsed<UpOptions>& parsed) {
  REQUIRE(std::holds_alternative<UpOptions>(parsed));
  return std::get<UpOptions>(parsed).common;
}

TEST_CASE("--addr: IPv4, IPv6 or one of each, in either order") {
  const auto v6 = up({"--tap", "tap0", "--addr", "2001:db8::2/64"});
  const CommonOptions& only6 = common_of(v6);
  CHECK_FALSE(only6.has_ipv4());
  CHECK(only6.addr == Ipv4Interface{Ipv4Address{}, 0});  // StackConfig's "IPv4 off"
  CHECK(only6.addr6 == interface6("2001:db8::2/64"));
  CHECK(only6.addresses_text() == "2001:db8::2/64");

  const auto both = up({"--tap", "tap0", "--addr=2001:db8::2/64", "--addr", "198.18.0.2/24",
                        "--host-addr", "2001:db8::1/64", "--host-addr=198.18.0.1/24", "--gateway",
                        "fe80::1", "--gateway=198.18.0.254"});
  const CommonOptions& dual = common_of(both);
  CHECK(dual.addr == interface("198.18.0.2/24"));
  CHECK(dual.addr6 == interface6("2001:db8::2/64"));
  CHECK(dual.host_addr == interface("198.18.0.1/24"));
  CHECK(dual.host_addr6 == interface6("2001:db8::1/64"));
  CHECK(dual.gateway == *Ipv4Address::parse("198.18.0.254"));
  CHECK(dual.gateway6 == ip("fe80::1"));
  CHECK(dual.addresses_text() == "198.18.0.2/24 and 2001:db8::2/64");

  const auto v4 = up({"--tap", "tap0", "--addr", "198.18.0.2/24"});
  CHECK(common_of(v4).has_ipv4());
  CHECK_FALSE(common_of(v4).has_ipv6());
  CHECK_FALSE(common_of(v4).host_addr6);

  // An IPv6 gateway inside the --addr prefix, and prefix lengths up to 128.
  CHECK(common_of(up({"--tap", "tap0", "--addr", "2001:db8::2/64", "--gateway", "2001:db8::ffff"}))
            .gateway6 == ip("2001:db8::ffff"));
  CHECK(common_of(up({"--tap", "tap0", "--addr", "2001:db8::2/128"})).addr6->prefix_length == 128);
}

TEST_CASE("--addr, --host-addr, --gateway: bad IPv6 and mixed-family lines, one line each") {
  struct Case {
    std::vector<std::string_view> args;
    std::string_view expected;
  };
  const std::vector<Case> cases = {
      {{"--tap", "tap0", "--addr", "2001:db8::2/129"},
       "bad --addr '2001:db8::2/129': an IPv6 prefix length is 1 to 128"},
      {{"--tap", "tap0", "--addr", "198.18.0.2/33"},
       "bad --addr '198.18.0.2/33': an IPv4 prefix length is 1 to 32"},
      {{"--tap", "tap0", "--addr", "2001:db8::2/0"}, "has prefix length 0; use 1 to 128"},
      {{"--tap", "tap0", "--addr", "2001:db8::2/1000"}, "expected an IPv4 or IPv6 address"},
      {{"--tap", "tap0", "--addr", "2001:db8::2"}, "bad --addr '2001:db8::2': expected"},
      {{"--tap", "tap0", "--addr", "2001:db8:::2/64"}, "bad --addr '2001:db8:::2/64'"},
      {{"--tap", "tap0", "--addr", "[2001:db8::2]/64"}, "bad --addr"},
      {{"--tap", "tap0", "--addr", "::/64"}, "unspecified"},
      {{"--tap", "tap0", "--addr", "::1/128"}, "loopback"},
      {{"--tap", "tap0", "--addr", "ff02::1/64"}, "multicast"},
      {{"--tap", "tap0", "--addr", "fe80::2/64"}, "link-local"},
      {{"--tap", "tap0", "--addr", "::ffff:198.18.0.2/120"}, "IPv4-mapped"},
      {{"--tap", "tap0", "--addr", "198.18.0.2/24", "--addr", "198.18.0.3/24"},
       "option --addr given twice for IPv4 (198.18.0.2/24 and 198.18.0.3/24)"},
      {{"--tap", "tap0", "--addr", "2001:db8::2/64", "--addr", "2001:db8::3/64"},
       "option --addr given twice for IPv6"},
      {{"--tap", "tap0", "--addr", "2001:db8::2/64", "--host-addr", "198.18.0.1/24"},
       "--host-addr 198.18.0.1/24 is IPv4, and there is no IPv4 --addr"},
      {{"--tap", "tap0", "--addr", "198.18.0.2/24", "--host-addr", "2001:db8::1/64"},
       "--host-addr 2001:db8::1/64 is IPv6, and there is no IPv6 --addr"},
      {{"--tap", "tap0", "--addr", "2001:db8::2/64", "--host-addr", "2001:db8::2/64"},
       "both 2001:db8::2"},
      {{"--tap", "tap0", "--addr", "2001:db8::2/64", "--host-addr", "2001:db8:1::1/64"},
       "not in the same subnet"},
      {{"--tap", "tap0", "--addr", "2001:db8::2/64", "--host-addr", "2001:db8::1/64", "--host-addr",
        "2001:db8::3/64"},
       "option --host-addr given twice for IPv6"},
      {{"--tap", "tap0", "--addr", "2001:db8::2/64", "--gateway", "2001:db8:1::1"},
       "--gateway 2001:db8:1::1 is not on the link: it must be inside --addr 2001:db8::2/64 or "
       "link-local"},
      {{"--tap", "tap0", "--addr", "198.18.0.2/24", "--gateway", "198.19.0.1"},
       "--gateway 198.19.0.1 is not on the link"},
      {{"--tap", "tap0", "--addr", "198.18.0.2/24", "--gateway", "fe80::1"},
       "--gateway fe80::1 is IPv6, and there is no IPv6 --addr"},
      {{"--tap", "tap0", "--addr", "2001:db8::2/64", "--gateway", "198.18.0.1"},
       "--gateway 198.18.0.1 is IPv4, and there is no IPv4 --addr"},
      {{"--tap", "tap0", "--addr", "2001:db8::2/64", "--gateway", "2001:db8::2"},
       "is the stack's own address"},
      {{"--tap", "tap0", "--addr", "2001:db8::2/64", "--gateway", "ff02::2"}, "unicast"},
      {{"--tap", "tap0", "--addr", "2001:db8::2/64", "--gateway", "fe80::1", "--gateway",
        "fe80::2"},
       "option --gateway given twice for IPv6"},
      {{"--tap", "tap0", "--addr", "2001:db8::2/64", "--gateway", "fe80::1/64"},
       "bad --gateway 'fe80::1/64'"},
  };
  for (const Case& c : cases) {
    CAPTURE(fmt::format("{}", fmt::join(c.args, " ")));
    const std::string message = usage_error(c.args);
    CHECK(message.find(c.expected) != std::string::npos);
    CHECK(message.find('\n') == std::string::npos);
  }
}

TEST_CASE("--md5: IPv6 peers and prefixes up to 128, beside IPv4 ones") {
  const auto parsed = parse_md5({"2001:db8::1=12345", "2001:db8::/64=hex:3132333435",
                                 "198.18.0.1=v4", "2001:db8::1/128=again"});
  REQUIRE(parsed.error == "");
  REQUIRE(parsed.keys.size() == 3);  // /128 is the address alone: it replaced the first key
  CHECK(parsed.keys[0].peer == ip("2001:db8::1"));
  CHECK(parsed.keys[0].prefix_length == 128);
  CHECK(key_text(parsed.keys[0]) == "again");
  CHECK(parsed.keys[0].peer_text() == "2001:db8::1");
  CHECK(parsed.keys[1].peer_text() == "2001:db8::/64");
  CHECK(parsed.keys[1].covers(ip("2001:db8::7")));
  CHECK_FALSE(parsed.keys[1].covers(ip("2001:db8:1::7")));
  CHECK_FALSE(parsed.keys[1].covers(ip("198.18.0.1")));
  CHECK(parsed.keys[2].peer == *Ipv4Address::parse("198.18.0.1"));
  CHECK(parsed.keys[2].prefix_length == 32);  // IPv4 exactly as before
  CHECK(md5_keys_text(parsed.keys) ==
        ", TCP-MD5 keys for 2001:db8::1, 2001:db8::/64 and 198.18.0.1");
  CHECK(parse_md5({"2001:db8::1=k", "2001:db8::1="}).keys.empty());  // empty deletes
  CHECK(parse_md5({"2001:db8::/0=k"}).keys.at(0).prefix_length == 0);
}

TEST_CASE("--md5 for a family the stack has no --addr of is a usage error") {
  const auto serve = parse_serve(std::vector<std::string_view>{
      "--tap", "tap0", "--addr", "198.18.0.2/24", "--port", "179", "--md5", "2001:db8::/64=k"});
  REQUIRE(std::holds_alternative<UsageError>(serve));
  CHECK(std::get<UsageError>(serve).message ==
        "--md5 2001:db8::/64 is a key for IPv6 peers, and the stack has no IPv6 --addr: no such "
        "peer could reach it");
  const auto connect = parse_connect(
      std::vector<std::string_view>{"--tap", "tap0", "--addr", "2001:db8::2/64", "--to",
                                    "[2001:db8::1]:179", "--md5", "198.18.0.1=k"});
  REQUIRE(std::holds_alternative<UsageError>(connect));
  CHECK(std::get<UsageError>(connect).message.find("--md5 198.18.0.1 is a key for IPv4 peers") !=
        std::string::npos);
  const auto dual = parse_serve(std::vector<std::string_view>{
      "--tap", "tap0", "--addr", "198.18.0.2/24", "--addr", "2001:db8::2/64", "--port", "179",
      "--md5", "2001:db8::/64=k", "--md5", "198.18.0.1=k"});
  REQUIRE(std::holds_alternative<ServeOptions>(dual));
  CHECK(std::get<ServeOptions>(dual).md5_keys.size() == 2);
}

// The usage error of a connect line, or "" when it was accepted.
std::string connect_error(std::vector<std::string_view> args) {
  const auto parsed = parse_connect(args);
  const auto* error = std::get_if<UsageError>(&parsed);
  return error ? error->message : "";
}

TEST_CASE("connect --to [IPV6]:PORT") {
  const auto parsed = parse_connect(std::vector<std::string_view>{
      "--tap", "tap0", "--addr", "2001:db8::2/64", "--to", "[2001:db8::1]:179"});
  REQUIRE(std::holds_alternative<ConnectOptions>(parsed));
  CHECK(std::get<ConnectOptions>(parsed).remote == ip("2001:db8::1"));
  CHECK(std::get<ConnectOptions>(parsed).remote_port == 179);
  // IPv4 still as before, beside an IPv6 --addr too.
  const auto v4 = parse_connect(
      std::vector<std::string_view>{"--tap", "tap0", "--addr", "2001:db8::2/64", "--addr",
                                    "198.18.0.2/24", "--to", "198.18.0.1:5000"});
  REQUIRE(std::holds_alternative<ConnectOptions>(v4));
  CHECK(std::get<ConnectOptions>(v4).remote == *Ipv4Address::parse("198.18.0.1"));
  // Link-local peers are on the link; others off it need a --gateway.
  CHECK(connect_error({"--tap", "tap0", "--addr", "2001:db8::2/64", "--to", "[fe80::1]:22"}) == "");
  CHECK(connect_error({"--tap", "tap0", "--addr", "2001:db8::2/64", "--gateway", "fe80::1", "--to",
                       "[2001:db8:5::1]:22"}) == "");
  CHECK(connect_error({"--tap", "tap0", "--addr", "198.18.0.2/24", "--gateway", "198.18.0.1",
                       "--to", "198.19.0.1:22"}) == "");

  struct Case {
    std::vector<std::string_view> args;
    std::string_view expected;
  };
  const std::vector<Case> cases = {
      {{"--addr", "2001:db8::2/64", "--to", "2001:db8::1:179"},
       "bad --to '2001:db8::1:179': an IPv6 address needs brackets before the port, like "
       "[2001:db8::1]:179"},
      {{"--addr", "2001:db8::2/64", "--to", "2001:db8::1"}, "needs brackets"},
      {{"--addr", "2001:db8::2/64", "--to", "[2001:db8::1]"},
       "expected [IPV6-ADDRESS]:PORT, like [2001:db8::1]:179"},
      {{"--addr", "2001:db8::2/64", "--to", "[2001:db8::1]179"}, "expected [IPV6-ADDRESS]:PORT"},
      {{"--addr", "2001:db8::2/64", "--to", "[2001:db8::1:179"}, "expected [IPV6-ADDRESS]:PORT"},
      {{"--addr", "2001:db8::2/64", "--to", "[2001:db8::1]:0"}, "the port must be a number"},
      {{"--addr", "2001:db8::2/64", "--to", "[2001:db8::1]:65536"}, "the port must be"},
      {{"--addr", "198.18.0.2/24", "--to", "[198.18.0.1]:179"}, "an IPv6 address in the brackets"},
      {{"--addr", "2001:db8::2/64", "--to", "[nonsense]:179"}, "an IPv6 address in the brackets"},
      {{"--addr", "198.18.0.2/24", "--to", "[2001:db8::1]:179"},
       "--to 2001:db8::1 is IPv6, and the stack has no IPv6 address; add --addr X:X::X/LEN"},
      {{"--addr", "2001:db8::2/64", "--to", "198.18.0.1:179"},
       "--to 198.18.0.1 is IPv4, and the stack has no IPv4 address"},
      {{"--addr", "2001:db8::2/64", "--to", "[2001:db8::2]:179"}, "the stack's own address"},
      {{"--addr", "2001:db8::2/64", "--to", "[2001:db8:1::1]:179"},
       "--to 2001:db8:1::1 is not in the prefix of --addr 2001:db8::2/64"},
      {{"--addr", "2001:db8::2/64", "--to", "[ff02::1]:179"}, "not a unicast address"},
      {{"--addr", "2001:db8::2/64", "--to", "[::]:179"}, "not a unicast address"},
      {{"--addr", "198.18.0.2/24", "--to", "198.19.0.1:179"},
       "--to 198.19.0.1 is not in the subnet of --addr 198.18.0.2/24"},
  };
  for (const Case& c : cases) {
    std::vector<std::string_view> args = {"--tap", "tap0"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    CAPTURE(fmt::format("{}", fmt::join(args, " ")));
    const std::string message = connect_error(args);
    CHECK(message.find(c.expected) != std::string::npos);
    CHECK(message.find('\n') == std::string::npos);
  }
}

TEST_CASE("parse_endpoint and format_endpoint: the forms ss prints") {
  const std::vector<std::string_view> none;
  CommandLine line(none);
  const auto v6 = parse_endpoint(line, "--to", "[2001:db8::1]:179");
  REQUIRE(v6);
  CHECK(format_endpoint(v6->address, v6->port) == "[2001:db8::1]:179");
  const auto v4 = parse_endpoint(line, "--to", "198.18.0.1:179");
  REQUIRE(v4);
  CHECK(format_endpoint(v4->address, v4->port) == "198.18.0.1:179");
  CHECK(format_endpoint(ip("fe80::1"), 22) == "[fe80::1]:22");
  CHECK_FALSE(line.error());
  CHECK_FALSE(parse_endpoint(line, "--to", "2001:db8::1:179"));
  REQUIRE(line.error());
  CHECK(line.error()->message ==
        "bad --to '2001:db8::1:179': an IPv6 address needs brackets before the port, like "
        "[2001:db8::1]:179");
}

TEST_CASE("help: --addr, --host-addr, --gateway and --md5 say both families") {
  CHECK(kCommonOptionsHelp.find("--addr X:X::X/LEN") != std::string_view::npos);
  CHECK(kCommonOptionsHelp.find("--host-addr X:X::X/LEN") != std::string_view::npos);
  CHECK(kCommonOptionsHelp.find("--gateway X:X::X") != std::string_view::npos);
  CHECK(kCommonOptionsHelp.find("nodad") != std::string_view::npos);
  CHECK(kMd5OptionHelp.find("2001:db8::/64=KEY") != std::string_view::npos);
}

}  // namespace
}  // namespace tapstack::cli
