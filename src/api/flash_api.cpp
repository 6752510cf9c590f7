// The public entry point: every check, then one kernel-table launch.
#include <string>

#include "api/validate.h"
#include "flash_api.h"

namespace flash {

int flash_attention_forward(const FlashAttentionParams& params, cudaStream_t stream) {
  detail::clear_last_error();
  detail::FwdArgs args;
  if (Status s = detail::check_arguments(params, &args); s != kSuccess) return s;
  if (Status s = detail::check_device(&args); s != kSuccess) return s;
  // check_arguments has already rejected every (dtype, head_dim) without a table row.
  const detail::KernelEntry* entry =
      detail::find_kernel(params.dtype, params.head_dim, detail::needs_general_kernel(args));
  const Status launched = entry->launch(args, stream);
  // Launchers record their own detailed message; one that did not still leaves a usable one.
  if (launched != kSuccess && last_error_message()[0] == '\0') {
    const cudaError_t error = cudaGetLastError();
    return detail::fail(kErrorCudaFailure,
                        std::string("kernel ") + entry->name + " failed: " + cudaGetErrorString(error));
  }
  return launched;
}

}  // namespace flash
