// The softmax's exponentials on the FMA pipe (sm90/softmax.cuh, exp2_fma), on the GPU with the
// kernels' flags: against 2^x in double over [-126, 8.5] in steps of 2^-10 and at the floats
// beside each integer, each result within the polynomial's bound, and 0 exactly below -126 and
// for -inf (masked scores). The forward tests check the kernels that use it against the double
// reference.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include <cuda_runtime_api.h>

#include "gpu_test_util.h"
#include "sm90/softmax.cuh"

namespace {

template <int kDegree>
__global__ void exp2_fma_kernel(float const* x, float* y, int n) {
  int const i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = flash::sm90::exp2_fma<kDegree>(x[i]);
}

// x: [-130, 8.5] in steps of 2^-10 (every f of 1024 per binade of the exponent's integer part),
// the floats just below and above each integer, -1e30 and -inf.
std::vector<float> inputs() {
  std::vector<float> x;
  for (int i = -130 * 1024; i <= 8 * 1024 + 512; ++i) x.push_back(float(i) / 1024.0f);
  for (int k = -130; k <= 8; ++k) {
    x.push_back(std::nextafter(float(k), -INFINITY));
    x.push_back(std::nextafter(float(k), INFINITY));
  }
  x.push_back(-INFINITY);
  x.push_back(-1e30f);
  return x;
}

template <int kDegree>
void check_degree(double bound) {
  std::vector<float> const x = inputs();
  int const n = int(x.size());
  flash::host::GuardedDeviceBuffer d_x = flash::test::device_copy(x);
  flash::host::GuardedDeviceBuffer d_y(n * sizeof(float));
  d_y.poison(flash::host::kPoisonNaN);   // every element must be written
  exp2_fma_kernel<kDegree>
      <<<(n + 255) / 256, 256>>>(static_cast<float const*>(d_x.data()), static_cast<float*>(d_y.data()), n);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  ASSERT_TRUE(d_y.guards_intact());
  std::vector<float> y(n);
  d_y.copy_to_host(y.data(), n * sizeof(float));

  double worst = 0.0;
  float worst_x = 0.0f;
  int bad_zero = 0;
  for (int i = 0; i < n; ++i) {
    if (x[i] < -126.0f) {
      bad_zero += y[i] != 0.0f;   // clamped: 2^n's exponent field is 0
      continue;
    }
    double const ref = std::exp2(double(x[i]));
    double const rel = std::fabs(double(y[i]) - ref) / ref;
    if (!(rel <= worst)) {   // NaN counts as worst
      worst = std::isnan(rel) ? INFINITY : rel;
      worst_x = x[i];
    }
  }
  EXPECT_EQ(bad_zero, 0) << "inputs below -126 (and -inf) must give exactly 0";
  EXPECT_LE(worst, bound) << "degree " << kDegree << ": worst relative error at x = " << worst_x;
  EXPECT_GT(worst, bound / 4) << "the bound is the fit's: far below it the polynomial is not the one documented";
}

TEST(Exp2FmaGpu, DegreeTwoWithinTheFitsBound) {
  SKIP_WITHOUT_SM90();
  check_degree<2>(2.1e-3);
}

TEST(Exp2FmaGpu, DegreeThreeWithinTheFitsBound) {
  SKIP_WITHOUT_SM90();
  check_degree<3>(8.7e-5);
}

}  // namespace
