// Host side of one SM90 forward instance: builds the kernel's parameters (TMA descriptors
// included) from resolved arguments and launches it, then, for split keys, the combine kernel as
// its programmatic dependent. Included only by the generated instances.
#pragma once

#include <algorithm>
#include <cstdio>
#include <string>

#include <cuda_runtime.h>

#include "api/fwd_args.h"
#include "api/launch_plan.h"
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

// Merges the splits' partial results into out and softmax_lse. Launched with programmatic stream
// serialisation: it may start while the split kernel drains and waits (griddepcontrol.wait) for
// its results.
template <class Element>
Status launch_combine(FwdArgs const& args, cudaStream_t stream) {
  SeqLens const seqlens = SeqLens::from(args);
  CombineParams<Element> params{args.lse_partial,
                                args.o_partial,
                                static_cast<Element*>(args.out),
                                args.out_strides.batch,
                                args.out_strides.row,
                                args.out_strides.head,
                                args.lse,
                                seqlens.packed() ? 0 : int64_t(args.num_heads) * args.seqlen_q,
                                seqlens.rows_q(),
                                args.num_splits,
                                args.num_heads,
                                args.seqlen_q,
                                int(partial_rows(args)),
                                args.head_dim,
                                args.batch,
                                seqlens};
  // One CTA per (row, head) where that is few blocks, capped: the kernel strides.
  int64_t const items = int64_t(args.batch) * args.seqlen_q * args.num_heads;
  constexpr int64_t kMaxBlocks = 65536;
  int const blocks = int(std::min<int64_t>(items, kMaxBlocks));
  // The split kernel runs with (almost) all of shared memory; the same carveout for this kernel
  // spares the SMs a reconfiguration between the two.
  cudaError_t carveout = cudaFuncSetAttribute(&combine_kernel<Element>, cudaFuncAttributePreferredSharedMemoryCarveout,
                                              int(cudaSharedmemCarveoutMaxShared));
  if (carveout != cudaSuccess) {
    return fail(kErrorCudaFailure, std::string("cudaFuncSetAttribute(combine carveout) failed: ") + cudaGetErrorString(carveout));
  }
  cudaLaunchAttribute attribute{};
  attribute.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute.val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(blocks);
  config.blockDim = dim3(kCombineThreads);
  config.stream = stream;
  config.attrs = &attribute;
  config.numAttrs = 1;
  cudaError_t const err = cudaLaunchKernelEx(&config, &combine_kernel<Element>, params);
  if (err != cudaSuccess) {
    return fail(kErrorCudaFailure, std::string("split-KV combine launch failed: ") + cudaGetErrorString(err));
  }
  return kSuccess;
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

  // With the paired order an odd number of heads of an odd count of query blocks gains one empty
  // slot: heads + 1 bounds it.
  int64_t const num_tiles = int64_t(Kernel::num_m_blocks(args)) * (int64_t(Kernel::tile_heads(args)) * args.batch * args.num_splits + 1);
  // Tile indices are int and step by the grid size: half the int range leaves room for the step.
  constexpr int64_t kMaxTiles = INT32_MAX / 2;
  if (num_tiles > kMaxTiles) {
    return fail(kErrorSizeOverflow, "(batch_size * heads * num_splits + 1) * query blocks of " + std::to_string(Traits::kBlockM) +
                                        " rows = " + std::to_string(num_tiles) +
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
  kernel<<<dim3(grid), dim3(Kernel::kNumThreads), Kernel::kSharedStorageBytes, stream>>>(params);
  err = cudaGetLastError();
  if (err != cudaSuccess) {
    return fail(kErrorCudaFailure, std::string("kernel launch failed: ") + cudaGetErrorString(err));
  }
  if constexpr (kGeneral) {
    if (args.num_splits > 1) return launch_combine<Element>(args, stream);
  }
  return kSuccess;
}

}  // namespace flash::detail::sm90
