// Host-side helpers shared by the CLI, the benchmark and the GPU tests: element formats, random
// inputs, error statistics, FLOP counts and a device buffer with guard bytes. Not part of the library.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>

#include "flash_api.h"

namespace flash::host {

// Bytes per stored element: 2 for FP16/BF16, 1 for FP8_E4M3.
size_t element_bytes(DataType dtype);
// "fp16", "bf16" or "e4m3".
const char* dtype_name(DataType dtype);
// Accepts "fp16", "bf16", "fp8" and "e4m3". Returns false (and leaves *dtype alone) otherwise.
bool parse_dtype(const std::string& name, DataType* dtype);
// The element type of the output for inputs of `input`: the same for 16-bit inputs, BF16 for FP8
// (as FlashAttention-3 does: an 8-bit output would lose most of the accuracy the fp32 accumulators won).
DataType output_dtype(DataType input);

// The value that a stored element represents. FP8 elements use the low byte of `bits`.
double decode(DataType dtype, uint16_t bits);
// Rounds `value` to the nearest `dtype` value, ties to even, through float. FP8 saturates to +-448
// (e4m3 has no infinity) and returns its byte in the low 8 bits.
uint16_t encode(DataType dtype, double value);

// n standard-normal values from a deterministic generator seeded by `seed`, rounded to `dtype`.
// bits gets the stored elements; values (if not null) the exact double each element represents.
void fill_random(DataType dtype, size_t n, uint64_t seed, std::vector<uint16_t>* bits,
                 std::vector<double>* values);

// The bytes of `n` elements as the device stores them (FP8 packs one byte per element).
std::vector<uint8_t> storage_bytes(DataType dtype, const uint16_t* bits, size_t n);

struct ErrorStats {
  double rel_l2 = 0.0;     // ||got - ref|| / ||ref|| over the positions where both are finite
  double max_abs = 0.0;    // max |got - ref| over the same positions
  int64_t nonfinite = 0;   // NaN or inf in got, except where ref holds the same infinity
  int64_t count = 0;       // elements compared
};

// Compares got against ref. A position where ref is infinite (the -inf LSE of a row that sees no
// key) matches only the same infinity in got; any other value there makes rel_l2 and max_abs
// infinite. A non-finite got where ref is finite is counted and left out of the norms.
ErrorStats compare(const double* ref, const double* got, size_t n);
// The same with a weight per run of `run_length` elements (rows of head_dim outputs, say): rel_l2
// is sqrt(sum w * diff^2 / sum w * ref^2); max_abs and nonfinite are unweighted. Weights > 0.
ErrorStats compare(const double* ref, const double* got, size_t n, const double* run_weights, size_t run_length);

// FLOPs of attention forward (two GEMMs of 2*d FLOPs per visible score). Non-causal and causal
// with seqlen_q == seqlen_k use the usual convention 4*b*hq*sq*sk*d (halved when causal); causal
// with seqlen_q != seqlen_k counts the visible (i, j) pairs of the bottom-right aligned mask.
double attention_flops(int batch, int heads, int seqlen_q, int seqlen_k, int head_dim, bool causal);

// Throws std::runtime_error naming `what` and the CUDA error when `status` is not cudaSuccess.
void cuda_check(cudaError_t status, const std::string& what);

// Poison byte whose repetition is a NaN in fp16, bf16 and fp32: an element still NaN after a run
// was never written.
constexpr uint8_t kPoisonNaN = 0xFF;

// Device memory of `bytes` payload followed by kGuardBytes guard bytes that a correct kernel never
// touches. Throws std::runtime_error (with the CUDA error string) when a CUDA call fails.
class GuardedDeviceBuffer {
 public:
  static constexpr size_t kGuardBytes = 256;
  static constexpr uint8_t kGuardPattern = 0xA5;

  explicit GuardedDeviceBuffer(size_t bytes);
  ~GuardedDeviceBuffer();
  GuardedDeviceBuffer(GuardedDeviceBuffer&& other) noexcept;
  GuardedDeviceBuffer& operator=(GuardedDeviceBuffer&& other) noexcept;
  GuardedDeviceBuffer(const GuardedDeviceBuffer&) = delete;
  GuardedDeviceBuffer& operator=(const GuardedDeviceBuffer&) = delete;

  void* data() { return data_; }
  const void* data() const { return data_; }
  size_t bytes() const { return bytes_; }

  // Fills the payload with `byte` and the guards with kGuardPattern, and waits for it.
  void poison(uint8_t byte);
  // True when every guard byte still holds kGuardPattern.
  bool guards_intact() const;
  // Copy `bytes` (at most bytes()) from the start of the payload; synchronous.
  void copy_from_host(const void* src, size_t bytes);
  void copy_to_host(void* dst, size_t bytes) const;

 private:
  void release() noexcept;

  void* data_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace flash::host
