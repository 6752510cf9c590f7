/* FlashAttention forward for NVIDIA Hopper (SM90): the C interface.
 *
 * A plain C (C99) view of flash_api.h for callers that cannot use C++ (C programs, FFI from other
 * languages). It exposes the same computation and the same checks: flash_c_forward converts its
 * struct to flash::FlashAttentionParams and calls flash::flash_attention_forward.
 *
 * Usage:
 *   flash_fwd_params_c params;
 *   flash_c_params_init(&params);              (sets struct_size, version and every default)
 *   params.q = d_q; params.k = d_k; params.v = d_v; params.out = d_out;
 *   params.batch_size = 1; params.seqlen_q = 512; params.seqlen_k = 512;
 *   params.num_heads = 16; params.num_heads_k = 16; params.head_dim = 128;
 *   params.dtype = FLASH_C_DTYPE_FP16;
 *   int32_t status = flash_c_forward(&params, stream);   (stream: a cudaStream_t, or NULL)
 *   if (status != FLASH_C_SUCCESS)
 *     fprintf(stderr, "%s: %s\n", flash_c_status_string(status), flash_c_last_error_message());
 *
 * ABI rules: every value is a fixed-width integer, a float or a pointer; enumerations are int32_t
 * constants. The parameter struct starts with its own size and layout version, so that a library
 * can tell which layout a caller was compiled against: a later version only appends fields.
 *
 * Versions: 1 ends at out_head_stride; 2 appends the variable-length, local-window and softcap
 * fields; 3 the paged-KV and split-KV fields; 4 the FP8 output type and descale fields. The
 * library accepts all four: an older struct
 * (struct_size at least its version's size) runs with the later fields at their defaults, and they
 * are never read from its memory.
 */
#ifndef FLASH_API_C_H_
#define FLASH_API_C_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Layout version of flash_fwd_params_c described by this header (1 to 3 are still accepted). */
#define FLASH_C_PARAMS_VERSION 4u

/* Data types (flash::DataType). */
#define FLASH_C_DTYPE_FP16 0
#define FLASH_C_DTYPE_BF16 1
#define FLASH_C_DTYPE_FP8_E4M3 2
#define FLASH_C_DTYPE_AUTO (-1) /* out_dtype only: the input dtype, BF16 for FP8_E4M3 inputs */

/* Status codes (flash::Status): 0 is success, each failure has its own code. */
#define FLASH_C_SUCCESS 0
#define FLASH_C_ERROR_NULL_POINTER 1           /* q, k, v or out is null */
#define FLASH_C_ERROR_INVALID_SIZE 2           /* batch, seqlen, heads or head_dim is not positive */
#define FLASH_C_ERROR_HEAD_RATIO 3             /* num_heads is not a multiple of num_heads_k */
#define FLASH_C_ERROR_UNSUPPORTED_DTYPE 4      /* dtype has no kernel */
#define FLASH_C_ERROR_UNSUPPORTED_HEAD_DIM 5   /* head_dim has no kernel for this dtype */
#define FLASH_C_ERROR_MISALIGNED_POINTER 6     /* a tensor pointer is not 16-byte aligned */
#define FLASH_C_ERROR_MISALIGNED_STRIDE 7      /* a stride is negative or not a multiple of 16 bytes */
#define FLASH_C_ERROR_SIZE_OVERFLOW 8          /* an extent or offset exceeds what the kernel can address */
#define FLASH_C_ERROR_INVALID_SCALE 9          /* softmax_scale is negative, NaN or infinite */
#define FLASH_C_ERROR_ALIASING 10              /* out or softmax_lse overlaps an input or each other */
#define FLASH_C_ERROR_NO_DEVICE 11             /* no CUDA device is visible to this thread */
#define FLASH_C_ERROR_UNSUPPORTED_DEVICE 12    /* the current device is not SM90 (Hopper) */
#define FLASH_C_ERROR_CUDA_FAILURE 13          /* a CUDA runtime call or the launch failed */
#define FLASH_C_ERROR_INVALID_STRUCT 14        /* params is null or struct_size is too small */
#define FLASH_C_ERROR_UNSUPPORTED_VERSION 15   /* params->version is not a known layout version */
#define FLASH_C_ERROR_INTERNAL 16              /* unexpected internal failure (e.g. out of host memory) */
#define FLASH_C_ERROR_INVALID_WINDOW 17        /* window_size_left/right < -1, or window_size_right > 0 with is_causal */
#define FLASH_C_ERROR_INVALID_SOFTCAP 18       /* softcap is negative, NaN or infinite */
#define FLASH_C_ERROR_INVALID_VARLEN 19        /* inconsistent cu_seqlens_q/k, total_q/k or batch strides */
#define FLASH_C_ERROR_INVALID_SPLITS 20        /* num_splits is negative or above FLASH_C_MAX_SPLITS */
#define FLASH_C_ERROR_INVALID_WORKSPACE 21     /* the call splits the keys but the workspace is missing or too small */
#define FLASH_C_ERROR_INVALID_PAGING 22        /* inconsistent page_table, page_size, num_pages, page_table_stride */
#define FLASH_C_ERROR_INVALID_DESCALE 23       /* descale factors with a 16-bit dtype, or misaligned */

/* The largest num_splits a caller may force (flash::kMaxSplits). */
#define FLASH_C_MAX_SPLITS 256

/* The fields and their meaning are those of flash::FlashAttentionParams (see flash_api.h).
 * Tensors are device memory, layout [batch, seqlen, heads, head_dim], head_dim contiguous. */
typedef struct flash_fwd_params_c {
  uint32_t struct_size; /* sizeof(flash_fwd_params_c) as the caller compiled it */
  uint32_t version;     /* FLASH_C_PARAMS_VERSION as the caller compiled it */

  const void* q;        /* [batch, seqlen_q, num_heads, head_dim] */
  const void* k;        /* [batch, seqlen_k, num_heads_k, head_dim] */
  const void* v;        /* [batch, seqlen_k, num_heads_k, head_dim] */
  void* out;            /* [batch, seqlen_q, num_heads, head_dim], same dtype as q */
  float* softmax_lse;   /* optional (NULL: not written), fp32 [batch, num_heads, seqlen_q] */

  int32_t batch_size;
  int32_t seqlen_q;
  int32_t seqlen_k;
  int32_t num_heads;    /* query heads */
  int32_t num_heads_k;  /* key/value heads; num_heads % num_heads_k == 0 */
  int32_t head_dim;

  int32_t dtype;        /* FLASH_C_DTYPE_* */
  int32_t is_causal;    /* 0: no mask; non-zero: causal mask aligned bottom-right */
  float softmax_scale;  /* 0 means 1 / sqrt(head_dim) */
  int32_t reserved0;    /* explicit padding before the strides; ignored, set to 0 by flash_c_params_init */

  /* Strides in elements of the batch, row (sequence) and head dimensions; 0 means contiguous. */
  int64_t q_batch_stride, q_row_stride, q_head_stride;
  int64_t k_batch_stride, k_row_stride, k_head_stride;
  int64_t v_batch_stride, v_row_stride, v_head_stride;
  int64_t out_batch_stride, out_row_stride, out_head_stride;
  /* ---- end of version 1 ---- */

  /* Variable-length batches (both or neither): device int32 [batch_size + 1] offsets into packed
   * q/out [total_q, num_heads, head_dim] and k/v [total_k, num_heads_k, head_dim]; seqlen_q/k are
   * then the longest lengths, the batch strides must be 0 and softmax_lse is [num_heads, total_q]. */
  const int32_t* cu_seqlens_q;
  const int32_t* cu_seqlens_k;
  const int32_t* seqused_k;   /* optional device int32 [batch_size]: keys used per batch entry */
  int32_t total_q;            /* packed q/out rows with cu_seqlens (> 0); 0 otherwise */
  int32_t total_k;            /* packed k/v rows with cu_seqlens (> 0); 0 otherwise */
  int32_t window_size_left;   /* local attention: keys left of the diagonal; -1 = unbounded */
  int32_t window_size_right;  /* keys right of the diagonal; -1 = unbounded; -1 or 0 with is_causal */
  float softcap;              /* > 0: scores become softcap * tanh(score / softcap); 0 = off */
  int32_t reserved1;          /* explicit padding to a multiple of 8 bytes; ignored, set to 0 by flash_c_params_init */
  /* ---- end of version 2 ---- */

  /* Paged KV cache (optional): k/v [num_pages, page_size, num_heads_k, head_dim] and a device int32
   * page table [batch_size, page_table_stride]; page_size a multiple of 16; no cu_seqlens. */
  const int32_t* page_table;
  int32_t page_table_stride;
  int32_t page_size;
  int32_t num_pages;
  /* Split-KV: 0 automatic (with a workspace), 1 never, up to FLASH_C_MAX_SPLITS forced. */
  int32_t num_splits;
  void* workspace;            /* device memory of flash_c_workspace_size() bytes, 16-byte aligned */
  uint64_t workspace_bytes;
  /* ---- end of version 3 ---- */

  /* FP8_E4M3 inputs: the output type (FLASH_C_DTYPE_AUTO = BF16, or FP16/BF16; 16-bit inputs: AUTO or
   * their own dtype) and optional device fp32 descale factors (NULL = 1), one per tensor, or with
   * descale_per_head non-zero [batch_size, num_heads_k] each. */
  int32_t out_dtype;
  int32_t descale_per_head;
  const float* q_descale;
  const float* k_descale;
  const float* v_descale;
} flash_fwd_params_c;

/* Fills *params with the defaults (null pointers, zero sizes, FP16, non-causal, scale 0, strides 0,
 * no variable lengths, window sizes -1, softcap 0, no paging, num_splits 0, no workspace, out_dtype
 * AUTO, no descale factors) and sets
 * struct_size and version. It writes the
 * whole struct of THIS header (sizeof(flash_fwd_params_c), version FLASH_C_PARAMS_VERSION): a caller
 * that declares an older, shorter layout (an FFI binding written for version 1, say) must not call
 * it, and fills its struct itself (struct_size, its version, the defaults above). Returns
 * FLASH_C_SUCCESS, or FLASH_C_ERROR_INVALID_STRUCT when params is null. */
int32_t flash_c_params_init(flash_fwd_params_c* params);

/* Runs attention forward on `stream` (a cudaStream_t; NULL is the default stream), asynchronously.
 * Returns FLASH_C_SUCCESS or a FLASH_C_ERROR_* code; a rejected call launches nothing and writes
 * nothing. Never lets a C++ exception escape. */
int32_t flash_c_forward(const flash_fwd_params_c* params, void* stream);

/* Bytes of device workspace that flash_c_forward(params) needs when params->workspace is given
 * (0: the call does not split the keys), as flash::flash_attention_workspace_size; the struct's
 * workspace fields are ignored. Returns FLASH_C_SUCCESS (writing *bytes) or a FLASH_C_ERROR_* code. */
int32_t flash_c_workspace_size(const flash_fwd_params_c* params, uint64_t* bytes);

/* The fixed text of a status code ("unknown status" for codes outside the list). Never null. */
const char* flash_c_status_string(int32_t status);

/* The detailed message of the calling thread's last failed call (empty after a success). Never
 * null; valid until the thread's next call into the library. */
const char* flash_c_last_error_message(void);

/* Head dims that have a kernel for `dtype` (FLASH_C_DTYPE_*), ascending; returns how many were
 * written (at most `capacity`) and writes nothing when `dims` is null. */
int32_t flash_c_supported_head_dims(int32_t dtype, int32_t* dims, int32_t capacity);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* FLASH_API_C_H_ */
