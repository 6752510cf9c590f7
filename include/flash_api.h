// FlashAttention forward for NVIDIA Hopper (SM90): the one public header.
//
// Usage:
//   flash::FlashAttentionParams params;
//   params.q = d_q; params.k = d_k; params.v = d_v; params.out = d_out;
//   params.batch_size = 1; params.seqlen_q = 512; params.seqlen_k = 512;
//   params.num_heads = 16; params.num_heads_k = 16; params.head_dim = 128;
//   params.dtype = flash::DataType::FP16; params.is_causal = false;
//   int status = flash::flash_attention_forward(params, stream);   // 0 on success
//
// Tensors live in device memory, layout [batch, seqlen, heads, head_dim] with head_dim contiguous.
// Every check runs before any launch: a rejected call launches nothing and writes nothing.
#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda_runtime_api.h>

namespace flash {

enum class DataType : int {
  FP16 = 0,
  BF16 = 1,
  FP8_E4M3 = 2,
  // FlashAttentionParams::out_dtype only: the input dtype for FP16/BF16, BF16 for FP8_E4M3.
  AUTO = -1,
};

// Status codes returned by flash_attention_forward. 0 is success; each failure has its own code,
// a fixed text (status_string) and a detailed message for the calling thread (last_error_message).
enum Status : int {
  kSuccess = 0,
  kErrorNullPointer = 1,          // q, k, v or out is null
  kErrorInvalidSize = 2,          // batch, seqlen, heads or head_dim is not positive
  kErrorHeadRatio = 3,            // num_heads is not a multiple of num_heads_k
  kErrorUnsupportedDtype = 4,     // dtype has no kernel
  kErrorUnsupportedHeadDim = 5,   // head_dim has no kernel for this dtype
  kErrorMisalignedPointer = 6,    // a tensor pointer is not 16-byte aligned
  kErrorMisalignedStride = 7,     // a stride is negative or not a multiple of 16 bytes
  kErrorSizeOverflow = 8,         // an extent or byte offset exceeds what the kernel can address
  kErrorInvalidScale = 9,         // softmax_scale is negative, NaN or infinite
  kErrorAliasing = 10,            // out or softmax_lse overlaps an input or each other
  kErrorNoDevice = 11,            // no CUDA device is visible to this thread
  kErrorUnsupportedDevice = 12,   // the current device is not SM90 (Hopper)
  kErrorCudaFailure = 13,         // a CUDA runtime call or the launch failed
  // Codes of the C interface (flash_api_c.h) only; flash_attention_forward never returns them.
  kErrorInvalidStruct = 14,       // the C parameter struct is null or its struct_size is too small
  kErrorUnsupportedVersion = 15,  // the C parameter struct's version is not one this library knows
  kErrorInternal = 16,            // an unexpected internal failure (e.g. out of host memory)
  kErrorInvalidWindow = 17,       // window_size_left/right < -1, or window_size_right > 0 with is_causal
  kErrorInvalidSoftcap = 18,      // softcap is negative, NaN or infinite
  kErrorInvalidVarlen = 19,       // inconsistent variable-length fields (cu_seqlens, total_q/k, batch strides)
  kErrorInvalidSplits = 20,       // num_splits is negative or above kMaxSplits
  kErrorInvalidWorkspace = 21,    // the call splits the keys but the workspace is missing or too small
  kErrorInvalidPaging = 22,       // inconsistent paged-KV fields (page_table, page_size, num_pages, ...)
  kErrorInvalidDescale = 23,      // descale factors given for a 16-bit dtype, or a misaligned descale pointer
};

// The largest num_splits a caller may force.
constexpr int kMaxSplits = 256;

struct FlashAttentionParams {
  // Device pointers. q: [batch, seqlen_q, num_heads, head_dim]; k, v: [batch, seqlen_k,
  // num_heads_k, head_dim]; out: [batch, seqlen_q, num_heads, head_dim], of out_dtype: the dtype
  // of q for FP16 and BF16, BF16 or FP16 for FP8_E4M3.
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  void* out = nullptr;
  // Optional, fp32 [batch, num_heads, seqlen_q], contiguous: natural-log sum of exp of the scaled
  // scores per query row; -inf for a row that sees no key.
  float* softmax_lse = nullptr;

  int batch_size = 0;
  int seqlen_q = 0;
  int seqlen_k = 0;
  int num_heads = 0;     // query heads
  int num_heads_k = 0;   // key/value heads; num_heads % num_heads_k == 0 (MHA, GQA, MQA)
  int head_dim = 0;

  DataType dtype = DataType::FP16;
  // The output's dtype: AUTO (the input dtype, BF16 for FP8_E4M3 inputs) or, for FP8_E4M3 inputs
  // only, FP16 or BF16. FP16/BF16 inputs accept AUTO or their own dtype.
  DataType out_dtype = DataType::AUTO;
  // Causal mask. With seqlen_q != seqlen_k it is aligned bottom-right: query i sees key j when
  // j <= i + seqlen_k - seqlen_q. A query row that sees no key gets output 0 and LSE -inf.
  bool is_causal = false;
  // Multiplies q.k before the softmax; 0 means 1 / sqrt(head_dim).
  float softmax_scale = 0.0f;

  // Strides in elements (not bytes) of the batch, row (sequence) and head dimensions; head_dim is
  // always contiguous. 0 means the contiguous [batch, seqlen, heads, head_dim] value, so packed
  // QKV and other views can be passed without copies.
  int64_t q_batch_stride = 0, q_row_stride = 0, q_head_stride = 0;
  int64_t k_batch_stride = 0, k_row_stride = 0, k_head_stride = 0;
  int64_t v_batch_stride = 0, v_row_stride = 0, v_head_stride = 0;
  int64_t out_batch_stride = 0, out_row_stride = 0, out_head_stride = 0;

  // Variable-length batches (optional). With cu_seqlens_q and cu_seqlens_k set (both or neither),
  // the sequences are packed along one token dimension: q and out are [total_q, num_heads,
  // head_dim], k and v [total_k, num_heads_k, head_dim], and batch entry b owns rows
  // [cu_seqlens_q[b], cu_seqlens_q[b + 1]) of q and out and [cu_seqlens_k[b], cu_seqlens_k[b + 1])
  // of k and v. Both are device int32 arrays of batch_size + 1 non-decreasing offsets (empty
  // sequences allowed). seqlen_q and seqlen_k are then the longest lengths (max_seqlen_q/k), which
  // every sequence must respect; total_q and total_k (> 0) are the packed tensors' row counts; the
  // batch strides must be 0; softmax_lse is [num_heads, total_q]. Masks are aligned per sequence.
  // The arrays are read only by the kernel (reading them here would synchronize): offsets and
  // lengths are clamped to total_q/total_k, so bad contents give wrong rows but never an access
  // outside the tensors; rows of a sequence longer than seqlen_q are not written.
  const int32_t* cu_seqlens_q = nullptr;
  const int32_t* cu_seqlens_k = nullptr;
  int total_q = 0;   // must be 0 without cu_seqlens_q
  int total_k = 0;
  // Optional device int32 [batch_size]: batch entry b attends to its first seqused_k[b] keys only
  // (with or without cu_seqlens; clamped to the entry's key count).
  const int32_t* seqused_k = nullptr;

  // Local (sliding-window) attention: query i sees key j when
  //   i + seqlen_k - seqlen_q - window_size_left <= j <= i + seqlen_k - seqlen_q + window_size_right
  // (per-sequence lengths); -1 leaves that side unbounded. is_causal is window_size_right = 0 and
  // allows window_size_right to be -1 or 0 only.
  int window_size_left = -1;
  int window_size_right = -1;

  // Softcap: > 0 replaces each scaled score s = softmax_scale * q.k by softcap * tanh(s / softcap)
  // before the softmax (and the LSE); 0 turns it off.
  float softcap = 0.0f;

  // Paged KV cache (optional). With page_table set, k and v are [num_pages, page_size, num_heads_k,
  // head_dim] (k/v_batch_stride: elements from one page to the next, 0 = contiguous) and key j of
  // batch entry b lives in page page_table[b * page_table_stride + j / page_size], at row
  // j % page_size. page_table is a device int32 array [batch_size, page_table_stride], read by the
  // kernel only; entries are clamped to [0, num_pages). seqlen_k is the longest cache
  // (<= page_table_stride * page_size); seqused_k gives each entry's own length. page_size is a
  // multiple of 16. Not combinable with cu_seqlens (use seqused_k for per-entry lengths).
  const int32_t* page_table = nullptr;
  int page_table_stride = 0;   // pages per batch entry in page_table (its row length)
  int page_size = 0;           // keys per page
  int num_pages = 0;           // pages in k and v

  // Split-KV: the keys of each query tile are divided among num_splits CTAs whose partial results
  // are merged through their LSE by a second kernel (decode: few query rows against long caches).
  // 0: automatic, when a workspace is given (without one the call does not split); 1: never;
  // 2..kMaxSplits: forced (at most one split per key block is used). A split call needs a device
  // workspace of flash_attention_workspace_size() bytes, 16-byte aligned, that nothing else uses
  // during the call; the library never allocates.
  int num_splits = 0;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;

  // FP8_E4M3 only: device fp32 descale factors (optional; null means 1). The values the kernel
  // attends with are q * q_descale, k * k_descale and v * v_descale: the q and k factors multiply
  // the scores before softmax_scale, the v factor the output. With descale_per_head false each
  // non-null pointer holds one value for the whole tensor; with it true, [batch_size, num_heads_k]
  // values (contiguous), one per batch entry and KV head (a query head uses its KV head's factor).
  // FP8 calls support dense batches with no mask, causal or a right window: no cu_seqlens,
  // seqused_k, left window, softcap, paged cache or split keys.
  const float* q_descale = nullptr;
  const float* k_descale = nullptr;
  const float* v_descale = nullptr;
  bool descale_per_head = false;
};

// Runs attention forward on `stream` (asynchronous). Returns kSuccess or a Status code.
int flash_attention_forward(const FlashAttentionParams& params, cudaStream_t stream = nullptr);

// Bytes of device workspace that flash_attention_forward(params) needs when params.workspace is
// given (0: this call does not split the keys). The fields params.workspace and
// params.workspace_bytes are ignored; every other field is checked as flash_attention_forward
// checks it, on the current device. Returns kSuccess or a Status code (then *bytes is unchanged).
int flash_attention_workspace_size(const FlashAttentionParams& params, size_t* bytes);

// The fixed text of a status code ("unknown status" for codes outside the enum).
const char* status_string(int status);

// The detailed message of the calling thread's last failed call: what was wrong, the offending
// value, and what is supported. Empty after a successful call.
const char* last_error_message();

// Head dims that have a kernel for `dtype`, ascending; returns how many were written (at most
// `capacity`) and writes nothing when `dims` is null.
int supported_head_dims(DataType dtype, int* dims, int capacity);

}  // namespace flash
