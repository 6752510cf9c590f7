// Host side of one SM90 forward instance: builds the kernel's parameters (TMA descriptors
// included) from resolved arguments and launches it. Included only by the generated instances.
#pragma once

#include <cstdio>
#include <string>

#include <cuda_runtime.h>

#include "api/fwd_args.h"
#include "api/validate.h"
#include "sm90/kernel_fwd.cuh"

namespace flash::detail::sm90 {

using namespace flash::sm90;

template <class Element, int kHeadDim, bool kGeneral>
Status launch_fwd(FwdArgs const& args, cudaStream_t stream) {
  using Traits = FwdTraits<Element, kHeadDim, kGeneral>;
  using Kernel = FwdKernelSm90<Traits, MainloopFwdSm90<Traits>, EpilogueFwdSm90<Traits>, StaticPersistentScheduler>;
  auto kernel = &fwd_kernel_sm90<Kernel>;
  if (!kGeneral && needs_general_kernel(args)) {
    return fail(kErrorInternal, "the dense kernel was selected for arguments that need the general variant");
  }

  int const num_m_blocks = (args.seqlen_q + Traits::kBlockM - 1) / Traits::kBlockM;
  int64_t const num_tiles = int64_t(num_m_blocks) * args.num_heads * args.batch;
  // Tile indices are int and step by the grid size: half the int range leaves room for the step.
  constexpr int64_t kMaxTiles = INT32_MAX / 2;
  if (num_tiles > kMaxTiles) {
    return fail(kErrorSizeOverflow, "batch_size * num_heads * ceil(seqlen_q / " + std::to_string(Traits::kBlockM) +
                                        ") = " + std::to_string(num_tiles) + " tiles exceeds the tile-index limit of " +
                                        std::to_string(kMaxTiles));
  }

  typename Kernel::Params params = Kernel::to_underlying_arguments(args);
  cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, Kernel::kSharedStorageBytes);
  if (err != cudaSuccess) {
    return fail(kErrorCudaFailure, std::string("cudaFuncSetAttribute(max dynamic shared memory = ") +
                                       std::to_string(Kernel::kSharedStorageBytes) + ") failed: " + cudaGetErrorString(err));
  }
  // Packed entries that each fit one query tile (the vision encoder's windows) cost about the same,
  // so they keep the persistent grid, whose producer loads the next tile during this one; longer
  // entries differ in cost like causal tiles.
  bool const packed_long = args.cu_seqlens_q != nullptr && args.seqlen_q > Traits::kBlockM;
  bool const uneven = args.window_right >= 0 || args.seqused_k != nullptr || packed_long;
  int const grid = Kernel::Scheduler::grid_size(params.scheduler, args.num_sms, uneven);
  kernel<<<dim3(grid), dim3(Kernel::kNumThreads), Kernel::kSharedStorageBytes, stream>>>(params);
  err = cudaGetLastError();
  if (err != cudaSuccess) {
    return fail(kErrorCudaFailure, std::string("kernel launch failed: ") + cudaGetErrorString(err));
  }
  return kSuccess;
}

}  // namespace flash::detail::sm90
