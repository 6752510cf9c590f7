// The public entry points: every check, the launch plan (GQA packing, split-KV), then one
// kernel-table launch.
#include <string>

#include "api/launch_plan.h"
#include "api/validate.h"
#include "flash_api.h"

namespace flash {
namespace {

// Checks params, the device and the plan: *args is ready for a launcher, *plan says how it runs
// and what workspace it needs (as if a workspace were given when workspace_given).
Status prepare(const FlashAttentionParams& params, bool workspace_given, detail::FwdArgs* args,
               detail::LaunchPlan* plan) {
  if (Status s = detail::check_arguments(params, args); s != kSuccess) return s;
  if (Status s = detail::check_device(args); s != kSuccess) return s;
  // check_arguments has already rejected every (dtype, head_dim) without a table row, and every
  // general-variant feature for a dtype without general kernels (FP8): such calls run as planned
  // by default, unpacked and unsplit.
  const detail::KernelEntry* general = detail::find_kernel(params.dtype, params.head_dim, detail::KernelVariant::kGeneral);
  if (general == nullptr) {
    *plan = detail::LaunchPlan{};
    return kSuccess;
  }
  return detail::plan_launch(*args, general->tiles(), workspace_given, plan);
}

}  // namespace

int flash_attention_forward(const FlashAttentionParams& params, cudaStream_t stream) {
  detail::clear_last_error();
  detail::FwdArgs args;
  detail::LaunchPlan plan;
  if (Status s = prepare(params, params.workspace != nullptr, &args, &plan); s != kSuccess) return s;
  if (plan.num_splits > 1) {
    if (params.workspace == nullptr || params.workspace_bytes < plan.workspace_bytes) {
      const std::string given = params.workspace == nullptr ? "no workspace" : "workspace_bytes = " +
                                                                                    std::to_string(params.workspace_bytes);
      return detail::fail(kErrorInvalidWorkspace,
                          "this call splits the keys " + std::to_string(plan.num_splits) + " ways and needs a workspace of " +
                              std::to_string(plan.workspace_bytes) + " bytes, but was given " + given +
                              " (flash_attention_workspace_size tells the size)");
    }
    char* base = static_cast<char*>(params.workspace);
    args.lse_partial = reinterpret_cast<float*>(base + plan.lse_offset);
    args.o_partial = reinterpret_cast<float*>(base + plan.o_offset);
  }
  args.pack_gqa = plan.pack_gqa;
  args.num_splits = plan.num_splits;
  const detail::KernelEntry* entry = detail::choose_kernel(args);
  const Status launched = entry->launch(args, stream);
  // Launchers record their own detailed message; one that did not still leaves a usable one.
  if (launched != kSuccess && last_error_message()[0] == '\0') {
    const cudaError_t error = cudaGetLastError();
    return detail::fail(kErrorCudaFailure,
                        std::string("kernel ") + entry->name + " failed: " + cudaGetErrorString(error));
  }
  return launched;
}

int flash_attention_workspace_size(const FlashAttentionParams& params, size_t* bytes) {
  detail::clear_last_error();
  if (bytes == nullptr) return detail::fail(kErrorNullPointer, "bytes is null; it receives the workspace size");
  detail::FwdArgs args;
  detail::LaunchPlan plan;
  FlashAttentionParams without_workspace = params;   // its own workspace fields are not checked
  without_workspace.workspace = nullptr;
  without_workspace.workspace_bytes = 0;
  if (Status s = prepare(without_workspace, /*workspace_given=*/true, &args, &plan); s != kSuccess) return s;
  *bytes = plan.workspace_bytes;
  return kSuccess;
}

}  // namespace flash
