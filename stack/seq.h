// TCP sequence numbers: 32-bit values compared modulo 2^32 (RFC 9293 §3.4), so that
// comparisons stay right across the wrap. Mixing them with plain integers is a bug, hence a type.
#pragma once

#include <cstdint>

namespace tapstack {

class Seq {
 public:
  constexpr Seq() = default;
  constexpr explicit Seq(uint32_t value) : value_(value) {}
  constexpr uint32_t value() const { return value_; }

  constexpr Seq operator+(uint32_t n) const { return Seq(value_ + n); }
  constexpr Seq operator-(uint32_t n) const { return Seq(value_ - n); }
  constexpr Seq& operator+=(uint32_t n) { value_ += n; return *this; }
  // The distance from other to this, as a signed number (positive when this is later).
  constexpr int32_t operator-(Seq other) const { return static_cast<int32_t>(value_ - other.value_); }

  constexpr bool operator==(const Seq&) const = default;
  constexpr bool operator<(Seq o) const { return *this - o < 0; }
  constexpr bool operator<=(Seq o) const { return *this - o <= 0; }
  constexpr bool operator>(Seq o) const { return *this - o > 0; }
  constexpr bool operator>=(Seq o) const { return *this - o >= 0; }

 private:
  uint32_t value_ = 0;
};

// a <= x < b, modulo 2^32.
constexpr bool seq_in_window(Seq x, Seq a, Seq b) { return a <= x && x < b; }
constexpr Seq seq_max(Seq a, Seq b) { return a < b ? b : a; }
constexpr Seq seq_min(Seq a, Seq b) { return a < b ? a : b; }

}  // namespace tapstack
