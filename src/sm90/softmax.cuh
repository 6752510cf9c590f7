// Online softmax over key blocks, in registers, in base 2: scores are scaled by
// softmax_scale * log2(e) (folded on the host) so each exponential is one exp2.
#pragma once

#include <cmath>

#include <cute/tensor.hpp>

#include "sm90/utils.cuh"

namespace flash::sm90 {

// 2^x on the FMA and integer pipes, for a share of the exponentials: the MUFU unit computes 16 per
// cycle per SM, as few as the tensor cores consume at FP8 head dim 128 and 16-bit head dim 64, so
// the two would wait on each other. x = n + f with n = floor(x) and f in [0, 1]: 2^f is a
// polynomial with p(0) = 1, fitted for the least maximum relative error (2.1e-3 at degree 2, below
// half of e4m3's step, 6.3e-2; 8.6e-5 at degree 3, below half of fp16's, 4.9e-4), and 2^n is built
// from its exponent bits. Adding 1.5 * 2^23 + 127 rounded down leaves floor(x) + 127 in the low
// bits of t, which shifted up are the exponent field of 2^n. x is clamped to -127, where that field
// is 0: a masked (-inf) score gives exactly 0, as exp2 does. Eight instructions against one.
template <int kDegree>
CUTE_DEVICE float exp2_fma(float x) {
  constexpr float kRound = 12582912.0f + 127.0f;
  x = fmaxf(x, -127.0f);
  float const t = __fadd_rd(x, kRound);
  float const f = x - (t - kRound);
  float p;
  if constexpr (kDegree == 2) {
    p = fmaf(fmaf(0.32993242f, f, 0.66596091f), f, 1.0f);
  } else {
    p = fmaf(fmaf(fmaf(0.077067196f, f, 0.22764497f), f, 0.69511670f), f, 1.0f);
  }
  return p * __int_as_float(__float_as_int(t) << 23);
}

// kRows: accumulator rows held by one thread. Row sums stay per-thread partials until finalize.
// kMaxOffset: probabilities are exp2(score - max + kMaxOffset). FP8 quantises P to e4m3 (largest
// finite 448, smallest normal 2^-6): the offset moves the small probabilities out of e4m3's
// subnormal range. It cancels in O / row sum and is taken out of the LSE.
// The running max moves whenever a block's max exceeds it, so the largest P of the block that
// moves it is exactly 2^kMaxOffset and carries no rounding into the P V GEMM. A threshold that let
// the max lag (a "lazy" rescale, P up to 2^(offset + threshold)) saved O's multiply on more blocks
// but made that P round like any other: 2-5% more error than FA3 at 16-bit d128/d256 and FP8
// d64/d256 (tools/simulate_p_rounding.py; measured, docs/PERF_NOTES.md). A warp whose rows all kept
// their max may still skip O's multiply (warp_rescales), an exact saving.
// kPolyPer8: of every 8 score columns, how many take exp2_fma (below) instead of the MUFU's exp2;
// kPolyDegree: that polynomial's degree (2 where P is quantised to e4m3, 3 for 16-bit P).
template <int kRows, int kMaxOffset = 0, int kPolyPer8 = 0, int kPolyDegree = 3>
struct OnlineSoftmax {
  static_assert(kMaxOffset >= 0 && kMaxOffset <= 8, "P <= 2^offset must stay below e4m3's 448");
  static_assert(kPolyPer8 >= 0 && kPolyPer8 <= 8 && (kPolyDegree == 2 || kPolyDegree == 3));
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
      bool const move = !seen || new_scaled > old_scaled;
      o_scale[r] = move ? (seen ? exp2f(old_scaled - new_scaled) : 0.0f) : 1.0f;
      if (move) row_max[r] = block_max;
      float const shift = (move ? new_scaled : old_scaled) - float(kMaxOffset);
      float sum = 0.0f;
      CUTE_UNROLL
      for (int c = 0; c < size<1>(scores); ++c) {
        float const x = fmaf(scores(r, c), scale_log2, -shift);
        scores(r, c) = c % 8 < kPolyPer8 ? exp2_fma<kPolyDegree>(x) : exp2f(x);
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
