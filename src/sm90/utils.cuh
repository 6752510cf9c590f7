// Register-fragment helpers shared by the SM90 consumer code: layout views of wgmma accumulators,
// type conversion, quad reductions and the warpgroup GEMM issue sequence.
#pragma once

#include <cute/tensor.hpp>
#include <cutlass/numeric_conversion.h>

namespace flash::sm90 {

using namespace cute;

// A wgmma accumulator fragment is ((2, 2, N/8), MMA_M, MMA_N): a column pair, the row and the row
// 8 below it, then the 8-column groups. Viewed as (rows, cols) = ((2, MMA_M), (2, N/8, MMA_N)),
// each thread's rows are whole and its columns are the ones a quad of threads shares.
template <class Layout>
CUTE_HOST_DEVICE constexpr auto rowcol_layout(Layout acc) {
  static_assert(decltype(rank(acc))::value == 3 && decltype(rank(get<0>(acc)))::value == 3);
  auto v = get<0>(acc);
  return make_layout(make_layout(get<1>(v), get<1>(acc)),
                     make_layout(get<0>(v), get<2>(v), get<2>(acc)));
}

// The same registers as the A operand of a 16-bit register-sourced wgmma, ((2, 2, 2), MMA_M, K/16):
// each 16-wide K step consumes two consecutive 8-column groups of the accumulator.
template <class Layout>
CUTE_HOST_DEVICE constexpr auto acc_as_a_operand_layout(Layout acc) {
  auto v = get<0>(acc);
  auto groups = logical_divide(get<2>(v), Tile<_2>{});   // ((2, N/16))
  return make_layout(make_layout(get<0>(v), get<1>(v), get<0, 0>(groups)),
                     get<1>(acc),
                     coalesce(make_layout(get<2>(acc), get<0, 1>(groups))));
}

// FP8 P V takes P as an e4m3 A operand, ((4, 2, 2), MMA_M, N/32): per 32-key step a thread holds
// slots 4q + (0..3) and 16 + 4q + (0..3) of its two rows (q: its place in the quad), while the
// accumulator of S gives it keys 2q + (0, 1) + 8j, j = 0..3. Rather than move values between
// threads, slot s of each step holds key fp8_key_of_slot(s) of it: P's registers are the thread's
// own scores in a fixed order, and the producer writes V^T with the same key order.
CUTE_HOST_DEVICE constexpr int fp8_key_of_slot(int s) { return (s & ~0xE) | ((s & 0x2) << 2) | ((s & 0xC) >> 1); }

template <class Layout>
CUTE_HOST_DEVICE constexpr auto fp8_a_operand_shape(Layout acc) {
  static_assert(decltype(size<2>(acc))::value == 1, "one MMA along N");
  constexpr int kChunks = decltype(size<2>(get<0>(acc)))::value / 4;   // 8-column groups / 4
  return make_shape(Shape<_4, _2, _2>{}, size<1>(acc), Int<kChunks>{});
}

// S (fp32 accumulator) -> P (e4m3 A operand) with fp8_key_of_slot's order: value (u0, u1, u2) of
// step kk is the score at column pair u0 & 1, row half u1, 8-column group 4 kk + (u0 >> 1) + 2 u2.
template <class EngineS, class LayoutS, class EngineP, class LayoutP>
CUTE_DEVICE void convert_p_fp8(Tensor<EngineS, LayoutS> const& acc, Tensor<EngineP, LayoutP>& p) {
  using To = typename EngineP::value_type;
  static_assert(sizeof(To) == 1);
  cutlass::NumericArrayConverter<To, float, 4> convert;
  auto* words = reinterpret_cast<uint32_t*>(raw_pointer_cast(p.data()));
  CUTE_UNROLL
  for (int m = 0; m < size<1>(p); ++m) {
    CUTE_UNROLL
    for (int kk = 0; kk < size<2>(p); ++kk) {
      CUTE_UNROLL
      for (int u2 = 0; u2 < 2; ++u2) {
        CUTE_UNROLL
        for (int u1 = 0; u1 < 2; ++u1) {
          cutlass::Array<float, 4> x;
          CUTE_UNROLL
          for (int u0 = 0; u0 < 4; ++u0) x[u0] = acc(make_coord(u0 & 1, u1, 4 * kk + (u0 >> 1) + 2 * u2), m, 0);
          cutlass::Array<To, 4> const y = convert(x);
          words[p.layout()(make_coord(0, u1, u2), m, kk) / 4] = reinterpret_cast<uint32_t const&>(y);
        }
      }
    }
  }
}

// Multiplies each row of an accumulator fragment (seen as (rows, cols), see rowcol_layout) by its
// factor: the online softmax's rescale of O and the epilogue's 1 / row sum.
template <class Engine, class Layout, int kRows>
CUTE_DEVICE void scale_rows(Tensor<Engine, Layout>& acc, float const (&scale)[kRows]) {
  Tensor rows = make_tensor(acc.data(), rowcol_layout(acc.layout()));
  static_assert(decltype(size<0>(rows))::value == kRows);
  CUTE_UNROLL
  for (int r = 0; r < kRows; ++r) {
    CUTE_UNROLL
    for (int c = 0; c < size<1>(rows); ++c) rows(r, c) *= scale[r];
  }
}

// Converts a register fragment element-wise with packed conversions. dst may view the registers
// in another layout; both are walked in storage order.
template <class EngineS, class LayoutS, class EngineD, class LayoutD>
CUTE_DEVICE void convert_fragment(Tensor<EngineS, LayoutS> const& src, Tensor<EngineD, LayoutD>& dst) {
  using From = typename EngineS::value_type;
  using To = typename EngineD::value_type;
  constexpr int kSize = cosize_v<LayoutS>;
  static_assert(kSize == cosize_v<LayoutD>, "fragments differ in size");
  cutlass::NumericArrayConverter<To, From, kSize> convert;
  *reinterpret_cast<cutlass::Array<To, kSize>*>(raw_pointer_cast(dst.data())) =
      convert(*reinterpret_cast<cutlass::Array<From, kSize> const*>(raw_pointer_cast(src.data())));
}

// tanh(x) = 1 - 2 / (e^2x + 1) with exp2 and a fast divide: absolute error ~1e-7. The one-instruction
// tanh.approx.f32 has ~2^-11 relative error, which a softcap of 50 turns into logit errors of 0.02.
CUTE_DEVICE float tanh_fast(float x) {
  constexpr float kTwoLog2e = 2.88539008177792681472f;   // 2 / ln(2)
  return 1.0f - __fdividef(2.0f, exp2f(x * kTwoLog2e) + 1.0f);
}

// The four threads of a quad hold one accumulator row between them.
CUTE_DEVICE float quad_allreduce_max(float x) {
  x = fmaxf(x, __shfl_xor_sync(0xffffffff, x, 1));
  return fmaxf(x, __shfl_xor_sync(0xffffffff, x, 2));
}

CUTE_DEVICE float quad_allreduce_sum(float x) {
  x += __shfl_xor_sync(0xffffffff, x, 1);
  return x + __shfl_xor_sync(0xffffffff, x, 2);
}

// A pipeline state (the same in every lane of the calling warp) broadcast from lane 0, so that
// the compiler knows it to be warp-uniform and keeps the stage addresses of the GEMMs and barrier
// waits on the uniform datapath (else each descriptor is moved there register by register inside
// the warpgroups' GEMM turns). Every lane of the calling warp must call it.
template <class State>
CUTE_DEVICE State warp_uniform_state(State const& s) {
  return State(__shfl_sync(0xffffffffu, s.index(), 0), __shfl_sync(0xffffffffu, s.phase(), 0),
               __shfl_sync(0xffffffffu, s.count(), 0));
}

// Issues C (+)= A B over all K steps as one wgmma batch of the calling warpgroup; does not wait.
// zero_init makes the first K step overwrite C instead of accumulating. kARegisters: A is a register
// fragment (P of P V) rather than shared-memory descriptors.
template <bool kARegisters, class TiledMma, class TensorA, class TensorB, class TensorC>
CUTE_DEVICE void warpgroup_gemm(TiledMma& tiled_mma, TensorA const& a, TensorB const& b, TensorC& c, bool zero_init) {
  if constexpr (kARegisters) warpgroup_fence_operand(const_cast<TensorA&>(a));
  warpgroup_fence_operand(c);
  warpgroup_arrive();
  tiled_mma.accumulate_ = zero_init ? GMMA::ScaleOut::Zero : GMMA::ScaleOut::One;
  CUTE_UNROLL
  for (int k = 0; k < size<2>(a); ++k) {
    cute::gemm(tiled_mma, a(_, _, k), b(_, _, k), c);
    tiled_mma.accumulate_ = GMMA::ScaleOut::One;
  }
  warpgroup_commit_batch();
  warpgroup_fence_operand(c);
  if constexpr (kARegisters) warpgroup_fence_operand(const_cast<TensorA&>(a));
}

}  // namespace flash::sm90
