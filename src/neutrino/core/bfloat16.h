// bfloat16: the top half of an IEEE float32 (8 exponent bits, 7 mantissa bits). Stored as its
// 16 bits; arithmetic goes through float, the way CPUs without native bf16 math do it.
#pragma once

#include <bit>
#include <cstdint>
#include <type_traits>

namespace neutrino {

// Round-to-nearest-even float -> bfloat16 bits; NaN stays a (quiet) NaN.
constexpr uint16_t float_to_bf16_bits(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40u);
  return static_cast<uint16_t>((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

constexpr float bf16_bits_to_float(uint16_t bits) {
  return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16);
}

struct bfloat16 {
  uint16_t bits = 0;

  bfloat16() = default;
  template <class A>
  requires std::is_arithmetic_v<A>
  constexpr explicit bfloat16(A value) : bits(float_to_bf16_bits(static_cast<float>(value))) {}
  static constexpr bfloat16 from_bits(uint16_t b) {
    bfloat16 v;
    v.bits = b;
    return v;
  }
  // Implicit, so generic kernel code (comparisons, sums) reads bf16 values as floats.
  constexpr operator float() const { return bf16_bits_to_float(bits); }
};
static_assert(sizeof(bfloat16) == 2);

// The raw bits of a bfloat16 array, for kernels written over uint16_t (which vectorize; code
// over the bfloat16 class does not).
inline const uint16_t* bf16_bits(const bfloat16* p) { return reinterpret_cast<const uint16_t*>(p); }
inline uint16_t* bf16_bits(bfloat16* p) { return reinterpret_cast<uint16_t*>(p); }

}  // namespace neutrino
