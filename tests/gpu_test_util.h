// Shared by the GPU test files (test_gpu_forward.cpp, test_gpu_serving.cpp, test_gpu_decode.cpp):
// the acceptance bounds against the double reference, the 16-bit poison value, device copies of
// host vectors, and the skip-without-SM90 check.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include "flash_api.h"
#include "host/host_tensor.h"

namespace flash::test {

// Acceptance bounds on ||out - ref|| / ||ref|| (FA3 itself reaches about 2.8e-4 fp16, 2.2e-3 bf16).
constexpr double kMaxRelL2Fp16 = 2e-3;
constexpr double kMaxRelL2Bf16 = 1e-2;
// LSE is computed in fp32 from exact products of the 16-bit inputs: far tighter than the output.
constexpr double kMaxLseAbsError = 1e-3;
constexpr uint16_t kPoison16 = 0xFFFF;   // NaN in fp16 and bf16

inline double max_rel_l2(DataType dtype) { return dtype == DataType::FP16 ? kMaxRelL2Fp16 : kMaxRelL2Bf16; }

// A device copy of `host` whose guard bytes are set (poison writes them).
template <class T>
host::GuardedDeviceBuffer device_copy(const std::vector<T>& values) {
  host::GuardedDeviceBuffer buffer(values.size() * sizeof(T));
  buffer.poison(0);
  buffer.copy_from_host(values.data(), values.size() * sizeof(T));
  return buffer;
}

// Empty when the current device is an SM90 GPU; otherwise why the GPU tests cannot run.
inline std::string sm90_skip_reason() {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0) {
    cudaGetLastError();
    return std::string("no CUDA device (") + (err != cudaSuccess ? cudaGetErrorString(err) : "count 0") + ")";
  }
  int device = 0, major = 0, minor = 0;
  cudaGetDevice(&device);
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
  cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device);
  if (major != 9 || minor != 0) {
    return "device is compute capability " + std::to_string(major) + "." + std::to_string(minor) + ", not SM90";
  }
  return "";
}

}  // namespace flash::test

// First statement of a GPU test: skips it (CTest reports it as skipped) with the reason.
#define SKIP_WITHOUT_SM90()                                                 \
  do {                                                                      \
    const std::string reason = ::flash::test::sm90_skip_reason();           \
    if (!reason.empty()) GTEST_SKIP() << "GPU test skipped: " << reason;    \
  } while (0)
