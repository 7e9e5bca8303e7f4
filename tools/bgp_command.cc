// `tapstack bgp`: the options, the speaker of bgp/speaker.h on the session's stack, driven by
// the event loop, and the lines it prints: routes on stdout, state changes on stderr.
#include "tools/bgp_command.h"

#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <string>
#include <variant>

#include <fmt/format.h>

#include "bgp/speaker.h"
#include "tap/clock.h"
#include "tools/report.h"
#include "tools/session.h"

namespace tapstack::cli {
namespace {

// How long a stop waits for our NOTIFICATION and FIN to be acknowledged.
constexpr Duration kGoodbyeTime = Duration::seconds(2);
constexpr Duration kPollInterval = Duration::milliseconds(20);

// --- Parsing ---

std::optional<uint32_t> parse_number(std::string_view text, uint64_t max) {
  uint64_t value = 0;
  const auto [end, failed] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || failed != std::errc{} || end != text.data() + text.size() || value > max) {
    return std::nullopt;
  }
  return static_cast<uint32_t>(value);
}

uint32_t parse_as(CommandLine& line, std::string_view option, std::string_view text) {
  const auto as = parse_number(text, 0xffffffff);
  if (!as || *as == 0 || *as == bgp::kAsTrans) {
    line.fail(
        fmt::format("bad {} '{}': expected an AS number from 1 to 4294967295 (not 23456, "
                    "AS_TRANS)",
                    option, text));
    return 0;
  }
  return *as;
}

Ipv4Address parse_address(CommandLine& line, std::string_view option, std::string_view text) {
  const auto address = Ipv4Address::parse(text);
  if (!address && parse_ip_address(text)) {
    line.fail(
        fmt::format("bad {} '{}': an IPv6 address where an IPv4 one is needed, like "
                    "198.18.0.1",
                    option, text));
  } else if (!address) {
    line.fail(fmt::format("bad {} '{}': expected an IPv4 address, like 198.18.0.1", option, text));
  }
  return address.value_or(Ipv4Address{});
}

// Whether an --md5-key value is --md5's PEER[/PREFIX]=KEY form: an address before '='.
bool looks_like_peer_and_key(std::string_view text) {
  const size_t equals = text.find('=');
  if (equals == std::string_view::npos) return false;
  const std::string_view peer = text.substr(0, equals);
  return parse_ip_address(peer.substr(0, peer.find('/'))).has_value();
}

// --md5-key KEY, the older spelling of --md5 PEER=KEY for --peer alone: checked when seen,
// taken after the walk (--peer may come later). A value in --md5's own form is an error
// rather than a key that happens to contain '=' (it names the address, never the key).
void check_md5_key(CommandLine& line, std::string_view text) {
  if (text.empty()) {
    return line.fail("bad --md5-key: empty; a key is text, or hex:HEXDIGITS, 1 to 80 bytes");
  }
  if (looks_like_peer_and_key(text)) {
    const std::string_view peer = text.substr(0, text.find('='));
    line.fail(
        fmt::format("bad --md5-key '{}=...': --md5-key takes the key alone; for a key with its "
                    "peer write --md5 {}=KEY",
                    peer, peer));
  }
}

// The --md5-key value as the key for --peer, in every form --md5 takes a KEY in (text, hex:...,
// @FILE, env:NAME), its errors said of --md5-key.
void take_md5_key(CommandLine& line, std::string_view text, BgpOptions& options) {
  auto key = parse_md5_key(line, text, {"--md5-key", ""});
  if (!key) return;
  if (key->empty()) {
    return line.fail("bad --md5-key: empty; a key is text, or hex:HEXDIGITS, 1 to 80 bytes");
  }
  options.md5_keys.push_back(
      {options.peer, static_cast<uint8_t>(options.peer.bit_length()), std::move(*key)});
}

// A key that covers no --peer would leave the session unsigned: surely not what was meant.
void check_md5_keys(CommandLine& line, const BgpOptions& options) {
  if (options.md5_keys.empty()) return;
  const bool covered =
      std::any_of(options.md5_keys.begin(), options.md5_keys.end(),
                  [&](const Md5KeyOption& key) { return key.covers(options.peer); });
  if (covered) return;
  std::vector<std::string> peers;
  for (const Md5KeyOption& key : options.md5_keys) peers.push_back(key.peer_text());
  line.fail(
      fmt::format("no --md5 key covers --peer {} (keys for {}): the session would be unsigned; "
                  "add --md5 {}=KEY",
                  options.peer, fmt::join(peers, ", "), options.peer));
}

// PREFIX[,next-hop=IP]
void parse_announcement(CommandLine& line, std::string_view text, BgpOptions& options) {
  const size_t comma = text.find(',');
  const auto prefix = bgp::Prefix::parse(text.substr(0, comma));
  if (!prefix) {
    return line.fail(
        fmt::format("bad --announce '{}': expected PREFIX[,next-hop=IP] with a "
                    "prefix like 198.18.5.0/24 (no host bits set)",
                    text));
  }
  BgpAnnouncement announcement{*prefix, std::nullopt};
  if (comma != std::string_view::npos) {
    const std::string_view rest = text.substr(comma + 1);
    constexpr std::string_view kNextHop = "next-hop=";
    const auto next_hop = rest.starts_with(kNextHop)
                              ? Ipv4Address::parse(rest.substr(kNextHop.size()))
                              : std::nullopt;
    if (!next_hop && rest.starts_with(kNextHop) && parse_ip_address(rest.substr(kNextHop.size()))) {
      return line.fail(
          fmt::format("bad --announce '{}': an IPv6 next hop where an IPv4 one is needed (the "
                      "routes are IPv4 unicast)",
                      text));
    }
    if (!next_hop || next_hop->is_zero() || next_hop->is_multicast() ||
        next_hop->is_limited_broadcast()) {
      return line.fail(
          fmt::format("bad --announce '{}': after the prefix expected "
                      ",next-hop=IP with a unicast address",
                      text));
    }
    announcement.next_hop = next_hop;
  }
  options.announce.push_back(announcement);
}

uint16_t parse_hold(CommandLine& line, std::string_view text) {
  const auto hold = parse_number(text, 65535);
  if (!hold || *hold == 1 || *hold == 2) {
    line.fail(
        fmt::format("bad --hold '{}': expected 0 (no keepalives) or 3 to 65535 seconds "
                    "(RFC 4271 §4.2)",
                    text));
    return 0;
  }
  return static_cast<uint16_t>(*hold);
}

Duration parse_connect_retry(CommandLine& line, std::string_view text) {
  double seconds = 0;
  const auto [end, failed] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (failed != std::errc{} || end != text.data() + text.size() || !std::isfinite(seconds) ||
      seconds < 0.1 || seconds > 86400) {
    line.fail(fmt::format("bad --connect-retry '{}': expected seconds from 0.1 to 86400", text));
    return Duration::zero();
  }
  return Duration::nanoseconds(std::llround(seconds * 1e9));
}

// --peer IP: IPv4, or IPv6 for a session over IPv6 (RFC 4271 runs over any TCP; the routes
// stay IPv4 unicast). A reachable peer of a family the stack has.
IpAddress parse_peer(CommandLine& line, std::string_view text) {
  const auto address = parse_ip_address(text);
  if (!address) {
    line.fail(
        fmt::format("bad --peer '{}': expected an IPv4 or IPv6 address, like 198.18.0.1 "
                    "or 2001:db8::1",
                    text));
  }
  return address.value_or(IpAddress{});
}

void check_peer(CommandLine& line, const BgpOptions& options) {
  check_peer_address(line, options.common, "--peer", options.peer);
  if (line.error()) return;
  // Without an IPv4 --addr nothing gives the IPv4 values BGP-4 needs of us: the BGP
  // Identifier (RFC 4271 §4.2) and the NEXT_HOP of IPv4 routes (§5.1.3).
  if (!options.common.has_ipv4()) {
    if (!options.router_id) {
      return line.fail(
          "without an IPv4 --addr, give --router-id A.B.C.D: the BGP Identifier is an IPv4 "
          "address (RFC 4271 §4.2)");
    }
    for (const BgpAnnouncement& a : options.announce) {
      if (!a.next_hop) {
        return line.fail(fmt::format(
            "bad --announce '{}': without an IPv4 --addr it needs ,next-hop=A.B.C.D (the next "
            "hop of an IPv4 route is IPv4)",
            a.prefix.to_string()));
      }
    }
  }
  // RFC 4271 §5.1.3: a next hop that is the receiver's own address makes no route (BIRD
  // rejects the UPDATE: "Invalid NEXT_HOP attribute - neighbor address").
  for (const BgpAnnouncement& a : options.announce) {
    if (a.next_hop && IpAddress(*a.next_hop) == options.peer) {
      return line.fail(
          fmt::format("bad --announce '{},next-hop={}': the next hop is --peer's own address, "
                      "which the peer rejects; leave next-hop out (it defaults to --addr)",
                      a.prefix.to_string(), options.peer));
    }
  }
}

// --- Output ---

// The wall clock for JSON lines, UTC to the millisecond: "2026-12-03T16:02:11.123Z".
std::string utc_time_text() {
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  tm utc{};
  gmtime_r(&now.tv_sec, &utc);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", utc.tm_year + 1900,
                     utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                     now.tv_nsec / 1'000'000);
}

// A JSON line: the fields given (`"type": ...`), then the time it was written.
std::string json_line(std::string_view fields) {
  return fmt::format(R"({{{}, "time": "{}"}})", fields, utc_time_text());
}

// The text of a JSON string: quotes, backslashes and control characters escaped.
std::string json_escape(std::string_view text) {
  std::string out;
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
    } else {
      out += c;
    }
  }
  return out;
}

void print_line(const std::string& line) {
  fmt::print("{}\n", line);
  std::fflush(stdout);
}

// --- The speaker (bgp/speaker.h) on the command line's options ---

bgp::SpeakerConfig speaker_config(const BgpOptions& options) {
  bgp::SpeakerConfig config;
  config.local_address = options.common.addr.address;
  config.peer = options.peer;
  config.local_as = options.local_as;
  config.peer_as = options.peer_as;
  config.router_id = options.router_id;
  config.hold_time = options.hold_time;
  config.connect_retry = options.connect_retry;
  config.passive = options.passive;
  for (const Md5KeyOption& key : options.md5_keys) {
    config.md5_keys.push_back({key.peer, key.prefix_length, key.key});  // IPv4 or IPv6
  }
  for (const BgpAnnouncement& a : options.announce) {
    config.announcements.push_back({a.prefix, a.next_hop});
  }
  return config;
}

// What the speaker reports, as lines: routes and withdrawals on stdout (text or JSON), the
// rest on stderr (state changes and failed attempts also on stdout with --json).
class EventPrinter {
 public:
  EventPrinter(const BgpOptions& options, bool signs, Instant start)
      : options_(options), signs_(signs), start_(start) {}

  void print(const std::vector<bgp::SpeakerEvent>& events, Instant now) const {
    for (const bgp::SpeakerEvent& event : events) {
      std::visit([&](const auto& e) { print(e, now); }, event);
    }
  }

 private:
  void print(const bgp::SessionStateChanged& state, Instant now) const {
    const bgp::StateChanged& change = state.change;
    std::string line =
        fmt::format("bgp {}: {} -> {}: {}", options_.peer, bgp::state_name(change.from),
                    bgp::state_name(change.to), change.why);
    if (change.to == bgp::State::Established) {
      line += fmt::format(" (session {}, {:.3f} s after start)", state.session,
                          (now - start_).seconds_f());
    }
    // After a failed attempt its own line says when the next is; after a session, this one.
    if (change.from != bgp::State::Connect && !state.next_attempt.is_never()) {
      line += fmt::format("; next attempt in {}",
                          seconds_text(std::max(state.next_attempt - now, Duration::zero())));
    }
    report("{}", line);
    if (options_.json) {
      print_line(json_line(fmt::format(R"("type": "state", "from": "{}", "to": "{}", "why": "{}")",
                                       bgp::state_name(change.from), bgp::state_name(change.to),
                                       json_escape(change.why))));
    }
  }

  void print(const bgp::RouteLearned& learned, Instant) const {
    if (options_.json) {
      print_line(json_line(fmt::format(
          R"("type": "route", {})", bgp::route_json_members(learned.prefix, learned.attributes))));
    } else {
      print_line(bgp::route_text(learned.prefix, learned.attributes));
    }
  }

  // "withdraw 198.18.5.0/24" when the peer withdrew it; when the session ended, the route
  // went with it, which the line says so that it is not taken for the peer's withdrawal.
  void print(const bgp::RouteWithdrawn& withdrawn, Instant) const {
    const std::string prefix = withdrawn.prefix.to_string();
    if (options_.json) {
      print_line(
          json_line(fmt::format(R"("type": "withdraw", "prefix": "{}", "reason": "{}")", prefix,
                                withdrawn.session_ended ? "session-ended" : "peer-withdrew")));
    } else if (!withdrawn.session_ended) {
      print_line(fmt::format("withdraw {}", prefix));
    } else {
      print_line(
          fmt::format("withdraw {} (session with {} ended: route dropped)", prefix, options_.peer));
    }
  }

  void print(const bgp::AttemptFailed& attempt, Instant now) const {
    const std::string why = failure_reason(attempt);
    const Duration wait = std::max(attempt.failed.next - now, Duration::zero());
    report("bgp {}: connection attempt {} failed: {}; next attempt {}", options_.peer,
           attempt.failed.attempt, why,
           wait == Duration::zero() ? "now" : "in " + seconds_text(wait));
    if (options_.json) {
      print_line(json_line(fmt::format(
          R"("type": "connect-failed", "attempt": {}, "why": "{}", "next_attempt_in": {:g})",
          attempt.failed.attempt, json_escape(why), wait.seconds_f())));
    }
  }

  void print(const bgp::ConnectionLost& lost, Instant) const {
    report("bgp: connection to {}: {}", options_.peer, lost.why);
  }

  void print(const bgp::ConnectionRefused& refused, Instant) const {
    report("bgp: refused a connection from {}{}", refused.from,
           refused.from_peer ? " (a session is already in progress)" : " (not --peer)");
  }

  void print(const bgp::Note& note, Instant) const {
    report("bgp {}: {}", options_.peer, note.text);
  }

  // Why an attempt failed, in words: what our TCP saw, or that nothing came back in time.
  std::string failure_reason(const bgp::AttemptFailed& attempt) const {
    if (attempt.failed.timed_out) {
      return fmt::format("no answer in {}{}", seconds_text(options_.connect_retry),
                         unanswered_hint());
    }
    switch (attempt.error.code) {
      case ECONNREFUSED:
        return "refused (a reset answered our SYN: nothing listens on port 179 there)";
      case ETIMEDOUT:
        return fmt::format("no answer to our SYNs{}", unanswered_hint());
      default:
        return attempt.error.message;
    }
  }

  // RFC 2385 §2.0: a segment that fails the MD5 check is dropped without a word, so a key
  // mismatch looks like a peer that is not there.
  std::string unanswered_hint() const {
    if (signs_) return std::string(unanswered_signed_syn_hint());
    return " (our SYNs are unsigned: a peer that expects TCP-MD5 drops them unanswered)";
  }

  const BgpOptions& options_;
  bool signs_;  // a --md5 key covers the peer: our segments are signed
  Instant start_;
};

// ManualStop, then a short wait for the NOTIFICATION and FIN to reach the peer.
void say_goodbye(bgp::Speaker& speaker, const EventPrinter& printer, Session& session) {
  const Instant now = monotonic_now();
  speaker.stop(now);
  printer.print(speaker.take_events(), now);
  const Instant limit = monotonic_now() + kGoodbyeTime;
  while (speaker.closing() && monotonic_now() < limit) {
    speaker.forget_closed();
    if (!session.loop().run_once(kPollInterval)) break;
  }
}

int usage_error(std::string_view message) {
  fmt::print(stderr, "{}: {} (see 'tapstack bgp --help')\n", kProgram, message);
  return kExitUsage;
}

}  // namespace

Parsed<BgpOptions> parse_bgp(std::span<const std::string_view> args) {
  CommandLine line(args);
  BgpOptions options;
  std::optional<std::string_view> md5_key;  // --md5-key KEY
  while (line.next()) {
    if (line.is_help()) return HelpRequested{};
    if (parse_common_option(line, options.common)) continue;
    if (line.is("--peer")) {
      options.peer = parse_peer(line, line.value());
    } else if (line.is("--local-as")) {
      options.local_as = parse_as(line, "--local-as", line.value());
    } else if (line.is("--peer-as")) {
      options.peer_as = parse_as(line, "--peer-as", line.value());
    } else if (line.is("--router-id")) {
      options.router_id = parse_address(line, "--router-id", line.value());
      if (options.router_id->is_zero()) line.fail("bad --router-id 0.0.0.0: it must not be zero");
    } else if (line.is_repeatable("--md5")) {
      parse_md5_option(line, line.value(), options.md5_keys);
    } else if (line.is("--md5-key")) {
      md5_key = line.value();
      check_md5_key(line, *md5_key);
    } else if (line.is_repeatable("--announce")) {
      parse_announcement(line, line.value(), options);
    } else if (line.is("--passive")) {
      line.flag();
      options.passive = true;
    } else if (line.is("--hold")) {
      options.hold_time = parse_hold(line, line.value());
    } else if (line.is("--connect-retry")) {
      options.connect_retry = parse_connect_retry(line, line.value());
    } else if (line.is("--json")) {
      line.flag();
      options.json = true;
    } else {
      line.reject();
    }
  }
  check_common_options(line, options.common);
  for (const auto& [option, what] : {std::pair{"--peer", "IP (the BGP peer's address)"},
                                     std::pair{"--local-as", "N (our AS number)"},
                                     std::pair{"--peer-as", "N (the peer's AS number)"}}) {
    if (!line.error() && !line.seen(option)) line.fail(fmt::format("missing {} {}", option, what));
  }
  if (!line.error()) check_peer(line, options);
  if (!line.error() && md5_key) {
    if (line.seen("--md5")) {
      line.fail("--md5-key and --md5 both given: give every key with --md5 PEER[/PREFIX]=KEY");
    } else {
      take_md5_key(line, *md5_key, options);
    }
  }
  if (!line.error()) check_md5_keys(line, options);
  check_md5_families(line, options.common, options.md5_keys);
  if (line.error()) return *line.error();
  return options;
}

void print_bgp_help() {
  fmt::print(
      "usage: tapstack bgp --tap NAME --addr A.B.C.D/LEN|X:X::X/LEN --peer IP --local-as N\n"
      "                    --peer-as N\n"
      "                    [options]\n"
      "\n"
      "Runs a BGP-4 speaker (RFC 4271) on the stack for one peer on the stack's subnet (or\n"
      "beyond --gateway).\n"
      "Connects to the peer's port 179 (retrying every --connect-retry seconds), or with\n"
      "--passive listens on 179 for it. OPEN carries the capabilities for 4-octet AS numbers,\n"
      "IPv4 unicast and route refresh. Once the session is Established it announces the\n"
      "--announce prefixes, and prints on stdout every route the peer announces (prefix, next\n"
      "hop, AS path, communities) and every withdrawal, one line each:\n"
      "  route 198.18.5.0/24 next-hop 198.18.0.1 as-path 65001 communities 65001:7 origin igp\n"
      "  withdraw 198.18.5.0/24\n"
      "A withdrawal because the session ended (and the route with it) says so:\n"
      "  withdraw 198.18.5.0/24 (session with 198.18.0.1 ended: route dropped)\n"
      "State changes go to stderr, and after each failed attempt to connect a line with its\n"
      "number, why (refused, or no answer: with a hint on TCP-MD5 keys, as a peer drops a\n"
      "segment whose signature does not match without a word) and when the next one is:\n"
      "  bgp 198.18.0.1: connection attempt 2 failed: no answer in 10 s (our SYNs are signed\n"
      "  with --md5: a peer without that key drops them unanswered); next attempt now\n"
      "When the session ends, it starts again after a few seconds. Runs until SIGINT, SIGTERM\n"
      "or SIGHUP, which end the session with a NOTIFICATION (Cease, Administrative Shutdown)\n"
      "and write --stats (SIGHUP, which asks a daemon to reload its configuration, does the\n"
      "same: there is no configuration file). Exit status 0 then, 1 on a runtime failure.\n"
      "\n"
      "options:\n"
      "  --peer IP              the peer's address (required): IPv4, or IPv6 (2001:db8::1)\n"
      "                         for a session over IPv6; the routes stay IPv4 unicast, so\n"
      "                         without an IPv4 --addr --router-id and every --announce's\n"
      "                         next-hop= are required\n"
      "  --local-as N           our AS number, 1 to 4294967295 (required)\n"
      "  --peer-as N            the peer's AS number (required); equal to --local-as: iBGP\n"
      "  --router-id IP         our BGP Identifier (default: the address of --addr)\n"
      "{}"
      "                         For bgp: the keys go on the session's socket and listener;\n"
      "                         one must cover --peer, or it is an error. Without --md5 the\n"
      "                         session is unsigned, as BIRD without password\n"
      "  --md5-key KEY          the same as --md5 PEER=KEY for --peer (the older spelling)\n"
      "  --announce PREFIX[,next-hop=IP]\n"
      "                         announce PREFIX (repeatable); the next hop defaults to --addr\n"
      "  --passive              wait for the peer to connect; never connect\n"
      "  --hold SECONDS         the hold time to offer: 0 or 3 to 65535 (default 90); the\n"
      "                         smaller of both sides' applies, keepalives every third of it\n"
      "  --connect-retry SECONDS\n"
      "                         the ConnectRetry time (RFC 4271 §8): how long an attempt to\n"
      "                         connect may go unanswered, and the pause after one that\n"
      "                         failed (default 10, from 0.1). RFC 4271 §10 suggests 120, as\n"
      "                         BIRD's connect retry time and FRR's timers connect use; FRR's\n"
      "                         datacenter profile uses 10, and BIRD tries again 5 s (its\n"
      "                         connect delay time) after a refused connection\n"
      "  --json                 print routes, withdrawals, state changes and failed attempts\n"
      "                         as JSON lines on stdout, each with \"time\": UTC to the\n"
      "                         millisecond, like \"2026-12-03T16:02:11.123Z\"; a withdrawal's\n"
      "                         \"reason\" is \"peer-withdrew\" or \"session-ended\"\n"
      "{}"
      "\n"
      "example (as root, in a network namespace of its own; with no peer listening it only\n"
      "tries to connect; the README has BIRD as the peer):\n"
      "  unshare -n sh -c 'ip link set lo up\n"
      "    tapstack bgp --tap tap0 --addr 198.18.0.2/24 --host-addr 198.18.0.1/24 \\\n"
      "        --peer 198.18.0.1 --local-as 65002 --peer-as 65001 --md5 198.18.0.1=secret \\\n"
      "        --announce 198.18.100.0/24 & pid=$!\n"
      "    sleep 2; kill $pid; wait $pid'\n",
      kMd5OptionHelp, kCommonOptionsHelp);
}

int run_bgp(const BgpOptions& options) {
  signal(SIGPIPE, SIG_IGN);
  auto opened = Session::open(options.common);
  if (!opened) return runtime_failure(opened.error().message);
  Session& session = **opened;
  report("{}", session.describe());
  report("bgp: AS {} peering with {} AS {}{}{}", options.local_as, options.peer, options.peer_as,
         options.passive ? ", passive" : "",
         options.md5_keys.empty() ? ", unsigned (no --md5)" : md5_keys_text(options.md5_keys));

  const Instant start = monotonic_now();
  bgp::Speaker speaker(session.stack().tcp(), speaker_config(options));
  const EventPrinter printer(options, speaker.signs(), start);
  if (auto failed = speaker.start(start)) {
    session.finish();
    return runtime_failure(*failed);
  }
  printer.print(speaker.take_events(), start);
  const Status run = session.run([&](Instant now) -> std::optional<Duration> {
    if (speaker.failure()) return std::nullopt;
    speaker.poll(now);
    printer.print(speaker.take_events(), now);
    if (speaker.failure()) return std::nullopt;
    const Instant deadline = speaker.next_deadline();
    if (deadline.is_never()) return Duration::max();
    return std::max(deadline - now, Duration::zero());
  });
  if (session.stopped_by_signal() == SIGHUP) {
    // What a daemon does on SIGHUP is reload its configuration; there is none to reload.
    report(
        "bgp: SIGHUP: no configuration file to reload; stopping as on SIGTERM (an open session "
        "ends with a Cease NOTIFICATION)");
  }
  if (!speaker.failure()) say_goodbye(speaker, printer, session);
  report("{}", session.summary());
  const Status finished = session.finish();
  if (speaker.failure()) return runtime_failure(*speaker.failure());
  if (!run) return runtime_failure(run.error().message);
  if (!finished) return runtime_failure(finished.error().message);
  return kExitSuccess;
}

int run_bgp_command(std::span<const std::string_view> args) {
  const auto parsed = parse_bgp(args);
  if (std::holds_alternative<HelpRequested>(parsed)) {
    print_bgp_help();
    return kExitSuccess;
  }
  if (const auto* error = std::get_if<UsageError>(&parsed)) return usage_error(error->message);
  return run_bgp(std::get<BgpOptions>(parsed));
}

}  // namespace tapstack::cli
