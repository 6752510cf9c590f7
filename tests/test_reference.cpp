// The CPU reference against cases worked out by hand. Every other test trusts this oracle.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "reference/attention_ref.h"

namespace flash::reference {
namespace {

constexpr double kTolerance = 1e-12;
constexpr double kMinusInf = -std::numeric_limits<double>::infinity();

std::vector<double> random_values(size_t count, unsigned seed) {
  std::mt19937 generator(seed);
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  std::vector<double> values(count);
  for (double& value : values) value = uniform(generator);
  return values;
}

size_t q_count(const Problem& p) { return size_t(p.batch) * p.seqlen_q * p.num_heads * p.head_dim; }
size_t kv_count(const Problem& p) { return size_t(p.batch) * p.seqlen_k * p.num_heads_k * p.head_dim; }
size_t lse_count(const Problem& p) { return size_t(p.batch) * p.num_heads * p.seqlen_q; }

Problem single_head(int seqlen_q, int seqlen_k, int head_dim) {
  Problem p;
  p.batch = 1;
  p.seqlen_q = seqlen_q;
  p.seqlen_k = seqlen_k;
  p.num_heads = 1;
  p.num_heads_k = 1;
  p.head_dim = head_dim;
  p.softmax_scale = 1.0;
  return p;
}

TEST(Reference, OneKeyGivesItsValue) {
  const Problem p = single_head(1, 1, 3);
  const std::vector<double> q = {0.3, -2.0, 5.0};
  const std::vector<double> k = {1.5, 0.25, -1.0};
  const std::vector<double> v = {7.0, -8.0, 9.5};
  std::vector<double> out(3);
  std::vector<double> lse(1);
  attention_forward(p, q.data(), k.data(), v.data(), out.data(), lse.data(), 1);
  EXPECT_EQ(out, v);
  // The LSE of one score is the score itself: 0.3 * 1.5 - 2.0 * 0.25 - 5.0 = -5.05.
  EXPECT_NEAR(lse[0], -5.05, kTolerance);
}

TEST(Reference, EqualScoresAverageTheValues) {
  const Problem p = single_head(1, 2, 2);
  const std::vector<double> q = {1.0, 1.0};
  const std::vector<double> k = {2.0, 0.0, 0.0, 2.0};  // both scores are 2
  const std::vector<double> v = {1.0, 10.0, 3.0, 20.0};
  std::vector<double> out(2);
  std::vector<double> lse(1);
  attention_forward(p, q.data(), k.data(), v.data(), out.data(), lse.data(), 1);
  EXPECT_NEAR(out[0], 2.0, kTolerance);
  EXPECT_NEAR(out[1], 15.0, kTolerance);
  EXPECT_NEAR(lse[0], 2.0 + std::log(2.0), kTolerance);
}

TEST(Reference, TwoByTwoByHand) {
  // q = [[1, 0], [0, 1]], k = [[1, 0], [0, 0]], v = [[1, 2], [3, 4]], scale 1.
  // Row 0: scores (1, 0), weights (e, 1) / (e + 1) = (0.7310585786300049, 0.2689414213699951):
  //   out = (0.731... * 1 + 0.268... * 3, 0.731... * 2 + 0.268... * 4) = (1.53788284273999, 2.53788284273999),
  //   lse = log(e + 1) = 1.3132616875182228.
  // Row 1: scores (0, 0): out = (2, 3), lse = log 2 = 0.6931471805599453.
  const Problem p = single_head(2, 2, 2);
  const std::vector<double> q = {1.0, 0.0, 0.0, 1.0};
  const std::vector<double> k = {1.0, 0.0, 0.0, 0.0};
  const std::vector<double> v = {1.0, 2.0, 3.0, 4.0};
  std::vector<double> out(4);
  std::vector<double> lse(2);
  attention_forward(p, q.data(), k.data(), v.data(), out.data(), lse.data(), 1);
  EXPECT_NEAR(out[0], 1.5378828427399902, kTolerance);
  EXPECT_NEAR(out[1], 2.5378828427399900, kTolerance);
  EXPECT_NEAR(out[2], 2.0, kTolerance);
  EXPECT_NEAR(out[3], 3.0, kTolerance);
  EXPECT_NEAR(lse[0], 1.3132616875182228, kTolerance);
  EXPECT_NEAR(lse[1], 0.6931471805599453, kTolerance);
}

// With q = 0 every visible key has weight 1 / count, so each output is the mean of the visible
// values and the LSE is log(count): the causal window can be read off directly.
struct CausalCase {
  int seqlen_q;
  int seqlen_k;
  std::vector<int> visible;  // keys seen by each query row
};

void expect_causal_window(const CausalCase& c) {
  Problem p = single_head(c.seqlen_q, c.seqlen_k, 1);
  p.is_causal = true;
  const std::vector<double> q(c.seqlen_q, 0.0);
  const std::vector<double> k(c.seqlen_k, 1.0);
  std::vector<double> v(c.seqlen_k);
  for (int j = 0; j < c.seqlen_k; ++j) v[j] = 10.0 * (j + 1);
  std::vector<double> out(c.seqlen_q);
  std::vector<double> lse(c.seqlen_q);
  attention_forward(p, q.data(), k.data(), v.data(), out.data(), lse.data(), 1);
  for (int i = 0; i < c.seqlen_q; ++i) {
    const int n = c.visible[i];
    SCOPED_TRACE("seqlen_q " + std::to_string(c.seqlen_q) + ", seqlen_k " + std::to_string(c.seqlen_k) + ", row " +
                 std::to_string(i));
    if (n == 0) {
      EXPECT_EQ(out[i], 0.0);
      EXPECT_EQ(lse[i], kMinusInf);
    } else {
      EXPECT_NEAR(out[i], 10.0 * (n + 1) / 2.0, kTolerance);  // mean of 10, 20, ..., 10 n
      EXPECT_NEAR(lse[i], std::log(double(n)), kTolerance);
    }
  }
}

TEST(Reference, CausalBottomRightMoreQueriesThanKeys) {
  // Query i sees key j when j <= i + 2 - 3 = i - 1: row 0 sees nothing.
  expect_causal_window({3, 2, {0, 1, 2}});
}

TEST(Reference, CausalBottomRightFewerQueriesThanKeys) {
  // Query i sees key j when j <= i + 3 - 2 = i + 1.
  expect_causal_window({2, 3, {2, 3}});
}

TEST(Reference, CausalSquareIsLowerTriangular) { expect_causal_window({3, 3, {1, 2, 3}}); }

TEST(Reference, RowWithoutKeysGivesZeroAndMinusInfEvenWithNonZeroQuery) {
  Problem p = single_head(4, 1, 2);
  p.is_causal = true;
  const std::vector<double> q = random_values(8, 1);
  const std::vector<double> k = {0.5, 0.5};
  const std::vector<double> v = {3.0, -4.0};
  for (int i = 0; i < 3; ++i) {
    std::vector<double> row = {99.0, 99.0};
    EXPECT_EQ(attention_row(p, q.data(), k.data(), v.data(), 0, 0, i, row.data()), kMinusInf);
    EXPECT_EQ(row, std::vector<double>({0.0, 0.0}));
  }
  std::vector<double> last(2);
  EXPECT_TRUE(std::isfinite(attention_row(p, q.data(), k.data(), v.data(), 0, 0, 3, last.data())));
  EXPECT_EQ(last, v);
}

TEST(Reference, GqaQueryHeadsShareTheirGroupsKvHead) {
  // 4 query heads over 2 kv heads: heads 0, 1 use kv head 0 and heads 2, 3 use kv head 1.
  Problem gqa;
  gqa.batch = 2;
  gqa.seqlen_q = 5;
  gqa.seqlen_k = 7;
  gqa.num_heads = 4;
  gqa.num_heads_k = 2;
  gqa.head_dim = 8;
  const int d = gqa.head_dim;

  // Every query head gets the same q, so heads differ only through their kv head.
  std::vector<double> q(q_count(gqa));
  const std::vector<double> one_head = random_values(size_t(gqa.batch) * gqa.seqlen_q * d, 2);
  for (int b = 0; b < gqa.batch; ++b)
    for (int i = 0; i < gqa.seqlen_q; ++i)
      for (int h = 0; h < gqa.num_heads; ++h)
        for (int c = 0; c < d; ++c)
          q[((size_t(b) * gqa.seqlen_q + i) * gqa.num_heads + h) * d + c] =
              one_head[(size_t(b) * gqa.seqlen_q + i) * d + c];
  const std::vector<double> k = random_values(kv_count(gqa), 3);
  const std::vector<double> v = random_values(kv_count(gqa), 4);
  std::vector<double> out(q_count(gqa));
  std::vector<double> lse(lse_count(gqa));
  attention_forward(gqa, q.data(), k.data(), v.data(), out.data(), lse.data(), 1);

  // The same problem as MHA, with each kv head copied to the query heads of its group.
  Problem mha = gqa;
  mha.num_heads_k = mha.num_heads;
  std::vector<double> k_mha(kv_count(mha));
  std::vector<double> v_mha(kv_count(mha));
  for (int b = 0; b < gqa.batch; ++b)
    for (int j = 0; j < gqa.seqlen_k; ++j)
      for (int h = 0; h < gqa.num_heads; ++h)
        for (int c = 0; c < d; ++c) {
          const size_t to = ((size_t(b) * gqa.seqlen_k + j) * gqa.num_heads + h) * d + c;
          const size_t from = ((size_t(b) * gqa.seqlen_k + j) * gqa.num_heads_k + h / 2) * d + c;
          k_mha[to] = k[from];
          v_mha[to] = v[from];
        }
  std::vector<double> out_mha(q_count(mha));
  std::vector<double> lse_mha(lse_count(mha));
  attention_forward(mha, q.data(), k_mha.data(), v_mha.data(), out_mha.data(), lse_mha.data(), 1);
  EXPECT_EQ(out, out_mha);
  EXPECT_EQ(lse, lse_mha);

  auto head_output = [&](int b, int i, int h) {
    const double* row = out.data() + ((size_t(b) * gqa.seqlen_q + i) * gqa.num_heads + h) * d;
    return std::vector<double>(row, row + d);
  };
  for (int b = 0; b < gqa.batch; ++b) {
    for (int i = 0; i < gqa.seqlen_q; ++i) {
      EXPECT_EQ(head_output(b, i, 0), head_output(b, i, 1));
      EXPECT_EQ(head_output(b, i, 2), head_output(b, i, 3));
      EXPECT_NE(head_output(b, i, 0), head_output(b, i, 2));
    }
  }
}

TEST(Reference, ZeroScaleMeansInverseSqrtHeadDim) {
  Problem p = single_head(6, 9, 64);
  const std::vector<double> q = random_values(q_count(p), 5);
  const std::vector<double> k = random_values(kv_count(p), 6);
  const std::vector<double> v = random_values(kv_count(p), 7);
  auto run = [&](double scale) {
    p.softmax_scale = scale;
    std::vector<double> out(q_count(p));
    std::vector<double> lse(lse_count(p));
    attention_forward(p, q.data(), k.data(), v.data(), out.data(), lse.data(), 1);
    out.insert(out.end(), lse.begin(), lse.end());
    return out;
  };
  const std::vector<double> by_default = run(0.0);
  EXPECT_EQ(by_default, run(1.0 / std::sqrt(64.0)));
  EXPECT_NE(by_default, run(1.0));
}

TEST(Reference, AttentionRowMatchesAttentionForward) {
  Problem p;
  p.batch = 2;
  p.seqlen_q = 9;
  p.seqlen_k = 6;
  p.num_heads = 6;
  p.num_heads_k = 3;
  p.head_dim = 16;
  p.is_causal = true;
  const std::vector<double> q = random_values(q_count(p), 8);
  const std::vector<double> k = random_values(kv_count(p), 9);
  const std::vector<double> v = random_values(kv_count(p), 10);
  std::vector<double> out(q_count(p));
  std::vector<double> lse(lse_count(p));
  attention_forward(p, q.data(), k.data(), v.data(), out.data(), lse.data(), 3);
  std::vector<double> row(p.head_dim);
  for (int b = 0; b < p.batch; ++b) {
    for (int h = 0; h < p.num_heads; ++h) {
      for (int i = 0; i < p.seqlen_q; ++i) {
        const double row_lse = attention_row(p, q.data(), k.data(), v.data(), b, h, i, row.data());
        const size_t at = ((size_t(b) * p.seqlen_q + i) * p.num_heads + h) * p.head_dim;
        EXPECT_EQ(row, std::vector<double>(out.begin() + at, out.begin() + at + p.head_dim));
        EXPECT_EQ(row_lse, lse[(size_t(b) * p.num_heads + h) * p.seqlen_q + i]);
      }
    }
  }
}

TEST(Reference, LargeScoresStayFinite) {
  // Scores 1000 and 999: exp(1000) overflows a double, so this needs the max subtraction.
  // Weights (1, e^-1) / (1 + e^-1): out = 0.7310585786300049 * 2 + 0.2689414213699951 * 4.
  const Problem p = single_head(1, 2, 1);
  const std::vector<double> q = {1.0};
  const std::vector<double> k = {1000.0, 999.0};
  const std::vector<double> v = {2.0, 4.0};
  std::vector<double> out(1);
  std::vector<double> lse(1);
  attention_forward(p, q.data(), k.data(), v.data(), out.data(), lse.data(), 1);
  EXPECT_NEAR(out[0], 0.7310585786300049 * 2.0 + 0.2689414213699951 * 4.0, kTolerance);
  EXPECT_NEAR(lse[0], 1000.3132616875182, 1e-10);

  const std::vector<double> negative_q = {-1.0};  // scores -1000 and -999: exp underflows to 0
  attention_forward(p, negative_q.data(), k.data(), v.data(), out.data(), lse.data(), 1);
  EXPECT_NEAR(out[0], 0.2689414213699951 * 2.0 + 0.7310585786300049 * 4.0, kTolerance);
  EXPECT_NEAR(lse[0], -999.0 + 0.3132616875182228, 1e-10);
}

TEST(Reference, ThreadCountDoesNotChangeAnyBit) {
  Problem p;
  p.batch = 3;
  p.seqlen_q = 17;
  p.seqlen_k = 23;
  p.num_heads = 5;
  p.num_heads_k = 5;
  p.head_dim = 32;
  p.is_causal = true;
  const std::vector<double> q = random_values(q_count(p), 11);
  const std::vector<double> k = random_values(kv_count(p), 12);
  const std::vector<double> v = random_values(kv_count(p), 13);
  auto run = [&](int threads, std::vector<double>* out, std::vector<double>* lse) {
    out->assign(q_count(p), 0.0);
    lse->assign(lse_count(p), 0.0);
    attention_forward(p, q.data(), k.data(), v.data(), out->data(), lse->data(), threads);
  };
  std::vector<double> out_1, lse_1;
  run(1, &out_1, &lse_1);
  for (const int threads : {2, 4, 7, 64, 0}) {
    std::vector<double> out_n, lse_n;
    run(threads, &out_n, &lse_n);
    EXPECT_EQ(std::memcmp(out_1.data(), out_n.data(), out_1.size() * sizeof(double)), 0) << threads << " threads";
    EXPECT_EQ(std::memcmp(lse_1.data(), lse_n.data(), lse_1.size() * sizeof(double)), 0) << threads << " threads";
  }
}

TEST(Reference, NullLseIsAllowed) {
  const Problem p = single_head(2, 2, 2);
  const std::vector<double> q = {1.0, 0.0, 0.0, 1.0};
  const std::vector<double> k = {1.0, 0.0, 0.0, 0.0};
  const std::vector<double> v = {1.0, 2.0, 3.0, 4.0};
  std::vector<double> out(4);
  attention_forward(p, q.data(), k.data(), v.data(), out.data(), nullptr, 2);
  EXPECT_NEAR(out[2], 2.0, kTolerance);
}

// --- Sliding window ---------------------------------------------------------------------------------

// The keys each row sees, read off the output: with q = 0 every visible key has weight 1 / count,
// and with v the identity (head_dim = seqlen_k) output column j is that weight when key j is visible.
// Also checks that the LSE is log(count), or -inf (and the row 0) when nothing is visible.
std::vector<std::vector<int>> visible_sets(const Problem& p) {
  EXPECT_EQ(p.batch, 1);
  EXPECT_EQ(p.head_dim, p.seqlen_k);
  const int n = p.seqlen_k;
  const std::vector<double> q(size_t(p.seqlen_q) * n, 0.0);
  const std::vector<double> k = random_values(size_t(n) * n, 20);
  std::vector<double> v(size_t(n) * n, 0.0);
  for (int j = 0; j < n; ++j) v[size_t(j) * n + j] = 1.0;
  std::vector<double> out(q.size(), -1.0);
  std::vector<double> lse(p.seqlen_q);
  attention_forward(p, q.data(), k.data(), v.data(), out.data(), lse.data(), 1);
  std::vector<std::vector<int>> sets(p.seqlen_q);
  for (int i = 0; i < p.seqlen_q; ++i) {
    for (int j = 0; j < n; ++j) {
      if (out[size_t(i) * n + j] != 0.0) sets[i].push_back(j);
    }
    const size_t count = sets[i].size();
    if (count == 0) {
      EXPECT_EQ(lse[i], kMinusInf) << "row " << i;
    } else {
      EXPECT_NEAR(lse[i], std::log(double(count)), kTolerance) << "row " << i;
      for (const int j : sets[i]) EXPECT_NEAR(out[size_t(i) * n + j], 1.0 / count, kTolerance);
    }
  }
  return sets;
}

Problem windowed(int seqlen_q, int seqlen_k, int left, int right, bool causal = false) {
  Problem p = single_head(seqlen_q, seqlen_k, seqlen_k);
  p.window_left = left;
  p.window_right = right;
  p.is_causal = causal;
  return p;
}

using Sets = std::vector<std::vector<int>>;

TEST(ReferenceWindow, ZeroLeftAndRightSeesExactlyTheDiagonalKey) {
  // Square: row i sees key i, so its output is v row i and its LSE the score q_i . k_i.
  Problem p = single_head(4, 4, 3);
  p.window_left = 0;
  p.window_right = 0;
  const std::vector<double> q = random_values(12, 21);
  const std::vector<double> k = random_values(12, 22);
  const std::vector<double> v = random_values(12, 23);
  std::vector<double> out(12);
  std::vector<double> lse(4);
  attention_forward(p, q.data(), k.data(), v.data(), out.data(), lse.data(), 1);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(std::vector<double>(out.begin() + 3 * i, out.begin() + 3 * i + 3),
              std::vector<double>(v.begin() + 3 * i, v.begin() + 3 * i + 3));
    EXPECT_NEAR(lse[i], q[3 * i] * k[3 * i] + q[3 * i + 1] * k[3 * i + 1] + q[3 * i + 2] * k[3 * i + 2], kTolerance);
  }
  // Bottom-right: 3 queries, 5 keys: row i's diagonal key is i + 2.
  EXPECT_EQ(visible_sets(windowed(3, 5, 0, 0)), Sets({{2}, {3}, {4}}));
}

TEST(ReferenceWindow, LeftOnly) {
  // Row i sees keys i - 1 .. 4.
  EXPECT_EQ(visible_sets(windowed(5, 5, 1, -1)),
            Sets({{0, 1, 2, 3, 4}, {0, 1, 2, 3, 4}, {1, 2, 3, 4}, {2, 3, 4}, {3, 4}}));
}

TEST(ReferenceWindow, RightOnly) {
  // Row i sees keys 0 .. i + 1.
  EXPECT_EQ(visible_sets(windowed(5, 5, -1, 1)),
            Sets({{0, 1}, {0, 1, 2}, {0, 1, 2, 3}, {0, 1, 2, 3, 4}, {0, 1, 2, 3, 4}}));
}

TEST(ReferenceWindow, BothSides) {
  // Row i sees keys i - 1 .. i + 2.
  EXPECT_EQ(visible_sets(windowed(4, 4, 1, 2)), Sets({{0, 1, 2}, {0, 1, 2, 3}, {1, 2, 3}, {2, 3}}));
  // 2 queries, 6 keys: row i's diagonal is i + 4, so it sees keys i + 3 .. i + 6, cut at the last key.
  EXPECT_EQ(visible_sets(windowed(2, 6, 1, 2)), Sets({{3, 4, 5}, {4, 5}}));
}

TEST(ReferenceWindow, WithCausal) {
  // 3 queries, 6 keys, causal with 2 keys to the left: row i's diagonal is i + 3.
  EXPECT_EQ(visible_sets(windowed(3, 6, 2, -1, true)), Sets({{1, 2, 3}, {2, 3, 4}, {3, 4, 5}}));
  // is_causal with window_right 0 is the same mask.
  EXPECT_EQ(visible_sets(windowed(3, 6, 2, 0, true)), Sets({{1, 2, 3}, {2, 3, 4}, {3, 4, 5}}));
  // More queries than keys: row i's diagonal is i - 2, so rows 0 and 1 see nothing.
  EXPECT_EQ(visible_sets(windowed(4, 2, 0, -1, true)), Sets({{}, {}, {0}, {1}}));
  // Causal alone through visible_sets, as a check of the helper.
  EXPECT_EQ(visible_sets(windowed(3, 3, -1, -1, true)), Sets({{0}, {0, 1}, {0, 1, 2}}));
}

TEST(ReferenceWindow, WindowPastTheKeysSeesNothing) {
  // 7 queries over 2 keys: the diagonal of row i is key i - 5, so with 1 key left and 0 right of
  // it rows 0 to 4 see nothing.
  EXPECT_EQ(visible_sets(windowed(7, 2, 1, 0)), Sets({{}, {}, {}, {}, {}, {0}, {0, 1}}));
  // 3 queries over 2 keys, window 0 on both sides: row i sees key i - 1 only.
  EXPECT_EQ(visible_sets(windowed(3, 2, 0, 0)), Sets({{}, {0}, {1}}));
}

// Brute force straight from the definition: loops over every key and tests the mask inequality.
void brute_force(const Problem& p, const double* q, const double* k, const double* v, std::vector<double>* out,
                 std::vector<double>* lse) {
  const int d = p.head_dim;
  const double scale = p.softmax_scale == 0.0 ? 1.0 / std::sqrt(double(d)) : p.softmax_scale;
  out->assign(size_t(p.batch) * p.seqlen_q * p.num_heads * d, 0.0);
  lse->assign(size_t(p.batch) * p.num_heads * p.seqlen_q, kMinusInf);
  const int right = p.is_causal ? 0 : p.window_right;
  for (int b = 0; b < p.batch; ++b)
    for (int h = 0; h < p.num_heads; ++h)
      for (int i = 0; i < p.seqlen_q; ++i) {
        const int hk = h / (p.num_heads / p.num_heads_k);
        std::vector<double> scores;
        std::vector<int> keys;
        for (int j = 0; j < p.seqlen_k; ++j) {
          const int shift = p.seqlen_k - p.seqlen_q;
          if (p.window_left >= 0 && !(i + shift - p.window_left <= j)) continue;
          if (right >= 0 && !(j <= i + shift + right)) continue;
          double s = 0.0;
          for (int c = 0; c < d; ++c)
            s += q[((size_t(b) * p.seqlen_q + i) * p.num_heads + h) * d + c] *
                 k[((size_t(b) * p.seqlen_k + j) * p.num_heads_k + hk) * d + c];
          s *= scale;
          if (p.softcap > 0.0) s = p.softcap * std::tanh(s / p.softcap);
          scores.push_back(s);
          keys.push_back(j);
        }
        if (keys.empty()) continue;
        double m = kMinusInf;
        for (const double s : scores) m = std::max(m, s);
        double sum = 0.0;
        double* o = out->data() + ((size_t(b) * p.seqlen_q + i) * p.num_heads + h) * d;
        for (size_t n = 0; n < keys.size(); ++n) {
          const double w = std::exp(scores[n] - m);
          sum += w;
          for (int c = 0; c < d; ++c) o[c] += w * v[((size_t(b) * p.seqlen_k + keys[n]) * p.num_heads_k + hk) * d + c];
        }
        for (int c = 0; c < d; ++c) o[c] /= sum;
        (*lse)[(size_t(b) * p.num_heads + h) * p.seqlen_q + i] = m + std::log(sum);
      }
}

TEST(ReferenceWindow, MatchesBruteForceOnManySmallProblems) {
  std::mt19937 generator(30);
  int cases = 0;
  for (int seqlen_q : {1, 3, 7})
    for (int seqlen_k : {1, 4, 9})
      for (int left : {-1, 0, 2, 5})
        for (int right : {-1, 0, 1, 3})
          for (bool causal : {false, true}) {
            if (causal && right > 0) continue;
            Problem p;
            p.batch = 2;
            p.seqlen_q = seqlen_q;
            p.seqlen_k = seqlen_k;
            p.num_heads = 4;
            p.num_heads_k = 2;
            p.head_dim = 5;
            p.is_causal = causal;
            p.window_left = left;
            p.window_right = right;
            p.softcap = (cases % 3 == 0) ? 0.7 : 0.0;
            const std::vector<double> q = random_values(q_count(p), generator());
            const std::vector<double> k = random_values(kv_count(p), generator());
            const std::vector<double> v = random_values(kv_count(p), generator());
            std::vector<double> out(q_count(p)), lse(lse_count(p)), want_out, want_lse;
            attention_forward(p, q.data(), k.data(), v.data(), out.data(), lse.data(), 2);
            brute_force(p, q.data(), k.data(), v.data(), &want_out, &want_lse);
            SCOPED_TRACE("seqlen_q " + std::to_string(seqlen_q) + " seqlen_k " + std::to_string(seqlen_k) + " left " +
                         std::to_string(left) + " right " + std::to_string(right) + " causal " +
                         std::to_string(causal));
            for (size_t n = 0; n < out.size(); ++n) ASSERT_NEAR(out[n], want_out[n], kTolerance) << n;
            for (size_t n = 0; n < lse.size(); ++n) {
              if (want_lse[n] == kMinusInf) {
                ASSERT_EQ(lse[n], kMinusInf) << n;
              } else {
                ASSERT_NEAR(lse[n], want_lse[n], kTolerance) << n;
              }
            }
            ++cases;
          }
  EXPECT_EQ(cases, 3 * 3 * 4 * 4 * 2 - 3 * 3 * 4 * 2);   // every combination but causal with right > 0
}

TEST(ReferenceWindow, VisibleKeysIsTheMaskRange) {
  Problem p = windowed(3, 6, 2, -1, true);
  EXPECT_EQ(visible_keys(p, 0, 0).begin, 1);
  EXPECT_EQ(visible_keys(p, 0, 0).end, 4);
  EXPECT_EQ(visible_keys(p, 0, 2).count(), 3);
  p = windowed(4, 2, 0, -1, true);
  EXPECT_EQ(visible_keys(p, 0, 0).count(), 0);
  EXPECT_EQ(visible_keys(p, 0, 3).begin, 1);
  EXPECT_EQ(visible_keys(p, 0, 3).end, 2);
}

// --- Softcap ----------------------------------------------------------------------------------------

TEST(ReferenceSoftcap, TwoKeysByHand) {
  // Raw scores q.k = 3 and 0, scale 1, softcap 2: capped 2 tanh(1.5) = 1.8102965072897328 and 0.
  // Weights (e^1.81.., 1) / (e^1.81.. + 1): out = (e^1.81.. * 1 + 5) / (e^1.81.. + 1) = 1.562409175860073,
  // lse = log(e^1.81.. + 1) = 1.9618199841979986.
  Problem p = single_head(1, 2, 1);
  p.softcap = 2.0;
  const std::vector<double> q = {3.0};
  const std::vector<double> k = {1.0, 0.0};
  const std::vector<double> v = {1.0, 5.0};
  std::vector<double> out(1);
  std::vector<double> lse(1);
  attention_forward(p, q.data(), k.data(), v.data(), out.data(), lse.data(), 1);
  EXPECT_NEAR(out[0], 1.562409175860073, kTolerance);
  EXPECT_NEAR(lse[0], 1.9618199841979986, kTolerance);
  // One key: the LSE is the capped score itself.
  const Problem one = [] {
    Problem p1 = single_head(1, 1, 1);
    p1.softcap = 2.0;
    return p1;
  }();
  attention_forward(one, q.data(), k.data(), v.data(), out.data(), lse.data(), 1);
  EXPECT_EQ(out[0], 1.0);
  EXPECT_NEAR(lse[0], 1.8102965072897328, kTolerance);
}

TEST(ReferenceSoftcap, AppliesAfterTheScale) {
  // Scale 0.5, q.k = 6: the scaled score 3 is capped to 2 tanh(1.5), as in TwoKeysByHand.
  Problem p = single_head(1, 1, 1);
  p.softmax_scale = 0.5;
  p.softcap = 2.0;
  const std::vector<double> q = {6.0};
  const std::vector<double> k = {1.0};
  const std::vector<double> v = {1.0};
  std::vector<double> out(1);
  std::vector<double> lse(1);
  attention_forward(p, q.data(), k.data(), v.data(), out.data(), lse.data(), 1);
  EXPECT_NEAR(lse[0], 1.8102965072897328, kTolerance);
}

TEST(ReferenceSoftcap, LargeSoftcapApproachesNoSoftcap) {
  Problem p;
  p.batch = 2;
  p.seqlen_q = 5;
  p.seqlen_k = 7;
  p.num_heads = 2;
  p.num_heads_k = 1;
  p.head_dim = 16;
  p.is_causal = true;
  const std::vector<double> q = random_values(q_count(p), 31);
  const std::vector<double> k = random_values(kv_count(p), 32);
  const std::vector<double> v = random_values(kv_count(p), 33);
  auto run = [&](double softcap, std::vector<double>* out, std::vector<double>* lse) {
    p.softcap = softcap;
    out->assign(q_count(p), 0.0);
    lse->assign(lse_count(p), 0.0);
    attention_forward(p, q.data(), k.data(), v.data(), out->data(), lse->data(), 1);
  };
  std::vector<double> out_0, lse_0, out_c, lse_c;
  run(0.0, &out_0, &lse_0);
  double previous = std::numeric_limits<double>::infinity();
  for (const double softcap : {1.0, 10.0, 1e3, 1e6}) {
    run(softcap, &out_c, &lse_c);
    double diff = 0.0;
    for (size_t n = 0; n < out_0.size(); ++n) diff = std::max(diff, std::abs(out_0[n] - out_c[n]));
    for (size_t n = 0; n < lse_0.size(); ++n) diff = std::max(diff, std::abs(lse_0[n] - lse_c[n]));
    EXPECT_LT(diff, previous) << "softcap " << softcap;
    previous = diff;
  }
  EXPECT_LT(previous, 1e-9);
  // A small softcap bounds every score: |lse - log(count)| <= softcap.
  run(0.01, &out_c, &lse_c);
  for (int i = 0; i < p.seqlen_q; ++i) {
    const double count = i + p.seqlen_k - p.seqlen_q + 1;
    EXPECT_LE(std::abs(lse_c[i] - std::log(count)), 0.01 + kTolerance);
  }
}

TEST(ReferenceSoftcap, BoundsHugeScores) {
  // Scores 1000 and 999 capped at 5: both within 1e-6 of 5, so the weights are nearly equal.
  Problem p = single_head(1, 2, 1);
  p.softcap = 5.0;
  const std::vector<double> q = {1.0};
  const std::vector<double> k = {1000.0, 999.0};
  const std::vector<double> v = {2.0, 4.0};
  std::vector<double> out(1);
  std::vector<double> lse(1);
  attention_forward(p, q.data(), k.data(), v.data(), out.data(), lse.data(), 1);
  EXPECT_NEAR(out[0], 3.0, 1e-6);
  EXPECT_NEAR(lse[0], 5.0 + std::log(2.0), 1e-6);
}

// --- Variable length and seqused_k -----------------------------------------------------------------

std::vector<int> offsets_of(const std::vector<int>& lengths) {
  std::vector<int> offsets = {0};
  for (const int length : lengths) offsets.push_back(offsets.back() + length);
  return offsets;
}

Problem varlen_problem(const std::vector<int>& lens_q, const std::vector<int>& lens_k) {
  Problem p;
  p.batch = static_cast<int>(lens_q.size());
  p.num_heads = 4;
  p.num_heads_k = 2;
  p.head_dim = 8;
  p.cu_seqlens_q = offsets_of(lens_q);
  p.cu_seqlens_k = offsets_of(lens_k);
  p.seqlen_q = *std::max_element(lens_q.begin(), lens_q.end());
  p.seqlen_k = *std::max_element(lens_k.begin(), lens_k.end());
  return p;
}

// Rows [first, first + count) of a [rows, heads, head_dim] tensor.
std::vector<double> slice_rows(const std::vector<double>& tensor, int first, int count, int heads, int d) {
  const size_t row = size_t(heads) * d;
  return std::vector<double>(tensor.begin() + first * row, tensor.begin() + (first + count) * row);
}

// Runs the varlen problem, then every sequence alone as a dense batch-1 problem, and compares.
void expect_varlen_equals_dense(const Problem& p, unsigned seed) {
  ASSERT_TRUE(is_varlen(p));
  const std::vector<double> q = random_values(size_t(q_elements(p)), seed);
  const std::vector<double> k = random_values(size_t(kv_elements(p)), seed + 1);
  const std::vector<double> v = random_values(size_t(kv_elements(p)), seed + 2);
  std::vector<double> out(size_t(q_elements(p)), 99.0);
  std::vector<double> lse(size_t(lse_elements(p)), 99.0);
  attention_forward(p, q.data(), k.data(), v.data(), out.data(), lse.data(), 3);
  const int d = p.head_dim;
  for (int b = 0; b < p.batch; ++b) {
    SCOPED_TRACE("sequence " + std::to_string(b));
    const int first_q = p.cu_seqlens_q[b];
    const int first_k = p.cu_seqlens_k[b];
    const int len_q = p.cu_seqlens_q[b + 1] - first_q;
    const int len_k = p.cu_seqlens_k[b + 1] - first_k;
    Problem dense = p;
    dense.batch = 1;
    dense.seqlen_q = len_q;
    dense.seqlen_k = len_k;
    dense.cu_seqlens_q.clear();
    dense.cu_seqlens_k.clear();
    if (!p.seqused_k.empty()) dense.seqused_k = {p.seqused_k[b]};
    const std::vector<double> q_b = slice_rows(q, first_q, len_q, p.num_heads, d);
    const std::vector<double> k_b = slice_rows(k, first_k, len_k, p.num_heads_k, d);
    const std::vector<double> v_b = slice_rows(v, first_k, len_k, p.num_heads_k, d);
    std::vector<double> out_b(q_b.size());
    std::vector<double> lse_b(size_t(len_q) * p.num_heads);
    attention_forward(dense, q_b.data(), k_b.data(), v_b.data(), out_b.data(), lse_b.data(), 1);
    EXPECT_EQ(slice_rows(out, first_q, len_q, p.num_heads, d), out_b);
    for (int h = 0; h < p.num_heads; ++h)
      for (int i = 0; i < len_q; ++i) {
        EXPECT_EQ(lse[size_t(h) * total_q(p) + first_q + i], lse_b[size_t(h) * len_q + i]);
        EXPECT_EQ(lse_index(p, b, h, i), int64_t(h) * total_q(p) + first_q + i);
      }
  }
  // When every row belongs to a sequence, every output and LSE was written.
  if (p.cu_seqlens_q.front() == 0) {
    for (const double x : out) EXPECT_NE(x, 99.0);
    for (const double x : lse) EXPECT_NE(x, 99.0);
  }
}

TEST(ReferenceVarlen, EqualsEachSequenceAloneAsADenseProblem) {
  const std::vector<int> lens_q = {3, 1, 7, 5, 2};
  const std::vector<int> lens_k = {4, 6, 7, 2, 9};
  Problem p = varlen_problem(lens_q, lens_k);
  expect_varlen_equals_dense(p, 40);
  p.is_causal = true;
  expect_varlen_equals_dense(p, 41);
  p.window_left = 2;
  p.softcap = 1.5;
  expect_varlen_equals_dense(p, 42);
  p.is_causal = false;
  p.window_right = 1;
  expect_varlen_equals_dense(p, 43);
  p.seqused_k = {2, 6, 0, 9, 4};
  expect_varlen_equals_dense(p, 44);
}

TEST(ReferenceVarlen, EmptySequences) {
  // Sequence 1 has no queries (it writes nothing); sequence 2 has queries but no keys (out 0,
  // LSE -inf); sequence 3 has neither.
  Problem p = varlen_problem({2, 0, 3, 0, 1}, {3, 4, 0, 0, 2});
  p.is_causal = true;
  expect_varlen_equals_dense(p, 50);
  const std::vector<double> q = random_values(size_t(q_elements(p)), 51);
  const std::vector<double> k = random_values(size_t(kv_elements(p)), 52);
  const std::vector<double> v = random_values(size_t(kv_elements(p)), 53);
  std::vector<double> out(size_t(q_elements(p)), 99.0);
  std::vector<double> lse(size_t(lse_elements(p)), 99.0);
  attention_forward(p, q.data(), k.data(), v.data(), out.data(), lse.data(), 1);
  for (int h = 0; h < p.num_heads; ++h)
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(lse[lse_index(p, 2, h, i)], kMinusInf);
      const int64_t at = q_offset(p, 2, i, h);
      for (int c = 0; c < p.head_dim; ++c) EXPECT_EQ(out[at + c], 0.0);
    }
  std::vector<double> row(p.head_dim);
  EXPECT_THROW(attention_row(p, q.data(), k.data(), v.data(), 1, 0, 0, row.data()), std::invalid_argument);
  EXPECT_EQ(attention_row(p, q.data(), k.data(), v.data(), 2, 3, 2, row.data()), kMinusInf);
  EXPECT_EQ(row, std::vector<double>(p.head_dim, 0.0));
}

TEST(ReferenceVarlen, RowsBeforeTheFirstOffsetAreNotWritten) {
  Problem p = varlen_problem({2, 1}, {2, 3});
  p.cu_seqlens_q = {3, 5, 6};   // rows 0..2 of q and out belong to no sequence
  p.cu_seqlens_k = {1, 3, 6};
  EXPECT_EQ(total_q(p), 6);
  EXPECT_EQ(total_k(p), 6);
  const std::vector<double> q = random_values(size_t(q_elements(p)), 54);
  const std::vector<double> k = random_values(size_t(kv_elements(p)), 55);
  const std::vector<double> v = random_values(size_t(kv_elements(p)), 56);
  std::vector<double> out(size_t(q_elements(p)), 99.0);
  std::vector<double> lse(size_t(lse_elements(p)), 99.0);
  attention_forward(p, q.data(), k.data(), v.data(), out.data(), lse.data(), 1);
  const size_t row = size_t(p.num_heads) * p.head_dim;
  for (size_t n = 0; n < 3 * row; ++n) EXPECT_EQ(out[n], 99.0);
  for (size_t n = 3 * row; n < out.size(); ++n) EXPECT_NE(out[n], 99.0);
  for (int h = 0; h < p.num_heads; ++h)
    for (int t = 0; t < 6; ++t) EXPECT_EQ(lse[size_t(h) * 6 + t] == 99.0, t < 3);
  expect_varlen_equals_dense(p, 57);
}

TEST(ReferenceVarlen, Helpers) {
  const Problem p = varlen_problem({3, 0, 5}, {4, 2, 6});
  EXPECT_EQ(total_q(p), 8);
  EXPECT_EQ(total_k(p), 12);
  EXPECT_EQ(q_elements(p), 8 * 4 * 8);
  EXPECT_EQ(kv_elements(p), 12 * 2 * 8);
  EXPECT_EQ(lse_elements(p), 8 * 4);
  EXPECT_EQ(seqlen_of_q(p, 1), 0);
  EXPECT_EQ(seqlen_of_q(p, 2), 5);
  EXPECT_EQ(seqlen_of_k(p, 2), 6);
  EXPECT_EQ(q_offset(p, 2, 1, 3), ((3 + 1) * 4 + 3) * 8);
  EXPECT_EQ(kv_offset(p, 2, 1, 1), ((6 + 1) * 2 + 1) * 8);
  EXPECT_EQ(lse_index(p, 2, 3, 1), 3 * 8 + 3 + 1);

  Problem dense = single_head(5, 7, 4);
  dense.batch = 3;
  dense.num_heads = 2;
  EXPECT_FALSE(is_varlen(dense));
  EXPECT_EQ(total_q(dense), 15);
  EXPECT_EQ(total_k(dense), 21);
  EXPECT_EQ(lse_elements(dense), 30);
  EXPECT_EQ(q_offset(dense, 2, 1, 1), ((2 * 5 + 1) * 2 + 1) * 4);
  EXPECT_EQ(kv_offset(dense, 1, 6, 0), (1 * 7 + 6) * 1 * 4);
  EXPECT_EQ(lse_index(dense, 2, 1, 4), (2 * 2 + 1) * 5 + 4);
  dense.seqused_k = {3, 9, -1};   // clamped to [0, seqlen_k]
  EXPECT_EQ(seqlen_of_k(dense, 0), 3);
  EXPECT_EQ(seqlen_of_k(dense, 1), 7);
  EXPECT_EQ(seqlen_of_k(dense, 2), 0);
}

TEST(ReferenceVarlen, InconsistentProblemsThrow) {
  const std::vector<double> none(256, 0.0);
  std::vector<double> out(256);
  auto run = [&](const Problem& p) {
    attention_forward(p, none.data(), none.data(), none.data(), out.data(), nullptr);
  };
  Problem p = varlen_problem({1, 2}, {2, 1});
  EXPECT_NO_THROW(run(p));
  Problem bad = p;
  bad.cu_seqlens_k.clear();
  EXPECT_THROW(run(bad), std::invalid_argument);
  bad = p;
  bad.cu_seqlens_q = {0, 1};
  EXPECT_THROW(run(bad), std::invalid_argument);
  bad = p;
  bad.cu_seqlens_q = {0, 2, 1};
  EXPECT_THROW(run(bad), std::invalid_argument);
  bad = p;
  bad.seqused_k = {1};
  EXPECT_THROW(run(bad), std::invalid_argument);
  bad = p;
  bad.is_causal = true;
  bad.window_right = 1;
  EXPECT_THROW(run(bad), std::invalid_argument);
  bad = p;
  bad.window_left = -2;
  EXPECT_THROW(run(bad), std::invalid_argument);
  bad = p;
  bad.softcap = -1.0;
  EXPECT_THROW(run(bad), std::invalid_argument);
  bad = p;
  bad.softcap = std::nan("");
  EXPECT_THROW(run(bad), std::invalid_argument);
  bad = p;
  bad.num_heads_k = 3;
  EXPECT_THROW(run(bad), std::invalid_argument);
}

TEST(ReferenceSequsedK, EqualsTruncatingKeysAndValues) {
  Problem p;
  p.batch = 3;
  p.seqlen_q = 4;
  p.seqlen_k = 6;
  p.num_heads = 2;
  p.num_heads_k = 1;
  p.head_dim = 8;
  const std::vector<double> q = random_values(q_count(p), 60);
  const std::vector<double> k = random_values(kv_count(p), 61);
  const std::vector<double> v = random_values(kv_count(p), 62);
  const std::vector<int> used = {3, 6, 0};
  for (const bool causal : {false, true}) {
    p.is_causal = causal;
    p.seqused_k = used;
    std::vector<double> out(q_count(p));
    std::vector<double> lse(lse_count(p));
    attention_forward(p, q.data(), k.data(), v.data(), out.data(), lse.data(), 2);
    for (int b = 0; b < p.batch; ++b) {
      SCOPED_TRACE("batch entry " + std::to_string(b) + (causal ? ", causal" : ""));
      Problem cut = p;
      cut.batch = 1;
      cut.seqlen_k = used[b];
      cut.seqused_k.clear();
      const size_t q_rows = size_t(p.seqlen_q) * p.num_heads * p.head_dim;
      const size_t kv_row = size_t(p.num_heads_k) * p.head_dim;
      const std::vector<double> q_b(q.begin() + b * q_rows, q.begin() + (b + 1) * q_rows);
      const auto k_first = k.begin() + size_t(b) * p.seqlen_k * kv_row;
      const auto v_first = v.begin() + size_t(b) * p.seqlen_k * kv_row;
      const std::vector<double> k_b(k_first, k_first + used[b] * kv_row);
      const std::vector<double> v_b(v_first, v_first + used[b] * kv_row);
      std::vector<double> out_b(q_rows);
      std::vector<double> lse_b(size_t(p.seqlen_q) * p.num_heads);
      attention_forward(cut, q_b.data(), k_b.data(), v_b.data(), out_b.data(), lse_b.data(), 1);
      EXPECT_EQ(std::vector<double>(out.begin() + b * q_rows, out.begin() + (b + 1) * q_rows), out_b);
      EXPECT_EQ(std::vector<double>(lse.begin() + b * lse_b.size(), lse.begin() + (b + 1) * lse_b.size()), lse_b);
    }
    // Entry 2 uses no key: every row is 0 with LSE -inf.
    for (int h = 0; h < p.num_heads; ++h)
      for (int i = 0; i < p.seqlen_q; ++i) EXPECT_EQ(lse[lse_index(p, 2, h, i)], kMinusInf);
  }
  // A count above the keys is clamped: the same as all keys.
  p.is_causal = true;
  p.seqused_k = {6, 100, 7};
  std::vector<double> clamped(q_count(p)), all(q_count(p));
  attention_forward(p, q.data(), k.data(), v.data(), clamped.data(), nullptr, 1);
  p.seqused_k.clear();
  attention_forward(p, q.data(), k.data(), v.data(), all.data(), nullptr, 1);
  EXPECT_EQ(clamped, all);
}

TEST(ReferenceVarlen, ThreadCountDoesNotChangeAnyBit) {
  Problem p = varlen_problem({17, 0, 5, 33, 1}, {20, 3, 0, 33, 40});
  p.is_causal = true;
  p.window_left = 7;
  p.softcap = 3.0;
  const std::vector<double> q = random_values(size_t(q_elements(p)), 70);
  const std::vector<double> k = random_values(size_t(kv_elements(p)), 71);
  const std::vector<double> v = random_values(size_t(kv_elements(p)), 72);
  auto run = [&](int threads) {
    std::vector<double> out(size_t(q_elements(p)));
    std::vector<double> lse(size_t(lse_elements(p)));
    attention_forward(p, q.data(), k.data(), v.data(), out.data(), lse.data(), threads);
    out.insert(out.end(), lse.begin(), lse.end());
    return out;
  };
  const std::vector<double> one = run(1);
  for (const int threads : {2, 3, 8, 0}) {
    const std::vector<double> many = run(threads);
    EXPECT_EQ(std::memcmp(one.data(), many.data(), one.size() * sizeof(double)), 0) << threads << " threads";
  }
}

}  // namespace
}  // namespace flash::reference
