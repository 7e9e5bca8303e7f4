// What the speaker announces (bgp/speaker.h's announcements()): RFC 4271 §5.1.2's AS_PATH and
// §5.1.5's LOCAL_PREF by the kind of peer, one UPDATE per next hop, at most 500 prefixes each.
// The speaker on a connection is tested in tests/sim/bgp_session_test.cc.
#include <doctest/doctest.h>

#include "bgp/speaker.h"
#include "tests/bgp/bgp_test_support.h"

namespace tapstack::bgp {
namespace {

using testing::ip;

Prefix prefix(uint32_t address, uint8_t length) {
  return Prefix{address, length};
}

SpeakerConfig config(uint32_t local_as, uint32_t peer_as) {
  SpeakerConfig c;
  c.local_address = Ipv4Address{ip(198, 18, 0, 2)};
  c.peer = Ipv4Address{ip(198, 18, 0, 1)};
  c.local_as = local_as;
  c.peer_as = peer_as;
  return c;
}

TEST_CASE("to an external peer: our AS leads the path, no LOCAL_PREF, our address the next hop") {
  SpeakerConfig c = config(65002, 65001);
  c.announcements = {{prefix(ip(198, 18, 5, 0), 24), std::nullopt}};
  const std::vector<Update> updates = announcements(c);
  REQUIRE(updates.size() == 1);
  const PathAttributes& a = updates[0].attributes;
  CHECK(a.origin == Origin::Igp);
  CHECK(a.as_path == std::vector<AsPathSegment>{{AsPathSegment::AsSequence, {65002}}});
  CHECK(a.local_pref == std::nullopt);
  CHECK(a.next_hop == ip(198, 18, 0, 2));
  CHECK(updates[0].nlri == std::vector<Prefix>{prefix(ip(198, 18, 5, 0), 24)});
  CHECK(updates[0].withdrawn.empty());
}

TEST_CASE("to an internal peer: an empty path and LOCAL_PREF 100") {
  SpeakerConfig c = config(65001, 65001);
  c.announcements = {{prefix(ip(198, 18, 5, 0), 24), std::nullopt}};
  const std::vector<Update> updates = announcements(c);
  REQUIRE(updates.size() == 1);
  CHECK(updates[0].attributes.as_path == std::vector<AsPathSegment>{});
  CHECK(updates[0].attributes.local_pref == 100u);
}

TEST_CASE("one UPDATE per next hop, in address order, each of at most 500 prefixes") {
  SpeakerConfig c = config(65002, 65001);
  const Ipv4Address other{ip(198, 18, 0, 9)};
  for (uint32_t i = 0; i < 501; ++i) {
    c.announcements.push_back({prefix(ip(198, 19, 0, 0) + i, 32), std::nullopt});
  }
  c.announcements.push_back({prefix(ip(198, 18, 7, 0), 24), other});
  const std::vector<Update> updates = announcements(c);
  REQUIRE(updates.size() == 3);
  CHECK(updates[0].attributes.next_hop == ip(198, 18, 0, 2));
  CHECK(updates[0].nlri.size() == 500);
  CHECK(updates[1].attributes.next_hop == ip(198, 18, 0, 2));
  CHECK(updates[1].nlri == std::vector<Prefix>{prefix(ip(198, 19, 0, 0) + 500, 32)});
  CHECK(updates[2].attributes.next_hop == other.value);
  CHECK(updates[2].nlri == std::vector<Prefix>{prefix(ip(198, 18, 7, 0), 24)});
  for (const Update& update : updates) {
    CHECK(encode(update, CodecOptions{.four_octet_as = true}).size() <= kMaxMessageSize);
  }
}

TEST_CASE("a TCP-MD5 key covers the addresses of its prefix") {
  const Md5Key host{Ipv4Address{ip(198, 18, 0, 1)}, 32, {'k'}};
  const Md5Key subnet{Ipv4Address{ip(198, 18, 0, 0)}, 24, {'k'}};
  CHECK(host.covers(Ipv4Address{ip(198, 18, 0, 1)}));
  CHECK_FALSE(host.covers(Ipv4Address{ip(198, 18, 0, 2)}));
  CHECK(subnet.covers(Ipv4Address{ip(198, 18, 0, 200)}));
  CHECK_FALSE(subnet.covers(Ipv4Address{ip(198, 18, 1, 1)}));
  CHECK(host.peer_text() == "198.18.0.1");
  CHECK(subnet.peer_text() == "198.18.0.0/24");
}

}  // namespace
}  // namespace tapstack::bgp
