#include "forward_runner.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>

namespace flash::apps {
namespace {

constexpr int kSm90Major = 9;
constexpr int kSm90Minor = 0;
// cudaMalloc's own alignment, so that every input copy is as aligned as the first (the library
// asks for 16 bytes; TMA works best from 128).
constexpr size_t kCopyAlignment = 256;

size_t round_up(size_t value, size_t multiple) { return (value + multiple - 1) / multiple * multiple; }

// An int32 device copy of `values` (cu_seqlens, seqused_k), with guard bytes; none when empty.
std::optional<host::GuardedDeviceBuffer> upload_ints(const std::vector<int>& values) {
  if (values.empty()) return std::nullopt;
  const std::vector<int32_t> ints(values.begin(), values.end());
  std::optional<host::GuardedDeviceBuffer> buffer(std::in_place, ints.size() * sizeof(int32_t));
  buffer->poison(0);
  buffer->copy_from_host(ints.data(), ints.size() * sizeof(int32_t));
  return buffer;
}

const int32_t* int_pointer(const std::optional<host::GuardedDeviceBuffer>& buffer) {
  return buffer ? static_cast<const int32_t*>(buffer->data()) : nullptr;
}

class CudaEvent {
 public:
  CudaEvent() { host::cuda_check(cudaEventCreate(&event_), "cudaEventCreate"); }
  ~CudaEvent() {
    if (event_) cudaEventDestroy(event_);
  }
  CudaEvent(const CudaEvent&) = delete;
  CudaEvent& operator=(const CudaEvent&) = delete;
  cudaEvent_t get() const { return event_; }

 private:
  cudaEvent_t event_ = nullptr;
};

// `copies` copies of the n elements at `bits`, `stride` bytes apart, in one guarded allocation.
host::GuardedDeviceBuffer upload_copies(DataType dtype, const uint16_t* bits, size_t n, size_t stride, int copies) {
  const std::vector<uint8_t> bytes = host::storage_bytes(dtype, bits, n);
  host::GuardedDeviceBuffer buffer(stride * static_cast<size_t>(copies));
  buffer.poison(0);  // sets the guard pattern; the padding between copies is never read
  buffer.copy_from_host(bytes.data(), bytes.size());
  // Doubling device-to-device copies: log2(copies) calls instead of one upload per copy.
  auto* base = static_cast<uint8_t*>(buffer.data());
  for (int done = 1; done < copies; done *= 2) {
    const int count = std::min(done, copies - done);
    host::cuda_check(cudaMemcpy(base + stride * done, base, stride * count, cudaMemcpyDeviceToDevice),
                     "cudaMemcpy (replicate inputs)");
  }
  // A device-to-device cudaMemcpy may return before it finishes.
  host::cuda_check(cudaDeviceSynchronize(), "cudaDeviceSynchronize after the input upload");
  return buffer;
}

int checked_copies(int copies) {
  if (copies < 1) throw std::invalid_argument("ForwardRunner: copies must be >= 1, got " + std::to_string(copies));
  return copies;
}

double median(std::vector<double> values) {
  const size_t mid = values.size() / 2;
  std::nth_element(values.begin(), values.begin() + mid, values.end());
  if (values.size() % 2 == 1) return values[mid];
  const double upper = values[mid];
  const double lower = *std::max_element(values.begin(), values.begin() + mid);
  return (lower + upper) / 2.0;
}

}  // namespace

bool find_sm90_device(DeviceInfo* info, std::string* reason) {
  int count = 0;
  const cudaError_t count_status = cudaGetDeviceCount(&count);
  if (count_status != cudaSuccess) {
    *reason = std::string("no usable CUDA device (cudaGetDeviceCount: ") + cudaGetErrorString(count_status) + ")";
    return false;
  }
  if (count == 0) {
    *reason = "no CUDA device visible";
    return false;
  }
  int id = 0;
  cudaDeviceProp prop{};
  int l2_bytes = 0;
  cudaError_t status = cudaGetDevice(&id);
  if (status == cudaSuccess) status = cudaGetDeviceProperties(&prop, id);
  if (status == cudaSuccess) status = cudaDeviceGetAttribute(&l2_bytes, cudaDevAttrL2CacheSize, id);
  if (status != cudaSuccess) {
    *reason = std::string("cannot query the CUDA device: ") + cudaGetErrorString(status);
    return false;
  }
  if (prop.major != kSm90Major || prop.minor != kSm90Minor) {
    *reason = "device " + std::to_string(id) + " (" + prop.name + ") has compute capability " +
              std::to_string(prop.major) + "." + std::to_string(prop.minor) +
              "; the kernels need SM90 (compute capability 9.0: H100, H200)";
    return false;
  }
  info->id = id;
  info->name = prop.name;
  info->cc_major = prop.major;
  info->cc_minor = prop.minor;
  info->sm_count = prop.multiProcessorCount;
  info->l2_bytes = static_cast<size_t>(l2_bytes);
  return true;
}

int rotation_copies(size_t input_bytes, size_t l2_bytes, int launches) {
  const size_t span = kL2SpanFactor * l2_bytes;
  const size_t needed = input_bytes == 0 ? 1 : (span + input_bytes - 1) / input_bytes;
  return static_cast<int>(std::clamp<size_t>(needed, 1, static_cast<size_t>(std::max(launches, 1))));
}

// (Calls in this namespace say apps:: or reference::: both names take a Problem, so plain calls
// would be ambiguous through argument-dependent lookup.)
size_t q_elements(const reference::Problem& p) { return static_cast<size_t>(reference::q_elements(p)); }

size_t kv_elements(const reference::Problem& p) { return static_cast<size_t>(reference::kv_elements(p)); }

size_t input_bytes(const reference::Problem& problem, DataType dtype) {
  return (apps::q_elements(problem) + 2 * apps::kv_elements(problem)) * host::element_bytes(dtype);
}

double attention_flops(const reference::Problem& p) {
  const bool window = p.window_left >= 0 || (!p.is_causal && p.window_right >= 0);
  constexpr double kFlopsPerScorePerDim = 4.0;   // 2 for Q K^T and 2 for P V
  double flops = 0.0;
  for (int b = 0; b < p.batch; ++b) {
    const int len_q = reference::seqlen_of_q(p, b);
    if (!window) {
      flops += host::attention_flops(1, p.num_heads, len_q, reference::seqlen_of_k(p, b), p.head_dim, p.is_causal);
      continue;
    }
    double visible = 0.0;
    for (int i = 0; i < len_q; ++i) visible += reference::visible_keys(p, b, i).count();
    flops += kFlopsPerScorePerDim * p.head_dim * p.num_heads * visible;
  }
  return flops;
}

ForwardRunner::ForwardRunner(const reference::Problem& problem, DataType dtype, bool with_lse, const uint16_t* q,
                             const uint16_t* k, const uint16_t* v, int copies)
    : problem_(problem),
      dtype_(dtype),
      copies_(checked_copies(copies)),
      q_bytes_(apps::q_elements(problem) * host::element_bytes(dtype)),
      kv_bytes_(apps::kv_elements(problem) * host::element_bytes(dtype)),
      q_stride_(round_up(q_bytes_, kCopyAlignment)),
      kv_stride_(round_up(kv_bytes_, kCopyAlignment)),
      q_(upload_copies(dtype, q, apps::q_elements(problem), q_stride_, copies_)),
      k_(upload_copies(dtype, k, apps::kv_elements(problem), kv_stride_, copies_)),
      v_(upload_copies(dtype, v, apps::kv_elements(problem), kv_stride_, copies_)),
      out_(apps::q_elements(problem) * host::element_bytes(host::output_dtype(dtype))),
      cu_seqlens_q_(upload_ints(problem.cu_seqlens_q)),
      cu_seqlens_k_(upload_ints(problem.cu_seqlens_k)),
      seqused_k_(upload_ints(problem.seqused_k)) {
  if (with_lse) lse_.emplace(static_cast<size_t>(reference::lse_elements(problem)) * sizeof(float));
}

FlashAttentionParams ForwardRunner::params_for_copy(int copy) {
  FlashAttentionParams params;
  params.q = static_cast<const uint8_t*>(q_.data()) + q_stride_ * copy;
  params.k = static_cast<const uint8_t*>(k_.data()) + kv_stride_ * copy;
  params.v = static_cast<const uint8_t*>(v_.data()) + kv_stride_ * copy;
  params.out = out_.data();
  params.softmax_lse = lse_ ? static_cast<float*>(lse_->data()) : nullptr;
  params.batch_size = problem_.batch;
  params.seqlen_q = problem_.seqlen_q;
  params.seqlen_k = problem_.seqlen_k;
  params.num_heads = problem_.num_heads;
  params.num_heads_k = problem_.num_heads_k;
  params.head_dim = problem_.head_dim;
  params.dtype = dtype_;
  params.is_causal = problem_.is_causal;
  params.softmax_scale = static_cast<float>(problem_.softmax_scale);
  params.window_size_left = problem_.window_left;
  params.window_size_right = problem_.window_right;
  params.softcap = static_cast<float>(problem_.softcap);
  // Packed variable-length tensors: the batch strides stay 0 (no batch dimension), seqlen_q/k are
  // the longest lengths and total_q/k the packed row counts.
  params.cu_seqlens_q = int_pointer(cu_seqlens_q_);
  params.cu_seqlens_k = int_pointer(cu_seqlens_k_);
  if (reference::is_varlen(problem_)) {
    params.total_q = static_cast<int>(reference::total_q(problem_));
    params.total_k = static_cast<int>(reference::total_k(problem_));
  }
  params.seqused_k = int_pointer(seqused_k_);
  return params;
}

int ForwardRunner::run_once(cudaStream_t stream) {
  out_.poison(host::kPoisonNaN);
  if (lse_) lse_->poison(host::kPoisonNaN);
  const int status = flash_attention_forward(params_for_copy(0), stream);
  if (status != kSuccess) return status;
  // Kernel faults surface here, as a CUDA error rather than a library status.
  host::cuda_check(cudaStreamSynchronize(stream), "cudaStreamSynchronize after the first run");
  return status;
}

WriteCheck ForwardRunner::read_outputs(std::vector<uint16_t>* out, std::vector<float>* lse) const {
  WriteCheck check;
  out->resize(apps::q_elements(problem_));
  out_.copy_to_host(out->data(), out_.bytes());
  const DataType out_type = host::output_dtype(dtype_);
  for (const uint16_t bits : *out) {
    if (!std::isfinite(host::decode(out_type, bits))) ++check.out_nonfinite;
  }
  if (lse_) {
    std::vector<float> unused;
    std::vector<float>* dst = lse ? lse : &unused;
    dst->resize(static_cast<size_t>(reference::lse_elements(problem_)));
    lse_->copy_to_host(dst->data(), lse_->bytes());
    check.lse_nan = std::count_if(dst->begin(), dst->end(), [](float x) { return std::isnan(x); });
  }
  check.guards_intact = guards_intact();
  return check;
}

bool ForwardRunner::guards_intact() const {
  for (const auto* buffer : {&lse_, &cu_seqlens_q_, &cu_seqlens_k_, &seqused_k_}) {
    if (*buffer && !(*buffer)->guards_intact()) return false;
  }
  return q_.guards_intact() && k_.guards_intact() && v_.guards_intact() && out_.guards_intact();
}

int ForwardRunner::time(int warmup, int iters, cudaStream_t stream, double* median_ms) {
  if (iters < 1 || warmup < 0) {
    throw std::invalid_argument("ForwardRunner::time: need iters >= 1 and warmup >= 0, got " +
                                std::to_string(iters) + " and " + std::to_string(warmup));
  }
  std::vector<CudaEvent> starts(iters);
  std::vector<CudaEvent> stops(iters);
  // Everything is enqueued before waiting, so each launch queues behind the previous one and the
  // events measure the kernels, not the host's launch latency.
  for (int i = 0; i < warmup + iters; ++i) {
    const int timed = i - warmup;
    if (timed >= 0) host::cuda_check(cudaEventRecord(starts[timed].get(), stream), "cudaEventRecord");
    const int status = flash_attention_forward(params_for_copy(i % copies_), stream);
    if (status != kSuccess) return status;
    if (timed >= 0) host::cuda_check(cudaEventRecord(stops[timed].get(), stream), "cudaEventRecord");
  }
  host::cuda_check(cudaEventSynchronize(stops.back().get()), "cudaEventSynchronize after the timed launches");
  std::vector<double> times(iters);
  for (int i = 0; i < iters; ++i) {
    float ms = 0.0f;
    host::cuda_check(cudaEventElapsedTime(&ms, starts[i].get(), stops[i].get()), "cudaEventElapsedTime");
    times[i] = ms;
  }
  *median_ms = median(std::move(times));
  return kSuccess;
}

}  // namespace flash::apps
