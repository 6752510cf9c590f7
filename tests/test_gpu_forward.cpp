// GPU tests of flash_attention_forward against the double-precision CPU reference. Each run
// poisons O and LSE with NaN, checks every element afterwards (a NaN left means an element was
// never written), checks the guard bytes after each output, and compares with the reference by
// relative L2 error. Skipped, and reported so by CTest, without an SM90 device.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
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

using flash::test::kMaxLseAbsError;
using flash::test::kMaxRelL2Bf16;
using flash::test::kMaxRelL2Fp16;
using flash::test::kPoison16;

enum class QkvLayout { kContiguous, kPacked };      // packed: one [b, s, h + 2 h_k, d] buffer
// padded rows: 8 unused elements after each row; padded heads: 8 unused elements after each head,
// which a kernel running a narrower head dim padded must not write.
enum class OutLayout { kContiguous, kPaddedRows, kPaddedHeads };

struct Case {
  DataType dtype;
  int head_dim;
  bool causal;
  int batch;
  int heads;
  int heads_k;
  int seqlen_q;
  int seqlen_k;
  QkvLayout qkv = QkvLayout::kContiguous;
  OutLayout out = OutLayout::kContiguous;
};

std::string case_name(const Case& c) {
  std::string name = std::string(flash::host::dtype_name(c.dtype)) + "_d" + std::to_string(c.head_dim) +
                     (c.causal ? "_causal" : "_full") + "_b" + std::to_string(c.batch) + "_h" +
                     std::to_string(c.heads) + "x" + std::to_string(c.heads_k) + "_q" + std::to_string(c.seqlen_q) +
                     "_k" + std::to_string(c.seqlen_k);
  if (c.qkv == QkvLayout::kPacked) name += "_packedqkv";
  if (c.out == OutLayout::kPaddedRows) name += "_paddedout";
  if (c.out == OutLayout::kPaddedHeads) name += "_paddedheads";
  return name;
}

struct Strides {
  int64_t batch, row, head;
};

int64_t element_offset(const Strides& s, int b, int i, int h) { return b * s.batch + i * s.row + h * s.head; }

// Elements spanned by a [batch, seqlen, heads, d] view with strides s.
int64_t span(const Strides& s, int batch, int seqlen, int heads, int d) {
  return (batch - 1) * s.batch + (seqlen - 1) * s.row + (heads - 1) * s.head + d;
}

// Writes a contiguous [batch, seqlen, heads, d] tensor into the strided view starting at dst[base].
void scatter(const std::vector<uint16_t>& src, int batch, int seqlen, int heads, int d, const Strides& s,
             int64_t base, std::vector<uint16_t>* dst) {
  for (int b = 0; b < batch; ++b)
    for (int i = 0; i < seqlen; ++i)
      for (int h = 0; h < heads; ++h)
        std::memcpy(&(*dst)[base + element_offset(s, b, i, h)], &src[((int64_t(b) * seqlen + i) * heads + h) * d],
                    sizeof(uint16_t) * d);
}

struct RunResult {
  flash::host::ErrorStats out;
  flash::host::ErrorStats lse;
  int64_t unwritten = 0;       // NaN left in O
  int64_t gap_writes = 0;      // elements outside the O view that changed
  bool guards_intact = true;
  std::vector<uint16_t> out_bits;
};

RunResult run_case(const Case& c, uint64_t seed) {
  const int d = c.head_dim;
  const size_t q_elems = size_t(c.batch) * c.seqlen_q * c.heads * d;
  const size_t kv_elems = size_t(c.batch) * c.seqlen_k * c.heads_k * d;
  std::vector<uint16_t> q_bits, k_bits, v_bits;
  std::vector<double> q_vals, k_vals, v_vals;
  flash::host::fill_random(c.dtype, q_elems, seed, &q_bits, &q_vals);
  flash::host::fill_random(c.dtype, kv_elems, seed + 1, &k_bits, &k_vals);
  flash::host::fill_random(c.dtype, kv_elems, seed + 2, &v_bits, &v_vals);

  // Input views.
  Strides qs{int64_t(c.seqlen_q) * c.heads * d, int64_t(c.heads) * d, d};
  Strides ks{int64_t(c.seqlen_k) * c.heads_k * d, int64_t(c.heads_k) * d, d};
  Strides vs = ks;
  int64_t k_base = 0, v_base = 0;
  std::vector<uint16_t> qkv_host;
  if (c.qkv == QkvLayout::kPacked) {
    const int total_heads = c.heads + 2 * c.heads_k;
    const Strides packed{int64_t(c.seqlen_q) * total_heads * d, int64_t(total_heads) * d, d};
    qs = ks = vs = packed;
    k_base = int64_t(c.heads) * d;
    v_base = int64_t(c.heads + c.heads_k) * d;
    qkv_host.assign(size_t(c.batch) * c.seqlen_q * total_heads * d, 0);
    scatter(q_bits, c.batch, c.seqlen_q, c.heads, d, packed, 0, &qkv_host);
    scatter(k_bits, c.batch, c.seqlen_k, c.heads_k, d, packed, k_base, &qkv_host);
    scatter(v_bits, c.batch, c.seqlen_k, c.heads_k, d, packed, v_base, &qkv_host);
  }
  const int64_t out_row_pad = c.out == OutLayout::kPaddedRows ? 8 : 0;
  const int64_t out_head_stride = c.out == OutLayout::kPaddedHeads ? d + 8 : d;
  const int64_t out_row_stride = int64_t(c.heads) * out_head_stride + out_row_pad;
  const Strides os{int64_t(c.seqlen_q) * out_row_stride, out_row_stride, out_head_stride};
  const int64_t out_span = span(os, c.batch, c.seqlen_q, c.heads, d);
  const size_t lse_elems = size_t(c.batch) * c.heads * c.seqlen_q;

  std::vector<GuardedDeviceBuffer> inputs;
  const void *q_ptr, *k_ptr, *v_ptr;
  if (c.qkv == QkvLayout::kPacked) {
    inputs.emplace_back(qkv_host.size() * 2);
    inputs[0].copy_from_host(qkv_host.data(), qkv_host.size() * 2);
    const auto* base = static_cast<const uint16_t*>(inputs[0].data());
    q_ptr = base;
    k_ptr = base + k_base;
    v_ptr = base + v_base;
  } else {
    inputs.emplace_back(q_elems * 2);
    inputs.emplace_back(kv_elems * 2);
    inputs.emplace_back(kv_elems * 2);
    inputs[0].copy_from_host(q_bits.data(), q_elems * 2);
    inputs[1].copy_from_host(k_bits.data(), kv_elems * 2);
    inputs[2].copy_from_host(v_bits.data(), kv_elems * 2);
    q_ptr = inputs[0].data();
    k_ptr = inputs[1].data();
    v_ptr = inputs[2].data();
  }
  GuardedDeviceBuffer out(size_t(out_span) * 2);
  GuardedDeviceBuffer lse(lse_elems * sizeof(float));
  out.poison(flash::host::kPoisonNaN);
  lse.poison(flash::host::kPoisonNaN);

  flash::FlashAttentionParams p;
  p.q = q_ptr;
  p.k = k_ptr;
  p.v = v_ptr;
  p.out = out.data();
  p.softmax_lse = static_cast<float*>(lse.data());
  p.batch_size = c.batch;
  p.seqlen_q = c.seqlen_q;
  p.seqlen_k = c.seqlen_k;
  p.num_heads = c.heads;
  p.num_heads_k = c.heads_k;
  p.head_dim = d;
  p.dtype = c.dtype;
  p.is_causal = c.causal;
  p.q_batch_stride = qs.batch, p.q_row_stride = qs.row, p.q_head_stride = qs.head;
  p.k_batch_stride = ks.batch, p.k_row_stride = ks.row, p.k_head_stride = ks.head;
  p.v_batch_stride = vs.batch, p.v_row_stride = vs.row, p.v_head_stride = vs.head;
  p.out_batch_stride = os.batch, p.out_row_stride = os.row, p.out_head_stride = os.head;
  const int status = flash::flash_attention_forward(p, nullptr);
  EXPECT_EQ(status, flash::kSuccess) << flash::status_string(status) << ": " << flash::last_error_message();
  flash::host::cuda_check(cudaDeviceSynchronize(), "kernel execution");

  RunResult result;
  result.guards_intact = out.guards_intact() && lse.guards_intact();
  std::vector<uint16_t> out_host(out_span);
  std::vector<float> lse_host(lse_elems);
  out.copy_to_host(out_host.data(), out_host.size() * 2);
  lse.copy_to_host(lse_host.data(), lse_host.size() * sizeof(float));

  flash::reference::Problem problem{c.batch, c.seqlen_q, c.seqlen_k, c.heads, c.heads_k, d, c.causal, 0.0};
  std::vector<double> ref_out(q_elems), ref_lse(lse_elems);
  flash::reference::attention_forward(problem, q_vals.data(), k_vals.data(), v_vals.data(), ref_out.data(),
                                      ref_lse.data());

  std::vector<double> got(q_elems);
  std::vector<bool> in_view(out_span, false);
  for (int b = 0; b < c.batch; ++b)
    for (int i = 0; i < c.seqlen_q; ++i)
      for (int h = 0; h < c.heads; ++h)
        for (int e = 0; e < d; ++e) {
          const int64_t o = element_offset(os, b, i, h) + e;
          in_view[o] = true;
          const uint16_t bits = out_host[o];
          const double value = flash::host::decode(c.dtype, bits);
          if (std::isnan(value)) ++result.unwritten;
          got[((int64_t(b) * c.seqlen_q + i) * c.heads + h) * d + e] = value;
        }
  for (int64_t o = 0; o < out_span; ++o)
    if (!in_view[o] && out_host[o] != kPoison16) ++result.gap_writes;
  result.out = flash::host::compare(ref_out.data(), got.data(), q_elems);
  std::vector<double> lse_got(lse_host.begin(), lse_host.end());
  result.lse = flash::host::compare(ref_lse.data(), lse_got.data(), lse_elems);
  result.out_bits = std::move(out_host);
  return result;
}

class ForwardGpu : public ::testing::TestWithParam<Case> {};

TEST_P(ForwardGpu, MatchesReference) {
  SKIP_WITHOUT_SM90();
  const Case& c = GetParam();
  const RunResult r = run_case(c, 1234);
  const double bound = c.dtype == DataType::FP16 ? kMaxRelL2Fp16 : kMaxRelL2Bf16;
  std::printf("[ measured ] %-60s out rel_l2 %.3e max_abs %.3e | lse max_abs %.3e\n", case_name(c).c_str(),
              r.out.rel_l2, r.out.max_abs, r.lse.max_abs);
  RecordProperty("out_rel_l2", std::to_string(r.out.rel_l2));
  RecordProperty("lse_max_abs", std::to_string(r.lse.max_abs));
  EXPECT_EQ(r.unwritten, 0) << "output elements never written (still NaN)";
  EXPECT_EQ(r.out.nonfinite, 0);
  EXPECT_EQ(r.gap_writes, 0) << "elements outside the output view were written";
  EXPECT_TRUE(r.guards_intact) << "a guard byte after an output changed";
  EXPECT_LE(r.out.rel_l2, bound);
  EXPECT_EQ(r.lse.nonfinite, 0);
  EXPECT_LE(r.lse.max_abs, kMaxLseAbsError);
}

// Seqlens that break naive kernels (tails of every kind, one row, longer than one tile, q != k both
// ways), with MHA, GQA and MQA head layouts in turn.
std::vector<Case> forward_cases() {
  struct Lengths {
    int batch, seqlen_q, seqlen_k;
  };
  const Lengths lengths[] = {{2, 1, 1},     {2, 17, 17},     {2, 113, 239}, {2, 239, 113},  {2, 128, 128},
                             {1, 1, 1023},  {1, 1023, 1023}, {1, 2049, 2049}, {1, 17, 2049}, {1, 2049, 113}};
  struct Heads {
    int heads, heads_k;
  };
  const Heads heads[] = {{4, 4}, {4, 2}, {3, 1}};   // MHA, GQA, MQA
  std::vector<Case> cases;
  int turn = 0;
  // Head dims without a kernel of their own run padded on the next wider one.
  for (DataType dtype : {DataType::FP16, DataType::BF16})
    for (int head_dim : {8, 40, 72, 80, 96, 136, 200})
      for (bool causal : {false, true}) {
        cases.push_back({dtype, head_dim, causal, 2, 4, 2, 113, 239, QkvLayout::kContiguous, OutLayout::kPaddedHeads});
        cases.push_back({dtype, head_dim, causal, 3, 8, 2, 1500, 700});
      }
  for (DataType dtype : {DataType::FP16, DataType::BF16})
    for (int head_dim : {64, 128, 256})
      for (bool causal : {false, true}) {
        for (const Lengths& l : lengths) {
          const Heads& h = heads[turn++ % 3];
          cases.push_back({dtype, head_dim, causal, l.batch, h.heads, h.heads_k, l.seqlen_q, l.seqlen_k});
        }
        // Views: packed QKV (self-attention) and an output with padded rows.
        cases.push_back({dtype, head_dim, causal, 2, 4, 2, 300, 300, QkvLayout::kPacked, OutLayout::kPaddedRows});
        // More tiles than SMs, so each persistent CTA runs several; with causal and seqlen_q >
        // seqlen_k, tiles whose rows see no key fall between ordinary ones.
        cases.push_back({dtype, head_dim, causal, 3, 8, 2, 1500, 700});
      }
  // Causal with more tiles than SMs runs the scheduler's paired order: an odd count of query
  // blocks (11 of 128 rows, 7 of 192) and an odd number of heads (21) pair middle blocks across
  // heads and leave empty slots.
  for (DataType dtype : {DataType::FP16, DataType::BF16})
    for (int head_dim : {64, 128, 256}) cases.push_back({dtype, head_dim, true, 3, 7, 7, 1300, 1300});
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Grid, ForwardGpu, ::testing::ValuesIn(forward_cases()),
                         [](const ::testing::TestParamInfo<Case>& info) { return case_name(info.param); });

// Two runs on the same inputs give the same bits: a race would show as a difference. The shape
// has more tiles than SMs, so persistent CTAs run several tiles each.
TEST(ForwardGpuDeterminism, SameBitsTwice) {
  SKIP_WITHOUT_SM90();
  // d64 causal: 1000 tokens run on the dense_short kernel (128-row tiles), 1100 on the dense one
  // (192); non-causal d64 runs the dense one at both.
  for (auto [head_dim, seqlen] : {std::pair{64, 1000}, std::pair{64, 1100}, std::pair{128, 1000}, std::pair{256, 1000}}) {
    for (bool causal : {true, false}) {
      const Case c{DataType::BF16, head_dim, causal, 4, 8, 2, seqlen, seqlen};
      const RunResult a = run_case(c, 99);
      const RunResult b = run_case(c, 99);
      EXPECT_EQ(a.out_bits, b.out_bits) << "head_dim " << head_dim << " seqlen " << seqlen << " causal " << causal;
    }
  }
}

// A call rejected by validation writes nothing: the poisoned output and LSE keep every byte.
TEST(ForwardGpuRejected, WritesNothing) {
  SKIP_WITHOUT_SM90();
  const int b = 1, s = 256, h = 2, d = 128;
  const size_t elems = size_t(b) * s * h * d;
  GuardedDeviceBuffer q(elems * 2), k(elems * 2), v(elems * 2), out(elems * 2), lse(size_t(b) * h * s * 4);
  for (GuardedDeviceBuffer* buf : {&q, &k, &v}) buf->poison(0x3C);   // 0x3C3C: a finite value
  out.poison(flash::host::kPoisonNaN);
  lse.poison(flash::host::kPoisonNaN);
  flash::FlashAttentionParams p;
  p.q = q.data(), p.k = k.data(), p.v = v.data(), p.out = out.data();
  p.softmax_lse = static_cast<float*>(lse.data());
  p.batch_size = b, p.seqlen_q = s, p.seqlen_k = s, p.num_heads = h, p.num_heads_k = h, p.head_dim = d;
  p.dtype = DataType::BF16;
  p.out_row_stride = h * d + 4;   // 8 bytes: not a multiple of 16
  EXPECT_EQ(flash::flash_attention_forward(p, nullptr), flash::kErrorMisalignedStride);
  flash::host::cuda_check(cudaDeviceSynchronize(), "sync");
  std::vector<uint8_t> out_host(elems * 2), lse_host(size_t(b) * h * s * 4);
  out.copy_to_host(out_host.data(), out_host.size());
  lse.copy_to_host(lse_host.data(), lse_host.size());
  for (uint8_t byte : out_host) ASSERT_EQ(byte, flash::host::kPoisonNaN);
  for (uint8_t byte : lse_host) ASSERT_EQ(byte, flash::host::kPoisonNaN);
  EXPECT_TRUE(out.guards_intact() && lse.guards_intact());
}

}  // namespace
