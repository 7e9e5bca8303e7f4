// BGP-4 messages: RFC 4271 §4 (header, OPEN, UPDATE, KEEPALIVE, NOTIFICATION), with
// capabilities (RFC 5492): 4-octet AS numbers (RFC 6793), multiprotocol IPv4 unicast
// (RFC 4760), route refresh (RFC 2918); communities (RFC 1997); and the revised error handling
// of RFC 7606 for UPDATE attributes. Pure: bytes in, values out, and back; no I/O.
//
// Reading order: RFC 4271 §4 (formats), §6 (errors), then RFC 7606 §3 and §7.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "stack/bytes.h"

namespace tapstack::bgp {

inline constexpr size_t kHeaderSize = 19;
inline constexpr size_t kMaxMessageSize = 4096;
inline constexpr uint8_t kVersion = 4;
inline constexpr uint16_t kBgpPort = 179;
// RFC 6793 §9: the 2-octet stand-in for a 4-octet AS number.
inline constexpr uint16_t kAsTrans = 23456;

enum class MessageType : uint8_t {
  Open = 1,
  Update = 2,
  Notification = 3,
  Keepalive = 4,
  RouteRefresh = 5,  // RFC 2918
};

// RFC 4271 §4.5: NOTIFICATION error codes; the subcodes follow.
enum class ErrorCode : uint8_t {
  MessageHeader = 1,
  OpenMessage = 2,
  UpdateMessage = 3,
  HoldTimerExpired = 4,
  FiniteStateMachine = 5,
  Cease = 6,
};

namespace header_error {  // RFC 4271 §6.1
inline constexpr uint8_t kConnectionNotSynchronized = 1;
inline constexpr uint8_t kBadMessageLength = 2;
inline constexpr uint8_t kBadMessageType = 3;
}  // namespace header_error

namespace open_error {  // RFC 4271 §6.2, RFC 5492 §5
inline constexpr uint8_t kUnspecific = 0;
inline constexpr uint8_t kUnsupportedVersionNumber = 1;
inline constexpr uint8_t kBadPeerAs = 2;
inline constexpr uint8_t kBadBgpIdentifier = 3;
inline constexpr uint8_t kUnsupportedOptionalParameter = 4;
inline constexpr uint8_t kUnacceptableHoldTime = 6;
}  // namespace open_error

namespace update_error {  // RFC 4271 §6.3
inline constexpr uint8_t kMalformedAttributeList = 1;
inline constexpr uint8_t kUnrecognizedWellKnownAttribute = 2;
inline constexpr uint8_t kMissingWellKnownAttribute = 3;
inline constexpr uint8_t kAttributeFlagsError = 4;
inline constexpr uint8_t kAttributeLengthError = 5;
inline constexpr uint8_t kInvalidOriginAttribute = 6;
inline constexpr uint8_t kInvalidNextHopAttribute = 8;
inline constexpr uint8_t kOptionalAttributeError = 9;
inline constexpr uint8_t kInvalidNetworkField = 10;
inline constexpr uint8_t kMalformedAsPath = 11;
}  // namespace update_error

namespace fsm_error {  // RFC 6608 §3
inline constexpr uint8_t kUnexpectedInOpenSent = 1;
inline constexpr uint8_t kUnexpectedInOpenConfirm = 2;
inline constexpr uint8_t kUnexpectedInEstablished = 3;
}  // namespace fsm_error

namespace cease {  // RFC 4486 §4
inline constexpr uint8_t kAdministrativeShutdown = 2;
}  // namespace cease

// Path attribute type codes (RFC 4271 §5, RFC 1997, RFC 4760, RFC 6793).
namespace attribute {
inline constexpr uint8_t kOrigin = 1;
inline constexpr uint8_t kAsPath = 2;
inline constexpr uint8_t kNextHop = 3;
inline constexpr uint8_t kMultiExitDisc = 4;
inline constexpr uint8_t kLocalPref = 5;
inline constexpr uint8_t kAtomicAggregate = 6;
inline constexpr uint8_t kAggregator = 7;
inline constexpr uint8_t kCommunities = 8;
inline constexpr uint8_t kMpReachNlri = 14;
inline constexpr uint8_t kMpUnreachNlri = 15;
inline constexpr uint8_t kAs4Path = 17;  // RFC 6793 §3
}  // namespace attribute

// RFC 4271 §4.3: the Attribute Flags octet.
namespace attribute_flag {
inline constexpr uint8_t kOptional = 0x80;
inline constexpr uint8_t kTransitive = 0x40;
inline constexpr uint8_t kPartial = 0x20;
inline constexpr uint8_t kExtendedLength = 0x10;
}  // namespace attribute_flag

struct Notification {
  uint8_t code = 0;
  uint8_t subcode = 0;
  std::vector<uint8_t> data;

  bool operator==(const Notification&) const = default;
  // "UPDATE Message Error / Malformed AS_PATH (3/11)"
  std::string describe() const;
};

// An IPv4 prefix as NLRI carries it (RFC 4271 §4.3): host bits are always zero here.
struct Prefix {
  uint32_t address = 0;
  uint8_t length = 0;

  auto operator<=>(const Prefix&) const = default;
  static std::optional<Prefix> parse(std::string_view text);  // "198.18.5.0/24"
  std::string to_string() const;
};

// RFC 5492: capabilities this speaker knows, and the rest kept as they came.
struct Capabilities {
  std::optional<uint32_t> four_octet_as;  // RFC 6793 §3: the speaker's AS number
  bool ipv4_unicast = false;              // RFC 4760 §8: AFI 1, SAFI 1
  bool route_refresh = false;             // RFC 2918 §2
  struct Unknown {
    uint8_t code = 0;
    std::vector<uint8_t> value;
    bool operator==(const Unknown&) const = default;
  };
  std::vector<Unknown> unknown;

  bool operator==(const Capabilities&) const = default;
};

// RFC 4271 §4.2
struct Open {
  uint8_t version = kVersion;
  uint16_t my_as = 0;  // AS_TRANS when the AS number does not fit (RFC 6793 §4.1)
  uint16_t hold_time = 0;
  uint32_t bgp_identifier = 0;
  Capabilities capabilities;

  bool operator==(const Open&) const = default;
  // The sender's AS: from the 4-octet AS capability when present, else My AS.
  uint32_t sender_as() const { return capabilities.four_octet_as.value_or(my_as); }
  // An OPEN for `as`, with AS_TRANS in My AS when it does not fit in 16 bits.
  static Open make(uint32_t as, uint16_t hold_time, uint32_t bgp_identifier);
};

enum class Origin : uint8_t { Igp = 0, Egp = 1, Incomplete = 2 };

// RFC 4271 §4.3 (AS_PATH), §5.1.2.
struct AsPathSegment {
  enum Type : uint8_t { AsSet = 1, AsSequence = 2 };
  Type type = AsSequence;
  std::vector<uint32_t> asns;
  bool operator==(const AsPathSegment&) const = default;
};

// An attribute this speaker does not interpret, kept to pass on (RFC 4271 §5).
struct RawAttribute {
  uint8_t flags = 0;
  uint8_t type = 0;
  std::vector<uint8_t> value;
  bool operator==(const RawAttribute&) const = default;
};

struct PathAttributes {
  std::optional<Origin> origin;
  std::optional<std::vector<AsPathSegment>> as_path;
  std::optional<uint32_t> next_hop;
  std::optional<uint32_t> multi_exit_disc;
  std::optional<uint32_t> local_pref;
  std::optional<std::vector<uint32_t>> communities;  // RFC 1997: AS << 16 | value
  // Optional transitive attributes not known here: passed on with the Partial bit set
  // (RFC 4271 §5); ATOMIC_AGGREGATE and AGGREGATOR are among them. (AS4_PATH is not: between
  // 2-octet speakers it is made from and merged into as_path, RFC 6793 §4.2.)
  std::vector<RawAttribute> transitive;

  bool operator==(const PathAttributes&) const = default;
};

// RFC 4271 §4.3. IPv4 unicast prefixes in MP_REACH_NLRI / MP_UNREACH_NLRI (RFC 4760) are
// folded into nlri and withdrawn on decode; encoding uses the classic fields only.
struct Update {
  std::vector<Prefix> withdrawn;
  PathAttributes attributes;
  std::vector<Prefix> nlri;

  // RFC 7606 §2: the attributes were malformed in a way that makes every prefix in nlri a
  // withdrawal ("treat-as-withdraw"); why, for the log.
  bool treat_as_withdraw = false;
  // RFC 7606 §2 "attribute discard": attributes dropped, with why, for the log.
  std::vector<std::string> notes;

  bool operator==(const Update&) const = default;
};

struct Keepalive {
  bool operator==(const Keepalive&) const = default;
};

// RFC 2918 §3
struct RouteRefresh {
  uint16_t afi = 1;
  uint8_t safi = 1;
  bool operator==(const RouteRefresh&) const = default;
};

using Message = std::variant<Open, Update, Notification, Keepalive, RouteRefresh>;

// What the two sides agreed on in their OPENs, which changes how UPDATEs are read.
struct CodecOptions {
  // Both sent the capability (RFC 6793 §4): AS_PATH carries 4-octet ASNs. Without it AS_PATH
  // has 2-octet ones, AS_TRANS for larger, and AS4_PATH the whole path (§4.2.2, §4.2.3).
  bool four_octet_as = false;
  bool external = true;  // eBGP: LOCAL_PREF is discarded (RFC 7606 §7.5)
};

// A message that cannot be accepted, and the NOTIFICATION that says why (RFC 4271 §6).
struct DecodeError {
  Notification notification;
  std::string reason;
};

using Decoded = std::variant<Message, DecodeError>;

// RFC 4271 §6.1: checks the header at the start of buffer. The whole message's length when
// the header is acceptable, nullopt while fewer than 19 bytes are there, or the error.
std::variant<std::nullopt_t, size_t, DecodeError> check_header(ByteView buffer);

// Decodes one whole message (header included, as check_header measured it). Never throws;
// anything malformed comes back as the DecodeError to answer with.
Decoded decode(ByteView message, const CodecOptions& options);

// Encodes a message with its header. An UPDATE must fit in 4096 bytes; the caller splits.
std::vector<uint8_t> encode(const Message& message, const CodecOptions& options);

// "65001 {65002 65003}": an AS_PATH as people write it.
std::string as_path_text(const std::vector<AsPathSegment>& path);
// "65001:100"
std::string community_text(uint32_t community);
// "igp", "egp", "incomplete"
std::string_view origin_name(Origin origin);
// A route for people, on one line:
// "route 198.18.5.0/24 next-hop 198.18.0.1 as-path 65001 communities 65001:7 origin igp",
// then " med N" and " local-pref N" when present; an empty AS_PATH is "as-path (empty)".
std::string route_text(const Prefix& prefix, const PathAttributes& attributes);
// The same as the members of a JSON object: "prefix": "198.18.5.0/24", "next_hop": "...",
// "as_path": [65001, [65002, 65003]] (sequences flat, sets nested), "communities": ["65001:7"],
// then "origin", "med" and "local_pref" when present.
std::string route_json_members(const Prefix& prefix, const PathAttributes& attributes);

}  // namespace tapstack::bgp
