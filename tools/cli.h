// Command line parsing for the `tapstack` program. Every command that runs the stack over a
// TAP device (`up`, `serve`, `connect`; `bgp` later) shares the CommonOptions and their
// parser, and adds its own options in the same loop:
//
//   CommandLine line(args);
//   while (line.next()) {
//     if (line.is_help()) return HelpRequested{};
//     if (parse_common_option(line, options.common)) continue;
//     if (line.is("--port")) { ...; continue; }
//     line.reject();
//   }
//   check_common_options(line, options.common);
#pragma once

#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "stack/address.h"
#include "stack/time.h"

namespace tapstack::cli {

inline constexpr std::string_view kProgram = "tapstack";
inline constexpr std::string_view kVersion = "0.1.0";

// The exit codes of every command.
enum ExitCode : int {
  kExitSuccess = 0,
  kExitFailure = 1,  // a runtime failure: no /dev/net/tun, no CAP_NET_ADMIN, busy interface...
  kExitUsage = 2,    // bad arguments
};

// What a command line asks for when it does not ask to run: help, or nothing sensible.
struct HelpRequested {};
struct UsageError {
  std::string message;  // one line, without the "tapstack: " prefix
};
template <typename Options>
using Parsed = std::variant<Options, HelpRequested, UsageError>;

// The options of every command that runs the stack over a TAP device.
struct CommonOptions {
  std::string tap;                         // --tap NAME (required)
  Ipv4Interface addr;                      // --addr A.B.C.D/LEN (required): the stack's
  std::optional<Ipv4Interface> host_addr;  // --host-addr: the kernel side's, configured by us
  std::optional<MacAddress> mac;           // --mac: else derived from addr
  std::string pcap_path;                   // --pcap FILE: every frame in and out
  std::string stats_path;                  // --stats FILE: counters as JSON at exit
  bool trace = false;                      // --trace: trace lines on stderr
  bool offloads = true;                    // --no-offloads: a TAP without virtio-net headers
  size_t tap_queues = 1;                   // --tap-queues N: queues of a multi-queue TAP
};

// A decimal port number from 1 to 65535, digits only; nullopt on anything else.
std::optional<uint16_t> parse_port_number(std::string_view text);

// The help lines for CommonOptions, for each command's help text.
extern const std::string_view kCommonOptionsHelp;

// Walks a command's arguments: "--name value", "--name=value" and "--flag". The first error
// is kept and ends the walk.
class CommandLine {
 public:
  explicit CommandLine(std::span<const std::string_view> args) : args_(args) {}

  // Moves to the next argument; false at the end or once an error is recorded.
  bool next();
  // Whether the current argument is option `name`; an option given twice is an error.
  bool is(std::string_view name);
  // Whether the current argument is option `name`, one that may be given any number of times.
  bool is_repeatable(std::string_view name);
  bool is_help() { return is("--help") || is("-h"); }
  // The current option's value: "--name=value" or the next argument.
  std::string_view value();
  // Checks that the current option, a flag, was not given a value.
  void flag();
  // The current argument is nobody's: an unknown option or a stray word. An unknown option
  // close to one the loop asked about names it ("did you mean '--md5-key'?").
  void reject();
  void fail(std::string message);

  bool seen(std::string_view name) const { return seen_.contains(std::string(name)); }
  const std::optional<UsageError>& error() const { return error_; }

 private:
  void remember(std::string_view name);

  std::span<const std::string_view> args_;
  size_t index_ = 0;
  bool started_ = false;
  std::string_view name_;                   // "--tap" of "--tap=x"
  std::optional<std::string_view> inline_;  // "x" of "--tap=x"
  std::set<std::string> seen_;
  std::vector<std::string> known_;  // every name is() and is_repeatable() were asked about
  std::optional<UsageError> error_;
};

// The one of known that unknown is most likely a slip for, or nullopt when none is close: one
// edit away (two for names longer than five letters; a swap of neighbours is one), or the
// start of a name up to a '-' ("--md5" for "--md5-key", and the other way round).
std::optional<std::string_view> closest_name(std::string_view unknown,
                                             std::span<const std::string> known);

// Takes the current option if it is one of CommonOptions, recording any error in line.
bool parse_common_option(CommandLine& line, CommonOptions& options);
// After the walk: the required options are there and agree with one another.
void check_common_options(CommandLine& line, const CommonOptions& options);

// One RFC 2385 key from `--md5 PEER[/PREFIX]=KEY`, as setsockopt(TCP_MD5SIG_EXT) would take it.
struct Md5KeyOption {
  Ipv4Address peer;
  uint8_t prefix_length = 32;  // 32: the address alone
  std::vector<uint8_t> key;    // 1 to 80 bytes (TCP_MD5SIG_MAXKEYLEN)

  std::string peer_text() const;  // "198.18.0.1" or "198.18.0.0/24"
};

// The help lines for --md5, shared by serve and connect.
extern const std::string_view kMd5OptionHelp;

// Takes one --md5 value into keys as md5opt::KeyTable::add() (TCP_MD5SIG on one socket) takes
// it: a key for a peer and prefix given again replaces the earlier one, an empty key deletes
// it (an error when there is none, as Linux's ENOENT). KEY is text, or hex:... for a binary
// key, or where the key is: @FILE (a regular file that group and others cannot use; one
// trailing newline ignored) or env:NAME (an environment variable); the key found there may be
// hex:... too (parse_md5_key()). Errors never show the key.
void parse_md5_option(CommandLine& line, std::string_view text, std::vector<Md5KeyOption>& keys);

// Where a KEY was given, for its error messages: "--md5 key for PEER", or the option alone
// when peer is empty ("--md5-key").
struct Md5KeySource {
  std::string_view option;  // "--md5", "--md5-key"
  std::string peer;         // "198.18.0.1", "198.18.0.0/24"; empty: the option says whose
};

// One KEY into its bytes: text, hex:HEXDIGITS, @FILE or env:NAME as parse_md5_option() takes
// them, at most md5opt::kMaxKeySize bytes (TCP_MD5SIG_MAXKEYLEN). Empty ("hex:") is left to
// the caller: for --md5 it deletes a key. nullopt after recording the error in line.
std::optional<std::vector<uint8_t>> parse_md5_key(CommandLine& line, std::string_view text,
                                                  const Md5KeySource& source);

// ", TCP-MD5 keys for 198.18.0.1 and 198.18.1.0/24", or "" without keys: for status lines.
std::string md5_keys_text(const std::vector<Md5KeyOption>& keys);

// `tapstack up`: run the stack until SIGINT, SIGTERM or SIGHUP.
struct UpOptions {
  CommonOptions common;
};
Parsed<UpOptions> parse_up(std::span<const std::string_view> args);

// `tapstack serve`: listen on a port and print, echo or discard what connections send.
enum class ServeMode { Print, Echo, Discard };
std::string_view serve_mode_name(ServeMode mode);

struct ServeOptions {
  CommonOptions common;
  uint16_t port = 0;                  // --port P (required)
  ServeMode mode = ServeMode::Print;  // --mode print|echo|discard
  bool once = false;                  // --once: exit after the first connection closed
  std::string output_path;            // --output FILE (print mode); empty or "-": stdout
  std::vector<Md5KeyOption> md5_keys;  // --md5 PEER[/PREFIX]=KEY...: on the listener
};
Parsed<ServeOptions> parse_serve(std::span<const std::string_view> args);

// `tapstack connect`: stream a file or stdin to a peer, and what it sends back to a file or
// stdout.
struct ConnectOptions {
  CommonOptions common;
  Ipv4Address remote;  // --to IP:PORT (required)
  uint16_t remote_port = 0;
  std::string input_path;           // --input FILE; empty or "-": stdin
  std::string output_path;          // --output FILE; empty or "-": stdout
  std::optional<Duration> timeout;  // --timeout SECONDS: limit on the whole run
  std::vector<Md5KeyOption> md5_keys;  // --md5 PEER[/PREFIX]=KEY...: on the socket
};
Parsed<ConnectOptions> parse_connect(std::span<const std::string_view> args);

// The stack's MAC when --mac is not given: locally administered unicast, 02:00 followed by the
// four bytes of the IPv4 address (198.18.0.2 → 02:00:c6:12:00:02), so that it is the same on
// every run. Never equal to avoid (the kernel side's MAC): then 02:01:... instead.
MacAddress derive_mac(Ipv4Address address, const MacAddress& avoid);

}  // namespace tapstack::cli
