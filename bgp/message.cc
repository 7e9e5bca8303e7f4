#include "bgp/message.h"

#include <algorithm>
#include <charconv>
#include <set>

#include <fmt/format.h>

#include "stack/address.h"

namespace tapstack::bgp {
namespace {

constexpr size_t kMinOpenSize = 29;
constexpr size_t kMinUpdateSize = 23;
constexpr size_t kMinNotificationSize = 21;
constexpr size_t kRouteRefreshSize = 23;

// Capability codes (RFC 5492 §4 and the RFCs that define them).
constexpr uint8_t kCapabilityMultiprotocol = 1;  // RFC 4760 §8
constexpr uint8_t kCapabilityRouteRefresh = 2;   // RFC 2918 §2
constexpr uint8_t kCapabilityFourOctetAs = 65;   // RFC 6793 §3
constexpr uint8_t kParameterCapabilities = 2;    // RFC 5492 §4

constexpr uint16_t kAfiIpv4 = 1;
constexpr uint8_t kSafiUnicast = 1;

DecodeError error(ErrorCode code, uint8_t subcode, std::string reason,
                  std::vector<uint8_t> data = {}) {
  return DecodeError{Notification{static_cast<uint8_t>(code), subcode, std::move(data)},
                     std::move(reason)};
}

// A bounds-checked cursor over a message body: every read says whether the bytes were there.
class Reader {
 public:
  explicit Reader(ByteView data) : data_(data) {}
  size_t left() const { return data_.size() - position_; }
  bool at_end() const { return left() == 0; }
  bool u8(uint8_t& out) {
    if (left() < 1) return false;
    out = data_[position_++];
    return true;
  }
  bool u16(uint16_t& out) {
    if (left() < 2) return false;
    out = load_be16(&data_[position_]);
    position_ += 2;
    return true;
  }
  bool u32(uint32_t& out) {
    if (left() < 4) return false;
    out = load_be32(&data_[position_]);
    position_ += 4;
    return true;
  }
  bool bytes(size_t count, ByteView& out) {
    if (left() < count) return false;
    out = data_.subspan(position_, count);
    position_ += count;
    return true;
  }
  ByteView rest() {
    ByteView out = data_.subspan(position_);
    position_ = data_.size();
    return out;
  }

 private:
  ByteView data_;
  size_t position_ = 0;
};

void put8(std::vector<uint8_t>& out, uint8_t value) {
  out.push_back(value);
}
void put16(std::vector<uint8_t>& out, uint16_t value) {
  out.push_back(static_cast<uint8_t>(value >> 8));
  out.push_back(static_cast<uint8_t>(value));
}
void put32(std::vector<uint8_t>& out, uint32_t value) {
  put16(out, static_cast<uint16_t>(value >> 16));
  put16(out, static_cast<uint16_t>(value));
}
void put_bytes(std::vector<uint8_t>& out, ByteView bytes) {
  out.insert(out.end(), bytes.begin(), bytes.end());
}

uint32_t prefix_mask(uint8_t length) {
  return length == 0 ? 0 : ~uint32_t{0} << (32 - length);
}

// RFC 4271 §4.3: a list of (length, prefix) as Withdrawn Routes and NLRI carry it. nullopt
// when it is syntactically wrong (a length above 32, or bytes missing).
std::optional<std::vector<Prefix>> parse_prefixes(ByteView bytes) {
  std::vector<Prefix> prefixes;
  Reader reader(bytes);
  while (!reader.at_end()) {
    uint8_t length = 0;
    reader.u8(length);
    ByteView address;
    if (length > 32 || !reader.bytes((length + 7) / 8, address)) return std::nullopt;
    uint32_t value = 0;
    for (size_t i = 0; i < address.size(); ++i) value |= uint32_t{address[i]} << (24 - 8 * i);
    prefixes.push_back(Prefix{value & prefix_mask(length), length});
  }
  return prefixes;
}

void put_prefixes(std::vector<uint8_t>& out, const std::vector<Prefix>& prefixes) {
  for (const Prefix& prefix : prefixes) {
    put8(out, prefix.length);
    for (int i = 0; i < (prefix.length + 7) / 8; ++i) {
      put8(out, static_cast<uint8_t>(prefix.address >> (24 - 8 * i)));
    }
  }
}

// --- OPEN (RFC 4271 §4.2, §6.2; RFC 5492 §4) ---

// One Capabilities optional parameter's value; false when a capability is malformed.
bool parse_capabilities(ByteView bytes, Capabilities& capabilities) {
  Reader reader(bytes);
  while (!reader.at_end()) {
    uint8_t code = 0;
    uint8_t length = 0;
    ByteView value;
    if (!reader.u8(code) || !reader.u8(length) || !reader.bytes(length, value)) return false;
    Reader field(value);
    if (code == kCapabilityFourOctetAs) {
      uint32_t as = 0;
      if (length != 4 || !field.u32(as)) return false;
      capabilities.four_octet_as = as;
    } else if (code == kCapabilityRouteRefresh) {
      if (length != 0) return false;
      capabilities.route_refresh = true;
    } else if (code == kCapabilityMultiprotocol && length == 4 &&
               load_be16(value.data()) == kAfiIpv4 && value[3] == kSafiUnicast) {
      capabilities.ipv4_unicast = true;
    } else {
      if (code == kCapabilityMultiprotocol && length != 4) return false;
      capabilities.unknown.push_back({code, std::vector<uint8_t>(value.begin(), value.end())});
    }
  }
  return true;
}

Decoded decode_open(ByteView body) {
  Reader reader(body);
  Open open;
  uint8_t parameters_length = 0;
  reader.u8(open.version);
  reader.u16(open.my_as);
  reader.u16(open.hold_time);
  reader.u32(open.bgp_identifier);
  reader.u8(parameters_length);
  if (open.version != kVersion) {
    return error(ErrorCode::OpenMessage, open_error::kUnsupportedVersionNumber,
                 fmt::format("version {}, only 4 is spoken", open.version), {0, kVersion});
  }
  if (parameters_length != reader.left()) {
    return error(ErrorCode::OpenMessage, open_error::kUnspecific,
                 fmt::format("optional parameters length {} but {} bytes follow", parameters_length,
                             reader.left()));
  }
  if (open.hold_time == 1 || open.hold_time == 2) {
    return error(ErrorCode::OpenMessage, open_error::kUnacceptableHoldTime,
                 fmt::format("hold time {} s (0 or at least 3 allowed)", open.hold_time));
  }
  if (open.bgp_identifier == 0) {
    return error(ErrorCode::OpenMessage, open_error::kBadBgpIdentifier, "BGP identifier 0.0.0.0");
  }
  while (!reader.at_end()) {
    uint8_t type = 0;
    uint8_t length = 0;
    ByteView value;
    if (!reader.u8(type) || !reader.u8(length) || !reader.bytes(length, value)) {
      return error(ErrorCode::OpenMessage, open_error::kUnspecific,
                   "optional parameter runs past the end");
    }
    if (type != kParameterCapabilities) {
      return error(ErrorCode::OpenMessage, open_error::kUnsupportedOptionalParameter,
                   fmt::format("optional parameter type {}", type));
    }
    if (!parse_capabilities(value, open.capabilities)) {
      return error(ErrorCode::OpenMessage, open_error::kUnspecific, "malformed capability");
    }
  }
  return Message{std::move(open)};
}

void encode_capability(std::vector<uint8_t>& out, uint8_t code, ByteView value) {
  put8(out, code);
  put8(out, static_cast<uint8_t>(value.size()));
  put_bytes(out, value);
}

void encode_open(std::vector<uint8_t>& out, const Open& open) {
  std::vector<uint8_t> capabilities;
  const Capabilities& c = open.capabilities;
  if (c.ipv4_unicast) {
    const uint8_t value[] = {0, kAfiIpv4, 0, kSafiUnicast};
    encode_capability(capabilities, kCapabilityMultiprotocol, value);
  }
  if (c.route_refresh) encode_capability(capabilities, kCapabilityRouteRefresh, {});
  if (c.four_octet_as) {
    uint8_t value[4];
    store_be32(value, *c.four_octet_as);
    encode_capability(capabilities, kCapabilityFourOctetAs, value);
  }
  for (const auto& unknown : c.unknown)
    encode_capability(capabilities, unknown.code, unknown.value);
  put8(out, open.version);
  put16(out, open.my_as);
  put16(out, open.hold_time);
  put32(out, open.bgp_identifier);
  if (capabilities.empty()) {
    put8(out, 0);
    return;
  }
  put8(out, static_cast<uint8_t>(capabilities.size() + 2));
  put8(out, kParameterCapabilities);
  put8(out, static_cast<uint8_t>(capabilities.size()));
  put_bytes(out, capabilities);
}

// --- UPDATE (RFC 4271 §4.3, §6.3; RFC 7606 §3, §7) ---

// Reads the path attributes of one UPDATE into update, applying RFC 7606's three approaches.
class AttributeParser {
 public:
  AttributeParser(const CodecOptions& options, Update& update) : options_(options), u_(update) {}

  // nullopt, or the error that resets the session.
  std::optional<DecodeError> parse(ByteView attributes);
  // RFC 6793 §4.2.3: AS_PATH and AS4_PATH from a 2-octet speaker made one path.
  void merge_as4_path();
  // RFC 7606 §3(d): after the NLRI is known, a route without ORIGIN, AS_PATH or NEXT_HOP.
  void check_mandatory(bool classic_nlri);

 private:
  std::optional<DecodeError> attribute(uint8_t flags, uint8_t type, ByteView value, ByteView whole);
  std::optional<DecodeError> mp_reach(ByteView value, ByteView whole);
  std::optional<DecodeError> mp_unreach(ByteView value, ByteView whole);
  std::optional<std::vector<AsPathSegment>> as_path(ByteView value, size_t as_size) const;
  void withdraw(std::string why) {
    u_.treat_as_withdraw = true;
    u_.notes.push_back(fmt::format("treat-as-withdraw: {}", why));
  }
  void discard(std::string why) { u_.notes.push_back(fmt::format("discarded {}", why)); }

  const CodecOptions& options_;
  Update& u_;
  std::optional<uint32_t> mp_next_hop_;
  std::optional<std::vector<AsPathSegment>> as4_path_;
  std::set<uint8_t> seen_;  // attribute types met, malformed or not
};

std::optional<DecodeError> AttributeParser::parse(ByteView attributes) {
  Reader reader(attributes);
  while (!reader.at_end()) {
    const size_t start = attributes.size() - reader.left();
    uint8_t flags = 0;
    uint8_t type = 0;
    uint16_t length = 0;
    uint8_t short_length = 0;
    reader.u8(flags);
    const bool header_read =
        reader.u8(type) && ((flags & attribute_flag::kExtendedLength)
                                ? reader.u16(length)
                                : (reader.u8(short_length) && ((length = short_length), true)));
    ByteView value;
    // RFC 7606 §4: the Total Attribute Length still locates the NLRI, so its routes withdraw.
    if (!header_read) {
      withdraw("an attribute header is cut short by the end of the path attributes");
      break;
    }
    if (!reader.bytes(length, value)) {
      withdraw(fmt::format("attribute {} (length {}) overruns the path attributes", type, length));
      break;
    }
    const ByteView whole = attributes.subspan(start, attributes.size() - reader.left() - start);
    if (!seen_.insert(type).second) {
      // RFC 7606 §3(g): a repeated MP_(UN)REACH_NLRI resets; any other repeat is discarded.
      if (type == attribute::kMpReachNlri || type == attribute::kMpUnreachNlri) {
        return error(ErrorCode::UpdateMessage, update_error::kMalformedAttributeList,
                     fmt::format("attribute {} repeated", type));
      }
      discard(fmt::format("repeated attribute {}", type));
      continue;
    }
    if (auto failed = attribute(flags, type, value, whole)) return failed;
  }
  return std::nullopt;
}

// RFC 4271 §6.3: a next hop must be a host's address: not 0.0.0.0, broadcast or multicast.
bool is_host(uint32_t address) {
  return address != 0 && address != 0xffffffff && (address >> 28) != 0xe;
}

// The Optional and Transitive bits each known attribute must carry (RFC 4271 §5, RFC 1997).
std::optional<uint8_t> expected_flags(uint8_t type) {
  using namespace attribute_flag;
  switch (type) {
    case attribute::kOrigin:
    case attribute::kAsPath:
    case attribute::kNextHop:
    case attribute::kLocalPref:
    case attribute::kAtomicAggregate:
      return kTransitive;
    case attribute::kMultiExitDisc:
    case attribute::kMpReachNlri:
    case attribute::kMpUnreachNlri:
      return kOptional;
    case attribute::kAggregator:
    case attribute::kCommunities:
    case attribute::kAs4Path:
      return kOptional | kTransitive;
    default:
      return std::nullopt;
  }
}

std::optional<DecodeError> AttributeParser::attribute(uint8_t flags, uint8_t type, ByteView value,
                                                      ByteView whole) {
  using namespace attribute_flag;
  const auto expected = expected_flags(type);
  if (!expected) {
    // RFC 4271 §6.3: an unknown well-known attribute resets; an unknown optional transitive one
    // is passed on with Partial set (§5); an unknown optional non-transitive one is ignored.
    if (!(flags & kOptional)) {
      return error(ErrorCode::UpdateMessage, update_error::kUnrecognizedWellKnownAttribute,
                   fmt::format("unrecognized well-known attribute {}", type),
                   std::vector<uint8_t>(whole.begin(), whole.end()));
    }
    if (flags & kTransitive) {
      u_.attributes.transitive.push_back(
          {static_cast<uint8_t>((flags | kPartial) & ~kExtendedLength), type,
           std::vector<uint8_t>(value.begin(), value.end())});
    }
    return std::nullopt;
  }
  if ((flags & (kOptional | kTransitive)) != *expected) {
    // RFC 7606 §3(c): treat-as-withdraw; the MP attributes carry the NLRI, so they reset.
    if (type == attribute::kMpReachNlri || type == attribute::kMpUnreachNlri) {
      return error(ErrorCode::UpdateMessage, update_error::kAttributeFlagsError,
                   fmt::format("attribute {} with flags {:#04x}", type, flags),
                   std::vector<uint8_t>(whole.begin(), whole.end()));
    }
    if (type == attribute::kAs4Path) {
      discard(fmt::format("AS4_PATH with flags {:#04x}", flags));
    } else {
      withdraw(fmt::format("attribute {} with flags {:#04x}", type, flags));
    }
    return std::nullopt;
  }
  Reader reader(value);
  switch (type) {
    case attribute::kOrigin: {  // RFC 7606 §7.1
      uint8_t origin = 0;
      if (value.size() != 1 || !reader.u8(origin) || origin > 2) {
        withdraw("malformed ORIGIN");
      } else {
        u_.attributes.origin = static_cast<Origin>(origin);
      }
      return std::nullopt;
    }
    case attribute::kAsPath:  // RFC 7606 §7.2
      u_.attributes.as_path = as_path(value, options_.four_octet_as ? 4 : 2);
      if (!u_.attributes.as_path) withdraw("malformed AS_PATH");
      return std::nullopt;
    case attribute::kAs4Path:  // RFC 6793 §4.1, §4.2.3, §6: never a reason to withdraw
      if (options_.four_octet_as) {
        discard("AS4_PATH from a 4-octet speaker");
      } else if (!(as4_path_ = as_path(value, 4))) {
        discard("malformed AS4_PATH");
      }
      return std::nullopt;
    case attribute::kNextHop: {  // RFC 7606 §7.3; RFC 4271 §6.3 on its semantics
      uint32_t next_hop = 0;
      if (value.size() != 4 || !reader.u32(next_hop)) {
        withdraw("NEXT_HOP of length other than 4");
      } else if (!is_host(next_hop)) {
        withdraw(fmt::format("NEXT_HOP {} is not a host", Ipv4Address{next_hop}));
      } else {
        u_.attributes.next_hop = next_hop;
      }
      return std::nullopt;
    }
    case attribute::kMultiExitDisc: {  // RFC 7606 §7.4
      uint32_t med = 0;
      if (value.size() != 4 || !reader.u32(med)) {
        withdraw("MULTI_EXIT_DISC of length other than 4");
      } else {
        u_.attributes.multi_exit_disc = med;
      }
      return std::nullopt;
    }
    case attribute::kLocalPref: {  // RFC 7606 §7.5
      uint32_t local_pref = 0;
      if (options_.external) {
        discard("LOCAL_PREF from an external peer");
      } else if (value.size() != 4 || !reader.u32(local_pref)) {
        withdraw("LOCAL_PREF of length other than 4");
      } else {
        u_.attributes.local_pref = local_pref;
      }
      return std::nullopt;
    }
    case attribute::kAtomicAggregate:  // RFC 7606 §7.6
    case attribute::kAggregator: {     // RFC 7606 §7.7
      const size_t length = type == attribute::kAtomicAggregate ? 0
                            : options_.four_octet_as            ? 8
                                                                : 6;
      if (value.size() != length) {
        discard(fmt::format("attribute {} of length {}", type, value.size()));
      } else {
        u_.attributes.transitive.push_back({static_cast<uint8_t>(flags & ~kExtendedLength), type,
                                            std::vector<uint8_t>(value.begin(), value.end())});
      }
      return std::nullopt;
    }
    case attribute::kCommunities: {  // RFC 7606 §7.8
      if (value.empty() || value.size() % 4 != 0) {
        withdraw("COMMUNITIES of length not a non-zero multiple of 4");
        return std::nullopt;
      }
      std::vector<uint32_t> communities;
      uint32_t community = 0;
      while (reader.u32(community)) communities.push_back(community);
      u_.attributes.communities = std::move(communities);
      return std::nullopt;
    }
    case attribute::kMpReachNlri:
      return mp_reach(value, whole);
    case attribute::kMpUnreachNlri:
      return mp_unreach(value, whole);
  }
  return std::nullopt;
}

// RFC 4271 §4.3 path segments of as_size-octet ASNs; nullopt when malformed as RFC 7606
// §7.2 defines it.
std::optional<std::vector<AsPathSegment>> AttributeParser::as_path(ByteView value,
                                                                   size_t as_size) const {
  std::vector<AsPathSegment> path;
  Reader reader(value);
  while (!reader.at_end()) {
    uint8_t type = 0;
    uint8_t count = 0;
    ByteView asns;
    if (!reader.u8(type) || !reader.u8(count)) return std::nullopt;
    if (type != AsPathSegment::AsSet && type != AsPathSegment::AsSequence) return std::nullopt;
    if (count == 0 || !reader.bytes(count * as_size, asns)) return std::nullopt;
    AsPathSegment segment{static_cast<AsPathSegment::Type>(type), {}};
    for (size_t i = 0; i < asns.size(); i += as_size) {
      segment.asns.push_back(as_size == 4 ? load_be32(&asns[i]) : load_be16(&asns[i]));
    }
    path.push_back(std::move(segment));
  }
  return path;
}

// RFC 6793 §4.2.3: an AS_SET counts as one AS.
size_t path_length(const std::vector<AsPathSegment>& path) {
  size_t length = 0;
  for (const AsPathSegment& segment : path) {
    length += segment.type == AsPathSegment::AsSet ? 1 : segment.asns.size();
  }
  return length;
}

void AttributeParser::merge_as4_path() {
  if (!as4_path_ || !u_.attributes.as_path) return;
  std::vector<AsPathSegment>& path = *u_.attributes.as_path;
  // §4.2.3: an AGGREGATOR with a real AS comes from a 2-octet speaker that aggregated after
  // the AS4_PATH was made: the AS4_PATH is stale.
  for (const RawAttribute& raw : u_.attributes.transitive) {
    if (raw.type == attribute::kAggregator && load_be16(raw.value.data()) != kAsTrans) {
      return discard("AS4_PATH older than an AGGREGATOR");
    }
  }
  const size_t length = path_length(path);
  const size_t as4_length = path_length(*as4_path_);
  if (length < as4_length) return discard("AS4_PATH longer than AS_PATH");
  // The leading length - as4_length ASes of AS_PATH, then AS4_PATH.
  std::vector<AsPathSegment> merged;
  size_t keep = length - as4_length;
  for (const AsPathSegment& segment : path) {
    if (keep == 0) break;
    if (segment.type == AsPathSegment::AsSet) {
      merged.push_back(segment);
      --keep;
      continue;
    }
    const size_t take = std::min(keep, segment.asns.size());
    merged.push_back(
        {AsPathSegment::AsSequence,
         {segment.asns.begin(), segment.asns.begin() + static_cast<std::ptrdiff_t>(take)}});
    keep -= take;
  }
  merged.insert(merged.end(), as4_path_->begin(), as4_path_->end());
  path = std::move(merged);
}

// RFC 4760 §3; RFC 7606 §7.11: a malformed one cannot be withdrawn from, so it resets.
std::optional<DecodeError> AttributeParser::mp_reach(ByteView value, ByteView whole) {
  Reader reader(value);
  uint16_t afi = 0;
  uint8_t safi = 0;
  uint8_t next_hop_length = 0;
  uint8_t reserved = 0;
  ByteView next_hop;
  const auto malformed = [&](std::string why) {
    return error(ErrorCode::UpdateMessage, update_error::kOptionalAttributeError,
                 fmt::format("MP_REACH_NLRI: {}", why),
                 std::vector<uint8_t>(whole.begin(), whole.end()));
  };
  if (!reader.u16(afi) || !reader.u8(safi) || !reader.u8(next_hop_length) ||
      !reader.bytes(next_hop_length, next_hop) || !reader.u8(reserved)) {
    return malformed("cut short");
  }
  if (afi != kAfiIpv4 || safi != kSafiUnicast) {
    discard(fmt::format("MP_REACH_NLRI for AFI {} SAFI {}", afi, safi));
    return std::nullopt;
  }
  if (next_hop_length != 4) return malformed("IPv4 next hop not 4 bytes");
  auto prefixes = parse_prefixes(reader.rest());
  if (!prefixes) return malformed("bad NLRI");
  mp_next_hop_ = load_be32(next_hop.data());
  if (!is_host(*mp_next_hop_)) {
    withdraw(fmt::format("MP_REACH_NLRI next hop {} is not a host", Ipv4Address{*mp_next_hop_}));
  }
  u_.nlri.insert(u_.nlri.end(), prefixes->begin(), prefixes->end());
  return std::nullopt;
}

std::optional<DecodeError> AttributeParser::mp_unreach(ByteView value, ByteView whole) {
  Reader reader(value);
  uint16_t afi = 0;
  uint8_t safi = 0;
  if (!reader.u16(afi) || !reader.u8(safi)) {
    return error(ErrorCode::UpdateMessage, update_error::kOptionalAttributeError,
                 "MP_UNREACH_NLRI cut short", std::vector<uint8_t>(whole.begin(), whole.end()));
  }
  if (afi != kAfiIpv4 || safi != kSafiUnicast) return std::nullopt;
  auto prefixes = parse_prefixes(reader.rest());
  if (!prefixes) {
    return error(ErrorCode::UpdateMessage, update_error::kOptionalAttributeError,
                 "MP_UNREACH_NLRI: bad withdrawn routes",
                 std::vector<uint8_t>(whole.begin(), whole.end()));
  }
  u_.withdrawn.insert(u_.withdrawn.end(), prefixes->begin(), prefixes->end());
  return std::nullopt;
}

void AttributeParser::check_mandatory(bool classic_nlri) {
  if (u_.nlri.empty()) return;
  if (!u_.attributes.next_hop && mp_next_hop_) u_.attributes.next_hop = mp_next_hop_;
  const PathAttributes& a = u_.attributes;
  // RFC 7606 §3(d) replaces RFC 4271's Missing Well-known Attribute (3/3) reset.
  // One that was there but malformed has been withdrawn already.
  if (!seen_.contains(attribute::kOrigin)) withdraw("ORIGIN missing");
  if (!seen_.contains(attribute::kAsPath)) withdraw("AS_PATH missing");
  if (!a.next_hop && classic_nlri && !seen_.contains(attribute::kNextHop)) {
    withdraw("NEXT_HOP missing");
  }
}

Decoded decode_update(ByteView body, const CodecOptions& options) {
  Reader reader(body);
  uint16_t withdrawn_length = 0;
  uint16_t attributes_length = 0;
  ByteView withdrawn_bytes;
  ByteView attribute_bytes;
  reader.u16(withdrawn_length);
  if (!reader.bytes(withdrawn_length, withdrawn_bytes) || !reader.u16(attributes_length) ||
      !reader.bytes(attributes_length, attribute_bytes)) {
    return error(ErrorCode::UpdateMessage, update_error::kMalformedAttributeList,
                 "withdrawn routes or path attribute length runs past the message");
  }
  Update update;
  auto withdrawn = parse_prefixes(withdrawn_bytes);
  auto nlri = parse_prefixes(reader.rest());
  // RFC 7606 §5.3: routes that cannot be parsed cannot be withdrawn; reset.
  if (!withdrawn || !nlri) {
    return error(ErrorCode::UpdateMessage, update_error::kInvalidNetworkField,
                 withdrawn ? "malformed NLRI" : "malformed withdrawn routes");
  }
  update.withdrawn = std::move(*withdrawn);
  update.nlri = std::move(*nlri);
  const bool classic_nlri = !update.nlri.empty();
  AttributeParser parser(options, update);
  if (auto failed = parser.parse(attribute_bytes)) return *failed;
  parser.merge_as4_path();
  parser.check_mandatory(classic_nlri);
  return Message{std::move(update)};
}

void put_attribute(std::vector<uint8_t>& out, uint8_t flags, uint8_t type, ByteView value) {
  const bool extended = value.size() > 255;
  put8(out, static_cast<uint8_t>((flags & ~attribute_flag::kExtendedLength) |
                                 (extended ? attribute_flag::kExtendedLength : 0)));
  put8(out, type);
  if (extended) {
    put16(out, static_cast<uint16_t>(value.size()));
  } else {
    put8(out, static_cast<uint8_t>(value.size()));
  }
  put_bytes(out, value);
}

// RFC 4271 §4.3; with 2-octet ASNs, a larger AS becomes AS_TRANS (RFC 6793 §4.2.2).
std::vector<uint8_t> encode_as_path(const std::vector<AsPathSegment>& path, bool four_octet_as) {
  std::vector<uint8_t> out;
  for (const AsPathSegment& segment : path) {
    for (size_t begin = 0; begin < segment.asns.size(); begin += 255) {
      const size_t count = std::min<size_t>(255, segment.asns.size() - begin);
      put8(out, segment.type);
      put8(out, static_cast<uint8_t>(count));
      for (size_t i = begin; i < begin + count; ++i) {
        const uint32_t as = segment.asns[i];
        if (four_octet_as) {
          put32(out, as);
        } else {
          put16(out, as > 0xffff ? kAsTrans : static_cast<uint16_t>(as));
        }
      }
    }
  }
  return out;
}

void encode_update(std::vector<uint8_t>& out, const Update& update, const CodecOptions& options) {
  using namespace attribute_flag;
  std::vector<uint8_t> withdrawn;
  put_prefixes(withdrawn, update.withdrawn);
  std::vector<uint8_t> attributes;
  const PathAttributes& a = update.attributes;
  uint8_t scratch[4];
  if (a.origin) {
    const uint8_t origin = static_cast<uint8_t>(*a.origin);
    put_attribute(attributes, kTransitive, attribute::kOrigin, ByteView(&origin, 1));
  }
  if (a.as_path) {
    put_attribute(attributes, kTransitive, attribute::kAsPath,
                  encode_as_path(*a.as_path, options.four_octet_as));
  }
  if (a.next_hop) {
    store_be32(scratch, *a.next_hop);
    put_attribute(attributes, kTransitive, attribute::kNextHop, scratch);
  }
  if (a.multi_exit_disc) {
    store_be32(scratch, *a.multi_exit_disc);
    put_attribute(attributes, kOptional, attribute::kMultiExitDisc, scratch);
  }
  if (a.local_pref) {
    store_be32(scratch, *a.local_pref);
    put_attribute(attributes, kTransitive, attribute::kLocalPref, scratch);
  }
  if (a.communities) {
    std::vector<uint8_t> value;
    for (const uint32_t community : *a.communities) put32(value, community);
    put_attribute(attributes, kOptional | kTransitive, attribute::kCommunities, value);
  }
  // RFC 6793 §4.2.2: to a 2-octet speaker, the real path as well when AS_TRANS stands in it.
  const auto large = [](const AsPathSegment& segment) {
    return std::any_of(segment.asns.begin(), segment.asns.end(),
                       [](uint32_t as) { return as > 0xffff; });
  };
  if (a.as_path && !options.four_octet_as &&
      std::any_of(a.as_path->begin(), a.as_path->end(), large)) {
    put_attribute(attributes, kOptional | kTransitive, attribute::kAs4Path,
                  encode_as_path(*a.as_path, true));
  }
  for (const RawAttribute& raw : a.transitive)
    put_attribute(attributes, raw.flags, raw.type, raw.value);
  put16(out, static_cast<uint16_t>(withdrawn.size()));
  put_bytes(out, withdrawn);
  put16(out, static_cast<uint16_t>(attributes.size()));
  put_bytes(out, attributes);
  put_prefixes(out, update.nlri);
}

std::string_view error_code_name(uint8_t code) {
  switch (code) {
    case 1:
      return "Message Header Error";
    case 2:
      return "OPEN Message Error";
    case 3:
      return "UPDATE Message Error";
    case 4:
      return "Hold Timer Expired";
    case 5:
      return "Finite State Machine Error";
    case 6:
      return "Cease";
  }
  return "unknown error";
}

std::string_view subcode_name(uint8_t code, uint8_t subcode) {
  static constexpr std::string_view kHeader[] = {"", "Connection Not Synchronized",
                                                 "Bad Message Length", "Bad Message Type"};
  static constexpr std::string_view kOpen[] = {"Unspecific",
                                               "Unsupported Version Number",
                                               "Bad Peer AS",
                                               "Bad BGP Identifier",
                                               "Unsupported Optional Parameter",
                                               "",
                                               "Unacceptable Hold Time",
                                               "Unsupported Capability"};
  static constexpr std::string_view kUpdate[] = {"",
                                                 "Malformed Attribute List",
                                                 "Unrecognized Well-known Attribute",
                                                 "Missing Well-known Attribute",
                                                 "Attribute Flags Error",
                                                 "Attribute Length Error",
                                                 "Invalid ORIGIN Attribute",
                                                 "",
                                                 "Invalid NEXT_HOP Attribute",
                                                 "Optional Attribute Error",
                                                 "Invalid Network Field",
                                                 "Malformed AS_PATH"};
  static constexpr std::string_view kCease[] = {"",
                                                "Maximum Number of Prefixes Reached",
                                                "Administrative Shutdown",
                                                "Peer De-configured",
                                                "Administrative Reset",
                                                "Connection Rejected",
                                                "Other Configuration Change",
                                                "Connection Collision Resolution",
                                                "Out of Resources"};
  const auto pick = [&](auto& names) {
    return subcode < std::size(names) ? names[subcode] : std::string_view();
  };
  switch (code) {
    case 1:
      return pick(kHeader);
    case 2:
      return pick(kOpen);
    case 3:
      return pick(kUpdate);
    case 6:
      return pick(kCease);
  }
  return {};
}

}  // namespace

std::string Notification::describe() const {
  const std::string_view sub = subcode_name(code, subcode);
  return fmt::format("{}{}{} ({}/{})", error_code_name(code), sub.empty() ? "" : " / ", sub, code,
                     subcode);
}

std::optional<Prefix> Prefix::parse(std::string_view text) {
  const size_t slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  const auto address = Ipv4Address::parse(text.substr(0, slash));
  const std::string_view length_text = text.substr(slash + 1);
  unsigned length = 0;
  const auto [end, failed] =
      std::from_chars(length_text.data(), length_text.data() + length_text.size(), length);
  if (!address || length_text.empty() || failed != std::errc{} ||
      end != length_text.data() + length_text.size() || length > 32) {
    return std::nullopt;
  }
  const uint8_t bits = static_cast<uint8_t>(length);
  if ((address->value & ~prefix_mask(bits)) != 0) return std::nullopt;  // host bits set
  return Prefix{address->value, bits};
}

std::string Prefix::to_string() const {
  return fmt::format("{}/{}", Ipv4Address{address}, length);
}

Open Open::make(uint32_t as, uint16_t hold_time, uint32_t bgp_identifier) {
  Open open;
  open.my_as = as > 0xffff ? kAsTrans : static_cast<uint16_t>(as);
  open.hold_time = hold_time;
  open.bgp_identifier = bgp_identifier;
  open.capabilities.four_octet_as = as;
  open.capabilities.ipv4_unicast = true;
  open.capabilities.route_refresh = true;
  return open;
}

// RFC 4271 §6.1: marker, then length, then type, then the length each type needs.
std::variant<std::nullopt_t, size_t, DecodeError> check_header(ByteView buffer) {
  if (buffer.size() < kHeaderSize) return std::nullopt;
  if (!std::all_of(buffer.begin(), buffer.begin() + 16, [](uint8_t b) { return b == 0xff; })) {
    return error(ErrorCode::MessageHeader, header_error::kConnectionNotSynchronized,
                 "marker is not all ones");
  }
  const uint16_t length = load_be16(&buffer[16]);
  const uint8_t type = buffer[18];
  const std::vector<uint8_t> length_field(buffer.begin() + 16, buffer.begin() + 18);
  const auto bad_length = [&] {
    return error(ErrorCode::MessageHeader, header_error::kBadMessageLength,
                 fmt::format("length {} for message type {}", length, type), length_field);
  };
  if (length < kHeaderSize || length > kMaxMessageSize) return bad_length();
  switch (static_cast<MessageType>(type)) {
    case MessageType::Open:
      if (length < kMinOpenSize) return bad_length();
      break;
    case MessageType::Update:
      if (length < kMinUpdateSize) return bad_length();
      break;
    case MessageType::Notification:
      if (length < kMinNotificationSize) return bad_length();
      break;
    case MessageType::Keepalive:
      if (length != kHeaderSize) return bad_length();
      break;
    case MessageType::RouteRefresh:
      if (length != kRouteRefreshSize) return bad_length();
      break;
    default:
      return error(ErrorCode::MessageHeader, header_error::kBadMessageType,
                   fmt::format("message type {}", type), {type});
  }
  return size_t{length};
}

Decoded decode(ByteView message, const CodecOptions& options) {
  auto header = check_header(message);
  if (auto* failed = std::get_if<DecodeError>(&header)) return std::move(*failed);
  const size_t* length = std::get_if<size_t>(&header);
  if (!length || *length != message.size()) {
    return error(ErrorCode::MessageHeader, header_error::kBadMessageLength,
                 fmt::format("{} bytes given for one message", message.size()));
  }
  const ByteView body = message.subspan(kHeaderSize);
  switch (static_cast<MessageType>(message[18])) {
    case MessageType::Open:
      return decode_open(body);
    case MessageType::Update:
      return decode_update(body, options);
    case MessageType::Notification:
      return Message{
          Notification{body[0], body[1], std::vector<uint8_t>(body.begin() + 2, body.end())}};
    case MessageType::Keepalive:
      return Message{Keepalive{}};
    case MessageType::RouteRefresh:
      return Message{RouteRefresh{load_be16(&body[0]), body[3]}};
  }
  return error(ErrorCode::MessageHeader, header_error::kBadMessageType, "message type");
}

std::vector<uint8_t> encode(const Message& message, const CodecOptions& options) {
  std::vector<uint8_t> out(16, 0xff);
  put16(out, 0);  // the length, filled in below
  put8(out, static_cast<uint8_t>(message.index() + 1));
  if (const auto* open = std::get_if<Open>(&message)) {
    encode_open(out, *open);
  } else if (const auto* update = std::get_if<Update>(&message)) {
    encode_update(out, *update, options);
  } else if (const auto* notification = std::get_if<Notification>(&message)) {
    put8(out, notification->code);
    put8(out, notification->subcode);
    const size_t room = kMaxMessageSize - kMinNotificationSize;
    put_bytes(out, ByteView(notification->data).first(std::min(room, notification->data.size())));
  } else if (const auto* refresh = std::get_if<RouteRefresh>(&message)) {
    put16(out, refresh->afi);
    put8(out, 0);
    put8(out, refresh->safi);
  }
  store_be16(&out[16], static_cast<uint16_t>(out.size()));
  return out;
}

std::string as_path_text(const std::vector<AsPathSegment>& path) {
  std::string text;
  for (const AsPathSegment& segment : path) {
    if (!text.empty()) text += ' ';
    const std::string asns = fmt::format("{}", fmt::join(segment.asns, " "));
    text += segment.type == AsPathSegment::AsSet ? fmt::format("{{{}}}", asns) : asns;
  }
  return text;
}

std::string community_text(uint32_t community) {
  return fmt::format("{}:{}", community >> 16, community & 0xffff);
}

std::string_view origin_name(Origin origin) {
  switch (origin) {
    case Origin::Igp:
      return "igp";
    case Origin::Egp:
      return "egp";
    case Origin::Incomplete:
      return "incomplete";
  }
  return "?";
}

namespace {

std::vector<std::string> communities_text(const PathAttributes& attributes) {
  std::vector<std::string> texts;
  for (const uint32_t c : attributes.communities.value_or(std::vector<uint32_t>{})) {
    texts.push_back(community_text(c));
  }
  return texts;
}

std::string as_path_json(const std::vector<AsPathSegment>& path) {
  std::vector<std::string> parts;
  for (const AsPathSegment& segment : path) {
    if (segment.type == AsPathSegment::AsSet) {
      parts.push_back(fmt::format("[{}]", fmt::join(segment.asns, ", ")));
    } else {
      for (const uint32_t as : segment.asns) parts.push_back(fmt::format("{}", as));
    }
  }
  return fmt::format("[{}]", fmt::join(parts, ", "));
}

}  // namespace

std::string route_text(const Prefix& prefix, const PathAttributes& a) {
  std::string line = fmt::format("route {} next-hop {} as-path {}", prefix.to_string(),
                                 Ipv4Address{a.next_hop.value_or(0)},
                                 a.as_path ? as_path_text(*a.as_path) : std::string());
  if (a.as_path && a.as_path->empty()) line += "(empty)";
  const auto communities = communities_text(a);
  if (!communities.empty()) line += fmt::format(" communities {}", fmt::join(communities, " "));
  if (a.origin) line += fmt::format(" origin {}", origin_name(*a.origin));
  if (a.multi_exit_disc) line += fmt::format(" med {}", *a.multi_exit_disc);
  if (a.local_pref) line += fmt::format(" local-pref {}", *a.local_pref);
  return line;
}

std::string route_json_members(const Prefix& prefix, const PathAttributes& a) {
  std::vector<std::string> communities;
  for (const std::string& c : communities_text(a)) communities.push_back(fmt::format("\"{}\"", c));
  std::string members = fmt::format(
      R"("prefix": "{}", "next_hop": "{}", "as_path": {}, "communities": [{}])", prefix.to_string(),
      Ipv4Address{a.next_hop.value_or(0)},
      as_path_json(a.as_path.value_or(std::vector<AsPathSegment>{})), fmt::join(communities, ", "));
  if (a.origin) members += fmt::format(R"(, "origin": "{}")", origin_name(*a.origin));
  if (a.multi_exit_disc) members += fmt::format(R"(, "med": {})", *a.multi_exit_disc);
  if (a.local_pref) members += fmt::format(R"(, "local_pref": {})", *a.local_pref);
  return members;
}

}  // namespace tapstack::bgp
