// RFC 2385 §4.0 key configuration, with the semantics of Linux's TCP_MD5SIG socket option.
#include "md5opt/key_table.h"

#include <algorithm>
#include <cerrno>
#include <string>

#include <fmt/format.h>

namespace tapstack::md5opt {

Result<Md5Key> Md5Key::make(ByteView bytes) {
  if (bytes.empty()) return Error{EINVAL, "an MD5 key needs at least one byte"};
  if (bytes.size() > kMaxKeySize) {
    return Error{EINVAL, fmt::format("an MD5 key has at most {} bytes, this one has {}",
                                     kMaxKeySize, bytes.size())};
  }
  Md5Key key;
  std::copy(bytes.begin(), bytes.end(), key.bytes_.begin());
  key.size_ = static_cast<std::uint8_t>(bytes.size());
  return key;
}

// Linux: tcp_v4_parse_md5_keys(), tcp_v6_parse_md5_keys()
Status KeyTable::add(const IpAddress& address, int prefix_length, ByteView key) {
  if (prefix_length < 0 || prefix_length > address.bit_length()) {
    return Error{EINVAL, fmt::format("prefix length {} does not fit {} (at most {})", prefix_length,
                                     address.to_string(), address.bit_length())};
  }
  if (key.empty()) return remove(address, prefix_length);
  return insert_or_replace(address, prefix_length, key);
}

Status KeyTable::add(const IpAddress& address, ByteView key) {
  return add(address, address.bit_length(), key);
}

// Linux: tcp_md5_do_add()
Status KeyTable::insert_or_replace(const IpAddress& address, int prefix_length, ByteView key) {
  auto made = Md5Key::make(key);
  if (!made) return made.error();
  if (const auto entry = find_exact(address, prefix_length); entry != entries_.end()) {
    entry->key = *made;
  } else {
    entries_.push_back(Entry{address, prefix_length, *made});
  }
  return Ok{};
}

// Linux: tcp_md5_do_del()
Status KeyTable::remove(const IpAddress& address, int prefix_length) {
  const auto entry = find_exact(address, prefix_length);
  if (entry == entries_.end()) {
    return Error{ENOENT, fmt::format("no MD5 key for {}/{}", address.to_string(), prefix_length)};
  }
  entries_.erase(entry);
  return Ok{};
}

Status KeyTable::remove(const IpAddress& address) {
  return remove(address, address.bit_length());
}

// Linux: tcp_md5_do_lookup_exact()
std::vector<KeyTable::Entry>::iterator KeyTable::find_exact(const IpAddress& address,
                                                            int prefix_length) {
  return std::find_if(entries_.begin(), entries_.end(), [&](const Entry& entry) {
    return entry.address == address && entry.prefix_length == prefix_length;
  });
}

// Linux: tcp_md5_do_lookup()
const Md5Key* KeyTable::lookup(const IpAddress& peer) const {
  const Entry* best = nullptr;
  // Newest first with a strict "longer": of two equal prefixes the newer wins, as in Linux,
  // which adds keys at the head of its list.
  for (auto entry = entries_.rbegin(); entry != entries_.rend(); ++entry) {
    if (!entry->address.matches_prefix(peer, entry->prefix_length)) continue;
    if (!best || entry->prefix_length > best->prefix_length) best = &*entry;
  }
  return best ? &best->key : nullptr;
}

}  // namespace tapstack::md5opt
