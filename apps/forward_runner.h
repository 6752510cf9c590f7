// Runs one attention problem through the public API for the CLI and the benchmark: inputs
// replicated so that timed launches do not find them in L2, outputs poisoned and guarded, and
// CUDA-event timing. Throws std::runtime_error on CUDA runtime failures; library failures come back
// as the library's status code.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>

#include "flash_api.h"
#include "host/host_tensor.h"
#include "host/paged_kv.h"
#include "reference/attention_ref.h"

namespace flash::apps {

struct DeviceInfo {
  int id = 0;
  std::string name;
  int cc_major = 0;
  int cc_minor = 0;
  int sm_count = 0;
  size_t l2_bytes = 0;
};

// Checks that a CUDA device is visible and that the current one is SM90, allocating nothing.
// On failure returns false with a one-line reason.
bool find_sm90_device(DeviceInfo* info, std::string* reason);

// How many copies of inputs of `input_bytes` to rotate through so that a launch does not find its
// inputs left in L2 by the previous ones: enough to span kL2SpanFactor times the L2, but no more
// than there are launches to use them.
constexpr size_t kL2SpanFactor = 4;
int rotation_copies(size_t input_bytes, size_t l2_bytes, int launches);

// Elements of q (and of out), of k (and of v), and bytes of q, k and v together (one copy), in the
// problem's layout (dense, or packed with variable lengths: reference::q_elements and kv_elements).
size_t q_elements(const reference::Problem& problem);
size_t kv_elements(const reference::Problem& problem);
size_t input_bytes(const reference::Problem& problem, DataType dtype);

// FLOPs of the problem: host::attention_flops summed over the batch entries (their lengths after
// seqused_k, the causal convention included), or with a sliding window 4 * head_dim per visible
// (query, key) pair per head.
double attention_flops(const reference::Problem& problem);

// Bytes of K and V the batch entries attend to (each entry's keys after seqused_k, both tensors):
// the floor of what a decode step must read.
double kv_bytes_read(const reference::Problem& problem, DataType dtype);

// What a run left in its outputs: unwritten (still NaN-poisoned) elements and guard bytes.
struct WriteCheck {
  int64_t out_nonfinite = 0;   // NaN or inf in out: never written, or overflowed
  int64_t lse_nan = 0;         // NaN in the LSE: never written (-inf is a valid LSE)
  bool guards_intact = true;   // no byte past any buffer (inputs included) changed
  bool ok() const { return out_nonfinite == 0 && lse_nan == 0 && guards_intact; }
};

// How the runner hands the problem to the library beyond its shape: a paged KV cache and the
// split-KV choice.
struct RunLayout {
  int page_size = 0;        // > 0: k and v go to shuffled pages of this many keys (dense batches only)
  uint64_t page_seed = 1;   // of the page shuffle
  int num_splits = 0;       // FlashAttentionParams::num_splits; a workspace of the size the library
                            // asks for is always passed, so 0 lets it choose
};

class ForwardRunner {
 public:
  // q, k, v: host elements of `dtype` in the problem's layout (contiguous [batch, seqlen, heads,
  // head_dim], or packed [total, heads, head_dim] with variable lengths), uploaded `copies` times
  // (k and v in pages when layout.page_size > 0). The problem's cu_seqlens and seqused_k go to
  // device int32 arrays of their own (once); its window and softcap are passed on. The library gets
  // softmax_scale and softcap as float, so they should be float values for the reference to see
  // the same ones. Throws std::runtime_error also when the library rejects the call's workspace
  // query (its message included).
  ForwardRunner(const reference::Problem& problem, DataType dtype, bool with_lse, const uint16_t* q,
                const uint16_t* k, const uint16_t* v, int copies, const RunLayout& layout = {});

  // Poisons the outputs (NaN) and runs once on the first copy; waits. Returns the library status.
  int run_once(cudaStream_t stream);
  // Reads the outputs back (out as output_dtype(dtype) elements; lse, which may be null, only when
  // the LSE was requested) and reports unwritten elements and guard bytes.
  WriteCheck read_outputs(std::vector<uint16_t>* out, std::vector<float>* lse) const;
  // Launches warmup + iters times, rotating the input copies, and times the last iters one by one
  // with CUDA events; *median_ms gets their median. Returns the first failing library status, or 0.
  int time(int warmup, int iters, cudaStream_t stream, double* median_ms);

  // True when no byte past any buffer (inputs included) has changed.
  bool guards_intact() const;
  int copies() const { return copies_; }
  size_t workspace_bytes() const { return workspace_bytes_; }
  // Whether the last launch split the keys (it wrote the NaN-poisoned workspace); run_once only.
  bool last_run_split() const;

 private:
  FlashAttentionParams params_for_copy(int copy);

  reference::Problem problem_;
  DataType dtype_;
  RunLayout layout_;
  host::PagedLayout pages_;   // page_size > 0
  int copies_;
  size_t q_bytes_;
  size_t kv_bytes_;
  size_t q_stride_;    // bytes between copies, rounded up so every copy stays aligned
  size_t kv_stride_;
  host::GuardedDeviceBuffer q_;
  host::GuardedDeviceBuffer k_;
  host::GuardedDeviceBuffer v_;
  host::GuardedDeviceBuffer out_;
  std::optional<host::GuardedDeviceBuffer> lse_;   // only when the LSE is requested
  // int32 device copies of the problem's cu_seqlens_q/k and seqused_k; only when it has them.
  std::optional<host::GuardedDeviceBuffer> cu_seqlens_q_;
  std::optional<host::GuardedDeviceBuffer> cu_seqlens_k_;
  std::optional<host::GuardedDeviceBuffer> seqused_k_;
  std::optional<host::GuardedDeviceBuffer> page_table_;
  size_t workspace_bytes_ = 0;
  int hold_ms_ = 0;   // how long time() holds the stream while it queues the launches (read by a callback)
  std::optional<host::GuardedDeviceBuffer> workspace_;   // only when the call splits
};

}  // namespace flash::apps
