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
