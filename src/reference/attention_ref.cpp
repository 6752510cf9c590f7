// CPU reference attention forward: plain loops in double. It deliberately shares nothing with the
// kernels (no mask or softmax helpers), so a bug in one cannot hide in the other.
#include "reference/attention_ref.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <thread>
#include <vector>

namespace flash::reference {
namespace {

int64_t q_offset(const Problem& p, int b, int i, int h) {
  return ((int64_t{b} * p.seqlen_q + i) * p.num_heads + h) * p.head_dim;
}

int64_t kv_offset(const Problem& p, int b, int j, int h_k) {
  return ((int64_t{b} * p.seqlen_k + j) * p.num_heads_k + h_k) * p.head_dim;
}

}  // namespace

double attention_row(const Problem& problem, const double* q, const double* k, const double* v, int b, int h, int i,
                     double* out_row) {
  const Problem& p = problem;
  const int d = p.head_dim;
  const double scale = p.softmax_scale == 0.0 ? 1.0 / std::sqrt(static_cast<double>(d)) : p.softmax_scale;
  const int h_k = h / (p.num_heads / p.num_heads_k);

  // Bottom-right causal alignment: the last query row sees every key.
  int64_t visible = p.seqlen_k;
  if (p.is_causal) visible = std::clamp<int64_t>(int64_t{i} + p.seqlen_k - p.seqlen_q + 1, 0, p.seqlen_k);

  std::fill(out_row, out_row + d, 0.0);
  if (visible == 0) return -std::numeric_limits<double>::infinity();

  const double* q_row = q + q_offset(p, b, i, h);
  std::vector<double> scores(static_cast<size_t>(visible));
  double row_max = -std::numeric_limits<double>::infinity();
  for (int j = 0; j < visible; ++j) {
    const double* k_row = k + kv_offset(p, b, j, h_k);
    double dot = 0.0;
    for (int c = 0; c < d; ++c) dot += q_row[c] * k_row[c];
    scores[j] = dot * scale;
    row_max = std::max(row_max, scores[j]);
  }

  // Subtracting the row max keeps every exp in (0, 1], so large scores cannot overflow.
  double sum = 0.0;
  for (int j = 0; j < visible; ++j) {
    const double weight = std::exp(scores[j] - row_max);
    sum += weight;
    const double* v_row = v + kv_offset(p, b, j, h_k);
    for (int c = 0; c < d; ++c) out_row[c] += weight * v_row[c];
  }
  for (int c = 0; c < d; ++c) out_row[c] /= sum;
  return row_max + std::log(sum);
}

void attention_forward(const Problem& problem, const double* q, const double* k, const double* v, double* out,
                       double* lse, int threads) {
  const Problem& p = problem;
  const int64_t items = int64_t{p.batch} * p.num_heads;
  if (items <= 0) return;
  int64_t workers = threads > 0 ? threads : static_cast<int64_t>(std::thread::hardware_concurrency());
  workers = std::clamp<int64_t>(workers, 1, items);

  // Each (batch, head) pair is computed by exactly one worker with the same per-row code, so the
  // result does not depend on the number of threads.
  auto work = [&](int64_t first) {
    for (int64_t item = first; item < items; item += workers) {
      const int b = static_cast<int>(item / p.num_heads);
      const int h = static_cast<int>(item % p.num_heads);
      for (int i = 0; i < p.seqlen_q; ++i) {
        const double row_lse = attention_row(p, q, k, v, b, h, i, out + q_offset(p, b, i, h));
        if (lse != nullptr) lse[(int64_t{b} * p.num_heads + h) * p.seqlen_q + i] = row_lse;
      }
    }
  };
  std::vector<std::thread> pool;
  for (int64_t t = 1; t < workers; ++t) pool.emplace_back(work, t);
  work(0);
  for (std::thread& thread : pool) thread.join();
}

}  // namespace flash::reference
