// Host conversions and helpers: fp16/bf16/e4m3 bit patterns, random inputs, error statistics and
// FLOP counts. Runs without a GPU.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include <gtest/gtest.h>

#include "host/half_convert.h"
#include "host/host_tensor.h"

namespace {

using flash::DataType;
using flash::host::attention_flops;
using flash::host::compare;
using flash::host::ErrorStats;

constexpr int kBitPatterns16 = 1 << 16;
constexpr double kInf = std::numeric_limits<double>::infinity();

uint32_t bits_of(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}

float float_of(uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

bool fp16_is_nan(uint16_t bits) { return (bits & 0x7C00u) == 0x7C00u && (bits & 0x03FFu) != 0; }
bool bf16_is_nan(uint16_t bits) { return (bits & 0x7F80u) == 0x7F80u && (bits & 0x007Fu) != 0; }

TEST(HostConvertFp16, EveryBitPatternRoundTrips) {
  for (int i = 0; i < kBitPatterns16; ++i) {
    const auto bits = static_cast<uint16_t>(i);
    const float value = flash::host::fp16_bits_to_float(bits);
    const uint16_t back = flash::host::float_to_fp16_bits(value);
    if (fp16_is_nan(bits)) {
      ASSERT_TRUE(std::isnan(value)) << std::hex << i;
      ASSERT_TRUE(fp16_is_nan(back)) << std::hex << i;
      ASSERT_EQ(back & 0x8000u, bits & 0x8000u) << std::hex << i;
    } else {
      ASSERT_EQ(back, bits) << std::hex << i;
    }
  }
}

TEST(HostConvertFp16, DecodesKnownValues) {
  using flash::host::fp16_bits_to_float;
  EXPECT_EQ(fp16_bits_to_float(0x3C00), 1.0f);
  EXPECT_EQ(fp16_bits_to_float(0xC000), -2.0f);
  EXPECT_EQ(fp16_bits_to_float(0x7BFF), 65504.0f);
  EXPECT_EQ(fp16_bits_to_float(0x0400), std::ldexp(1.0f, -14));
  EXPECT_EQ(fp16_bits_to_float(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(fp16_bits_to_float(0x03FF), std::ldexp(1023.0f, -24));
  EXPECT_EQ(fp16_bits_to_float(0x7C00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(fp16_bits_to_float(0xFC00), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::signbit(fp16_bits_to_float(0x8000)));
}

// For every pair of neighbouring finite fp16 values: the midpoint goes to the one with an even
// mantissa, and the floats just below and above it go to the nearer neighbour.
TEST(HostConvertFp16, EveryMidpointRoundsToEven) {
  using flash::host::float_to_fp16_bits;
  using flash::host::fp16_bits_to_float;
  constexpr uint16_t kLargestFinite = 0x7BFF;
  for (uint16_t lo = 0; lo <= kLargestFinite; ++lo) {
    const auto hi = static_cast<uint16_t>(lo + 1);   // 0x7C00 (inf) above the largest finite value
    const double lo_value = fp16_bits_to_float(lo);
    const double hi_value = hi == 0x7C00 ? 65536.0 : fp16_bits_to_float(hi);
    const auto mid = static_cast<float>((lo_value + hi_value) / 2);   // exact: 12 significant bits
    ASSERT_EQ(float_to_fp16_bits(mid), (lo & 1) ? hi : lo) << std::hex << lo;
    ASSERT_EQ(float_to_fp16_bits(std::nextafter(mid, 0.0f)), lo) << std::hex << lo;
    ASSERT_EQ(float_to_fp16_bits(std::nextafter(mid, std::numeric_limits<float>::infinity())), hi) << std::hex << lo;
    ASSERT_EQ(float_to_fp16_bits(-mid), static_cast<uint16_t>(0x8000 | ((lo & 1) ? hi : lo))) << std::hex << lo;
  }
}

TEST(HostConvertFp16, OverflowNanAndTinyValues) {
  using flash::host::float_to_fp16_bits;
  EXPECT_EQ(float_to_fp16_bits(65504.0f), 0x7BFF);
  EXPECT_EQ(float_to_fp16_bits(65519.996f), 0x7BFF);
  EXPECT_EQ(float_to_fp16_bits(65520.0f), 0x7C00);
  EXPECT_EQ(float_to_fp16_bits(1e10f), 0x7C00);
  EXPECT_EQ(float_to_fp16_bits(-1e10f), 0xFC00);
  EXPECT_EQ(float_to_fp16_bits(std::numeric_limits<float>::infinity()), 0x7C00);
  EXPECT_TRUE(fp16_is_nan(float_to_fp16_bits(std::numeric_limits<float>::quiet_NaN())));
  // A NaN whose payload sits only in bits that fp16 drops must not turn into infinity.
  EXPECT_TRUE(fp16_is_nan(float_to_fp16_bits(float_of(0x7F800001u))));
  EXPECT_EQ(float_to_fp16_bits(std::numeric_limits<float>::denorm_min()), 0x0000);
  EXPECT_EQ(float_to_fp16_bits(-std::numeric_limits<float>::denorm_min()), 0x8000);
  EXPECT_EQ(float_to_fp16_bits(std::ldexp(1.0f, -26)), 0x0000);
}

TEST(HostConvertBf16, EveryBitPatternRoundTrips) {
  for (int i = 0; i < kBitPatterns16; ++i) {
    const auto bits = static_cast<uint16_t>(i);
    const float value = flash::host::bf16_bits_to_float(bits);
    const uint16_t back = flash::host::float_to_bf16_bits(value);
    if (bf16_is_nan(bits)) {
      ASSERT_TRUE(std::isnan(value)) << std::hex << i;
      ASSERT_TRUE(bf16_is_nan(back)) << std::hex << i;
    } else {
      ASSERT_EQ(back, bits) << std::hex << i;
    }
  }
}

TEST(HostConvertBf16, EveryMidpointRoundsToEven) {
  using flash::host::bf16_bits_to_float;
  using flash::host::float_to_bf16_bits;
  constexpr uint16_t kLargestFinite = 0x7F7F;
  for (uint16_t lo = 0; lo <= kLargestFinite; ++lo) {
    const auto hi = static_cast<uint16_t>(lo + 1);
    // Neighbouring bf16 values are floats 2^16 bit patterns apart; the midpoint is halfway between.
    const float mid = float_of((static_cast<uint32_t>(lo) << 16) + 0x8000u);
    ASSERT_EQ(float_to_bf16_bits(mid), (lo & 1) ? hi : lo) << std::hex << lo;
    ASSERT_EQ(float_to_bf16_bits(float_of(bits_of(mid) - 1)), lo) << std::hex << lo;
    ASSERT_EQ(float_to_bf16_bits(float_of(bits_of(mid) + 1)), hi) << std::hex << lo;
    if (hi != 0x7F80) {
      ASSERT_EQ(2.0 * mid, static_cast<double>(bf16_bits_to_float(lo)) + bf16_bits_to_float(hi)) << std::hex << lo;
    }
  }
}

TEST(HostConvertBf16, KnownValuesOverflowAndNan) {
  using flash::host::bf16_bits_to_float;
  using flash::host::float_to_bf16_bits;
  EXPECT_EQ(float_to_bf16_bits(1.0f), 0x3F80);
  EXPECT_EQ(bf16_bits_to_float(0xC040), -3.0f);
  EXPECT_EQ(float_to_bf16_bits(1.0f + std::ldexp(1.0f, -8)), 0x3F80);        // tie, down to even
  EXPECT_EQ(float_to_bf16_bits(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3F82);    // tie, up to even
  EXPECT_EQ(float_to_bf16_bits(std::numeric_limits<float>::max()), 0x7F80);  // rounds past the largest bf16
  EXPECT_EQ(float_to_bf16_bits(-std::numeric_limits<float>::infinity()), 0xFF80);
  EXPECT_TRUE(bf16_is_nan(float_to_bf16_bits(float_of(0x7F800001u))));
  EXPECT_TRUE(bf16_is_nan(float_to_bf16_bits(float_of(0xFFC00000u))));
}

TEST(HostConvertE4m3, EveryBitPatternRoundTripsAndSaturates) {
  constexpr int kBitPatterns8 = 1 << 8;
  for (int i = 0; i < kBitPatterns8; ++i) {
    const auto bits = static_cast<uint16_t>(i);
    const double value = flash::host::decode(DataType::FP8_E4M3, bits);
    if ((i & 0x7F) == 0x7F) {
      EXPECT_TRUE(std::isnan(value)) << i;
      continue;
    }
    EXPECT_EQ(flash::host::encode(DataType::FP8_E4M3, value), bits) << i;
  }
  EXPECT_EQ(flash::host::decode(DataType::FP8_E4M3, 0x38), 1.0);
  EXPECT_EQ(flash::host::decode(DataType::FP8_E4M3, 0x7E), 448.0);
  EXPECT_EQ(flash::host::decode(DataType::FP8_E4M3, 0x01), std::ldexp(1.0, -9));
  EXPECT_EQ(flash::host::decode(DataType::FP8_E4M3, 0x08), std::ldexp(1.0, -6));
  EXPECT_EQ(flash::host::encode(DataType::FP8_E4M3, 1000.0), 0x7E);
  EXPECT_EQ(flash::host::encode(DataType::FP8_E4M3, -kInf), 0xFE);
  EXPECT_EQ(flash::host::encode(DataType::FP8_E4M3, 1.0625), 0x38);   // tie between 1 and 1.125: even
  EXPECT_EQ(flash::host::encode(DataType::FP8_E4M3, 1.1875), 0x3A);   // tie between 1.125 and 1.25: even
}

TEST(HostConvertDtype, NamesSizesAndParsing) {
  EXPECT_EQ(flash::host::element_bytes(DataType::FP16), 2u);
  EXPECT_EQ(flash::host::element_bytes(DataType::BF16), 2u);
  EXPECT_EQ(flash::host::element_bytes(DataType::FP8_E4M3), 1u);
  DataType dtype = DataType::FP16;
  EXPECT_TRUE(flash::host::parse_dtype("bf16", &dtype));
  EXPECT_EQ(dtype, DataType::BF16);
  EXPECT_TRUE(flash::host::parse_dtype("fp8", &dtype));
  EXPECT_EQ(dtype, DataType::FP8_E4M3);
  EXPECT_TRUE(flash::host::parse_dtype("fp16", &dtype));
  EXPECT_EQ(dtype, DataType::FP16);
  EXPECT_TRUE(flash::host::parse_dtype("e4m3", &dtype));
  EXPECT_FALSE(flash::host::parse_dtype("fp32", &dtype));
  EXPECT_EQ(dtype, DataType::FP8_E4M3);
  for (const DataType d : {DataType::FP16, DataType::BF16, DataType::FP8_E4M3}) {
    DataType parsed = DataType::FP16;
    EXPECT_TRUE(flash::host::parse_dtype(flash::host::dtype_name(d), &parsed));
    EXPECT_EQ(parsed, d);
  }
  EXPECT_EQ(flash::host::output_dtype(DataType::FP8_E4M3), DataType::BF16);
  EXPECT_EQ(flash::host::output_dtype(DataType::FP16), DataType::FP16);
}

TEST(HostConvertRandom, DeterministicAndValuesMatchBits) {
  constexpr size_t kCount = 10001;   // odd: the last Box-Muller pair is cut in half
  constexpr uint64_t kSeed = 42;
  for (const DataType dtype : {DataType::FP16, DataType::BF16, DataType::FP8_E4M3}) {
    std::vector<uint16_t> bits_a, bits_b, bits_c;
    std::vector<double> values;
    flash::host::fill_random(dtype, kCount, kSeed, &bits_a, &values);
    flash::host::fill_random(dtype, kCount, kSeed, &bits_b, nullptr);
    flash::host::fill_random(dtype, kCount, kSeed + 1, &bits_c, nullptr);
    ASSERT_EQ(bits_a.size(), kCount);
    ASSERT_EQ(values.size(), kCount);
    EXPECT_EQ(bits_a, bits_b);
    EXPECT_NE(bits_a, bits_c);
    for (size_t i = 0; i < kCount; ++i) {
      ASSERT_EQ(values[i], flash::host::decode(dtype, bits_a[i])) << i;
      ASSERT_TRUE(std::isfinite(values[i])) << i;
    }
  }
}

TEST(HostConvertRandom, StandardNormalMoments) {
  constexpr size_t kCount = 200000;
  // Standard errors at this count: mean 0.0022, variance 0.0032; the bounds are about 5 of them.
  constexpr double kMeanBound = 0.012;
  constexpr double kVarianceBound = 0.016;
  std::vector<uint16_t> bits;
  std::vector<double> values;
  flash::host::fill_random(DataType::BF16, kCount, 7, &bits, &values);
  double sum = 0.0, sum_sq = 0.0;
  for (const double x : values) {
    sum += x;
    sum_sq += x * x;
  }
  const double mean = sum / kCount;
  EXPECT_NEAR(mean, 0.0, kMeanBound);
  EXPECT_NEAR(sum_sq / kCount - mean * mean, 1.0, kVarianceBound);
}

TEST(HostConvertRandom, StorageBytesAreLittleEndianAndPackFp8) {
  const std::vector<uint16_t> bits = {0x1234, 0xABCD};
  EXPECT_EQ(flash::host::storage_bytes(DataType::FP16, bits.data(), bits.size()),
            (std::vector<uint8_t>{0x34, 0x12, 0xCD, 0xAB}));
  EXPECT_EQ(flash::host::storage_bytes(DataType::FP8_E4M3, bits.data(), bits.size()),
            (std::vector<uint8_t>{0x34, 0xCD}));
}

TEST(HostConvertCompare, HandCases) {
  const double ref[] = {3.0, 4.0};
  const double same[] = {3.0, 4.0};
  const double off[] = {3.0, 5.0};
  ErrorStats s = compare(ref, same, 2);
  EXPECT_EQ(s.rel_l2, 0.0);
  EXPECT_EQ(s.max_abs, 0.0);
  EXPECT_EQ(s.nonfinite, 0);
  EXPECT_EQ(s.count, 2);
  s = compare(ref, off, 2);
  EXPECT_DOUBLE_EQ(s.rel_l2, 0.2);   // ||(0, 1)|| / ||(3, 4)||
  EXPECT_EQ(s.max_abs, 1.0);
}

TEST(HostConvertCompare, NonFiniteOutputsAreCountedAndLeftOutOfTheNorms) {
  const double ref[] = {3.0, 4.0, 1.0};
  const double got[] = {3.0, 4.0, std::numeric_limits<double>::quiet_NaN()};
  const ErrorStats s = compare(ref, got, 3);
  EXPECT_EQ(s.nonfinite, 1);
  EXPECT_EQ(s.rel_l2, 0.0);
  const double got_inf[] = {kInf, 4.0, 1.0};
  EXPECT_EQ(compare(ref, got_inf, 3).nonfinite, 1);
}

TEST(HostConvertCompare, MatchingMinusInfinityIsNotAnError) {
  // The LSE of a query row that sees no key is -inf on both sides.
  const double ref[] = {-kInf, 2.0};
  const double got[] = {-kInf, 2.0};
  ErrorStats s = compare(ref, got, 2);
  EXPECT_EQ(s.nonfinite, 0);
  EXPECT_EQ(s.rel_l2, 0.0);
  EXPECT_EQ(s.max_abs, 0.0);
  const double wrong[] = {0.0, 2.0};
  s = compare(ref, wrong, 2);
  EXPECT_EQ(s.rel_l2, kInf);
  EXPECT_EQ(s.max_abs, kInf);
  EXPECT_EQ(s.nonfinite, 0);
  const double nan[] = {std::numeric_limits<double>::quiet_NaN(), 2.0};
  s = compare(ref, nan, 2);
  EXPECT_EQ(s.rel_l2, kInf);
  EXPECT_EQ(s.nonfinite, 1);
}

TEST(HostConvertCompare, ZeroReference) {
  const double zeros[] = {0.0, 0.0};
  const double small[] = {0.0, 1e-30};
  EXPECT_EQ(compare(zeros, zeros, 2).rel_l2, 0.0);
  EXPECT_EQ(compare(zeros, small, 2).rel_l2, kInf);
}

TEST(HostConvertFlops, HandCases) {
  // Non-causal: 4 * b * h * sq * sk * d.
  EXPECT_EQ(attention_flops(1, 1, 2, 3, 5, false), 120.0);
  EXPECT_EQ(attention_flops(2, 3, 2, 3, 5, false), 720.0);
  // Causal, square: halved by convention.
  EXPECT_EQ(attention_flops(1, 1, 4, 4, 1, true), 32.0);
  EXPECT_EQ(attention_flops(4, 16, 1024, 1024, 128, true), 4.0 * 4 * 16 * 1024 * 1024 * 128 / 2);
  // Causal, sq 2 < sk 4: query 0 sees keys 0..2, query 1 sees 0..3: 7 pairs.
  EXPECT_EQ(attention_flops(1, 1, 2, 4, 1, true), 4.0 * 7);
  // Causal, sq 4 > sk 2: queries 0 and 1 see nothing, query 2 sees key 0, query 3 keys 0..1: 3 pairs.
  EXPECT_EQ(attention_flops(1, 1, 4, 2, 1, true), 4.0 * 3);
  EXPECT_EQ(attention_flops(2, 3, 4, 2, 8, true), 4.0 * 3 * 8 * 2 * 3);
}

}  // namespace
