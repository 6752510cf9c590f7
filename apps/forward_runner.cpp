#include "forward_runner.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <stdexcept>
#include <thread>
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

// The paged layout of the problem's cache (none without a page size).
host::PagedLayout paged_layout_of(const reference::Problem& problem, const RunLayout& layout) {
  if (layout.page_size <= 0) return {};
  if (reference::is_varlen(problem)) {
    throw std::invalid_argument("ForwardRunner: a paged KV cache takes a dense batch, not cu_seqlens");
  }
  return host::make_paged_layout(problem.batch, problem.seqlen_k, layout.page_size, /*spare_pages=*/0, layout.page_seed);
}

// Elements of k (and v) as uploaded: the problem's layout, or its pages.
size_t kv_storage_elements(const reference::Problem& problem, const host::PagedLayout& pages) {
  if (pages.page_size == 0) return static_cast<size_t>(reference::kv_elements(problem));
  return static_cast<size_t>(pages.num_pages) * pages.page_size * problem.num_heads_k * problem.head_dim;
}

std::vector<uint16_t> kv_storage(const reference::Problem& problem, const host::PagedLayout& pages,
                                 const uint16_t* bits) {
  const std::vector<uint16_t> dense(bits, bits + reference::kv_elements(problem));
  if (pages.page_size == 0) return dense;
  return host::scatter_pages(pages, dense, problem.batch, problem.seqlen_k,
                             int64_t{problem.num_heads_k} * problem.head_dim, 0);
}

// Holds the stream while the host queues the timed launches, so that they run back to back and
// the events time the GPU, not the host's per-call work (which matters for decode-sized calls).
void CUDART_CB hold_stream(void* milliseconds) {
  std::this_thread::sleep_for(std::chrono::milliseconds(*static_cast<const int*>(milliseconds)));
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

double kv_bytes_read(const reference::Problem& p, DataType dtype) {
  double keys = 0.0;
  for (int b = 0; b < p.batch; ++b) keys += reference::seqlen_of_k(p, b);
  return 2.0 * keys * p.num_heads_k * p.head_dim * static_cast<double>(host::element_bytes(dtype));
}

ForwardRunner::ForwardRunner(const reference::Problem& problem, DataType dtype, bool with_lse, const uint16_t* q,
                             const uint16_t* k, const uint16_t* v, int copies, const RunLayout& layout)
    : problem_(problem),
      dtype_(dtype),
      layout_(layout),
      pages_(paged_layout_of(problem, layout)),
      copies_(checked_copies(copies)),
      q_bytes_(apps::q_elements(problem) * host::element_bytes(dtype)),
      kv_bytes_(kv_storage_elements(problem, pages_) * host::element_bytes(dtype)),
      q_stride_(round_up(q_bytes_, kCopyAlignment)),
      kv_stride_(round_up(kv_bytes_, kCopyAlignment)),
      q_(upload_copies(dtype, q, apps::q_elements(problem), q_stride_, copies_)),
      k_(upload_copies(dtype, kv_storage(problem, pages_, k).data(), kv_storage_elements(problem, pages_), kv_stride_,
                       copies_)),
      v_(upload_copies(dtype, kv_storage(problem, pages_, v).data(), kv_storage_elements(problem, pages_), kv_stride_,
                       copies_)),
      out_(apps::q_elements(problem) * host::element_bytes(host::output_dtype(dtype))),
      cu_seqlens_q_(upload_ints(problem.cu_seqlens_q)),
      cu_seqlens_k_(upload_ints(problem.cu_seqlens_k)),
      seqused_k_(upload_ints(problem.seqused_k)),
      page_table_(upload_ints(std::vector<int>(pages_.page_table.begin(), pages_.page_table.end()))) {
  if (with_lse) lse_.emplace(static_cast<size_t>(reference::lse_elements(problem)) * sizeof(float));
  // The workspace the library asks for; a rejected query leaves none, and the launch then reports
  // the same rejection.
  if (flash_attention_workspace_size(params_for_copy(0), &workspace_bytes_) == kSuccess && workspace_bytes_ > 0) {
    workspace_.emplace(workspace_bytes_);
  }
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
  if (page_table_) {
    params.page_table = int_pointer(page_table_);
    params.page_table_stride = pages_.pages_per_entry;
    params.page_size = pages_.page_size;
    params.num_pages = pages_.num_pages;
  }
  params.num_splits = layout_.num_splits;
  if (workspace_) {
    params.workspace = workspace_->data();
    params.workspace_bytes = workspace_->bytes();
  }
  return params;
}

bool ForwardRunner::last_run_split() const {
  if (!workspace_) return false;
  std::vector<uint8_t> bytes(workspace_->bytes());
  workspace_->copy_to_host(bytes.data(), bytes.size());
  return std::any_of(bytes.begin(), bytes.end(), [](uint8_t byte) { return byte != host::kPoisonNaN; });
}

int ForwardRunner::run_once(cudaStream_t stream) {
  out_.poison(host::kPoisonNaN);
  if (lse_) lse_->poison(host::kPoisonNaN);
  if (workspace_) workspace_->poison(host::kPoisonNaN);
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
  for (const auto* buffer : {&lse_, &cu_seqlens_q_, &cu_seqlens_k_, &seqused_k_, &page_table_, &workspace_}) {
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
  // Everything is enqueued behind a host callback that holds the stream (a generous 0.5 ms per
  // launch, at least 20 ms) before waiting, so each launch queues behind the previous one and the
  // events measure the kernels, not the host's launch latency.
  constexpr int kMinHoldMs = 20;
  hold_ms_ = std::max(kMinHoldMs, (warmup + iters) / 2);
  host::cuda_check(cudaLaunchHostFunc(stream, hold_stream, &hold_ms_), "cudaLaunchHostFunc (hold the stream)");
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
