// Online softmax over key blocks, in registers, in base 2: scores are scaled by
// softmax_scale * log2(e) (folded on the host) so each exponential is one exp2.
#pragma once

#include <cmath>

#include <cute/tensor.hpp>

#include "sm90/utils.cuh"

namespace flash::sm90 {

// kRows: accumulator rows held by one thread. Row sums stay per-thread partials until finalize.
// kMaxOffset: probabilities are exp2(score - max + kMaxOffset), i.e. at most 2^kMaxOffset. FP8
// quantises P to e4m3 (largest finite 448, smallest normal 2^-6): an offset of 8 keeps P <= 256
// and moves the small probabilities out of e4m3's subnormal range. Any offset up to
// log2(448) ~ 8.8 is safe, since the running max is updated on every block (no rescale threshold
// lets P exceed 2^kMaxOffset). The offset cancels in O / row sum and is taken out of the LSE.
template <int kRows, int kMaxOffset = 0>
struct OnlineSoftmax {
  static_assert(kMaxOffset >= 0 && kMaxOffset <= 8, "P = 2^kMaxOffset must stay below e4m3's 448");
  float row_max[kRows];   // running max of raw scores (unscaled); -inf until a key is seen
  float row_sum[kRows];   // this thread's share of sum(exp2(score * scale_log2 - max * scale_log2))

  CUTE_DEVICE OnlineSoftmax() {
    CUTE_UNROLL
    for (int r = 0; r < kRows; ++r) {
      row_max[r] = -INFINITY;
      row_sum[r] = 0.0f;
    }
  }

  // scores: (rows, cols) view of S for one key block. Replaces each score with its unnormalised
  // probability and returns in o_scale the factor by which the rows of O accumulated so far must
  // be multiplied to move them to the new running max.
  template <class Tensor>
  CUTE_DEVICE void update(Tensor& scores, float scale_log2, float (&o_scale)[kRows]) {
    static_assert(decltype(size<0>(scores))::value == kRows);
    CUTE_UNROLL
    for (int r = 0; r < kRows; ++r) {
      float block_max = row_max[r];
      CUTE_UNROLL
      for (int c = 0; c < size<1>(scores); ++c) block_max = fmaxf(block_max, scores(r, c));
      block_max = quad_allreduce_max(block_max);
      // A row that has seen no key keeps max -inf; subtract 0 then so exp2 gives 0, not NaN.
      float const max_scaled = block_max == -INFINITY ? 0.0f : block_max * scale_log2;
      // exp2(-inf) = 0 when this row had seen no key before: O and the sum are still 0 then.
      o_scale[r] = exp2f(row_max[r] * scale_log2 - max_scaled);
      row_max[r] = block_max;
      float const shift = max_scaled - float(kMaxOffset);
      float sum = 0.0f;
      CUTE_UNROLL
      for (int c = 0; c < size<1>(scores); ++c) {
        scores(r, c) = exp2f(fmaf(scores(r, c), scale_log2, -shift));
        sum += scores(r, c);
      }
      row_sum[r] = row_sum[r] * o_scale[r] + sum;
    }
  }

  // After the last block: o_scale = 1 / row sum (0 for a row that saw no key) and
  // lse = natural-log sum of exp of the scaled scores (-inf for such a row).
  CUTE_DEVICE void finalize(float scale_log2, float (&o_scale)[kRows], float (&lse)[kRows]) {
    constexpr float kLn2 = 0.69314718055994530942f;
    CUTE_UNROLL
    for (int r = 0; r < kRows; ++r) {
      float const sum = quad_allreduce_sum(row_sum[r]);
      bool const empty = sum == 0.0f;
      o_scale[r] = empty ? 0.0f : 1.0f / sum;
      lse[r] = empty ? -INFINITY : (row_max[r] * scale_log2 + __log2f(sum) - float(kMaxOffset)) * kLn2;
    }
  }
};

}  // namespace flash::sm90
