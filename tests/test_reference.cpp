// The CPU reference against cases worked out by hand. Every other test trusts this oracle.
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
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

}  // namespace
}  // namespace flash::reference
