// GPU tests of the serving features of flash_attention_forward against the double-precision CPU
// reference: variable-length (packed) batches, seqused_k, sliding windows, softcap, the head dims
// 80, 96 and 192 and the padded head dims routed to them, and rejected serving arguments.
//
// As in test_gpu_forward.cpp, each run poisons O and LSE with NaN and afterwards checks every
// element of both against the reference (a NaN left means an element was never written), the
// guard bytes after each buffer, and that nothing outside the rows the batch entries own changed:
// rows before the first and after the last packed sequence, and the padding after each output row.
// Skipped, and reported so by CTest, without an SM90 device.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <ostream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <cuda_runtime_api.h>

#include "api/launch_plan.h"
#include "api/validate.h"
#include "flash_api.h"
#include "gpu_test_util.h"
#include "host/host_tensor.h"
#include "reference/attention_ref.h"

namespace {

using flash::DataType;
using flash::host::GuardedDeviceBuffer;
using flash::test::device_copy;
using flash::test::kMaxLseAbsError;
using flash::test::kPoison16;
using flash::test::max_rel_l2;

constexpr uint32_t kPoison32 = 0xFFFFFFFFu;   // an fp32 LSE entry never written
constexpr double kMinusInf = -std::numeric_limits<double>::infinity();
// Softcap cases drive raw scores far past the cap, so that the uncapped result differs from the
// capped one by far more than the tolerance: a kernel ignoring softcap must fail.
constexpr double kMinSoftcapEffect = 0.1;    // rel. L2 between the uncapped and capped references
constexpr double kMinUncappedLse = 40.0;     // the uncapped LSE (>= the row's largest score) reaches this
// The reference with seqused_k and the reference on truncated K/V do the same arithmetic.
constexpr double kMaxSeqUsedMemberDiff = 1e-12;

// One call: shape, layout and the serving options.
struct Case {
  std::string tag;   // what the case is for; case_name adds dtype, head dim, heads and options
  DataType dtype = DataType::FP16;
  int head_dim = 64;
  int heads = 4;
  int heads_k = 4;
  bool causal = false;
  int window_left = -1;
  int window_right = -1;
  float softcap = 0.0f;
  float softmax_scale = 0.0f;   // 0: 1 / sqrt(head_dim)
  int q_scale = 1;              // power of two multiplying every Q element (exact): large scores
  bool varlen = false;          // packed [total, heads, d] with cu_seqlens; else dense [batch, seqlen, heads, d]
  std::vector<int> lens_q, lens_k;   // per batch entry (dense: all equal)
  std::vector<int> seqused_k;        // per batch entry; empty: every key
  int lead_rows = 0;     // varlen: rows of each packed tensor before the first entry (owned by none)
  int trail_rows = 0;    // varlen: rows after the last entry
  int out_row_pad = 0;   // unused elements after each output row
  // Expectations beyond matching the reference:
  bool expect_no_window = false;    // the window covers every key: the reference runs without it
  bool expect_empty_rows = false;   // some query rows see no key (output 0, LSE -inf)
  bool expect_large_scores = false; // raw scores reach ~50 (softcap cases)
};

std::string case_name(const Case& c) {
  std::string name = c.tag + "_" + flash::host::dtype_name(c.dtype) + "_d" + std::to_string(c.head_dim) + "_h" +
                     std::to_string(c.heads) + "x" + std::to_string(c.heads_k);
  if (c.causal) name += "_causal";
  if (c.window_left >= 0) name += "_wl" + std::to_string(c.window_left);
  if (c.window_right >= 0) name += "_wr" + std::to_string(c.window_right);
  if (c.softcap > 0.0f) name += "_cap" + std::to_string(static_cast<int>(c.softcap));
  return name;
}

void PrintTo(const Case& c, std::ostream* os) { *os << case_name(c); }

Case dense_case(std::string tag, DataType dtype, int head_dim, int batch, int seqlen_q, int seqlen_k, int heads,
                int heads_k, bool causal) {
  Case c;
  c.tag = std::move(tag);
  c.dtype = dtype;
  c.head_dim = head_dim;
  c.heads = heads;
  c.heads_k = heads_k;
  c.causal = causal;
  c.lens_q.assign(batch, seqlen_q);
  c.lens_k.assign(batch, seqlen_k);
  return c;
}

Case varlen_case(std::string tag, DataType dtype, int head_dim, std::vector<int> lens_q, std::vector<int> lens_k,
                 int heads, int heads_k, bool causal) {
  Case c;
  c.tag = std::move(tag);
  c.dtype = dtype;
  c.head_dim = head_dim;
  c.heads = heads;
  c.heads_k = heads_k;
  c.causal = causal;
  c.varlen = true;
  c.lens_q = std::move(lens_q);
  c.lens_k = std::move(lens_k);
  return c;
}

// Mixed lengths: an entry with no queries, one with no keys, one-token entries, lengths on both
// sides of the tile sizes (64, 128, 176, 192), seqlen_q != seqlen_k in most entries, both ways.
const std::vector<int> kMixedQ = {65, 0, 1, 128, 129, 300, 63, 1000, 1, 127, 64, 17};
const std::vector<int> kMixedK = {65, 40, 0, 127, 1000, 129, 64, 300, 1, 128, 63, 5};
// Many short entries (vision-encoder windows, short chat turns), an empty one, two with q != k.
const std::vector<int> kShortQ = {64, 64, 48, 64, 1, 0, 64, 16, 200, 129};
const std::vector<int> kShortK = {64, 64, 48, 64, 1, 0, 64, 16, 77, 300};

// ---------------------------------------------------------------------------------------------
// Running one case.

// Where each entry's rows are. The checks and the reference use the compact layout: q and out
// [sum_q, heads, d] (entry b's rows from cu_q[b]), k and v [sum_k, heads_k, d], LSE [heads, sum_q].
// The device tensors are the compact ones (dense: [batch, seqlen, heads, d] is the same memory)
// with lead_rows before and trail_rows after them (varlen only).
struct Geometry {
  int batch = 0;
  std::vector<int> cu_q, cu_k;     // compact prefix sums, batch + 1 each
  std::vector<int> used_k;         // keys each entry attends to: seqused_k clamped to its keys
  std::vector<int> cu_used_k;      // prefix sums of used_k (truncated K/V)
  int sum_q = 0, sum_k = 0;
  int max_q = 0, max_k = 0;
  int lead = 0;                    // device row of compact row 0
  int64_t rows_q = 0, rows_k = 0;  // rows of the device tensors
};

Geometry make_geometry(const Case& c) {
  Geometry g;
  g.batch = static_cast<int>(c.lens_q.size());
  g.cu_q.assign(1, 0);
  g.cu_k.assign(1, 0);
  g.cu_used_k.assign(1, 0);
  for (int b = 0; b < g.batch; ++b) {
    g.cu_q.push_back(g.cu_q.back() + c.lens_q[b]);
    g.cu_k.push_back(g.cu_k.back() + c.lens_k[b]);
    const int used = c.seqused_k.empty() ? c.lens_k[b] : std::clamp(c.seqused_k[b], 0, c.lens_k[b]);
    g.used_k.push_back(used);
    g.cu_used_k.push_back(g.cu_used_k.back() + used);
    g.max_q = std::max(g.max_q, c.lens_q[b]);
    g.max_k = std::max(g.max_k, c.lens_k[b]);
  }
  g.sum_q = g.cu_q.back();
  g.sum_k = g.cu_k.back();
  g.lead = c.varlen ? c.lead_rows : 0;
  const int extra = c.varlen ? c.lead_rows + c.trail_rows : 0;
  g.rows_q = int64_t{g.sum_q} + extra;
  g.rows_k = int64_t{g.sum_k} + extra;
  return g;
}

struct Inputs {
  std::vector<uint16_t> q_dev, k_dev, v_dev;   // the device tensors' elements
  std::vector<double> q, k, v;                 // compact values
};

// Random rows: the compact tensors from seed, seed + 1, seed + 2 (so equal shapes give equal
// inputs in dense and packed layouts), the rows no entry owns from other seeds. Those hold finite
// values: a kernel reads past an entry's last key (masked, times P = 0), so NaN there would spoil
// a correct result.
Inputs make_inputs(const Case& c, const Geometry& g, uint64_t seed) {
  const int d = c.head_dim;
  const int64_t q_row = int64_t{c.heads} * d, kv_row = int64_t{c.heads_k} * d;
  Inputs in;
  std::vector<uint16_t> q_bits, k_bits, v_bits;
  flash::host::fill_random(c.dtype, size_t(g.sum_q * q_row), seed, &q_bits, &in.q);
  flash::host::fill_random(c.dtype, size_t(g.sum_k * kv_row), seed + 1, &k_bits, &in.k);
  flash::host::fill_random(c.dtype, size_t(g.sum_k * kv_row), seed + 2, &v_bits, &in.v);
  if (c.q_scale != 1) {
    for (size_t e = 0; e < in.q.size(); ++e) {
      const double scaled = in.q[e] * c.q_scale;
      q_bits[e] = flash::host::encode(c.dtype, scaled);
      in.q[e] = flash::host::decode(c.dtype, q_bits[e]);
      if (in.q[e] != scaled) throw std::runtime_error("q_scale must scale the inputs exactly");
    }
  }
  auto with_margins = [&](const std::vector<uint16_t>& body, int64_t row, uint64_t margin_seed) {
    std::vector<uint16_t> lead, trail;
    const int lead_rows = c.varlen ? c.lead_rows : 0, trail_rows = c.varlen ? c.trail_rows : 0;
    if (lead_rows > 0) flash::host::fill_random(c.dtype, size_t(lead_rows * row), margin_seed, &lead, nullptr);
    if (trail_rows > 0) flash::host::fill_random(c.dtype, size_t(trail_rows * row), margin_seed + 1, &trail, nullptr);
    std::vector<uint16_t> all(lead);
    all.insert(all.end(), body.begin(), body.end());
    all.insert(all.end(), trail.begin(), trail.end());
    return all;
  };
  in.q_dev = with_margins(q_bits, q_row, seed + 10);
  in.k_dev = with_margins(k_bits, kv_row, seed + 12);
  in.v_dev = with_margins(v_bits, kv_row, seed + 14);
  return in;
}

struct RefResult {
  std::vector<double> out;   // [sum_q, heads, d]
  std::vector<double> lse;   // [heads, sum_q]
};

enum class RefMode {
  kTruncated,      // keys beyond seqused_k removed from K/V (the expectation of every case)
  kSeqUsedMember,  // full K/V and Problem::seqused_k (cross-check of the reference)
};

// The reference in the compact layout. Without seqused_k a dense case runs the dense reference;
// otherwise the packed one, on K/V truncated to the keys used (kTruncated) or with seqused_k.
RefResult reference(const Case& c, const Geometry& g, const Inputs& in, bool with_softcap, RefMode mode) {
  flash::reference::Problem p;
  p.batch = g.batch;
  p.num_heads = c.heads;
  p.num_heads_k = c.heads_k;
  p.head_dim = c.head_dim;
  p.is_causal = c.causal;
  p.softmax_scale = c.softmax_scale;
  if (!c.expect_no_window) {
    p.window_left = c.window_left;
    p.window_right = c.window_right;
  }
  p.softcap = with_softcap ? c.softcap : 0.0;
  const int d = c.head_dim;
  const int64_t kv_row = int64_t{c.heads_k} * d;
  const bool truncate = mode == RefMode::kTruncated && !c.seqused_k.empty();
  const bool packed = c.varlen || truncate;
  std::vector<double> k_used, v_used;
  const double* k = in.k.data();
  const double* v = in.v.data();
  if (packed) {
    p.cu_seqlens_q = g.cu_q;
    p.cu_seqlens_k = truncate ? g.cu_used_k : g.cu_k;
  } else {
    p.seqlen_q = g.max_q;
    p.seqlen_k = g.max_k;
  }
  if (mode == RefMode::kSeqUsedMember) p.seqused_k = c.seqused_k;
  if (truncate) {
    for (int b = 0; b < g.batch; ++b) {
      const auto first = in.k.begin() + g.cu_k[b] * kv_row;
      const auto first_v = in.v.begin() + g.cu_k[b] * kv_row;
      k_used.insert(k_used.end(), first, first + g.used_k[b] * kv_row);
      v_used.insert(v_used.end(), first_v, first_v + g.used_k[b] * kv_row);
    }
    k = k_used.data();
    v = v_used.data();
  }
  RefResult r;
  r.out.assign(size_t(g.sum_q) * c.heads * d, 0.0);
  std::vector<double> lse(size_t(g.sum_q) * c.heads, 0.0);
  flash::reference::attention_forward(p, in.q.data(), k, v, r.out.data(), lse.data());
  if (packed) {
    r.lse = std::move(lse);
  } else {   // dense [batch, heads, seqlen_q] -> [heads, sum_q]
    r.lse.assign(lse.size(), 0.0);
    const int s = g.max_q;
    for (int b = 0; b < g.batch; ++b)
      for (int h = 0; h < c.heads; ++h)
        for (int i = 0; i < s; ++i) r.lse[size_t(h) * g.sum_q + g.cu_q[b] + i] = lse[(size_t(b) * c.heads + h) * s + i];
  }
  return r;
}

struct RunResult {
  int status = -1;
  std::string message;
  flash::host::ErrorStats out;
  flash::host::ErrorStats lse;
  int64_t unwritten = 0;          // NaN left in owned output elements
  int64_t out_gap_writes = 0;     // output elements of no entry (margin rows, row padding) that changed
  int64_t lse_gap_writes = 0;     // LSE entries of rows of no entry that changed
  int64_t empty_rows = 0;         // (row, head) pairs that see no key (reference LSE -inf)
  int64_t empty_row_errors = 0;   // of those, rows whose output is not all 0 or whose LSE is not -inf
  bool guards_intact = true;
  std::vector<uint16_t> out_bits;   // compact [sum_q, heads, d]
  std::vector<uint32_t> lse_bits;   // compact [heads, sum_q]
  double uncapped_out_rel_l2 = 0.0;   // softcap: uncapped against capped reference
  double uncapped_lse_max = 0.0;      // softcap: largest finite LSE of the uncapped reference
  double seqused_member_diff = 0.0;   // seqused_k: reference with seqused_k against truncated K/V
};

RunResult run_case(const Case& c, uint64_t seed) {
  const Geometry g = make_geometry(c);
  const Inputs in = make_inputs(c, g, seed);
  const int d = c.head_dim;
  const int heads = c.heads;
  const int64_t out_row_stride = int64_t{heads} * d + c.out_row_pad;
  const int64_t out_elems = g.rows_q * out_row_stride;
  const int64_t lse_elems = g.rows_q * heads;   // dense [batch, heads, seqlen_q]; varlen [heads, total_q]

  GuardedDeviceBuffer q = device_copy(in.q_dev), k = device_copy(in.k_dev), v = device_copy(in.v_dev);
  GuardedDeviceBuffer out(size_t(out_elems) * 2);
  GuardedDeviceBuffer lse(size_t(lse_elems) * sizeof(float));
  out.poison(flash::host::kPoisonNaN);
  lse.poison(flash::host::kPoisonNaN);

  flash::FlashAttentionParams p;
  p.q = q.data();
  p.k = k.data();
  p.v = v.data();
  p.out = out.data();
  p.softmax_lse = static_cast<float*>(lse.data());
  p.batch_size = g.batch;
  p.num_heads = heads;
  p.num_heads_k = c.heads_k;
  p.head_dim = d;
  p.dtype = c.dtype;
  p.is_causal = c.causal;
  p.softmax_scale = c.softmax_scale;
  p.window_size_left = c.window_left;
  p.window_size_right = c.window_right;
  p.softcap = c.softcap;
  p.seqlen_q = g.max_q;
  p.seqlen_k = g.max_k;
  p.out_row_stride = out_row_stride;
  std::vector<GuardedDeviceBuffer> int_arrays;
  int_arrays.reserve(3);
  if (c.varlen) {
    std::vector<int32_t> cu_q(g.cu_q), cu_k(g.cu_k);
    for (int32_t& offset : cu_q) offset += g.lead;
    for (int32_t& offset : cu_k) offset += g.lead;
    int_arrays.push_back(device_copy(cu_q));
    p.cu_seqlens_q = static_cast<const int32_t*>(int_arrays.back().data());
    int_arrays.push_back(device_copy(cu_k));
    p.cu_seqlens_k = static_cast<const int32_t*>(int_arrays.back().data());
    p.total_q = static_cast<int>(g.rows_q);
    p.total_k = static_cast<int>(g.rows_k);
  } else {
    p.out_batch_stride = int64_t{g.max_q} * out_row_stride;
  }
  if (!c.seqused_k.empty()) {
    int_arrays.push_back(device_copy(std::vector<int32_t>(c.seqused_k.begin(), c.seqused_k.end())));
    p.seqused_k = static_cast<const int32_t*>(int_arrays.back().data());
  }

  RunResult result;
  result.status = flash::flash_attention_forward(p, nullptr);
  if (result.status != flash::kSuccess) {
    result.message = flash::last_error_message();
    return result;
  }
  flash::host::cuda_check(cudaDeviceSynchronize(), "kernel execution");
  result.guards_intact = out.guards_intact() && lse.guards_intact() && q.guards_intact() && k.guards_intact() &&
                         v.guards_intact();
  for (const GuardedDeviceBuffer& array : int_arrays) result.guards_intact = result.guards_intact && array.guards_intact();
  std::vector<uint16_t> out_host(out_elems);
  std::vector<uint32_t> lse_host(lse_elems);
  out.copy_to_host(out_host.data(), out_host.size() * 2);
  lse.copy_to_host(lse_host.data(), lse_host.size() * sizeof(uint32_t));

  const RefResult ref = reference(c, g, in, /*with_softcap=*/true, RefMode::kTruncated);

  // Owned elements into the compact layout; everything else must still hold the poison.
  const size_t compact_out = size_t(g.sum_q) * heads * d;
  result.out_bits.assign(compact_out, 0);
  result.lse_bits.assign(size_t(g.sum_q) * heads, 0);
  std::vector<double> got(compact_out), got_lse(result.lse_bits.size());
  std::vector<bool> owned_out(out_elems, false), owned_lse(lse_elems, false);
  for (int b = 0; b < g.batch; ++b)
    for (int i = 0; i < c.lens_q[b]; ++i) {
      const int row = g.cu_q[b] + i;           // compact row
      const int64_t dev_row = g.lead + row;    // device row
      for (int h = 0; h < heads; ++h) {
        for (int e = 0; e < d; ++e) {
          const int64_t o = dev_row * out_row_stride + int64_t{h} * d + e;
          const size_t compact = (size_t(row) * heads + h) * d + e;
          owned_out[o] = true;
          result.out_bits[compact] = out_host[o];
          got[compact] = flash::host::decode(c.dtype, out_host[o]);
          if (std::isnan(got[compact])) ++result.unwritten;
        }
        const int64_t l = c.varlen ? int64_t{h} * g.rows_q + dev_row : (int64_t{b} * heads + h) * g.max_q + i;
        const size_t compact_l = size_t(h) * g.sum_q + row;
        owned_lse[l] = true;
        result.lse_bits[compact_l] = lse_host[l];
        float value;
        std::memcpy(&value, &lse_host[l], sizeof(value));
        got_lse[compact_l] = value;
      }
    }
  for (int64_t o = 0; o < out_elems; ++o)
    if (!owned_out[o] && out_host[o] != kPoison16) ++result.out_gap_writes;
  for (int64_t l = 0; l < lse_elems; ++l)
    if (!owned_lse[l] && lse_host[l] != kPoison32) ++result.lse_gap_writes;
  result.out = flash::host::compare(ref.out.data(), got.data(), compact_out);
  result.lse = flash::host::compare(ref.lse.data(), got_lse.data(), got_lse.size());

  // Rows that see no key: output exactly 0, LSE -inf.
  for (int h = 0; h < heads; ++h)
    for (int row = 0; row < g.sum_q; ++row) {
      const size_t l = size_t(h) * g.sum_q + row;
      if (ref.lse[l] != kMinusInf) continue;
      ++result.empty_rows;
      bool ok = got_lse[l] == kMinusInf;
      for (int e = 0; e < d; ++e) ok = ok && got[(size_t(row) * heads + h) * d + e] == 0.0;
      if (!ok) ++result.empty_row_errors;
    }

  if (c.softcap > 0.0f) {
    const RefResult uncapped = reference(c, g, in, /*with_softcap=*/false, RefMode::kTruncated);
    result.uncapped_out_rel_l2 = flash::host::compare(ref.out.data(), uncapped.out.data(), compact_out).rel_l2;
    for (double value : uncapped.lse)
      if (std::isfinite(value)) result.uncapped_lse_max = std::max(result.uncapped_lse_max, value);
  }
  if (!c.seqused_k.empty()) {
    const RefResult member = reference(c, g, in, /*with_softcap=*/true, RefMode::kSeqUsedMember);
    const auto out_diff = flash::host::compare(ref.out.data(), member.out.data(), compact_out);
    const auto lse_diff = flash::host::compare(ref.lse.data(), member.lse.data(), member.lse.size());
    result.seqused_member_diff = std::max(out_diff.max_abs, lse_diff.max_abs);
    if (out_diff.nonfinite + lse_diff.nonfinite > 0) result.seqused_member_diff = std::numeric_limits<double>::infinity();
  }
  return result;
}

// Every check on one run; returns false (after recording the failures) when the call was rejected.
bool expect_matches_reference(const Case& c, const RunResult& r) {
  EXPECT_EQ(r.status, flash::kSuccess) << flash::status_string(r.status) << ": " << r.message;
  if (r.status != flash::kSuccess) return false;
  std::printf("[ measured ] %-64s out rel_l2 %.3e max_abs %.3e | lse max_abs %.3e | empty rows %lld\n",
              case_name(c).c_str(), r.out.rel_l2, r.out.max_abs, r.lse.max_abs, static_cast<long long>(r.empty_rows));
  ::testing::Test::RecordProperty("out_rel_l2", std::to_string(r.out.rel_l2));
  ::testing::Test::RecordProperty("lse_max_abs", std::to_string(r.lse.max_abs));
  EXPECT_EQ(r.unwritten, 0) << "output elements never written (still NaN)";
  EXPECT_EQ(r.out.nonfinite, 0);
  EXPECT_EQ(r.out_gap_writes, 0) << "output elements of no batch entry (margin rows, row padding) were written";
  EXPECT_EQ(r.lse_gap_writes, 0) << "LSE entries of rows of no batch entry were written";
  EXPECT_TRUE(r.guards_intact) << "a guard byte after a buffer changed";
  EXPECT_LE(r.out.rel_l2, max_rel_l2(c.dtype));
  EXPECT_EQ(r.lse.nonfinite, 0);
  EXPECT_LE(r.lse.max_abs, kMaxLseAbsError);
  EXPECT_EQ(r.empty_row_errors, 0) << "rows that see no key must get output 0 and LSE -inf";
  if (c.expect_empty_rows) {
    EXPECT_GT(r.empty_rows, 0) << "the case is meant to have rows that see no key";
  }
  if (c.softcap > 0.0f) {
    std::printf("[ measured ] %-64s uncapped reference: rel_l2 %.3e from capped, max lse %.1f\n", case_name(c).c_str(),
                r.uncapped_out_rel_l2, r.uncapped_lse_max);
    EXPECT_GE(r.uncapped_out_rel_l2, kMinSoftcapEffect) << "softcap barely changes this case: it would not be tested";
  }
  if (c.expect_large_scores) {
    EXPECT_GE(r.uncapped_lse_max, kMinUncappedLse) << "raw scores are not large";
  }
  if (!c.seqused_k.empty()) {
    EXPECT_LE(r.seqused_member_diff, kMaxSeqUsedMemberDiff)
        << "the reference's seqused_k differs from truncating K/V: reference and test disagree";
  }
  return true;
}

std::string param_name(const ::testing::TestParamInfo<Case>& info) { return case_name(info.param); }

// ---------------------------------------------------------------------------------------------
// Variable length.

class VarlenGpu : public ::testing::TestWithParam<Case> {};

TEST_P(VarlenGpu, MatchesReference) {
  SKIP_WITHOUT_SM90();
  expect_matches_reference(GetParam(), run_case(GetParam(), 2024));
}

std::vector<Case> varlen_cases() {
  std::vector<Case> cases;
  for (DataType dtype : {DataType::FP16, DataType::BF16})
    for (int head_dim : {64, 80, 128})
      for (bool causal : {false, true}) {
        // GQA 16/2; margin rows around the packed entries and padded output rows, which must stay
        // untouched. The entry with one query and no key always has a row that sees no key.
        Case mixed = varlen_case("mixed", dtype, head_dim, kMixedQ, kMixedK, 16, 2, causal);
        mixed.lead_rows = 3;
        mixed.trail_rows = 5;
        mixed.out_row_pad = 8;
        mixed.expect_empty_rows = true;
        cases.push_back(mixed);
        // MHA, many short entries, tight packing.
        Case short_entries = varlen_case("short", dtype, head_dim, kShortQ, kShortK, 8, 8, causal);
        short_entries.expect_empty_rows = causal;   // 200 queries against 77 keys, bottom-right aligned
        cases.push_back(short_entries);
      }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Serving, VarlenGpu, ::testing::ValuesIn(varlen_cases()), param_name);

// A packed batch of equal lengths is the dense batch in other clothes: the same inputs give the
// same bits (same kernel, same tiles), output and LSE.
class VarlenEqualLengthsGpu : public ::testing::TestWithParam<Case> {};

TEST_P(VarlenEqualLengthsGpu, SameBitsAsDense) {
  SKIP_WITHOUT_SM90();
  const Case& dense = GetParam();
  Case packed = dense;
  packed.varlen = true;
  const RunResult a = run_case(dense, 77);
  const RunResult b = run_case(packed, 77);
  if (!expect_matches_reference(dense, a) || !expect_matches_reference(packed, b)) return;
  EXPECT_TRUE(a.out_bits == b.out_bits) << "packed output differs from the dense one";
  EXPECT_TRUE(a.lse_bits == b.lse_bits) << "packed LSE differs from the dense one";
}

std::vector<Case> equal_length_cases() {
  struct Shape {
    int batch, seqlen_q, seqlen_k;
  };
  const Shape shapes[] = {{3, 300, 300}, {2, 129, 257}, {2, 257, 129}};
  std::vector<Case> cases;
  int turn = 0;
  for (DataType dtype : {DataType::FP16, DataType::BF16})
    for (int head_dim : {64, 80, 128})
      for (bool causal : {false, true}) {
        const Shape& s = shapes[turn++ % 3];
        const std::string tag = "b" + std::to_string(s.batch) + "_q" + std::to_string(s.seqlen_q) + "_k" +
                                std::to_string(s.seqlen_k);
        cases.push_back(dense_case(tag, dtype, head_dim, s.batch, s.seqlen_q, s.seqlen_k, 8, 2, causal));
      }
  // Causal launches with more tiles than the GPU runs at once take the paired tile order, packed
  // too (kernel_fwd.cuh, paired_order): an even and an odd count of query blocks per entry.
  for (int head_dim : {64, 128}) {
    cases.push_back(dense_case("paired_b4_q1024", DataType::BF16, head_dim, 4, 1024, 1024, 8, 2, true));
    cases.push_back(dense_case("paired_b5_q640", DataType::FP16, head_dim, 5, 640, 640, 8, 2, true));
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Serving, VarlenEqualLengthsGpu, ::testing::ValuesIn(equal_length_cases()), param_name);

// seqused_k: an entry attends to its first seqused_k[b] keys, exactly as if K/V held only those
// (the expectation is the reference on truncated K/V; masks align to the used length). Entries
// with 0 keys used, 1 key, and more than it has (clamped).
class SeqUsedKGpu : public ::testing::TestWithParam<Case> {};

TEST_P(SeqUsedKGpu, MatchesTruncatedKv) {
  SKIP_WITHOUT_SM90();
  expect_matches_reference(GetParam(), run_case(GetParam(), 4242));
}

std::vector<Case> seqused_cases() {
  std::vector<Case> cases;
  for (DataType dtype : {DataType::FP16, DataType::BF16})
    for (int head_dim : {64, 128})
      for (bool causal : {false, true}) {
        Case dense = dense_case("dense_b4_q200_k500", dtype, head_dim, 4, 200, 500, 4, 2, causal);
        dense.seqused_k = {333, 0, 1, 900};
        dense.expect_empty_rows = true;
        cases.push_back(dense);
        Case packed = varlen_case("varlen_mixed", dtype, head_dim, kMixedQ, kMixedK, 8, 2, causal);
        packed.seqused_k = {30, 40, 0, 127, 999, 129, 64, 1, 1, 500, 10, 5};
        packed.lead_rows = 2;
        packed.trail_rows = 3;
        packed.expect_empty_rows = true;
        cases.push_back(packed);
      }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Serving, SeqUsedKGpu, ::testing::ValuesIn(seqused_cases()), param_name);

// ---------------------------------------------------------------------------------------------
// Sliding window.

class WindowGpu : public ::testing::TestWithParam<Case> {};

TEST_P(WindowGpu, MatchesReference) {
  SKIP_WITHOUT_SM90();
  expect_matches_reference(GetParam(), run_case(GetParam(), 5150));
}

std::vector<Case> window_cases() {
  struct Window {
    const char* tag;
    int seqlen_q, seqlen_k;
    int left, right;
    bool causal;
    bool no_window;   // the window covers every key
    bool empty_rows;  // some rows see no key
  };
  const Window windows[] = {
      {"left", 777, 777, 100, -1, false, false, false},
      {"right", 777, 777, -1, 50, false, false, false},
      {"both", 777, 777, 64, 64, false, false, false},
      {"causal_left", 777, 777, 128, -1, true, false, false},
      {"causal_left_right0", 777, 777, 37, 0, true, false, false},
      {"diagonal", 777, 777, 0, 0, false, false, false},
      {"causal_diagonal", 777, 777, 0, -1, true, false, false},
      {"wider_than_seq", 777, 777, 5000, 5000, false, true, false},
      {"causal_wider_than_seq", 777, 777, 5000, -1, true, true, false},
      // A left window of seqlen_k - 1 keys hides no key (the kernel drops it); one key fewer hides
      // key 0 from the last row.
      {"left_all_keys", 777, 777, 776, -1, false, true, false},
      {"left_all_but_key0", 777, 777, 775, -1, false, false, false},
      {"causal_left_all_keys_q700_k300", 700, 300, 299, -1, true, true, true},
      {"causal_left_all_but_key0_q700_k300", 700, 300, 298, -1, true, false, true},
      {"q300_k700", 300, 700, 32, 16, false, false, false},
      {"q700_k300", 700, 300, 50, -1, true, false, true},
      // Rows 0..291 see no key: their window [i - 316, i - 292] ends before key 0.
      {"no_key_rows_q500_k200", 500, 200, 16, 8, false, false, true},
  };
  std::vector<Case> cases;
  for (DataType dtype : {DataType::FP16, DataType::BF16})
    for (int head_dim : {64, 128}) {
      for (const Window& w : windows) {
        Case c = dense_case(w.tag, dtype, head_dim, 2, w.seqlen_q, w.seqlen_k, 4, 2, w.causal);
        c.window_left = w.left;
        c.window_right = w.right;
        c.expect_no_window = w.no_window;
        c.expect_empty_rows = w.empty_rows;
        cases.push_back(c);
      }
      // Windows in packed batches, aligned per entry.
      Case causal = varlen_case("varlen_mixed", dtype, head_dim, kMixedQ, kMixedK, 8, 2, true);
      causal.window_left = 64;
      causal.window_right = 0;
      causal.lead_rows = 1;
      causal.trail_rows = 2;
      causal.expect_empty_rows = true;
      cases.push_back(causal);
      Case both = varlen_case("varlen_mixed", dtype, head_dim, kMixedQ, kMixedK, 8, 2, false);
      both.window_left = 100;
      both.window_right = 50;
      both.expect_empty_rows = true;
      cases.push_back(both);
      // A left window that covers some entries whole (those of at most 129 keys) and not others.
      Case partly = varlen_case("varlen_mixed", dtype, head_dim, kMixedQ, kMixedK, 8, 2, true);
      partly.window_left = 128;
      partly.expect_empty_rows = true;
      cases.push_back(partly);
    }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Serving, WindowGpu, ::testing::ValuesIn(window_cases()), param_name);

// ---------------------------------------------------------------------------------------------
// Softcap. softmax_scale 1 and Q doubled, so that scaled scores have std 2 sqrt(d) (16 at d 64,
// 23 at d 128) and reach 50 and more, far past the caps (20, 30): the capped result differs
// clearly from the uncapped one (0.2 to 1 in rel. L2 in a float64 simulation of these shapes).

class SoftcapGpu : public ::testing::TestWithParam<Case> {};

TEST_P(SoftcapGpu, MatchesReference) {
  SKIP_WITHOUT_SM90();
  expect_matches_reference(GetParam(), run_case(GetParam(), 3030));
}

Case with_large_scores(Case c, float softcap) {
  c.softcap = softcap;
  c.softmax_scale = 1.0f;
  c.q_scale = 2;
  c.expect_large_scores = true;
  return c;
}

std::vector<Case> softcap_cases() {
  std::vector<Case> cases;
  for (DataType dtype : {DataType::FP16, DataType::BF16})
    for (int head_dim : {64, 128}) {
      cases.push_back(with_large_scores(dense_case("plain", dtype, head_dim, 2, 400, 600, 4, 2, false), 30.0f));
      cases.push_back(with_large_scores(dense_case("causal", dtype, head_dim, 2, 400, 600, 4, 2, true), 30.0f));
      Case window = with_large_scores(dense_case("window", dtype, head_dim, 2, 400, 600, 4, 2, false), 20.0f);
      window.window_left = 64;
      window.window_right = 32;
      cases.push_back(window);
      Case causal_window = with_large_scores(dense_case("causal_window", dtype, head_dim, 2, 400, 600, 4, 2, true), 30.0f);
      causal_window.window_left = 100;
      causal_window.window_right = 0;
      cases.push_back(causal_window);
      Case packed = with_large_scores(varlen_case("varlen_short", dtype, head_dim, kShortQ, kShortK, 8, 2, true), 30.0f);
      packed.lead_rows = 4;
      packed.trail_rows = 1;
      packed.expect_empty_rows = true;
      cases.push_back(packed);
    }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Serving, SoftcapGpu, ::testing::ValuesIn(softcap_cases()), param_name);

// ---------------------------------------------------------------------------------------------
// Head dims 80, 96, 192 (kernels of their own) and head dims padded onto them.

bool has_own_kernel(DataType dtype, int head_dim) {
  int dims[64];
  const int count = flash::supported_head_dims(dtype, dims, 64);
  return std::find(dims, dims + count, head_dim) != dims + count;
}

class HeadDimGpu : public ::testing::TestWithParam<Case> {};

TEST_P(HeadDimGpu, MatchesReference) {
  SKIP_WITHOUT_SM90();
  const Case& c = GetParam();
  if (c.head_dim == 80 || c.head_dim == 96 || c.head_dim == 192) {
    EXPECT_TRUE(has_own_kernel(c.dtype, c.head_dim)) << "head dim " << c.head_dim << " has no kernel of its own";
  }
  expect_matches_reference(c, run_case(c, 8086));
}

std::vector<Case> head_dim_cases() {
  std::vector<Case> cases;
  for (DataType dtype : {DataType::FP16, DataType::BF16})
    for (int head_dim : {80, 96, 192, 72, 88, 136, 184}) {
      const bool own = head_dim == 80 || head_dim == 96 || head_dim == 192;
      // Padded head dims store through padded rows: a column past head_dim written by the wider
      // kernel would land in the next head or in the row padding.
      Case full = dense_case("q333_k517", dtype, head_dim, 2, 333, 517, 6, 2, false);
      full.out_row_pad = own ? 0 : 8;
      cases.push_back(full);
      Case causal = dense_case("q517_k333", dtype, head_dim, 2, 517, 333, 6, 2, true);
      causal.out_row_pad = own ? 0 : 8;
      causal.expect_empty_rows = true;   // rows 0..183 see no key (bottom-right alignment)
      cases.push_back(causal);
      if (own) {
        Case packed = varlen_case("varlen_short", dtype, head_dim, kShortQ, kShortK, 8, 2, true);
        packed.lead_rows = 2;
        packed.trail_rows = 2;
        packed.out_row_pad = 8;
        packed.expect_empty_rows = true;
        cases.push_back(packed);
      }
    }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Serving, HeadDimGpu, ::testing::ValuesIn(head_dim_cases()), param_name);

// ---------------------------------------------------------------------------------------------
// Combinations as served: vision-encoder windows (d 80, packed windows of <= 64 tokens), and
// packed + seqused_k + window + softcap + causal + GQA together.

class ServingComboGpu : public ::testing::TestWithParam<Case> {};

TEST_P(ServingComboGpu, MatchesReference) {
  SKIP_WITHOUT_SM90();
  expect_matches_reference(GetParam(), run_case(GetParam(), 6502));
}

std::vector<Case> combo_cases() {
  std::vector<int> vit_windows(14, 64);
  for (int len : {48, 32, 16, 64, 56, 40}) vit_windows.push_back(len);
  std::vector<Case> cases;
  for (DataType dtype : {DataType::FP16, DataType::BF16}) {
    cases.push_back(varlen_case("vit_windows", dtype, 80, vit_windows, vit_windows, 16, 16, false));
    Case all = with_large_scores(varlen_case("varlen_seqused", dtype, 128, kMixedQ, kMixedK, 8, 2, true), 30.0f);
    all.seqused_k = {64, 40, 0, 100, 700, 129, 64, 300, 1, 128, 33, 5};
    all.window_left = 96;
    all.lead_rows = 5;
    all.trail_rows = 7;
    all.out_row_pad = 8;
    all.expect_empty_rows = true;
    cases.push_back(all);
    Case windowed = with_large_scores(varlen_case("varlen_short", dtype, 64, kShortQ, kShortK, 6, 3, false), 20.0f);
    windowed.window_left = 32;
    windowed.window_right = 32;
    cases.push_back(windowed);
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Serving, ServingComboGpu, ::testing::ValuesIn(combo_cases()), param_name);

// Every kernel instance runs at least once: each head dim with a kernel of its own, through the
// general variant (packed, softcap, window), the dense one (causal) and, where they exist, the
// decode one (at most 64 query rows per tile) and the dense_short one (causal, at most
// dense_short_max_seqlen queries and keys; the dense case then takes longer keys). The general d256 plan once hung (a register plan
// larger than the CTA's pool) and no other test reached it.
class EveryInstanceGpu : public ::testing::TestWithParam<Case> {};

TEST_P(EveryInstanceGpu, MatchesReference) {
  SKIP_WITHOUT_SM90();
  expect_matches_reference(GetParam(), run_case(GetParam(), 8086));
}

std::vector<Case> every_instance_cases() {
  std::vector<Case> cases;
  for (DataType dtype : {DataType::FP16, DataType::BF16}) {
    for (int head_dim : {64, 80, 96, 128, 192, 256}) {
      Case general = with_large_scores(varlen_case("general", dtype, head_dim, kShortQ, kShortK, 4, 2, true), 20.0f);
      general.window_left = 40;
      cases.push_back(general);
      Case dense;
      dense.tag = "dense";
      dense.dtype = dtype;
      dense.head_dim = head_dim;
      dense.heads = 4;
      dense.heads_k = 2;
      dense.causal = true;
      dense.lens_q = {333, 333};
      dense.lens_k = {517, 517};
      const Case dense_517 = dense;
      const flash::detail::KernelEntry* short_kernel =
          flash::detail::find_kernel(dtype, head_dim, flash::detail::KernelVariant::kDenseShort);
      if (short_kernel != nullptr && short_kernel->head_dim == head_dim) {
        Case dense_short = dense;
        dense_short.tag = "dense_short";
        cases.push_back(dense_short);
        const int longer = flash::detail::dense_short_max_seqlen(*short_kernel, /*masked=*/true) + 77;
        dense.lens_k = {longer, longer};
      }
      cases.push_back(dense);
      // The decode variant where the kernel list has one of this width (find_kernel may return a
      // wider one, which a call of this head dim does not use).
      const flash::detail::KernelEntry* decode_kernel =
          flash::detail::find_kernel(dtype, head_dim, flash::detail::KernelVariant::kDecode);
      if (decode_kernel != nullptr && decode_kernel->head_dim == head_dim) {
        Case decode = dense_517;
        decode.tag = "decode";
        decode.lens_q = {3, 3};
        cases.push_back(decode);
      }
    }
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Serving, EveryInstanceGpu, ::testing::ValuesIn(every_instance_cases()), param_name);

// ---------------------------------------------------------------------------------------------
// Rejected serving arguments: the specific status code, a message, and nothing written.

struct BadArgs {
  std::string name;
  bool varlen;     // applied to a valid packed call (else a valid dense one)
  int expected;    // status code
  std::function<void(flash::FlashAttentionParams&)> mutate;
};

void PrintTo(const BadArgs& bad, std::ostream* os) { *os << bad.name; }

class ServingGpuRejected : public ::testing::TestWithParam<BadArgs> {};

TEST_P(ServingGpuRejected, WritesNothing) {
  SKIP_WITHOUT_SM90();
  const BadArgs& bad = GetParam();
  const int heads = 4, heads_k = 2, d = 64;
  // Packed: entries of 100, 0 and 37 queries against 50, 80 and 1 keys; dense: 2 x 128 x 128.
  const std::vector<int32_t> cu_q = {0, 100, 100, 137}, cu_k = {0, 50, 130, 131};
  const int batch = bad.varlen ? 3 : 2;
  const int rows_q = bad.varlen ? cu_q.back() : batch * 128;
  const int rows_k = bad.varlen ? cu_k.back() : batch * 128;
  GuardedDeviceBuffer q(size_t(rows_q) * heads * d * 2), k(size_t(rows_k) * heads_k * d * 2),
      v(size_t(rows_k) * heads_k * d * 2);
  for (GuardedDeviceBuffer* buffer : {&q, &k, &v}) buffer->poison(0x3C);   // 0x3C3C: a finite value
  GuardedDeviceBuffer out(size_t(rows_q) * heads * d * 2), lse(size_t(rows_q) * heads * sizeof(float));
  GuardedDeviceBuffer cu_q_dev = device_copy(cu_q), cu_k_dev = device_copy(cu_k);

  flash::FlashAttentionParams p;
  p.q = q.data(), p.k = k.data(), p.v = v.data(), p.out = out.data();
  p.softmax_lse = static_cast<float*>(lse.data());
  p.batch_size = batch, p.num_heads = heads, p.num_heads_k = heads_k, p.head_dim = d;
  p.dtype = bad.varlen ? DataType::FP16 : DataType::BF16;
  if (bad.varlen) {
    p.seqlen_q = 100, p.seqlen_k = 80;
    p.cu_seqlens_q = static_cast<const int32_t*>(cu_q_dev.data());
    p.cu_seqlens_k = static_cast<const int32_t*>(cu_k_dev.data());
    p.total_q = rows_q, p.total_k = rows_k;
  } else {
    p.seqlen_q = 128, p.seqlen_k = 128;
  }

  // The unchanged call is accepted, so the rejection below is the mutation's doing.
  out.poison(flash::host::kPoisonNaN);
  lse.poison(flash::host::kPoisonNaN);
  const int base_status = flash::flash_attention_forward(p, nullptr);
  ASSERT_EQ(base_status, flash::kSuccess) << "the valid base call failed: " << flash::status_string(base_status)
                                          << ": " << flash::last_error_message();
  flash::host::cuda_check(cudaDeviceSynchronize(), "base call");

  out.poison(flash::host::kPoisonNaN);
  lse.poison(flash::host::kPoisonNaN);
  bad.mutate(p);
  const int status = flash::flash_attention_forward(p, nullptr);
  EXPECT_EQ(status, bad.expected) << "got " << flash::status_string(status) << ": " << flash::last_error_message();
  EXPECT_STRNE(flash::last_error_message(), "") << "a rejected call leaves a detailed message";
  std::printf("[ rejected ] %-40s %s: %s\n", bad.name.c_str(), flash::status_string(status),
              flash::last_error_message());
  flash::host::cuda_check(cudaDeviceSynchronize(), "sync");
  std::vector<uint8_t> out_host(out.bytes()), lse_host(lse.bytes());
  out.copy_to_host(out_host.data(), out_host.size());
  lse.copy_to_host(lse_host.data(), lse_host.size());
  EXPECT_TRUE(std::all_of(out_host.begin(), out_host.end(), [](uint8_t b) { return b == flash::host::kPoisonNaN; }))
      << "a rejected call wrote the output";
  EXPECT_TRUE(std::all_of(lse_host.begin(), lse_host.end(), [](uint8_t b) { return b == flash::host::kPoisonNaN; }))
      << "a rejected call wrote the LSE";
  EXPECT_TRUE(out.guards_intact() && lse.guards_intact());
}

std::vector<BadArgs> bad_args() {
  using P = flash::FlashAttentionParams;
  constexpr int kWindow = flash::kErrorInvalidWindow, kSoftcap = flash::kErrorInvalidSoftcap,
                kVarlen = flash::kErrorInvalidVarlen;
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  std::vector<BadArgs> cases = {
      {"window_left_minus2", false, kWindow, [](P& p) { p.window_size_left = -2; }},
      {"window_right_minus7", false, kWindow, [](P& p) { p.window_size_right = -7; }},
      {"causal_window_right_1", false, kWindow, [](P& p) { p.is_causal = true, p.window_size_right = 1; }},
      {"causal_window_left16_right64", false, kWindow,
       [](P& p) { p.is_causal = true, p.window_size_left = 16, p.window_size_right = 64; }},
      {"softcap_negative", false, kSoftcap, [](P& p) { p.softcap = -1.0f; }},
      {"softcap_nan", false, kSoftcap, [nan](P& p) { p.softcap = nan; }},
      {"softcap_inf", false, kSoftcap, [inf](P& p) { p.softcap = inf; }},
      {"softcap_minus_inf", false, kSoftcap, [inf](P& p) { p.softcap = -inf; }},
      // softmax_scale / softcap would overflow fp32.
      {"softcap_denormal", false, kSoftcap, [](P& p) { p.softcap = 1e-40f; }},
      {"total_q_without_cu_seqlens", false, kVarlen, [](P& p) { p.total_q = 256; }},
      {"total_k_without_cu_seqlens", false, kVarlen, [](P& p) { p.total_k = 256; }},
      {"varlen_cu_seqlens_k_null", true, kVarlen, [](P& p) { p.cu_seqlens_k = nullptr; }},
      {"varlen_cu_seqlens_q_null", true, kVarlen, [](P& p) { p.cu_seqlens_q = nullptr; }},
      {"varlen_total_q_0", true, kVarlen, [](P& p) { p.total_q = 0; }},
      {"varlen_total_k_minus1", true, kVarlen, [](P& p) { p.total_k = -1; }},
      {"varlen_seqlen_q_over_total_q", true, kVarlen, [](P& p) { p.seqlen_q = p.total_q + 1; }},
      {"varlen_q_batch_stride", true, kVarlen, [](P& p) { p.q_batch_stride = int64_t{p.total_q} * p.num_heads * p.head_dim; }},
      {"varlen_k_batch_stride", true, kVarlen, [](P& p) { p.k_batch_stride = int64_t{p.total_k} * p.num_heads_k * p.head_dim; }},
      {"varlen_out_batch_stride", true, kVarlen,
       [](P& p) { p.out_batch_stride = int64_t{p.total_q} * p.num_heads * p.head_dim; }},
      {"varlen_window_left_minus5", true, kWindow, [](P& p) { p.window_size_left = -5; }},
      {"varlen_causal_window_right_3", true, kWindow, [](P& p) { p.is_causal = true, p.window_size_right = 3; }},
      {"varlen_softcap_nan", true, kSoftcap, [nan](P& p) { p.softcap = nan; }},
  };
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Serving, ServingGpuRejected, ::testing::ValuesIn(bad_args()),
                         [](const ::testing::TestParamInfo<BadArgs>& info) { return info.param.name; });

}  // namespace
