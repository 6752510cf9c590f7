// Host side of the split-KV combine (combine.cuh): its parameters from resolved arguments, and
// its launch as the split kernel's programmatic dependent. One translation unit for both element
// types, so that the kernel is not compiled again in every forward instance.
#include <algorithm>
#include <cstdint>
#include <string>

#include <cuda_runtime.h>

#include "api/fwd_args.h"
#include "api/launch_plan.h"
#include "api/validate.h"
#include "sm90/combine.cuh"

namespace flash::detail::sm90 {

using namespace flash::sm90;

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

template Status launch_combine<cutlass::half_t>(FwdArgs const& args, cudaStream_t stream);
template Status launch_combine<cutlass::bfloat16_t>(FwdArgs const& args, cudaStream_t stream);

}  // namespace flash::detail::sm90
