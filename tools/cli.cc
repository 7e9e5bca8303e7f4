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

// Why an IPv6 interface address cannot be a host's, or nullopt when it can.
std::optional<std::string_view> unusable_reason(const Ipv6Interface& address) {
  const auto b = address.address.bytes();
  const bool v4_mapped = std::all_of(b.begin(), b.begin() + 10, [](uint8_t x) { return x == 0; }) &&
                         b[10] == 0xff && b[11] == 0xff;
  if (address.prefix_length == 0) return "has prefix length 0; use 1 to 128";
  if (is_ipv6_unspecified(address.address)) return "is the unspecified address";
  if (is_ipv6_multicast(address.address)) return "is a multicast address";
  if (is_ipv6_loopback(address.address)) return "is the loopback address";
  if (v4_mapped) return "is an IPv4-mapped address; give IPv4 as A.B.C.D/LEN";
  if (is_ipv6_link_local(address.address)) {
    return "is link-local: fe80::/64 addresses come from the MAC on both sides; give a global "
           "one, like 2001:db8::2/64";
  }
  return std::nullopt;
}

// Digits only, at most three of them: "24", "128".
std::optional<unsigned> parse_prefix_length(std::string_view text) {
  unsigned length = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), length);
  if (text.empty() || text.size() > 3 || error != std::errc{} || end != text.data() + text.size()) {
    return std::nullopt;
  }
  return length;
}

using InterfaceAddress = std::variant<Ipv4Interface, Ipv6Interface>;

// "198.18.0.2/24" or "2001:db8::2/64", checked for what a host's address may not be.
std::optional<InterfaceAddress> parse_interface_address(CommandLine& line, std::string_view option,
                                                        std::string_view text) {
  const size_t slash = text.find('/');
  const auto address =
      slash == std::string_view::npos ? std::nullopt : parse_ip_address(text.substr(0, slash));
  const auto length =
      slash == std::string_view::npos ? std::nullopt : parse_prefix_length(text.substr(slash + 1));
  if (!address || !length) {
    line.fail(
        fmt::format("bad {} '{}': expected an IPv4 or IPv6 address and prefix length, like "
                    "198.18.0.2/24 or 2001:db8::2/64",
                    option, text));
    return std::nullopt;
  }
  if (static_cast<int>(*length) > address->bit_length()) {
    line.fail(fmt::format("bad {} '{}': an {} prefix length is 1 to {}", option, text,
                          family_name(*address), address->bit_length()));
    return std::nullopt;
  }
  const auto prefix_length = static_cast<uint8_t>(*length);
  InterfaceAddress result =
      address->is_ipv4()
          ? InterfaceAddress(Ipv4Interface{*Ipv4Address::from(*address), prefix_length})
          : InterfaceAddress(Ipv6Interface{*address, prefix_length});
  const auto reason = std::visit([](const auto& a) { return unusable_reason(a); }, result);
  if (reason) {
    line.fail(fmt::format("bad {} '{}': it {}", option, text, *reason));
    return std::nullopt;
  }
  return result;
}

// --addr and --host-addr: at most one of each family.
void take_interface_address(CommandLine& line, std::string_view option, std::string_view text,
                            std::optional<Ipv4Interface>& ipv4,
                            std::optional<Ipv6Interface>& ipv6) {
  const auto parsed = parse_interface_address(line, option, text);
  if (!parsed) return;
  const auto* v4 = std::get_if<Ipv4Interface>(&*parsed);
  const auto* v6 = std::get_if<Ipv6Interface>(&*parsed);
  if ((v4 && ipv4) || (v6 && ipv6)) {
    return line.fail(fmt::format(
        "option {} given twice for {} ({} and {}); give at most one address per family", option,
        v4 ? "IPv4" : "IPv6", v4 ? ipv4->to_string() : ipv6->to_string(), text));
  }
  if (v4) ipv4 = *v4;
  if (v6) ipv6 = *v6;
}

// --gateway A.B.C.D or X:X::X: one per family, a unicast address.
void take_gateway(CommandLine& line, std::string_view text, CommonOptions& options) {
  const auto address = parse_ip_address(text);
  if (!address) {
    return line.fail(
        fmt::format("bad --gateway '{}': expected an IPv4 or IPv6 address, like 198.18.0.1 or "
                    "fe80::1",
                    text));
  }
  const auto ipv4 = Ipv4Address::from(*address);
  if ((ipv4 && (ipv4->is_zero() || ipv4->is_multicast() || ipv4->is_limited_broadcast())) ||
      is_ipv6_unspecified(*address) || is_ipv6_multicast(*address) || is_ipv6_loopback(*address)) {
    return line.fail(fmt::format("bad --gateway '{}': it must be a unicast address", text));
  }
  if ((ipv4 && options.gateway) || (!ipv4 && options.gateway6)) {
    return line.fail(
        fmt::format("option --gateway given twice for {}; give at most one gateway per family",
                    family_name(*address)));
  }
  if (ipv4) {
    options.gateway = *ipv4;
  } else {
    options.gateway6 = *address;
  }
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

void parse_destination(CommandLine& line, std::string_view text, ConnectOptions& options) {
  const auto to = parse_endpoint(line, "--to", text);
  if (!to) return;
  options.remote = to->address;
  options.remote_port = to->port;
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

// A gateway must be reachable on the link: inside --addr's subnet (IPv4), link-local or inside
// --addr's prefix (IPv6), and not the stack's own address.
void check_gateways(CommandLine& line, const CommonOptions& options) {
  for (const auto& gateway :
       {options.gateway ? std::optional<IpAddress>(*options.gateway) : std::nullopt,
        options.gateway6}) {
    if (!gateway || line.error()) continue;
    const std::string_view family = family_name(*gateway);
    if (!options.has_family(*gateway)) {
      return line.fail(
          fmt::format("--gateway {} is {}, and there is no {} --addr", *gateway, family, family));
    }
    if (*gateway == options.own_address(*gateway)) {
      return line.fail(fmt::format("--gateway {} is the stack's own address (--addr)", *gateway));
    }
    const bool on_link = gateway->is_ipv4()
                             ? options.addr.on_link(*Ipv4Address::from(*gateway))
                             : is_ipv6_link_local(*gateway) || options.addr6->on_link(*gateway);
    if (!on_link) {
      return line.fail(
          fmt::format("--gateway {} is not on the link: it must be inside --addr {}{}", *gateway,
                      gateway->is_ipv4() ? options.addr.to_string() : options.addr6->to_string(),
                      gateway->is_ipv4() ? "" : " or link-local (fe80::...)"));
    }
  }
}

// --host-addr: the kernel side's address, of a family the stack has, on the same subnet.
template <typename Interface>
void check_host_address(CommandLine& line, const Interface& host, const Interface& ours) {
  if (host.address == ours.address) {
    return line.fail(
        fmt::format("--host-addr and --addr are both {}; the kernel side needs "
                    "an address of its own",
                    host.address));
  }
  if (!ours.on_link(host.address) || !host.on_link(ours.address)) {
    line.fail(fmt::format("--host-addr {} and --addr {} are not in the same subnet",
                          host.to_string(), ours.to_string()));
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
  --addr X:X::X/LEN      the stack's IPv6 address and prefix length (2001:db8::2/64);
                         give --addr once per family: one of them, or both for a
                         dual stack. A family without --addr is off. With IPv6 the
                         stack also has fe80:: made from its MAC (modified EUI-64)
  --host-addr A.B.C.D/LEN, --host-addr X:X::X/LEN
                         give the kernel side of the TAP this address and bring the
                         interface up (through rtnetlink); the address is removed at exit
                         unless the interface had it before. Once per family, on the
                         subnet of that family's --addr. An IPv6 one is added without
                         duplicate address detection (nodad), after turning IPv6 on for
                         the interface (disable_ipv6=0). Without it the interface is
                         left as it is and must be configured by other means; a warning
                         at start says when it is down or has no address on the subnet
  --gateway A.B.C.D, --gateway X:X::X
                         the router for destinations off the link, once per family: on
                         the IPv4 --addr's subnet; for IPv6 inside the --addr prefix or
                         link-local (fe80::1). Without it only hosts on the link are
                         reached
  --mac MAC              the stack's MAC address (default: 02:00 followed by the last
                         four bytes of the IPv4 --addr, or of the IPv6 one when there is
                         no IPv4 --addr; never the kernel side's MAC)
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
  } else if (line.is_repeatable("--addr")) {
    std::optional<Ipv4Interface> ipv4;
    if (options.has_ipv4()) ipv4 = options.addr;
    take_interface_address(line, "--addr", line.value(), ipv4, options.addr6);
    if (ipv4) options.addr = *ipv4;
  } else if (line.is_repeatable("--host-addr")) {
    take_interface_address(line, "--host-addr", line.value(), options.host_addr,
                           options.host_addr6);
  } else if (line.is_repeatable("--gateway")) {
    take_gateway(line, line.value(), options);
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
  if (!line.seen("--addr")) {
    return line.fail(
        "missing --addr A.B.C.D/LEN or X:X::X/LEN (the stack's address; one per family, "
        "at least one)");
  }
  if (options.host_addr && !options.has_ipv4()) {
    return line.fail(
        fmt::format("--host-addr {} is IPv4, and there is no IPv4 --addr to share a subnet with",
                    options.host_addr->to_string()));
  }
  if (options.host_addr6 && !options.has_ipv6()) {
    return line.fail(
        fmt::format("--host-addr {} is IPv6, and there is no IPv6 --addr to share a subnet with",
                    options.host_addr6->to_string()));
  }
  if (options.host_addr) check_host_address(line, *options.host_addr, options.addr);
  if (options.host_addr6) check_host_address(line, *options.host_addr6, *options.addr6);
  check_gateways(line, options);
}

std::optional<Endpoint> parse_endpoint(CommandLine& line, std::string_view option,
                                       std::string_view text) {
  const auto bad = [&](std::string_view why) {
    line.fail(fmt::format("bad {} '{}': {}", option, text, why));
    return std::nullopt;
  };
  std::optional<IpAddress> address;
  std::string_view port;
  if (text.starts_with('[')) {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || text.substr(close + 1, 1) != ":") {
      return bad("expected [IPV6-ADDRESS]:PORT, like [2001:db8::1]:179");
    }
    address = parse_ip_address(text.substr(1, close - 1));
    if (!address || address->is_ipv4()) {
      return bad("expected an IPv6 address in the brackets, like [2001:db8::1]:179");
    }
    port = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon != std::string_view::npos && text.find(':') != colon) {
      // "2001:db8::1:179" is also an address: only brackets say where the port begins.
      return bad(fmt::format("an IPv6 address needs brackets before the port, like [{}]:{}",
                             text.substr(0, colon), text.substr(colon + 1)));
    }
    const auto ipv4 =
        colon == std::string_view::npos ? std::nullopt : Ipv4Address::parse(text.substr(0, colon));
    if (!ipv4) {
      return bad(
          "expected IPV4-ADDRESS:PORT or [IPV6-ADDRESS]:PORT, like 198.18.0.1:179 or "
          "[2001:db8::1]:179");
    }
    address = *ipv4;
    port = text.substr(colon + 1);
  }
  const auto number = parse_port_number(port);
  if (!number) return bad("the port must be a number from 1 to 65535");
  return Endpoint{*address, *number};
}

void check_peer_address(CommandLine& line, const CommonOptions& common, std::string_view option,
                        const IpAddress& peer) {
  if (line.error()) return;
  const std::string_view family = family_name(peer);
  if (!common.has_family(peer)) {
    return line.fail(fmt::format(
        "{} {} is {}, and the stack has no {} address; add --addr {}", option, peer, family, family,
        peer.is_ipv4() ? "A.B.C.D/LEN" : "X:X::X/LEN, like 2001:db8::2/64"));
  }
  if (peer == common.own_address(peer)) {
    return line.fail(fmt::format("{} {} is the stack's own address (--addr)", option, peer));
  }
  if (const auto ipv4 = Ipv4Address::from(peer)) {
    const Ipv4Interface& ours = common.addr;
    if (ipv4->is_zero() || ipv4->is_multicast() || ipv4->is_limited_broadcast()) {
      return line.fail(fmt::format("{} {} is not a unicast address", option, peer));
    }
    if (!ours.on_link(*ipv4)) {
      if (common.gateway) return;
      return line.fail(
          fmt::format("{} {} is not in the subnet of --addr {}; the stack reaches only hosts "
                      "on its own link, or others through --gateway",
                      option, peer, ours.to_string()));
    }
    if (ours.prefix_length <= 30 &&
        (*ipv4 == ours.subnet_broadcast() || (ipv4->value & ~ours.mask()) == 0)) {
      line.fail(
          fmt::format("{} {} is the broadcast or network address of its subnet", option, peer));
    }
    return;
  }
  if (is_ipv6_unspecified(peer) || is_ipv6_multicast(peer) || is_ipv6_loopback(peer)) {
    return line.fail(fmt::format("{} {} is not a unicast address", option, peer));
  }
  if (!is_ipv6_link_local(peer) && !common.addr6->on_link(peer) && !common.gateway6) {
    line.fail(
        fmt::format("{} {} is not in the prefix of --addr {}; the stack reaches only hosts "
                    "on its own link (or fe80::...), or others through --gateway",
                    option, peer, common.addr6->to_string()));
  }
}

std::optional<IpAddress> parse_ip_address(std::string_view text) {
  if (text.find(':') == std::string_view::npos) {
    const auto ipv4 = Ipv4Address::parse(text);
    return ipv4 ? std::optional<IpAddress>(*ipv4) : std::nullopt;
  }
  const auto ipv6 = IpAddress::parse(text);
  if (!ipv6 || ipv6->is_ipv4()) return std::nullopt;
  return ipv6;
}

std::string_view family_name(const IpAddress& address) {
  return address.is_ipv4() ? "IPv4" : "IPv6";
}

std::string format_endpoint(const IpAddress& address, uint16_t port) {
  return fmt::format("{}", tapstack::Endpoint{address, port});
}

std::string CommonOptions::addresses_text() const {
  if (has_ipv4() && has_ipv6())
    return fmt::format("{} and {}", addr.to_string(), addr6->to_string());
  return has_ipv6() ? addr6->to_string() : addr.to_string();
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
                         PEER is IPv4 (PREFIX 0 to 32) or IPv6 (0 to 128), like
                         198.18.0.1=KEY, 198.18.0.0/24=KEY, 2001:db8::1=KEY or
                         2001:db8::/64=KEY; a key for a family the stack has no --addr
                         of is an error.
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
  if (prefix_length == peer.bit_length()) return fmt::format("{}", peer);
  return fmt::format("{}/{}", peer, prefix_length);
}

void parse_md5_option(CommandLine& line, std::string_view text, std::vector<Md5KeyOption>& keys) {
  const size_t equals = text.find('=');
  if (equals == std::string_view::npos) {
    return line.fail(
        "bad --md5: expected PEER[/PREFIX]=KEY, like 198.18.0.1=12345, "
        "198.18.0.0/24=hex:3132333435 or 2001:db8::/64=12345");
  }
  const std::string_view peer_text = text.substr(0, equals);
  Md5KeyOption option;
  const size_t slash = peer_text.find('/');
  const auto peer = parse_ip_address(peer_text.substr(0, slash));
  if (!peer) {
    return line.fail(
        fmt::format("bad --md5 peer '{}': expected an IPv4 or IPv6 address, like 198.18.0.1 or "
                    "2001:db8::1",
                    peer_text.substr(0, slash)));
  }
  option.peer = *peer;
  option.prefix_length = static_cast<uint8_t>(peer->bit_length());
  if (slash != std::string_view::npos) {
    const std::string_view prefix = peer_text.substr(slash + 1);
    const auto length = parse_prefix_length(prefix);
    if (!length || static_cast<int>(*length) > peer->bit_length()) {
      return line.fail(
          fmt::format("bad --md5 prefix '{}': expected a length from 0 to {} for an "
                      "{} peer",
                      prefix, peer->bit_length(), family_name(*peer)));
    }
    option.prefix_length = static_cast<uint8_t>(*length);
  }
  auto key = parse_md5_key(line, text.substr(equals + 1), {"--md5", option.peer_text()});
  if (!key) return;
  option.key = std::move(*key);
  // The keys so far as the socket would hold them, then this one added as setsockopt() adds
  // it: replacing a key for the same peer and prefix, or deleting it when empty.
  md5opt::KeyTable table;
  for (const Md5KeyOption& earlier : keys) {
    table.add(earlier.peer, earlier.prefix_length, earlier.key);
  }
  if (const auto added = table.add(option.peer, option.prefix_length, option.key); !added) {
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
    keys.push_back(
        {entry.address, static_cast<uint8_t>(entry.prefix_length), {bytes.begin(), bytes.end()}});
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

void check_md5_families(CommandLine& line, const CommonOptions& common,
                        const std::vector<Md5KeyOption>& keys) {
  for (const Md5KeyOption& key : keys) {
    if (line.error() || common.has_family(key.peer)) continue;
    line.fail(fmt::format(
        "--md5 {} is a key for {} peers, and the stack has no {} --addr: no such peer could "
        "reach it",
        key.peer_text(), family_name(key.peer), family_name(key.peer)));
  }
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
  check_md5_families(line, options.common, options.md5_keys);
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
  check_peer_address(line, options.common, "--to", options.remote);
  check_md5_families(line, options.common, options.md5_keys);
  if (line.error()) return *line.error();
  return options;
}

MacAddress derive_mac(const IpAddress& address, const MacAddress& avoid) {
  const ByteView b = address.bytes();
  const size_t last = b.size() - 4;
  MacAddress mac{{0x02, 0x00, b[last], b[last + 1], b[last + 2], b[last + 3]}};
  if (mac == avoid) mac.bytes[1] = 0x01;
  return mac;
}

}  // namespace tapstack::cli
