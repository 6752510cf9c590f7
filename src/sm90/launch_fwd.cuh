// Host side of one SM90 forward instance: builds the kernel's parameters (TMA descriptors
// included) from resolved arguments and launches it, then, for split keys, the combine kernel
// (combine.cu) as its programmatic dependent. Included only by the generated instances.
#pragma once

#include <cstdio>
#include <string>

#include <cuda_runtime.h>

#include "api/fwd_args.h"
#include "api/validate.h"
#include "sm90/combine.cuh"
#include "sm90/kernel_fwd.cuh"

namespace flash::detail::sm90 {

using namespace flash::sm90;

template <class Element, int kHeadDim, Variant kVariant>
KernelTiles fwd_tiles() {
  using Traits = FwdTraits<Element, kHeadDim, kVariant>;
  return {Traits::kBlockM, Traits::kBlockN};
}

template <class Element, int kHeadDim, Variant kVariant>
Status launch_fwd(FwdArgs const& args, cudaStream_t stream) {
  using Traits = FwdTraits<Element, kHeadDim, kVariant>;
  constexpr bool kGeneral = Traits::kGeneral;
  using Kernel = FwdKernelSm90<Traits, MainloopFwdSm90<Traits>, EpilogueFwdSm90<Traits>, StaticPersistentScheduler>;
  auto kernel = &fwd_kernel_sm90<Kernel>;
  if (!kGeneral && needs_general_kernel(args)) {
    return fail(kErrorInternal, "the dense kernel was selected for arguments that need the general variant");
  }

  int64_t const num_tiles = int64_t(Kernel::num_m_blocks(args)) * Kernel::tile_heads(args) * args.batch * args.num_splits;
  // Tile indices are int and step by the grid size: half the int range leaves room for the step.
  constexpr int64_t kMaxTiles = INT32_MAX / 2;
  if (num_tiles > kMaxTiles) {
    return fail(kErrorSizeOverflow, "batch_size * heads * query blocks of " + std::to_string(Traits::kBlockM) +
                                        " rows * num_splits = " + std::to_string(num_tiles) +
                                        " tiles exceeds the tile-index limit of " + std::to_string(kMaxTiles));
  }

  typename Kernel::Params params = Kernel::to_underlying_arguments(args);
  cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, Kernel::kSharedStorageBytes);
  if (err != cudaSuccess) {
    return fail(kErrorCudaFailure, std::string("cudaFuncSetAttribute(max dynamic shared memory = ") +
                                       std::to_string(Kernel::kSharedStorageBytes) + ") failed: " + cudaGetErrorString(err));
  }
  // Two or more CTAs per SM need the shared-memory carveout that holds them all.
  if constexpr (Kernel::kCtasPerSm > 1) {
    err = cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout, int(cudaSharedmemCarveoutMaxShared));
    if (err != cudaSuccess) {
      return fail(kErrorCudaFailure, std::string("cudaFuncSetAttribute(shared memory carveout) failed: ") +
                                         cudaGetErrorString(err));
    }
  }
  // Packed entries that each fit one query tile (the vision encoder's windows) cost about the same,
  // so they keep the persistent grid, whose producer loads the next tile during this one; longer
  // entries differ in cost like causal tiles.
  bool const packed_long = args.cu_seqlens_q != nullptr && args.seqlen_q > Traits::kBlockM;
  bool const uneven = args.window_right >= 0 || args.seqused_k != nullptr || packed_long || args.num_splits > 1;
  int const grid = Kernel::Scheduler::grid_size(params.scheduler, args.num_sms * Kernel::kCtasPerSm, uneven);
  // A programmatic dependent of the stream's previous kernel (see FwdKernelSm90): its launch and
  // prologue overlap that kernel's tail when that kernel allows it (ours do), else it starts as usual.
  cudaLaunchAttribute attribute{};
  attribute.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute.val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(grid);
  config.blockDim = dim3(Kernel::kNumThreads);
  config.dynamicSmemBytes = Kernel::kSharedStorageBytes;
  config.stream = stream;
  config.attrs = &attribute;
  config.numAttrs = 1;
  err = cudaLaunchKernelEx(&config, kernel, params);
  if (err != cudaSuccess) {
    return fail(kErrorCudaFailure, std::string("kernel launch failed: ") + cudaGetErrorString(err));
  }
  if constexpr (kGeneral) {
    if (args.num_splits > 1) return launch_combine<Element>(args, stream);
  }
  return kSuccess;
}

}  // namespace flash::detail::sm90
