// The FP8 kernels' V^T transposer (sm90/mainloop_fwd.cuh, VtTransposer), checked on the host for
// every FP8 instance's tile: the split load and store addresses equal the shared-memory layouts',
// each stored word holds the (key, d) bytes that P's relabelled key order expects, every V^T byte
// of a stage is written once, and no ldmatrix or store conflicts on banks. The GPU tests
// (test_gpu_fp8) then check what the hardware computes.
#include <gtest/gtest.h>

#include <string>

#include "sm90/mainloop_fwd.cuh"
#include "sm90/traits.cuh"

namespace {

// "ok", or what failed. The head dims are tools/generate_kernels.py's FP8_HEAD_DIMS.
template <int kHeadDim>
std::string transposer_check() {
  using Traits = flash::sm90::FwdTraits<cutlass::float_e4m3_t, kHeadDim, flash::sm90::Variant::kDense>;
  char const* failure = flash::sm90::MainloopFwdSm90<Traits>::VtTransposer::check();
  return failure == nullptr ? "ok" : failure;
}

TEST(Fp8Transposer, Head64) { EXPECT_EQ(transposer_check<64>(), "ok"); }
TEST(Fp8Transposer, Head128) { EXPECT_EQ(transposer_check<128>(), "ok"); }
TEST(Fp8Transposer, Head256) { EXPECT_EQ(transposer_check<256>(), "ok"); }

}  // namespace
