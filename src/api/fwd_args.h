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
  bool is_causal = false;
  float softmax_scale = 0.0f;       // > 0
  float softmax_scale_log2 = 0.0f;  // softmax_scale * log2(e): the kernels use exp2
  TensorStrides q_strides, k_strides, v_strides, out_strides;
  int device = 0;
  int num_sms = 0;   // multiprocessors of `device`: the persistent grid's size
};

using FwdLauncher = Status (*)(const FwdArgs& args, cudaStream_t stream);

// One row of the kernel table written by tools/generate_kernels.py.
struct KernelEntry {
  DataType dtype;
  int head_dim;
  FwdLauncher launch;
  const char* name;
};

extern const KernelEntry kKernelTable[];
extern const int kNumKernels;

}  // namespace flash::detail
