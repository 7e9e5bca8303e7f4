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

// The options of every command that runs the stack over a TAP device. --addr, --host-addr
// and --gateway are each given at most once per family; at least one --addr is required, and
// a family without --addr is off in the stack (IPv6-only and IPv4-only both work).
struct CommonOptions {
  std::string tap;  // --tap NAME (required)
  // --addr A.B.C.D/LEN: the stack's IPv4 address; 0.0.0.0/0 when none was given (IPv4 off,
  // as StackConfig::ipv4 takes it).
  Ipv4Interface addr{Ipv4Address{}, 0};
  std::optional<Ipv6Interface> addr6;       // --addr X:X::X/LEN: the stack's IPv6 address
  std::optional<Ipv4Interface> host_addr;   // --host-addr: the kernel side's, set by us
  std::optional<Ipv6Interface> host_addr6;  // --host-addr X:X::X/LEN, set with nodad
  std::optional<Ipv4Address> gateway;       // --gateway A.B.C.D: on the IPv4 subnet
  std::optional<IpAddress> gateway6;        // --gateway X:X::X: fe80::... or on link
  std::optional<MacAddress> mac;            // --mac: else derived from the addresses
  std::string pcap_path;                    // --pcap FILE: every frame in and out
  std::string stats_path;                   // --stats FILE: counters as JSON at exit
  bool trace = false;                       // --trace: trace lines on stderr
  bool offloads = true;                     // --no-offloads: no virtio-net headers
  size_t tap_queues = 1;                    // --tap-queues N: queues of a multi-queue TAP

  bool has_ipv4() const { return addr.prefix_length != 0; }
  bool has_ipv6() const { return addr6.has_value(); }
  // Whether the stack has an --addr of address's family.
  bool has_family(const IpAddress& address) const {
    return address.is_ipv4() ? has_ipv4() : has_ipv6();
  }
  // The address the stack uses towards peers of address's family (that family's --addr).
  IpAddress own_address(const IpAddress& address) const {
    return address.is_ipv4() ? IpAddress(addr.address) : addr6.value_or(Ipv6Interface{}).address;
  }
  // "198.18.0.2/24", "2001:db8::2/64" or "198.18.0.2/24 and 2001:db8::2/64".
  std::string addresses_text() const;
};

// An address of either family: IPv4 as a dotted quad (198.18.0.1, no leading "+", no octet
// above 255), IPv6 as inet_pton takes it (2001:db8::1); nullopt on anything else.
std::optional<IpAddress> parse_ip_address(std::string_view text);

// "IPv4" or "IPv6".
std::string_view family_name(const IpAddress& address);

// An address and port as ss prints them: "198.18.0.2:179", "[2001:db8::2]:179" (RFC 3986's
// brackets, so that the port is not read as part of the address). Every line that names an
// endpoint uses it.
std::string format_endpoint(const IpAddress& address, uint16_t port);

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

// A peer as IP:PORT: "198.18.0.1:179", or an IPv6 address in brackets, "[2001:db8::1]:179".
struct Endpoint {
  IpAddress address;
  uint16_t port = 0;
};

// Text of "IP:PORT" into an Endpoint; nullopt after recording in line "bad OPTION 'TEXT': ..."
// (an IPv6 address without its brackets gets a line saying to add them).
std::optional<Endpoint> parse_endpoint(CommandLine& line, std::string_view option,
                                       std::string_view text);

// A peer the stack is to reach (connect's --to, bgp's --peer), given as option: of a family
// the stack has an --addr of, not the stack's own address, a unicast host on the stack's
// subnet (IPv4), prefix or link-local range (IPv6), or anywhere when that family has a
// --gateway.
void check_peer_address(CommandLine& line, const CommonOptions& common, std::string_view option,
                        const IpAddress& peer);

// One RFC 2385 key from `--md5 PEER[/PREFIX]=KEY`, as setsockopt(TCP_MD5SIG_EXT) would take it.
// PEER is IPv4 or IPv6 (with a prefix of up to 32 or 128 bits).
struct Md5KeyOption {
  IpAddress peer;
  uint8_t prefix_length = 32;  // the family's full length (32, 128): the address alone
  std::vector<uint8_t> key;    // 1 to 80 bytes (TCP_MD5SIG_MAXKEYLEN)

  // Whether address is one of the peers the key is for (same family, inside the prefix).
  bool covers(const IpAddress& address) const {
    return peer.matches_prefix(address, prefix_length);
  }
  std::string peer_text() const;  // "198.18.0.1", "198.18.0.0/24", "2001:db8::/64"
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

// After the walk, for the commands that run the stack: a key for a family the stack has no
// --addr of could never sign anything (no peer of that family can reach the stack), so it is
// a usage error rather than a key silently unused. kernel-peer, which has no --addr, takes
// keys of both families.
void check_md5_families(CommandLine& line, const CommonOptions& common,
                        const std::vector<Md5KeyOption>& keys);

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
  IpAddress remote;  // --to IP:PORT or [IPV6]:PORT (required)
  uint16_t remote_port = 0;
  std::string input_path;           // --input FILE; empty or "-": stdin
  std::string output_path;          // --output FILE; empty or "-": stdout
  std::optional<Duration> timeout;  // --timeout SECONDS: limit on the whole run
  std::vector<Md5KeyOption> md5_keys;  // --md5 PEER[/PREFIX]=KEY...: on the socket
};
Parsed<ConnectOptions> parse_connect(std::span<const std::string_view> args);

// The stack's MAC when --mac is not given: locally administered unicast, 02:00 followed by the
// last four bytes of the address (198.18.0.2 → 02:00:c6:12:00:02; 2001:db8::1:2 →
// 02:00:00:01:00:02), so that it is the same on every run. The IPv4 --addr is used when there
// is one, else the IPv6 one. Never equal to avoid (the kernel side's MAC): then 02:01:...
MacAddress derive_mac(const IpAddress& address, const MacAddress& avoid);

}  // namespace tapstack::cli
