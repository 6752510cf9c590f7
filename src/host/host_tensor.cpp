#include "host/host_tensor.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <utility>

#include "host/half_convert.h"

namespace flash::host {
namespace {

// e4m3 ("fn" variant): 1 sign, 4 exponent (bias 7), 3 mantissa bits; no infinity, one NaN per sign.
constexpr int kE4m3MantBits = 3;
constexpr int kE4m3ExpBias = 7;
constexpr int kE4m3MinNormalExp = 1 - kE4m3ExpBias;
constexpr uint16_t kE4m3SignBit = 0x80;
constexpr uint16_t kE4m3ExpField = 0x0F;
constexpr uint16_t kE4m3MantField = 0x07;
constexpr uint16_t kE4m3NaN = 0x7F;
constexpr uint16_t kE4m3MaxFinite = 0x7E;
constexpr double kE4m3MaxValue = 448.0;
constexpr uint16_t kE4m3ImplicitOne = 1u << kE4m3MantBits;
constexpr uint16_t kByteMask = 0xFF;

uint16_t float_to_e4m3_bits(float value) {
  const uint16_t sign = std::signbit(value) ? kE4m3SignBit : 0;
  if (std::isnan(value)) return sign | kE4m3NaN;
  const double magnitude = std::fabs(static_cast<double>(value));
  // Saturating conversion, as the hardware's satfinite mode: e4m3 has no infinity.
  if (magnitude >= kE4m3MaxValue) return sign | kE4m3MaxFinite;

  int frexp_exp = 0;
  std::frexp(magnitude, &frexp_exp);
  // frexp gives magnitude = m * 2^frexp_exp with m in [0.5, 1); subnormals share the lowest exponent.
  int exponent = std::max(frexp_exp - 1, kE4m3MinNormalExp);
  // Mantissa in units of the last bit (8..15 for normals, 0..7 for subnormals); the scaling by a
  // power of two is exact and nearbyint rounds ties to even.
  auto units = static_cast<uint16_t>(std::nearbyint(std::ldexp(magnitude, kE4m3MantBits - exponent)));
  if (units == 2 * kE4m3ImplicitOne) {
    units = kE4m3ImplicitOne;
    ++exponent;
  }
  if (units < kE4m3ImplicitOne) return sign | units;
  const auto biased = static_cast<uint16_t>(exponent + kE4m3ExpBias);
  return sign | static_cast<uint16_t>(biased << kE4m3MantBits) | (units - kE4m3ImplicitOne);
}

double e4m3_bits_to_double(uint16_t bits) {
  const double sign = (bits & kE4m3SignBit) ? -1.0 : 1.0;
  const int biased = (bits >> kE4m3MantBits) & kE4m3ExpField;
  const int mantissa = bits & kE4m3MantField;
  if ((bits & ~kE4m3SignBit & kByteMask) == kE4m3NaN) return std::numeric_limits<double>::quiet_NaN();
  if (biased == 0) return sign * std::ldexp(mantissa, kE4m3MinNormalExp - kE4m3MantBits);
  return sign * std::ldexp(kE4m3ImplicitOne + mantissa, biased - kE4m3ExpBias - kE4m3MantBits);
}

// splitmix64 (Steele, Lea, Flood 2014): tiny, fast, and every seed gives a good stream.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in (0, 1]: the top 53 bits, shifted by one unit so that log() never sees 0.
  double next_unit_open_below() {
    constexpr int kDoubleMantBits = 53;
    constexpr int kDroppedBits = 64 - kDoubleMantBits;
    return std::ldexp(static_cast<double>((next() >> kDroppedBits) + 1), -kDoubleMantBits);
  }

 private:
  uint64_t state_;
};

}  // namespace

size_t element_bytes(DataType dtype) { return dtype == DataType::FP8_E4M3 ? 1 : 2; }

const char* dtype_name(DataType dtype) {
  switch (dtype) {
    case DataType::FP16: return "fp16";
    case DataType::BF16: return "bf16";
    case DataType::FP8_E4M3: return "e4m3";
    case DataType::AUTO: break;
  }
  return "unknown";
}

bool parse_dtype(const std::string& name, DataType* dtype) {
  if (name == "fp16") {
    *dtype = DataType::FP16;
  } else if (name == "bf16") {
    *dtype = DataType::BF16;
  } else if (name == "fp8" || name == "e4m3") {
    *dtype = DataType::FP8_E4M3;
  } else {
    return false;
  }
  return true;
}

DataType output_dtype(DataType input) { return input == DataType::FP8_E4M3 ? DataType::BF16 : input; }

double decode(DataType dtype, uint16_t bits) {
  switch (dtype) {
    case DataType::FP16: return fp16_bits_to_float(bits);
    case DataType::BF16: return bf16_bits_to_float(bits);
    case DataType::FP8_E4M3: return e4m3_bits_to_double(bits & kByteMask);
    case DataType::AUTO: break;
  }
  throw std::invalid_argument("decode: unknown dtype");
}

uint16_t encode(DataType dtype, double value) {
  const auto narrowed = static_cast<float>(value);
  switch (dtype) {
    case DataType::FP16: return float_to_fp16_bits(narrowed);
    case DataType::BF16: return float_to_bf16_bits(narrowed);
    case DataType::FP8_E4M3: return float_to_e4m3_bits(narrowed);
    case DataType::AUTO: break;
  }
  throw std::invalid_argument("encode: unknown dtype");
}

void fill_random(DataType dtype, size_t n, uint64_t seed, std::vector<uint16_t>* bits,
                 std::vector<double>* values) {
  constexpr double kTwoPi = 6.283185307179586476925286766559;
  SplitMix64 rng(seed);
  bits->resize(n);
  if (values) values->resize(n);
  // Box-Muller turns two uniforms into two independent standard normals.
  for (size_t i = 0; i < n; i += 2) {
    const double radius = std::sqrt(-2.0 * std::log(rng.next_unit_open_below()));
    const double angle = kTwoPi * rng.next_unit_open_below();
    const double normals[2] = {radius * std::cos(angle), radius * std::sin(angle)};
    for (size_t j = 0; j < 2 && i + j < n; ++j) {
      const uint16_t stored = encode(dtype, normals[j]);
      (*bits)[i + j] = stored;
      if (values) (*values)[i + j] = decode(dtype, stored);
    }
  }
}

std::vector<uint8_t> storage_bytes(DataType dtype, const uint16_t* bits, size_t n) {
  const size_t width = element_bytes(dtype);
  std::vector<uint8_t> bytes(n * width);
  for (size_t i = 0; i < n; ++i) {
    // Little-endian, as the device stores multi-byte elements.
    for (size_t b = 0; b < width; ++b) bytes[i * width + b] = static_cast<uint8_t>(bits[i] >> (8 * b));
  }
  return bytes;
}

ErrorStats compare(const double* ref, const double* got, size_t n) { return compare(ref, got, n, nullptr, 1); }

ErrorStats compare(const double* ref, const double* got, size_t n, const double* run_weights, size_t run_length) {
  if (run_weights && run_length == 0) throw std::invalid_argument("compare: run_length 0 with weights");
  constexpr double kInf = std::numeric_limits<double>::infinity();
  ErrorStats stats;
  stats.count = static_cast<int64_t>(n);
  double diff_sq = 0.0;
  double ref_sq = 0.0;
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(ref[i])) {
      if (got[i] == ref[i]) continue;
      if (!std::isfinite(got[i])) ++stats.nonfinite;
      diff_sq = kInf;
      stats.max_abs = kInf;
      continue;
    }
    if (!std::isfinite(got[i])) {
      ++stats.nonfinite;
      continue;
    }
    const double diff = got[i] - ref[i];
    const double weight = run_weights ? run_weights[i / run_length] : 1.0;
    diff_sq += weight * diff * diff;
    ref_sq += weight * ref[i] * ref[i];
    stats.max_abs = std::max(stats.max_abs, std::fabs(diff));
  }
  if (ref_sq > 0.0) {
    stats.rel_l2 = std::sqrt(diff_sq / ref_sq);
  } else {
    // An all-zero reference: any difference at all is an infinite relative error.
    stats.rel_l2 = diff_sq > 0.0 ? kInf : 0.0;
  }
  return stats;
}

double attention_flops(int batch, int heads, int seqlen_q, int seqlen_k, int head_dim, bool causal) {
  // Per visible score: 2*d for Q K^T and 2*d for P V.
  const double flops_per_score = 4.0 * head_dim * static_cast<double>(batch) * heads;
  if (!causal) return flops_per_score * seqlen_q * static_cast<double>(seqlen_k);
  if (seqlen_q == seqlen_k) return flops_per_score * seqlen_q * static_cast<double>(seqlen_k) / 2.0;
  // Bottom-right alignment: query i sees keys 0 .. i + seqlen_k - seqlen_q (clamped to the keys).
  double visible = 0.0;
  const int64_t offset = static_cast<int64_t>(seqlen_k) - seqlen_q;
  for (int64_t i = 0; i < seqlen_q; ++i) {
    visible += static_cast<double>(std::clamp<int64_t>(i + offset + 1, 0, seqlen_k));
  }
  return flops_per_score * visible;
}

void cuda_check(cudaError_t status, const std::string& what) {
  if (status != cudaSuccess) {
    throw std::runtime_error(what + ": " + cudaGetErrorName(status) + " (" + cudaGetErrorString(status) + ")");
  }
}

GuardedDeviceBuffer::GuardedDeviceBuffer(size_t bytes) : bytes_(bytes) {
  cuda_check(cudaMalloc(&data_, bytes + kGuardBytes),
             "cudaMalloc of " + std::to_string(bytes + kGuardBytes) + " bytes");
}

GuardedDeviceBuffer::~GuardedDeviceBuffer() { release(); }

GuardedDeviceBuffer::GuardedDeviceBuffer(GuardedDeviceBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}

GuardedDeviceBuffer& GuardedDeviceBuffer::operator=(GuardedDeviceBuffer&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

void GuardedDeviceBuffer::release() noexcept {
  // A destructor cannot report a failed cudaFree; the error stays visible to cudaGetLastError.
  if (data_) cudaFree(data_);
  data_ = nullptr;
}

void GuardedDeviceBuffer::poison(uint8_t byte) {
  auto* base = static_cast<uint8_t*>(data_);
  cuda_check(cudaMemset(base, byte, bytes_), "cudaMemset (poison payload)");
  cuda_check(cudaMemset(base + bytes_, kGuardPattern, kGuardBytes), "cudaMemset (guard bytes)");
  // cudaMemset may return before it runs; a kernel on another stream must see the poison.
  cuda_check(cudaDeviceSynchronize(), "cudaDeviceSynchronize after poison");
}

bool GuardedDeviceBuffer::guards_intact() const {
  uint8_t guards[kGuardBytes];
  cuda_check(cudaMemcpy(guards, static_cast<const uint8_t*>(data_) + bytes_, kGuardBytes, cudaMemcpyDeviceToHost),
             "cudaMemcpy (read guard bytes)");
  return std::all_of(guards, guards + kGuardBytes, [](uint8_t b) { return b == kGuardPattern; });
}

void GuardedDeviceBuffer::copy_from_host(const void* src, size_t bytes) {
  if (bytes > bytes_) {
    throw std::invalid_argument("copy_from_host: " + std::to_string(bytes) + " bytes into a buffer of " +
                                std::to_string(bytes_));
  }
  cuda_check(cudaMemcpy(data_, src, bytes, cudaMemcpyHostToDevice), "cudaMemcpy host to device");
}

void GuardedDeviceBuffer::copy_to_host(void* dst, size_t bytes) const {
  if (bytes > bytes_) {
    throw std::invalid_argument("copy_to_host: " + std::to_string(bytes) + " bytes from a buffer of " +
                                std::to_string(bytes_));
  }
  cuda_check(cudaMemcpy(dst, data_, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy device to host");
}

}  // namespace flash::host
