// Compares GPU attention output with the CPU double-precision reference: every row, or a sample of
// rows through attention_row when the problem is too large to recompute on the host.
#pragma once

#include <cstdint>
#include <vector>

#include "flash_api.h"
#include "host/host_tensor.h"
#include "reference/attention_ref.h"

namespace flash::apps {

// Relative L2 bound of the output per input dtype. The inputs are the same quantised values on
// both sides, so the error comes from the kernel rounding P to 16 (or 8) bits and the output to
// its dtype; each bound leaves several times FlashAttention-3's own error on such inputs.
double output_tolerance(DataType input);
// The LSE is fp32 and built from fp32 row sums before any rounding to 16 bits.
constexpr double kLseTolerance = 1e-4;

struct RowIndex {
  int batch;
  int head;
  int row;   // within batch entry `batch`'s sequence
};

// `count` query rows (at most all of them): the first and the last row; with variable lengths the
// last row of each non-empty sequence (while count allows); then uniformly random ones.
std::vector<RowIndex> sample_rows(const reference::Problem& problem, int count, uint64_t seed);

// Rows for an estimate of the whole output's relative L2 error, the figure that peers report over
// every element. A row that sees n keys averages n values, so its output's norm is about 1/sqrt(n)
// of theirs: the first rows of a causal sequence hold much of the output's norm (row 0 of a
// 16k-token head about a tenth), and a sample of uniform rows either misses them (a noisy
// estimate) or, with the first row forced in, is dominated by them (an estimate biased towards
// their small error: row 0 copies one value). Here rows are drawn independently (with repeats)
// with probability proportional to 1 / max(1, keys seen) and each is weighted by max(1, keys
// seen), the inverse of its probability up to a constant: both sums of the ratio are then
// estimated without bias, and most draws fall where the norm is. Without a mask every row has the
// same weight and the draw is uniform. When count covers every row, every row once, weight 1.
struct RowSample {
  std::vector<RowIndex> rows;
  std::vector<double> weights;   // one per row
};
RowSample sample_rows_for_error(const reference::Problem& problem, int count, uint64_t seed);

// Decoded inputs in the problem's layout: contiguous [batch, seqlen, heads, head_dim], or packed
// [total, heads, head_dim] with variable lengths.
struct HostInputs {
  const double* q;
  const double* k;
  const double* v;
};

// Outputs read back from the GPU in the same layout: out as output_dtype(input) elements; lse
// ([batch, heads, seqlen_q], or [heads, total_q] with variable lengths) null when not requested.
struct DeviceOutputs {
  const uint16_t* out;
  const float* lse;
};

struct ReferenceCheck {
  int64_t rows = 0;          // query rows compared
  host::ErrorStats out;
  bool has_lse = false;
  host::ErrorStats lse;
  double tolerance = 0.0;    // output_tolerance of the dtype
  bool passed() const;
};

ReferenceCheck check_all_rows(const reference::Problem& problem, DataType dtype, const HostInputs& inputs,
                              const DeviceOutputs& outputs);
ReferenceCheck check_rows(const reference::Problem& problem, DataType dtype, const HostInputs& inputs,
                          const DeviceOutputs& outputs, const std::vector<RowIndex>& rows);
// The rows of a RowSample, the output's rel_l2 weighted by its weights (the LSE's unweighted).
ReferenceCheck check_rows(const reference::Problem& problem, DataType dtype, const HostInputs& inputs,
                          const DeviceOutputs& outputs, const RowSample& sample);

}  // namespace flash::apps
