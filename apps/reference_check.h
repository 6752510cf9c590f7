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

}  // namespace flash::apps
