// Two published RFC 2385 digests, each given as the exact bytes hashed (pseudo-header, then
// the 20-byte TCP header with its checksum zeroed), the key, and the digest. First the bytes
// through plain MD5 (the vectors are what we think they are), then the same segments rebuilt
// as a receiver sees them, through Md5Signer, the option parser and the verdict: this proves
// the signer's order and its choice of what to hash, not just MD5.
#include <doctest/doctest.h>

#include <string_view>
#include <vector>

#include "md5opt/option.h"
#include "md5opt/signer.h"
#include "md5opt/verdict.h"
#include "tests/md5/hex.h"

namespace tapstack::md5test {
namespace {

using namespace md5opt;

struct PublishedDigest {
  std::string_view what;
  std::string_view source;
  std::string_view destination;
  std::string_view hashed;  // pseudo-header (12 bytes) + TCP header with checksum 0 (20 bytes)
  std::string_view key;
  std::string_view digest;
  // Options a header of that data offset would carry: not hashed, so anything may stand here
  // as long as it holds one MD5 option at the right length.
  std::string_view options;
};

const PublishedDigest kPublished[] = {
    {"ACK from 192.168.56.20:179", "192.168.56.20", "192.168.56.40",
     "c0a83814c0a838280006002800b3d10515f72762291b6878a010007300000000", "lolcats",
     "eaf8d1f1da3f03c90b42709e9508fc73",
     // data offset 10: NOP NOP MD5 (20 bytes)
     "0101 1312 00000000000000000000000000000000"},
    {"SYN from 192.168.56.40:53537", "192.168.56.40", "192.168.56.20",
     "c0a83828c0a8381400060034d12100b36e73c1c300000000d002390800000000", "longbutstilllamepassword",
     "9a75888344bf20488ebef3ee5b16dd2a",
     // data offset 13: MSS 1460, NOP NOP MD5, NOP window scale 7, NOP NOP SACK permitted
     "020405b4 0101 1312 00000000000000000000000000000000 01030307 01010402"},
};

std::vector<std::uint8_t> concatenate(std::vector<std::uint8_t> a, ByteView b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// A segment as it would arrive: the published header bytes with a non-zero checksum (which
// the digest must ignore) and the options after them.
std::vector<std::uint8_t> received_header(const PublishedDigest& vector) {
  std::vector<std::uint8_t> header = hex(vector.hashed.substr(24));  // skip 12 pseudo bytes
  header[16] = 0xbe;
  header[17] = 0xef;
  return concatenate(header, hex(vector.options));
}

TEST_CASE("the published bytes and key give the published digest through plain MD5") {
  Md5Signer signer;
  for (const auto& vector : kPublished) {
    CAPTURE(vector.what);
    const auto bytes = concatenate(hex(vector.hashed), text_bytes(vector.key));
    REQUIRE(bytes.size() == 32 + vector.key.size());
    const auto digest = signer.md5().digest_of(bytes);
    REQUIRE(digest);
    CHECK(to_hex(*digest) == vector.digest);
  }
}

TEST_CASE("Md5Signer::digest, fed the parsed pieces, gives the published digest") {
  Md5Signer signer;
  for (const auto& vector : kPublished) {
    CAPTURE(vector.what);
    const auto header = received_header(vector);
    // The pseudo-header's TCP length must come out of the header size: check the vector agrees.
    REQUIRE(hex(vector.hashed)[11] == header.size());
    const TcpSegment segment{
        *IpAddress::parse(vector.source), *IpAddress::parse(vector.destination), header, {}};
    const auto digest = signer.digest(segment, text_bytes(vector.key));
    REQUIRE_MESSAGE(digest.ok(), digest.error().message);
    CHECK(to_hex(*digest) == vector.digest);
  }
}

TEST_CASE("signed in place, the segment carries the published digest and verifies") {
  Md5Signer signer;
  for (const auto& vector : kPublished) {
    CAPTURE(vector.what);
    auto tcp = received_header(vector);
    const auto source = *IpAddress::parse(vector.source);
    const auto destination = *IpAddress::parse(vector.destination);
    const auto digest_offset = find_md5_option(tcp);
    REQUIRE(digest_offset);
    const auto status =
        signer.sign_in_place(source, destination, tcp, *digest_offset, text_bytes(vector.key));
    REQUIRE_MESSAGE(status.ok(), status.error().message);
    CHECK(to_hex(ByteView(tcp).subspan(*digest_offset, 16)) == vector.digest);

    KeyTable keys;
    REQUIRE(keys.add(source, text_bytes(vector.key)).ok());
    const auto segment = split_segment(source, destination, tcp);
    REQUIRE(segment);
    CHECK(inbound_verdict(signer, keys, *segment) == Md5Verdict::Ok);
  }
}

}  // namespace
}  // namespace tapstack::md5test
