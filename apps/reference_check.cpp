#include "reference_check.h"

#include <random>
#include <stdexcept>

namespace flash::apps {
namespace {

constexpr double kFp16Tolerance = 2e-3;   // FA3: ~2.8e-4 against fp32
constexpr double kBf16Tolerance = 1e-2;   // FA3: ~2.2e-3 against fp32
constexpr double kE4m3Tolerance = 5e-2;   // FA3: ~2.5e-2 against fp32

RowIndex row_from_flat(const reference::Problem& p, int64_t flat) {
  const int64_t rows_per_batch = static_cast<int64_t>(p.num_heads) * p.seqlen_q;
  return {static_cast<int>(flat / rows_per_batch), static_cast<int>(flat / p.seqlen_q % p.num_heads),
          static_cast<int>(flat % p.seqlen_q)};
}

// Element offset of (b, i, h, 0) in a contiguous [batch, seqlen_q, heads, head_dim] output.
size_t out_offset(const reference::Problem& p, const RowIndex& r) {
  return ((static_cast<size_t>(r.batch) * p.seqlen_q + r.row) * p.num_heads + r.head) * p.head_dim;
}

// Offset in the [batch, heads, seqlen_q] LSE.
size_t lse_offset(const reference::Problem& p, const RowIndex& r) {
  return (static_cast<size_t>(r.batch) * p.num_heads + r.head) * p.seqlen_q + r.row;
}

}  // namespace

double output_tolerance(DataType input) {
  switch (input) {
    case DataType::FP16: return kFp16Tolerance;
    case DataType::BF16: return kBf16Tolerance;
    case DataType::FP8_E4M3: return kE4m3Tolerance;
  }
  throw std::invalid_argument("output_tolerance: unknown dtype");
}

bool ReferenceCheck::passed() const {
  const bool out_ok = out.nonfinite == 0 && out.rel_l2 <= tolerance;
  const bool lse_ok = !has_lse || (lse.nonfinite == 0 && lse.rel_l2 <= kLseTolerance);
  return out_ok && lse_ok;
}

std::vector<RowIndex> sample_rows(const reference::Problem& problem, int count, uint64_t seed) {
  const int64_t total = static_cast<int64_t>(problem.batch) * problem.num_heads * problem.seqlen_q;
  std::vector<RowIndex> rows;
  if (count >= total) {
    for (int64_t flat = 0; flat < total; ++flat) rows.push_back(row_from_flat(problem, flat));
    return rows;
  }
  if (count >= 1) rows.push_back(row_from_flat(problem, 0));
  if (count >= 2) rows.push_back(row_from_flat(problem, total - 1));
  // mt19937_64's output sequence is fixed by the standard, so the sample is the same everywhere;
  // the modulo bias is below 2^-30 for any realistic row count.
  std::mt19937_64 rng(seed);
  while (static_cast<int64_t>(rows.size()) < count) {
    rows.push_back(row_from_flat(problem, static_cast<int64_t>(rng() % static_cast<uint64_t>(total))));
  }
  return rows;
}

ReferenceCheck check_all_rows(const reference::Problem& problem, DataType dtype, const HostInputs& inputs,
                              const DeviceOutputs& outputs) {
  const size_t rows = static_cast<size_t>(problem.batch) * problem.num_heads * problem.seqlen_q;
  const size_t n_out = rows * problem.head_dim;
  std::vector<double> ref_out(n_out);
  std::vector<double> ref_lse(outputs.lse ? rows : 0);
  reference::attention_forward(problem, inputs.q, inputs.k, inputs.v, ref_out.data(),
                               outputs.lse ? ref_lse.data() : nullptr);

  const DataType out_type = host::output_dtype(dtype);
  std::vector<double> got_out(n_out);
  for (size_t i = 0; i < n_out; ++i) got_out[i] = host::decode(out_type, outputs.out[i]);

  ReferenceCheck check;
  check.rows = static_cast<int64_t>(rows);
  check.tolerance = output_tolerance(dtype);
  check.out = host::compare(ref_out.data(), got_out.data(), n_out);
  if (outputs.lse) {
    const std::vector<double> got_lse(outputs.lse, outputs.lse + rows);
    check.has_lse = true;
    check.lse = host::compare(ref_lse.data(), got_lse.data(), rows);
  }
  return check;
}

ReferenceCheck check_rows(const reference::Problem& problem, DataType dtype, const HostInputs& inputs,
                          const DeviceOutputs& outputs, const std::vector<RowIndex>& rows) {
  const size_t d = static_cast<size_t>(problem.head_dim);
  const DataType out_type = host::output_dtype(dtype);
  std::vector<double> ref_out(rows.size() * d);
  std::vector<double> got_out(rows.size() * d);
  std::vector<double> ref_lse(rows.size());
  std::vector<double> got_lse(rows.size());
  for (size_t r = 0; r < rows.size(); ++r) {
    const RowIndex& row = rows[r];
    ref_lse[r] = reference::attention_row(problem, inputs.q, inputs.k, inputs.v, row.batch, row.head, row.row,
                                          ref_out.data() + r * d);
    const uint16_t* got = outputs.out + out_offset(problem, row);
    for (size_t c = 0; c < d; ++c) got_out[r * d + c] = host::decode(out_type, got[c]);
    if (outputs.lse) got_lse[r] = outputs.lse[lse_offset(problem, row)];
  }

  ReferenceCheck check;
  check.rows = static_cast<int64_t>(rows.size());
  check.tolerance = output_tolerance(dtype);
  check.out = host::compare(ref_out.data(), got_out.data(), ref_out.size());
  if (outputs.lse) {
    check.has_lse = true;
    check.lse = host::compare(ref_lse.data(), got_lse.data(), rows.size());
  }
  return check;
}

}  // namespace flash::apps
