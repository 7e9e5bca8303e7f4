#include "tools/session.h"

#include <net/if.h>
#include <signal.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <exception>
#include <type_traits>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "stack/frame.h"
#include "tap/clock.h"
#include "tap/system_error.h"
#include "tools/build_info.h"
#include "tools/connection_table.h"
#include "tools/report.h"

namespace tapstack::cli {
namespace {

// The largest MTU whose frames fit the stack's frame buffers.
constexpr uint32_t kMaxStackMtu = kMaxFrameSize - kEthernetHeaderSize;

// The core draws no randomness of its own; the program gives it a fresh seed every run.
Result<uint64_t> random_seed() {
  uint64_t seed = 0;
  if (getrandom(&seed, sizeof seed, 0) != static_cast<ssize_t>(sizeof seed)) {
    return errno_error(errno, "drawing a random seed with getrandom()");
  }
  return seed;
}

// "198.18.0.0/24": the subnet of an interface address.
std::string subnet_text(const Ipv4Interface& address) {
  return Ipv4Interface{Ipv4Address{address.address.value & address.mask()}, address.prefix_length}
      .to_string();
}

// An address for the kernel side, for the fix a warning suggests: the first of the stack's
// subnet that is not the stack's own.
Ipv4Interface suggested_host_address(const Ipv4Interface& stack) {
  const uint32_t network = stack.address.value & stack.mask();
  uint32_t host = stack.prefix_length >= 31 ? network : network + 1;
  if (host == stack.address.value) ++host;
  return {Ipv4Address{host}, stack.prefix_length};
}

// The first prefix_length bits of address, the rest zero: 2001:db8::2/64 → 2001:db8::.
IpAddress ipv6_network(const IpAddress& address, int prefix_length) {
  std::array<uint8_t, 16> bytes{};
  const ByteView b = address.bytes();
  for (int i = 0; i < 16; ++i) {
    const int bits = std::clamp(prefix_length - 8 * i, 0, 8);
    bytes[i] = static_cast<uint8_t>(b[i] & (0xff00 >> bits));
  }
  return IpAddress::ipv6(bytes);
}

// "2001:db8::/64": the prefix of an IPv6 interface address.
std::string subnet_text(const Ipv6Interface& address) {
  return fmt::format("{}/{}", ipv6_network(address.address, address.prefix_length),
                     address.prefix_length);
}

// The IPv6 twin of suggested_host_address(): ...::1 of the prefix, or ...::2 when ::1 is ours.
Ipv6Interface suggested_host_address(const Ipv6Interface& stack) {
  std::array<uint8_t, 16> bytes{};
  const IpAddress network = ipv6_network(stack.address, stack.prefix_length);
  std::copy(network.bytes().begin(), network.bytes().end(), bytes.begin());
  bytes[15] |= 1;
  if (IpAddress::ipv6(bytes) == stack.address) bytes[15] ^= 3;
  return {IpAddress::ipv6(bytes), stack.prefix_length};
}

}  // namespace

Result<std::unique_ptr<Session>> Session::open(const CommonOptions& options) {
  File stats_file;
  if (!options.stats_path.empty()) {
    stats_file.reset(std::fopen(options.stats_path.c_str(), "w"));
    if (!stats_file) {
      return errno_error(errno,
                         fmt::format("cannot write the stats file '{}'", options.stats_path));
    }
  }
  std::optional<PcapWriter> pcap;
  if (!options.pcap_path.empty()) {
    auto writer = PcapWriter::open(options.pcap_path);
    if (!writer) return writer.error();
    pcap.emplace(std::move(*writer));
  }
  auto tap =
      TapDevice::open(options.tap, options.offloads ? TapOffloads::TcpOffloads : TapOffloads::None,
                      options.tap_queues);
  if (!tap) return tap.error();

  std::unique_ptr<Session> session(
      new Session(options, std::move(stats_file), std::move(pcap), std::move(*tap)));
  if (auto status = session->configure_host(); !status) return status.error();
  if (auto status = session->create_stack(); !status) return status.error();
  session->attach_outputs();
  session->signals_ = std::make_unique<StopOnSignals>(*session->loop_);
  session->requests_ = std::make_unique<RequestSignals>(*session->loop_);
  session->stack_->start(monotonic_now());
  if (auto status = session->wait_for_dad(); !status) return status.error();
  // After every check that can fail, so that a failure stays one line.
  if (const std::string warning = slow_build_warning(); !warning.empty()) {
    fmt::print(stderr, "{}\n", warning);
  }
  if (!session->start_warning_.empty()) report("warning: {}", session->start_warning_);
  return session;
}

Session::Session(CommonOptions options, File stats_file, std::optional<PcapWriter> pcap,
                 TapDevice tap)
    : options_(std::move(options)),
      stats_file_(std::move(stats_file)),
      pcap_(std::move(pcap)),
      tap_(std::move(tap)) {}

Session::~Session() = default;

// With --host-addr, the kernel side gets its addresses and goes up, as `ip addr add` (for IPv6
// with nodad) and `ip link set up` would do; an address it had already is left alone, now and
// at exit. A family without --host-addr is left exactly as it is.
Status Session::configure_host() {
  auto netlink = Rtnetlink::open();
  if (!netlink) return netlink.error();
  if (options_.host_addr) {
    if (auto added = add_host_address(*netlink, *options_.host_addr); !added) return added;
  }
  if (options_.host_addr6) {
    if (auto added = add_host_address(*netlink, *options_.host_addr6); !added) return added;
  }
  if (options_.host_addr || options_.host_addr6) {
    if (auto up = netlink->set_link_up(tap_.name()); !up) return up;
  }
  return check_kernel_side(*netlink);
}

Status Session::add_host_address(Rtnetlink& netlink, const Ipv4Interface& host) {
  auto addresses = netlink.ipv4_addresses(tap_.name());
  if (!addresses) return addresses.error();
  if (std::find(addresses->begin(), addresses->end(), host) == addresses->end()) {
    if (auto status = netlink.add_ipv4_address(tap_.name(), host); !status) return status;
    added_host_addr_.set(tap_.name(), host);
  }
  kernel_addresses_ = {host};
  return Ok{};
}

// A TAP may be made with IPv6 off (disable_ipv6=1 by default in the namespace, or set so by
// hand), and then no IPv6 address can be added: turn it on first, in our namespace only. The
// address skips duplicate address detection, so that the kernel answers at once.
Status Session::add_host_address(Rtnetlink& netlink, const Ipv6Interface& host) {
  if (auto enabled = enable_ipv6(tap_.name()); !enabled) return enabled;
  auto addresses = netlink.ipv6_addresses(tap_.name());
  if (!addresses) return addresses.error();
  if (std::find(addresses->begin(), addresses->end(), host) == addresses->end()) {
    if (auto status = netlink.add_ipv6_address(tap_.name(), host); !status) return status;
    added_host_addr6_.set(tap_.name(), host);
  }
  kernel_addresses6_ = {host};
  return Ok{};
}

// For a family without --host-addr the kernel reaches the stack only if the TAP is up and has
// an address on the stack's subnet (or is a bridge port, the address being elsewhere).
// Otherwise the first sign would be failed sends at exit: say it now, with the commands that
// fix it.
Status Session::check_kernel_side(Rtnetlink& netlink) {
  const std::string& name = tap_.name();
  auto link = netlink.link(name);
  if (!link) return link.error();
  if (options_.has_ipv4() && !options_.host_addr) {
    auto addresses = netlink.ipv4_addresses(name);
    if (!addresses) return addresses.error();
    for (const Ipv4Interface& address : *addresses) {
      if (address.on_link(options_.addr.address) && address.address != options_.addr.address) {
        kernel_addresses_.push_back(address);
      }
    }
  }
  if (options_.has_ipv6() && !options_.host_addr6) {
    auto addresses = netlink.ipv6_addresses(name);
    if (!addresses) return addresses.error();
    for (const Ipv6Interface& address : *addresses) {
      if (options_.addr6->on_link(address.address) && address.address != options_.addr6->address) {
        kernel_addresses6_.push_back(address);
      }
    }
  }
  char master[IF_NAMESIZE] = {};
  if (link->master != 0 && if_indextoname(static_cast<unsigned>(link->master), master)) {
    kernel_master_ = master;
  }
  kernel_down_ = !link->up;

  std::vector<std::string> problems;
  std::vector<std::string> fixes;
  std::vector<std::string> hosts;    // for --host-addr: an address of each family
  std::vector<std::string> missing;  // ... of each family the kernel side has none of
  if (kernel_down_) {
    problems.push_back("is down");
    fixes.push_back(fmt::format("'ip link set {} up'", name));
  }
  // A family whose --host-addr we set is fine, and so is the link we then brought up.
  if (options_.has_ipv4() && !options_.host_addr) {
    const Ipv4Interface host =
        kernel_addresses_.empty() ? suggested_host_address(options_.addr) : kernel_addresses_[0];
    if (kernel_addresses_.empty() && kernel_master_.empty()) {
      problems.push_back(fmt::format("has no IPv4 address in {}", subnet_text(options_.addr)));
      fixes.push_back(fmt::format("'ip addr add {} dev {}'", host.to_string(), name));
      missing.push_back(host.to_string());
    }
    hosts.push_back(host.to_string());
  }
  if (options_.has_ipv6() && !options_.host_addr6) {
    const Ipv6Interface host = kernel_addresses6_.empty() ? suggested_host_address(*options_.addr6)
                                                          : kernel_addresses6_[0];
    if (kernel_addresses6_.empty() && kernel_master_.empty()) {
      problems.push_back(fmt::format("has no IPv6 address in {}", subnet_text(*options_.addr6)));
      fixes.push_back(fmt::format("'ip -6 addr add {} dev {} nodad'", host.to_string(), name));
      missing.push_back(host.to_string());
    }
    hosts.push_back(host.to_string());
  }
  if (problems.empty()) return Ok{};
  start_warning_ = fmt::format(
      "'{}' {}, so the kernel cannot reach the stack; run {}, or start with --host-addr {}", name,
      fmt::join(problems, " and "), fmt::join(fixes, " and "),
      fmt::join(missing.empty() ? hosts : missing, " --host-addr "));
  return Ok{};
}

void Session::AddedHostAddress::set(std::string interface,
                                    std::variant<Ipv4Interface, Ipv6Interface> address) {
  interface_ = std::move(interface);
  address_ = address;
}

// What --host-addr added goes at exit, so that runs on a persistent TAP do not pile addresses
// up; an address that was there before stays.
Session::AddedHostAddress::~AddedHostAddress() {
  if (!address_) return;
  auto netlink = Rtnetlink::open();
  const auto remove = [&](const auto& address) -> Status {
    if constexpr (std::is_same_v<std::decay_t<decltype(address)>, Ipv4Interface>) {
      return netlink->delete_ipv4_address(interface_, address);
    } else {
      return netlink->delete_ipv6_address(interface_, address);
    }
  };
  const Status removed = netlink ? std::visit(remove, *address_) : Status(netlink.error());
  // ENODEV: a TAP we made is gone, and the address with it; EADDRNOTAVAIL: removed already.
  if (!removed && removed.error().code != ENODEV && removed.error().code != EADDRNOTAVAIL) {
    report("{}", removed.error().message);
  }
}

Status Session::create_stack() {
  auto kernel_mac = tap_.kernel_mac();
  auto mtu = tap_.mtu();
  auto seed = random_seed();
  if (!kernel_mac) return kernel_mac.error();
  if (!mtu) return mtu.error();
  if (!seed) return seed.error();
  kernel_mac_ = *kernel_mac;
  mtu_ = *mtu;
  if (mtu_ > kMaxStackMtu) {
    return Error{EINVAL, fmt::format("interface '{}' has MTU {}, above the {} the stack handles; "
                                     "lower it (ip link set {} mtu 1500)",
                                     tap_.name(), mtu_, kMaxStackMtu, tap_.name())};
  }
  if (options_.mac && *options_.mac == kernel_mac_) {
    return Error{EINVAL, fmt::format("--mac {} is the MAC of the kernel side of '{}'; choose "
                                     "another",
                                     kernel_mac_.to_string(), tap_.name())};
  }
  StackConfig config;
  const IpAddress mac_source =
      options_.has_ipv4() ? IpAddress(options_.addr.address) : options_.addr6->address;
  config.mac = options_.mac.value_or(derive_mac(mac_source, kernel_mac_));
  config.ipv4 = options_.addr;  // 0.0.0.0/0 without an IPv4 --addr: IPv4 off
  config.gateway = options_.gateway;
  config.ipv6 = options_.addr6;
  config.gateway6 = options_.gateway6;
  config.mtu = static_cast<uint16_t>(mtu_);
  config.seed = *seed;
  stack_ = std::make_unique<Stack>(config);
  auto loop = EventLoop::create(tap_, *stack_);
  if (!loop) return loop.error();
  loop_ = std::move(*loop);
  return Ok{};
}

void Session::attach_outputs() {
  if (options_.trace) {
    stack_->trace().set_sink([](std::string_view line) { fmt::print(stderr, "{}\n", line); });
  }
  if (pcap_) {
    loop_->set_frame_tap([this](FrameDirection, ByteView frame) {
      if (pcap_error_) return;
      if (auto status = pcap_->write(frame); !status) pcap_error_ = status.error();
    });
  }
}

std::string Session::describe() const {
  const std::string queues =
      tap_.queue_count() > 1 ? fmt::format(", {} queues", tap_.queue_count()) : std::string();
  std::vector<std::string> addresses;
  for (const Ipv4Interface& address : kernel_addresses_) addresses.push_back(address.to_string());
  for (const Ipv6Interface& address : kernel_addresses6_) addresses.push_back(address.to_string());
  std::string kernel_side =
      addresses.empty()
          ? fmt::format("kernel side at {}", kernel_mac_)
          : fmt::format("kernel side {} at {}", fmt::join(addresses, ", "), kernel_mac_);
  std::vector<std::string> unreached;  // the stack's subnets the kernel side has no address in
  if (options_.has_ipv4() && kernel_addresses_.empty())
    unreached.push_back(subnet_text(options_.addr));
  if (options_.has_ipv6() && kernel_addresses6_.empty()) {
    unreached.push_back(subnet_text(*options_.addr6));
  }
  if (!kernel_master_.empty()) {
    kernel_side += fmt::format(", a port of '{}'", kernel_master_);
  } else if (!unreached.empty()) {
    kernel_side += fmt::format(", with no address in {}", fmt::join(unreached, " or "));
  }
  if (kernel_down_) kernel_side += ", down";
  return fmt::format("{} at {} on TAP '{}' (MTU {}{}); {}", options_.addresses_text(),
                     stack_->config().mac.to_string(), tap_.name(), mtu_, queues, kernel_side);
}

// Our IPv6 addresses are tentative until duplicate address detection passes (RFC 4862
// §5.4): until then a connect() has no source address and segments to us are dropped. The
// command starts once both are ours, or fails at once when another node holds one.
Status Session::wait_for_dad() {
  const Ndisc* ndisc = stack_->ndisc();
  if (!ndisc) return Ok{};
  const auto& config = stack_->config();
  const Instant limit =
      monotonic_now() + config.ndisc.retransmit_interval * (config.ndisc.dad_transmits + 2);
  const auto ready = [&] {
    return ndisc->owns(stack_->ipv6_link_local()) && ndisc->owns(config.ipv6->address);
  };
  while (!ready() && ndisc->dad_failures().empty() && !loop_->stop_requested() &&
         monotonic_now() < limit) {
    if (auto status = loop_->run_once(Duration::milliseconds(50)); !status) return status;
  }
  if (!ndisc->dad_failures().empty()) {
    return Error{EADDRINUSE,
                 fmt::format("duplicate address detection failed: {}; choose another --addr",
                             ndisc->dad_failures().front())};
  }
  return Ok{};
}

Status Session::run_until_signal() {
  return run([](Instant) { return Duration::max(); });
}

Status Session::run(const Step& step) {
  Status status = Ok{};
  while (status && !loop_->stop_requested()) {
    const Instant now = monotonic_now();
    report_md5_drops(now, false);
    handle_requests();
    const std::optional<Duration> sleep = step(now);
    if (!sleep) break;
    status = loop_->run_once(*sleep);
    // Another node holds an address of ours: the stack cannot use it (RFC 4862 §5.4.5), and
    // a user who runs on regardless would see connections that never form.
    if (status && stack_->ndisc() && !stack_->ndisc()->dad_failures().empty()) {
      status = Error{EADDRINUSE,
                     fmt::format("duplicate address detection failed: {}; choose another --addr",
                                 stack_->ndisc()->dad_failures().front())};
    }
  }
  report_md5_drops(monotonic_now(), true);
  stopped_by_ = signals_->received();
  return status;
}

void Session::report_md5_drops(Instant now, bool final) {
  constexpr Duration kInterval = Duration::seconds(1);
  if (!final && !md5_report_time_.is_never() && now < md5_report_time_ + kInterval) return;
  std::string parts;
  uint64_t total = 0;
  for (size_t i = 0; i < kMd5DropCases.size(); ++i) {
    const Md5DropCase& drop = kMd5DropCases[i];
    const uint64_t value = stack_->counters().drops(drop.reason);
    const uint64_t fresh = value - md5_drops_reported_[i];
    md5_drops_reported_[i] = value;
    if (fresh == 0) continue;
    total += fresh;
    parts += fmt::format("{}{} {} ({})", parts.empty() ? "" : "; ", fresh, drop.meaning,
                         drop_reason_counters(drop.reason));
  }
  if (total == 0) return;
  md5_report_time_ = now;
  fmt::print(stderr, "{}: dropped {} segment{} failing RFC 2385 TCP-MD5: {}\n", kProgram, total,
             total == 1 ? "" : "s", parts);
}

std::string Session::summary() const {
  const EventLoopStats& stats = loop_->stats();
  const std::string how =
      stopped_by_ ? fmt::format("stopped by {}", signal_name(stopped_by_)) : std::string("stopped");
  std::string line =
      fmt::format("{}: {} frames in, {} out", how, stats.frames_received, stats.frames_sent);
  if (stats.send_drops + stats.send_errors > 0) {
    line += fmt::format(", {} dropped (TAP queue full), {} failed to send", stats.send_drops,
                        stats.send_errors);
  }
  if (!loop_->last_send_error().empty())
    line += fmt::format(" (last: {})", loop_->last_send_error());
  return line;
}

void Session::handle_requests() {
  if (requests_->take(SIGUSR1)) {
    if (const Status written = write_stats(); !written) report("{}", written.error().message);
  }
  if (requests_->take(SIGUSR2)) {
    fmt::print(stderr, "{}", connection_table(stack_->tcp()));
    std::fflush(stderr);
  }
}

Status Session::write_stats() {
  const std::string json = stack_->counters().to_json();
  if (!stats_file_) {
    fmt::print(stderr, "{}", json);
    return Ok{};
  }
  std::FILE* file = stats_file_.get();
  std::rewind(file);
  if (ftruncate(fileno(file), 0) != 0 || std::fputs(json.c_str(), file) < 0 ||
      std::fflush(file) != 0) {
    return errno_error(errno, fmt::format("writing the stats file '{}'", options_.stats_path));
  }
  return Ok{};
}

Status Session::finish() {
  if (stats_file_) {
    if (!stack_->tcp().sockets().empty()) {
      fmt::print(stderr, "{}: sockets at exit:\n{}", kProgram, connection_table(stack_->tcp()));
    }
    if (const Status written = write_stats(); !written) return written;
    if (std::fclose(stats_file_.release()) != 0) {
      return errno_error(errno, fmt::format("writing the stats file '{}'", options_.stats_path));
    }
  }
  if (pcap_error_) return *pcap_error_;
  return Ok{};
}

}  // namespace tapstack::cli
