#include "reference_check.h"

#include <algorithm>
#include <random>
#include <stdexcept>
#include <string>

namespace flash::apps {
namespace {

constexpr double kFp16Tolerance = 2e-3;   // FA3: ~2.8e-4 against fp32
constexpr double kBf16Tolerance = 1e-2;   // FA3: ~2.2e-3 against fp32
constexpr double kE4m3Tolerance = 5e-2;   // FA3: ~2.5e-2 against fp32

// Every query row of the problem numbered in (batch entry, head, row) order; with variable
// lengths the entries own different numbers of rows (empty ones none).
class RowNumbering {
 public:
  explicit RowNumbering(const reference::Problem& p) : problem_(p) {
    first_.push_back(0);
    for (int b = 0; b < p.batch; ++b) {
      first_.push_back(first_.back() + static_cast<int64_t>(p.num_heads) * reference::seqlen_of_q(p, b));
    }
  }
  int64_t count() const { return first_.back(); }
  RowIndex row(int64_t flat) const {
    // The last entry whose block starts at or before `flat`: empty entries are skipped.
    const int b = static_cast<int>(std::upper_bound(first_.begin(), first_.end(), flat) - first_.begin()) - 1;
    const int64_t within = flat - first_[b];
    const int len_q = reference::seqlen_of_q(problem_, b);
    return {b, static_cast<int>(within / len_q), static_cast<int>(within % len_q)};
  }

 private:
  const reference::Problem& problem_;
  std::vector<int64_t> first_;   // batch + 1 offsets
};

}  // namespace

double output_tolerance(DataType input) {
  switch (input) {
    case DataType::FP16: return kFp16Tolerance;
    case DataType::BF16: return kBf16Tolerance;
    case DataType::FP8_E4M3: return kE4m3Tolerance;
    case DataType::AUTO: break;
  }
  throw std::invalid_argument("output_tolerance: unknown dtype");
}

bool ReferenceCheck::passed() const {
  const bool out_ok = out.nonfinite == 0 && out.rel_l2 <= tolerance;
  const bool lse_ok = !has_lse || (lse.nonfinite == 0 && lse.rel_l2 <= kLseTolerance);
  return out_ok && lse_ok;
}

std::vector<RowIndex> sample_rows(const reference::Problem& problem, int count, uint64_t seed) {
  const RowNumbering numbering(problem);
  const int64_t total = numbering.count();
  std::vector<RowIndex> rows;
  if (count >= total) {
    for (int64_t flat = 0; flat < total; ++flat) rows.push_back(numbering.row(flat));
    return rows;
  }
  if (count >= 1) rows.push_back(numbering.row(0));
  if (count >= 2) rows.push_back(numbering.row(total - 1));
  // mt19937_64's output sequence is fixed by the standard, so the sample is the same everywhere;
  // the modulo bias is below 2^-30 for any realistic row count.
  std::mt19937_64 rng(seed);
  const auto random_below = [&rng](int64_t n) { return static_cast<int64_t>(rng() % static_cast<uint64_t>(n)); };
  // Variable lengths: the last row of every non-empty sequence (in a random head), so that each
  // sequence's offsets are checked however short it is.
  if (reference::is_varlen(problem)) {
    for (int b = 0; b < problem.batch && static_cast<int64_t>(rows.size()) < count; ++b) {
      const int len_q = reference::seqlen_of_q(problem, b);
      if (len_q == 0) continue;
      rows.push_back({b, static_cast<int>(random_below(problem.num_heads)), len_q - 1});
    }
  }
  while (static_cast<int64_t>(rows.size()) < count) rows.push_back(numbering.row(random_below(total)));
  return rows;
}

RowSample sample_rows_for_error(const reference::Problem& problem, int count, uint64_t seed) {
  const RowNumbering numbering(problem);
  RowSample sample;
  if (count >= numbering.count()) {
    sample.rows = sample_rows(problem, count, seed);
    sample.weights.assign(sample.rows.size(), 1.0);
    return sample;
  }
  // Cumulative draw probabilities (unnormalised) over the query rows of all entries; a row's
  // probability does not depend on its head.
  struct Slot {
    int batch, row, keys;   // keys: max(1, keys the row sees), its weight
  };
  std::vector<double> cumulative;
  std::vector<Slot> slots;
  double total = 0.0;
  for (int b = 0; b < problem.batch; ++b) {
    const int len_q = reference::seqlen_of_q(problem, b);
    for (int i = 0; i < len_q; ++i) {
      const int keys = std::max(1, reference::visible_keys(problem, b, i).count());
      total += 1.0 / keys;
      cumulative.push_back(total);
      slots.push_back({b, i, keys});
    }
  }
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (int n = 0; n < count && total > 0.0; ++n) {
    const double u = unit(rng) * total;
    const size_t slot = std::min(cumulative.size() - 1,
                                 static_cast<size_t>(std::upper_bound(cumulative.begin(), cumulative.end(), u) -
                                                     cumulative.begin()));
    const Slot& drawn = slots[slot];
    const int head = static_cast<int>(rng() % static_cast<uint64_t>(problem.num_heads));
    sample.rows.push_back({drawn.batch, head, drawn.row});
    sample.weights.push_back(drawn.keys);
  }
  return sample;
}

ReferenceCheck check_all_rows(const reference::Problem& problem, DataType dtype, const HostInputs& inputs,
                              const DeviceOutputs& outputs) {
  // The reference writes the whole problem in the kernel's layout (dense, or packed with variable
  // lengths), so the arrays compare element by element.
  const size_t rows = static_cast<size_t>(reference::lse_elements(problem));
  const size_t n_out = static_cast<size_t>(reference::q_elements(problem));
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

namespace {

// check_rows with an optional weight per row (null: 1 each) in the output's rel_l2.
ReferenceCheck check_weighted_rows(const reference::Problem& problem, DataType dtype, const HostInputs& inputs,
                                   const DeviceOutputs& outputs, const std::vector<RowIndex>& rows,
                                   const double* row_weights) {
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
    const uint16_t* got = outputs.out + reference::q_offset(problem, row.batch, row.row, row.head);
    for (size_t c = 0; c < d; ++c) got_out[r * d + c] = host::decode(out_type, got[c]);
    if (outputs.lse) got_lse[r] = outputs.lse[reference::lse_index(problem, row.batch, row.head, row.row)];
  }

  ReferenceCheck check;
  check.rows = static_cast<int64_t>(rows.size());
  check.tolerance = output_tolerance(dtype);
  check.out = host::compare(ref_out.data(), got_out.data(), ref_out.size(), row_weights, d);
  if (outputs.lse) {
    check.has_lse = true;
    check.lse = host::compare(ref_lse.data(), got_lse.data(), rows.size());
  }
  return check;
}

}  // namespace

ReferenceCheck check_rows(const reference::Problem& problem, DataType dtype, const HostInputs& inputs,
                          const DeviceOutputs& outputs, const std::vector<RowIndex>& rows) {
  return check_weighted_rows(problem, dtype, inputs, outputs, rows, nullptr);
}

ReferenceCheck check_rows(const reference::Problem& problem, DataType dtype, const HostInputs& inputs,
                          const DeviceOutputs& outputs, const RowSample& sample) {
  if (sample.weights.size() != sample.rows.size()) {
    throw std::invalid_argument("check_rows: " + std::to_string(sample.weights.size()) + " weights for " +
                                std::to_string(sample.rows.size()) + " rows");
  }
  return check_weighted_rows(problem, dtype, inputs, outputs, sample.rows, sample.weights.data());
}

}  // namespace flash::apps
