// Online softmax over key blocks, in registers, in base 2: scores are scaled by
// softmax_scale * log2(e) (folded on the host) so each exponential is one exp2.
#pragma once

#include <cmath>

#include <cute/tensor.hpp>

#include "sm90/utils.cuh"

namespace flash::sm90 {

// kRows: accumulator rows held by one thread. Row sums stay per-thread partials until finalize.
// kMaxOffset: probabilities are exp2(score - max + kMaxOffset). FP8 quantises P to e4m3 (largest
// finite 448, smallest normal 2^-6): the offset moves the small probabilities out of e4m3's
// subnormal range. It cancels in O / row sum and is taken out of the LSE.
// kRescaleThreshold: the running max moves only when a block's max exceeds it by more than this
// (log2 units); below, the block is exponentiated against the old max and O is not rescaled, which
// saves the multiply of every O register of the thread (128 at head dim 256) on most blocks once the
// max has settled. P is then at most 2^(kMaxOffset + kRescaleThreshold), which FwdTraits keeps at
// or below 2^8 = 256 (16-bit: 0 + 8; FP8: 7 + 1, below e4m3's 448; 0 where the plan moves the max
// on every block). The result is exact either way: O and the row sum share the max.
template <int kRows, int kMaxOffset = 0, int kRescaleThreshold = 0>
struct OnlineSoftmax {
  static_assert(kMaxOffset >= 0 && kRescaleThreshold >= 0 && kMaxOffset + kRescaleThreshold <= 8,
                "P <= 2^(offset + threshold) must stay below e4m3's 448");
  float row_max[kRows];   // running max of raw scores (unscaled); -inf until a key is seen
  float row_sum[kRows];   // this thread's share of sum(exp2(score * scale_log2 - max * scale_log2))

  CUTE_DEVICE OnlineSoftmax() {
    CUTE_UNROLL
    for (int r = 0; r < kRows; ++r) {
      row_max[r] = -INFINITY;
      row_sum[r] = 0.0f;
    }
  }

  // max * scale_log2, 0 for a row that has seen no key (exp2 then gives 0 for its -inf scores, not
  // NaN, and a zero scale, as a zero descale factor gives, does not make -inf * 0).
  CUTE_DEVICE static float scaled(float max, float scale_log2) { return max == -INFINITY ? 0.0f : max * scale_log2; }

  // scores: (rows, cols) view of S for one key block. Replaces each score with its unnormalised
  // probability and returns in o_scale the factor by which the rows of O accumulated so far must
  // be multiplied to move them to the running max (1 where it did not move).
  template <class Tensor>
  CUTE_DEVICE void update(Tensor& scores, float scale_log2, float (&o_scale)[kRows]) {
    static_assert(decltype(size<0>(scores))::value == kRows);
    CUTE_UNROLL
    for (int r = 0; r < kRows; ++r) {
      float block_max = row_max[r];
      CUTE_UNROLL
      for (int c = 0; c < size<1>(scores); ++c) block_max = fmaxf(block_max, scores(r, c));
      block_max = quad_allreduce_max(block_max);
      // The first key a row sees always moves its max (from -inf); O and the sum are 0 before it.
      bool const seen = row_max[r] != -INFINITY;
      float const old_scaled = scaled(row_max[r], scale_log2);
      float const new_scaled = scaled(block_max, scale_log2);
      bool const move = !seen || new_scaled - old_scaled > float(kRescaleThreshold);
      o_scale[r] = move ? (seen ? exp2f(old_scaled - new_scaled) : 0.0f) : 1.0f;
      if (move) row_max[r] = block_max;
      float const shift = (move ? new_scaled : old_scaled) - float(kMaxOffset);
      float sum = 0.0f;
      CUTE_UNROLL
      for (int c = 0; c < size<1>(scores); ++c) {
        scores(r, c) = exp2f(fmaf(scores(r, c), scale_log2, -shift));
        sum += scores(r, c);
      }
      row_sum[r] = row_sum[r] * o_scale[r] + sum;
    }
  }

  // Whether any row of the calling warp must rescale O this block (a warp-uniform answer, so the
  // multiply is skipped as a branch rather than predicated).
  CUTE_DEVICE static bool warp_rescales(float const (&o_scale)[kRows]) {
    bool mine = false;
    CUTE_UNROLL
    for (int r = 0; r < kRows; ++r) mine |= o_scale[r] != 1.0f;
    return __any_sync(0xffffffffu, mine);
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
