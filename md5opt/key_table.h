// The keys a connection end uses, one per peer address or address prefix (RFC 2385 §4.0:
// keys are configured per connection, out of band). The table has the semantics Linux gives
// setsockopt(TCP_MD5SIG) and TCP_MD5SIG_EXT with TCP_MD5SIG_FLAG_PREFIX:
//   - one key per (address, prefix length); adding again replaces that key;
//   - an empty key deletes the entry; deleting one that is not there is ENOENT;
//   - keys are 1 to 80 bytes (TCP_MD5SIG_MAXKEYLEN), longer ones are EINVAL;
//   - a lookup takes the longest prefix that matches (an exact address is /32 or /128).
// Not modelled: VRF binding (TCP_MD5SIG_FLAG_IFINDEX) and IPv4-mapped IPv6 addresses given on
// an IPv6 socket (Linux stores those as IPv4 keys).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "md5opt/address.h"
#include "md5opt/bytes.h"
#include "md5opt/error.h"

namespace tapstack::md5opt {

inline constexpr std::size_t kMaxKeySize = 80;  // TCP_MD5SIG_MAXKEYLEN

// A key of 1 to 80 bytes, held inline: looking one up or signing with it allocates nothing.
class Md5Key {
 public:
  // EINVAL when empty or longer than 80 bytes.
  static Result<Md5Key> make(ByteView bytes);
  ByteView bytes() const { return {bytes_.data(), size_}; }

 private:
  std::array<std::uint8_t, kMaxKeySize> bytes_{};
  std::uint8_t size_ = 0;
};

class KeyTable {
 public:
  struct Entry {
    IpAddress address;  // kept as given, like Linux: 198.18.0.7/24 is not 198.18.0.0/24
    int prefix_length = 0;
    Md5Key key;
  };

  // Sets the key for address/prefix_length, replacing one there; an empty key deletes the
  // entry instead (ENOENT when there is none). EINVAL for a prefix longer than the address or
  // a key over 80 bytes.
  // Linux: tcp_v4_parse_md5_keys(), tcp_v6_parse_md5_keys()
  Status add(const IpAddress& address, int prefix_length, ByteView key);
  // The exact address: /32 or /128 (setsockopt(TCP_MD5SIG) without a prefix).
  Status add(const IpAddress& address, ByteView key);

  // ENOENT when no entry has exactly this address and prefix length.
  // Linux: tcp_md5_do_del()
  Status remove(const IpAddress& address, int prefix_length);
  Status remove(const IpAddress& address);

  // The key for a peer: the entry with the longest matching prefix; nullptr when none. The
  // pointer is valid until the table next changes.
  // Linux: tcp_md5_do_lookup()
  const Md5Key* lookup(const IpAddress& peer) const;

  std::span<const Entry> entries() const { return entries_; }
  bool empty() const { return entries_.empty(); }

 private:
  // Linux: tcp_md5_do_add()
  Status insert_or_replace(const IpAddress& address, int prefix_length, ByteView key);
  // Linux: tcp_md5_do_lookup_exact()
  std::vector<Entry>::iterator find_exact(const IpAddress& address, int prefix_length);

  std::vector<Entry> entries_;  // oldest first; a handful of peers, so a scan as in Linux
};

}  // namespace tapstack::md5opt
