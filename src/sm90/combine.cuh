// Split-KV combine: merges the partial results that the splits of a tile left in the workspace.
// For one query row and head with split LSEs l_s and outputs O_s (each normalised by its own
// sum), L = log sum_s exp(l_s) and O = sum_s exp(l_s - L) O_s. A split whose keys the row does not
// see has l_s = -inf and weight 0 (its O_s is not read); a row that sees no key at all gets O = 0
// and LSE -inf, as in the unsplit kernel.
#pragma once

#include <cmath>
#include <cstdint>

#include <cute/tensor.hpp>
#include <cutlass/numeric_conversion.h>

#include "api/fwd_args.h"
#include "sm90/seqlen.cuh"

namespace flash::sm90 {

template <class Element>
struct CombineParams {
  float const* lse_partial;   // [num_splits, num_heads, partial_rows] (EpilogueFwdSm90's partial rows)
  float const* o_partial;     // [num_splits, num_heads, partial_rows, head_dim]
  Element* out;
  int64_t out_batch_stride;
  int64_t out_row_stride;
  int64_t out_head_stride;
  float* lse;                 // as EpilogueFwdSm90::Params::lse; null: not written
  int64_t lse_batch_stride;
  int64_t lse_head_stride;
  int num_splits;
  int num_heads;
  int seqlen_q;               // dense length, or the longest with cu_seqlens
  int partial_rows;
  int head_dim;
  int batch;
  SeqLens seqlens;
};

// One CTA per (query row, head) at a time. Warp w takes splits w, w + 4, ...; each lane loads a
// split's LSE together with its 4 (or 8) columns of the split's partial row, kCombineUnroll splits
// at a time, and folds them into a running (max, sum, weighted row) as the online softmax does. All
// loads of a row are independent of each other: at up to 64 splits the row costs one memory
// latency (a max pass before the weighted sum, as before, cost two, plus the barriers between).
// The warps' states meet in shared memory.
constexpr int kCombineWarps = 4;
constexpr int kCombineThreads = kCombineWarps * 32;
constexpr int kCombineMaxHeadDim = 256;
constexpr int kCombineColumnsPerLane = kCombineMaxHeadDim / 32;   // two float4 groups at d256
constexpr int kCombineUnroll = 16;

template <class Element>
__global__ void __launch_bounds__(kCombineThreads) combine_kernel(CUTE_GRID_CONSTANT CombineParams<Element> const p) {
  // The next kernel in the stream may be scheduled now (it waits for this grid itself). This one is
  // a programmatic dependent of the split kernel: wait until its writes are visible.
  asm volatile("griddepcontrol.launch_dependents;");
  asm volatile("griddepcontrol.wait;" ::: "memory");
  __shared__ float warp_max[kCombineWarps];
  __shared__ float warp_sum[kCombineWarps];
  __shared__ __align__(16) float warp_acc[kCombineWarps][kCombineMaxHeadDim];
  int const warp = threadIdx.x / 32;
  int const lane = threadIdx.x % 32;
  int64_t const per_entry = int64_t(p.seqlen_q) * p.num_heads;
  int64_t const split_stride = int64_t(p.num_heads) * p.partial_rows;
  cutlass::NumericArrayConverter<Element, float, 4> convert;
  constexpr int kGroups = kCombineColumnsPerLane / 4;   // float4 column groups per lane: lane * 4 + 128 g
  for (int64_t item = blockIdx.x; item < per_entry * p.batch; item += gridDim.x) {
    int const batch = int(item / per_entry);
    int const query = int(item % per_entry) / p.num_heads;
    int const head = int(item % per_entry) % p.num_heads;
    SeqLenInfo const seq = p.seqlens.template get<true>(batch);
    if (query >= seq.len_q) continue;   // the same for the whole CTA
    int const tensor_batch = p.seqlens.template tensor_batch<true>(batch);
    int64_t const row = int64_t(head) * p.partial_rows + int64_t(tensor_batch) * p.seqlen_q + seq.offset_q + query;
    float const* lse_row = p.lse_partial + row;              // split s at lse_row[s * split_stride]
    float const* o_row = p.o_partial + row * p.head_dim;     // split s at o_row[s * split_stride * head_dim]

    // This lane's share: running max m, sum l of exp(lse_s - m), and sum of exp(lse_s - m) O_s.
    float m = -INFINITY;
    float l = 0.0f;
    float4 acc[kGroups];
    CUTE_UNROLL
    for (int g = 0; g < kGroups; ++g) acc[g] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    for (int s0 = warp; s0 < p.num_splits; s0 += kCombineWarps * kCombineUnroll) {
      // Every load in range (the split and column clamped; the extra ones are masked below).
      float lse[kCombineUnroll];
      float4 o[kCombineUnroll][kGroups];
      CUTE_UNROLL
      for (int j = 0; j < kCombineUnroll; ++j) {
        int const s = min(s0 + j * kCombineWarps, p.num_splits - 1);
        CUTE_UNROLL
        for (int g = 0; g < kGroups; ++g) {
          int const col = min(lane * 4 + g * 128, p.head_dim - 4);
          o[j][g] = *reinterpret_cast<float4 const*>(o_row + int64_t(s) * split_stride * p.head_dim + col);
        }
        lse[j] = lse_row[s * split_stride];
      }
      // A split past the last, or one that sees no key of the row (lse -inf), has weight 0, and
      // its partial row, which it may not have written, is selected away (not multiplied by 0,
      // which keeps NaN). The batch's maximum first, then independent weights: folded one split
      // at a time, the running maximum made a serial chain of exponentials, and the compiler
      // issued each split's loads next to their use, one memory latency per split.
      bool seen[kCombineUnroll];
      float batch_max = -INFINITY;
      CUTE_UNROLL
      for (int j = 0; j < kCombineUnroll; ++j) {
        seen[j] = s0 + j * kCombineWarps < p.num_splits && lse[j] != -INFINITY;
        batch_max = seen[j] ? fmaxf(batch_max, lse[j]) : batch_max;
      }
      float const m_new = fmaxf(m, batch_max);
      float const rescale = m_new == m ? 1.0f : expf(m - m_new);   // 0 from m = -inf
      l *= rescale;
      CUTE_UNROLL
      for (int g = 0; g < kGroups; ++g) {
        acc[g].x *= rescale;
        acc[g].y *= rescale;
        acc[g].z *= rescale;
        acc[g].w *= rescale;
      }
      CUTE_UNROLL
      for (int j = 0; j < kCombineUnroll; ++j) {
        float const weight = seen[j] ? expf(lse[j] - m_new) : 0.0f;
        l += weight;
        CUTE_UNROLL
        for (int g = 0; g < kGroups; ++g) {
          acc[g].x += seen[j] ? weight * o[j][g].x : 0.0f;
          acc[g].y += seen[j] ? weight * o[j][g].y : 0.0f;
          acc[g].z += seen[j] ? weight * o[j][g].z : 0.0f;
          acc[g].w += seen[j] ? weight * o[j][g].w : 0.0f;
        }
      }
      m = m_new;
    }
    // Every lane of a warp saw the same splits: lane 0 holds the warp's max and sum.
    if (lane == 0) {
      warp_max[warp] = m;
      warp_sum[warp] = l;
    }
    __syncthreads();
    float const row_max = fmaxf(fmaxf(warp_max[0], warp_max[1]), fmaxf(warp_max[2], warp_max[3]));
    float const own = row_max == -INFINITY ? 0.0f : expf(m - row_max);   // this warp's rescale
    CUTE_UNROLL
    for (int g = 0; g < kGroups; ++g) {
      int const col = lane * 4 + g * 128;
      if (col < p.head_dim) {
        *reinterpret_cast<float4*>(&warp_acc[warp][col]) =
            make_float4(acc[g].x * own, acc[g].y * own, acc[g].z * own, acc[g].w * own);
      }
    }
    __syncthreads();
    float row_sum = 0.0f;
    CUTE_UNROLL
    for (int w = 0; w < kCombineWarps; ++w) {
      row_sum += row_max == -INFINITY ? 0.0f : warp_sum[w] * expf(warp_max[w] - row_max);
    }
    // A row that sees no key in any split: O = 0, LSE = -inf.
    float const inv_sum = row_sum > 0.0f ? 1.0f / row_sum : 0.0f;
    Element* out_row = p.out + tensor_batch * p.out_batch_stride + int64_t(seq.offset_q + query) * p.out_row_stride +
                       int64_t(head) * p.out_head_stride;
    for (int col = threadIdx.x * 4; col < p.head_dim; col += kCombineThreads * 4) {
      cutlass::Array<float, 4> total;
      CUTE_UNROLL
      for (int e = 0; e < 4; ++e) {
        total[e] = (warp_acc[0][col + e] + warp_acc[1][col + e] + warp_acc[2][col + e] + warp_acc[3][col + e]) * inv_sum;
      }
      *reinterpret_cast<cutlass::Array<Element, 4>*>(out_row + col) = convert(total);
    }
    if (p.lse != nullptr && threadIdx.x == 0) {
      p.lse[tensor_batch * p.lse_batch_stride + int64_t(head) * p.lse_head_stride + seq.offset_q + query] =
          row_sum > 0.0f ? row_max + logf(row_sum) : -INFINITY;
    }
    __syncthreads();   // the next item reuses the shared arrays
  }
}

}  // namespace flash::sm90

namespace flash::detail::sm90 {

// Merges the splits' partial results into out and softmax_lse, launched with programmatic stream
// serialisation: it may start while the split kernel drains and waits (griddepcontrol.wait) for
// its results. Defined in combine.cu for half and bfloat16, so that the combine kernel is compiled
// once rather than in every forward instance.
template <class Element>
Status launch_combine(FwdArgs const& args, cudaStream_t stream);

}  // namespace flash::detail::sm90
