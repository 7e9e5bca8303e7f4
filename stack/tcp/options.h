// The options of one segment we send, decided once and written once, as Linux decides them
// into a struct tcp_out_options and writes them with tcp_options_write(). The deciders
// (Tcp::syn_options, Tcp::established_options) say which options go on and with what values;
// the plan knows their size, which the MSS is computed from, and writes them in Linux's order,
// the MD5 option's place (and so where its digest goes) included.
// RFC 9293 §3.2 (option format), RFC 6691 (MSS), RFC 7323 §2, §3 (window scale, timestamps),
// RFC 2018 §2, §3 (SACK-permitted, SACK), RFC 2385 §3.0 (MD5 signature).
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "md5opt/option.h"
#include "stack/tcp/header.h"

namespace tapstack {

// The bytes each option takes as we write them.
namespace tcp_option_space {
constexpr size_t kMss = 4;
constexpr size_t kTimestamps = 12;    // NOP NOP (or SACK-permitted) 8 10 TSval TSecr
constexpr size_t kSackPermitted = 4;  // NOP NOP 4 2, when no timestamps carry it
constexpr size_t kWindowScale = 4;    // NOP 3 3 shift
constexpr size_t kSackHeader = 4;     // NOP NOP 5 length
constexpr size_t kSackBlock = 8;
}  // namespace tcp_option_space

// RFC 7323 §3.2: TSval, TSecr.
struct TcpTimestamps {
  uint32_t value = 0;
  uint32_t echo = 0;
};

// Linux: struct tcp_out_options
struct TcpOptionPlan {
  static constexpr size_t kSpace = kTcpMaxHeaderSize - kTcpMinHeaderSize;

  // Fields in the order they are written. SYNs only: mss, sack_permitted, window_scale.
  bool md5 = false;  // NOP NOP kind 19: 20 bytes, first; the digest is filled in when signed
  std::optional<uint16_t> mss{};
  bool sack_permitted = false;  // with timestamps, in the NOP NOP slot before them
  std::optional<TcpTimestamps> timestamps{};
  std::optional<uint8_t> window_scale{};
  uint8_t sack_count = 0;  // SACK blocks, the first of them sent first
  std::array<SackBlock, 4> sack{};

  // Bytes the options take, a multiple of 4. Linux: the size tcp_*_options() return
  size_t size() const {
    return size_before_sack() + (sack_count > 0 ? tcp_option_space::kSackHeader +
                                                      tcp_option_space::kSackBlock * sack_count
                                                : 0);
  }
  // How many SACK blocks fit in the space the other options leave (RFC 2018 §3: NOP NOP kind
  // length, then 8 bytes each; at most 4).
  size_t sack_capacity() const {
    using namespace tcp_option_space;
    const size_t space = kSpace - size_before_sack();
    if (space < kSackHeader + kSackBlock) return 0;
    return std::min((space - kSackHeader) / kSackBlock, sack.size());
  }
  // Writes the size() bytes at out, the MD5 digest zeroed; returns where the digest goes,
  // counted from out (nullopt without MD5), for the signer once the segment is complete.
  // Linux: tcp_options_write()
  std::optional<size_t> write(uint8_t* out) const;
  // The options after MD5, for the trace: "mss 1460, sack-ok, timestamps, wscale 7".
  std::string describe() const;

 private:
  // The bytes of every option but the SACK blocks. (Inline, as size() and sack_capacity():
  // every segment asks, twice.)
  size_t size_before_sack() const {
    using namespace tcp_option_space;
    size_t n = md5 ? md5opt::kMd5OptionSpace : 0;
    if (mss) n += kMss;
    if (timestamps) {
      n += kTimestamps;
    } else if (sack_permitted) {
      n += kSackPermitted;
    }
    if (window_scale) n += kWindowScale;
    return n;
  }
};

}  // namespace tapstack
