// RFC 2385 in TCP: the keys a socket holds, the key a segment to a peer is signed with, and
// the one inbound decision every segment meets (Tcp::md5_accepts). The option itself, the
// digest and the verdict's cases are md5opt's; signing a segment is the last step of
// Tcp::emit (output.cc).
#include "md5opt/verdict.h"
#include "stack/tcp/tcp.h"

namespace tapstack {

// Linux: tcp_v4_parse_md5_keys()
Status Tcp::set_md5_key(SocketId id, const IpAddress& peer, uint8_t prefix_length, ByteView key) {
  Event event(*this);
  auto found = find_or_error(id);
  if (!found) return found.error();
  auto& keys = (*found)->md5_keys;
  if (!keys) keys = std::make_unique<md5opt::KeyTable>();
  const auto status = keys->add(peer, prefix_length, key);
  if (keys->empty()) keys.reset();  // the last key deleted, or none was added
  if (!status) return Error{status.error().code, status.error().message};
  return Ok{};
}

// Linux: tcp_v4_md5_lookup()
const md5opt::Md5Key* Tcp::md5_key(const Connection& c) const {
  if (!c.md5_keys) return nullptr;  // the common case costs one branch
  return c.md5_keys->lookup(c.remote_address);
}

// RFC 2385 §2.0, the one check for every way a segment enters, before any state is touched:
// a segment whose signature is missing, unexpected or wrong is dropped and answered with
// nothing. `key` is the one the socket the segment met has for its source (Linux: the
// tcp_md5_do_lookup() of tcp_inbound_md5_hash()); nullptr when none.
// Linux: tcp_inbound_hash() from tcp_v4_rcv(); for no socket, the check in tcp_v4_send_reset()
bool Tcp::md5_accepts(const md5opt::Md5Key* key, std::optional<size_t> digest_at,
                      const TcpSegment& seg, Md5Check check) {
  std::optional<md5opt::Md5Verdict> verdict = md5opt::verdict_without_digest(key, digest_at);
  if (verdict == md5opt::Md5Verdict::Unsigned) return true;  // RFC 2385 not in use here
  if (!verdict) {
    const md5opt::TcpSegment signed_segment{seg.source_address, seg.destination_address, seg.header,
                                            seg.payload};
    verdict = md5opt::verify_digest(signer_, *key, *digest_at, signed_segment);
  }
  const bool ok = verdict == md5opt::Md5Verdict::Ok;
  ctx_.trace.step("md5: {} for {}{} (tcp_md5_do_lookup), option {} (tcp_parse_md5sig_option){}",
                  key ? "key" : "no key", seg.source_address, key ? " expected" : "",
                  digest_at ? "found" : "missing",
                  !ok                           ? ""
                  : seg.source_address.is_ipv4() ? ", digest ok (tcp_v4_inbound_md5_hash)"
                                                 : ", digest ok (tcp_v6_inbound_md5_hash)");
  if (ok) return true;
  ctx_.drop(check == Md5Check::ForReset ? DropReason::TcpNoSocketSigned
                                        : md5_drop_case(*verdict).reason);
  return false;
}

}  // namespace tapstack
