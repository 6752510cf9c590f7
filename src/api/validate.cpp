// Argument and device checks of the public API. Nothing here dereferences a tensor pointer or
// touches the GPU except check_device, so a rejected call launches nothing and writes nothing.
#include "api/validate.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>

namespace flash::detail {
namespace {

// TMA loads and stores move 16-byte units: base addresses and strides must be multiples of it.
constexpr int64_t kTensorAlignBytes = 16;
// softmax_lse is written as plain fp32 values.
constexpr int64_t kLseAlignBytes = 4;
// A TMA descriptor's global strides must be below 2^40 bytes.
constexpr uint64_t kMaxStrideBytes = uint64_t{1} << 40;
// A TMA box spans at most 256 elements per dimension, and head_dim is loaded as one box row.
constexpr int kMaxHeadDim = 256;
// Head dims are multiples of 8 elements: 16 bytes for 16-bit types, the TMA row alignment.
constexpr int kHeadDimGranularity = 8;
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

std::string hex(uintptr_t address) {
  std::ostringstream out;
  out << "0x" << std::hex << address;
  return out.str();
}

// One [batch, seqlen, heads, head_dim] operand as the checks see it.
struct TensorSpec {
  const char* name;          // "q", "k", "v" or "out"
  const void* ptr;
  int seqlen;
  const char* seqlen_name;   // "seqlen_q" or "seqlen_k"
  int heads;
  const char* heads_name;    // "num_heads" or "num_heads_k"
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
  return kSuccess;
}

Status check_head_ratio(const FlashAttentionParams& p) {
  if (p.num_heads % p.num_heads_k == 0) return kSuccess;
  return fail(kErrorHeadRatio, "num_heads = " + std::to_string(p.num_heads) + " is not a multiple of num_heads_k = " +
                                   std::to_string(p.num_heads_k) + "; each key/value head must serve a whole group of query heads");
}

Status check_dtype(DataType dtype) {
  const char* name = dtype_name(dtype);
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
// columns and its stores clip them. It must be a multiple of 8 so that rows stay 16-byte aligned.
Status check_head_dim(DataType dtype, int head_dim) {
  if (head_dim % kHeadDimGranularity == 0 && find_kernel(dtype, head_dim) != nullptr) return kSuccess;
  return fail(kErrorUnsupportedHeadDim, "head_dim = " + std::to_string(head_dim) + " is not supported for " +
                                            dtype_name(dtype) + "; supported: a multiple of " +
                                            std::to_string(kHeadDimGranularity) + " up to the widest kernel (kernels: " +
                                            supported_head_dims_text(dtype) + "; narrower head dims run padded on the next wider one)");
}

Status resolve_scale(const FlashAttentionParams& p, FwdArgs* args) {
  if (!std::isfinite(p.softmax_scale) || p.softmax_scale < 0.0f) {
    std::ostringstream message;
    message << "softmax_scale = " << p.softmax_scale
            << " is not supported; it must be finite and >= 0 (0 means 1/sqrt(head_dim))";
    return fail(kErrorInvalidScale, message.str());
  }
  const double scale = p.softmax_scale == 0.0f ? 1.0 / std::sqrt(static_cast<double>(p.head_dim)) : p.softmax_scale;
  args->softmax_scale = static_cast<float>(scale);
  args->softmax_scale_log2 = static_cast<float>(scale * kLog2e);
  return kSuccess;
}

// Fills the zero strides with their contiguous defaults, then requires every stride to be
// non-negative and a whole number of 16-byte units.
Status resolve_strides(const TensorSpec& t, int head_dim, int64_t elem_bytes) {
  const std::string prefix = t.name;
  const int64_t row_default = int64_t{t.heads} * head_dim;  // < 2^62: cannot overflow
  int64_t batch_default = 0;
  const bool batch_default_fits = checked_mul(row_default, t.seqlen, &batch_default);
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

Status check_alignment(const std::array<TensorSpec, 4>& tensors, const float* lse) {
  for (const TensorSpec& t : tensors) {
    const auto address = reinterpret_cast<uintptr_t>(t.ptr);
    if (address % kTensorAlignBytes != 0) {
      return fail(kErrorMisalignedPointer,
                  std::string(t.name) + " = " + hex(address) + " is not aligned to 16 bytes, as TMA requires");
    }
  }
  const auto lse_address = reinterpret_cast<uintptr_t>(lse);
  if (lse_address % kLseAlignBytes != 0) {
    return fail(kErrorMisalignedPointer, "softmax_lse = " + hex(lse_address) + " is not aligned to 4 bytes (fp32)");
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
Status check_tensor_range(const TensorSpec& t, int batch, int head_dim, int64_t elem_bytes, ByteRange* range) {
  const TensorStrides& s = *t.resolved;
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
    return fail(kErrorSizeOverflow, n + ": the last element's offset (batch_size - 1) * " + n + "_batch_stride + (" +
                                        t.seqlen_name + " - 1) * " + n + "_row_stride + (" + t.heads_name + " - 1) * " +
                                        n + "_head_stride + head_dim - 1 = (" + std::to_string(batch) + " - 1) * " +
                                        std::to_string(s.batch) + " + (" + std::to_string(t.seqlen) + " - 1) * " +
                                        std::to_string(s.row) + " + (" + std::to_string(t.heads) + " - 1) * " +
                                        std::to_string(s.head) + " + " + std::to_string(head_dim - 1) +
                                        " overflows int64 as an element offset or in bytes");
  }
  return make_range(t.name, t.ptr, bytes, range);
}

Status check_lse_range(const FlashAttentionParams& p, ByteRange* range) {
  int64_t count = 0;
  int64_t bytes = 0;
  if (!checked_mul(p.batch_size, p.num_heads, &count) || !checked_mul(count, p.seqlen_q, &count) ||
      !checked_mul(count, int64_t{sizeof(float)}, &bytes)) {
    return fail(kErrorSizeOverflow, "softmax_lse size batch_size * num_heads * seqlen_q = " +
                                        std::to_string(p.batch_size) + " * " + std::to_string(p.num_heads) + " * " +
                                        std::to_string(p.seqlen_q) + " fp32 values overflows int64 bytes");
  }
  return make_range("softmax_lse", p.softmax_lse, bytes, range);
}

// out is written in parallel, so two of its (batch, row, head, d) indices must never name the
// same element: sorted by stride, each dimension must step over the whole previous one.
Status check_out_self_overlap(const FlashAttentionParams& p, const TensorStrides& s) {
  struct Dim {
    const char* stride_name;
    int64_t stride;
    const char* extent_name;
    int64_t extent;
  };
  std::array<Dim, 4> dims = {{{"out_batch_stride", s.batch, "batch_size", p.batch_size},
                              {"out_row_stride", s.row, "seqlen_q", p.seqlen_q},
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
                                    "); out and softmax_lse must not share memory with an input or each other");
  }
  return kSuccess;
}

}  // namespace

const KernelEntry* find_kernel(DataType dtype, int head_dim) {
  const KernelEntry* best = nullptr;
  for (int i = 0; i < kNumKernels; ++i) {
    const KernelEntry& entry = kKernelTable[i];
    if (entry.dtype == dtype && entry.head_dim >= head_dim && (best == nullptr || entry.head_dim < best->head_dim)) {
      best = &entry;
    }
  }
  return best;
}

Status check_arguments(const FlashAttentionParams& p, FwdArgs* args) {
  FwdArgs r;
  const std::array<TensorSpec, 4> tensors = {{
      {"q", p.q, p.seqlen_q, "seqlen_q", p.num_heads, "num_heads",
       {p.q_batch_stride, p.q_row_stride, p.q_head_stride}, &r.q_strides},
      {"k", p.k, p.seqlen_k, "seqlen_k", p.num_heads_k, "num_heads_k",
       {p.k_batch_stride, p.k_row_stride, p.k_head_stride}, &r.k_strides},
      {"v", p.v, p.seqlen_k, "seqlen_k", p.num_heads_k, "num_heads_k",
       {p.v_batch_stride, p.v_row_stride, p.v_head_stride}, &r.v_strides},
      {"out", p.out, p.seqlen_q, "seqlen_q", p.num_heads, "num_heads",
       {p.out_batch_stride, p.out_row_stride, p.out_head_stride}, &r.out_strides},
  }};

  if (Status s = check_pointers(p); s != kSuccess) return s;
  if (Status s = check_sizes(p); s != kSuccess) return s;
  if (Status s = check_head_ratio(p); s != kSuccess) return s;
  if (Status s = check_dtype(p.dtype); s != kSuccess) return s;
  if (Status s = check_head_dim(p.dtype, p.head_dim); s != kSuccess) return s;
  if (Status s = resolve_scale(p, &r); s != kSuccess) return s;
  const int64_t elem_bytes = element_bytes(p.dtype);
  for (const TensorSpec& t : tensors) {
    if (Status s = resolve_strides(t, p.head_dim, elem_bytes); s != kSuccess) return s;
  }
  if (Status s = check_alignment(tensors, p.softmax_lse); s != kSuccess) return s;

  if (p.head_dim > kMaxHeadDim) {
    return fail(kErrorSizeOverflow, "head_dim = " + std::to_string(p.head_dim) + " exceeds " +
                                        std::to_string(kMaxHeadDim) + ", the largest TMA box dimension");
  }
  // ranges[i] belongs to tensors[i]: q, k, v, then out.
  std::array<ByteRange, 4> ranges{};
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (Status s = check_tensor_range(tensors[i], p.batch_size, p.head_dim, elem_bytes, &ranges[i]); s != kSuccess) {
      return s;
    }
  }
  ByteRange lse_range{};
  if (p.softmax_lse != nullptr) {
    if (Status s = check_lse_range(p, &lse_range); s != kSuccess) return s;
  }

  if (Status s = check_out_self_overlap(p, r.out_strides); s != kSuccess) return s;
  const ByteRange& out_range = ranges[kOutIndex];
  for (size_t i = 0; i < kOutIndex; ++i) {
    if (Status s = check_disjoint(out_range, ranges[i]); s != kSuccess) return s;
  }
  if (p.softmax_lse != nullptr) {
    if (Status s = check_disjoint(out_range, lse_range); s != kSuccess) return s;
    for (size_t i = 0; i < kOutIndex; ++i) {
      if (Status s = check_disjoint(lse_range, ranges[i]); s != kSuccess) return s;
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
  r.is_causal = p.is_causal;
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
