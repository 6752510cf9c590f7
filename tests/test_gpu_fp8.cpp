// GPU tests of FP8 (e4m3) forward against the double-precision CPU reference on the dequantised
// inputs (the e4m3 values times their descale factors). Each run poisons O (16-bit) and LSE with
// NaN, checks that every element was written and no guard byte changed, and compares by relative
// L2 error (O) and absolute error (LSE). Skipped, and reported so by CTest, without an SM90 device.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include <cuda_runtime_api.h>

#include "flash_api.h"
#include "gpu_test_util.h"
#include "host/host_tensor.h"
#include "reference/attention_ref.h"

namespace {

using flash::DataType;
using flash::host::GuardedDeviceBuffer;

// P is quantised to e4m3 (3 mantissa bits) before P V: FlashAttention-3's FP8 kernel measures
// about 2.5e-2 relative L2 against an fp32 reference on the same inputs.
constexpr double kMaxRelL2Fp8 = 4e-2;
// The scores are exact products of e4m3 values, but FP8 wgmma accumulates them with fewer bits than
// fp32 (measured: LSE errors up to 4.3e-3 at d256 with descale factors up to 1.5, 1e-4..1e-3
// without), so the LSE bound is looser than the 16-bit kernels' 1e-3.
constexpr double kMaxLseAbsErrorFp8 = 1e-2;

enum class Descale { kNone, kPerTensor, kPerHead };

struct Fp8Case {
  int head_dim;
  bool causal;
  int batch;
  int heads;
  int heads_k;
  int seqlen_q;
  int seqlen_k;
  Descale descale = Descale::kNone;
  DataType out_dtype = DataType::AUTO;
  // > 0: scores grow towards the first key, by up to `ramp` in units of log2 (the kernel visits the
  // last block first, so every block raises the running max and P reaches 2^offset in each).
  double ramp = 0.0;
  // true: every query weighs two keys and no other: the first the kernel visits (the last key) and,
  // 0.5 log2 units above it, key 0 in the last block visited (replaces the ramp).
  bool two_keys = false;
};

std::string case_name(const Fp8Case& c) {
  std::string name = "d" + std::to_string(c.head_dim) + (c.causal ? "_causal" : "_full") + "_b" +
                     std::to_string(c.batch) + "_h" + std::to_string(c.heads) + "x" + std::to_string(c.heads_k) +
                     "_q" + std::to_string(c.seqlen_q) + "_k" + std::to_string(c.seqlen_k);
  if (c.descale == Descale::kPerTensor) name += "_descale";
  if (c.descale == Descale::kPerHead) name += "_descale_per_head";
  if (c.out_dtype == DataType::FP16) name += "_out_fp16";
  if (c.ramp > 0.0) name += "_ramp";
  if (c.two_keys) name += "_two_keys";
  return name;
}

struct Fp8Result {
  flash::host::ErrorStats out;
  flash::host::ErrorStats lse;
  int64_t unwritten = 0;
  bool guards_intact = true;
};

// Descale factors: distinct per tensor and per (batch, KV head), powers of two and not.
std::vector<float> descale_values(const Fp8Case& c, int tensor) {
  if (c.descale == Descale::kNone) return {};
  if (c.descale == Descale::kPerTensor) return {tensor == 0 ? 0.75f : tensor == 1 ? 1.5f : 0.625f};
  std::vector<float> values(size_t(c.batch) * c.heads_k);
  for (size_t i = 0; i < values.size(); ++i) values[i] = 0.5f + 0.25f * float((i * 3 + tensor) % 5);
  return values;
}

Fp8Result run_fp8(const Fp8Case& c, uint64_t seed) {
  const int d = c.head_dim;
  const int ratio = c.heads / c.heads_k;
  const size_t q_elems = size_t(c.batch) * c.seqlen_q * c.heads * d;
  const size_t kv_elems = size_t(c.batch) * c.seqlen_k * c.heads_k * d;
  const size_t lse_elems = size_t(c.batch) * c.heads * c.seqlen_q;
  std::vector<uint16_t> q_bits, k_bits, v_bits;
  std::vector<double> q_vals, k_vals, v_vals;
  flash::host::fill_random(DataType::FP8_E4M3, q_elems, seed, &q_bits, &q_vals);
  flash::host::fill_random(DataType::FP8_E4M3, kv_elems, seed + 1, &k_bits, &k_vals);
  flash::host::fill_random(DataType::FP8_E4M3, kv_elems, seed + 2, &v_bits, &v_vals);
  if (c.ramp > 0.0 || c.two_keys) {
    // q = 1 in every column and key j the same value in every column (e4m3-rounded), so that with
    // the softmax scale below the scores are set key by key:
    // ramp: key j = 4 (1 - j / seqlen_k): scores fall by about `ramp` (log2 units) from key 0 to
    // the last;
    // two keys: key 0 = 2, the last key = 1.75, every other -16: key 0 scores 0.5 (log2 units)
    // above the last key and the others 35.5 and more below it, so their e4m3 P is 0 and their
    // share of the row sum below 2^-35.
    auto key_value = [&](int j) {
      if (c.two_keys) return j == 0 ? 2.0 : j == c.seqlen_k - 1 ? 1.75 : -16.0;
      return 4.0 * (1.0 - double(j) / c.seqlen_k);
    };
    for (size_t i = 0; i < q_elems; ++i) q_bits[i] = flash::host::encode(DataType::FP8_E4M3, 1.0);
    for (size_t i = 0; i < kv_elems; ++i) {
      k_bits[i] = flash::host::encode(DataType::FP8_E4M3, key_value(int(i / (size_t(c.heads_k) * d)) % c.seqlen_k));
    }
    for (size_t i = 0; i < q_elems; ++i) q_vals[i] = flash::host::decode(DataType::FP8_E4M3, q_bits[i]);
    for (size_t i = 0; i < kv_elems; ++i) k_vals[i] = flash::host::decode(DataType::FP8_E4M3, k_bits[i]);
  }
  // softmax_scale: two keys: 2 log2 units per unit of q.k / d; ramp: a score of q.k = 4 * d
  // (key 0) gives ramp * ln 2 in natural-log units.
  const float softmax_scale = c.two_keys    ? float(2.0 * std::log(2.0) / d)
                              : c.ramp > 0.0 ? float(c.ramp * std::log(2.0) / (4.0 * d))
                                             : 0.0f;

  const std::vector<float> q_desc = descale_values(c, 0), k_desc = descale_values(c, 1), v_desc = descale_values(c, 2);
  auto factor = [&](const std::vector<float>& f, int b, int h_k) -> double {
    if (f.empty()) return 1.0;
    return f.size() == 1 ? f[0] : f[size_t(b) * c.heads_k + h_k];
  };
  // Dequantised inputs for the reference.
  std::vector<double> q_ref(q_elems), k_ref(kv_elems), v_ref(kv_elems);
  for (size_t i = 0; i < q_elems; ++i) {
    const int h = int(i / d) % c.heads;
    const int b = int(i / (size_t(c.seqlen_q) * c.heads * d));
    q_ref[i] = q_vals[i] * factor(q_desc, b, h / ratio);
  }
  for (size_t i = 0; i < kv_elems; ++i) {
    const int h_k = int(i / d) % c.heads_k;
    const int b = int(i / (size_t(c.seqlen_k) * c.heads_k * d));
    k_ref[i] = k_vals[i] * factor(k_desc, b, h_k);
    v_ref[i] = v_vals[i] * factor(v_desc, b, h_k);
  }

  auto device_bytes = [](const std::vector<uint16_t>& bits) {
    return flash::test::device_copy(flash::host::storage_bytes(DataType::FP8_E4M3, bits.data(), bits.size()));
  };
  GuardedDeviceBuffer q = device_bytes(q_bits), k = device_bytes(k_bits), v = device_bytes(v_bits);
  std::vector<GuardedDeviceBuffer> factors;
  for (const std::vector<float>* f : {&q_desc, &k_desc, &v_desc}) {
    factors.push_back(f->empty() ? GuardedDeviceBuffer(4) : flash::test::device_copy(*f));
  }
  GuardedDeviceBuffer out(q_elems * 2);
  GuardedDeviceBuffer lse(lse_elems * sizeof(float));
  out.poison(flash::host::kPoisonNaN);
  lse.poison(flash::host::kPoisonNaN);

  flash::FlashAttentionParams p;
  p.q = q.data();
  p.k = k.data();
  p.v = v.data();
  p.out = out.data();
  p.softmax_lse = static_cast<float*>(lse.data());
  p.batch_size = c.batch;
  p.seqlen_q = c.seqlen_q;
  p.seqlen_k = c.seqlen_k;
  p.num_heads = c.heads;
  p.num_heads_k = c.heads_k;
  p.head_dim = d;
  p.dtype = DataType::FP8_E4M3;
  p.out_dtype = c.out_dtype;
  p.is_causal = c.causal;
  p.softmax_scale = softmax_scale;
  if (c.descale != Descale::kNone) {
    p.q_descale = static_cast<const float*>(factors[0].data());
    p.k_descale = static_cast<const float*>(factors[1].data());
    p.v_descale = static_cast<const float*>(factors[2].data());
    p.descale_per_head = c.descale == Descale::kPerHead;
  }
  const int status = flash::flash_attention_forward(p, nullptr);
  EXPECT_EQ(status, flash::kSuccess) << flash::status_string(status) << ": " << flash::last_error_message();
  flash::host::cuda_check(cudaDeviceSynchronize(), "kernel execution");

  Fp8Result result;
  result.guards_intact = out.guards_intact() && lse.guards_intact();
  std::vector<uint16_t> out_host(q_elems);
  std::vector<float> lse_host(lse_elems);
  out.copy_to_host(out_host.data(), out_host.size() * 2);
  lse.copy_to_host(lse_host.data(), lse_host.size() * sizeof(float));

  flash::reference::Problem problem{c.batch, c.seqlen_q, c.seqlen_k, c.heads, c.heads_k, d, c.causal, softmax_scale};
  std::vector<double> ref_out(q_elems), ref_lse(lse_elems);
  flash::reference::attention_forward(problem, q_ref.data(), k_ref.data(), v_ref.data(), ref_out.data(), ref_lse.data());

  const DataType out_dtype = c.out_dtype == DataType::FP16 ? DataType::FP16 : DataType::BF16;
  std::vector<double> got(q_elems);
  for (size_t i = 0; i < q_elems; ++i) {
    got[i] = flash::host::decode(out_dtype, out_host[i]);
    if (std::isnan(got[i])) ++result.unwritten;
  }
  result.out = flash::host::compare(ref_out.data(), got.data(), q_elems);
  std::vector<double> lse_got(lse_host.begin(), lse_host.end());
  result.lse = flash::host::compare(ref_lse.data(), lse_got.data(), lse_elems);
  return result;
}

class Fp8Gpu : public ::testing::TestWithParam<Fp8Case> {};

TEST_P(Fp8Gpu, MatchesReference) {
  SKIP_WITHOUT_SM90();
  const Fp8Case& c = GetParam();
  const Fp8Result r = run_fp8(c, 4321);
  std::printf("[ measured ] %-60s out rel_l2 %.3e max_abs %.3e | lse max_abs %.3e\n", case_name(c).c_str(),
              r.out.rel_l2, r.out.max_abs, r.lse.max_abs);
  RecordProperty("out_rel_l2", std::to_string(r.out.rel_l2));
  EXPECT_EQ(r.unwritten, 0) << "output elements never written (still NaN)";
  EXPECT_EQ(r.out.nonfinite, 0);
  EXPECT_TRUE(r.guards_intact) << "a guard byte after an output changed";
  EXPECT_LE(r.out.rel_l2, kMaxRelL2Fp8);
  EXPECT_EQ(r.lse.nonfinite, 0);
  EXPECT_LE(r.lse.max_abs, kMaxLseAbsErrorFp8);
}

// Every kernel width and the padded widths between them, masks, tails of every kind, q != k both
// ways, MHA / GQA / MQA, descale per tensor and per (batch, KV head), both output types, and the
// ramp that would saturate P with a larger max offset. Lengths on both sides of the dense_short
// kernels' ranges (launch_plan.h), so that both kernels of d64 and d128 run.
std::vector<Fp8Case> fp8_cases() {
  struct Lengths {
    int batch, seqlen_q, seqlen_k;
  };
  const Lengths lengths[] = {{2, 1, 1}, {1, 17, 17}, {2, 113, 239}, {1, 239, 113}, {1, 1023, 1023}, {1, 128, 2049},
                             {1, 2100, 2100}};
  const int heads[][2] = {{4, 4}, {8, 2}, {6, 1}};
  std::vector<Fp8Case> cases;
  int layout = 0;
  for (int d : {64, 128, 256}) {
    for (bool causal : {false, true}) {
      for (const Lengths& l : lengths) {
        const int* h = heads[layout++ % 3];
        cases.push_back({d, causal, l.batch, h[0], h[1], l.seqlen_q, l.seqlen_k});
      }
    }
  }
  for (int d : {32, 80, 96, 112, 160, 192, 240}) {   // padded onto the next kernel
    cases.push_back({d, d % 64 == 0, 2, 4, 2, 200, 333});
  }
  for (int d : {64, 128, 256}) {
    for (bool causal : {false, true}) {
      cases.push_back({d, causal, 2, 8, 2, 300, 300, Descale::kPerTensor});
      cases.push_back({d, causal, 3, 8, 2, 257, 190, Descale::kPerHead, DataType::FP16});
      cases.push_back({d, causal, 1, 4, 4, 512, 512, Descale::kNone, DataType::FP16});
      cases.push_back({d, causal, 1, 2, 1, 700, 700, Descale::kPerTensor, DataType::AUTO, /*ramp=*/40.0});
    }
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Fp8, Fp8Gpu, ::testing::ValuesIn(fp8_cases()),
                         [](const ::testing::TestParamInfo<Fp8Case>& info) { return case_name(info.param); });

// Prints the case's errors and checks them: every output written, O within max_rel_l2, the LSE
// within the FP8 bound.
void expect_saturation_case(const Fp8Case& c, const Fp8Result& r, double max_rel_l2) {
  std::printf("[ measured ] %-60s out rel_l2 %.3e | lse max_abs %.3e\n", case_name(c).c_str(), r.out.rel_l2,
              r.lse.max_abs);
  EXPECT_EQ(r.unwritten, 0) << case_name(c);
  EXPECT_LE(r.out.rel_l2, max_rel_l2) << case_name(c);
  EXPECT_LE(r.lse.max_abs, kMaxLseAbsErrorFp8) << case_name(c);
}

// P is at most 2^7 = 128 in every block, below e4m3's 448. A steeper ramp (60 log2 units over 1024
// keys, ~7.5 per 128-key block): every block raises the running max by far more than one log2
// unit, so a kernel that quantised P against the previous block's max, or with a max offset above
// log2(448), would clip P at 448 (satfinite) and miss the bound by far.
// At d128 1024 keys run on the dense_short kernel (128-key blocks) and 2240 on the dense one (224-key
// blocks), with the ramp scaled to the same slope per key.
TEST(Fp8GpuSaturation, LargestProbabilityIsExact) {
  SKIP_WITHOUT_SM90();
  for (int keys : {1024, 2240}) {
    const Fp8Case c{128, false, 1, 2, 2, 64, keys, Descale::kNone, DataType::AUTO, 60.0 * keys / 1024};
    expect_saturation_case(c, run_fp8(c, 99), kMaxRelL2Fp8);
  }
}

// A shallow ramp (6 log2 units per 1024 keys: 0.75 per 128-key block, 0.8-1.6 per 224-key block
// once the keys are rounded to e4m3): every block raises the running max by a little, so P
// reaches 2^offset in each. A max offset that let P pass 448 would clip it and miss the bound.
// At d128 1024 keys run on the dense_short kernel (128 keys per block), 2240 on the dense one (224).
TEST(Fp8GpuSaturation, ShallowRampStaysBelowTheLargestE4m3) {
  SKIP_WITHOUT_SM90();
  for (auto [d, keys] : {std::pair{64, 1024}, std::pair{128, 1024}, std::pair{128, 2240}, std::pair{256, 1024}}) {
    const Fp8Case c{d, false, 1, 2, 2, 64, keys, Descale::kNone, DataType::AUTO, 6.0 * keys / 1024};
    expect_saturation_case(c, run_fp8(c, 101), kMaxRelL2Fp8);
  }
}

// The largest P of a block that raises the running max is exact: 2^offset = 128, where e4m3 has no
// rounding. Here each row's softmax is two keys' (weights 1 : 2^0.5), and the second raises the
// max by 0.5. A kernel that let the max lag by up to a threshold (the lazy rescale before session
// 13) exponentiated that key against the stale max: 2^7.5 = 181.02 rounds to 176 in e4m3 and O is
// off by about 2e-2; exact, only O's bf16 rounding is left (relative error at most 2^-9 = 2e-3).
TEST(Fp8GpuSaturation, LargestProbabilityOfEveryBlockIsExact) {
  SKIP_WITHOUT_SM90();
  constexpr double kMaxRelL2 = 3e-3;
  for (auto [d, keys] : {std::pair{64, 1024}, std::pair{128, 1024}, std::pair{128, 2240}, std::pair{256, 1024}}) {
    Fp8Case c{d, false, 1, 2, 2, 64, keys};
    c.two_keys = true;
    expect_saturation_case(c, run_fp8(c, 103), kMaxRelL2);
  }
}

}  // namespace
