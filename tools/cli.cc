#include "tools/cli.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>

#include <fmt/format.h>

#include "md5opt/key_table.h"
#include "stack/tcp/tcp.h"
#include "tap/system_error.h"
#include "tap/tap_device.h"

namespace tapstack::cli {
namespace {

// Why an interface address cannot be a host's, or nullopt when it can.
std::optional<std::string_view> unusable_reason(const Ipv4Interface& address) {
  const uint32_t host_bits = address.address.value & ~address.mask();
  const bool has_subnet_broadcast = address.prefix_length <= 30;
  if (address.prefix_length == 0) return "has prefix length 0; use 1 to 32";
  if (address.address.is_zero()) return "is the unspecified address";
  if (address.address.is_limited_broadcast()) return "is the broadcast address";
  if (address.address.is_multicast()) return "is a multicast address";
  if ((address.address.value >> 24) == 127) return "is a loopback address";
  if (has_subnet_broadcast && address.address == address.subnet_broadcast()) {
    return "is the broadcast address of its subnet";
  }
  if (has_subnet_broadcast && host_bits == 0) return "is the network address of its subnet";
  return std::nullopt;
}

std::optional<Ipv4Interface> parse_interface_address(CommandLine& line, std::string_view option,
                                                     std::string_view text) {
  const auto address = Ipv4Interface::parse(text);
  if (!address) {
    line.fail(
        fmt::format("bad {} '{}': expected an IPv4 address and prefix length, like "
                    "198.18.0.2/24",
                    option, text));
    return std::nullopt;
  }
  if (const auto reason = unusable_reason(*address)) {
    line.fail(fmt::format("bad {} '{}': it {}", option, text, *reason));
    return std::nullopt;
  }
  return address;
}

std::optional<MacAddress> parse_mac(CommandLine& line, std::string_view text) {
  const auto mac = MacAddress::parse(text);
  if (!mac) {
    line.fail(fmt::format("bad --mac '{}': expected six hex bytes, like 02:00:c6:12:00:02", text));
    return std::nullopt;
  }
  if (mac->is_multicast() || mac->is_zero()) {
    line.fail(
        fmt::format("bad --mac '{}': it must be a unicast address (first byte even, "
                    "not all zero)",
                    text));
    return std::nullopt;
  }
  return mac;
}

std::string parse_tap_name(CommandLine& line, std::string_view text) {
  if (auto valid = check_interface_name(text); !valid) {
    line.fail(fmt::format("bad --tap: {}", valid.error().message));
  }
  return std::string(text);
}

std::string parse_path(CommandLine& line, std::string_view option, std::string_view text) {
  if (text.empty()) line.fail(fmt::format("option {} needs a file name", option));
  return std::string(text);
}

size_t parse_tap_queues(CommandLine& line, std::string_view text) {
  size_t queues = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), queues);
  if (error != std::errc{} || end != text.data() + text.size() || queues < 1 ||
      queues > kMaxTapQueues) {
    line.fail(fmt::format("bad --tap-queues '{}': expected a number of queues from 1 to {}", text,
                          kMaxTapQueues));
    return 1;
  }
  return queues;
}

uint16_t parse_port(CommandLine& line, std::string_view text) {
  const auto port = parse_port_number(text);
  if (!port) line.fail(fmt::format("bad --port '{}': expected a number from 1 to 65535", text));
  return port.value_or(0);
}

ServeMode parse_mode(CommandLine& line, std::string_view text) {
  for (const ServeMode mode : {ServeMode::Print, ServeMode::Echo, ServeMode::Discard}) {
    if (text == serve_mode_name(mode)) return mode;
  }
  line.fail(fmt::format("bad --mode '{}': expected print, echo or discard", text));
  return ServeMode::Print;
}

// "198.18.0.1:5000"
void parse_destination(CommandLine& line, std::string_view text, ConnectOptions& options) {
  const size_t colon = text.rfind(':');
  const auto address =
      colon == std::string_view::npos ? std::nullopt : Ipv4Address::parse(text.substr(0, colon));
  if (!address) {
    return line.fail(
        fmt::format("bad --to '{}': expected IPV4-ADDRESS:PORT, like 198.18.0.1:5000", text));
  }
  const auto port = parse_port_number(text.substr(colon + 1));
  if (!port) {
    return line.fail(fmt::format("bad --to '{}': the port must be a number from 1 to 65535", text));
  }
  options.remote = *address;
  options.remote_port = *port;
}

// Longer than anyone waits for one connection, short enough that nanoseconds cannot overflow.
constexpr double kMaxTimeoutSeconds = 1e7;

std::optional<Duration> parse_timeout(CommandLine& line, std::string_view text) {
  double seconds = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (error != std::errc{} || end != text.data() + text.size() || !std::isfinite(seconds) ||
      seconds <= 0 || seconds > kMaxTimeoutSeconds) {
    line.fail(
        fmt::format("bad --timeout '{}': expected a number of seconds above 0, like 30 or "
                    "0.5",
                    text));
    return std::nullopt;
  }
  return Duration::nanoseconds(std::llround(seconds * 1e9));
}

// "31323334" → bytes; nullopt unless it is pairs of hex digits.
std::optional<std::vector<uint8_t>> parse_hex(std::string_view text) {
  if (text.size() % 2 != 0) return std::nullopt;
  std::vector<uint8_t> bytes;
  bytes.reserve(text.size() / 2);
  for (size_t i = 0; i < text.size(); i += 2) {
    uint8_t byte = 0;
    const auto [end, error] = std::from_chars(text.data() + i, text.data() + i + 2, byte, 16);
    if (error != std::errc{} || end != text.data() + i + 2) return std::nullopt;
    bytes.push_back(byte);
  }
  return bytes;
}

// A key file holds at most hex: and 160 digits (80 bytes) and a newline; anything much longer
// is not a key file.
constexpr size_t kMaxKeyFileSize = 4096;

// "--md5 key for 198.18.0.1" or "--md5-key": whose key an error is about.
std::string key_subject(const Md5KeySource& source) {
  if (source.peer.empty()) return std::string(source.option);
  return fmt::format("{} key for {}", source.option, source.peer);
}

// The key in FILE of KEY=@FILE, without one trailing newline. As ssh does with a private key,
// a file that group or others may use is refused; so is anything but a regular file. nullopt
// after recording the error, which names the file and never what it holds.
std::optional<std::string> read_key_file(CommandLine& line, const Md5KeySource& source,
                                         const std::string& path) {
  const auto refuse = [&](std::string_view why) {
    line.fail(source.peer.empty() ? fmt::format("bad {} file '{}': {}", source.option, path, why)
                                  : fmt::format("bad {} key file '{}' for {}: {}", source.option,
                                                path, source.peer, why));
    return std::nullopt;
  };
  if (path.empty()) return refuse("@ needs a file name, like @/etc/tapstack/peer.key");
  // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below. What is
  // checked is the file opened, not a second look at the path.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) return refuse(errno_text(errno));
  struct stat status {};
  int error = fstat(fd, &status) == 0 ? 0 : errno;
  const bool regular = S_ISREG(status.st_mode);
  const bool private_to_owner = (status.st_mode & 077) == 0;
  std::string text;
  if (error == 0 && regular && private_to_owner) {
    text.resize(kMaxKeyFileSize + 1);
    const ssize_t size = ::read(fd, text.data(), text.size());
    error = size < 0 ? errno : 0;
    text.resize(size < 0 ? 0 : static_cast<size_t>(size));
  }
  ::close(fd);
  if (error != 0) return refuse(errno_text(error));
  if (!regular) return refuse("not a regular file");
  if (!private_to_owner) {
    return refuse(
        fmt::format("mode {:04o} lets group or others at the key; make it private to "
                    "its owner with chmod 600 '{}'",
                    status.st_mode & 07777, path));
  }
  if (text.size() > kMaxKeyFileSize) return refuse("far longer than a key (1 to 80 bytes)");
  if (text.ends_with('\n')) text.pop_back();
  if (text.empty()) return refuse("it is empty");
  return text;
}

// The key in environment variable NAME of KEY=env:NAME.
std::optional<std::string> read_key_variable(CommandLine& line, const Md5KeySource& source,
                                             const std::string& name) {
  if (name.empty()) {
    line.fail(
        fmt::format("bad {}: env: needs a variable name, like env:PEER_KEY", key_subject(source)));
    return std::nullopt;
  }
  const char* value = std::getenv(name.c_str());
  if (!value || !*value) {
    line.fail(fmt::format("bad {}: environment variable {} is {}", key_subject(source), name,
                          value ? "empty" : "not set"));
    return std::nullopt;
  }
  return std::string(value);
}

// KEY as given, or from where @FILE or env:NAME says.
std::optional<std::string> key_text(CommandLine& line, const Md5KeySource& source,
                                    std::string_view text) {
  if (text.starts_with('@')) return read_key_file(line, source, std::string(text.substr(1)));
  if (text.starts_with("env:")) {
    return read_key_variable(line, source, std::string(text.substr(4)));
  }
  return std::string(text);
}

// The peer must be a host on the stack's subnet: the stack has no gateway.
void check_destination(CommandLine& line, const ConnectOptions& options) {
  const Ipv4Interface& ours = options.common.addr;
  const Ipv4Address to = options.remote;
  if (to == ours.address) {
    return line.fail(fmt::format("--to {} is the stack's own address (--addr)", to.to_string()));
  }
  if (!ours.on_link(to)) {
    return line.fail(
        fmt::format("--to {} is not in the subnet of --addr {}; the stack reaches "
                    "only hosts on its own link",
                    to.to_string(), ours.to_string()));
  }
  if (ours.prefix_length <= 30 &&
      (to == ours.subnet_broadcast() || (to.value & ~ours.mask()) == 0)) {
    line.fail(
        fmt::format("--to {} is the broadcast or network address of its subnet", to.to_string()));
  }
}

std::string_view without_dashes(std::string_view name) {
  while (name.starts_with('-')) name.remove_prefix(1);
  return name;
}

// Whether name begins with start followed by a '-': "md5-key" with "md5".
bool starts_up_to_dash(std::string_view name, std::string_view start) {
  return name.size() > start.size() && name.starts_with(start) && name[start.size()] == '-';
}

// Edits (insert, delete, replace, swap two neighbours) that turn a into b: the optimal string
// alignment distance, as git's "did you mean" uses.
size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t replace = d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, replace});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

}  // namespace

std::optional<uint16_t> parse_port_number(std::string_view text) {
  uint32_t port = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), port);
  if (error != std::errc{} || end != text.data() + text.size() || port == 0 || port > 65535) {
    return std::nullopt;
  }
  return static_cast<uint16_t>(port);
}

const std::string_view kCommonOptionsHelp =
    R"(  --tap NAME             TAP interface to create, or to attach to if it exists
                         (at most 15 characters)
  --addr A.B.C.D/LEN     the stack's IPv4 address and prefix length
  --host-addr A.B.C.D/LEN
                         give the kernel side of the TAP this address and bring the
                         interface up (through rtnetlink); the address is removed at exit
                         unless the interface had it before. Without it the interface is
                         left as it is and must be configured by other means; a warning
                         at start says when it is down or has no address on the subnet
  --mac MAC              the stack's MAC address (default: 02:00 followed by the four
                         bytes of --addr, never the kernel side's MAC)
  --pcap FILE            write every frame in and out to FILE (pcap, Ethernet)
  --stats FILE           write the stack's counters to FILE as JSON at exit and on
                         SIGUSR1 (without --stats, SIGUSR1 prints them on stderr);
                         at exit also print the sockets left, as SIGUSR2 does:
                         SIGUSR2 prints a table like `ss -ti` (state, queues, rtt,
                         rto, mss, cwnd, md5) on stderr at any time
  --trace                print the path of each frame through the stack on stderr
  --no-offloads          one TCP segment per TAP frame: no virtio-net header, no TSO
                         (by default unsigned TCP moves up to 64 KiB per frame each way,
                         as the kernel's own devices do; signed segments never do)
  --tap-queues N         open N queues of a multi-queue TAP (IFF_MULTI_QUEUE, 1 to 16;
                         default 1) and write each through a thread of its own, so that
                         the kernel's receive work for our frames runs on up to N cores;
                         each TCP connection stays on one queue. An existing TAP must
                         have been made with multi_queue for N above 1
  -h, --help             show this help
)";

bool CommandLine::next() {
  if (error_) return false;
  if (started_) ++index_;
  started_ = true;
  if (index_ >= args_.size()) return false;
  const std::string_view arg = args_[index_];
  const size_t equals = arg.find('=');
  if (arg.starts_with("--") && equals != std::string_view::npos) {
    name_ = arg.substr(0, equals);
    inline_ = arg.substr(equals + 1);
  } else {
    name_ = arg;
    inline_.reset();
  }
  return true;
}

bool CommandLine::is_repeatable(std::string_view name) {
  remember(name);
  if (name_ != name) return false;
  seen_.insert(std::string(name));
  return true;
}

bool CommandLine::is(std::string_view name) {
  remember(name);
  if (name_ != name) return false;
  if (!seen_.insert(std::string(name)).second) fail(fmt::format("option {} given twice", name));
  return true;
}

std::string_view CommandLine::value() {
  if (inline_ && !inline_->empty()) return *inline_;
  // A following "--word" is the next option, not this one's value: "--tap --addr x".
  if (!inline_ && index_ + 1 < args_.size() && !args_[index_ + 1].starts_with("--")) {
    return args_[++index_];
  }
  fail(fmt::format("option {} needs a value", name_));
  return {};
}

void CommandLine::flag() {
  if (inline_) fail(fmt::format("option {} takes no value", name_));
}

void CommandLine::remember(std::string_view name) {
  if (std::find(known_.begin(), known_.end(), name) == known_.end()) known_.emplace_back(name);
}

void CommandLine::reject() {
  if (name_.starts_with("-")) {
    const auto meant = closest_name(name_, known_);
    fail(meant ? fmt::format("unknown option '{}'; did you mean '{}'?", name_, *meant)
               : fmt::format("unknown option '{}'", name_));
  } else {
    fail(fmt::format("unexpected argument '{}'", args_[index_]));
  }
}

void CommandLine::fail(std::string message) {
  if (!error_) error_ = UsageError{std::move(message)};
}

std::optional<std::string_view> closest_name(std::string_view unknown,
                                             std::span<const std::string> known) {
  const std::string_view bare = without_dashes(unknown);
  if (bare.size() < 2) return std::nullopt;
  std::optional<std::string_view> best;
  size_t best_distance = bare.size() > 5 ? 2 : 1;
  std::optional<std::string_view> longer;   // "--md5-key" for "--md5"
  std::optional<std::string_view> shorter;  // "--md5" for "--md5-key"
  for (const std::string& name : known) {
    const std::string_view candidate = without_dashes(name);
    if (candidate.size() < 2) continue;  // -h
    if (const size_t distance = edit_distance(bare, candidate); distance <= best_distance) {
      if (!best || distance < best_distance) best = name;
      best_distance = distance;
    }
    if (!longer && starts_up_to_dash(candidate, bare)) longer = name;
    if (starts_up_to_dash(bare, candidate) && (!shorter || name.size() > shorter->size())) {
      shorter = name;
    }
  }
  if (best) return best;
  return longer ? longer : shorter;
}

bool parse_common_option(CommandLine& line, CommonOptions& options) {
  if (line.is("--tap")) {
    options.tap = parse_tap_name(line, line.value());
  } else if (line.is("--addr")) {
    options.addr = parse_interface_address(line, "--addr", line.value()).value_or(Ipv4Interface{});
  } else if (line.is("--host-addr")) {
    options.host_addr = parse_interface_address(line, "--host-addr", line.value());
  } else if (line.is("--mac")) {
    options.mac = parse_mac(line, line.value());
  } else if (line.is("--pcap")) {
    options.pcap_path = parse_path(line, "--pcap", line.value());
  } else if (line.is("--stats")) {
    options.stats_path = parse_path(line, "--stats", line.value());
  } else if (line.is("--trace")) {
    line.flag();
    options.trace = true;
  } else if (line.is("--no-offloads")) {
    line.flag();
    options.offloads = false;
  } else if (line.is("--tap-queues")) {
    options.tap_queues = parse_tap_queues(line, line.value());
  } else {
    return false;
  }
  return true;
}

void check_common_options(CommandLine& line, const CommonOptions& options) {
  if (line.error()) return;
  if (!line.seen("--tap")) return line.fail("missing --tap NAME (the TAP interface to use)");
  if (!line.seen("--addr")) return line.fail("missing --addr A.B.C.D/LEN (the stack's address)");
  if (!options.host_addr) return;
  const Ipv4Interface& host = *options.host_addr;
  if (host.address == options.addr.address) {
    return line.fail(
        fmt::format("--host-addr and --addr are both {}; the kernel side needs "
                    "an address of its own",
                    host.address.to_string()));
  }
  if (!options.addr.on_link(host.address) || !host.on_link(options.addr.address)) {
    line.fail(fmt::format("--host-addr {} and --addr {} are not in the same subnet",
                          host.to_string(), options.addr.to_string()));
  }
}

Parsed<UpOptions> parse_up(std::span<const std::string_view> args) {
  CommandLine line(args);
  UpOptions options;
  while (line.next()) {
    if (line.is_help()) return HelpRequested{};
    if (parse_common_option(line, options.common)) continue;
    line.reject();
  }
  check_common_options(line, options.common);
  if (line.error()) return *line.error();
  return options;
}

const std::string_view kMd5OptionHelp =
    R"(  --md5 PEER[/PREFIX]=KEY
                         RFC 2385 TCP-MD5: sign every segment to PEER (or to any
                         address in PEER/PREFIX) with KEY, and drop every segment from
                         it that is not signed with KEY, as setsockopt(TCP_MD5SIG) does.
                         KEY is text, or hex:HEXDIGITS for a binary key; 1 to 80 bytes.
                         Keys on the command line are visible in ps: KEY may instead be
                         @FILE, the key in FILE (text or hex:..., one trailing newline
                         ignored; a regular file that only its owner may read: chmod
                         600), or env:NAME, the key in environment variable NAME. A text
                         key that begins with @ or env: is given as hex:.
                         Repeatable, one key per peer; the longest prefix wins. Given
                         again for the same PEER/PREFIX it replaces the key; with an
                         empty KEY it deletes it. Drops are counted in the stats JSON
                         as TcpExtTCPMD5NotFound, TcpExtTCPMD5Unexpected and
                         TcpExtTCPMD5Failure, the names nstat gives the kernel's.
)";

std::string Md5KeyOption::peer_text() const {
  if (prefix_length == 32) return peer.to_string();
  return fmt::format("{}/{}", peer.to_string(), prefix_length);
}

void parse_md5_option(CommandLine& line, std::string_view text, std::vector<Md5KeyOption>& keys) {
  const size_t equals = text.find('=');
  if (equals == std::string_view::npos) {
    return line.fail(
        "bad --md5: expected PEER[/PREFIX]=KEY, like 198.18.0.1=12345 or "
        "198.18.0.0/24=hex:3132333435");
  }
  const std::string_view peer_text = text.substr(0, equals);
  Md5KeyOption option;
  const size_t slash = peer_text.find('/');
  const auto peer = Ipv4Address::parse(peer_text.substr(0, slash));
  if (!peer) {
    return line.fail(fmt::format("bad --md5 peer '{}': expected an IPv4 address, like 198.18.0.1",
                                 peer_text.substr(0, slash)));
  }
  option.peer = *peer;
  if (slash != std::string_view::npos) {
    const std::string_view prefix = peer_text.substr(slash + 1);
    unsigned length = 0;
    const auto [end, error] = std::from_chars(prefix.data(), prefix.data() + prefix.size(), length);
    if (prefix.empty() || error != std::errc{} || end != prefix.data() + prefix.size() ||
        length > 32) {
      return line.fail(
          fmt::format("bad --md5 prefix '{}': expected a length from 0 to 32", prefix));
    }
    option.prefix_length = static_cast<uint8_t>(length);
  }
  auto key = parse_md5_key(line, text.substr(equals + 1), {"--md5", option.peer_text()});
  if (!key) return;
  option.key = std::move(*key);
  // The keys so far as the socket would hold them, then this one added as setsockopt() adds
  // it: replacing a key for the same peer and prefix, or deleting it when empty.
  md5opt::KeyTable table;
  for (const Md5KeyOption& earlier : keys) {
    table.add(IpAddress(earlier.peer), earlier.prefix_length, earlier.key);
  }
  if (const auto added = table.add(IpAddress(option.peer), option.prefix_length, option.key);
      !added) {
    return line.fail(
        added.error().code == ENOENT
            ? fmt::format("bad --md5 {}=: an empty key deletes a key, and no earlier --md5 set "
                          "one for {}",
                          option.peer_text(), option.peer_text())
            : fmt::format("bad --md5 {}: {}", option.peer_text(), added.error().message));
  }
  keys.clear();
  for (const md5opt::KeyTable::Entry& entry : table.entries()) {
    const auto bytes = entry.key.bytes();
    keys.push_back({Ipv4Address{load_be32(entry.address.bytes().data())},
                    static_cast<uint8_t>(entry.prefix_length),
                    {bytes.begin(), bytes.end()}});
  }
}

std::optional<std::vector<uint8_t>> parse_md5_key(CommandLine& line, std::string_view text,
                                                  const Md5KeySource& source) {
  const auto key = key_text(line, source, text);
  if (!key) return std::nullopt;
  std::vector<uint8_t> bytes;
  if (key->starts_with("hex:")) {
    auto parsed = parse_hex(std::string_view(*key).substr(4));
    if (!parsed) {
      line.fail(fmt::format("bad {}: after hex: expected pairs of hex digits (two per byte)",
                            key_subject(source)));
      return std::nullopt;
    }
    bytes = std::move(*parsed);
  } else {
    bytes.assign(key->begin(), key->end());
  }
  if (bytes.size() > md5opt::kMaxKeySize) {
    line.fail(fmt::format("bad {}: {} bytes; TCP-MD5 keys are 1 to {} bytes (TCP_MD5SIG_MAXKEYLEN)",
                          key_subject(source), bytes.size(), md5opt::kMaxKeySize));
    return std::nullopt;
  }
  return bytes;
}

std::string md5_keys_text(const std::vector<Md5KeyOption>& keys) {
  if (keys.empty()) return "";
  std::string text = keys.size() == 1 ? ", TCP-MD5 key for " : ", TCP-MD5 keys for ";
  for (size_t i = 0; i < keys.size(); ++i) {
    if (i > 0) text += i + 1 == keys.size() ? " and " : ", ";
    text += keys[i].peer_text();
  }
  return text;
}

std::string_view serve_mode_name(ServeMode mode) {
  switch (mode) {
    case ServeMode::Print:
      return "print";
    case ServeMode::Echo:
      return "echo";
    case ServeMode::Discard:
      return "discard";
  }
  return "?";
}

Parsed<ServeOptions> parse_serve(std::span<const std::string_view> args) {
  CommandLine line(args);
  ServeOptions options;
  while (line.next()) {
    if (line.is_help()) return HelpRequested{};
    if (parse_common_option(line, options.common)) continue;
    if (line.is("--port")) {
      options.port = parse_port(line, line.value());
    } else if (line.is("--mode")) {
      options.mode = parse_mode(line, line.value());
    } else if (line.is("--once")) {
      line.flag();
      options.once = true;
    } else if (line.is("--output")) {
      options.output_path = parse_path(line, "--output", line.value());
    } else if (line.is_repeatable("--md5")) {
      parse_md5_option(line, line.value(), options.md5_keys);
    } else {
      line.reject();
    }
  }
  check_common_options(line, options.common);
  if (!line.error() && !line.seen("--port")) line.fail("missing --port P (the port to listen on)");
  if (!line.error() && line.seen("--output") && options.mode != ServeMode::Print) {
    line.fail(fmt::format("--output is for --mode print; mode {} writes nothing",
                          serve_mode_name(options.mode)));
  }
  if (line.error()) return *line.error();
  return options;
}

Parsed<ConnectOptions> parse_connect(std::span<const std::string_view> args) {
  CommandLine line(args);
  ConnectOptions options;
  while (line.next()) {
    if (line.is_help()) return HelpRequested{};
    if (parse_common_option(line, options.common)) continue;
    if (line.is("--to")) {
      parse_destination(line, line.value(), options);
    } else if (line.is("--input")) {
      options.input_path = parse_path(line, "--input", line.value());
    } else if (line.is("--output")) {
      options.output_path = parse_path(line, "--output", line.value());
    } else if (line.is("--timeout")) {
      options.timeout = parse_timeout(line, line.value());
    } else if (line.is_repeatable("--md5")) {
      parse_md5_option(line, line.value(), options.md5_keys);
    } else {
      line.reject();
    }
  }
  check_common_options(line, options.common);
  if (!line.error() && !line.seen("--to")) {
    line.fail("missing --to IP:PORT (the peer to connect to)");
  }
  if (!line.error()) check_destination(line, options);
  if (line.error()) return *line.error();
  return options;
}

MacAddress derive_mac(Ipv4Address address, const MacAddress& avoid) {
  const uint32_t ip = address.value;
  MacAddress mac{{0x02, 0x00, static_cast<uint8_t>(ip >> 24), static_cast<uint8_t>(ip >> 16),
                  static_cast<uint8_t>(ip >> 8), static_cast<uint8_t>(ip)}};
  if (mac == avoid) mac.bytes[1] = 0x01;
  return mac;
}

}  // namespace tapstack::cli
