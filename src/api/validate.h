// Argument and device checks of the public API. Everything here runs before any launch.
#pragma once

#include <string>

#include "api/fwd_args.h"

namespace flash::detail {

// Checks every field that can be checked without CUDA, in a fixed order (pointers, sizes, head
// ratio, dtype, head dim, scale, softcap, window, variable-length fields, strides, alignment,
// address range, aliasing). On success fills *args with resolved values (default strides, softmax
// scale and its log2 form, softcap factor, window with is_causal folded in, the varlen arrays) and
// returns kSuccess; otherwise records a detailed message (fail), leaves *args untouched and returns
// the status.
Status check_arguments(const FlashAttentionParams& params, FwdArgs* args);

// Checks that a CUDA device is current and is SM90 (compute capability 9.0); fills args->device
// and args->num_sms.
Status check_device(FwdArgs* args);

// Records `message` as the calling thread's last error and returns `status`.
Status fail(Status status, const std::string& message);

// Clears the calling thread's last error (after a successful call).
void clear_last_error();

// The kernel-table row that runs (dtype, head_dim) in `variant`: the narrowest kernel of that dtype
// and variant at least head_dim wide, or null. Every (dtype, head_dim) has the dense variant
// (tools/generate_kernels.py), so the dense answer decides support; FP16 and BF16 also have the
// general one everywhere, decode kernels exist for some head dims only, FP8 has dense kernels only.
const KernelEntry* find_kernel(DataType dtype, int head_dim, KernelVariant variant = KernelVariant::kDense);

}  // namespace flash::detail
