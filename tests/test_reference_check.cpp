// The benchmark's error estimate: rows drawn with probability 1 / keys seen and weighted by keys
// seen estimate the whole output's relative L2 error (the figure peers report), also where the
// rows' norms and errors differ by orders of magnitude (causal).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "host/host_tensor.h"
#include "reference/attention_ref.h"
#include "reference_check.h"

namespace flash::apps {
namespace {

using reference::Problem;

Problem dense(int batch, int heads, int seqlen, int head_dim, bool causal) {
  Problem p;
  p.batch = batch;
  p.seqlen_q = seqlen;
  p.seqlen_k = seqlen;
  p.num_heads = heads;
  p.num_heads_k = heads;
  p.head_dim = head_dim;
  p.is_causal = causal;
  return p;
}

std::vector<double> normals(size_t count, unsigned seed) {
  std::mt19937 generator(seed);
  std::normal_distribution<double> normal;
  std::vector<double> values(count);
  for (double& value : values) value = normal(generator);
  return values;
}

TEST(WeightedCompare, WeightsEachRunOfElements) {
  const double ref[4] = {1.0, 1.0, 1.0, 1.0};
  const double got[4] = {1.0, 2.0, 1.0, 1.5};
  const double weights[2] = {3.0, 1.0};
  const host::ErrorStats stats = host::compare(ref, got, 4, weights, 2);
  // diff^2: 3 * 1 + 1 * 0.25; ref^2: 3 * 2 + 1 * 2.
  EXPECT_DOUBLE_EQ(stats.rel_l2, std::sqrt(3.25 / 8.0));
  EXPECT_DOUBLE_EQ(stats.max_abs, 1.0);
  EXPECT_DOUBLE_EQ(host::compare(ref, got, 4).rel_l2, std::sqrt(1.25 / 4.0));
}

TEST(SampleRowsForError, UniformWithoutMask) {
  const Problem p = dense(2, 3, 50, 8, false);
  const RowSample sample = sample_rows_for_error(p, 200, 7);
  ASSERT_EQ(sample.rows.size(), 200u);
  ASSERT_EQ(sample.weights.size(), 200u);
  std::map<int, int> per_entry, per_head;
  for (size_t r = 0; r < sample.rows.size(); ++r) {
    EXPECT_EQ(sample.weights[r], 50.0);
    const RowIndex& row = sample.rows[r];
    ASSERT_GE(row.row, 0);
    ASSERT_LT(row.row, 50);
    ++per_entry[row.batch];
    ++per_head[row.head];
  }
  EXPECT_EQ(per_entry.size(), 2u);
  EXPECT_EQ(per_head.size(), 3u);
}

TEST(SampleRowsForError, CausalDrawsRowsInverselyToTheirKeys) {
  constexpr int kSeqlen = 64;
  constexpr int kDraws = 40000;
  const Problem p = dense(1, 1000, kSeqlen, 8, true);   // more rows than draws
  const RowSample sample = sample_rows_for_error(p, kDraws, 3);
  ASSERT_EQ(sample.rows.size(), size_t{kDraws});
  std::vector<int> hits(kSeqlen, 0);
  for (size_t r = 0; r < sample.rows.size(); ++r) {
    const int i = sample.rows[r].row;
    EXPECT_EQ(sample.weights[r], i + 1) << "row " << i << " sees " << i + 1 << " keys";
    ++hits[i];
  }
  double harmonic = 0.0;
  for (int i = 0; i < kSeqlen; ++i) harmonic += 1.0 / (i + 1);
  // Row 0: probability 1 / H_64 (0.211), ~8,400 hits, binomial sd ~82; the last half of the rows
  // together: (H_64 - H_32) / H_64 (0.145).
  EXPECT_NEAR(hits[0], kDraws / harmonic, 400.0);
  int last_half = 0;
  double last_half_share = 0.0;
  for (int i = kSeqlen / 2; i < kSeqlen; ++i) {
    last_half += hits[i];
    last_half_share += 1.0 / (i + 1) / harmonic;
  }
  EXPECT_NEAR(last_half, kDraws * last_half_share, 400.0);
}

TEST(SampleRowsForError, VariableLengthsWindowAndEmptyEntry) {
  Problem p;
  p.batch = 3;
  p.num_heads = 4;
  p.num_heads_k = 2;
  p.head_dim = 8;
  p.window_left = 5;
  p.window_right = 2;
  p.cu_seqlens_q = reference::cu_seqlens_of({30, 0, 9});
  p.cu_seqlens_k = reference::cu_seqlens_of({40, 3, 2});
  const RowSample sample = sample_rows_for_error(p, 100, 11);   // of 4 x 39 rows
  ASSERT_EQ(sample.rows.size(), 100u);
  for (size_t r = 0; r < sample.rows.size(); ++r) {
    const RowIndex& row = sample.rows[r];
    ASSERT_NE(row.batch, 1) << "the empty entry has no row";
    ASSERT_LT(row.row, reference::seqlen_of_q(p, row.batch));
    ASSERT_LT(row.head, 4);
    const int keys = reference::visible_keys(p, row.batch, row.row).count();
    EXPECT_EQ(sample.weights[r], std::max(1, keys));
  }
}

TEST(SampleRowsForError, EveryRowOnceWhenCountCoversThem) {
  const Problem p = dense(1, 2, 5, 8, true);
  const RowSample sample = sample_rows_for_error(p, 10, 1);
  ASSERT_EQ(sample.rows.size(), 10u);
  for (double w : sample.weights) EXPECT_EQ(w, 1.0);
}

// A causal output whose rows carry errors that grow along the sequence (row 0 none), as a
// kernel's do (a row with one key copies one value): the weighted sample's rel_l2 is close to the
// whole output's.
TEST(SampleRowsForError, EstimatesTheWholeOutputsError) {
  Problem p = dense(2, 2, 512, 16, true);
  const size_t n_q = size_t(p.batch) * p.seqlen_q * p.num_heads * p.head_dim;
  const std::vector<double> q = normals(n_q, 1), k = normals(n_q, 2), v = normals(n_q, 3);
  std::vector<double> ref(n_q);
  reference::attention_forward(p, q.data(), k.data(), v.data(), ref.data(), nullptr, 1);

  // got = ref * (1 + 0.02 * sqrt(i / seqlen) * noise), rounded to fp16 (the output's bits).
  const std::vector<double> noise = normals(n_q, 4);
  std::vector<uint16_t> got_bits(n_q);
  std::vector<double> got(n_q);
  for (int b = 0; b < p.batch; ++b) {
    for (int i = 0; i < p.seqlen_q; ++i) {
      for (int h = 0; h < p.num_heads; ++h) {
        const int64_t at = reference::q_offset(p, b, i, h);
        for (int c = 0; c < p.head_dim; ++c) {
          const double rel = 0.02 * std::sqrt(double(i) / p.seqlen_q) * noise[at + c];
          got_bits[at + c] = host::encode(DataType::FP16, ref[at + c] * (1.0 + rel));
          got[at + c] = host::decode(DataType::FP16, got_bits[at + c]);
        }
      }
    }
  }
  const double whole = host::compare(ref.data(), got.data(), n_q).rel_l2;
  ASSERT_GT(whole, 1e-3);

  const HostInputs inputs{q.data(), k.data(), v.data()};
  const DeviceOutputs outputs{got_bits.data(), nullptr};
  const RowSample sample = sample_rows_for_error(p, 256, 5);
  const double estimate = check_rows(p, DataType::FP16, inputs, outputs, sample).out.rel_l2;
  EXPECT_NEAR(estimate / whole, 1.0, 0.15) << "estimate " << estimate << ", whole output " << whole;
}

}  // namespace
}  // namespace flash::apps
