// TapDevice and the rtnetlink configuration, against the kernel in a private namespace:
// creating, attaching and refusing TAP devices with messages that say what to do, and
// reading back what rtnetlink configured.
#include <doctest/doctest.h>

#include <algorithm>
#include <fstream>
#include <string>

#include "tap/netlink.h"
#include "tap/system_error.h"
#include "tap/tap_device.h"
#include "tests/support/netns.h"

namespace tapstack {
namespace {

bool contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

TEST_CASE("TapDevice: create, attach, refuse") {
  testing::enter_private_netns_or_skip();

  SUBCASE("the kernel names it when we do not") {
    auto tap = TapDevice::open("");
    REQUIRE_MESSAGE(tap, tap.error().message);
    CHECK(tap->name().starts_with("tap"));
    CHECK(tap->fd() >= 0);
  }
  SUBCASE("a second process on the same interface is told it is busy") {
    auto first = TapDevice::open("tap0");
    REQUIRE(first);
    auto second = TapDevice::open("tap0");
    REQUIRE_FALSE(second);
    CHECK(second.error().code == EBUSY);
    CHECK(contains(second.error().message, "busy"));
    CHECK(contains(second.error().message, "another process"));
  }
  SUBCASE("the name of an interface that is no TAP is refused") {
    auto lo = TapDevice::open("lo");
    REQUIRE_FALSE(lo);
    CHECK(contains(lo.error().message, "not a TAP"));
  }
  SUBCASE("the interface disappears with the device, and can be made again") {
    { REQUIRE(TapDevice::open("tap0")); }
    auto netlink = Rtnetlink::open();
    REQUIRE(netlink);
    auto gone = netlink->link("tap0");
    REQUIRE_FALSE(gone);
    CHECK(contains(gone.error().message, "no interface named 'tap0'"));
    CHECK(TapDevice::open("tap0"));
  }
  SUBCASE("nothing to read is EAGAIN, not an error") {
    auto tap = TapDevice::open("tap0");
    REQUIRE(tap);
    uint8_t buffer[2048];
    auto read = tap->read(buffer);
    REQUIRE_FALSE(read);
    CHECK(is_would_block(read.error()));
  }
  SUBCASE("writing while the interface is down says so") {
    auto tap = TapDevice::open("tap0");
    REQUIRE(tap);
    const uint8_t frame[60] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 1, 0x08, 0x06};
    auto written = tap->write(frame);
    REQUIRE_FALSE(written);
    CHECK(written.error().code == EIO);
    CHECK(contains(written.error().message, "is it up?"));
  }
}

TEST_CASE("TapDevice: MTU and the kernel side's MAC") {
  testing::enter_private_netns_or_skip();
  auto tap = TapDevice::open("tap0");
  REQUIRE(tap);

  auto mtu = tap->mtu();
  REQUIRE_MESSAGE(mtu, mtu.error().message);
  CHECK(*mtu == 1500);
  REQUIRE(tap->set_mtu(9000));
  CHECK(*tap->mtu() == 9000);
  REQUIRE(tap->set_mtu(1280));
  CHECK(*tap->mtu() == 1280);
  auto too_small = tap->set_mtu(10);
  REQUIRE_FALSE(too_small);
  CHECK(too_small.error().code == EINVAL);

  auto mac = tap->kernel_mac();
  REQUIRE_MESSAGE(mac, mac.error().message);
  CHECK_FALSE(mac->is_zero());
  CHECK_FALSE(mac->is_multicast());
  CHECK((mac->bytes[0] & 0x02) != 0);  // Linux gives a TAP a random, locally administered MAC
}

TEST_CASE("Rtnetlink: address and link state, read back") {
  testing::enter_private_netns_or_skip();
  auto tap = TapDevice::open("tap0");
  REQUIRE(tap);
  auto netlink = Rtnetlink::open();
  REQUIRE(netlink);

  auto before = netlink->link("tap0");
  REQUIRE(before);
  CHECK_FALSE(before->up);
  CHECK(before->name == "tap0");
  CHECK(before->index > 0);

  const Ipv4Interface address = *Ipv4Interface::parse("198.18.0.1/24");
  REQUIRE(netlink->add_ipv4_address("tap0", address));
  REQUIRE(netlink->add_ipv4_address("tap0", address));  // again: replaced, not an error
  REQUIRE(netlink->set_link_up("tap0"));

  auto after = netlink->link("tap0");
  REQUIRE(after);
  CHECK(after->up);
  auto addresses = netlink->ipv4_addresses("tap0");
  REQUIRE(addresses);
  CHECK(*addresses == std::vector<Ipv4Interface>{address});

  auto lo = netlink->link("lo");
  REQUIRE(lo);
  CHECK(lo->up);  // enter_private_netns_or_skip brought it up

  auto missing = netlink->add_ipv4_address("nosuch0", address);
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == ENODEV);
}

TEST_CASE("Rtnetlink: IPv6 addresses with nodad, added, listed, deleted") {
  testing::enter_private_netns_or_skip();
  auto tap = TapDevice::open("tap0");
  REQUIRE(tap);
  auto netlink = Rtnetlink::open();
  REQUIRE(netlink);
  REQUIRE(enable_ipv6("tap0"));
  REQUIRE(enable_ipv6("tap0"));  // on already: nothing to do, not an error
  const Ipv6Interface address = *Ipv6Interface::parse("2001:db8::1/64");
  REQUIRE(netlink->add_ipv6_address("tap0", address));
  REQUIRE(netlink->add_ipv6_address("tap0", address));  // again: replaced, not an error
  REQUIRE(netlink->set_link_up("tap0"));

  auto addresses = netlink->ipv6_addresses("tap0");
  REQUIRE(addresses);
  CHECK(std::find(addresses->begin(), addresses->end(), address) != addresses->end());
  // The IPv4 list does not see it.
  auto ipv4 = netlink->ipv4_addresses("tap0");
  REQUIRE(ipv4);
  CHECK(ipv4->empty());

  REQUIRE(netlink->delete_ipv6_address("tap0", address));
  addresses = netlink->ipv6_addresses("tap0");
  REQUIRE(addresses);
  CHECK(std::find(addresses->begin(), addresses->end(), address) == addresses->end());
  auto again = netlink->delete_ipv6_address("tap0", address);
  REQUIRE_FALSE(again);
  CHECK(again.error().code == EADDRNOTAVAIL);

  auto missing = netlink->add_ipv6_address("nosuch0", address);
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == ENODEV);
  auto no_interface = enable_ipv6("nosuch0");
  REQUIRE_FALSE(no_interface);
  CHECK(no_interface.error().code == ENOENT);
}

TEST_CASE("enable_ipv6: turns IPv6 back on for an interface that had it off") {
  testing::enter_private_netns_or_skip();
  auto tap = TapDevice::open("tap0");
  REQUIRE(tap);
  const auto read_disable = [] {
    std::ifstream file("/proc/sys/net/ipv6/conf/tap0/disable_ipv6");
    std::string text;
    std::getline(file, text);
    return text;
  };
  std::ofstream("/proc/sys/net/ipv6/conf/tap0/disable_ipv6") << "1\n";
  REQUIRE(read_disable() == "1");
  auto netlink = Rtnetlink::open();
  REQUIRE(netlink);
  const Ipv6Interface address = *Ipv6Interface::parse("2001:db8::1/64");
  CHECK_FALSE(netlink->add_ipv6_address("tap0", address));  // the kernel refuses: IPv6 is off
  REQUIRE(enable_ipv6("tap0"));
  CHECK(read_disable() == "0");
  CHECK(netlink->add_ipv6_address("tap0", address));
}

}  // namespace
}  // namespace tapstack
