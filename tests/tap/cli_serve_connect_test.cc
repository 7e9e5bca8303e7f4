// The argument parsers of `tapstack serve` and `tapstack connect`, without running anything.
#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <fmt/format.h>

#include "tools/cli.h"

namespace tapstack::cli {
namespace {

const std::vector<std::string_view> kCommon = {"--tap", "tap0", "--addr", "198.18.0.2/24"};

std::vector<std::string_view> with_common(std::vector<std::string_view> args) {
  args.insert(args.begin(), kCommon.begin(), kCommon.end());
  return args;
}

template <typename Options>
std::string usage_error(const Parsed<Options>& parsed) {
  const auto* error = std::get_if<UsageError>(&parsed);
  return error ? error->message : "";
}

TEST_CASE("serve: the defaults") {
  const auto parsed = parse_serve(with_common({"--port", "5000"}));
  REQUIRE(std::holds_alternative<ServeOptions>(parsed));
  const ServeOptions& options = std::get<ServeOptions>(parsed);
  CHECK(options.port == 5000);
  CHECK(options.mode == ServeMode::Print);
  CHECK_FALSE(options.once);
  CHECK(options.output_path.empty());
  CHECK(options.common.tap == "tap0");
}

TEST_CASE("serve: every option") {
  const auto parsed = parse_serve(
      with_common({"--port=65535", "--mode", "print", "--once", "--output", "out.bin"}));
  REQUIRE(std::holds_alternative<ServeOptions>(parsed));
  const ServeOptions& options = std::get<ServeOptions>(parsed);
  CHECK(options.port == 65535);
  CHECK(options.once);
  CHECK(options.output_path == "out.bin");
  for (const auto& [name, mode] :
       {std::pair{"echo", ServeMode::Echo}, std::pair{"discard", ServeMode::Discard}}) {
    const auto with_mode = parse_serve(with_common({"--port", "1", "--mode", name}));
    REQUIRE(std::holds_alternative<ServeOptions>(with_mode));
    CHECK(std::get<ServeOptions>(with_mode).mode == mode);
  }
  CHECK(std::holds_alternative<HelpRequested>(parse_serve(with_common({"--help"}))));
}

TEST_CASE("serve: bad command lines say what is wrong, in one line") {
  struct Case {
    std::vector<std::string_view> args;
    std::string_view expected;
  };
  const std::vector<Case> cases = {
      {{}, "missing --port"},
      {{"--port", "0"}, "bad --port '0'"},
      {{"--port", "70000"}, "bad --port '70000'"},
      {{"--port", "abc"}, "bad --port 'abc'"},
      {{"--port", "-5"}, "bad --port '-5'"},
      {{"--port", "+5"}, "bad --port '+5'"},
      {{"--port", "5x"}, "bad --port '5x'"},
      {{"--port"}, "option --port needs a value"},
      {{"--port", "1", "--port", "2"}, "--port given twice"},
      {{"--port", "1", "--mode", "loud"}, "bad --mode 'loud': expected print, echo or discard"},
      {{"--port", "1", "--once=yes"}, "takes no value"},
      {{"--port", "1", "--output="}, "option --output needs a value"},
      {{"--port", "1", "--mode", "echo", "--output", "f"}, "--output is for --mode print"},
      {{"--port", "1", "--to", "198.18.0.1:1"}, "unknown option '--to'"},
  };
  for (const Case& c : cases) {
    const auto args = with_common(c.args);
    CAPTURE(fmt::format("{}", fmt::join(args, " ")));
    const std::string message = usage_error(parse_serve(args));
    CHECK(message.find(c.expected) != std::string::npos);
    CHECK(message.find('\n') == std::string::npos);
  }
  CHECK(usage_error(parse_serve(std::vector<std::string_view>{"--port", "1"}))
            .find("missing --tap") != std::string::npos);
}

TEST_CASE("connect: the defaults") {
  const auto parsed = parse_connect(with_common({"--to", "198.18.0.1:179"}));
  REQUIRE(std::holds_alternative<ConnectOptions>(parsed));
  const ConnectOptions& options = std::get<ConnectOptions>(parsed);
  CHECK(options.remote == *Ipv4Address::parse("198.18.0.1"));
  CHECK(options.remote_port == 179);
  CHECK(options.input_path.empty());
  CHECK(options.output_path.empty());
  CHECK_FALSE(options.timeout);
}

TEST_CASE("connect: every option") {
  const auto parsed = parse_connect(with_common(
      {"--to=198.18.0.200:65535", "--input", "-", "--output", "o", "--timeout", "0.25"}));
  REQUIRE(std::holds_alternative<ConnectOptions>(parsed));
  const ConnectOptions& options = std::get<ConnectOptions>(parsed);
  CHECK(options.remote_port == 65535);
  CHECK(options.input_path == "-");
  CHECK(options.output_path == "o");
  REQUIRE(options.timeout);
  CHECK(*options.timeout == Duration::milliseconds(250));
  CHECK(std::holds_alternative<HelpRequested>(parse_connect(with_common({"-h"}))));
}

TEST_CASE("connect: bad command lines say what is wrong, in one line") {
  struct Case {
    std::vector<std::string_view> args;
    std::string_view expected;
  };
  const std::vector<Case> cases = {
      {{}, "missing --to IP:PORT"},
      {{"--to", "198.18.0.1"}, "bad --to '198.18.0.1': expected IPV4-ADDRESS:PORT"},
      {{"--to", "198.18.0.1:"}, "the port must be a number from 1 to 65535"},
      {{"--to", "198.18.0.1:0"}, "the port must be a number from 1 to 65535"},
      {{"--to", "198.18.0.1:70000"}, "the port must be a number from 1 to 65535"},
      {{"--to", "198.18.0.1:http"}, "the port must be a number"},
      {{"--to", "host:80"}, "bad --to 'host:80'"},
      {{"--to", ":80"}, "bad --to ':80'"},
      {{"--to", "198.18.0.2:80"}, "the stack's own address"},
      {{"--to", "10.0.0.1:80"}, "not in the subnet of --addr 198.18.0.2/24"},
      {{"--to", "198.18.0.255:80"}, "broadcast or network address"},
      {{"--to", "198.18.0.0:80"}, "broadcast or network address"},
      {{"--to", "198.18.0.1:80", "--timeout", "0"}, "bad --timeout '0'"},
      {{"--to", "198.18.0.1:80", "--timeout", "-1"}, "bad --timeout '-1'"},
      {{"--to", "198.18.0.1:80", "--timeout", "soon"}, "bad --timeout 'soon'"},
      {{"--to", "198.18.0.1:80", "--timeout", "inf"}, "bad --timeout 'inf'"},
      {{"--to", "198.18.0.1:80", "--timeout", "1e30"}, "bad --timeout '1e30'"},
      {{"--to", "198.18.0.1:80", "--input"}, "option --input needs a value"},
      {{"--to", "198.18.0.1:80", "--port", "5"}, "unknown option '--port'"},
      {{"--to", "198.18.0.1:80", "stray"}, "unexpected argument 'stray'"},
  };
  for (const Case& c : cases) {
    const auto args = with_common(c.args);
    CAPTURE(fmt::format("{}", fmt::join(args, " ")));
    const std::string message = usage_error(parse_connect(args));
    CHECK(message.find(c.expected) != std::string::npos);
    CHECK(message.find('\n') == std::string::npos);
  }
}

}  // namespace
}  // namespace tapstack::cli
