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

constexpr int kCombineWarps = 4;   // one warp per (query row, head)
constexpr int kCombineThreads = kCombineWarps * 32;
constexpr int kCombineMaxSplits = 256;   // flash::kMaxSplits: the weights of one row fit shared memory
// Partial rows loaded back to back per lane: the loads of one row's splits are independent, and
// issued one at a time they cost a memory latency each (64 splits took ~25 us at decode).
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

// Grid-stride over (entry, query row, head), one warp each; lanes take 4 columns at a time.
template <class Element>
__global__ void __launch_bounds__(kCombineThreads) combine_kernel(CUTE_GRID_CONSTANT CombineParams<Element> const p) {
  // Launched as a programmatic dependent of the split kernel: wait until its writes are visible.
  asm volatile("griddepcontrol.wait;" ::: "memory");
  __shared__ float weights_of_warp[kCombineWarps][kCombineMaxSplits];
  float* weights = weights_of_warp[threadIdx.x / 32];
  int const lane = threadIdx.x % 32;
  int64_t const per_entry = int64_t(p.seqlen_q) * p.num_heads;
  int64_t const count = per_entry * p.batch;
  int64_t const split_stride = int64_t(p.num_heads) * p.partial_rows;
  cutlass::NumericArrayConverter<Element, float, 4> convert;
  for (int64_t item = int64_t(blockIdx.x) * kCombineWarps + threadIdx.x / 32; item < count;
       item += int64_t(gridDim.x) * kCombineWarps) {
    int const batch = int(item / per_entry);
    int const query = int(item % per_entry) / p.num_heads;
    int const head = int(item % per_entry) % p.num_heads;
    SeqLenInfo const seq = p.seqlens.template get<true>(batch);
    if (query >= seq.len_q) continue;
    int const tensor_batch = p.seqlens.template tensor_batch<true>(batch);
    int64_t const row = int64_t(head) * p.partial_rows + int64_t(tensor_batch) * p.seqlen_q + seq.offset_q + query;
    float const* lse_row = p.lse_partial + row;   // split s at lse_row[s * split_stride]

    float lse_max = -INFINITY;
    for (int s = lane; s < p.num_splits; s += 32) lse_max = fmaxf(lse_max, lse_row[s * split_stride]);
    lse_max = warp_allreduce_max(lse_max);
    float sum = 0.0f;
    if (lse_max != -INFINITY) {
      for (int s = lane; s < p.num_splits; s += 32) sum += expf(lse_row[s * split_stride] - lse_max);
    }
    sum = warp_allreduce_sum(sum);
    float const lse_total = lse_max == -INFINITY ? -INFINITY : lse_max + logf(sum);
    // Each split's weight, 0 for a split whose keys the row does not see (or no key at all).
    for (int s = lane; s < p.num_splits; s += 32) {
      weights[s] = lse_total == -INFINITY ? 0.0f : expf(lse_row[s * split_stride] - lse_total);
    }
    __syncwarp();

    Element* out_row = p.out + tensor_batch * p.out_batch_stride + int64_t(seq.offset_q + query) * p.out_row_stride +
                       int64_t(head) * p.out_head_stride;
    float const* o_col = p.o_partial + row * p.head_dim;   // split s at o_col[s * split_stride * head_dim + col]
    for (int col = lane * 4; col < p.head_dim; col += 128) {   // head_dim is a multiple of 8
      cutlass::Array<float, 4> acc;
      acc.fill(0.0f);
      for (int s0 = 0; s0 < p.num_splits; s0 += kCombineUnroll) {
        float4 o[kCombineUnroll];
        CUTE_UNROLL
        for (int j = 0; j < kCombineUnroll; ++j) {
          int const s = s0 + j;
          o[j] = s < p.num_splits && weights[s] != 0.0f
                     ? *reinterpret_cast<float4 const*>(o_col + int64_t(s) * split_stride * p.head_dim + col)
                     : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        }
        CUTE_UNROLL
        for (int j = 0; j < kCombineUnroll; ++j) {
          float const weight = s0 + j < p.num_splits ? weights[s0 + j] : 0.0f;
          acc[0] += weight * o[j].x;
          acc[1] += weight * o[j].y;
          acc[2] += weight * o[j].z;
          acc[3] += weight * o[j].w;
        }
      }
      *reinterpret_cast<cutlass::Array<Element, 4>*>(out_row + col) = convert(acc);
    }
    __syncwarp();   // the next row's weights overwrite these
    if (p.lse != nullptr && lane == 0) {
      p.lse[tensor_batch * p.lse_batch_stride + int64_t(head) * p.lse_head_stride + seq.offset_q + query] = lse_total;
    }
  }
}

}  // namespace flash::sm90
