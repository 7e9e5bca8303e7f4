// The RFC 2385 §2.0 digest: MD5 over, in this order,
//   1. the TCP pseudo-header: IPv4 (RFC 9293 §3.1) source, destination, zero, protocol 6,
//      TCP length; IPv6 (RFC 8200 §8.1) source, destination, 32-bit TCP length, three zero
//      bytes, next header 6;
//   2. the TCP header without options, its checksum taken as zero (the fixed 20 bytes);
//   3. the payload;
//   4. the key.
// The TCP length is that of the whole segment, options included. Options are not hashed, so
// the digest can be written into its option after it is computed.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <utility>

#include "md5opt/address.h"
#include "md5opt/bytes.h"
#include "md5opt/error.h"
#include "md5opt/md5.h"

namespace tapstack::md5opt {

// A TCP segment as the digest sees it. Both addresses are of one family.
struct TcpSegment {
  IpAddress source;
  IpAddress destination;
  ByteView header;  // the whole TCP header, options included (data offset × 4 bytes)
  ByteView payload;
};

// Splits a segment's bytes at its data offset; nullopt when the data offset is below 5 or
// points past the bytes given.
std::optional<TcpSegment> split_segment(const IpAddress& source, const IpAddress& destination,
                                        ByteView tcp);

// Computes and writes digests with one MD5 context, reused: a stack holds one signer.
class Md5Signer {
 public:
  // With OpenSSL's MD5.
  Md5Signer() : Md5Signer(make_openssl_md5()) {}
  explicit Md5Signer(std::unique_ptr<Md5> md5) : md5_(std::move(md5)) {}

  // The digest of a segment under a key. EINVAL for mixed address families or a header shorter
  // than 20 bytes, EMSGSIZE for an IPv4 segment over 65535 bytes, EIO if MD5 itself failed.
  // Linux: tcp_v4_md5_hash_skb(), tcp_v6_md5_hash_skb()
  Result<Digest> digest(const TcpSegment& segment, ByteView key);

  // Signs a finished segment in place: computes the digest and writes it at digest_offset (as
  // returned by write_md5_option), which must lie inside the options. The TCP checksum is to be
  // computed afterwards, since it covers the digest.
  // Linux: the calc_md5_hash() call in tcp_transmit_skb(), filling opts.hash_location
  Status sign_in_place(const IpAddress& source, const IpAddress& destination, MutableByteView tcp,
                       std::size_t digest_offset, ByteView key);

  Md5& md5() { return *md5_; }

 private:
  std::unique_ptr<Md5> md5_;
};

}  // namespace tapstack::md5opt
