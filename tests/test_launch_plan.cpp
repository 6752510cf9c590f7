// The launch plan (src/api/launch_plan.h): GQA packing, the split count, the workspace layout and
// the kernel a call runs on. Host arithmetic on resolved arguments and the kernel table: no GPU
// needed.
#include <cstddef>
#include <cstdint>
#include <string>

#include <gtest/gtest.h>

#include "api/launch_plan.h"
#include "flash_api.h"

namespace flash::detail {
namespace {

constexpr int kSms = 132;                            // H100 / H200 SXM
constexpr KernelTiles kTilesD128{128, 128};          // the general d128 kernel's tile

// Qwen2.5-VL-3B decode: 16 query heads on 2 KV heads, d 128, one query against `cache` keys.
FwdArgs decode_args(int batch, int cache) {
  FwdArgs a;
  a.batch = batch;
  a.seqlen_q = 1;
  a.seqlen_k = cache;
  a.num_heads = 16;
  a.num_heads_k = 2;
  a.head_dim = 128;
  a.num_sms = kSms;
  return a;
}

LaunchPlan plan_of(const FwdArgs& args, bool workspace_given, KernelTiles tiles = kTilesD128) {
  LaunchPlan plan;
  EXPECT_EQ(plan_launch(args, tiles, workspace_given, &plan), kSuccess);
  return plan;
}

TEST(SplitHeuristic, FullGpuDoesNotSplit) {
  EXPECT_EQ(split_heuristic(106, 1000, kSms, 128), 1);   // >= 80% of the SMs
  EXPECT_EQ(split_heuristic(1000, 1000, kSms, 128), 1);
}

TEST(SplitHeuristic, FillsTheGpuWithWholeBlockCounts) {
  // 2 tiles x 128 blocks (16k keys): 64 splits of 2 blocks give 128 CTAs, 97% of one wave; the
  // counts 57..63 give 3 blocks per split like 43 and are not eligible.
  EXPECT_EQ(split_heuristic(2, 128, kSms, 128), 64);
  // 2 tiles x 32 blocks: at most one split per block.
  EXPECT_EQ(split_heuristic(2, 32, kSms, 128), 32);
  // 16 tiles (b 8 packed) x 128 blocks: 8 splits = 128 CTAs.
  EXPECT_EQ(split_heuristic(16, 128, kSms, 128), 8);
}

TEST(SplitHeuristic, NeverMoreThanBlocksOrTheCap) {
  for (int n_blocks : {1, 2, 3, 7, 50, 400}) {
    for (int tiles : {1, 2, 5, 33}) {
      const int s = split_heuristic(tiles, n_blocks, kSms, 128);
      EXPECT_GE(s, 1);
      EXPECT_LE(s, n_blocks);
      EXPECT_LE(s, 128);
    }
  }
  EXPECT_EQ(split_heuristic(1, 1, kSms, 128), 1);
}

TEST(LaunchPlan, DecodePacksAndSplitsWithAWorkspace) {
  const LaunchPlan plan = plan_of(decode_args(1, 16384), /*workspace_given=*/true);
  EXPECT_TRUE(plan.pack_gqa);
  EXPECT_EQ(plan.num_splits, 64);
  // LSE: 64 splits x 16 heads x 1 row; O: that times 128 columns, each part 16-byte aligned.
  EXPECT_EQ(plan.lse_offset, 0u);
  EXPECT_EQ(plan.o_offset, 64u * 16 * 4);
  EXPECT_EQ(plan.workspace_bytes, 64u * 16 * 4 + 64u * 16 * 128 * 4);
}

TEST(LaunchPlan, NoWorkspaceNoSplitAndNoStarvingPack) {
  // Without a workspace the call cannot split; packing 16 heads onto 2 tiles would leave the GPU
  // idle, so the heads stay apart.
  const LaunchPlan plan = plan_of(decode_args(1, 16384), /*workspace_given=*/false);
  EXPECT_EQ(plan.num_splits, 1);
  EXPECT_FALSE(plan.pack_gqa);
  EXPECT_EQ(plan.workspace_bytes, 0u);
  // Large batches fill the GPU packed: 64 entries x 2 KV heads = 128 tiles.
  const LaunchPlan big = plan_of(decode_args(64, 4096), /*workspace_given=*/false);
  EXPECT_TRUE(big.pack_gqa);
  EXPECT_EQ(big.num_splits, 1);
}

TEST(LaunchPlan, LargeBatchesNeedNoSplit) {
  const LaunchPlan plan = plan_of(decode_args(64, 16384), /*workspace_given=*/true);
  EXPECT_TRUE(plan.pack_gqa);
  EXPECT_EQ(plan.num_splits, 1);   // 128 tiles >= 80% of 132
  EXPECT_EQ(plan.workspace_bytes, 0u);
}

TEST(LaunchPlan, ForcedSplitsAreClampedToTheKeyBlocks) {
  FwdArgs args = decode_args(1, 300);   // 3 key blocks
  args.requested_splits = 7;
  EXPECT_EQ(plan_of(args, /*workspace_given=*/false).num_splits, 3);
  args.requested_splits = 2;
  const LaunchPlan two = plan_of(args, false);
  EXPECT_EQ(two.num_splits, 2);
  EXPECT_TRUE(two.pack_gqa);   // forced splits may pack
  args.requested_splits = 1;
  const LaunchPlan one = plan_of(args, /*workspace_given=*/true);
  EXPECT_EQ(one.num_splits, 1);
  EXPECT_EQ(one.workspace_bytes, 0u);
  args.seqlen_k = 100;   // one block: nothing to split
  args.requested_splits = 16;
  EXPECT_EQ(plan_of(args, true).num_splits, 1);
}

TEST(LaunchPlan, PackingNeedsGqaAndShortQueries) {
  FwdArgs mha = decode_args(1, 16384);
  mha.num_heads_k = 16;
  EXPECT_FALSE(plan_of(mha, true).pack_gqa);
  FwdArgs long_q = decode_args(1, 16384);
  long_q.seqlen_q = 17;   // 17 x 8 = 136 rows > 128
  EXPECT_FALSE(plan_of(long_q, true).pack_gqa);
  long_q.seqlen_q = 16;   // 128 rows: one tile
  EXPECT_TRUE(plan_of(long_q, true).pack_gqa);
}

TEST(LaunchPlan, SplitsOfTooManyRowsAreRejected) {
  FwdArgs args = decode_args(70000, 4096);
  args.seqlen_q = 40000;   // 2.8e9 query rows
  args.requested_splits = 2;
  LaunchPlan plan;
  EXPECT_EQ(plan_launch(args, kTilesD128, /*workspace_given=*/true, &plan), kErrorSizeOverflow);
  EXPECT_NE(std::string(last_error_message()).find("use num_splits = 1"), std::string::npos) << last_error_message();
  args.requested_splits = 1;   // no split: nothing to address
  EXPECT_EQ(plan_launch(args, kTilesD128, true, &plan), kSuccess);
  EXPECT_EQ(plan.num_splits, 1);
}

TEST(LaunchPlan, PartialRowsFollowTheLayout) {
  FwdArgs dense = decode_args(3, 4096);
  dense.seqlen_q = 5;
  EXPECT_EQ(partial_rows(dense), 15);
  FwdArgs packed = dense;
  packed.cu_seqlens_q = reinterpret_cast<const int32_t*>(0x1000);
  packed.total_q = 40;
  EXPECT_EQ(partial_rows(packed), 40);
  packed.requested_splits = 4;
  const LaunchPlan plan = plan_of(packed, false);
  ASSERT_EQ(plan.num_splits, 4);
  const size_t lse_bytes = 4u * 16 * 40 * 4;
  EXPECT_EQ(plan.o_offset, lse_bytes);
  EXPECT_EQ(plan.workspace_bytes, lse_bytes + lse_bytes * 128);
}

// The FA3-paper shape at `seqlen` tokens: 16k tokens of 2048 / head_dim heads.
FwdArgs paper_args(DataType dtype, int head_dim, int seqlen, bool causal) {
  FwdArgs a;
  a.dtype = dtype;
  a.head_dim = head_dim;
  a.batch = 16384 / seqlen;
  a.seqlen_q = seqlen;
  a.seqlen_k = seqlen;
  a.num_heads = 2048 / head_dim;
  a.num_heads_k = a.num_heads;
  a.window_right = causal ? 0 : -1;
  a.num_sms = kSms;
  return a;
}

std::string variant_of(const FwdArgs& args) {
  const KernelEntry* entry = choose_kernel(args);
  return entry == nullptr ? "none" : entry->name;
}

TEST(ChooseKernel, ShortCausalD64RunsOnShorterTiles) {
  for (DataType dtype : {DataType::FP16, DataType::BF16, DataType::FP8_E4M3}) {
    const std::string prefix = dtype == DataType::FP16 ? "fp16" : dtype == DataType::BF16 ? "bf16" : "fp8";
    for (int seqlen : {65, 512, 1000, 1024}) {   // 64 rows or fewer: decode (16-bit)
      EXPECT_EQ(variant_of(paper_args(dtype, 64, seqlen, true)), prefix + "_hdim64_dense_short_sm90") << seqlen;
    }
    EXPECT_EQ(variant_of(paper_args(dtype, 64, 1100, true)), prefix + "_hdim64_dense_sm90");
    EXPECT_EQ(variant_of(paper_args(dtype, 64, 512, false)), prefix + "_hdim64_dense_sm90");
    FwdArgs long_keys = paper_args(dtype, 64, 512, true);
    long_keys.seqlen_k = 1025;   // every row sees 514 keys or more: the taller tiles win
    EXPECT_EQ(variant_of(long_keys), prefix + "_hdim64_dense_sm90");
    FwdArgs window = paper_args(dtype, 64, 512, false);
    window.window_right = 100;   // a right window masks the diagonal as causal does
    EXPECT_EQ(variant_of(window), prefix + "_hdim64_dense_short_sm90");
    window.window_right = 510;   // row 0 sees keys 0..510 of 512: still masked
    EXPECT_EQ(variant_of(window), prefix + "_hdim64_dense_short_sm90");
    window.window_right = 511;   // every row reaches the last key: nothing is masked
    EXPECT_EQ(variant_of(window), prefix + "_hdim64_dense_sm90");
    // Head dims without a smaller plan keep their dense kernel.
    EXPECT_EQ(variant_of(paper_args(dtype, 256, 512, true)), prefix + "_hdim256_dense_sm90");
  }
  for (DataType dtype : {DataType::FP16, DataType::BF16}) {
    EXPECT_EQ(variant_of(paper_args(dtype, 128, 512, true)), std::string(dtype == DataType::FP16 ? "fp16" : "bf16") +
                                                                  "_hdim128_dense_sm90");
  }
  EXPECT_EQ(variant_of(paper_args(DataType::BF16, 48, 512, true)), "bf16_hdim64_dense_short_sm90");
}

TEST(ChooseKernel, ShortFp8D128RunsOnSmallerKeyBlocks) {
  for (bool causal : {false, true}) {
    for (int seqlen : {512, 1024, 2048}) {
      EXPECT_EQ(variant_of(paper_args(DataType::FP8_E4M3, 128, seqlen, causal)), "fp8_hdim128_dense_short_sm90")
          << seqlen << (causal ? " causal" : "");
    }
    EXPECT_EQ(variant_of(paper_args(DataType::FP8_E4M3, 128, 4096, causal)), "fp8_hdim128_dense_sm90");
    FwdArgs long_keys = paper_args(DataType::FP8_E4M3, 128, 512, causal);
    long_keys.seqlen_k = 2049;
    EXPECT_EQ(variant_of(long_keys), "fp8_hdim128_dense_sm90");
  }
}

TEST(ChooseKernel, OnlyDenseShortKernelsHaveARange) {
  for (int i = 0; i < kNumKernels; ++i) {
    if (kKernelTable[i].variant == KernelVariant::kDenseShort) continue;
    EXPECT_EQ(dense_short_max_seqlen(kKernelTable[i], true), 0) << kKernelTable[i].name;
    EXPECT_EQ(dense_short_max_seqlen(kKernelTable[i], false), 0) << kKernelTable[i].name;
  }
}

TEST(ChooseKernel, GeneralFeaturesAndDecodeTakePrecedence) {
  FwdArgs packed = paper_args(DataType::BF16, 64, 512, true);
  packed.cu_seqlens_q = reinterpret_cast<const int32_t*>(0x1000);
  packed.cu_seqlens_k = reinterpret_cast<const int32_t*>(0x2000);
  EXPECT_EQ(variant_of(packed), "bf16_hdim64_general_sm90");
  FwdArgs decode = paper_args(DataType::BF16, 64, 512, true);
  decode.seqlen_q = 1;
  EXPECT_EQ(variant_of(decode), "bf16_hdim64_decode_sm90");
  // FP8 has no decode kernel: one query row runs on the dense kernels; causal masks none of its
  // keys (it is the last row), so the taller tiles' kernel.
  decode.dtype = DataType::FP8_E4M3;
  EXPECT_EQ(variant_of(decode), "fp8_hdim64_dense_sm90");
  decode.seqlen_q = 100;   // 99 rows see fewer keys
  EXPECT_EQ(variant_of(decode), "fp8_hdim64_dense_short_sm90");
  EXPECT_EQ(variant_of(paper_args(DataType::BF16, 256, 512, true)), "bf16_hdim256_dense_sm90");
}

}  // namespace
}  // namespace flash::detail
