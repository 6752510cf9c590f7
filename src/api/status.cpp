// Status texts, the per-thread detailed error message, and the supported head-dim query.
#include <algorithm>
#include <string>
#include <vector>

#include "api/validate.h"
#include "flash_api.h"

namespace flash {
namespace detail {
namespace {

// Per thread so that concurrent callers on different threads each see their own failure.
thread_local std::string t_last_error;

}  // namespace

Status fail(Status status, const std::string& message) {
  t_last_error = message;
  return status;
}

void clear_last_error() { t_last_error.clear(); }

}  // namespace detail

const char* status_string(int status) {
  switch (status) {
    case kSuccess: return "success";
    case kErrorNullPointer: return "null tensor pointer";
    case kErrorInvalidSize: return "invalid size";
    case kErrorHeadRatio: return "num_heads is not a multiple of num_heads_k";
    case kErrorUnsupportedDtype: return "unsupported data type";
    case kErrorUnsupportedHeadDim: return "unsupported head dimension";
    case kErrorMisalignedPointer: return "misaligned tensor pointer";
    case kErrorMisalignedStride: return "negative or misaligned stride";
    case kErrorSizeOverflow: return "size or offset overflow";
    case kErrorInvalidScale: return "invalid softmax scale";
    case kErrorAliasing: return "output overlaps itself or another tensor";
    case kErrorNoDevice: return "no CUDA device";
    case kErrorUnsupportedDevice: return "unsupported device (SM90 required)";
    case kErrorCudaFailure: return "CUDA failure";
    case kErrorInvalidStruct: return "invalid parameter struct";
    case kErrorUnsupportedVersion: return "unsupported parameter struct version";
    case kErrorInternal: return "internal error";
    case kErrorInvalidWindow: return "invalid attention window";
    case kErrorInvalidSoftcap: return "invalid softcap";
    case kErrorInvalidVarlen: return "invalid variable-length arguments";
    case kErrorInvalidSplits: return "invalid num_splits";
    case kErrorInvalidWorkspace: return "missing or too small workspace";
    case kErrorInvalidPaging: return "invalid paged KV cache arguments";
    case kErrorInvalidDescale: return "invalid FP8 descale factors";
    default: return "unknown status";
  }
}

const char* last_error_message() { return detail::t_last_error.c_str(); }

int supported_head_dims(DataType dtype, int* dims, int capacity) {
  if (dims == nullptr) return 0;
  std::vector<int> found;
  for (int i = 0; i < detail::kNumKernels; ++i) {
    if (detail::kKernelTable[i].dtype == dtype) found.push_back(detail::kKernelTable[i].head_dim);
  }
  std::sort(found.begin(), found.end());
  found.erase(std::unique(found.begin(), found.end()), found.end());
  const int count = std::min(static_cast<int>(found.size()), std::max(capacity, 0));
  std::copy(found.begin(), found.begin() + count, dims);
  return count;
}

}  // namespace flash
