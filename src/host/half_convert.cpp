// Bit-exact float <-> fp16 / bf16 conversion on the host. Written with integer operations so the
// result does not depend on the compiler's or the CPU's floating-point environment.
#include "host/half_convert.h"

#include <cmath>
#include <cstring>

namespace flash::host {
namespace {

constexpr uint32_t kF32SignMask = 0x80000000u;
constexpr uint32_t kF32AbsMask = 0x7FFFFFFFu;
constexpr uint32_t kF32ExpMask = 0x7F800000u;   // also the bits of +inf
constexpr int kF32MantBits = 23;
constexpr uint32_t kF32MantMask = (1u << kF32MantBits) - 1;
constexpr int kF32ExpBias = 127;

constexpr uint16_t kF16SignMask = 0x8000u;
constexpr uint16_t kF16ExpMask = 0x7C00u;       // also the bits of +inf
constexpr uint16_t kF16MantMask = 0x03FFu;
constexpr uint16_t kF16QuietBit = 0x0200u;
constexpr int kF16MantBits = 10;
constexpr int kF32ToF16SignShift = 16;
constexpr int kF16ExpBias = 15;
constexpr int kF16MinNormalExp = -14;
constexpr int kF16SubnormalExp = -24;           // value of the lowest mantissa bit of a subnormal
// Bits dropped from a float mantissa when it becomes an fp16 mantissa, and their halfway point.
constexpr int kF32ToF16Shift = kF32MantBits - kF16MantBits;
constexpr uint32_t kF32ToF16DroppedMask = (1u << kF32ToF16Shift) - 1;
constexpr uint32_t kF32ToF16Halfway = 1u << (kF32ToF16Shift - 1);
// 65520 is halfway between fp16's largest finite value (65504) and 65536; ties-to-even rounds it
// up, so it and everything above it overflow to infinity.
constexpr uint32_t kF16OverflowThresholdBits = 0x477FF000u;
// Smallest normal fp16 (2^-14) as float bits; below it the result is subnormal or zero.
constexpr uint32_t kF16MinNormalBits = static_cast<uint32_t>(kF16MinNormalExp + kF32ExpBias) << kF32MantBits;

constexpr int kBf16Shift = 16;                  // bf16 is the top half of a float
constexpr uint32_t kBf16RoundBias = 0x7FFFu;    // halfway minus one: ties go to the even result
constexpr uint16_t kBf16QuietBit = 0x0040u;

uint32_t float_bits(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}

float bits_float(uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

}  // namespace

uint16_t float_to_fp16_bits(float value) {
  const uint32_t bits = float_bits(value);
  const auto sign = static_cast<uint16_t>((bits & kF32SignMask) >> kF32ToF16SignShift);
  const uint32_t abs_bits = bits & kF32AbsMask;

  if (abs_bits > kF32ExpMask) {
    // NaN: keep the top payload bits and force the quiet bit so the payload cannot become zero (inf).
    return static_cast<uint16_t>(sign | kF16ExpMask | kF16QuietBit | ((abs_bits >> kF32ToF16Shift) & kF16MantMask));
  }
  if (abs_bits >= kF16OverflowThresholdBits) return static_cast<uint16_t>(sign | kF16ExpMask);

  if (abs_bits < kF16MinNormalBits) {
    // Subnormal range: count units of 2^-24. The scaling by a power of two is exact and nearbyint
    // rounds ties to even in the default rounding mode; 1024 units correctly becomes the smallest normal.
    const float units = std::ldexp(bits_float(abs_bits), -kF16SubnormalExp);
    return static_cast<uint16_t>(sign | static_cast<uint16_t>(std::nearbyint(units)));
  }

  const uint32_t exponent = (abs_bits >> kF32MantBits) - (kF32ExpBias - kF16ExpBias);
  uint32_t half = (exponent << kF16MantBits) | ((abs_bits & kF32MantMask) >> kF32ToF16Shift);
  const uint32_t dropped = abs_bits & kF32ToF16DroppedMask;
  // A mantissa carry correctly moves into the exponent; the threshold above keeps it finite.
  if (dropped > kF32ToF16Halfway || (dropped == kF32ToF16Halfway && (half & 1u))) ++half;
  return static_cast<uint16_t>(sign | half);
}

float fp16_bits_to_float(uint16_t bits) {
  const uint32_t sign = static_cast<uint32_t>(bits & kF16SignMask) << kF32ToF16SignShift;
  const uint32_t exponent = (bits & kF16ExpMask) >> kF16MantBits;
  const uint32_t mantissa = bits & kF16MantMask;
  constexpr uint32_t kF16ExpAllOnes = kF16ExpMask >> kF16MantBits;

  if (exponent == 0) {
    const float magnitude = std::ldexp(static_cast<float>(mantissa), kF16SubnormalExp);
    return sign ? -magnitude : magnitude;
  }
  if (exponent == kF16ExpAllOnes) {
    // Infinity (mantissa 0) or NaN with its payload kept.
    return bits_float(sign | kF32ExpMask | (mantissa << kF32ToF16Shift));
  }
  const uint32_t f32_exponent = exponent - kF16ExpBias + kF32ExpBias;
  return bits_float(sign | (f32_exponent << kF32MantBits) | (mantissa << kF32ToF16Shift));
}

uint16_t float_to_bf16_bits(float value) {
  const uint32_t bits = float_bits(value);
  if ((bits & kF32AbsMask) > kF32ExpMask) {
    // NaN: truncating could clear every payload bit left in bf16 (giving inf), so set the quiet bit.
    return static_cast<uint16_t>((bits >> kBf16Shift) | kBf16QuietBit);
  }
  // Adding halfway-minus-one plus the lowest kept bit rounds to nearest with ties to even; a carry
  // out of the mantissa rounds the exponent up, and the largest finite values correctly reach inf.
  const uint32_t lowest_kept_bit = (bits >> kBf16Shift) & 1u;
  return static_cast<uint16_t>((bits + kBf16RoundBias + lowest_kept_bit) >> kBf16Shift);
}

float bf16_bits_to_float(uint16_t bits) { return bits_float(static_cast<uint32_t>(bits) << kBf16Shift); }

}  // namespace flash::host
