// The TCP MD5 signature option, RFC 2385 §3.0: kind 19, length 18, a 16-byte digest.
// Finding it in a received header (with Linux's rules for malformed option lists) and writing
// it into a header being built, the digest itself filled in later (signer.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "md5opt/bytes.h"

namespace tapstack::md5opt {

inline constexpr std::uint8_t kOptionEnd = 0;        // TCPOPT_EOL (RFC 9293 §3.2)
inline constexpr std::uint8_t kOptionNop = 1;        // TCPOPT_NOP
inline constexpr std::uint8_t kOptionMd5 = 19;       // TCPOPT_MD5SIG (RFC 2385 §3.0)
inline constexpr std::size_t kMd5OptionLength = 18;  // TCPOLEN_MD5SIG: kind, length, digest
inline constexpr std::size_t kMd5OptionSpace = 20;   // TCPOLEN_MD5SIG_ALIGNED: NOP NOP + option
inline constexpr std::size_t kTcpFixedHeaderSize = 20;
inline constexpr std::size_t kTcpMaxHeaderSize = 60;  // data offset 15

// The header length the data offset gives (RFC 9293 §3.1), or nullopt when it is below 20
// or beyond the bytes given. `tcp` may be the header alone or the whole segment.
std::optional<std::size_t> tcp_header_size(ByteView tcp);

// Where the 16 digest bytes of the MD5 option start, counted from the first byte of the TCP
// header; nullopt when there is no well-formed MD5 option. Walks the option list: EOL ends it,
// NOP is skipped, any other option must have a length of at least 2 that stays inside the
// header, or the list is malformed and there is no option. The first kind-19 option decides:
// of length 18 it is the option, of any other length there is none. (Linux 6.7 and later,
// with TCP-AO, parse in tcp_do_parse_auth_options() and drop a segment whose list is malformed
// or holds two MD5 options; this is the RFC 2385-only behaviour, where such a list has none.)
// Linux: tcp_parse_md5sig_option()
std::optional<std::size_t> find_md5_option(ByteView tcp);

// Writes NOP NOP 19 18 and 16 zero bytes (20 bytes) at option_offset in a TCP segment being
// built, and returns where the digest goes, for Md5Signer::sign_in_place once the header and
// payload are complete. nullopt when the 20 bytes do not fit.
// Linux: tcp_options_write() (OPTION_MD5, remembering opts->hash_location)
std::optional<std::size_t> write_md5_option(MutableByteView tcp, std::size_t option_offset);

}  // namespace tapstack::md5opt
