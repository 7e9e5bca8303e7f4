// The BGP message codec: known byte strings, round trips, and malformed input answered with the
// NOTIFICATION RFC 4271 §6 names, or handled as RFC 7606 revises it for UPDATE attributes.
#include <doctest/doctest.h>

#include <fmt/format.h>

#include "bgp/message.h"
#include "tests/bgp/bgp_test_support.h"

namespace tapstack::bgp {
namespace {

using testing::hex;
using testing::ip;
using testing::message;
using testing::update_message;

const CodecOptions kFourOctet{.four_octet_as = true, .external = true};
const CodecOptions kTwoOctet{.four_octet_as = false, .external = true};

Message decoded_ok(const std::vector<uint8_t>& bytes, const CodecOptions& options = kFourOctet) {
  Decoded decoded = decode(bytes, options);
  if (auto* failed = std::get_if<DecodeError>(&decoded)) {
    FAIL("unexpected error: ", failed->reason, " ", failed->notification.describe());
  }
  return std::get<Message>(decoded);
}

Update update_ok(const std::vector<uint8_t>& bytes, const CodecOptions& options = kFourOctet) {
  Message m = decoded_ok(bytes, options);
  REQUIRE(std::holds_alternative<Update>(m));
  return std::get<Update>(m);
}

Notification rejected(const std::vector<uint8_t>& bytes, const CodecOptions& options = kFourOctet) {
  Decoded decoded = decode(bytes, options);
  REQUIRE_MESSAGE(std::holds_alternative<DecodeError>(decoded), "decoded without error");
  return std::get<DecodeError>(decoded).notification;
}

// ORIGIN IGP, AS_PATH (4-octet) SEQUENCE 65001, NEXT_HOP 198.18.0.2
const std::string kGoodAttributes = "40010100 4002060201 0000fde9 400304c6120002";

TEST_CASE("KEEPALIVE is the bare 19-byte header (RFC 4271 §4.4)") {
  const auto bytes = encode(Keepalive{}, kFourOctet);
  CHECK(bytes == hex(testing::kMarker + "0013 04"));
  CHECK(std::holds_alternative<Keepalive>(decoded_ok(bytes)));
}

TEST_CASE("OPEN with capabilities: known bytes (RFC 4271 §4.2, RFC 5492, 4760, 2918, 6793)") {
  const Open open = Open::make(65001, 90, ip(198, 18, 0, 2));
  const auto bytes = encode(open, kFourOctet);
  CHECK(bytes == hex(testing::kMarker +
                     "002d 01 04 fde9 005a c6120002 10 02 0e 010400010001 0200 410400 00fde9"));
  const Message back = decoded_ok(bytes);
  REQUIRE(std::holds_alternative<Open>(back));
  CHECK(std::get<Open>(back) == open);
  CHECK(std::get<Open>(back).sender_as() == 65001);
}

TEST_CASE("a 4-octet AS goes in the capability, AS_TRANS in My AS (RFC 6793 §4.1)") {
  const Open open = Open::make(4200000001, 180, ip(198, 18, 0, 2));
  CHECK(open.my_as == kAsTrans);
  const Message back = decoded_ok(encode(open, kFourOctet));
  CHECK(std::get<Open>(back).sender_as() == 4200000001u);
}

TEST_CASE("an OPEN without capabilities: the AS is My AS") {
  const Message m = decoded_ok(message(1, "04 fde9 00b4 c6120001 00"));
  const Open& open = std::get<Open>(m);
  CHECK(open.sender_as() == 65001);
  CHECK_FALSE(open.capabilities.four_octet_as);
  CHECK_FALSE(open.capabilities.ipv4_unicast);
}

TEST_CASE("unknown capabilities are kept; several capability parameters are merged") {
  const Message m =
      decoded_ok(message(1, "04 fde9 00b4 c6120001 0e 0204 4002 0078 0206 0104 0002 0001"));
  const Open& open = std::get<Open>(m);
  REQUIRE(open.capabilities.unknown.size() == 2);
  CHECK(open.capabilities.unknown[0].code == 0x40);  // graceful restart
  CHECK(open.capabilities.unknown[1].code == 1);     // IPv6 unicast: not ours, kept
  CHECK_FALSE(open.capabilities.ipv4_unicast);
}

TEST_CASE("UPDATE: known bytes and round trip (RFC 4271 §4.3)") {
  Update update;
  update.attributes.origin = Origin::Igp;
  update.attributes.as_path = std::vector<AsPathSegment>{{AsPathSegment::AsSequence, {65001}}};
  update.attributes.next_hop = ip(198, 18, 0, 2);
  update.nlri = {Prefix{ip(198, 18, 5, 0), 24}};
  const auto bytes = encode(update, kFourOctet);
  CHECK(bytes == update_message(kGoodAttributes, "18c61205"));
  CHECK(update_ok(bytes) == update);
}

TEST_CASE("UPDATE with every attribute this speaker knows survives a round trip") {
  Update update;
  update.withdrawn = {Prefix{ip(198, 19, 0, 0), 16}, Prefix{0, 0}, Prefix{ip(198, 18, 7, 1), 32}};
  PathAttributes& a = update.attributes;
  a.origin = Origin::Incomplete;
  a.as_path = std::vector<AsPathSegment>{{AsPathSegment::AsSequence, {65001, 4200000000}},
                                         {AsPathSegment::AsSet, {65010, 65011}}};
  a.next_hop = ip(198, 18, 0, 1);
  a.multi_exit_disc = 7;
  a.communities = std::vector<uint32_t>{65001u << 16 | 100, 0xffffff01};
  a.transitive = {RawAttribute{0xe0, 99, {1, 2, 3}}};
  update.nlri = {Prefix{ip(198, 18, 128, 0), 17}, Prefix{ip(198, 18, 9, 9), 32}};
  CHECK(update_ok(encode(update, kFourOctet)) == update);

  CodecOptions internal = kFourOctet;
  internal.external = false;
  a.local_pref = 200;
  CHECK(update_ok(encode(update, internal), internal) == update);
}

TEST_CASE("an attribute longer than 255 bytes uses the Extended Length bit") {
  Update update;
  update.attributes.origin = Origin::Igp;
  update.attributes.as_path = std::vector<AsPathSegment>{{AsPathSegment::AsSequence, {}}};
  for (uint32_t as = 1; as <= 300; ++as) update.attributes.as_path->front().asns.push_back(as);
  update.attributes.next_hop = ip(198, 18, 0, 2);
  update.nlri = {Prefix{ip(198, 18, 5, 0), 24}};
  const auto bytes = encode(update, kFourOctet);
  CHECK(bytes[23 + 4] == 0x50);  // AS_PATH's flags: transitive, extended length
  const Update back = update_ok(bytes);
  // 300 ASNs are two segments of at most 255 on the wire: the same path.
  REQUIRE(back.attributes.as_path->size() == 2);
  CHECK(back.attributes.as_path->at(0).asns.size() == 255);
  CHECK(back.attributes.as_path->at(1).asns.back() == 300);
}

TEST_CASE("to a 2-octet speaker: AS_TRANS in AS_PATH, the real path in AS4_PATH (RFC 6793)") {
  Update update;
  update.attributes.origin = Origin::Igp;
  update.attributes.as_path =
      std::vector<AsPathSegment>{{AsPathSegment::AsSequence, {4200000000, 65001}}};
  update.attributes.next_hop = ip(198, 18, 0, 2);
  update.nlri = {Prefix{ip(198, 18, 5, 0), 24}};
  const auto bytes = encode(update, kTwoOctet);
  // AS_PATH: SEQUENCE of 2 with AS_TRANS; AS4_PATH (17, optional transitive) with both.
  CHECK(bytes == update_message("40010100 400206 0202 5ba0 fde9 400304c6120002"
                                "c0110a 0202 fa56ea00 0000fde9",
                                "18c61205"));
  CHECK(update_ok(bytes, kTwoOctet) == update);  // merged back (§4.2.3)
  // Without a large AS there is no AS4_PATH.
  update.attributes.as_path->front().asns = {65002, 65001};
  CHECK(encode(update, kTwoOctet).size() == bytes.size() - 13);
}

TEST_CASE("AS4_PATH merge from a 2-octet speaker (RFC 6793 §4.2.3)") {
  const std::string head = "40010100 400304c6120002 ";
  // AS_PATH 65010 {65011 65012} 23456 65001; AS4_PATH 4200000000 65001: the leading two
  // "ASes" (a set counts as one) stay.
  const Update merged = update_ok(
      update_message(head + "400210 0201 fdf2 0102 fdf3 fdf4 0202 5ba0 fde9 c0110a 0202 fa56ea00 "
                            "0000fde9",
                     "18c61205"),
      kTwoOctet);
  CHECK(merged.attributes.as_path ==
        std::vector<AsPathSegment>{{AsPathSegment::AsSequence, {65010}},
                                   {AsPathSegment::AsSet, {65011, 65012}},
                                   {AsPathSegment::AsSequence, {4200000000, 65001}}});
  CHECK(merged.notes.empty());
  CHECK_FALSE(merged.treat_as_withdraw);

  // Longer than AS_PATH: ignored, with a note. Malformed: discarded, AS_PATH stands.
  const std::string as_path = "400206 0202 5ba0 fde9 ";
  for (const std::string& as4 :
       {std::string("c0110e 0203 fa56ea00 0000fde9 0000fdea"), std::string("c01106 0302 fa56ea00"),
        std::string("401106 0201 fa56ea00")}) {
    CAPTURE(as4);
    const Update kept = update_ok(update_message(head + as_path + as4, "18c61205"), kTwoOctet);
    CHECK(kept.attributes.as_path ==
          std::vector<AsPathSegment>{{AsPathSegment::AsSequence, {kAsTrans, 65001}}});
    CHECK_FALSE(kept.treat_as_withdraw);
    CHECK(kept.notes.size() == 1);
  }
  // Between 4-octet speakers an AS4_PATH is discarded (§4.1).
  const Update four =
      update_ok(update_message(head + "400206 0201 0000fde9 c01106 0201 fa56ea00", "18c61205"));
  CHECK(four.attributes.as_path ==
        std::vector<AsPathSegment>{{AsPathSegment::AsSequence, {65001}}});
  CHECK(four.notes == std::vector<std::string>{"discarded AS4_PATH from a 4-octet speaker"});
}

TEST_CASE("an unknown optional transitive attribute is carried on with Partial set (§5)") {
  const Update update =
      update_ok(update_message(kGoodAttributes + " c0 63 02 abcd 80 64 01 ee", "18c61205"));
  REQUIRE(update.attributes.transitive.size() == 1);  // type 100, non-transitive, dropped
  CHECK(update.attributes.transitive[0] == RawAttribute{0xe0, 0x63, {0xab, 0xcd}});
  const auto again = encode(update, kFourOctet);
  CHECK(update_ok(again).attributes.transitive == update.attributes.transitive);
}

TEST_CASE("MP_REACH_NLRI / MP_UNREACH_NLRI for IPv4 unicast are read as routes (RFC 4760)") {
  const Update reach = update_ok(
      update_message("40010100 4002060201 0000fde9 800e0d 0001 01 04 c6120001 00 18c61206", ""));
  CHECK(reach.nlri == std::vector<Prefix>{{ip(198, 18, 6, 0), 24}});
  CHECK(reach.attributes.next_hop == ip(198, 18, 0, 1));
  CHECK_FALSE(reach.treat_as_withdraw);
  // Its next hop is checked as NEXT_HOP's is (found by the fuzz target: 0.0.0.0 got through).
  const Update zero = update_ok(
      update_message("40010100 4002060201 0000fde9 800e0d 0001 01 04 00000000 00 18c61206", ""));
  CHECK(zero.treat_as_withdraw);
  const Update unreach = update_ok(update_message("800f07 0001 01 18c61206", ""));
  CHECK(unreach.withdrawn == std::vector<Prefix>{{ip(198, 18, 6, 0), 24}});
}

TEST_CASE("Prefix: parse and print") {
  CHECK(Prefix::parse("198.18.5.0/24") == Prefix{ip(198, 18, 5, 0), 24});
  CHECK(Prefix::parse("0.0.0.0/0") == Prefix{0, 0});
  CHECK_FALSE(Prefix::parse("198.18.5.1/24"));  // host bits
  CHECK_FALSE(Prefix::parse("198.18.5.0/33"));
  CHECK_FALSE(Prefix::parse("198.18.5.0"));
  CHECK_FALSE(Prefix::parse("198.18.5.0/"));
  CHECK(Prefix{ip(198, 18, 5, 0), 24}.to_string() == "198.18.5.0/24");
  CHECK(as_path_text({{AsPathSegment::AsSequence, {1, 2}}, {AsPathSegment::AsSet, {3, 4}}}) ==
        "1 2 {3 4}");
  CHECK(community_text(65001u << 16 | 7) == "65001:7");
}

// What tapstack bgp prints for a route: text, and the members of its --json line.
TEST_CASE("route_text and route_json_members: every attribute, an empty path, a set") {
  PathAttributes a;
  a.origin = Origin::Incomplete;
  a.as_path = {{AsPathSegment::AsSequence, {65001, 65002}}, {AsPathSegment::AsSet, {7, 8}}};
  a.next_hop = ip(198, 18, 0, 1);
  a.multi_exit_disc = 5;
  a.local_pref = 200;
  a.communities = {65001u << 16 | 7, 65001u << 16 | 8};
  const Prefix prefix{ip(198, 18, 5, 0), 24};
  CHECK(route_text(prefix, a) ==
        "route 198.18.5.0/24 next-hop 198.18.0.1 as-path 65001 65002 {7 8} communities 65001:7 "
        "65001:8 origin incomplete med 5 local-pref 200");
  CHECK(route_json_members(prefix, a) ==
        R"("prefix": "198.18.5.0/24", "next_hop": "198.18.0.1", "as_path": [65001, 65002, )"
        R"([7, 8]], "communities": ["65001:7", "65001:8"], "origin": "incomplete", "med": 5, )"
        R"("local_pref": 200)");

  PathAttributes internal;
  internal.origin = Origin::Igp;
  internal.as_path = std::vector<AsPathSegment>{};
  internal.next_hop = ip(198, 18, 0, 2);
  CHECK(route_text(prefix, internal) ==
        "route 198.18.5.0/24 next-hop 198.18.0.2 as-path (empty) origin igp");
  CHECK(route_json_members(prefix, internal) ==
        R"("prefix": "198.18.5.0/24", "next_hop": "198.18.0.2", "as_path": [], )"
        R"("communities": [], "origin": "igp")");
  CHECK(route_text(prefix, PathAttributes{}) == "route 198.18.5.0/24 next-hop 0.0.0.0 as-path ");
}

// --- RFC 4271 §6.1 and §6.2: header and OPEN errors, each answered with a NOTIFICATION. ---

struct Malformed {
  const char* what;
  std::vector<uint8_t> bytes;
  uint8_t code;
  uint8_t subcode;
  std::vector<uint8_t> data;  // checked when not empty
};

std::vector<uint8_t> with_byte(std::vector<uint8_t> bytes, size_t at, uint8_t value) {
  bytes[at] = value;
  return bytes;
}

TEST_CASE("malformed messages: the NOTIFICATION of RFC 4271 §6") {
  const auto keepalive = encode(Keepalive{}, kFourOctet);
  const std::vector<Malformed> table = {
      {"marker not all ones", with_byte(keepalive, 3, 0xfe), 1, 1, {}},
      {"length 18", with_byte(keepalive, 17, 18), 1, 2, hex("0012")},
      {"length 4097", with_byte(with_byte(keepalive, 16, 0x10), 17, 0x01), 1, 2, hex("1001")},
      {"KEEPALIVE of 20 bytes", message(4, "00"), 1, 2, hex("0014")},
      {"OPEN shorter than 29", message(1, "04fde9005ac612"), 1, 2, {}},
      {"UPDATE shorter than 23", message(2, "00"), 1, 2, {}},
      {"NOTIFICATION shorter than 21", message(3, "06"), 1, 2, {}},
      {"ROUTE-REFRESH of 24 bytes", message(5, "0001000100"), 1, 2, {}},
      {"message type 9", message(9, ""), 1, 3, hex("09")},
      {"OPEN version 3", message(1, "03 fde9 005a c6120002 00"), 2, 1, hex("0004")},
      {"OPEN hold time 2", message(1, "04 fde9 0002 c6120002 00"), 2, 6, {}},
      {"OPEN hold time 1", message(1, "04 fde9 0001 c6120002 00"), 2, 6, {}},
      {"OPEN BGP identifier 0", message(1, "04 fde9 005a 00000000 00"), 2, 3, {}},
      {"OPEN optional parameter type 1", message(1, "04 fde9 005a c6120002 03 010100"), 2, 4, {}},
      {"OPEN parameters length too long", message(1, "04 fde9 005a c6120002 05 0200"), 2, 0, {}},
      {"OPEN parameter runs past its end", message(1, "04 fde9 005a c6120002 02 0205"), 2, 0, {}},
      {"OPEN 4-octet AS capability of 2 bytes",
       message(1, "04 fde9 005a c6120002 06 0204 4102 fde9"),
       2,
       0,
       {}},
      {"OPEN capability runs past its parameter",
       message(1, "04 fde9 005a c6120002 04 0202 4104"),
       2,
       0,
       {}},
      // RFC 4271 §6.3: UPDATE errors that no route survives.
      {"UPDATE withdrawn length past the end", message(2, "0010 0000"), 3, 1, {}},
      {"UPDATE attribute length past the end", message(2, "0000 0010 40010100"), 3, 1, {}},
      {"UPDATE NLRI prefix length 33", update_message(kGoodAttributes, "21c6120500"), 3, 10, {}},
      {"UPDATE NLRI cut short", update_message(kGoodAttributes, "18c612"), 3, 10, {}},
      {"UPDATE withdrawn prefix cut short", message(2, "0002 18c6 0000"), 3, 10, {}},
      {"UPDATE unrecognized well-known attribute",
       update_message(kGoodAttributes + " 40 63 01 00", "18c61205"), 3, 2, hex("40630100")},
      {"UPDATE MP_UNREACH_NLRI twice", update_message("800f03000101 800f03000101", ""), 3, 1, {}},
      {"UPDATE MP_REACH_NLRI cut short", update_message("800e03 000101", ""), 3, 9, {}},
      {"UPDATE MP_REACH_NLRI with flags 0x40",
       update_message("400e0d 0001 01 04 c6120001 00 18c61206", ""),
       3,
       4,
       {}},
  };
  for (const Malformed& m : table) {
    CAPTURE(m.what);
    const Notification n = rejected(m.bytes);
    CHECK(n.code == m.code);
    CHECK(n.subcode == m.subcode);
    if (!m.data.empty()) CHECK(n.data == m.data);
  }
}

TEST_CASE("a header of 18 bytes is not yet a message; 19 are") {
  const auto keepalive = encode(Keepalive{}, kFourOctet);
  CHECK(std::holds_alternative<std::nullopt_t>(
      check_header(ByteView(keepalive).first(kHeaderSize - 1))));
  const auto whole = check_header(keepalive);
  REQUIRE(std::holds_alternative<size_t>(whole));
  CHECK(std::get<size_t>(whole) == kHeaderSize);
}

// --- RFC 7606: UPDATE attribute errors that keep the session. ---

struct Revised {
  const char* what;
  std::string attributes;
  bool treat_as_withdraw;  // else attribute discard: the routes stand
};

TEST_CASE("RFC 7606: treat-as-withdraw and attribute discard, never a NOTIFICATION") {
  const std::string origin = "40010100";
  const std::string as_path = "4002060201 0000fde9";
  const std::string next_hop = "400304c6120002";
  const std::vector<Revised> table = {
      {"ORIGIN value 3 (§7.1)", "40010103 " + as_path + next_hop, true},
      {"ORIGIN of length 2 (§7.1)", "4001020000 " + as_path + next_hop, true},
      {"ORIGIN flagged optional (§3c)", "c0010100 " + as_path + next_hop, true},
      {"AS_PATH segment type 3 (§7.2)", origin + "4002060301 0000fde9" + next_hop, true},
      {"AS_PATH segment type 0 (§7.2)", origin + "4002060001 0000fde9" + next_hop, true},
      {"AS_PATH segment count overruns (§7.2)", origin + "4002060202 0000fde9" + next_hop, true},
      {"AS_PATH segment of zero ASNs (§7.2)", origin + "4002020200" + next_hop, true},
      {"AS_PATH segment header cut (§7.2)", origin + "40020102" + next_hop, true},
      {"NEXT_HOP of length 3 (§7.3)", origin + as_path + "400303c61200", true},
      {"NEXT_HOP 0.0.0.0 (RFC 4271 §6.3)", origin + as_path + "40030400000000", true},
      {"MULTI_EXIT_DISC of length 2 (§7.4)", origin + as_path + next_hop + "80040200 01", true},
      {"COMMUNITIES of length 3 (§7.8)", origin + as_path + next_hop + "c00803 000001", true},
      {"ORIGIN missing (§3d)", as_path + next_hop, true},
      {"AS_PATH missing (§3d)", origin + next_hop, true},
      {"NEXT_HOP missing (§3d)", origin + as_path, true},
      {"last attribute overruns the attributes (§4)", origin + as_path + next_hop + "c00808 0001",
       true},
      {"two bytes left for an attribute header (§4)", origin + as_path + next_hop + "c008", true},
      {"LOCAL_PREF from an external peer (§7.5)", origin + as_path + next_hop + "40050400000064",
       false},
      {"ATOMIC_AGGREGATE of length 1 (§7.6)", origin + as_path + next_hop + "40060100", false},
      {"AGGREGATOR of length 6 with 4-octet ASNs (§7.7)",
       origin + as_path + next_hop + "c00706 fde9 c6120002", false},
      {"ORIGIN twice (§3g)", origin + "40010102" + as_path + next_hop, false},
  };
  for (const Revised& r : table) {
    CAPTURE(r.what);
    const Update update = update_ok(update_message(r.attributes, "18c61205"));
    CHECK(update.treat_as_withdraw == r.treat_as_withdraw);
    CHECK(update.nlri == std::vector<Prefix>{{ip(198, 18, 5, 0), 24}});
    CHECK_FALSE(update.notes.empty());
  }
}

TEST_CASE("attribute discard leaves the rest of the route: ORIGIN twice keeps the first") {
  const Update update =
      update_ok(update_message("40010101 40010102 4002060201 0000fde9 400304c6120002", "18c61205"));
  CHECK(update.attributes.origin == Origin::Egp);
}

TEST_CASE("a withdrawal needs no attributes; malformed ones there withdraw nothing more") {
  const Update update = update_ok(message(2, "0004 18c61205 0004 40010103"));
  CHECK(update.withdrawn == std::vector<Prefix>{{ip(198, 18, 5, 0), 24}});
  CHECK(update.nlri.empty());
}

TEST_CASE("every cut of a valid message is rejected or read, never a crash") {
  Update update;
  update.withdrawn = {Prefix{ip(198, 19, 0, 0), 16}};
  update.attributes.origin = Origin::Igp;
  update.attributes.as_path = std::vector<AsPathSegment>{{AsPathSegment::AsSequence, {65001}}};
  update.attributes.next_hop = ip(198, 18, 0, 2);
  update.attributes.communities = std::vector<uint32_t>{1, 2};
  update.nlri = {Prefix{ip(198, 18, 5, 0), 24}};
  const auto bytes = encode(update, kFourOctet);
  for (size_t length = kHeaderSize; length < bytes.size(); ++length) {
    // Fix the header's length so that the cut reaches the body parsers.
    std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(length));
    store_be16(&cut[16], static_cast<uint16_t>(length));
    const Decoded decoded = decode(cut, kFourOctet);
    if (length < 23) {
      CHECK(std::get<DecodeError>(decoded).notification.subcode == header_error::kBadMessageLength);
    }
  }
}

TEST_CASE("NOTIFICATION and ROUTE-REFRESH round trip; describe() names the error") {
  const Notification n{3, 11, {1, 2}};
  CHECK(std::get<Notification>(decoded_ok(encode(n, kFourOctet))) == n);
  CHECK(n.describe() == "UPDATE Message Error / Malformed AS_PATH (3/11)");
  CHECK(Notification{4, 0, {}}.describe() == "Hold Timer Expired (4/0)");
  const RouteRefresh refresh{1, 1};
  CHECK(encode(refresh, kFourOctet) == message(5, "00010001"));
  CHECK(std::get<RouteRefresh>(decoded_ok(message(5, "00010001"))) == refresh);
}

}  // namespace
}  // namespace tapstack::bgp
