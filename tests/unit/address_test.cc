// Address parsing at the edges: what a user types on the command line.
#include <doctest/doctest.h>

#include "stack/address.h"
#include "stack/checksum.h"
#include "stack/counters.h"
#include "stack/layer_context.h"

namespace tapstack {
namespace {

TEST_CASE("IPv4 addresses parse and print") {
  CHECK(Ipv4Address::parse("198.18.0.2")->value == 0xc6120002u);
  CHECK(Ipv4Address::parse("198.18.0.2")->to_string() == "198.18.0.2");
  for (const char* bad : {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.-4", "1..2.3", "a.b.c.d",
                          "1.2.3.4 ", "01234.1.1.1"}) {
    CAPTURE(bad);
    CHECK_FALSE(Ipv4Address::parse(bad));
  }
}

TEST_CASE("interface addresses carry a prefix") {
  const auto iface = Ipv4Interface::parse("198.18.0.2/24");
  REQUIRE(iface);
  CHECK(iface->prefix_length == 24);
  CHECK(iface->on_link(*Ipv4Address::parse("198.18.0.200")));
  CHECK_FALSE(iface->on_link(*Ipv4Address::parse("198.18.1.1")));
  CHECK(iface->subnet_broadcast().to_string() == "198.18.0.255");
  CHECK(Ipv4Interface::parse("198.18.0.2/0")->mask() == 0);
  CHECK_FALSE(Ipv4Interface::parse("198.18.0.2"));
  CHECK_FALSE(Ipv4Interface::parse("198.18.0.2/33"));
  CHECK_FALSE(Ipv4Interface::parse("198.18.0.2/"));
}

TEST_CASE("MAC addresses parse and print") {
  const auto mac = MacAddress::parse("02:00:5E:10:00:0a");
  REQUIRE(mac);
  CHECK(mac->to_string() == "02:00:5e:10:00:0a");
  CHECK_FALSE(mac->is_multicast());
  CHECK(MacAddress::broadcast().is_multicast());
  for (const char* bad : {"", "02:00:5e:10:00", "02-00-5e-10-00-0a", "02:00:5e:10:00:0g"}) {
    CAPTURE(bad);
    CHECK_FALSE(MacAddress::parse(bad));
  }
}

TEST_CASE("the Internet checksum matches RFC 1071's worked example") {
  // RFC 1071 §3: the bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2 (one's complement 220d).
  const uint8_t bytes[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  CHECK(internet_checksum(bytes) == 0x220d);
  // Split at an odd boundary, the running sum must agree.
  InternetChecksum split;
  split.add({bytes, 3});
  split.add({bytes + 3, 5});
  CHECK(split.finish() == 0x220d);
}

TEST_CASE("every drop reason counts under its counter and has words for the trace") {
  for (size_t i = 0; i < kDropReasonCount; ++i) {
    const auto reason = static_cast<DropReason>(i);
    CAPTURE(drop_reason_name(reason));
    Counters counters;
    Trace trace;
    std::vector<std::string> lines;
    trace.set_sink([&](std::string_view line) { lines.emplace_back(line); });
    LayerContext{counters, trace}.drop(reason);
    CHECK(counters.drops(reason) == 1);
    // The one drop path traces every drop; outside a line, as a line of its own.
    REQUIRE(lines.size() == 1);
    CHECK(lines[0] == fmt::format("dropped: {} [counted: {}]", drop_reason_text(reason),
                                  drop_reason_counters(reason)));
    CHECK_FALSE(drop_reason_text(reason).empty());
    uint64_t total = 0;
    for (size_t c = 0; c < kCounterCount; ++c) total += counters[static_cast<Counter>(c)];
    CHECK((total == 1 || total == 2));
  }
  Counters counters;
  Trace trace;
  LayerContext{counters, trace}.drop(DropReason::IpBadChecksum);
  const std::string json = counters.to_json();
  CHECK(json.find("\"IpInHdrErrors\": 1") != std::string::npos);
  CHECK(json.find("\"IpExtInCsumErrors\": 1") != std::string::npos);
  CHECK(json.find("\"IpBadChecksum\": 1") != std::string::npos);
}

}  // namespace
}  // namespace tapstack
