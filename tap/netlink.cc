#include "tap/netlink.h"

#include <fcntl.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstring>
#include <utility>

#include <fmt/format.h>

#include "tap/system_error.h"
#include "tap/tap_device.h"

namespace tapstack {
namespace {

constexpr size_t kReceiveBufferSize = 64 * 1024;
constexpr timeval kReceiveTimeout = {2, 0};

constexpr size_t align4(size_t n) {
  return (n + 3) & ~size_t{3};
}

// Reads a struct from bytes that may not be aligned for it.
template <typename T>
std::optional<T> load(ByteView bytes) {
  if (bytes.size() < sizeof(T)) return std::nullopt;
  T value;
  std::memcpy(&value, bytes.data(), sizeof(T));
  return value;
}

// One request: nlmsghdr, the family header (ifinfomsg, ifaddrmsg, ndmsg), then attributes,
// each padded to 4 bytes as NLMSG_ALIGN and RTA_ALIGN require.
class RequestBuilder {
 public:
  RequestBuilder(uint16_t type, uint16_t flags) {
    nlmsghdr header{};
    header.nlmsg_type = type;
    header.nlmsg_flags = static_cast<uint16_t>(NLM_F_REQUEST | flags);
    append(&header, sizeof header);
  }
  template <typename T>
  RequestBuilder& family_header(const T& header) {
    append(&header, sizeof header);
    return *this;
  }
  RequestBuilder& attribute(uint16_t type, ByteView value) {
    rtattr attribute{};
    attribute.rta_len = static_cast<uint16_t>(sizeof attribute + value.size());
    attribute.rta_type = type;
    append(&attribute, sizeof attribute);
    append(value.data(), value.size());
    return *this;
  }
  RequestBuilder& attribute_u32(uint16_t type, uint32_t value) {
    return attribute(type, {reinterpret_cast<const uint8_t*>(&value), sizeof value});
  }
  RequestBuilder& attribute_ipv4(uint16_t type, Ipv4Address address) {
    uint8_t bytes[4];
    store_be32(bytes, address.value);
    return attribute(type, bytes);
  }
  RequestBuilder& attribute_ipv6(uint16_t type, const IpAddress& address) {
    return attribute(type, address.bytes());
  }
  std::vector<uint8_t> finish() {
    const auto length = static_cast<uint32_t>(bytes_.size());
    std::memcpy(bytes_.data() + offsetof(nlmsghdr, nlmsg_len), &length, sizeof length);
    return std::move(bytes_);
  }

 private:
  void append(const void* data, size_t size) {
    const auto* bytes = static_cast<const uint8_t*>(data);
    bytes_.insert(bytes_.end(), bytes, bytes + size);
    bytes_.resize(align4(bytes_.size()));
  }
  std::vector<uint8_t> bytes_;
};

// The attributes that follow a family header, by type (the last one wins, as in the kernel's
// nla_parse()).
class Attributes {
 public:
  explicit Attributes(ByteView bytes) {
    while (auto header = load<rtattr>(bytes)) {
      if (header->rta_len < sizeof(rtattr) || header->rta_len > bytes.size()) break;
      const ByteView value = bytes.subspan(sizeof(rtattr), header->rta_len - sizeof(rtattr));
      if (header->rta_type < values_.size()) values_[header->rta_type] = value;
      bytes = bytes.subspan(std::min(bytes.size(), align4(header->rta_len)));
    }
  }
  std::optional<ByteView> get(uint16_t type) const {
    if (type >= values_.size()) return std::nullopt;
    return values_[type];
  }
  std::optional<uint32_t> get_u32(uint16_t type) const {
    const auto value = get(type);
    return value ? load<uint32_t>(*value) : std::nullopt;
  }
  std::optional<Ipv4Address> get_ipv4(uint16_t type) const {
    const auto value = get(type);
    if (!value || value->size() != 4) return std::nullopt;
    return Ipv4Address{load_be32(value->data())};
  }
  std::optional<IpAddress> get_ipv6(uint16_t type) const {
    const auto value = get(type);
    if (!value || value->size() != 16) return std::nullopt;
    return IpAddress::ipv6(value->first<16>());
  }
  std::optional<MacAddress> get_mac(uint16_t type) const {
    const auto value = get(type);
    if (!value || value->size() != 6) return std::nullopt;
    MacAddress mac;
    std::memcpy(mac.bytes.data(), value->data(), 6);
    return mac;
  }
  std::optional<std::string> get_string(uint16_t type) const {
    const auto value = get(type);
    if (!value) return std::nullopt;
    const auto* chars = reinterpret_cast<const char*>(value->data());
    return std::string(chars, strnlen(chars, value->size()));
  }

 private:
  std::array<std::optional<ByteView>, 64> values_;
};

// The family header T and the attributes after it, in one message's payload.
template <typename T>
std::optional<std::pair<T, Attributes>> parse_payload(const std::vector<uint8_t>& payload) {
  const auto header = load<T>(payload);
  if (!header) return std::nullopt;
  return std::pair{*header, Attributes(ByteView(payload).subspan(align4(sizeof(T))))};
}

// EPERM and ENODEV deserve more than errno's words: say what to do.
Error rtnetlink_error(int code, std::string_view what, std::string_view kernel_says) {
  std::string message = fmt::format("{}: {}", what, errno_text(code));
  if (!kernel_says.empty()) message += fmt::format(" ({})", kernel_says);
  if (code == EPERM) message += fmt::format("; {}", kNeedNetAdmin);
  return Error{code, std::move(message)};
}

// The text of an extended acknowledgement (NETLINK_EXT_ACK), if the kernel sent one.
std::string extended_ack_text(const nlmsghdr& header, ByteView payload) {
  if (!(header.nlmsg_flags & NLM_F_ACK_TLVS)) return {};
  const auto error = load<nlmsgerr>(payload);
  if (!error) return {};
  // The echoed request follows the error code: its header only, when capped.
  size_t offset = sizeof(int) + sizeof(nlmsghdr);
  if (!(header.nlmsg_flags & NLM_F_CAPPED)) offset = sizeof(int) + error->msg.nlmsg_len;
  if (align4(offset) >= payload.size()) return {};
  return Attributes(payload.subspan(align4(offset))).get_string(NLMSGERR_ATTR_MSG).value_or("");
}

}  // namespace

bool Neighbour::is_valid() const {
  // Linux: NUD_VALID in include/net/neighbour.h (not exported to user space).
  constexpr uint16_t kValid =
      NUD_PERMANENT | NUD_NOARP | NUD_REACHABLE | NUD_PROBE | NUD_STALE | NUD_DELAY;
  return (state & kValid) != 0;
}

std::string Neighbour::state_name() const {
  static constexpr std::pair<uint16_t, const char*> kNames[] = {
      {NUD_INCOMPLETE, "INCOMPLETE"}, {NUD_REACHABLE, "REACHABLE"}, {NUD_STALE, "STALE"},
      {NUD_DELAY, "DELAY"},           {NUD_PROBE, "PROBE"},         {NUD_FAILED, "FAILED"},
      {NUD_NOARP, "NOARP"},           {NUD_PERMANENT, "PERMANENT"}};
  std::string name;
  for (const auto& [bit, text] : kNames) {
    if (state & bit) name += name.empty() ? text : fmt::format(",{}", text);
  }
  return name.empty() ? "NONE" : name;
}

Result<Rtnetlink> Rtnetlink::open() {
  const int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return errno_error(errno, "opening an rtnetlink socket");
  Rtnetlink netlink(fd);
  if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &kReceiveTimeout, sizeof kReceiveTimeout) != 0) {
    return errno_error(errno, "setting the rtnetlink receive timeout");
  }
  // Best effort: with extended acks the kernel says in words what it disliked.
  const int on = 1;
  setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &on, sizeof on);
  return netlink;
}

Rtnetlink::Rtnetlink(Rtnetlink&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), sequence_(other.sequence_) {}

Rtnetlink& Rtnetlink::operator=(Rtnetlink&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    sequence_ = other.sequence_;
  }
  return *this;
}

Rtnetlink::~Rtnetlink() {
  if (fd_ >= 0) close(fd_);
}

Status Rtnetlink::send_request(std::vector<uint8_t>& request, std::string_view what) {
  const uint32_t sequence = ++sequence_;
  std::memcpy(request.data() + offsetof(nlmsghdr, nlmsg_seq), &sequence, sizeof sequence);
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  const ssize_t sent = sendto(fd_, request.data(), request.size(), 0,
                              reinterpret_cast<const sockaddr*>(&kernel), sizeof kernel);
  if (sent < 0) return rtnetlink_error(errno, what, {});
  return Ok{};
}

Result<std::vector<uint8_t>> Rtnetlink::receive(std::string_view what) {
  std::vector<uint8_t> datagram(kReceiveBufferSize);
  const ssize_t size = recv(fd_, datagram.data(), datagram.size(), 0);
  if (size < 0 && errno == EAGAIN) {
    return Error{ETIMEDOUT, fmt::format("{}: the kernel did not answer within {} s", what,
                                        kReceiveTimeout.tv_sec)};
  }
  if (size < 0) return rtnetlink_error(errno, what, {});
  datagram.resize(static_cast<size_t>(size));
  return datagram;
}

Result<std::vector<std::vector<uint8_t>>> Rtnetlink::transact(std::vector<uint8_t> request,
                                                              std::string_view what) {
  if (auto sent = send_request(request, what); !sent) return sent.error();
  std::vector<std::vector<uint8_t>> answer;
  for (;;) {
    auto datagram = receive(what);
    if (!datagram) return datagram.error();
    ByteView rest = *datagram;
    while (auto header = load<nlmsghdr>(rest)) {
      if (header->nlmsg_len < sizeof(nlmsghdr) || header->nlmsg_len > rest.size()) break;
      const ByteView payload = rest.subspan(sizeof(nlmsghdr), header->nlmsg_len - sizeof(nlmsghdr));
      rest = rest.subspan(std::min(rest.size(), align4(header->nlmsg_len)));
      if (header->nlmsg_seq != sequence_) continue;  // an answer to an earlier request
      if (header->nlmsg_type == NLMSG_ERROR || header->nlmsg_type == NLMSG_DONE) {
        const int code = -load<int>(payload).value_or(0);
        if (code == 0) return answer;  // an acknowledgement, or the end of a dump
        return rtnetlink_error(code, what, extended_ack_text(*header, payload));
      }
      answer.emplace_back(payload.begin(), payload.end());
    }
  }
}

Result<LinkInfo> Rtnetlink::link(std::string_view name) {
  ifinfomsg header{};
  header.ifi_family = AF_UNSPEC;
  const std::string c_name(name);
  auto request = RequestBuilder(RTM_GETLINK, NLM_F_ACK)
                     .family_header(header)
                     .attribute(IFLA_IFNAME, {reinterpret_cast<const uint8_t*>(c_name.c_str()),
                                              c_name.size() + 1})
                     .finish();
  auto answer = transact(std::move(request), fmt::format("looking up interface '{}'", name));
  if (!answer) {
    if (answer.error().code != ENODEV) return answer.error();
    return Error{ENODEV, fmt::format("there is no interface named '{}'", name)};
  }
  for (const auto& payload : *answer) {
    const auto parsed = parse_payload<ifinfomsg>(payload);
    if (!parsed) continue;
    const auto& [info, attributes] = *parsed;
    return LinkInfo{info.ifi_index,
                    attributes.get_string(IFLA_IFNAME).value_or(c_name),
                    attributes.get_u32(IFLA_MTU).value_or(0),
                    attributes.get_mac(IFLA_ADDRESS).value_or(MacAddress{}),
                    (info.ifi_flags & IFF_UP) != 0,
                    static_cast<int>(attributes.get_u32(IFLA_MASTER).value_or(0))};
  }
  return Error{EPROTO, fmt::format("looking up interface '{}': the kernel sent no link", name)};
}

Status Rtnetlink::set_link_up(std::string_view name) {
  auto link_info = link(name);
  if (!link_info) return link_info.error();
  ifinfomsg header{};
  header.ifi_family = AF_UNSPEC;
  header.ifi_index = link_info->index;
  header.ifi_flags = IFF_UP;
  header.ifi_change = IFF_UP;
  auto answer = transact(RequestBuilder(RTM_NEWLINK, NLM_F_ACK).family_header(header).finish(),
                         fmt::format("setting interface '{}' up", name));
  if (!answer) return answer.error();
  return Ok{};
}

Status Rtnetlink::set_mtu(std::string_view name, uint32_t mtu) {
  auto link_info = link(name);
  if (!link_info) return link_info.error();
  ifinfomsg header{};
  header.ifi_family = AF_UNSPEC;
  header.ifi_index = link_info->index;
  auto answer = transact(RequestBuilder(RTM_NEWLINK, NLM_F_ACK)
                             .family_header(header)
                             .attribute_u32(IFLA_MTU, mtu)
                             .finish(),
                         fmt::format("setting the MTU of interface '{}' to {}", name, mtu));
  if (!answer) return answer.error();
  return Ok{};
}

Status Rtnetlink::add_ipv4_address(std::string_view name, Ipv4Interface address) {
  auto link_info = link(name);
  if (!link_info) return link_info.error();
  ifaddrmsg header{};
  header.ifa_family = AF_INET;
  header.ifa_prefixlen = address.prefix_length;
  header.ifa_scope = RT_SCOPE_UNIVERSE;
  header.ifa_index = static_cast<uint32_t>(link_info->index);
  RequestBuilder request(RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE);
  request.family_header(header)
      .attribute_ipv4(IFA_LOCAL, address.address)
      .attribute_ipv4(IFA_ADDRESS, address.address);
  if (address.prefix_length < 31) request.attribute_ipv4(IFA_BROADCAST, address.subnet_broadcast());
  auto answer = transact(request.finish(), fmt::format("adding address {} to interface '{}'",
                                                       address.to_string(), name));
  if (!answer) return answer.error();
  return Ok{};
}

Status Rtnetlink::delete_ipv4_address(std::string_view name, Ipv4Interface address) {
  auto link_info = link(name);
  if (!link_info) return link_info.error();
  ifaddrmsg header{};
  header.ifa_family = AF_INET;
  header.ifa_prefixlen = address.prefix_length;
  header.ifa_index = static_cast<uint32_t>(link_info->index);
  // With IFA_ADDRESS the kernel also matches the prefix length, not the first 198.18.0.1.
  auto answer =
      transact(RequestBuilder(RTM_DELADDR, NLM_F_ACK)
                   .family_header(header)
                   .attribute_ipv4(IFA_LOCAL, address.address)
                   .attribute_ipv4(IFA_ADDRESS, address.address)
                   .finish(),
               fmt::format("removing address {} from interface '{}'", address.to_string(), name));
  if (!answer) return answer.error();
  return Ok{};
}

Result<std::vector<Ipv4Interface>> Rtnetlink::ipv4_addresses(std::string_view name) {
  auto link_info = link(name);
  if (!link_info) return link_info.error();
  ifaddrmsg header{};
  header.ifa_family = AF_INET;
  auto answer = transact(RequestBuilder(RTM_GETADDR, NLM_F_DUMP).family_header(header).finish(),
                         fmt::format("listing the addresses of interface '{}'", name));
  if (!answer) return answer.error();
  std::vector<Ipv4Interface> addresses;
  for (const auto& payload : *answer) {
    const auto parsed = parse_payload<ifaddrmsg>(payload);
    if (!parsed || parsed->first.ifa_index != static_cast<uint32_t>(link_info->index)) continue;
    const auto& attributes = parsed->second;
    const auto local = attributes.get_ipv4(IFA_LOCAL);
    const auto address = local ? local : attributes.get_ipv4(IFA_ADDRESS);
    if (address) addresses.push_back({*address, parsed->first.ifa_prefixlen});
  }
  return addresses;
}

Status Rtnetlink::add_ipv6_address(std::string_view name, const Ipv6Interface& address) {
  auto link_info = link(name);
  if (!link_info) return link_info.error();
  ifaddrmsg header{};
  header.ifa_family = AF_INET6;
  header.ifa_prefixlen = address.prefix_length;
  header.ifa_flags = IFA_F_NODAD;
  header.ifa_scope = RT_SCOPE_UNIVERSE;
  header.ifa_index = static_cast<uint32_t>(link_info->index);
  // As `ip` sends it: IFA_LOCAL and IFA_ADDRESS alike (no peer), the flags also in IFA_FLAGS.
  auto answer =
      transact(RequestBuilder(RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE)
                   .family_header(header)
                   .attribute_ipv6(IFA_LOCAL, address.address)
                   .attribute_ipv6(IFA_ADDRESS, address.address)
                   .attribute_u32(IFA_FLAGS, IFA_F_NODAD)
                   .finish(),
               fmt::format("adding address {} to interface '{}'", address.to_string(), name));
  if (!answer) return answer.error();
  return Ok{};
}

Status Rtnetlink::delete_ipv6_address(std::string_view name, const Ipv6Interface& address) {
  auto link_info = link(name);
  if (!link_info) return link_info.error();
  ifaddrmsg header{};
  header.ifa_family = AF_INET6;
  header.ifa_prefixlen = address.prefix_length;
  header.ifa_index = static_cast<uint32_t>(link_info->index);
  auto answer =
      transact(RequestBuilder(RTM_DELADDR, NLM_F_ACK)
                   .family_header(header)
                   .attribute_ipv6(IFA_LOCAL, address.address)
                   .attribute_ipv6(IFA_ADDRESS, address.address)
                   .finish(),
               fmt::format("removing address {} from interface '{}'", address.to_string(), name));
  if (!answer) return answer.error();
  return Ok{};
}

Result<std::vector<Ipv6Interface>> Rtnetlink::ipv6_addresses(std::string_view name) {
  auto link_info = link(name);
  if (!link_info) return link_info.error();
  ifaddrmsg header{};
  header.ifa_family = AF_INET6;
  auto answer = transact(RequestBuilder(RTM_GETADDR, NLM_F_DUMP).family_header(header).finish(),
                         fmt::format("listing the IPv6 addresses of interface '{}'", name));
  if (!answer) return answer.error();
  std::vector<Ipv6Interface> addresses;
  for (const auto& payload : *answer) {
    const auto parsed = parse_payload<ifaddrmsg>(payload);
    if (!parsed || parsed->first.ifa_family != AF_INET6 ||
        parsed->first.ifa_index != static_cast<uint32_t>(link_info->index)) {
      continue;
    }
    // IFA_ADDRESS is the address itself; IFA_LOCAL appears only beside a peer address.
    const auto& attributes = parsed->second;
    const auto local = attributes.get_ipv6(IFA_LOCAL);
    const auto address = local ? local : attributes.get_ipv6(IFA_ADDRESS);
    if (address) addresses.push_back({*address, parsed->first.ifa_prefixlen});
  }
  return addresses;
}

Result<std::vector<Neighbour>> Rtnetlink::ipv4_neighbours(std::string_view name) {
  auto link_info = link(name);
  if (!link_info) return link_info.error();
  ndmsg header{};
  header.ndm_family = AF_INET;
  auto answer = transact(RequestBuilder(RTM_GETNEIGH, NLM_F_DUMP).family_header(header).finish(),
                         fmt::format("listing the neighbours on interface '{}'", name));
  if (!answer) return answer.error();
  std::vector<Neighbour> neighbours;
  for (const auto& payload : *answer) {
    const auto parsed = parse_payload<ndmsg>(payload);
    if (!parsed || parsed->first.ndm_ifindex != link_info->index) continue;
    const auto& attributes = parsed->second;
    const auto address = attributes.get_ipv4(NDA_DST);
    if (!address) continue;
    neighbours.push_back({*address, attributes.get_mac(NDA_LLADDR), parsed->first.ndm_state});
  }
  return neighbours;
}

Status enable_ipv6(std::string_view name) {
  if (auto valid = check_interface_name(name); !valid) return valid.error();
  const std::string path = fmt::format("/proc/sys/net/ipv6/conf/{}/disable_ipv6", name);
  const std::string what = fmt::format("turning IPv6 on for interface '{}' ({})", name, path);
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    // No such file: a kernel without IPv6, or booted with ipv6.disable=1.
    return errno_error(errno, what);
  }
  char current = 0;
  Status status = Ok{};
  if (::pread(fd, &current, 1, 0) != 1) {
    status = errno_error(errno, what);
  } else if (current != '0' && ::pwrite(fd, "0\n", 2, 0) != 2) {
    status = errno == EACCES || errno == EPERM
                 ? Status(Error{errno,
                                fmt::format("{}: {}; {}", what, errno_text(errno), kNeedNetAdmin)})
                 : Status(errno_error(errno, what));
  }
  ::close(fd);
  return status;
}

Status bring_loopback_up() {
  auto netlink = Rtnetlink::open();
  if (!netlink) return netlink.error();
  return netlink->set_link_up("lo");
}

}  // namespace tapstack
