// Resolved forward arguments handed from the API layer to a kernel instance: every default filled
// in and every check passed, so a launcher only maps them onto its kernel.
#pragma once

#include <cstdint>

#include "flash_api.h"

namespace flash::detail {

// Element strides of a [batch, seqlen, heads, head_dim] tensor whose head_dim is contiguous.
struct TensorStrides {
  int64_t batch = 0;
  int64_t row = 0;
  int64_t head = 0;
};

struct FwdArgs {
  const void* q = nullptr;     // [batch, seqlen_q, num_heads, head_dim]
  const void* k = nullptr;     // [batch, seqlen_k, num_heads_k, head_dim]
  const void* v = nullptr;     // [batch, seqlen_k, num_heads_k, head_dim]
  void* out = nullptr;         // [batch, seqlen_q, num_heads, head_dim]
  float* lse = nullptr;        // [batch, num_heads, seqlen_q] or null
  int batch = 0;
  int seqlen_q = 0;
  int seqlen_k = 0;
  int num_heads = 0;
  int num_heads_k = 0;
  int head_dim = 0;
  DataType dtype = DataType::FP16;
  DataType out_dtype = DataType::FP16;   // resolved: never AUTO
  bool is_causal = false;
  float softmax_scale = 0.0f;       // > 0
  // What the kernel multiplies raw scores by before exp2: softmax_scale * log2(e), or with a
  // softcap softcap * log2(e) (the kernel first maps each raw score s to tanh(s * softcap_scale)).
  float softmax_scale_log2 = 0.0f;
  float softcap_scale = 0.0f;       // softmax_scale / softcap; 0: no softcap
  // Visible keys of query i: [i + seqlen_k - seqlen_q - window_left, i + seqlen_k - seqlen_q +
  // window_right]; -1 = unbounded. is_causal has already been folded into window_right = 0.
  int window_left = -1;
  int window_right = -1;
  // Variable length: non-null cu_seqlens_q/k (device, batch + 1) pack the batch along the token
  // dimension; seqlen_q/k are then maxima and total_q/k the packed row counts (batch strides 0).
  const int32_t* cu_seqlens_q = nullptr;
  const int32_t* cu_seqlens_k = nullptr;
  const int32_t* seqused_k = nullptr;   // device [batch] or null
  int total_q = 0;
  int total_k = 0;
  TensorStrides q_strides, k_strides, v_strides, out_strides;
  // Paged KV cache: non-null page_table (device, [batch, page_table_stride]) makes k and v
  // [num_pages, page_size, num_heads_k, head_dim]; their batch strides step from page to page.
  const int32_t* page_table = nullptr;
  int page_table_stride = 0;
  int page_size = 0;
  int num_pages = 0;
  int requested_splits = 0;         // FlashAttentionParams::num_splits (0: automatic)
  void* workspace = nullptr;        // the caller's, workspace_bytes long (or null)
  size_t workspace_bytes = 0;
  // FP8 descale factors (device fp32, null = 1): factor of (batch b, KV head h) at
  // ptr[b * descale_batch_stride + h * descale_head_stride] (both 0 for one factor per tensor).
  const float* q_descale = nullptr;
  const float* k_descale = nullptr;
  const float* v_descale = nullptr;
  int64_t descale_batch_stride = 0;
  int64_t descale_head_stride = 0;
  int device = 0;
  int num_sms = 0;   // multiprocessors of `device`: the persistent grid's size

  // The launch plan (launch_plan.h), filled after the checks.
  // pack_gqa: the num_heads / num_heads_k query heads of one KV head share a tile, whose rows are
  // (query row, head in group) pairs: row r of an entry is query r / ratio of head
  // kv_head * ratio + r % ratio.
  bool pack_gqa = false;
  // num_splits > 1: tile (query block, head, entry) runs as num_splits CTAs over consecutive
  // ranges of its key blocks; each writes O (normalised by its own sum) and LSE to the workspace
  // views below, and the combine kernel merges them into out and softmax_lse.
  int num_splits = 1;
  // [num_splits, num_heads, partial_rows(args)] and [..., head_dim] (launch_plan.h)
  float* lse_partial = nullptr;
  float* o_partial = nullptr;
};

// Whether the arguments need a kernel's general variant (packed batches, seqused_k, a left window,
// softcap, a paged KV cache, GQA packing or split keys); the dense variant covers the rest.
inline bool needs_general_kernel(const FwdArgs& args) {
  return args.cu_seqlens_q != nullptr || args.seqused_k != nullptr || args.window_left >= 0 ||
         args.softcap_scale != 0.0f || args.page_table != nullptr || args.pack_gqa || args.num_splits > 1;
}

using FwdLauncher = Status (*)(const FwdArgs& args, cudaStream_t stream);

// The kernel variants of one (dtype, head dim) (src/sm90/traits.cuh, tile_plan):
//   kDense    dense batches, no mask or a right window: the register-tight fast path
//   kGeneral  also packed batches, seqused_k, left windows, softcap, paged caches, GQA packing and
//             split keys
//   kDecode   the general features on 64-row query tiles (one consumer warpgroup, a deeper K/V
//             pipeline): calls whose tiles hold at most 64 query rows (decode); some head dims only
//   kDenseShort  the dense kernel on smaller tiles (d64: 128 query rows, not 192; FP8 d128: 128
//             keys per block, not 224): short calls (choose_kernel, launch_plan.h); some head dims only
enum class KernelVariant : int {
  kDense = 0,
  kGeneral = 1,
  kDecode = 2,
  kDenseShort = 3,
};

// Whether a variant's kernel carries the general features (needs_general_kernel's list).
constexpr bool has_general_features(KernelVariant variant) {
  return variant == KernelVariant::kGeneral || variant == KernelVariant::kDecode;
}

// The tile of a kernel instance: query rows per CTA and key rows per pipeline stage.
struct KernelTiles {
  int block_m = 0;
  int block_n = 0;
};
using FwdTilesQuery = KernelTiles (*)();

// One row of the kernel table written by tools/generate_kernels.py.
struct KernelEntry {
  DataType dtype;
  int head_dim;
  KernelVariant variant;
  FwdLauncher launch;
  FwdTilesQuery tiles;
  const char* name;
};

extern const KernelEntry kKernelTable[];
extern const int kNumKernels;

}  // namespace flash::detail
