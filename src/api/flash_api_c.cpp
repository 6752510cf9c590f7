// The C interface (include/flash_api_c.h): checks the struct header, converts the struct to
// flash::FlashAttentionParams and calls the C++ entry point. No exception crosses into C.
#include "flash_api_c.h"

#include <cstddef>
#include <exception>
#include <string>

#include <cuda_runtime_api.h>

#include "api/validate.h"
#include "flash_api.h"

namespace {

// The C codes and data types are the C++ ones: a change on one side must fail to compile.
static_assert(FLASH_C_SUCCESS == flash::kSuccess);
static_assert(FLASH_C_ERROR_NULL_POINTER == flash::kErrorNullPointer);
static_assert(FLASH_C_ERROR_INVALID_SIZE == flash::kErrorInvalidSize);
static_assert(FLASH_C_ERROR_HEAD_RATIO == flash::kErrorHeadRatio);
static_assert(FLASH_C_ERROR_UNSUPPORTED_DTYPE == flash::kErrorUnsupportedDtype);
static_assert(FLASH_C_ERROR_UNSUPPORTED_HEAD_DIM == flash::kErrorUnsupportedHeadDim);
static_assert(FLASH_C_ERROR_MISALIGNED_POINTER == flash::kErrorMisalignedPointer);
static_assert(FLASH_C_ERROR_MISALIGNED_STRIDE == flash::kErrorMisalignedStride);
static_assert(FLASH_C_ERROR_SIZE_OVERFLOW == flash::kErrorSizeOverflow);
static_assert(FLASH_C_ERROR_INVALID_SCALE == flash::kErrorInvalidScale);
static_assert(FLASH_C_ERROR_ALIASING == flash::kErrorAliasing);
static_assert(FLASH_C_ERROR_NO_DEVICE == flash::kErrorNoDevice);
static_assert(FLASH_C_ERROR_UNSUPPORTED_DEVICE == flash::kErrorUnsupportedDevice);
static_assert(FLASH_C_ERROR_CUDA_FAILURE == flash::kErrorCudaFailure);
static_assert(FLASH_C_ERROR_INVALID_STRUCT == flash::kErrorInvalidStruct);
static_assert(FLASH_C_ERROR_UNSUPPORTED_VERSION == flash::kErrorUnsupportedVersion);
static_assert(FLASH_C_ERROR_INTERNAL == flash::kErrorInternal);
static_assert(FLASH_C_ERROR_INVALID_WINDOW == flash::kErrorInvalidWindow);
static_assert(FLASH_C_ERROR_INVALID_SOFTCAP == flash::kErrorInvalidSoftcap);
static_assert(FLASH_C_ERROR_INVALID_VARLEN == flash::kErrorInvalidVarlen);
static_assert(FLASH_C_ERROR_INVALID_SPLITS == flash::kErrorInvalidSplits);
static_assert(FLASH_C_ERROR_INVALID_WORKSPACE == flash::kErrorInvalidWorkspace);
static_assert(FLASH_C_ERROR_INVALID_PAGING == flash::kErrorInvalidPaging);
static_assert(FLASH_C_ERROR_INVALID_DESCALE == flash::kErrorInvalidDescale);
static_assert(FLASH_C_MAX_SPLITS == flash::kMaxSplits);
static_assert(FLASH_C_DTYPE_FP16 == static_cast<int>(flash::DataType::FP16));
static_assert(FLASH_C_DTYPE_BF16 == static_cast<int>(flash::DataType::BF16));
static_assert(FLASH_C_DTYPE_FP8_E4M3 == static_cast<int>(flash::DataType::FP8_E4M3));

// Size of the version-1 layout: everything up to and including out_head_stride. A caller's
// struct_size may be larger (a later header appends fields); it may never be smaller.
constexpr size_t kParamsV1Size = offsetof(flash_fwd_params_c, out_head_stride) + sizeof(int64_t);
static_assert(kParamsV1Size <= sizeof(flash_fwd_params_c));
static_assert(sizeof(void*) != 8 || kParamsV1Size == 184, "the version-1 layout must not change");
// Version 2 appends the variable-length, window and softcap fields right after version 1's end,
// with no implicit padding anywhere (every offset is the previous field's end).
constexpr size_t kParamsV2Size = offsetof(flash_fwd_params_c, reserved1) + sizeof(int32_t);
static_assert(offsetof(flash_fwd_params_c, cu_seqlens_q) == kParamsV1Size);
static_assert(offsetof(flash_fwd_params_c, cu_seqlens_k) == offsetof(flash_fwd_params_c, cu_seqlens_q) + sizeof(void*));
static_assert(offsetof(flash_fwd_params_c, seqused_k) == offsetof(flash_fwd_params_c, cu_seqlens_k) + sizeof(void*));
static_assert(offsetof(flash_fwd_params_c, total_q) == offsetof(flash_fwd_params_c, seqused_k) + sizeof(void*));
static_assert(offsetof(flash_fwd_params_c, total_k) == offsetof(flash_fwd_params_c, total_q) + sizeof(int32_t));
static_assert(offsetof(flash_fwd_params_c, window_size_left) == offsetof(flash_fwd_params_c, total_k) + sizeof(int32_t));
static_assert(offsetof(flash_fwd_params_c, window_size_right) ==
              offsetof(flash_fwd_params_c, window_size_left) + sizeof(int32_t));
static_assert(offsetof(flash_fwd_params_c, softcap) == offsetof(flash_fwd_params_c, window_size_right) + sizeof(int32_t));
static_assert(offsetof(flash_fwd_params_c, reserved1) == offsetof(flash_fwd_params_c, softcap) + sizeof(float));
static_assert(sizeof(float) == 4);
static_assert(sizeof(void*) != 8 || kParamsV2Size == 232, "the version-2 layout must not change");
// Version 3 appends the paged-KV and split-KV fields, again without implicit padding.
constexpr size_t kParamsV3Size = offsetof(flash_fwd_params_c, workspace_bytes) + sizeof(uint64_t);
static_assert(offsetof(flash_fwd_params_c, page_table) == kParamsV2Size);
static_assert(offsetof(flash_fwd_params_c, page_table_stride) == offsetof(flash_fwd_params_c, page_table) + sizeof(void*));
static_assert(offsetof(flash_fwd_params_c, page_size) == offsetof(flash_fwd_params_c, page_table_stride) + sizeof(int32_t));
static_assert(offsetof(flash_fwd_params_c, num_pages) == offsetof(flash_fwd_params_c, page_size) + sizeof(int32_t));
static_assert(offsetof(flash_fwd_params_c, num_splits) == offsetof(flash_fwd_params_c, num_pages) + sizeof(int32_t));
static_assert(offsetof(flash_fwd_params_c, workspace) == offsetof(flash_fwd_params_c, num_splits) + sizeof(int32_t));
static_assert(offsetof(flash_fwd_params_c, workspace_bytes) == offsetof(flash_fwd_params_c, workspace) + sizeof(void*));
static_assert(sizeof(void*) != 8 || kParamsV3Size == 272, "the version-3 layout must not change");
// Version 4 appends the FP8 output type and descale fields.
constexpr size_t kParamsV4Size = offsetof(flash_fwd_params_c, v_descale) + sizeof(void*);
static_assert(kParamsV4Size == sizeof(flash_fwd_params_c), "no trailing padding after v_descale");
static_assert(offsetof(flash_fwd_params_c, out_dtype) == kParamsV3Size);
static_assert(offsetof(flash_fwd_params_c, descale_per_head) == offsetof(flash_fwd_params_c, out_dtype) + sizeof(int32_t));
static_assert(offsetof(flash_fwd_params_c, q_descale) == offsetof(flash_fwd_params_c, descale_per_head) + sizeof(int32_t));
static_assert(offsetof(flash_fwd_params_c, k_descale) == offsetof(flash_fwd_params_c, q_descale) + sizeof(void*));
static_assert(offsetof(flash_fwd_params_c, v_descale) == offsetof(flash_fwd_params_c, k_descale) + sizeof(void*));
static_assert(sizeof(void*) != 8 || kParamsV4Size == 304, "the version-4 layout must not change");
static_assert(FLASH_C_DTYPE_AUTO == static_cast<int>(flash::DataType::AUTO));

// Bytes each layout version promises.
size_t layout_size(uint32_t version) {
  return version >= 4 ? kParamsV4Size : version == 3 ? kParamsV3Size : version == 2 ? kParamsV2Size : kParamsV1Size;
}

// The oldest layout version this library still accepts.
constexpr uint32_t kOldestVersion = 1;

// Runs `body` and turns any escaping exception into kErrorInternal.
template <typename Body>
int32_t guarded(Body body) noexcept {
  try {
    return body();
  } catch (const std::exception& e) {
    try {
      return flash::detail::fail(flash::kErrorInternal, std::string("internal error: ") + e.what());
    } catch (...) {
      return flash::kErrorInternal;
    }
  } catch (...) {
    try {
      return flash::detail::fail(flash::kErrorInternal, "internal error: unknown exception");
    } catch (...) {
      return flash::kErrorInternal;
    }
  }
}

int32_t check_header(const flash_fwd_params_c* params) {
  if (params == nullptr) {
    return flash::detail::fail(flash::kErrorInvalidStruct,
                               "params is null; pass a flash_fwd_params_c set up by flash_c_params_init");
  }
  if (params->struct_size < kParamsV1Size) {
    return flash::detail::fail(flash::kErrorInvalidStruct,
                               "params->struct_size = " + std::to_string(params->struct_size) +
                                   " is smaller than the version-1 layout (" + std::to_string(kParamsV1Size) +
                                   " bytes); call flash_c_params_init before setting the fields");
  }
  if (params->version < kOldestVersion || params->version > FLASH_C_PARAMS_VERSION) {
    return flash::detail::fail(flash::kErrorUnsupportedVersion,
                               "params->version = " + std::to_string(params->version) +
                                   " is not supported; this library knows versions " + std::to_string(kOldestVersion) +
                                   " to " + std::to_string(FLASH_C_PARAMS_VERSION));
  }
  if (params->struct_size < layout_size(params->version)) {
    return flash::detail::fail(flash::kErrorInvalidStruct,
                               "params->struct_size = " + std::to_string(params->struct_size) +
                                   " is smaller than the version-" + std::to_string(params->version) + " layout (" +
                                   std::to_string(layout_size(params->version)) + " bytes) that params->version = " +
                                   std::to_string(params->version) +
                                   " promises; call flash_c_params_init before setting the fields");
  }
  return flash::kSuccess;
}

flash::FlashAttentionParams to_cpp(const flash_fwd_params_c& c) {
  flash::FlashAttentionParams p;
  p.q = c.q;
  p.k = c.k;
  p.v = c.v;
  p.out = c.out;
  p.softmax_lse = c.softmax_lse;
  p.batch_size = c.batch_size;
  p.seqlen_q = c.seqlen_q;
  p.seqlen_k = c.seqlen_k;
  p.num_heads = c.num_heads;
  p.num_heads_k = c.num_heads_k;
  p.head_dim = c.head_dim;
  // Any int32 value is representable; the checks reject the ones that name no DataType.
  p.dtype = static_cast<flash::DataType>(c.dtype);
  p.is_causal = c.is_causal != 0;
  p.softmax_scale = c.softmax_scale;
  p.q_batch_stride = c.q_batch_stride;
  p.q_row_stride = c.q_row_stride;
  p.q_head_stride = c.q_head_stride;
  p.k_batch_stride = c.k_batch_stride;
  p.k_row_stride = c.k_row_stride;
  p.k_head_stride = c.k_head_stride;
  p.v_batch_stride = c.v_batch_stride;
  p.v_row_stride = c.v_row_stride;
  p.v_head_stride = c.v_head_stride;
  p.out_batch_stride = c.out_batch_stride;
  p.out_row_stride = c.out_row_stride;
  p.out_head_stride = c.out_head_stride;
  // A version-1 struct ends above: its caller's memory holds nothing more, so the fields below
  // keep FlashAttentionParams' defaults (no variable lengths, no window, no softcap).
  if (c.version >= 2) {
    p.cu_seqlens_q = c.cu_seqlens_q;
    p.cu_seqlens_k = c.cu_seqlens_k;
    p.seqused_k = c.seqused_k;
    p.total_q = c.total_q;
    p.total_k = c.total_k;
    p.window_size_left = c.window_size_left;
    p.window_size_right = c.window_size_right;
    p.softcap = c.softcap;
  }
  if (c.version >= 3) {
    p.page_table = c.page_table;
    p.page_table_stride = c.page_table_stride;
    p.page_size = c.page_size;
    p.num_pages = c.num_pages;
    p.num_splits = c.num_splits;
    p.workspace = c.workspace;
    p.workspace_bytes = static_cast<size_t>(c.workspace_bytes);
  }
  if (c.version >= 4) {
    p.out_dtype = static_cast<flash::DataType>(c.out_dtype);
    p.descale_per_head = c.descale_per_head != 0;
    p.q_descale = c.q_descale;
    p.k_descale = c.k_descale;
    p.v_descale = c.v_descale;
  }
  return p;
}

}  // namespace

extern "C" {

int32_t flash_c_params_init(flash_fwd_params_c* params) {
  return guarded([&]() -> int32_t {
    flash::detail::clear_last_error();
    if (params == nullptr) {
      return flash::detail::fail(flash::kErrorInvalidStruct, "params is null; flash_c_params_init needs a struct to fill");
    }
    // The defaults are FlashAttentionParams' own, so the two interfaces cannot drift apart.
    const flash::FlashAttentionParams defaults;
    *params = flash_fwd_params_c{};
    params->struct_size = static_cast<uint32_t>(sizeof(flash_fwd_params_c));
    params->version = FLASH_C_PARAMS_VERSION;
    params->q = defaults.q;
    params->k = defaults.k;
    params->v = defaults.v;
    params->out = defaults.out;
    params->softmax_lse = defaults.softmax_lse;
    params->batch_size = defaults.batch_size;
    params->seqlen_q = defaults.seqlen_q;
    params->seqlen_k = defaults.seqlen_k;
    params->num_heads = defaults.num_heads;
    params->num_heads_k = defaults.num_heads_k;
    params->head_dim = defaults.head_dim;
    params->dtype = static_cast<int32_t>(defaults.dtype);
    params->is_causal = defaults.is_causal ? 1 : 0;
    params->softmax_scale = defaults.softmax_scale;
    params->reserved0 = 0;
    params->q_batch_stride = defaults.q_batch_stride;
    params->q_row_stride = defaults.q_row_stride;
    params->q_head_stride = defaults.q_head_stride;
    params->k_batch_stride = defaults.k_batch_stride;
    params->k_row_stride = defaults.k_row_stride;
    params->k_head_stride = defaults.k_head_stride;
    params->v_batch_stride = defaults.v_batch_stride;
    params->v_row_stride = defaults.v_row_stride;
    params->v_head_stride = defaults.v_head_stride;
    params->out_batch_stride = defaults.out_batch_stride;
    params->out_row_stride = defaults.out_row_stride;
    params->out_head_stride = defaults.out_head_stride;
    params->cu_seqlens_q = defaults.cu_seqlens_q;
    params->cu_seqlens_k = defaults.cu_seqlens_k;
    params->seqused_k = defaults.seqused_k;
    params->total_q = defaults.total_q;
    params->total_k = defaults.total_k;
    params->window_size_left = defaults.window_size_left;
    params->window_size_right = defaults.window_size_right;
    params->softcap = defaults.softcap;
    params->reserved1 = 0;
    params->page_table = defaults.page_table;
    params->page_table_stride = defaults.page_table_stride;
    params->page_size = defaults.page_size;
    params->num_pages = defaults.num_pages;
    params->num_splits = defaults.num_splits;
    params->workspace = defaults.workspace;
    params->workspace_bytes = defaults.workspace_bytes;
    params->out_dtype = static_cast<int32_t>(defaults.out_dtype);
    params->descale_per_head = defaults.descale_per_head ? 1 : 0;
    params->q_descale = defaults.q_descale;
    params->k_descale = defaults.k_descale;
    params->v_descale = defaults.v_descale;
    return flash::kSuccess;
  });
}

int32_t flash_c_forward(const flash_fwd_params_c* params, void* stream) {
  return guarded([&]() -> int32_t {
    flash::detail::clear_last_error();
    if (const int32_t s = check_header(params); s != flash::kSuccess) return s;
    return flash::flash_attention_forward(to_cpp(*params), static_cast<cudaStream_t>(stream));
  });
}

int32_t flash_c_workspace_size(const flash_fwd_params_c* params, uint64_t* bytes) {
  return guarded([&]() -> int32_t {
    flash::detail::clear_last_error();
    if (const int32_t s = check_header(params); s != flash::kSuccess) return s;
    if (bytes == nullptr) return flash::detail::fail(flash::kErrorNullPointer, "bytes is null; it receives the workspace size");
    size_t size = 0;
    const int32_t status = flash::flash_attention_workspace_size(to_cpp(*params), &size);
    if (status == flash::kSuccess) *bytes = size;
    return status;
  });
}

const char* flash_c_status_string(int32_t status) { return flash::status_string(status); }

const char* flash_c_last_error_message(void) { return flash::last_error_message(); }

int32_t flash_c_supported_head_dims(int32_t dtype, int32_t* dims, int32_t capacity) {
  return guarded([&]() -> int32_t {
    static_assert(sizeof(int32_t) == sizeof(int), "int32_t* is passed as int*");
    return flash::supported_head_dims(static_cast<flash::DataType>(dtype), reinterpret_cast<int*>(dims), capacity);
  });
}

}  // extern "C"
