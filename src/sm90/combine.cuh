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

// One CTA per (query row, head) at a time: its threads read the split LSEs together, then each
// warp sums a quarter of the splits' partial rows (kCombineUnroll loads in flight per lane), and
// the warps' sums meet in shared memory. A row's loads are independent: issued one at a time they
// cost a memory latency each (64 splits took ~25 us at decode), so they are issued in batches.
constexpr int kCombineWarps = 4;
constexpr int kCombineThreads = kCombineWarps * 32;
constexpr int kCombineMaxSplits = 256;   // flash::kMaxSplits
constexpr int kCombineMaxHeadDim = 256;
constexpr int kCombineUnroll = 16;

CUTE_DEVICE float warp_allreduce_max(float x) {
  CUTE_UNROLL
  for (int offset = 16; offset > 0; offset /= 2) x = fmaxf(x, __shfl_xor_sync(0xffffffff, x, offset));
  return x;
}

CUTE_DEVICE float warp_allreduce_sum(float x) {
  CUTE_UNROLL
  for (int offset = 16; offset > 0; offset /= 2) x += __shfl_xor_sync(0xffffffff, x, offset);
  return x;
}

template <class Element>
__global__ void __launch_bounds__(kCombineThreads) combine_kernel(CUTE_GRID_CONSTANT CombineParams<Element> const p) {
  // Launched as a programmatic dependent of the split kernel: wait until its writes are visible.
  asm volatile("griddepcontrol.wait;" ::: "memory");
  __shared__ float weights[kCombineMaxSplits];
  __shared__ float reduce[kCombineWarps];
  __shared__ __align__(16) float sums[kCombineWarps][kCombineMaxHeadDim];
  int const warp = threadIdx.x / 32;
  int const lane = threadIdx.x % 32;
  int64_t const per_entry = int64_t(p.seqlen_q) * p.num_heads;
  int64_t const split_stride = int64_t(p.num_heads) * p.partial_rows;
  cutlass::NumericArrayConverter<Element, float, 4> convert;
  for (int64_t item = blockIdx.x; item < per_entry * p.batch; item += gridDim.x) {
    int const batch = int(item / per_entry);
    int const query = int(item % per_entry) / p.num_heads;
    int const head = int(item % per_entry) % p.num_heads;
    SeqLenInfo const seq = p.seqlens.template get<true>(batch);
    if (query >= seq.len_q) continue;   // the same for the whole CTA
    int const tensor_batch = p.seqlens.template tensor_batch<true>(batch);
    int64_t const row = int64_t(head) * p.partial_rows + int64_t(tensor_batch) * p.seqlen_q + seq.offset_q + query;
    float const* lse_row = p.lse_partial + row;   // split s at lse_row[s * split_stride]

    // LSE of the row: max, then sum of exp, over the CTA.
    float lse_max = -INFINITY;
    for (int s = threadIdx.x; s < p.num_splits; s += kCombineThreads) lse_max = fmaxf(lse_max, lse_row[s * split_stride]);
    lse_max = warp_allreduce_max(lse_max);
    if (lane == 0) reduce[warp] = lse_max;
    __syncthreads();
    lse_max = fmaxf(fmaxf(reduce[0], reduce[1]), fmaxf(reduce[2], reduce[3]));
    __syncthreads();
    float sum = 0.0f;
    for (int s = threadIdx.x; s < p.num_splits && lse_max != -INFINITY; s += kCombineThreads) {
      sum += expf(lse_row[s * split_stride] - lse_max);
    }
    sum = warp_allreduce_sum(sum);
    if (lane == 0) reduce[warp] = sum;
    __syncthreads();
    sum = reduce[0] + reduce[1] + reduce[2] + reduce[3];
    float const lse_total = lse_max == -INFINITY ? -INFINITY : lse_max + logf(sum);
    for (int s = threadIdx.x; s < p.num_splits; s += kCombineThreads) {
      weights[s] = lse_total == -INFINITY ? 0.0f : expf(lse_row[s * split_stride] - lse_total);
    }
    __syncthreads();

    // Warp w sums splits w, w + 4, ...; lanes take 4 columns at a time.
    float const* o_row = p.o_partial + row * p.head_dim;   // split s at o_row[s * split_stride * head_dim]
    for (int col = lane * 4; col < p.head_dim; col += 128) {   // head_dim is a multiple of 8
      float4 acc = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      for (int s0 = warp; s0 < p.num_splits; s0 += kCombineWarps * kCombineUnroll) {
        float4 o[kCombineUnroll];
        CUTE_UNROLL
        for (int j = 0; j < kCombineUnroll; ++j) {
          int const s = s0 + j * kCombineWarps;
          o[j] = s < p.num_splits && weights[s] != 0.0f
                     ? *reinterpret_cast<float4 const*>(o_row + int64_t(s) * split_stride * p.head_dim + col)
                     : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        }
        CUTE_UNROLL
        for (int j = 0; j < kCombineUnroll; ++j) {
          int const s = s0 + j * kCombineWarps;
          float const weight = s < p.num_splits ? weights[s] : 0.0f;
          acc.x += weight * o[j].x;
          acc.y += weight * o[j].y;
          acc.z += weight * o[j].z;
          acc.w += weight * o[j].w;
        }
      }
      *reinterpret_cast<float4*>(&sums[warp][col]) = acc;
    }
    __syncthreads();
    Element* out_row = p.out + tensor_batch * p.out_batch_stride + int64_t(seq.offset_q + query) * p.out_row_stride +
                       int64_t(head) * p.out_head_stride;
    for (int col = threadIdx.x * 4; col < p.head_dim; col += kCombineThreads * 4) {
      cutlass::Array<float, 4> total;
      CUTE_UNROLL
      for (int e = 0; e < 4; ++e) total[e] = sums[0][col + e] + sums[1][col + e] + sums[2][col + e] + sums[3][col + e];
      *reinterpret_cast<cutlass::Array<Element, 4>*>(out_row + col) = convert(total);
    }
    if (p.lse != nullptr && threadIdx.x == 0) {
      p.lse[tensor_batch * p.lse_batch_stride + int64_t(head) * p.lse_head_stride + seq.offset_q + query] = lse_total;
    }
    __syncthreads();   // the next item reuses weights, reduce and sums
  }
}

}  // namespace flash::sm90
