// How a checked call runs: GQA packing and the split count (split-KV), the workspace a split call
// needs, and the kernel it runs on. Pure host arithmetic on resolved arguments, the general
// kernel's tile sizes and the kernel table, so flash_attention_forward and
// flash_attention_workspace_size reach the same answer.
#pragma once

#include <cstddef>
#include <cstdint>

#include "api/fwd_args.h"

namespace flash::detail {

struct LaunchPlan {
  bool pack_gqa = false;
  int num_splits = 1;
  // Workspace of a split call (num_splits > 1): the partial LSEs, then the partial outputs, each
  // 16-byte aligned from the workspace's start; 0 bytes when the call does not split.
  size_t lse_offset = 0;
  size_t o_offset = 0;
  size_t workspace_bytes = 0;
};

// Query rows of the whole batch as the partial results index them: batch * seqlen_q, or total_q
// for packed (cu_seqlens) batches.
int64_t partial_rows(const FwdArgs& args);

// Splits for `tiles` CTAs of work over `n_blocks` key blocks on `num_sms` multiprocessors: 1 when
// the tiles fill 80% of the GPU already; otherwise the fewest splits whose wave efficiency (CTAs
// over the SM slots of the waves they occupy) is within 95% of the best among split counts that
// change the per-split block count, at most min(max_splits, n_blocks, num_sms).
int split_heuristic(int64_t tiles, int n_blocks, int num_sms, int max_splits);

// The plan of `args` (checked, device filled in) on a general kernel with tiles `tiles`, in *plan.
// Fails (kErrorSizeOverflow, with the message recorded) only for a split call whose workspace size
// overflows or whose query rows exceed 2^31 - 1.
//   GQA packing: num_heads > num_heads_k and seqlen_q * ratio <= block_m (an entry's queries of one
//   KV head fit one tile), when the packed tiles still fill the GPU or the keys may split.
//   Splits: args.requested_splits when > 0 (clamped to the key blocks); automatic (0) only with a
//   workspace (workspace_given), by split_heuristic; else 1.
Status plan_launch(const FwdArgs& args, KernelTiles tiles, bool workspace_given, LaunchPlan* plan);

// The longest call (queries and keys) that runs on the dense_short kernel `kernel` with a mask
// (causal: a right window that masks) or without; 0 where none does. Past it the dense plan's
// larger tiles are faster (measured: src/sm90/traits.cuh).
int dense_short_max_seqlen(const KernelEntry& kernel, bool masked);

// The kernel of planned arguments (pack_gqa and num_splits set), from the kernel table:
//   decode       where every tile holds at most its 64 query rows, and it is as wide as the
//                general kernel (no more padding);
//   general      where a feature needs it (needs_general_kernel);
//   dense_short  dense calls of at most dense_short_max_seqlen queries and keys, where the
//                head dim has one;
//   dense        the rest.
const KernelEntry* choose_kernel(const FwdArgs& args);

}  // namespace flash::detail
