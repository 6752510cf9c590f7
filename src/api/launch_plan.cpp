// Launch planning: GQA packing, the split count, the workspace layout of a split call and the
// kernel that runs it.
#include "api/launch_plan.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "api/validate.h"

namespace flash::detail {
namespace {

// Tiles that occupy this share of the multiprocessors already leave little to gain by splitting.
constexpr double kFullGpuShare = 0.8;
// The fewest splits within this share of the best wave efficiency: fewer splits, less to merge;
// decode is bandwidth-bound, so nearly every SM should stream (0.85 left 15% of them idle at
// 16 tiles x 128 blocks).
constexpr double kEfficiencyShare = 0.95;
// Automatic splitting stops here (the caller may force up to kMaxSplits).
constexpr int kMaxAutoSplits = 128;
// Each workspace part starts at a multiple of 16 bytes (the combine kernel reads float4).
constexpr size_t kWorkspaceAlign = 16;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

size_t align_up(size_t bytes) { return (bytes + kWorkspaceAlign - 1) / kWorkspaceAlign * kWorkspaceAlign; }

}  // namespace

int64_t partial_rows(const FwdArgs& args) {
  return args.cu_seqlens_q != nullptr ? int64_t{args.total_q} : int64_t{args.batch} * args.seqlen_q;
}

int split_heuristic(int64_t tiles, int n_blocks, int num_sms, int max_splits) {
  if (tiles >= kFullGpuShare * num_sms) return 1;
  const int limit = std::max(1, std::min({max_splits, n_blocks, num_sms}));
  auto efficiency = [&](int splits) {
    const double waves = static_cast<double>(tiles) * splits / num_sms;
    return waves / std::ceil(waves);
  };
  // A split count that leaves the per-split block count unchanged only adds empty CTAs.
  auto eligible = [&](int splits) {
    return splits == 1 || ceil_div(n_blocks, splits) != ceil_div(n_blocks, splits - 1);
  };
  double best = 0.0;
  for (int s = 1; s <= limit; ++s) {
    if (eligible(s)) best = std::max(best, efficiency(s));
  }
  for (int s = 1; s <= limit; ++s) {
    if (eligible(s) && efficiency(s) >= kEfficiencyShare * best) return s;
  }
  return 1;
}

Status plan_launch(const FwdArgs& args, KernelTiles tiles, bool workspace_given, LaunchPlan* plan) {
  LaunchPlan r;
  const int ratio = args.num_heads / args.num_heads_k;
  const int64_t n_blocks = ceil_div(args.seqlen_k, tiles.block_n);
  const int64_t plain_tiles = ceil_div(args.seqlen_q, tiles.block_m) * args.num_heads * args.batch;
  const int64_t packed_tiles = ceil_div(int64_t{args.seqlen_q} * ratio, tiles.block_m) * args.num_heads_k * args.batch;
  const bool pack_candidate = ratio > 1 && int64_t{args.seqlen_q} * ratio <= tiles.block_m;
  const bool may_split = args.requested_splits > 1 || (args.requested_splits == 0 && workspace_given);
  r.pack_gqa = pack_candidate && (may_split || packed_tiles >= kFullGpuShare * args.num_sms);
  const int64_t tile_count = r.pack_gqa ? packed_tiles : plain_tiles;
  const int max_splits = static_cast<int>(std::min<int64_t>(n_blocks, kMaxSplits));
  if (args.requested_splits > 0) {
    r.num_splits = std::min(args.requested_splits, max_splits);
  } else if (may_split) {
    r.num_splits = split_heuristic(tile_count, max_splits, args.num_sms, kMaxAutoSplits);
  }
  r.num_splits = std::max(r.num_splits, 1);
  if (r.num_splits > 1) {
    // The kernels index the partial rows with int.
    if (partial_rows(args) > INT32_MAX) {
      return fail(kErrorSizeOverflow, "splitting the keys of " + std::to_string(partial_rows(args)) +
                                          " query rows (batch_size * seqlen_q, or total_q) is not supported: the "
                                          "partial results address at most 2^31 - 1 rows; use num_splits = 1");
    }
    // Both parts are below 2^8 * 2^31 * 2^30 * 2^8 bytes: count them in long double first.
    const long double lse_values = static_cast<long double>(r.num_splits) * args.num_heads * partial_rows(args);
    const long double total = lse_values * 4.0L * (1 + args.head_dim) + 2 * kWorkspaceAlign;
    if (total > static_cast<long double>(INT64_MAX)) {
      return fail(kErrorSizeOverflow, "the split-KV workspace of num_splits * num_heads * query rows * (head_dim + 1) = " +
                                          std::to_string(r.num_splits) + " * " + std::to_string(args.num_heads) + " * " +
                                          std::to_string(partial_rows(args)) + " * " + std::to_string(args.head_dim + 1) +
                                          " fp32 values overflows int64 bytes");
    }
    const size_t lse_bytes = static_cast<size_t>(lse_values) * sizeof(float);
    r.lse_offset = 0;
    r.o_offset = align_up(lse_bytes);
    r.workspace_bytes = r.o_offset + align_up(lse_bytes * static_cast<size_t>(args.head_dim));
  }
  *plan = r;
  return kSuccess;
}

const KernelEntry* choose_kernel(const FwdArgs& args) {
  const KernelEntry* general = find_kernel(args.dtype, args.head_dim, KernelVariant::kGeneral);
  const KernelEntry* dense = find_kernel(args.dtype, args.head_dim, KernelVariant::kDense);
  if (general != nullptr) {
    const KernelEntry* decode = find_kernel(args.dtype, args.head_dim, KernelVariant::kDecode);
    const int64_t rows = int64_t{args.seqlen_q} * (args.pack_gqa ? args.num_heads / args.num_heads_k : 1);
    if (decode != nullptr && decode->head_dim == general->head_dim && rows <= decode->tiles().block_m) return decode;
    if (needs_general_kernel(args)) return general;
  }
  const KernelEntry* dense_short = find_kernel(args.dtype, args.head_dim, KernelVariant::kDenseShort);
  if (dense_short == nullptr || dense_short->head_dim != dense->head_dim) return dense;
  // A right window that reaches the last key from the first row (seqlen_q - 1 keys past the
  // bottom-right diagonal or more) masks nothing: a non-causal call.
  const bool masked = args.window_right >= 0 && args.window_right < args.seqlen_q - 1;
  const int max_seqlen = dense_short_max_seqlen(*dense_short, masked);
  return args.seqlen_q <= max_seqlen && args.seqlen_k <= max_seqlen ? dense_short : dense;
}

int dense_short_max_seqlen(const KernelEntry& kernel, bool masked) {
  if (kernel.variant != KernelVariant::kDenseShort) return 0;
  // d64 (16-bit and FP8): 128 rows against 192, causal up to 1k (+5-13%; 2k -8-13%), never
  // without a mask (512: -1% at 16 bits, -9% FP8).
  if (kernel.head_dim == 64) return masked ? 1024 : 0;
  // FP8 d128: 128 keys per block against 224, causal +14% at 2k (4k -1-2%), non-causal +2% at 2k
  // (4k -6%).
  if (kernel.head_dim == 128 && kernel.dtype == DataType::FP8_E4M3) return 2048;
  return 0;
}

}  // namespace flash::detail
