// Argument and device checks of the public API. Nothing here dereferences a tensor pointer or
// touches the GPU except check_device, so a rejected call launches nothing and writes nothing.
#include "api/validate.h"

#include <algorithm>
#include <array>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <limits>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <cuda_runtime_api.h>

namespace flash::detail {
namespace {

// TMA loads and stores move 16-byte units: base addresses and strides must be multiples of it.
constexpr int64_t kTensorAlignBytes = 16;
// softmax_lse is written as plain fp32 values; cu_seqlens_q/k, seqused_k and page_table are read
// as int32; the split-KV workspace as float4.
constexpr int64_t kLseAlignBytes = 4;
constexpr int64_t kInt32AlignBytes = 4;
constexpr int64_t kWorkspaceAlignBytes = 16;
// Pages are loaded in boxes of 16 rows (the paged TMA chunk, src/sm90/traits.cuh).
constexpr int kPageGranularity = 16;
// A TMA descriptor's global strides must be below 2^40 bytes.
constexpr uint64_t kMaxStrideBytes = uint64_t{1} << 40;
// A TMA box spans at most 256 elements per dimension, and head_dim is loaded as one box row.
constexpr int kMaxHeadDim = 256;
// Sequence lengths and packed row counts stay below 2^30 (see check_sizes).
constexpr int kMaxTokens = (1 << 30) - 1;
// Head dims are whole 16-byte units (the TMA row alignment): 8 elements of 16 bits, 16 of FP8.
constexpr int kMajorSm90 = 9;
constexpr int kMinorSm90 = 0;
// Position of out in the q, k, v, out tensor list; the inputs come before it.
constexpr size_t kOutIndex = 3;
constexpr double kLog2e = 1.4426950408889634074;  // log2(e): the kernels compute exp as exp2

// Products and sums of sizes and strides are checked because user values can reach 2^31 each
// and a silently wrapped offset would let the kernel address the wrong memory.
bool checked_mul(int64_t a, int64_t b, int64_t* result) { return !__builtin_mul_overflow(a, b, result); }
bool checked_add(int64_t a, int64_t b, int64_t* result) { return !__builtin_add_overflow(a, b, result); }

const char* dtype_name(DataType dtype) {
  switch (dtype) {
    case DataType::FP16: return "FP16";
    case DataType::BF16: return "BF16";
    case DataType::FP8_E4M3: return "FP8_E4M3";
    case DataType::AUTO: return "AUTO";
  }
  return nullptr;
}

int64_t element_bytes(DataType dtype) { return dtype == DataType::FP8_E4M3 ? 1 : 2; }

bool has_kernel_for(DataType dtype) {
  for (int i = 0; i < kNumKernels; ++i) {
    if (kKernelTable[i].dtype == dtype) return true;
  }
  return false;
}

std::string supported_dtypes_text() {
  std::vector<DataType> seen;
  std::string text;
  for (int i = 0; i < kNumKernels; ++i) {
    const DataType dtype = kKernelTable[i].dtype;
    if (std::find(seen.begin(), seen.end(), dtype) != seen.end()) continue;
    seen.push_back(dtype);
    text += (text.empty() ? "" : ", ") + std::string(dtype_name(dtype));
  }
  return text;
}

std::string supported_head_dims_text(DataType dtype) {
  std::vector<int> dims(static_cast<size_t>(kNumKernels));
  dims.resize(static_cast<size_t>(supported_head_dims(dtype, dims.data(), kNumKernels)));
  std::string text;
  for (const int dim : dims) text += (text.empty() ? "" : ", ") + std::to_string(dim);
  return text;
}

// Messages are formatted with snprintf, not iostreams: on the H100 machine the Python extension
// crashed (segfault) in exactly the calls whose messages were built with std::ostringstream (the
// aliasing and softmax_scale rejections) and in none of the others.
std::string hex(uintptr_t address) {
  char text[2 + 2 * sizeof(uintptr_t) + 1];
  std::snprintf(text, sizeof(text), "0x%" PRIxPTR, address);
  return text;
}

// A double as iostreams print it by default (%g: 6 significant digits; nan, inf).
std::string num(double value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%g", value);
  return text;
}

// One [batch, seqlen, heads, head_dim] operand as the checks see it; with variable-length
// batches one packed [total, heads, head_dim] operand (batch 1, rows = total_q or total_k).
// A paged k or v is [num_pages, page_size, heads, head_dim]: its "batch" is the page.
struct TensorSpec {
  const char* name;          // "q", "k", "v" or "out"
  const void* ptr;
  bool packed;               // variable length: no batch dimension, batch stride 0
  int batch;                 // batch_size, 1 when packed, num_pages when paged
  const char* batch_name;    // "batch_size" or "num_pages"
  int seqlen;                // rows per batch entry: seqlen_q/k, total_q/k when packed, page_size when paged
  const char* seqlen_name;   // "seqlen_q", "seqlen_k", "total_q", "total_k" or "page_size"
  int heads;
  const char* heads_name;    // "num_heads" or "num_heads_k"
  int64_t elem_bytes;        // 1 (FP8) or 2
  TensorStrides given;       // as passed: 0 selects the contiguous default
  TensorStrides* resolved;   // where the resolved strides go
};

// Byte range [begin, end) that a tensor's elements lie in.
struct ByteRange {
  const char* name;
  uintptr_t begin;
  uintptr_t end;
};

Status check_pointers(const FlashAttentionParams& p) {
  const std::array<std::pair<const char*, const void*>, 4> pointers = {
      {{"q", p.q}, {"k", p.k}, {"v", p.v}, {"out", p.out}}};
  for (const auto& [name, ptr] : pointers) {
    if (ptr == nullptr) return fail(kErrorNullPointer, std::string(name) + " is null; q, k, v and out must be device pointers");
  }
  return kSuccess;
}

Status check_sizes(const FlashAttentionParams& p) {
  const std::array<std::pair<const char*, int>, 6> sizes = {{{"batch_size", p.batch_size},
                                                             {"seqlen_q", p.seqlen_q},
                                                             {"seqlen_k", p.seqlen_k},
                                                             {"num_heads", p.num_heads},
                                                             {"num_heads_k", p.num_heads_k},
                                                             {"head_dim", p.head_dim}}};
  for (const auto& [name, value] : sizes) {
    if (value <= 0) {
      return fail(kErrorInvalidSize, std::string(name) + " = " + std::to_string(value) + " must be positive");
    }
  }
  // The kernels' row and window arithmetic is int32 with windows clamped to +-2^30 (mask.cuh).
  const std::array<std::pair<const char*, int>, 4> lengths = {
      {{"seqlen_q", p.seqlen_q}, {"seqlen_k", p.seqlen_k}, {"total_q", p.total_q}, {"total_k", p.total_k}}};
  for (const auto& [name, value] : lengths) {
    if (value > kMaxTokens) {
      return fail(kErrorSizeOverflow, std::string(name) + " = " + std::to_string(value) + " exceeds " +
                                          std::to_string(kMaxTokens) + " (2^30 - 1), the longest sequence the kernels address");
    }
  }
  return kSuccess;
}

Status check_head_ratio(const FlashAttentionParams& p) {
  if (p.num_heads % p.num_heads_k == 0) return kSuccess;
  return fail(kErrorHeadRatio, "num_heads = " + std::to_string(p.num_heads) + " is not a multiple of num_heads_k = " +
                                   std::to_string(p.num_heads_k) + "; each key/value head must serve a whole group of query heads");
}

Status check_dtype(DataType dtype) {
  const char* name = dtype_name(dtype);
  if (dtype == DataType::AUTO) {
    return fail(kErrorUnsupportedDtype, "dtype = AUTO is only an out_dtype value; dtype names the inputs' type (supported: " +
                                            supported_dtypes_text() + ")");
  }
  if (name == nullptr) {
    return fail(kErrorUnsupportedDtype, "dtype = " + std::to_string(static_cast<int>(dtype)) +
                                            " is not a DataType value; supported dtypes: " + supported_dtypes_text());
  }
  if (!has_kernel_for(dtype)) {
    return fail(kErrorUnsupportedDtype,
                "dtype = " + std::string(name) + " has no kernel; supported dtypes: " + supported_dtypes_text());
  }
  return kSuccess;
}

// A head dim runs on the narrowest kernel at least as wide: the kernel's loads zero-fill the extra
// columns and its stores clip them. Rows must stay 16-byte aligned: a multiple of 8 elements of 16
// bits, of 16 in FP8.
Status check_head_dim(DataType dtype, int head_dim) {
  const int granularity = static_cast<int>(kTensorAlignBytes / element_bytes(dtype));
  if (head_dim % granularity == 0 && find_kernel(dtype, head_dim) != nullptr) return kSuccess;
  return fail(kErrorUnsupportedHeadDim, "head_dim = " + std::to_string(head_dim) + " is not supported for " +
                                            dtype_name(dtype) + "; supported: a multiple of " +
                                            std::to_string(granularity) + " up to the widest kernel (kernels: " +
                                            supported_head_dims_text(dtype) + "; narrower head dims run padded on the next wider one)");
}

// The softmax scale in double: softmax_scale, or 1/sqrt(head_dim) for 0.
double effective_scale(const FlashAttentionParams& p) {
  return p.softmax_scale == 0.0f ? 1.0 / std::sqrt(static_cast<double>(p.head_dim)) : p.softmax_scale;
}

Status resolve_scale(const FlashAttentionParams& p, FwdArgs* args) {
  if (!std::isfinite(p.softmax_scale) || p.softmax_scale < 0.0f) {
    return fail(kErrorInvalidScale, "softmax_scale = " + num(p.softmax_scale) +
                                         " is not supported; it must be finite and >= 0 (0 means 1/sqrt(head_dim))");
  }
  const double scale = effective_scale(p);
  args->softmax_scale = static_cast<float>(scale);
  args->softmax_scale_log2 = static_cast<float>(scale * kLog2e);
  return kSuccess;
}

// Softcap c > 0: the kernel maps a raw score s to tanh(s * scale / c) and multiplies that by
// c * log2(e) before exp2, i.e. c * tanh(scale * s / c) in base e. Runs after resolve_scale.
Status resolve_softcap(const FlashAttentionParams& p, FwdArgs* args) {
  if (!std::isfinite(p.softcap) || p.softcap < 0.0f) {
    return fail(kErrorInvalidSoftcap, "softcap = " + num(p.softcap) +
                                          " is not supported; it must be finite and >= 0 (0 turns the softcap off)");
  }
  if (p.softcap == 0.0f) {
    args->softcap_scale = 0.0f;
    return kSuccess;
  }
  const double scale = effective_scale(p);
  const double softcap_scale = scale / p.softcap;
  const double scale_log2 = static_cast<double>(p.softcap) * kLog2e;
  // Both factors must be normal fp32 numbers: an extreme softcap would hand the kernel an infinite
  // factor, or one that fp32 (with denormals flushed) rounds to 0, which would read as "no softcap".
  const double lowest = std::numeric_limits<float>::min();
  const double highest = std::numeric_limits<float>::max();
  const std::array<std::pair<const char*, double>, 2> factors = {
      {{"softmax_scale / softcap", softcap_scale}, {"softcap * log2(e)", scale_log2}}};
  for (const auto& [formula, value] : factors) {
    if (value < lowest || value > highest) {
      return fail(kErrorInvalidSoftcap, "softcap = " + num(p.softcap) + " is not supported: " + formula + " = " +
                                            num(value) + " is not a normal fp32 number; with this softmax_scale the softcap must lie in [" +
                                            num(std::max(scale / highest, lowest / kLog2e)) + ", " +
                                            num(std::min(scale / lowest, highest / kLog2e)) + "]");
    }
  }
  args->softcap_scale = static_cast<float>(softcap_scale);
  args->softmax_scale_log2 = static_cast<float>(scale_log2);
  return kSuccess;
}

// Window sizes are >= 0 or -1 (unbounded); is_causal is the right bound 0 and admits only -1 or 0.
Status resolve_window(const FlashAttentionParams& p, FwdArgs* args) {
  const std::array<std::pair<const char*, int>, 2> sides = {
      {{"window_size_left", p.window_size_left}, {"window_size_right", p.window_size_right}}};
  for (const auto& [name, value] : sides) {
    if (value < -1) {
      return fail(kErrorInvalidWindow, std::string(name) + " = " + std::to_string(value) +
                                           " is not supported; it must be >= 0 (keys that far from the diagonal) "
                                           "or -1 (no limit on that side)");
    }
  }
  if (p.is_causal && p.window_size_right > 0) {
    return fail(kErrorInvalidWindow, "window_size_right = " + std::to_string(p.window_size_right) +
                                         " conflicts with is_causal, which allows no key right of the diagonal; "
                                         "with is_causal, window_size_right must be -1 or 0");
  }
  args->window_left = p.window_size_left;
  args->window_right = p.is_causal ? 0 : p.window_size_right;
  return kSuccess;
}

// Variable-length batches: cu_seqlens_q and cu_seqlens_k together or not at all, total_q/k only
// with them, every longest length within its packed tensor, and no batch strides.
Status check_varlen(const FlashAttentionParams& p) {
  const bool has_q = p.cu_seqlens_q != nullptr;
  const bool has_k = p.cu_seqlens_k != nullptr;
  if (has_q != has_k) {
    const char* set = has_q ? "cu_seqlens_q" : "cu_seqlens_k";
    const char* unset = has_q ? "cu_seqlens_k" : "cu_seqlens_q";
    const void* ptr = has_q ? static_cast<const void*>(p.cu_seqlens_q) : static_cast<const void*>(p.cu_seqlens_k);
    return fail(kErrorInvalidVarlen, std::string(set) + " = " + hex(reinterpret_cast<uintptr_t>(ptr)) + " is set but " +
                                         unset + " is null; variable-length batches need both cu_seqlens_q and "
                                         "cu_seqlens_k (or neither)");
  }
  const std::array<std::pair<const char*, int>, 2> totals = {{{"total_q", p.total_q}, {"total_k", p.total_k}}};
  if (!has_q) {
    for (const auto& [name, value] : totals) {
      if (value != 0) {
        return fail(kErrorInvalidVarlen, std::string(name) + " = " + std::to_string(value) +
                                             " without cu_seqlens_q and cu_seqlens_k; total_q and total_k must be 0 "
                                             "unless the batch is variable-length");
      }
    }
    return kSuccess;
  }
  for (const auto& [name, value] : totals) {
    if (value <= 0) {
      return fail(kErrorInvalidVarlen, std::string(name) + " = " + std::to_string(value) +
                                           " must be positive with cu_seqlens_q/cu_seqlens_k: it is the packed "
                                           "tensors' row count");
    }
  }
  const std::array<std::tuple<const char*, int, const char*, int>, 2> longest = {
      {{"seqlen_q", p.seqlen_q, "total_q", p.total_q}, {"seqlen_k", p.seqlen_k, "total_k", p.total_k}}};
  for (const auto& [name, value, total_name, total] : longest) {
    if (value > total) {
      return fail(kErrorInvalidVarlen, std::string(name) + " = " + std::to_string(value) +
                                           " exceeds " + total_name + " = " + std::to_string(total) +
                                           "; with cu_seqlens_q/cu_seqlens_k it is the longest sequence, which must "
                                           "fit in the packed tensor");
    }
  }
  const std::array<std::pair<const char*, int64_t>, 4> batch_strides = {{{"q_batch_stride", p.q_batch_stride},
                                                                         {"k_batch_stride", p.k_batch_stride},
                                                                         {"v_batch_stride", p.v_batch_stride},
                                                                         {"out_batch_stride", p.out_batch_stride}}};
  for (const auto& [name, value] : batch_strides) {
    if (value != 0) {
      return fail(kErrorInvalidVarlen, std::string(name) + " = " + std::to_string(value) +
                                           " must be 0 with cu_seqlens_q/cu_seqlens_k: packed tensors [total, heads, "
                                           "head_dim] have no batch dimension");
    }
  }
  return kSuccess;
}

// Paged KV: page_table with page_size (a multiple of 16), num_pages and page_table_stride, all
// positive, room for the longest cache, and no cu_seqlens; without page_table all three are 0.
Status check_paging(const FlashAttentionParams& p) {
  const std::array<std::pair<const char*, int>, 3> fields = {
      {{"page_size", p.page_size}, {"num_pages", p.num_pages}, {"page_table_stride", p.page_table_stride}}};
  if (p.page_table == nullptr) {
    for (const auto& [name, value] : fields) {
      if (value != 0) {
        return fail(kErrorInvalidPaging, std::string(name) + " = " + std::to_string(value) +
                                             " without page_table; page_size, num_pages and page_table_stride "
                                             "must be 0 unless the KV cache is paged");
      }
    }
    return kSuccess;
  }
  for (const auto& [name, value] : fields) {
    if (value <= 0) {
      return fail(kErrorInvalidPaging, std::string(name) + " = " + std::to_string(value) +
                                           " must be positive with page_table");
    }
  }
  if (p.page_size % kPageGranularity != 0 || p.page_size > kMaxTokens) {
    return fail(kErrorInvalidPaging, "page_size = " + std::to_string(p.page_size) +
                                         " is not supported; it must be a multiple of " +
                                         std::to_string(kPageGranularity) + " keys (16, 32, ..., 256, ...)");
  }
  if (p.cu_seqlens_q != nullptr || p.cu_seqlens_k != nullptr) {
    return fail(kErrorInvalidPaging, "page_table with cu_seqlens_q/cu_seqlens_k is not supported; a paged KV cache "
                                     "takes dense queries [batch, seqlen_q, heads, head_dim] and seqused_k for "
                                     "per-entry cache lengths");
  }
  const int64_t capacity = int64_t{p.page_table_stride} * p.page_size;
  if (p.seqlen_k > capacity) {
    return fail(kErrorInvalidPaging, "seqlen_k = " + std::to_string(p.seqlen_k) + " exceeds page_table_stride * page_size = " +
                                         std::to_string(p.page_table_stride) + " * " + std::to_string(p.page_size) +
                                         " = " + std::to_string(capacity) + ", the most keys a batch entry's pages hold");
  }
  return kSuccess;
}

// num_splits in [0, kMaxSplits]; a workspace pointer and its size come together.
Status check_splits(const FlashAttentionParams& p) {
  if (p.num_splits < 0 || p.num_splits > kMaxSplits) {
    return fail(kErrorInvalidSplits, "num_splits = " + std::to_string(p.num_splits) + " is not supported; it must be 0 "
                                         "(automatic), 1 (no split) or up to " + std::to_string(kMaxSplits));
  }
  if ((p.workspace == nullptr) != (p.workspace_bytes == 0)) {
    return fail(kErrorInvalidWorkspace,
                p.workspace == nullptr
                    ? "workspace_bytes = " + std::to_string(p.workspace_bytes) + " with a null workspace; pass both or neither"
                    : "workspace = " + hex(reinterpret_cast<uintptr_t>(p.workspace)) +
                          " with workspace_bytes = 0; pass its size (flash_attention_workspace_size)");
  }
  return kSuccess;
}

// The output dtype: AUTO resolves to the input dtype (BF16 for FP8 inputs); FP8 inputs may ask
// for FP16 or BF16, 16-bit inputs only for their own dtype.
Status resolve_out_dtype(const FlashAttentionParams& p, FwdArgs* args) {
  const bool fp8 = p.dtype == DataType::FP8_E4M3;
  if (p.out_dtype == DataType::AUTO) {
    args->out_dtype = fp8 ? DataType::BF16 : p.dtype;
    return kSuccess;
  }
  const char* name = dtype_name(p.out_dtype);
  const bool allowed = fp8 ? (p.out_dtype == DataType::FP16 || p.out_dtype == DataType::BF16) : p.out_dtype == p.dtype;
  if (name == nullptr || !allowed) {
    const std::string given = name != nullptr ? name : std::to_string(static_cast<int>(p.out_dtype));
    return fail(kErrorUnsupportedDtype, "out_dtype = " + given + " is not supported for dtype = " + dtype_name(p.dtype) +
                                            (fp8 ? "; supported: AUTO (BF16), BF16 or FP16"
                                                 : "; supported: AUTO or " + std::string(dtype_name(p.dtype))));
  }
  args->out_dtype = p.out_dtype;
  return kSuccess;
}

// FP8 runs on one kernel variant: dense batches, no mask or a right window (causal). Each feature
// of the general variant is named when it is asked for with FP8 inputs. A workspace is accepted
// (a serving engine may pass one to every call); FP8 calls never split.
Status check_fp8_features(const FlashAttentionParams& p) {
  if (p.dtype != DataType::FP8_E4M3) return kSuccess;
  const std::array<std::pair<const char*, bool>, 6> features = {{
      {"cu_seqlens_q/cu_seqlens_k (variable-length batches)", p.cu_seqlens_q != nullptr || p.cu_seqlens_k != nullptr},
      {"seqused_k", p.seqused_k != nullptr},
      {"window_size_left >= 0 (a left window)", p.window_size_left >= 0},
      {"softcap > 0", p.softcap != 0.0f},
      {"page_table (a paged KV cache)", p.page_table != nullptr},
      {"num_splits > 1 (split keys)", p.num_splits > 1},
  }};
  for (const auto& [feature, asked] : features) {
    if (asked) {
      return fail(kErrorUnsupportedDtype, std::string("dtype = FP8_E4M3 does not support ") + feature +
                                              "; FP8 supports dense batches with no mask, causal or a right window "
                                              "(FP16 and BF16 support the rest)");
    }
  }
  return kSuccess;
}

// Descale factors: FP8 only, fp32 (4-byte aligned); with descale_per_head one per (batch entry,
// KV head), else one per tensor.
Status resolve_descale(const FlashAttentionParams& p, FwdArgs* args) {
  const std::array<std::pair<const char*, const float*>, 3> factors = {
      {{"q_descale", p.q_descale}, {"k_descale", p.k_descale}, {"v_descale", p.v_descale}}};
  for (const auto& [name, ptr] : factors) {
    if (ptr == nullptr) continue;
    if (p.dtype != DataType::FP8_E4M3) {
      return fail(kErrorInvalidDescale, std::string(name) + " is set with dtype = " + dtype_name(p.dtype) +
                                            "; descale factors apply to FP8_E4M3 inputs only");
    }
    const auto address = reinterpret_cast<uintptr_t>(ptr);
    if (address % sizeof(float) != 0) {
      return fail(kErrorInvalidDescale, std::string(name) + " = " + hex(address) + " is not aligned to 4 bytes (fp32)");
    }
  }
  if (p.descale_per_head && p.dtype != DataType::FP8_E4M3) {
    return fail(kErrorInvalidDescale, std::string("descale_per_head is set with dtype = ") + dtype_name(p.dtype) +
                                          "; descale factors apply to FP8_E4M3 inputs only");
  }
  args->q_descale = p.q_descale;
  args->k_descale = p.k_descale;
  args->v_descale = p.v_descale;
  args->descale_batch_stride = p.descale_per_head ? p.num_heads_k : 0;
  args->descale_head_stride = p.descale_per_head ? 1 : 0;
  return kSuccess;
}

// Fills the zero strides with their contiguous defaults, then requires every stride to be
// non-negative and a whole number of 16-byte units.
Status resolve_strides(const TensorSpec& t, int head_dim) {
  const int64_t elem_bytes = t.elem_bytes;
  const std::string prefix = t.name;
  const int64_t row_default = int64_t{t.heads} * head_dim;  // < 2^62: cannot overflow
  int64_t batch_default = 0;   // packed tensors have no batch dimension
  const bool batch_default_fits = t.packed || checked_mul(row_default, t.seqlen, &batch_default);
  if (t.given.batch == 0 && !batch_default_fits) {
    return fail(kErrorSizeOverflow, prefix + "_batch_stride default " + t.seqlen_name + " * " + t.heads_name +
                                        " * head_dim = " + std::to_string(t.seqlen) + " * " + std::to_string(t.heads) +
                                        " * " + std::to_string(head_dim) + " overflows int64");
  }
  struct Field {
    const char* suffix;
    int64_t given;
    int64_t fallback;
    int64_t* out;
  };
  const std::array<Field, 3> fields = {{{"_batch_stride", t.given.batch, batch_default, &t.resolved->batch},
                                        {"_row_stride", t.given.row, row_default, &t.resolved->row},
                                        {"_head_stride", t.given.head, head_dim, &t.resolved->head}}};
  for (const Field& field : fields) {
    const int64_t value = field.given != 0 ? field.given : field.fallback;
    const std::string name = prefix + field.suffix;
    if (value < 0) {
      return fail(kErrorMisalignedStride, name + " = " + std::to_string(value) +
                                              " is negative; strides must be >= 0 (0 means the contiguous default)");
    }
    // Exact in uint64: value < 2^63 and an element is at most 2 bytes.
    const uint64_t bytes = static_cast<uint64_t>(value) * static_cast<uint64_t>(elem_bytes);
    if (bytes % kTensorAlignBytes != 0) {
      return fail(kErrorMisalignedStride, name + " = " + std::to_string(value) + " elements (" + std::to_string(bytes) +
                                              " bytes" + (field.given == 0 ? ", the contiguous default" : "") +
                                              ") is not a multiple of 16 bytes");
    }
    *field.out = value;
  }
  return kSuccess;
}

Status check_alignment(const std::array<TensorSpec, 4>& tensors, const FlashAttentionParams& p) {
  for (const TensorSpec& t : tensors) {
    const auto address = reinterpret_cast<uintptr_t>(t.ptr);
    if (address % kTensorAlignBytes != 0) {
      return fail(kErrorMisalignedPointer,
                  std::string(t.name) + " = " + hex(address) + " is not aligned to 16 bytes, as TMA requires");
    }
  }
  const auto lse_address = reinterpret_cast<uintptr_t>(p.softmax_lse);
  if (lse_address % kLseAlignBytes != 0) {
    return fail(kErrorMisalignedPointer, "softmax_lse = " + hex(lse_address) + " is not aligned to 4 bytes (fp32)");
  }
  const std::array<std::pair<const char*, const int32_t*>, 4> int_arrays = {{{"cu_seqlens_q", p.cu_seqlens_q},
                                                                            {"cu_seqlens_k", p.cu_seqlens_k},
                                                                            {"seqused_k", p.seqused_k},
                                                                            {"page_table", p.page_table}}};
  for (const auto& [name, ptr] : int_arrays) {
    const auto address = reinterpret_cast<uintptr_t>(ptr);
    if (address % kInt32AlignBytes != 0) {
      return fail(kErrorMisalignedPointer, std::string(name) + " = " + hex(address) + " is not aligned to 4 bytes (int32)");
    }
  }
  const auto workspace_address = reinterpret_cast<uintptr_t>(p.workspace);
  if (workspace_address % kWorkspaceAlignBytes != 0) {
    return fail(kErrorMisalignedPointer, "workspace = " + hex(workspace_address) + " is not aligned to 16 bytes");
  }
  return kSuccess;
}

// Rejects a range whose end would wrap around the address space.
Status make_range(const char* name, const void* ptr, int64_t bytes, ByteRange* range) {
  const auto begin = reinterpret_cast<uintptr_t>(ptr);
  if (static_cast<uint64_t>(bytes) > std::numeric_limits<uintptr_t>::max() - begin) {
    return fail(kErrorSizeOverflow, std::string(name) + " = " + hex(begin) + " plus its " + std::to_string(bytes) +
                                        " bytes runs past the end of the address space");
  }
  *range = {name, begin, begin + static_cast<uintptr_t>(bytes)};
  return kSuccess;
}

// Strides must fit a TMA descriptor and the last element's offset must fit int64.
Status check_tensor_range(const TensorSpec& t, int head_dim, ByteRange* range) {
  const int64_t elem_bytes = t.elem_bytes;
  const TensorStrides& s = *t.resolved;
  const int batch = t.batch;
  const std::array<std::pair<const char*, int64_t>, 3> strides = {
      {{"_batch_stride", s.batch}, {"_row_stride", s.row}, {"_head_stride", s.head}}};
  for (const auto& [suffix, value] : strides) {
    const uint64_t bytes = static_cast<uint64_t>(value) * static_cast<uint64_t>(elem_bytes);
    if (bytes >= kMaxStrideBytes) {
      return fail(kErrorSizeOverflow, std::string(t.name) + suffix + " = " + std::to_string(value) + " elements (" +
                                          std::to_string(bytes) + " bytes) is not below the TMA limit of 2^40 bytes");
    }
  }
  int64_t offset = head_dim - 1;
  int64_t term = 0;
  const bool fits = checked_mul(int64_t{batch} - 1, s.batch, &term) && checked_add(offset, term, &offset) &&
                    checked_mul(int64_t{t.seqlen} - 1, s.row, &term) && checked_add(offset, term, &offset) &&
                    checked_mul(int64_t{t.heads} - 1, s.head, &term) && checked_add(offset, term, &offset);
  int64_t bytes = 0;
  if (!fits || !checked_mul(offset + 1, elem_bytes, &bytes)) {
    const std::string n = t.name;
    // A packed (variable-length) tensor has no batch term.
    const std::string batch_term = t.packed ? "" : "(" + std::string(t.batch_name) + " - 1) * " + n + "_batch_stride + ";
    const std::string batch_value = t.packed ? "" : "(" + std::to_string(batch) + " - 1) * " + std::to_string(s.batch) + " + ";
    return fail(kErrorSizeOverflow, n + ": the last element's offset " + batch_term + "(" + t.seqlen_name + " - 1) * " +
                                        n + "_row_stride + (" + t.heads_name + " - 1) * " + n +
                                        "_head_stride + head_dim - 1 = " + batch_value + "(" + std::to_string(t.seqlen) +
                                        " - 1) * " + std::to_string(s.row) + " + (" + std::to_string(t.heads) +
                                        " - 1) * " + std::to_string(s.head) + " + " + std::to_string(head_dim - 1) +
                                        " overflows int64 as an element offset or in bytes");
  }
  return make_range(t.name, t.ptr, bytes, range);
}

// softmax_lse: [batch, num_heads, seqlen_q], or [num_heads, total_q] with variable lengths.
Status check_lse_range(const FlashAttentionParams& p, ByteRange* range) {
  const bool packed = p.cu_seqlens_q != nullptr;
  const int batch = packed ? 1 : p.batch_size;
  const int rows = packed ? p.total_q : p.seqlen_q;
  int64_t count = 0;
  int64_t bytes = 0;
  if (!checked_mul(batch, p.num_heads, &count) || !checked_mul(count, rows, &count) ||
      !checked_mul(count, int64_t{sizeof(float)}, &bytes)) {
    const std::string formula = packed ? "num_heads * total_q = " : "batch_size * num_heads * seqlen_q = " +
                                                                        std::to_string(p.batch_size) + " * ";
    return fail(kErrorSizeOverflow, "softmax_lse size " + formula + std::to_string(p.num_heads) + " * " +
                                        std::to_string(rows) + " fp32 values overflows int64 bytes");
  }
  return make_range("softmax_lse", p.softmax_lse, bytes, range);
}

// The int32 arrays the kernel reads (cu_seqlens_q/k: batch_size + 1 values, seqused_k: batch_size,
// page_table: batch_size * page_table_stride), for the aliasing checks against out, softmax_lse and
// the workspace. Null arrays give no range.
Status append_int_array_ranges(const FlashAttentionParams& p, std::vector<ByteRange>* ranges) {
  const int64_t entries = p.batch_size;   // > 0: checked before
  const std::array<std::tuple<const char*, const int32_t*, int64_t>, 4> arrays = {
      {{"cu_seqlens_q", p.cu_seqlens_q, entries + 1},
       {"cu_seqlens_k", p.cu_seqlens_k, entries + 1},
       {"seqused_k", p.seqused_k, entries},
       {"page_table", p.page_table, entries * p.page_table_stride}}};
  for (const auto& [name, ptr, count] : arrays) {
    if (ptr == nullptr) continue;
    ByteRange range{};
    if (Status s = make_range(name, ptr, count * int64_t{sizeof(int32_t)}, &range); s != kSuccess) return s;
    ranges->push_back(range);
  }
  return kSuccess;
}

// out is written in parallel, so two of its (batch, row, head, d) indices must never name the
// same element: sorted by stride, each dimension must step over the whole previous one. A packed
// (variable-length) out has extents (1, total_q, num_heads, head_dim).
Status check_out_self_overlap(const FlashAttentionParams& p, const TensorSpec& out) {
  struct Dim {
    const char* stride_name;
    int64_t stride;
    const char* extent_name;
    int64_t extent;
  };
  const TensorStrides& s = *out.resolved;
  std::array<Dim, 4> dims = {{{"out_batch_stride", s.batch, "batch_size", out.packed ? 1 : p.batch_size},
                              {"out_row_stride", s.row, out.seqlen_name, out.seqlen},
                              {"out_head_stride", s.head, "num_heads", p.num_heads},
                              {"the contiguous head_dim stride", 1, "head_dim", p.head_dim}}};
  std::stable_sort(dims.begin(), dims.end(), [](const Dim& a, const Dim& b) { return a.stride < b.stride; });
  const Dim* previous = nullptr;
  for (const Dim& dim : dims) {
    if (dim.extent == 1) continue;
    if (previous != nullptr) {
      int64_t span = 0;
      if (!checked_mul(previous->stride, previous->extent, &span) || dim.stride < span) {
        return fail(kErrorAliasing, std::string("out overlaps itself: ") + dim.stride_name + " = " +
                                        std::to_string(dim.stride) + " is less than " + previous->stride_name + " * " +
                                        previous->extent_name + " = " + std::to_string(previous->stride) + " * " +
                                        std::to_string(previous->extent));
      }
    }
    previous = &dim;
  }
  return kSuccess;
}

Status check_disjoint(const ByteRange& a, const ByteRange& b) {
  if (a.begin < b.end && b.begin < a.end) {
    return fail(kErrorAliasing, std::string(a.name) + " bytes [" + hex(a.begin) + ", " + hex(a.end) + ") overlap " +
                                    b.name + " bytes [" + hex(b.begin) + ", " + hex(b.end) +
                                    "); out, softmax_lse and workspace must not share memory with an input or "
                                    "each other");
  }
  return kSuccess;
}

}  // namespace

const KernelEntry* find_kernel(DataType dtype, int head_dim, KernelVariant variant) {
  const KernelEntry* best = nullptr;
  for (int i = 0; i < kNumKernels; ++i) {
    const KernelEntry& entry = kKernelTable[i];
    if (entry.dtype == dtype && entry.variant == variant && entry.head_dim >= head_dim &&
        (best == nullptr || entry.head_dim < best->head_dim)) {
      best = &entry;
    }
  }
  return best;
}

Status check_arguments(const FlashAttentionParams& p, FwdArgs* args) {
  FwdArgs r;
  // With variable lengths (cu_seqlens_q/k) the tensors are packed: batch 1, rows total_q/total_k.
  // With a paged KV cache k and v are [num_pages, page_size, heads, head_dim].
  const bool packed = p.cu_seqlens_q != nullptr && p.cu_seqlens_k != nullptr;
  const bool paged = p.page_table != nullptr;
  const int rows_q = packed ? p.total_q : p.seqlen_q;
  const int rows_k = paged ? p.page_size : packed ? p.total_k : p.seqlen_k;
  const char* rows_q_name = packed ? "total_q" : "seqlen_q";
  const char* rows_k_name = paged ? "page_size" : packed ? "total_k" : "seqlen_k";
  const int batch_q = packed ? 1 : p.batch_size;
  const int batch_k = paged ? p.num_pages : batch_q;
  const char* batch_k_name = paged ? "num_pages" : "batch_size";
  const int64_t in_bytes = element_bytes(p.dtype);
  // FP8 inputs write a 16-bit out; the dtype checks run before any stride is used.
  const int64_t out_bytes = p.dtype == DataType::FP8_E4M3 ? 2 : in_bytes;
  const std::array<TensorSpec, 4> tensors = {{
      {"q", p.q, packed, batch_q, "batch_size", rows_q, rows_q_name, p.num_heads, "num_heads", in_bytes,
       {p.q_batch_stride, p.q_row_stride, p.q_head_stride}, &r.q_strides},
      {"k", p.k, packed, batch_k, batch_k_name, rows_k, rows_k_name, p.num_heads_k, "num_heads_k", in_bytes,
       {p.k_batch_stride, p.k_row_stride, p.k_head_stride}, &r.k_strides},
      {"v", p.v, packed, batch_k, batch_k_name, rows_k, rows_k_name, p.num_heads_k, "num_heads_k", in_bytes,
       {p.v_batch_stride, p.v_row_stride, p.v_head_stride}, &r.v_strides},
      {"out", p.out, packed, batch_q, "batch_size", rows_q, rows_q_name, p.num_heads, "num_heads", out_bytes,
       {p.out_batch_stride, p.out_row_stride, p.out_head_stride}, &r.out_strides},
  }};

  if (Status s = check_pointers(p); s != kSuccess) return s;
  if (Status s = check_sizes(p); s != kSuccess) return s;
  if (Status s = check_head_ratio(p); s != kSuccess) return s;
  if (Status s = check_dtype(p.dtype); s != kSuccess) return s;
  if (Status s = check_head_dim(p.dtype, p.head_dim); s != kSuccess) return s;
  if (Status s = resolve_out_dtype(p, &r); s != kSuccess) return s;
  if (Status s = check_fp8_features(p); s != kSuccess) return s;
  if (Status s = resolve_descale(p, &r); s != kSuccess) return s;
  if (Status s = resolve_scale(p, &r); s != kSuccess) return s;
  if (Status s = resolve_softcap(p, &r); s != kSuccess) return s;
  if (Status s = resolve_window(p, &r); s != kSuccess) return s;
  // Before the strides: it decides whether the tensors are packed (no batch dimension).
  if (Status s = check_varlen(p); s != kSuccess) return s;
  if (Status s = check_paging(p); s != kSuccess) return s;
  if (Status s = check_splits(p); s != kSuccess) return s;
  for (const TensorSpec& t : tensors) {
    if (Status s = resolve_strides(t, p.head_dim); s != kSuccess) return s;
  }
  if (Status s = check_alignment(tensors, p); s != kSuccess) return s;

  if (p.head_dim > kMaxHeadDim) {
    return fail(kErrorSizeOverflow, "head_dim = " + std::to_string(p.head_dim) + " exceeds " +
                                        std::to_string(kMaxHeadDim) + ", the largest TMA box dimension");
  }
  // ranges[i] belongs to tensors[i]: q, k, v, then out.
  std::array<ByteRange, 4> ranges{};
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (Status s = check_tensor_range(tensors[i], p.head_dim, &ranges[i]); s != kSuccess) {
      return s;
    }
  }
  ByteRange lse_range{};
  if (p.softmax_lse != nullptr) {
    if (Status s = check_lse_range(p, &lse_range); s != kSuccess) return s;
  }
  // What out and softmax_lse must not overlap: q, k, v and the int32 arrays the kernel reads.
  std::vector<ByteRange> inputs(ranges.begin(), ranges.begin() + kOutIndex);
  if (Status s = append_int_array_ranges(p, &inputs); s != kSuccess) return s;

  if (Status s = check_out_self_overlap(p, tensors[kOutIndex]); s != kSuccess) return s;
  const ByteRange& out_range = ranges[kOutIndex];
  for (const ByteRange& input : inputs) {
    if (Status s = check_disjoint(out_range, input); s != kSuccess) return s;
  }
  if (p.softmax_lse != nullptr) {
    if (Status s = check_disjoint(out_range, lse_range); s != kSuccess) return s;
    for (const ByteRange& input : inputs) {
      if (Status s = check_disjoint(lse_range, input); s != kSuccess) return s;
    }
  }
  // The whole workspace the caller hands over, whether or not this call splits.
  if (p.workspace != nullptr) {
    ByteRange workspace_range{};
    if (Status s = make_range("workspace", p.workspace, static_cast<int64_t>(std::min<size_t>(p.workspace_bytes, INT64_MAX)),
                              &workspace_range);
        s != kSuccess) {
      return s;
    }
    std::vector<ByteRange> others = inputs;
    others.push_back(out_range);
    if (p.softmax_lse != nullptr) others.push_back(lse_range);
    for (const ByteRange& other : others) {
      if (Status s = check_disjoint(workspace_range, other); s != kSuccess) return s;
    }
  }

  r.q = p.q;
  r.k = p.k;
  r.v = p.v;
  r.out = p.out;
  r.lse = p.softmax_lse;
  r.batch = p.batch_size;
  r.seqlen_q = p.seqlen_q;
  r.seqlen_k = p.seqlen_k;
  r.num_heads = p.num_heads;
  r.num_heads_k = p.num_heads_k;
  r.head_dim = p.head_dim;
  r.dtype = p.dtype;
  r.is_causal = p.is_causal;
  r.cu_seqlens_q = p.cu_seqlens_q;
  r.cu_seqlens_k = p.cu_seqlens_k;
  r.seqused_k = p.seqused_k;
  r.total_q = p.total_q;
  r.total_k = p.total_k;
  r.page_table = p.page_table;
  r.page_table_stride = p.page_table_stride;
  r.page_size = p.page_size;
  r.num_pages = p.num_pages;
  r.requested_splits = p.num_splits;
  r.workspace = p.workspace;
  r.workspace_bytes = p.workspace_bytes;
  *args = r;
  return kSuccess;
}

Status check_device(FwdArgs* args) {
  int count = 0;
  const cudaError_t count_error = cudaGetDeviceCount(&count);
  if (count_error != cudaSuccess) {
    cudaGetLastError();
    return fail(kErrorNoDevice, std::string("no CUDA device: cudaGetDeviceCount failed: ") +
                                    cudaGetErrorString(count_error));
  }
  if (count == 0) return fail(kErrorNoDevice, "no CUDA device: cudaGetDeviceCount found 0 devices");

  int device = 0;
  if (const cudaError_t e = cudaGetDevice(&device); e != cudaSuccess) {
    cudaGetLastError();
    return fail(kErrorCudaFailure, std::string("cudaGetDevice failed: ") + cudaGetErrorString(e));
  }
  int major = 0;
  int minor = 0;
  cudaError_t e = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
  if (e == cudaSuccess) e = cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return fail(kErrorCudaFailure, "cudaDeviceGetAttribute (compute capability) failed for device " +
                                       std::to_string(device) + ": " + cudaGetErrorString(e));
  }
  if (major != kMajorSm90 || minor != kMinorSm90) {
    cudaDeviceProp properties{};
    const bool named = cudaGetDeviceProperties(&properties, device) == cudaSuccess;
    if (!named) cudaGetLastError();
    return fail(kErrorUnsupportedDevice, "device " + std::to_string(device) + " (" +
                                             (named ? properties.name : "name unavailable") +
                                             ") has compute capability " + std::to_string(major) + "." +
                                             std::to_string(minor) + "; these kernels need SM90 (compute capability 9.0)");
  }
  int num_sms = 0;
  if (const cudaError_t err = cudaDeviceGetAttribute(&num_sms, cudaDevAttrMultiProcessorCount, device);
      err != cudaSuccess || num_sms <= 0) {
    cudaGetLastError();
    return fail(kErrorCudaFailure, "cudaDeviceGetAttribute (multiprocessor count) failed for device " +
                                       std::to_string(device) + ": " + cudaGetErrorString(err));
  }
  args->device = device;
  args->num_sms = num_sms;
  return kSuccess;
}

}  // namespace flash::detail
