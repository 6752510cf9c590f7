// GPU tests of decode-style calls against the double-precision CPU reference: split keys (forced
// and automatic, merged by the combine kernel through the caller's workspace), GQA packing (the
// query heads of one KV head in one tile), paged KV caches (shuffled pages of 16 to 256 keys), and
// caches whose rows past each entry's length hold NaN (which must not reach the output).
//
// Each run poisons O, the LSE and the workspace with NaN, puts guard bytes after every buffer,
// and checks every output element and LSE value against the reference; a split run must have
// written the workspace and an unsplit one must have left it alone. Skipped, and reported so by
// CTest, without an SM90 device.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include <cuda_runtime_api.h>

#include "flash_api.h"
#include "gpu_test_util.h"
#include "host/host_tensor.h"
#include "host/paged_kv.h"
#include "reference/attention_ref.h"

namespace {

using flash::DataType;
using flash::host::GuardedDeviceBuffer;
using flash::test::device_copy;
using flash::test::kMaxLseAbsError;
using flash::test::max_rel_l2;

constexpr uint16_t kNaN16 = 0xFFFF;   // NaN in fp16 and bf16: the cache rows past an entry's keys
constexpr double kMinusInf = -std::numeric_limits<double>::infinity();

enum class Split {
  kNone,       // num_splits = 1
  kAuto,       // num_splits = 0 with a workspace: the library chooses
  kForced,     // num_splits = Case::forced_splits with a workspace
};

struct Case {
  std::string tag;
  DataType dtype = DataType::BF16;
  int head_dim = 128;
  int batch = 1;
  int seqlen_q = 1;
  int seqlen_k = 1;   // the cache's capacity (dense) or longest length (paged)
  int heads = 16;
  int heads_k = 2;
  bool causal = false;
  int window_left = -1;
  int window_right = -1;
  float softcap = 0.0f;
  std::vector<int> seqused_k;   // empty: every key
  int page_size = 0;            // 0: contiguous [batch, seqlen_k, heads_k, d]
  Split split = Split::kAuto;
  int forced_splits = 0;
  bool nan_tail = false;        // cache rows no entry uses hold NaN
  bool expect_split = false;    // the call must split (the workspace gets written)
};

std::string split_name(const Case& c) {
  switch (c.split) {
    case Split::kNone: return "nosplit";
    case Split::kAuto: return "auto";
    case Split::kForced: return "split" + std::to_string(c.forced_splits);
  }
  return "?";
}

std::string case_name(const Case& c) {
  std::string name = c.tag + "_" + flash::host::dtype_name(c.dtype) + "_d" + std::to_string(c.head_dim) + "_b" +
                     std::to_string(c.batch) + "_q" + std::to_string(c.seqlen_q) + "_k" + std::to_string(c.seqlen_k) +
                     "_h" + std::to_string(c.heads) + "x" + std::to_string(c.heads_k) + "_" + split_name(c);
  if (c.page_size > 0) name += "_page" + std::to_string(c.page_size);
  if (c.causal) name += "_causal";
  if (c.window_left >= 0) name += "_wl" + std::to_string(c.window_left);
  if (c.softcap > 0.0f) name += "_cap";
  if (c.nan_tail) name += "_nantail";
  return name;
}

void PrintTo(const Case& c, std::ostream* os) { *os << case_name(c); }

std::string param_name(const ::testing::TestParamInfo<Case>& info) { return case_name(info.param); }

struct RunResult {
  int status = -1;
  std::string message;
  flash::host::ErrorStats out, lse;
  int64_t unwritten = 0;        // output elements still NaN
  int64_t empty_rows = 0;       // (row, head) pairs that see no key
  int64_t empty_row_errors = 0; // of those, rows whose output is not 0 or whose LSE is not -inf
  bool guards_intact = true;
  bool workspace_written = false;
  std::vector<uint16_t> out_bits;
};

RunResult run_case(const Case& c, uint64_t seed) {
  const int d = c.head_dim;
  const int64_t q_elems = int64_t{c.batch} * c.seqlen_q * c.heads * d;
  const int64_t kv_row = int64_t{c.heads_k} * d;
  const int64_t kv_elems = int64_t{c.batch} * c.seqlen_k * kv_row;
  std::vector<uint16_t> q_bits, k_bits, v_bits;
  std::vector<double> q, k, v;
  flash::host::fill_random(c.dtype, size_t(q_elems), seed, &q_bits, &q);
  flash::host::fill_random(c.dtype, size_t(kv_elems), seed + 1, &k_bits, &k);
  flash::host::fill_random(c.dtype, size_t(kv_elems), seed + 2, &v_bits, &v);
  // The reference reads only the keys each entry uses; the device copy holds NaN past them.
  std::vector<int> used(size_t(c.batch), c.seqlen_k);
  for (int b = 0; b < c.batch && !c.seqused_k.empty(); ++b) used[b] = std::clamp(c.seqused_k[b], 0, c.seqlen_k);
  if (c.nan_tail) {
    for (int b = 0; b < c.batch; ++b) {
      const auto first = (int64_t{b} * c.seqlen_k + used[b]) * kv_row, last = (int64_t{b} + 1) * c.seqlen_k * kv_row;
      std::fill(k_bits.begin() + first, k_bits.begin() + last, kNaN16);
      std::fill(v_bits.begin() + first, v_bits.begin() + last, kNaN16);
    }
  }

  flash::FlashAttentionParams p;
  std::vector<GuardedDeviceBuffer> inputs;
  inputs.reserve(5);
  inputs.push_back(device_copy(q_bits));
  flash::host::PagedLayout layout;
  if (c.page_size > 0) {
    layout = flash::host::make_paged_layout(c.batch, c.seqlen_k, c.page_size, /*spare_pages=*/3, seed + 3);
    const uint16_t fill = c.nan_tail ? kNaN16 : 0;
    inputs.push_back(device_copy(flash::host::scatter_pages(layout, k_bits, c.batch, c.seqlen_k, kv_row, fill)));
    inputs.push_back(device_copy(flash::host::scatter_pages(layout, v_bits, c.batch, c.seqlen_k, kv_row, fill)));
    inputs.push_back(device_copy(layout.page_table));
    p.page_table = static_cast<const int32_t*>(inputs.back().data());
    p.page_table_stride = layout.pages_per_entry;
    p.page_size = c.page_size;
    p.num_pages = layout.num_pages;
  } else {
    inputs.push_back(device_copy(k_bits));
    inputs.push_back(device_copy(v_bits));
  }
  if (!c.seqused_k.empty()) {
    inputs.push_back(device_copy(std::vector<int32_t>(c.seqused_k.begin(), c.seqused_k.end())));
    p.seqused_k = static_cast<const int32_t*>(inputs.back().data());
  }
  GuardedDeviceBuffer out(size_t(q_elems) * 2), lse(size_t(c.batch) * c.heads * c.seqlen_q * sizeof(float));
  out.poison(flash::host::kPoisonNaN);
  lse.poison(flash::host::kPoisonNaN);

  p.q = inputs[0].data();
  p.k = inputs[1].data();
  p.v = inputs[2].data();
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
  p.window_size_left = c.window_left;
  p.window_size_right = c.window_right;
  p.softcap = c.softcap;
  p.num_splits = c.split == Split::kNone ? 1 : c.split == Split::kForced ? c.forced_splits : 0;

  RunResult result;
  size_t workspace_bytes = 0;
  result.status = flash::flash_attention_workspace_size(p, &workspace_bytes);
  if (result.status != flash::kSuccess) {
    result.message = flash::last_error_message();
    return result;
  }
  // A split-less call needs none; one byte still shows that it is left alone.
  GuardedDeviceBuffer workspace(std::max<size_t>(workspace_bytes, 16));
  workspace.poison(flash::host::kPoisonNaN);
  if (c.split != Split::kNone) {
    p.workspace = workspace.data();
    p.workspace_bytes = workspace.bytes();
  }
  result.status = flash::flash_attention_forward(p, nullptr);
  if (result.status != flash::kSuccess) {
    result.message = flash::last_error_message();
    return result;
  }
  flash::host::cuda_check(cudaDeviceSynchronize(), "kernel execution");
  result.guards_intact = out.guards_intact() && lse.guards_intact() && workspace.guards_intact();
  for (const GuardedDeviceBuffer& input : inputs) result.guards_intact = result.guards_intact && input.guards_intact();
  std::vector<uint8_t> workspace_host(workspace.bytes());
  workspace.copy_to_host(workspace_host.data(), workspace_host.size());
  result.workspace_written = std::any_of(workspace_host.begin(), workspace_host.end(),
                                         [](uint8_t byte) { return byte != flash::host::kPoisonNaN; });

  result.out_bits.assign(size_t(q_elems), 0);
  out.copy_to_host(result.out_bits.data(), result.out_bits.size() * 2);
  std::vector<float> lse_host(size_t(c.batch) * c.heads * c.seqlen_q);
  lse.copy_to_host(lse_host.data(), lse_host.size() * sizeof(float));

  flash::reference::Problem problem;
  problem.batch = c.batch;
  problem.seqlen_q = c.seqlen_q;
  problem.seqlen_k = c.seqlen_k;
  problem.num_heads = c.heads;
  problem.num_heads_k = c.heads_k;
  problem.head_dim = d;
  problem.is_causal = c.causal;
  problem.window_left = c.window_left;
  problem.window_right = c.window_right;
  problem.softcap = c.softcap;
  problem.seqused_k = c.seqused_k;
  std::vector<double> ref_out(static_cast<size_t>(q_elems)), ref_lse(lse_host.size());
  flash::reference::attention_forward(problem, q.data(), k.data(), v.data(), ref_out.data(), ref_lse.data());

  std::vector<double> got(static_cast<size_t>(q_elems)), got_lse(lse_host.begin(), lse_host.end());
  for (int64_t e = 0; e < q_elems; ++e) {
    got[e] = flash::host::decode(c.dtype, result.out_bits[e]);
    if (std::isnan(got[e])) ++result.unwritten;
  }
  result.out = flash::host::compare(ref_out.data(), got.data(), got.size());
  result.lse = flash::host::compare(ref_lse.data(), got_lse.data(), got_lse.size());
  for (int b = 0; b < c.batch; ++b)
    for (int h = 0; h < c.heads; ++h)
      for (int i = 0; i < c.seqlen_q; ++i) {
        const size_t l = (size_t(b) * c.heads + h) * c.seqlen_q + i;
        if (ref_lse[l] != kMinusInf) continue;
        ++result.empty_rows;
        bool ok = got_lse[l] == kMinusInf;
        for (int e = 0; e < d; ++e) ok = ok && got[((size_t(b) * c.seqlen_q + i) * c.heads + h) * d + e] == 0.0;
        if (!ok) ++result.empty_row_errors;
      }
  return result;
}

bool expect_matches_reference(const Case& c, const RunResult& r) {
  EXPECT_EQ(r.status, flash::kSuccess) << flash::status_string(r.status) << ": " << r.message;
  if (r.status != flash::kSuccess) return false;
  std::printf("[ measured ] %-72s out rel_l2 %.3e max_abs %.3e | lse max_abs %.3e | split %s\n", case_name(c).c_str(),
              r.out.rel_l2, r.out.max_abs, r.lse.max_abs, r.workspace_written ? "yes" : "no");
  ::testing::Test::RecordProperty("out_rel_l2", std::to_string(r.out.rel_l2));
  EXPECT_EQ(r.unwritten, 0) << "output elements never written (still NaN)";
  EXPECT_EQ(r.out.nonfinite, 0);
  EXPECT_LE(r.out.rel_l2, max_rel_l2(c.dtype));
  EXPECT_EQ(r.lse.nonfinite, 0);
  EXPECT_LE(r.lse.max_abs, kMaxLseAbsError);
  EXPECT_EQ(r.empty_row_errors, 0) << "rows that see no key must get output 0 and LSE -inf";
  EXPECT_TRUE(r.guards_intact) << "a guard byte after a buffer changed";
  if (c.split == Split::kNone) EXPECT_FALSE(r.workspace_written) << "an unsplit call wrote the workspace";
  if (c.expect_split) EXPECT_TRUE(r.workspace_written) << "the call was meant to split the keys";
  return true;
}

Case make(std::string tag, DataType dtype, int head_dim, int batch, int seqlen_q, int seqlen_k, int heads, int heads_k,
          Split split, int forced = 0) {
  Case c;
  c.tag = std::move(tag);
  c.dtype = dtype;
  c.head_dim = head_dim;
  c.batch = batch;
  c.seqlen_q = seqlen_q;
  c.seqlen_k = seqlen_k;
  c.heads = heads;
  c.heads_k = heads_k;
  c.split = split;
  c.forced_splits = forced;
  c.expect_split = split == Split::kForced && forced > 1;
  return c;
}

// ---------------------------------------------------------------------------------------------
// Decode: one to sixteen queries against caches of odd lengths, unsplit, forced splits (also
// more than the key blocks) and automatic; GQA 16/2 (packed), MQA 8/1, MHA (never packed).

class DecodeGpu : public ::testing::TestWithParam<Case> {};

TEST_P(DecodeGpu, MatchesReference) {
  SKIP_WITHOUT_SM90();
  expect_matches_reference(GetParam(), run_case(GetParam(), 1234));
}

std::vector<Case> decode_cases() {
  std::vector<Case> cases;
  for (DataType dtype : {DataType::FP16, DataType::BF16}) {
    for (Split split : {Split::kNone, Split::kAuto, Split::kForced}) {
      cases.push_back(make("gqa", dtype, 128, 1, 1, 4099, 16, 2, split, 5));
      Case used = make("seqused", dtype, 128, 3, 1, 1000, 16, 2, split, 3);
      used.seqused_k = {1000, 1, 517};
      cases.push_back(used);
      Case causal = make("causal", dtype, 128, 2, 4, 777, 16, 2, split, 64);   // 64 > 7 blocks: clamped
      causal.causal = true;
      cases.push_back(causal);
      Case full_tile = make("q16", dtype, 128, 2, 16, 2048, 16, 2, split, 4);  // 16 x 8 rows: one packed tile
      full_tile.causal = true;
      cases.push_back(full_tile);
      cases.push_back(make("mha", dtype, 128, 1, 1, 3000, 16, 16, split, 6));
      cases.push_back(make("mqa", dtype, 128, 2, 3, 1500, 8, 1, split, 2));
    }
    // A long cache on one entry: the automatic choice splits it.
    Case long_cache = make("long", dtype, 128, 1, 1, 32768, 16, 2, Split::kAuto);
    long_cache.expect_split = true;
    cases.push_back(long_cache);
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Decode, DecodeGpu, ::testing::ValuesIn(decode_cases()), param_name);

// ---------------------------------------------------------------------------------------------
// Paged KV caches: shuffled pages, spare pages, the last page partly used, page sizes that are
// and are not whole key blocks; decode and prefill, split and not; NaN in every unused row.

class PagedGpu : public ::testing::TestWithParam<Case> {};

TEST_P(PagedGpu, MatchesReference) {
  SKIP_WITHOUT_SM90();
  expect_matches_reference(GetParam(), run_case(GetParam(), 4321));
}

std::vector<Case> paged_cases() {
  std::vector<Case> cases;
  for (DataType dtype : {DataType::FP16, DataType::BF16}) {
    for (int page_size : {16, 32, 48, 64, 128, 256}) {
      Case decode = make("decode", dtype, 128, 3, 1, 1111, 16, 2, Split::kForced, 4);
      decode.page_size = page_size;
      decode.seqused_k = {1111, 600, 17};
      decode.nan_tail = true;
      cases.push_back(decode);
      Case prefill = make("prefill", dtype, 128, 2, 300, 700, 8, 2, Split::kNone);
      prefill.page_size = page_size;
      prefill.causal = true;
      prefill.seqused_k = {700, 333};
      prefill.nan_tail = true;
      cases.push_back(prefill);
    }
    // Causal prefill of equal lengths (no seqused_k) with more tiles than SMs: the general kernel
    // in the scheduler's paired order, with an odd count of query blocks (11) and of heads (21).
    Case paired = make("paired_prefill", dtype, 128, 3, 1300, 1300, 7, 7, Split::kNone);
    paired.page_size = 64;
    paired.causal = true;
    cases.push_back(paired);
    // Pages of 16 (16-row TMA boxes) at every kernel width, 72 padded onto the 80-wide kernels
    // (its last 16-byte column zero-filled): decode split and prefill causal.
    for (int head_dim : {64, 72, 80, 96, 192, 256}) {
      Case decode = make("chunks_decode", dtype, head_dim, 2, 1, 500, 8, 2, Split::kForced, 3);
      decode.page_size = 16;
      decode.seqused_k = {500, 77};
      decode.nan_tail = true;
      cases.push_back(decode);
      Case prefill = make("chunks_prefill", dtype, head_dim, 2, 150, 300, 4, 2, Split::kNone);
      prefill.page_size = 16;
      prefill.causal = true;
      prefill.seqused_k = {300, 129};
      prefill.nan_tail = true;
      cases.push_back(prefill);
    }
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Paged, PagedGpu, ::testing::ValuesIn(paged_cases()), param_name);

// ---------------------------------------------------------------------------------------------
// NaN past seqused_k in a contiguous cache: P = 0 there, and 0 x NaN would poison O unless V's
// rows past the last key are zeroed.

class NanTailGpu : public ::testing::TestWithParam<Case> {};

TEST_P(NanTailGpu, MatchesReference) {
  SKIP_WITHOUT_SM90();
  expect_matches_reference(GetParam(), run_case(GetParam(), 999));
}

std::vector<Case> nan_tail_cases() {
  std::vector<Case> cases;
  for (DataType dtype : {DataType::FP16, DataType::BF16}) {
    for (int head_dim : {64, 128, 256}) {
      Case c = make("seqused", dtype, head_dim, 3, 50, 640, 4, 2, Split::kNone);
      c.seqused_k = {1, 333, 640};
      c.nan_tail = true;
      cases.push_back(c);
      Case split = c;
      split.split = Split::kForced;
      split.forced_splits = 3;
      split.expect_split = true;
      cases.push_back(split);
    }
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Decode, NanTailGpu, ::testing::ValuesIn(nan_tail_cases()), param_name);

// ---------------------------------------------------------------------------------------------
// Every general instance through the new paths (paged + split + packed), and the serving options
// on top: causal, windows, softcap.

class DecodeComboGpu : public ::testing::TestWithParam<Case> {};

TEST_P(DecodeComboGpu, MatchesReference) {
  SKIP_WITHOUT_SM90();
  expect_matches_reference(GetParam(), run_case(GetParam(), 2718));
}

std::vector<Case> combo_cases() {
  std::vector<Case> cases;
  for (DataType dtype : {DataType::FP16, DataType::BF16}) {
    for (int head_dim : {64, 80, 96, 128, 192, 256}) {
      Case c = make("every_instance", dtype, head_dim, 2, 2, 900, 8, 2, Split::kForced, 3);
      c.page_size = 32;
      c.seqused_k = {900, 211};
      c.causal = true;
      c.nan_tail = true;
      cases.push_back(c);
    }
    Case window = make("window", dtype, 128, 2, 8, 3000, 16, 2, Split::kForced, 6);
    window.window_left = 500;
    window.window_right = 0;
    window.softcap = 30.0f;
    window.page_size = 64;
    window.seqused_k = {3000, 1200};
    cases.push_back(window);
    Case no_keys = make("no_keys", dtype, 128, 3, 1, 512, 16, 2, Split::kForced, 4);
    no_keys.seqused_k = {0, 512, 0};   // entries 0 and 2 see no key: O = 0, LSE -inf
    cases.push_back(no_keys);
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Decode, DecodeComboGpu, ::testing::ValuesIn(combo_cases()), param_name);

// ---------------------------------------------------------------------------------------------
// A split call is deterministic, and its result agrees with the unsplit one to rounding.

TEST(DecodeSplitGpu, DeterministicAndCloseToUnsplit) {
  SKIP_WITHOUT_SM90();
  const Case split = make("det", DataType::BF16, 128, 2, 1, 5000, 16, 2, Split::kForced, 9);
  const RunResult a = run_case(split, 77), b = run_case(split, 77);
  Case unsplit = split;
  unsplit.split = Split::kNone;
  unsplit.expect_split = false;
  const RunResult c = run_case(unsplit, 77);
  if (!expect_matches_reference(split, a) || !expect_matches_reference(unsplit, c)) return;
  EXPECT_TRUE(a.out_bits == b.out_bits) << "two runs of the same split call differ";
  std::vector<double> x, y;
  for (size_t e = 0; e < a.out_bits.size(); ++e) {
    x.push_back(flash::host::decode(DataType::BF16, a.out_bits[e]));
    y.push_back(flash::host::decode(DataType::BF16, c.out_bits[e]));
  }
  EXPECT_LE(flash::host::compare(y.data(), x.data(), x.size()).rel_l2, max_rel_l2(DataType::BF16));
}

// ---------------------------------------------------------------------------------------------
// A split call without its workspace, or with too little, is rejected and writes nothing.

TEST(DecodeWorkspaceGpu, MissingOrSmallWorkspaceWritesNothing) {
  SKIP_WITHOUT_SM90();
  const int heads = 16, heads_k = 2, d = 128, cache = 4096;
  GuardedDeviceBuffer q(size_t(heads) * d * 2), k(size_t(cache) * heads_k * d * 2), v(size_t(cache) * heads_k * d * 2);
  for (GuardedDeviceBuffer* buffer : {&q, &k, &v}) buffer->poison(0x3C);
  GuardedDeviceBuffer out(size_t(heads) * d * 2), lse(size_t(heads) * sizeof(float));
  flash::FlashAttentionParams p;
  p.q = q.data(), p.k = k.data(), p.v = v.data(), p.out = out.data();
  p.softmax_lse = static_cast<float*>(lse.data());
  p.batch_size = 1, p.seqlen_q = 1, p.seqlen_k = cache, p.num_heads = heads, p.num_heads_k = heads_k, p.head_dim = d;
  p.dtype = DataType::BF16;
  p.num_splits = 8;
  size_t needed = 0;
  ASSERT_EQ(flash::flash_attention_workspace_size(p, &needed), flash::kSuccess) << flash::last_error_message();
  ASSERT_GT(needed, 0u);
  GuardedDeviceBuffer small(needed - 16);
  for (int attempt = 0; attempt < 2; ++attempt) {
    out.poison(flash::host::kPoisonNaN);
    lse.poison(flash::host::kPoisonNaN);
    if (attempt == 1) {
      p.workspace = small.data();
      p.workspace_bytes = small.bytes();
    }
    const int status = flash::flash_attention_forward(p, nullptr);
    EXPECT_EQ(status, flash::kErrorInvalidWorkspace) << flash::status_string(status) << ": " << flash::last_error_message();
    const std::string message = flash::last_error_message();
    EXPECT_NE(message.find(std::to_string(needed) + " bytes"), std::string::npos) << message;
    std::printf("[ rejected ] %s\n", message.c_str());
    flash::host::cuda_check(cudaDeviceSynchronize(), "sync");
    std::vector<uint8_t> bytes(out.bytes());
    out.copy_to_host(bytes.data(), bytes.size());
    EXPECT_TRUE(std::all_of(bytes.begin(), bytes.end(), [](uint8_t b) { return b == flash::host::kPoisonNaN; }))
        << "a rejected call wrote the output";
  }
}

}  // namespace
