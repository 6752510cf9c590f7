// Argument checks of the public API: every rejection has its own status code and a message that
// names the field, the offending value and what is supported. No GPU is needed: the pointers are
// fake (aligned, never dereferenced), which also shows that the checks run before any CUDA call.
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include "api/validate.h"
#include "flash_api.h"

namespace flash {
namespace {

using detail::FwdArgs;
using detail::kKernelTable;
using detail::kNumKernels;

// Far enough apart that the default-sized tensors below never overlap.
constexpr uintptr_t kQAddress = 0x10000000;
constexpr uintptr_t kKAddress = 0x20000000;
constexpr uintptr_t kVAddress = 0x30000000;
constexpr uintptr_t kOutAddress = 0x40000000;
constexpr uintptr_t kLseAddress = 0x50000000;
constexpr uintptr_t kCuSeqlensQAddress = 0x60000000;
constexpr uintptr_t kCuSeqlensKAddress = 0x60001000;
constexpr uintptr_t kSequsedKAddress = 0x60002000;
constexpr uintptr_t kPageTableAddress = 0x60003000;
constexpr uintptr_t kWorkspaceAddress = 0x70000000;
// A batch value that no check accepts or rejects by accident; a failed check must leave it alone.
constexpr int kUntouchedBatch = -7;

const void* fake(uintptr_t address) { return reinterpret_cast<const void*>(address); }
void* fake_mut(uintptr_t address) { return reinterpret_cast<void*>(address); }
const int32_t* fake_int(uintptr_t address) { return reinterpret_cast<const int32_t*>(address); }

// A valid GQA problem: q/out [2, 128, 8, 128], k/v [2, 256, 4, 128], FP16.
FlashAttentionParams valid_params() {
  FlashAttentionParams p;
  p.q = fake(kQAddress);
  p.k = fake(kKAddress);
  p.v = fake(kVAddress);
  p.out = fake_mut(kOutAddress);
  p.batch_size = 2;
  p.seqlen_q = 128;
  p.seqlen_k = 256;
  p.num_heads = 8;
  p.num_heads_k = 4;
  p.head_dim = 128;
  p.dtype = DataType::FP16;
  return p;
}

std::string dtype_label(DataType dtype) {
  switch (dtype) {
    case DataType::FP16: return "FP16";
    case DataType::BF16: return "BF16";
    case DataType::FP8_E4M3: return "FP8_E4M3";
    case DataType::AUTO: return "AUTO";
  }
  return "?";
}

// The supported lists as the messages must print them, derived from the table here as well.
std::string table_dtypes() {
  std::vector<DataType> seen;
  std::string text;
  for (int i = 0; i < kNumKernels; ++i) {
    if (std::find(seen.begin(), seen.end(), kKernelTable[i].dtype) != seen.end()) continue;
    seen.push_back(kKernelTable[i].dtype);
    text += (text.empty() ? "" : ", ") + dtype_label(kKernelTable[i].dtype);
  }
  return text;
}

std::vector<int> table_head_dims(DataType dtype) {
  std::set<int> dims;
  for (int i = 0; i < kNumKernels; ++i) {
    if (kKernelTable[i].dtype == dtype) dims.insert(kKernelTable[i].head_dim);
  }
  return {dims.begin(), dims.end()};
}

std::string table_head_dims_text(DataType dtype) {
  std::string text;
  for (const int dim : table_head_dims(dtype)) text += (text.empty() ? "" : ", ") + std::to_string(dim);
  return text;
}

// Rejection through check_arguments and through the public entry point: same status, same
// message, every fragment present, and *args untouched.
void expect_rejected(const FlashAttentionParams& p, Status expected, std::initializer_list<std::string> fragments) {
  FwdArgs args;
  args.batch = kUntouchedBatch;
  detail::clear_last_error();
  EXPECT_EQ(detail::check_arguments(p, &args), expected);
  const std::string direct = last_error_message();
  for (const std::string& fragment : fragments) {
    EXPECT_NE(direct.find(fragment), std::string::npos) << "message \"" << direct << "\" lacks \"" << fragment << "\"";
  }
  EXPECT_EQ(args.batch, kUntouchedBatch) << "check_arguments wrote *args although it failed";

  EXPECT_EQ(flash_attention_forward(p, nullptr), expected);
  EXPECT_EQ(std::string(last_error_message()), direct);
}

TEST(ValidationPointers, NullQ) {
  FlashAttentionParams p = valid_params();
  p.q = nullptr;
  expect_rejected(p, kErrorNullPointer, {"q is null"});
}

TEST(ValidationPointers, NullK) {
  FlashAttentionParams p = valid_params();
  p.k = nullptr;
  expect_rejected(p, kErrorNullPointer, {"k is null"});
}

TEST(ValidationPointers, NullV) {
  FlashAttentionParams p = valid_params();
  p.v = nullptr;
  expect_rejected(p, kErrorNullPointer, {"v is null"});
}

TEST(ValidationPointers, NullOut) {
  FlashAttentionParams p = valid_params();
  p.out = nullptr;
  expect_rejected(p, kErrorNullPointer, {"out is null"});
}

TEST(ValidationSizes, ZeroBatchSize) {
  FlashAttentionParams p = valid_params();
  p.batch_size = 0;
  expect_rejected(p, kErrorInvalidSize, {"batch_size = 0", "positive"});
}

TEST(ValidationSizes, NegativeSeqlenQ) {
  FlashAttentionParams p = valid_params();
  p.seqlen_q = -5;
  expect_rejected(p, kErrorInvalidSize, {"seqlen_q = -5", "positive"});
}

TEST(ValidationSizes, ZeroSeqlenK) {
  FlashAttentionParams p = valid_params();
  p.seqlen_k = 0;
  expect_rejected(p, kErrorInvalidSize, {"seqlen_k = 0"});
}

TEST(ValidationSizes, ZeroNumHeads) {
  FlashAttentionParams p = valid_params();
  p.num_heads = 0;
  expect_rejected(p, kErrorInvalidSize, {"num_heads = 0"});
}

TEST(ValidationSizes, NegativeNumHeadsK) {
  FlashAttentionParams p = valid_params();
  p.num_heads_k = -1;
  expect_rejected(p, kErrorInvalidSize, {"num_heads_k = -1"});
}

TEST(ValidationSizes, ZeroHeadDim) {
  FlashAttentionParams p = valid_params();
  p.head_dim = 0;
  expect_rejected(p, kErrorInvalidSize, {"head_dim = 0"});
}

TEST(ValidationSizes, SeqlenKAboveTheTokenLimit) {
  FlashAttentionParams p = valid_params();
  p.seqlen_k = 1 << 30;
  expect_rejected(p, kErrorSizeOverflow, {"seqlen_k = 1073741824", "exceeds 1073741823"});
}

TEST(ValidationSizes, TotalQAboveTheTokenLimit) {
  FlashAttentionParams p = valid_params();
  p.total_q = std::numeric_limits<int>::max();
  expect_rejected(p, kErrorSizeOverflow, {"total_q = 2147483647", "exceeds 1073741823"});
}

TEST(ValidationHeads, NumHeadsNotMultipleOfNumHeadsK) {
  FlashAttentionParams p = valid_params();
  p.num_heads = 6;
  p.num_heads_k = 4;
  expect_rejected(p, kErrorHeadRatio, {"num_heads = 6 is not a multiple of num_heads_k = 4"});
}

TEST(ValidationHeads, MoreKvHeadsThanQueryHeads) {
  FlashAttentionParams p = valid_params();
  p.num_heads = 2;
  p.num_heads_k = 4;
  expect_rejected(p, kErrorHeadRatio, {"num_heads = 2", "num_heads_k = 4"});
}

TEST(ValidationDtype, ValueOutsideEnum) {
  FlashAttentionParams p = valid_params();
  p.dtype = static_cast<DataType>(7);
  expect_rejected(p, kErrorUnsupportedDtype, {"dtype = 7", "supported dtypes: " + table_dtypes()});
}

TEST(ValidationDtype, AutoIsNotAnInputDtype) {
  FlashAttentionParams p = valid_params();
  p.dtype = DataType::AUTO;
  expect_rejected(p, kErrorUnsupportedDtype, {"dtype = AUTO is only an out_dtype value", table_dtypes()});
}

FlashAttentionParams valid_fp8_params() {
  FlashAttentionParams p = valid_params();
  p.dtype = DataType::FP8_E4M3;
  return p;
}

TEST(ValidationFp8, DenseCallsPassAndResolveTheOutputDtype) {
  FlashAttentionParams p = valid_fp8_params();
  FwdArgs args;
  ASSERT_EQ(detail::check_arguments(p, &args), kSuccess) << last_error_message();
  EXPECT_EQ(args.out_dtype, DataType::BF16);
  p.out_dtype = DataType::FP16;
  p.is_causal = true;
  ASSERT_EQ(detail::check_arguments(p, &args), kSuccess) << last_error_message();
  EXPECT_EQ(args.out_dtype, DataType::FP16);
  // A workspace is accepted (FP8 calls never split).
  p.workspace = fake_mut(kOutAddress + (uintptr_t{1} << 32));
  p.workspace_bytes = 1 << 20;
  EXPECT_EQ(detail::check_arguments(p, &args), kSuccess) << last_error_message();
}

TEST(ValidationFp8, OutDtypeMustBeSixteenBit) {
  FlashAttentionParams p = valid_fp8_params();
  p.out_dtype = DataType::FP8_E4M3;
  expect_rejected(p, kErrorUnsupportedDtype, {"out_dtype = FP8_E4M3", "dtype = FP8_E4M3", "AUTO (BF16), BF16 or FP16"});
  p.out_dtype = static_cast<DataType>(9);
  expect_rejected(p, kErrorUnsupportedDtype, {"out_dtype = 9"});
}

TEST(ValidationFp8, SixteenBitInputsWriteTheirOwnDtype) {
  FlashAttentionParams p = valid_params();
  p.out_dtype = DataType::BF16;
  expect_rejected(p, kErrorUnsupportedDtype, {"out_dtype = BF16", "dtype = FP16", "AUTO or FP16"});
  p.out_dtype = DataType::FP16;
  FwdArgs args;
  EXPECT_EQ(detail::check_arguments(p, &args), kSuccess) << last_error_message();
}

// The general variant's features, named one by one (FP8 has dense kernels only).
TEST(ValidationFp8, GeneralFeaturesAreRejectedByName) {
  const int32_t* ints = reinterpret_cast<const int32_t*>(uintptr_t{0x7000000});
  struct Feature {
    const char* name;
    void (*set)(FlashAttentionParams&, const int32_t*);
  };
  const Feature features[] = {
      {"cu_seqlens_q/cu_seqlens_k", [](FlashAttentionParams& p, const int32_t* a) { p.cu_seqlens_q = a; p.cu_seqlens_k = a + 64; }},
      {"seqused_k", [](FlashAttentionParams& p, const int32_t* a) { p.seqused_k = a; }},
      {"window_size_left >= 0", [](FlashAttentionParams& p, const int32_t*) { p.window_size_left = 16; }},
      {"softcap > 0", [](FlashAttentionParams& p, const int32_t*) { p.softcap = 30.0f; }},
      {"page_table", [](FlashAttentionParams& p, const int32_t* a) { p.page_table = a; }},
      {"num_splits > 1", [](FlashAttentionParams& p, const int32_t*) { p.num_splits = 4; }},
  };
  for (const Feature& feature : features) {
    FlashAttentionParams p = valid_fp8_params();
    feature.set(p, ints);
    expect_rejected(p, kErrorUnsupportedDtype, {"dtype = FP8_E4M3 does not support", feature.name, "dense batches"});
  }
}

TEST(ValidationFp8, HeadDimIsAWholeSixteenByteRow) {
  FlashAttentionParams p = valid_fp8_params();
  p.head_dim = 72;   // fine for 16-bit types, 72 bytes per FP8 row
  expect_rejected(p, kErrorUnsupportedHeadDim, {"head_dim = 72 is not supported for FP8_E4M3", "a multiple of 16"});
  p.head_dim = 80;   // runs padded on the d128 kernel
  FwdArgs args;
  EXPECT_EQ(detail::check_arguments(p, &args), kSuccess) << last_error_message();
  ASSERT_NE(detail::find_kernel(DataType::FP8_E4M3, 80), nullptr);
  EXPECT_EQ(detail::find_kernel(DataType::FP8_E4M3, 80)->head_dim, 128);
}

TEST(ValidationFp8, StridesCountTheirOwnElementSize) {
  FlashAttentionParams p = valid_fp8_params();
  p.q_row_stride = 8 * 128 + 8;   // 8 extra bytes per FP8 row: not a 16-byte multiple
  expect_rejected(p, kErrorMisalignedStride, {"q_row_stride = 1032", "not a multiple of 16 bytes"});
  p = valid_fp8_params();
  p.q_row_stride = 8 * 128 + 16;   // 16 bytes: fine for FP8
  FwdArgs args;
  EXPECT_EQ(detail::check_arguments(p, &args), kSuccess) << last_error_message();
  // out is 16-bit: its strides are counted in 2-byte elements.
  p = valid_fp8_params();
  p.out_row_stride = 8 * 128 + 4;   // 8 bytes
  expect_rejected(p, kErrorMisalignedStride, {"out_row_stride = 1028", "(2056 bytes)"});
}

TEST(ValidationFp8, DescaleOnlyForFp8AndAligned) {
  const float* factor = reinterpret_cast<const float*>(uintptr_t{0x7100000});
  FlashAttentionParams p = valid_params();
  p.k_descale = factor;
  expect_rejected(p, kErrorInvalidDescale, {"k_descale is set with dtype = FP16", "FP8_E4M3 inputs only"});
  p = valid_params();
  p.descale_per_head = true;
  expect_rejected(p, kErrorInvalidDescale, {"descale_per_head is set with dtype = FP16"});
  p = valid_fp8_params();
  p.v_descale = reinterpret_cast<const float*>(uintptr_t{0x7100002});
  expect_rejected(p, kErrorInvalidDescale, {"v_descale = 0x7100002 is not aligned to 4 bytes"});
  p = valid_fp8_params();
  p.q_descale = p.k_descale = p.v_descale = factor;
  FwdArgs args;
  ASSERT_EQ(detail::check_arguments(p, &args), kSuccess) << last_error_message();
  EXPECT_EQ(args.descale_batch_stride, 0);
  EXPECT_EQ(args.descale_head_stride, 0);
  p.descale_per_head = true;
  ASSERT_EQ(detail::check_arguments(p, &args), kSuccess) << last_error_message();
  EXPECT_EQ(args.descale_batch_stride, p.num_heads_k);
  EXPECT_EQ(args.descale_head_stride, 1);
}

TEST(ValidationHeadDim, Fp16HeadDimNotAMultipleOf8) {
  FlashAttentionParams p = valid_params();
  p.head_dim = 100;
  expect_rejected(p, kErrorUnsupportedHeadDim,
                  {"head_dim = 100 is not supported for FP16; supported: a multiple of 8",
                   "kernels: " + table_head_dims_text(DataType::FP16)});
}

TEST(ValidationHeadDim, Bf16HeadDim12) {
  FlashAttentionParams p = valid_params();
  p.dtype = DataType::BF16;
  p.head_dim = 12;
  expect_rejected(p, kErrorUnsupportedHeadDim,
                  {"head_dim = 12 is not supported for BF16", "kernels: " + table_head_dims_text(DataType::BF16)});
}

TEST(ValidationHeadDim, HeadDimAboveEveryKernel) {
  FlashAttentionParams p = valid_params();
  p.head_dim = 512;
  expect_rejected(p, kErrorUnsupportedHeadDim, {"head_dim = 512", "FP16"});
  p.head_dim = 264;   // a multiple of 8, wider than every kernel
  expect_rejected(p, kErrorUnsupportedHeadDim, {"head_dim = 264", "FP16"});
}

// Multiples of 8 below the widest kernel run padded on the narrowest kernel at least as wide.
TEST(ValidationHeadDim, PaddedHeadDimsRunOnTheNarrowestWiderKernel) {
  for (DataType dtype : {DataType::FP16, DataType::BF16}) {
    for (int head_dim : {8, 40, 64, 72, 80, 96, 120, 136, 192, 200, 256}) {
      FlashAttentionParams p = valid_params();
      p.dtype = dtype;
      p.head_dim = head_dim;
      FwdArgs args;
      EXPECT_EQ(detail::check_arguments(p, &args), kSuccess) << head_dim << ": " << last_error_message();
      EXPECT_EQ(args.head_dim, head_dim);
      const detail::KernelEntry* entry = detail::find_kernel(dtype, head_dim);
      ASSERT_NE(entry, nullptr) << head_dim;
      EXPECT_GE(entry->head_dim, head_dim);
      for (int i = 0; i < kNumKernels; ++i) {
        const detail::KernelEntry& other = kKernelTable[i];
        EXPECT_FALSE(other.dtype == dtype && other.head_dim >= head_dim && other.head_dim < entry->head_dim)
            << "head_dim " << head_dim << " should run on the " << other.head_dim << " kernel, not " << entry->head_dim;
      }
    }
  }
}

TEST(ValidationScale, Negative) {
  FlashAttentionParams p = valid_params();
  p.softmax_scale = -1.0f;
  expect_rejected(p, kErrorInvalidScale, {"softmax_scale = -1", ">= 0"});
}

TEST(ValidationScale, NaN) {
  FlashAttentionParams p = valid_params();
  p.softmax_scale = std::nanf("");
  expect_rejected(p, kErrorInvalidScale, {"softmax_scale = nan", "finite"});
}

TEST(ValidationScale, Infinite) {
  FlashAttentionParams p = valid_params();
  p.softmax_scale = INFINITY;
  expect_rejected(p, kErrorInvalidScale, {"softmax_scale = inf", "finite"});
}

TEST(ValidationStrides, NegativeKHeadStride) {
  FlashAttentionParams p = valid_params();
  p.k_head_stride = -128;
  expect_rejected(p, kErrorMisalignedStride, {"k_head_stride = -128", "negative"});
}

TEST(ValidationStrides, QRowStrideNotSixteenBytes) {
  FlashAttentionParams p = valid_params();
  p.q_row_stride = 100;
  expect_rejected(p, kErrorMisalignedStride, {"q_row_stride = 100 elements (200 bytes) is not a multiple of 16 bytes"});
}

TEST(ValidationStrides, VHeadStrideEightBytes) {
  FlashAttentionParams p = valid_params();
  p.v_head_stride = 4;
  expect_rejected(p, kErrorMisalignedStride, {"v_head_stride = 4 elements (8 bytes)", "16 bytes"});
}

TEST(ValidationStrides, OutBatchStrideNotSixteenBytes) {
  FlashAttentionParams p = valid_params();
  p.out_batch_stride = 131076;
  expect_rejected(p, kErrorMisalignedStride, {"out_batch_stride = 131076", "16 bytes"});
}

TEST(ValidationAlignment, QPointer) {
  FlashAttentionParams p = valid_params();
  p.q = fake(kQAddress + 8);
  expect_rejected(p, kErrorMisalignedPointer, {"q = 0x10000008", "16 bytes"});
}

TEST(ValidationAlignment, OutPointer) {
  FlashAttentionParams p = valid_params();
  p.out = fake_mut(kOutAddress + 2);
  expect_rejected(p, kErrorMisalignedPointer, {"out = 0x40000002", "16 bytes"});
}

TEST(ValidationAlignment, LsePointer) {
  FlashAttentionParams p = valid_params();
  p.softmax_lse = reinterpret_cast<float*>(kLseAddress + 2);
  expect_rejected(p, kErrorMisalignedPointer, {"softmax_lse = 0x50000002", "4 bytes"});
}

TEST(ValidationRange, StrideAtTmaLimit) {
  FlashAttentionParams p = valid_params();
  p.k_batch_stride = int64_t{1} << 39;  // 2^40 bytes in FP16
  expect_rejected(p, kErrorSizeOverflow, {"k_batch_stride = 549755813888 elements (1099511627776 bytes)", "2^40"});
}

TEST(ValidationRange, LastOffsetOverflowsInt64) {
  FlashAttentionParams p = valid_params();
  p.batch_size = INT_MAX;
  p.q_batch_stride = int64_t{1} << 38;  // under the stride limit, but (INT_MAX - 1) * 2^38 > 2^63
  expect_rejected(p, kErrorSizeOverflow, {"q: the last element's offset", "q_batch_stride", "274877906944"});
}

TEST(ValidationRange, DefaultBatchStrideOverflowsInt64) {
  FlashAttentionParams p = valid_params();
  p.seqlen_q = (1 << 30) - 1;   // the longest sequence the kernels address
  p.num_heads = 1 << 30;
  expect_rejected(p, kErrorSizeOverflow,
                  {"q_batch_stride default seqlen_q * num_heads * head_dim", "1073741823 * 1073741824 * 128"});
}

TEST(ValidationRange, LseSizeOverflowsInt64) {
  FlashAttentionParams p = valid_params();
  p.batch_size = INT_MAX;
  p.seqlen_q = (1 << 30) - 1;
  p.num_heads = 1 << 30;
  // Small explicit q and out strides keep their own offsets in range so the LSE check is reached.
  p.q_batch_stride = p.q_row_stride = p.q_head_stride = 8;
  p.out_batch_stride = p.out_row_stride = p.out_head_stride = 8;
  p.softmax_lse = reinterpret_cast<float*>(kLseAddress);
  expect_rejected(p, kErrorSizeOverflow, {"softmax_lse size batch_size * num_heads * seqlen_q", "overflows int64"});
}

TEST(ValidationAliasing, OutHeadsOverlapWithinARow) {
  FlashAttentionParams p = valid_params();
  p.out_head_stride = 64;  // half of head_dim: head h+1 starts inside head h
  expect_rejected(p, kErrorAliasing, {"out overlaps itself", "out_head_stride = 64", "head_dim"});
}

TEST(ValidationAliasing, OutRowsShareHeads) {
  FlashAttentionParams p = valid_params();
  p.out_row_stride = 128;  // one head wide, but each row holds 8 heads
  expect_rejected(p, kErrorAliasing, {"out overlaps itself", "out_row_stride"});
}

TEST(ValidationAliasing, OutBatchesOverlap) {
  FlashAttentionParams p = valid_params();
  p.out_batch_stride = 8;
  expect_rejected(p, kErrorAliasing, {"out overlaps itself", "out_batch_stride = 8"});
}

TEST(ValidationAliasing, OutOverlapsQ) {
  FlashAttentionParams p = valid_params();
  p.out = fake_mut(kQAddress + 0x1000);
  expect_rejected(p, kErrorAliasing, {"out bytes [0x10001000", "overlap q bytes [0x10000000"});
}

TEST(ValidationAliasing, OutEqualsK) {
  FlashAttentionParams p = valid_params();
  p.out = fake_mut(kKAddress);
  expect_rejected(p, kErrorAliasing, {"out bytes", "overlap k bytes"});
}

TEST(ValidationAliasing, OutEndsInsideV) {
  FlashAttentionParams p = valid_params();
  p.out = fake_mut(kVAddress - 0x100);
  expect_rejected(p, kErrorAliasing, {"out bytes", "overlap v bytes [0x30000000"});
}

TEST(ValidationAliasing, LseInsideOut) {
  FlashAttentionParams p = valid_params();
  p.softmax_lse = reinterpret_cast<float*>(kOutAddress + 0x400);
  expect_rejected(p, kErrorAliasing, {"out bytes", "overlap softmax_lse bytes [0x40000400"});
}

TEST(ValidationAliasing, LseInsideK) {
  FlashAttentionParams p = valid_params();
  p.softmax_lse = reinterpret_cast<float*>(kKAddress + 0x40);
  expect_rejected(p, kErrorAliasing, {"softmax_lse bytes [0x20000040", "overlap k bytes"});
}

// ---- Local (sliding-window) attention ----------------------------------------------------------

TEST(ValidationWindow, LeftBelowMinusOne) {
  FlashAttentionParams p = valid_params();
  p.window_size_left = -2;
  expect_rejected(p, kErrorInvalidWindow, {"window_size_left = -2", ">= 0", "-1 (no limit"});
}

TEST(ValidationWindow, RightBelowMinusOne) {
  FlashAttentionParams p = valid_params();
  p.window_size_right = INT_MIN;
  expect_rejected(p, kErrorInvalidWindow, {"window_size_right = " + std::to_string(INT_MIN), ">= 0", "-1"});
}

TEST(ValidationWindow, CausalWithPositiveRight) {
  FlashAttentionParams p = valid_params();
  p.is_causal = true;
  p.window_size_left = 64;
  p.window_size_right = 3;
  expect_rejected(p, kErrorInvalidWindow, {"window_size_right = 3", "is_causal", "-1 or 0"});
}

// ---- Softcap -------------------------------------------------------------------------------------

TEST(ValidationSoftcap, Negative) {
  FlashAttentionParams p = valid_params();
  p.softcap = -30.0f;
  expect_rejected(p, kErrorInvalidSoftcap, {"softcap = -30", "finite and >= 0", "0 turns the softcap off"});
}

TEST(ValidationSoftcap, NaN) {
  FlashAttentionParams p = valid_params();
  p.softcap = std::nanf("");
  expect_rejected(p, kErrorInvalidSoftcap, {"softcap = nan", "finite"});
}

TEST(ValidationSoftcap, Infinite) {
  FlashAttentionParams p = valid_params();
  p.softcap = INFINITY;
  expect_rejected(p, kErrorInvalidSoftcap, {"softcap = inf", "finite"});
}

TEST(ValidationSoftcap, NegativeInfinite) {
  FlashAttentionParams p = valid_params();
  p.softcap = -INFINITY;
  expect_rejected(p, kErrorInvalidSoftcap, {"softcap = -inf", "finite"});
}

// Finite but extreme: one of the kernel's two factors would not be a normal fp32 number.
TEST(ValidationSoftcap, TinySoftcapOverflowsTheScaleFactor) {
  FlashAttentionParams p = valid_params();
  p.softmax_scale = 1e30f;
  p.softcap = 1e-10f;   // softmax_scale / softcap = 1e40
  expect_rejected(p, kErrorInvalidSoftcap,
                  {"softcap = 1e-10", "softmax_scale / softcap = 1e+40", "not a normal fp32 number", "must lie in ["});
}

TEST(ValidationSoftcap, DenormalSoftcapIsRejected) {
  FlashAttentionParams p = valid_params();
  p.softcap = std::numeric_limits<float>::denorm_min();
  expect_rejected(p, kErrorInvalidSoftcap, {"softcap = ", "softmax_scale / softcap", "not a normal fp32 number"});
}

TEST(ValidationSoftcap, HugeSoftcapOverflowsTheLog2Factor) {
  FlashAttentionParams p = valid_params();
  p.softmax_scale = 1e30f;
  p.softcap = 3e38f;   // softcap * log2(e) > FLT_MAX
  expect_rejected(p, kErrorInvalidSoftcap, {"softcap = 3e+38", "softcap * log2(e)", "not a normal fp32 number"});
}

// A huge softcap with a small scale: softmax_scale / softcap would flush to 0 and read as "off".
TEST(ValidationSoftcap, HugeSoftcapUnderflowsTheScaleFactor) {
  FlashAttentionParams p = valid_params();
  p.softcap = 1e38f;
  expect_rejected(p, kErrorInvalidSoftcap, {"softcap = 1e+38", "softmax_scale / softcap", "not a normal fp32 number"});
}

// ---- Variable-length batches ---------------------------------------------------------------------

// A valid varlen problem: 2 sequences packed into q/out [300, 8, 128] and k/v [500, 4, 128], the
// longest 200 queries and 400 keys.
FlashAttentionParams valid_varlen_params() {
  FlashAttentionParams p = valid_params();
  p.cu_seqlens_q = fake_int(kCuSeqlensQAddress);
  p.cu_seqlens_k = fake_int(kCuSeqlensKAddress);
  p.seqlen_q = 200;
  p.seqlen_k = 400;
  p.total_q = 300;
  p.total_k = 500;
  return p;
}

TEST(ValidationVarlen, OnlyCuSeqlensQ) {
  FlashAttentionParams p = valid_varlen_params();
  p.cu_seqlens_k = nullptr;
  expect_rejected(p, kErrorInvalidVarlen,
                  {"cu_seqlens_q = 0x60000000 is set but cu_seqlens_k is null", "need both cu_seqlens_q and cu_seqlens_k"});
}

TEST(ValidationVarlen, OnlyCuSeqlensK) {
  FlashAttentionParams p = valid_varlen_params();
  p.cu_seqlens_q = nullptr;
  expect_rejected(p, kErrorInvalidVarlen,
                  {"cu_seqlens_k = 0x60001000 is set but cu_seqlens_q is null", "need both"});
}

TEST(ValidationVarlen, TotalQWithoutCuSeqlens) {
  FlashAttentionParams p = valid_params();
  p.total_q = 256;
  expect_rejected(p, kErrorInvalidVarlen, {"total_q = 256 without cu_seqlens_q and cu_seqlens_k", "must be 0"});
}

TEST(ValidationVarlen, TotalKWithoutCuSeqlens) {
  FlashAttentionParams p = valid_params();
  p.total_k = -1;
  expect_rejected(p, kErrorInvalidVarlen, {"total_k = -1 without cu_seqlens_q and cu_seqlens_k"});
}

TEST(ValidationVarlen, ZeroTotalQ) {
  FlashAttentionParams p = valid_varlen_params();
  p.total_q = 0;
  expect_rejected(p, kErrorInvalidVarlen, {"total_q = 0 must be positive", "row count"});
}

TEST(ValidationVarlen, NegativeTotalK) {
  FlashAttentionParams p = valid_varlen_params();
  p.total_k = -500;
  expect_rejected(p, kErrorInvalidVarlen, {"total_k = -500 must be positive"});
}

TEST(ValidationVarlen, LongestQueryExceedsTotalQ) {
  FlashAttentionParams p = valid_varlen_params();
  p.seqlen_q = 301;
  expect_rejected(p, kErrorInvalidVarlen, {"seqlen_q = 301 exceeds total_q = 300", "longest sequence"});
}

TEST(ValidationVarlen, LongestKeyExceedsTotalK) {
  FlashAttentionParams p = valid_varlen_params();
  p.seqlen_k = 501;
  expect_rejected(p, kErrorInvalidVarlen, {"seqlen_k = 501 exceeds total_k = 500"});
}

TEST(ValidationVarlen, EveryBatchStrideMustBeZero) {
  const std::vector<std::pair<std::string, int64_t FlashAttentionParams::*>> fields = {
      {"q_batch_stride", &FlashAttentionParams::q_batch_stride},
      {"k_batch_stride", &FlashAttentionParams::k_batch_stride},
      {"v_batch_stride", &FlashAttentionParams::v_batch_stride},
      {"out_batch_stride", &FlashAttentionParams::out_batch_stride}};
  for (const auto& [name, field] : fields) {
    SCOPED_TRACE(name);
    FlashAttentionParams p = valid_varlen_params();
    p.*field = 300 * 8 * 128;
    expect_rejected(p, kErrorInvalidVarlen,
                    {name + " = " + std::to_string(300 * 8 * 128) + " must be 0 with cu_seqlens_q/cu_seqlens_k",
                     "no batch dimension"});
  }
}

TEST(ValidationVarlen, MisalignedCuSeqlensQ) {
  FlashAttentionParams p = valid_varlen_params();
  p.cu_seqlens_q = fake_int(kCuSeqlensQAddress + 2);
  expect_rejected(p, kErrorMisalignedPointer, {"cu_seqlens_q = 0x60000002 is not aligned to 4 bytes (int32)"});
}

TEST(ValidationVarlen, MisalignedCuSeqlensK) {
  FlashAttentionParams p = valid_varlen_params();
  p.cu_seqlens_k = fake_int(kCuSeqlensKAddress + 1);
  expect_rejected(p, kErrorMisalignedPointer, {"cu_seqlens_k = 0x60001001", "4 bytes"});
}

TEST(ValidationVarlen, MisalignedSequsedKWithAndWithoutCuSeqlens) {
  FlashAttentionParams p = valid_varlen_params();
  p.seqused_k = fake_int(kSequsedKAddress + 3);
  expect_rejected(p, kErrorMisalignedPointer, {"seqused_k = 0x60002003", "4 bytes"});
  p = valid_params();
  p.seqused_k = fake_int(kSequsedKAddress + 2);
  expect_rejected(p, kErrorMisalignedPointer, {"seqused_k = 0x60002002", "4 bytes"});
}

// Packed tensors span total rows (batch 1): out right after q's 300 rows is fine, one row earlier
// it overlaps. Without varlen the same q would span batch_size * seqlen_q = 400 rows.
TEST(ValidationVarlen, RangesUseTotalRows) {
  FlashAttentionParams p = valid_varlen_params();
  const uintptr_t q_bytes = uintptr_t{300} * 8 * 128 * 2;
  p.out = fake_mut(kQAddress + q_bytes);
  FwdArgs args;
  EXPECT_EQ(detail::check_arguments(p, &args), kSuccess) << last_error_message();
  p.out = fake_mut(kQAddress + q_bytes - 8 * 128 * 2);
  // q: 300 * 8 * 128 fp16 = 0x96000 bytes.
  expect_rejected(p, kErrorAliasing, {"out bytes", "overlap q bytes [0x10000000, 0x10096000)"});
}

// softmax_lse is [num_heads, total_q]: 8 * 300 floats.
TEST(ValidationVarlen, LseRangeIsHeadsTimesTotalQ) {
  FlashAttentionParams p = valid_varlen_params();
  const uintptr_t lse_bytes = uintptr_t{8} * 300 * 4;
  p.softmax_lse = reinterpret_cast<float*>(kKAddress - lse_bytes);   // ends where k begins
  FwdArgs args;
  EXPECT_EQ(detail::check_arguments(p, &args), kSuccess) << last_error_message();
  p.softmax_lse = reinterpret_cast<float*>(kKAddress - lse_bytes + 4);
  expect_rejected(p, kErrorAliasing, {"softmax_lse bytes", "overlap k bytes [0x20000000"});
}

TEST(ValidationVarlen, OutSelfOverlapUsesTotalQ) {
  FlashAttentionParams p = valid_varlen_params();
  p.out_row_stride = 128;   // one head wide, but each packed row holds 8 heads
  expect_rejected(p, kErrorAliasing, {"out overlaps itself", "out_row_stride * total_q = 128 * 300"});
}

TEST(ValidationVarlen, TensorOffsetOverflowHasNoBatchTerm) {
  FlashAttentionParams p = valid_varlen_params();
  p.total_q = (1 << 30) - 1;
  p.q_row_stride = int64_t{1} << 38;   // (2^30 - 2) * 2^38 > 2^63
  expect_rejected(p, kErrorSizeOverflow,
                  {"q: the last element's offset (total_q - 1) * q_row_stride", "(1073741823 - 1) * 274877906944"});
}

TEST(ValidationVarlen, OutMustNotOverlapTheInt32Arrays) {
  FlashAttentionParams p = valid_varlen_params();
  p.cu_seqlens_k = fake_int(kOutAddress + 0x100);
  expect_rejected(p, kErrorAliasing, {"out bytes", "overlap cu_seqlens_k bytes [0x40000100, 0x4000010c)"});
  p = valid_params();
  p.seqused_k = fake_int(kLseAddress + 0x10);
  p.softmax_lse = reinterpret_cast<float*>(kLseAddress);
  expect_rejected(p, kErrorAliasing, {"softmax_lse bytes", "overlap seqused_k bytes [0x50000010, 0x50000018)"});
}

// ---- Paged KV cache ----------------------------------------------------------------------------

// A valid paged call: k/v [64 pages, 16 rows, 4 heads, 128] behind a [2, 20] page table.
FlashAttentionParams valid_paged_params() {
  FlashAttentionParams p = valid_params();
  p.page_table = fake_int(kPageTableAddress);
  p.page_table_stride = 20;
  p.page_size = 16;
  p.num_pages = 64;
  p.seqlen_k = 300;   // <= 20 * 16
  return p;
}

TEST(ValidationPaging, PagingFieldsWithoutPageTable) {
  for (int field = 0; field < 3; ++field) {
    FlashAttentionParams p = valid_params();
    const char* name = field == 0 ? "page_size = 16" : field == 1 ? "num_pages = 16" : "page_table_stride = 16";
    (field == 0 ? p.page_size : field == 1 ? p.num_pages : p.page_table_stride) = 16;
    expect_rejected(p, kErrorInvalidPaging, {name, "without page_table"});
  }
}

TEST(ValidationPaging, NonPositiveFields) {
  FlashAttentionParams p = valid_paged_params();
  p.page_size = 0;
  expect_rejected(p, kErrorInvalidPaging, {"page_size = 0 must be positive"});
  p = valid_paged_params();
  p.num_pages = -2;
  expect_rejected(p, kErrorInvalidPaging, {"num_pages = -2 must be positive"});
  p = valid_paged_params();
  p.page_table_stride = 0;
  expect_rejected(p, kErrorInvalidPaging, {"page_table_stride = 0 must be positive"});
}

TEST(ValidationPaging, PageSizeMultipleOf16) {
  for (int page_size : {8, 24, 100}) {
    FlashAttentionParams p = valid_paged_params();
    p.page_size = page_size;
    p.page_table_stride = 64;
    expect_rejected(p, kErrorInvalidPaging, {"page_size = " + std::to_string(page_size), "multiple of 16"});
  }
}

TEST(ValidationPaging, CacheMustFitThePageTableRow) {
  FlashAttentionParams p = valid_paged_params();
  p.seqlen_k = 321;
  expect_rejected(p, kErrorInvalidPaging, {"seqlen_k = 321", "page_table_stride * page_size = 20 * 16 = 320"});
}

TEST(ValidationPaging, NotWithCuSeqlens) {
  FlashAttentionParams p = valid_paged_params();
  p.cu_seqlens_q = fake_int(kCuSeqlensQAddress);
  p.cu_seqlens_k = fake_int(kCuSeqlensKAddress);
  p.total_q = 300;
  p.total_k = 500;
  p.seqlen_q = 100;
  p.seqlen_k = 300;
  expect_rejected(p, kErrorInvalidPaging, {"page_table with cu_seqlens_q/cu_seqlens_k is not supported", "seqused_k"});
}

TEST(ValidationPaging, MisalignedPageTable) {
  FlashAttentionParams p = valid_paged_params();
  p.page_table = fake_int(kPageTableAddress + 2);
  expect_rejected(p, kErrorMisalignedPointer, {"page_table = 0x60003002", "4 bytes"});
}

TEST(ValidationPaging, KvRangesArePages) {
  // k is [num_pages, page_size, heads_k, d]: the last element's offset names num_pages.
  FlashAttentionParams p = valid_paged_params();
  p.num_pages = INT_MAX;
  p.k_batch_stride = int64_t{1} << 40;
  expect_rejected(p, kErrorSizeOverflow, {"k_batch_stride"});
  p = valid_paged_params();
  p.k_batch_stride = int64_t{1} << 38;   // 2^39 bytes: a valid TMA stride
  p.v_batch_stride = p.k_batch_stride;
  p.num_pages = 1 << 26;
  expect_rejected(p, kErrorSizeOverflow, {"(num_pages - 1) * k_batch_stride", "(67108864 - 1) * 274877906944"});
}

TEST(ValidationPaging, OutMustNotOverlapThePageTable) {
  FlashAttentionParams p = valid_paged_params();
  p.page_table = fake_int(kOutAddress + 64);
  expect_rejected(p, kErrorAliasing, {"out bytes", "overlap page_table bytes [0x40000040, 0x400000e0)"});
}

TEST(ValidationPaging, Resolves) {
  FwdArgs args;
  ASSERT_EQ(detail::check_arguments(valid_paged_params(), &args), kSuccess) << last_error_message();
  EXPECT_EQ(args.page_table, fake_int(kPageTableAddress));
  EXPECT_EQ(args.page_table_stride, 20);
  EXPECT_EQ(args.page_size, 16);
  EXPECT_EQ(args.num_pages, 64);
  // Default page stride: page_size * heads_k * head_dim.
  EXPECT_EQ(args.k_strides.batch, 16 * 4 * 128);
  EXPECT_EQ(args.k_strides.row, 4 * 128);
  EXPECT_EQ(args.v_strides.batch, 16 * 4 * 128);
  EXPECT_EQ(args.q_strides.batch, 128 * 8 * 128);
}

// ---- Split-KV and the workspace ---------------------------------------------------------------

TEST(ValidationSplits, NumSplitsRange) {
  FlashAttentionParams p = valid_params();
  p.num_splits = -1;
  expect_rejected(p, kErrorInvalidSplits, {"num_splits = -1", "256"});
  p.num_splits = kMaxSplits + 1;
  expect_rejected(p, kErrorInvalidSplits, {"num_splits = 257"});
  p.num_splits = kMaxSplits;
  FwdArgs args;
  EXPECT_EQ(detail::check_arguments(p, &args), kSuccess) << last_error_message();
  EXPECT_EQ(args.requested_splits, kMaxSplits);
}

TEST(ValidationSplits, WorkspacePointerAndSizeTogether) {
  FlashAttentionParams p = valid_params();
  p.workspace_bytes = 4096;
  expect_rejected(p, kErrorInvalidWorkspace, {"workspace_bytes = 4096 with a null workspace"});
  p = valid_params();
  p.workspace = fake_mut(kWorkspaceAddress);
  expect_rejected(p, kErrorInvalidWorkspace, {"workspace = 0x70000000 with workspace_bytes = 0"});
}

TEST(ValidationSplits, MisalignedWorkspace) {
  FlashAttentionParams p = valid_params();
  p.workspace = fake_mut(kWorkspaceAddress + 8);
  p.workspace_bytes = 4096;
  expect_rejected(p, kErrorMisalignedPointer, {"workspace = 0x70000008", "16 bytes"});
}

TEST(ValidationSplits, WorkspaceMustNotOverlapAnything) {
  FlashAttentionParams p = valid_params();
  p.workspace = fake_mut(kVAddress + 4096);
  p.workspace_bytes = 4096;
  expect_rejected(p, kErrorAliasing, {"workspace bytes [0x30001000, 0x30002000)", "overlap v bytes"});
  p = valid_params();
  p.softmax_lse = reinterpret_cast<float*>(kLseAddress);
  p.workspace = fake_mut(kLseAddress - 16);
  p.workspace_bytes = 32;
  expect_rejected(p, kErrorAliasing, {"workspace bytes", "overlap softmax_lse bytes"});
  p = valid_params();
  p.workspace = fake_mut(kOutAddress - 4096);
  p.workspace_bytes = 4097;
  expect_rejected(p, kErrorAliasing, {"workspace bytes", "overlap out bytes"});
}

TEST(ValidationSplits, WorkspaceSizeChecksLikeForward) {
  FlashAttentionParams p = valid_params();
  p.num_heads = 6;
  size_t bytes = 12345;
  EXPECT_EQ(flash_attention_workspace_size(p, &bytes), kErrorHeadRatio);
  EXPECT_EQ(bytes, 12345u) << "a failed query leaves *bytes alone";
  EXPECT_EQ(flash_attention_workspace_size(valid_params(), nullptr), kErrorNullPointer);
  // Its own workspace fields are ignored: a bad pair does not fail the query. Without a GPU the
  // query then stops at the device check.
  p = valid_params();
  p.workspace_bytes = 99;
  const int status = flash_attention_workspace_size(p, &bytes);
  EXPECT_TRUE(status == kSuccess || status == kErrorNoDevice || status == kErrorUnsupportedDevice)
      << status_string(status) << ": " << last_error_message();
}

// ---- Order of the new checks ---------------------------------------------------------------------

TEST(ValidationOrder, NewFieldsAfterScaleBeforeStrides) {
  FlashAttentionParams p = valid_params();
  p.softmax_scale = -1.0f;
  p.softcap = -1.0f;
  p.window_size_left = -3;
  p.total_q = 5;
  p.q_row_stride = 3;
  EXPECT_EQ(flash_attention_forward(p, nullptr), kErrorInvalidScale);
  p.softmax_scale = 0.0f;
  EXPECT_EQ(flash_attention_forward(p, nullptr), kErrorInvalidSoftcap);
  p.softcap = 0.0f;
  EXPECT_EQ(flash_attention_forward(p, nullptr), kErrorInvalidWindow);
  p.window_size_left = -1;
  EXPECT_EQ(flash_attention_forward(p, nullptr), kErrorInvalidVarlen);
  p.total_q = 0;
  EXPECT_EQ(flash_attention_forward(p, nullptr), kErrorMisalignedStride);
}

// ---- Accepted calls: the resolved fields ---------------------------------------------------------

TEST(ValidationAccepts, NewFieldDefaults) {
  FwdArgs args;
  ASSERT_EQ(detail::check_arguments(valid_params(), &args), kSuccess) << last_error_message();
  EXPECT_EQ(args.window_left, -1);
  EXPECT_EQ(args.window_right, -1);
  EXPECT_EQ(args.softcap_scale, 0.0f);
  EXPECT_EQ(args.cu_seqlens_q, nullptr);
  EXPECT_EQ(args.cu_seqlens_k, nullptr);
  EXPECT_EQ(args.seqused_k, nullptr);
  EXPECT_EQ(args.total_q, 0);
  EXPECT_EQ(args.total_k, 0);
}

TEST(ValidationAccepts, VarlenResolves) {
  FlashAttentionParams p = valid_varlen_params();
  p.seqused_k = fake_int(kSequsedKAddress);
  p.softmax_lse = reinterpret_cast<float*>(kLseAddress);
  FwdArgs args;
  args.batch = kUntouchedBatch;
  ASSERT_EQ(detail::check_arguments(p, &args), kSuccess) << last_error_message();
  EXPECT_EQ(args.cu_seqlens_q, fake_int(kCuSeqlensQAddress));
  EXPECT_EQ(args.cu_seqlens_k, fake_int(kCuSeqlensKAddress));
  EXPECT_EQ(args.seqused_k, fake_int(kSequsedKAddress));
  EXPECT_EQ(args.total_q, 300);
  EXPECT_EQ(args.total_k, 500);
  EXPECT_EQ(args.batch, 2);
  EXPECT_EQ(args.seqlen_q, 200);   // the longest lengths
  EXPECT_EQ(args.seqlen_k, 400);
  EXPECT_EQ(args.lse, reinterpret_cast<float*>(kLseAddress));
  // Packed [total, heads, head_dim]: no batch stride, contiguous rows and heads.
  for (const detail::TensorStrides& s : {args.q_strides, args.out_strides}) {
    EXPECT_EQ(s.batch, 0);
    EXPECT_EQ(s.row, 8 * 128);
    EXPECT_EQ(s.head, 128);
  }
  for (const detail::TensorStrides& s : {args.k_strides, args.v_strides}) {
    EXPECT_EQ(s.batch, 0);
    EXPECT_EQ(s.row, 4 * 128);
    EXPECT_EQ(s.head, 128);
  }
}

TEST(ValidationAccepts, VarlenWithExplicitRowStridesAndEqualLengths) {
  // seqlen == total (one sequence takes all rows) is allowed; padded rows too.
  FlashAttentionParams p = valid_varlen_params();
  p.seqlen_q = p.total_q;
  p.seqlen_k = p.total_k;
  p.k_row_stride = p.v_row_stride = 3 * 4 * 128;   // views of a packed KV buffer
  FwdArgs args;
  ASSERT_EQ(detail::check_arguments(p, &args), kSuccess) << last_error_message();
  EXPECT_EQ(args.k_strides.row, 3 * 4 * 128);
  EXPECT_EQ(args.k_strides.batch, 0);
}

TEST(ValidationAccepts, SequsedKWithoutVarlen) {
  FlashAttentionParams p = valid_params();
  p.seqused_k = fake_int(kSequsedKAddress);
  FwdArgs args;
  ASSERT_EQ(detail::check_arguments(p, &args), kSuccess) << last_error_message();
  EXPECT_EQ(args.seqused_k, fake_int(kSequsedKAddress));
  EXPECT_EQ(args.cu_seqlens_q, nullptr);
  EXPECT_EQ(args.q_strides.batch, 128 * 8 * 128);
}

TEST(ValidationAccepts, CausalFoldsIntoWindowRightZero) {
  for (const int right : {-1, 0}) {
    FlashAttentionParams p = valid_params();
    p.is_causal = true;
    p.window_size_right = right;
    FwdArgs args;
    ASSERT_EQ(detail::check_arguments(p, &args), kSuccess) << right << ": " << last_error_message();
    EXPECT_TRUE(args.is_causal);
    EXPECT_EQ(args.window_left, -1);
    EXPECT_EQ(args.window_right, 0);
  }
  FlashAttentionParams p = valid_params();
  p.is_causal = true;
  p.window_size_left = 100;   // causal sliding window
  FwdArgs args;
  ASSERT_EQ(detail::check_arguments(p, &args), kSuccess) << last_error_message();
  EXPECT_EQ(args.window_left, 100);
  EXPECT_EQ(args.window_right, 0);
}

TEST(ValidationAccepts, WindowKeptAsGiven) {
  FlashAttentionParams p = valid_params();
  p.window_size_left = 0;
  p.window_size_right = 17;
  FwdArgs args;
  ASSERT_EQ(detail::check_arguments(p, &args), kSuccess) << last_error_message();
  EXPECT_FALSE(args.is_causal);
  EXPECT_EQ(args.window_left, 0);
  EXPECT_EQ(args.window_right, 17);
  p.window_size_left = INT_MAX;
  p.window_size_right = -1;
  ASSERT_EQ(detail::check_arguments(p, &args), kSuccess) << last_error_message();
  EXPECT_EQ(args.window_left, INT_MAX);
  EXPECT_EQ(args.window_right, -1);
}

TEST(ValidationAccepts, SoftcapScalesWithDefaultScale) {
  FlashAttentionParams p = valid_params();
  p.softcap = 30.0f;
  FwdArgs args;
  ASSERT_EQ(detail::check_arguments(p, &args), kSuccess) << last_error_message();
  const double scale = 1.0 / std::sqrt(128.0);
  const double log2e = std::log2(std::exp(1.0));
  EXPECT_FLOAT_EQ(args.softmax_scale, static_cast<float>(scale));   // stays the scale
  EXPECT_EQ(args.softcap_scale, static_cast<float>(scale / 30.0));
  EXPECT_EQ(args.softmax_scale_log2, static_cast<float>(30.0 * log2e));
}

TEST(ValidationAccepts, SoftcapScalesWithExplicitScale) {
  FlashAttentionParams p = valid_params();
  p.softmax_scale = 0.1f;
  p.softcap = 50.0f;
  FwdArgs args;
  ASSERT_EQ(detail::check_arguments(p, &args), kSuccess) << last_error_message();
  const double log2e = std::log2(std::exp(1.0));
  EXPECT_EQ(args.softmax_scale, 0.1f);
  EXPECT_EQ(args.softcap_scale, static_cast<float>(static_cast<double>(0.1f) / 50.0));
  EXPECT_EQ(args.softmax_scale_log2, static_cast<float>(50.0 * log2e));
  // softcap 0 is off: the plain log2 scale, no softcap factor.
  p.softcap = 0.0f;
  ASSERT_EQ(detail::check_arguments(p, &args), kSuccess) << last_error_message();
  EXPECT_EQ(args.softcap_scale, 0.0f);
  EXPECT_EQ(args.softmax_scale_log2, static_cast<float>(static_cast<double>(0.1f) * log2e));
}

TEST(ValidationAccepts, FakePointersPassWithoutCuda) {
  FwdArgs args;
  EXPECT_EQ(detail::check_arguments(valid_params(), &args), kSuccess);
  EXPECT_EQ(args.q, fake(kQAddress));
  EXPECT_EQ(args.k, fake(kKAddress));
  EXPECT_EQ(args.v, fake(kVAddress));
  EXPECT_EQ(args.out, fake_mut(kOutAddress));
  EXPECT_EQ(args.lse, nullptr);
  EXPECT_EQ(args.batch, 2);
  EXPECT_EQ(args.seqlen_q, 128);
  EXPECT_EQ(args.seqlen_k, 256);
  EXPECT_EQ(args.num_heads, 8);
  EXPECT_EQ(args.num_heads_k, 4);
  EXPECT_EQ(args.head_dim, 128);
  EXPECT_FALSE(args.is_causal);
}

TEST(ValidationAccepts, ContiguousStrideDefaults) {
  FwdArgs args;
  ASSERT_EQ(detail::check_arguments(valid_params(), &args), kSuccess);
  // q and out: [2, 128, 8, 128]; k and v: [2, 256, 4, 128].
  for (const detail::TensorStrides& s : {args.q_strides, args.out_strides}) {
    EXPECT_EQ(s.batch, 128 * 8 * 128);
    EXPECT_EQ(s.row, 8 * 128);
    EXPECT_EQ(s.head, 128);
  }
  for (const detail::TensorStrides& s : {args.k_strides, args.v_strides}) {
    EXPECT_EQ(s.batch, 256 * 4 * 128);
    EXPECT_EQ(s.row, 4 * 128);
    EXPECT_EQ(s.head, 128);
  }
}

TEST(ValidationAccepts, DefaultScaleIsInverseSqrtHeadDim) {
  FwdArgs args;
  ASSERT_EQ(detail::check_arguments(valid_params(), &args), kSuccess);
  const double scale = 1.0 / std::sqrt(128.0);
  EXPECT_FLOAT_EQ(args.softmax_scale, static_cast<float>(scale));
  EXPECT_FLOAT_EQ(args.softmax_scale_log2, static_cast<float>(scale * std::log2(std::exp(1.0))));
}

TEST(ValidationAccepts, ExplicitScaleStridesAndCausalKept) {
  FlashAttentionParams p = valid_params();
  p.softmax_scale = 0.5f;
  p.is_causal = true;
  p.q_row_stride = 2048;  // padded rows
  p.v_head_stride = 256;
  p.softmax_lse = reinterpret_cast<float*>(kLseAddress);
  FwdArgs args;
  ASSERT_EQ(detail::check_arguments(p, &args), kSuccess);
  EXPECT_EQ(args.softmax_scale, 0.5f);
  EXPECT_FLOAT_EQ(args.softmax_scale_log2, static_cast<float>(0.5 * std::log2(std::exp(1.0))));
  EXPECT_TRUE(args.is_causal);
  EXPECT_EQ(args.q_strides.row, 2048);
  EXPECT_EQ(args.q_strides.batch, 128 * 8 * 128);
  EXPECT_EQ(args.v_strides.head, 256);
  EXPECT_EQ(args.lse, reinterpret_cast<float*>(kLseAddress));
}

TEST(ValidationAccepts, PackedQkvViewsMayOverlapEachOther) {
  // One [batch, seqlen, 3 * heads, head_dim] buffer holds q, k and v; only out must be separate.
  FlashAttentionParams p = valid_params();
  p.seqlen_k = p.seqlen_q;
  p.num_heads_k = p.num_heads;
  const int64_t head_bytes = int64_t{p.num_heads} * p.head_dim * 2;
  p.k = fake(kQAddress + head_bytes);
  p.v = fake(kQAddress + 2 * head_bytes);
  const int64_t row = 3 * int64_t{p.num_heads} * p.head_dim;
  p.q_row_stride = p.k_row_stride = p.v_row_stride = row;
  p.q_batch_stride = p.k_batch_stride = p.v_batch_stride = row * p.seqlen_q;
  FwdArgs args;
  EXPECT_EQ(detail::check_arguments(p, &args), kSuccess) << last_error_message();
  EXPECT_EQ(args.k_strides.row, row);
}

TEST(ValidationAccepts, UnitExtentDimsMayHaveAnyStride) {
  FlashAttentionParams p = valid_params();
  p.batch_size = 1;
  p.out_batch_stride = 8;  // never stepped with a single batch
  FwdArgs args;
  EXPECT_EQ(detail::check_arguments(p, &args), kSuccess) << last_error_message();
}

TEST(ValidationAccepts, AdjacentRangesDoNotOverlap) {
  FlashAttentionParams p = valid_params();
  const uintptr_t q_bytes = uintptr_t{2} * 128 * 8 * 128 * 2;
  p.out = fake_mut(kQAddress + q_bytes);
  const uintptr_t out_bytes = q_bytes;
  p.softmax_lse = reinterpret_cast<float*>(kQAddress + q_bytes + out_bytes);
  FwdArgs args;
  EXPECT_EQ(detail::check_arguments(p, &args), kSuccess) << last_error_message();
}

TEST(ValidationOrder, ArgumentErrorsComeBeforeTheDeviceCheck) {
  // Several faults at once: the first in the documented order wins, and no device is consulted.
  FlashAttentionParams p = valid_params();
  p.seqlen_k = 0;
  p.head_dim = 100;
  p.softmax_scale = -2.0f;
  p.q = fake(kQAddress + 4);
  EXPECT_EQ(flash_attention_forward(p, nullptr), kErrorInvalidSize);
  EXPECT_NE(std::string(last_error_message()).find("seqlen_k = 0"), std::string::npos);
  p.seqlen_k = 256;
  EXPECT_EQ(flash_attention_forward(p, nullptr), kErrorUnsupportedHeadDim);
  p.head_dim = 128;
  EXPECT_EQ(flash_attention_forward(p, nullptr), kErrorInvalidScale);
  p.softmax_scale = 0.0f;
  EXPECT_EQ(flash_attention_forward(p, nullptr), kErrorMisalignedPointer);
}

TEST(ValidationDevice, PublicCallWithoutDeviceReturnsNoDevice) {
  int count = 0;
  if (cudaGetDeviceCount(&count) == cudaSuccess && count > 0) {
    GTEST_SKIP() << "a CUDA device is present; this test covers machines without one";
  }
  cudaGetLastError();
  EXPECT_EQ(flash_attention_forward(valid_params(), nullptr), kErrorNoDevice);
  const std::string message = last_error_message();
  EXPECT_NE(message.find("no CUDA device"), std::string::npos) << message;
  EXPECT_NE(message.find("cudaGetDeviceCount"), std::string::npos) << message;

  FwdArgs args;
  EXPECT_EQ(detail::check_device(&args), kErrorNoDevice);
}

TEST(ValidationDevice, CheckDeviceAcceptsOnlySm90) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    cudaGetLastError();
    GTEST_SKIP() << "no CUDA device";
  }
  int device = -1;
  int major = 0;
  int minor = 0;
  ASSERT_EQ(cudaGetDevice(&device), cudaSuccess);
  ASSERT_EQ(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device), cudaSuccess);
  ASSERT_EQ(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device), cudaSuccess);
  FwdArgs args;
  args.device = -1;
  detail::clear_last_error();
  if (major == 9 && minor == 0) {
    EXPECT_EQ(detail::check_device(&args), kSuccess) << last_error_message();
    EXPECT_EQ(args.device, device);
  } else {
    EXPECT_EQ(detail::check_device(&args), kErrorUnsupportedDevice);
    const std::string message = last_error_message();
    const std::string capability = std::to_string(major) + "." + std::to_string(minor);
    EXPECT_NE(message.find("compute capability " + capability), std::string::npos) << message;
    EXPECT_NE(message.find("SM90"), std::string::npos) << message;
  }
}

TEST(ValidationStatus, StringsAreDistinctAndNonEmpty) {
  std::set<std::string> texts;
  for (int code = kSuccess; code <= kErrorInvalidDescale; ++code) {
    const std::string text = status_string(code);
    EXPECT_FALSE(text.empty()) << "code " << code;
    EXPECT_NE(text, "unknown status") << "code " << code;
    EXPECT_TRUE(texts.insert(text).second) << "code " << code << " repeats \"" << text << "\"";
  }
  EXPECT_STREQ(status_string(-1), "unknown status");
  EXPECT_STREQ(status_string(kErrorInvalidDescale + 1), "unknown status");
}

TEST(ValidationStatus, LastErrorMessageFollowsEachFailure) {
  FlashAttentionParams p = valid_params();
  p.num_heads = 6;
  EXPECT_EQ(flash_attention_forward(p, nullptr), kErrorHeadRatio);
  EXPECT_NE(std::string(last_error_message()).find("num_heads = 6"), std::string::npos);

  p = valid_params();
  p.v = nullptr;
  EXPECT_EQ(flash_attention_forward(p, nullptr), kErrorNullPointer);
  const std::string message = last_error_message();
  EXPECT_NE(message.find("v is null"), std::string::npos);
  EXPECT_EQ(message.find("num_heads"), std::string::npos) << "the previous failure leaked: " << message;

  EXPECT_EQ(detail::fail(kErrorCudaFailure, "launch of kernel x failed"), kErrorCudaFailure);
  EXPECT_STREQ(last_error_message(), "launch of kernel x failed");
  detail::clear_last_error();
  EXPECT_STREQ(last_error_message(), "");
}

TEST(ValidationTable, SupportedHeadDimsMatchKernelTable) {
  for (const DataType dtype : {DataType::FP16, DataType::BF16, DataType::FP8_E4M3}) {
    const std::vector<int> expected = table_head_dims(dtype);
    std::vector<int> dims(static_cast<size_t>(kNumKernels) + 1, -1);
    const int count = supported_head_dims(dtype, dims.data(), static_cast<int>(dims.size()));
    ASSERT_EQ(count, static_cast<int>(expected.size())) << dtype_label(dtype);
    dims.resize(static_cast<size_t>(count));
    EXPECT_EQ(dims, expected) << dtype_label(dtype);
  }
  EXPECT_EQ(supported_head_dims(DataType::FP8_E4M3, nullptr, 0), 0);
}

TEST(ValidationTable, SupportedHeadDimsRespectsCapacity) {
  const std::vector<int> expected = table_head_dims(DataType::FP16);
  ASSERT_FALSE(expected.empty());
  int dims[2] = {-1, -1};
  EXPECT_EQ(supported_head_dims(DataType::FP16, dims, 1), 1);
  EXPECT_EQ(dims[0], expected.front());
  EXPECT_EQ(dims[1], -1);
  EXPECT_EQ(supported_head_dims(DataType::FP16, dims, 0), 0);
  EXPECT_EQ(supported_head_dims(DataType::FP16, nullptr, 8), 0);
}

TEST(ValidationTable, FindKernelFindsEveryRowAndNothingElse) {
  for (int i = 0; i < kNumKernels; ++i) {
    EXPECT_EQ(detail::find_kernel(kKernelTable[i].dtype, kKernelTable[i].head_dim, kKernelTable[i].variant),
              &kKernelTable[i]);
  }
  EXPECT_EQ(detail::find_kernel(DataType::FP16, 264), nullptr);
  EXPECT_EQ(detail::find_kernel(DataType::FP8_E4M3, 264), nullptr);
  EXPECT_EQ(detail::find_kernel(DataType::FP8_E4M3, 128, detail::KernelVariant::kGeneral), nullptr);
}

}  // namespace
}  // namespace flash
