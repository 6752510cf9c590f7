// CPU reference attention forward: plain loops in double. It deliberately shares nothing with the
// kernels (no mask or softmax helpers), so a bug in one cannot hide in the other.
#include "reference/attention_ref.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace flash::reference {
namespace {

[[noreturn]] void invalid(const std::string& what) {
  throw std::invalid_argument("reference::Problem: " + what);
}

void check_offsets(const std::vector<int>& offsets, const char* name, int batch) {
  if (offsets.size() != static_cast<size_t>(batch) + 1) {
    invalid(std::string(name) + " has " + std::to_string(offsets.size()) + " entries; batch " + std::to_string(batch) +
            " needs batch + 1");
  }
  if (offsets.front() < 0) invalid(std::string(name) + "[0] = " + std::to_string(offsets.front()) + " is negative");
  for (size_t b = 1; b < offsets.size(); ++b) {
    if (offsets[b] < offsets[b - 1]) {
      invalid(std::string(name) + " decreases at entry " + std::to_string(b) + " (" + std::to_string(offsets[b - 1]) +
              " then " + std::to_string(offsets[b]) + ")");
    }
  }
}

// First row of entry b in the q/out tensor, and in the k/v tensor.
int64_t first_q_row(const Problem& p, int b) {
  return is_varlen(p) ? int64_t{p.cu_seqlens_q[b]} : int64_t{b} * p.seqlen_q;
}

int64_t first_k_row(const Problem& p, int b) {
  return is_varlen(p) ? int64_t{p.cu_seqlens_k[b]} : int64_t{b} * p.seqlen_k;
}

// attention_row without the checks: attention_forward checks the problem once.
double row_unchecked(const Problem& p, const double* q, const double* k, const double* v, int b, int h, int i,
                     double* out_row) {
  const int d = p.head_dim;
  const double scale = p.softmax_scale == 0.0 ? 1.0 / std::sqrt(static_cast<double>(d)) : p.softmax_scale;
  const int h_k = h / (p.num_heads / p.num_heads_k);
  const KeyRange keys = visible_keys(p, b, i);

  std::fill(out_row, out_row + d, 0.0);
  if (keys.count() == 0) return -std::numeric_limits<double>::infinity();

  const double* q_row = q + q_offset(p, b, i, h);
  std::vector<double> scores(static_cast<size_t>(keys.count()));
  double row_max = -std::numeric_limits<double>::infinity();
  for (int j = keys.begin; j < keys.end; ++j) {
    const double* k_row = k + kv_offset(p, b, j, h_k);
    double dot = 0.0;
    for (int c = 0; c < d; ++c) dot += q_row[c] * k_row[c];
    double score = dot * scale;
    if (p.softcap > 0.0) score = p.softcap * std::tanh(score / p.softcap);
    scores[j - keys.begin] = score;
    row_max = std::max(row_max, score);
  }

  // Subtracting the row max keeps every exp in (0, 1], so large scores cannot overflow.
  double sum = 0.0;
  for (int j = keys.begin; j < keys.end; ++j) {
    const double weight = std::exp(scores[j - keys.begin] - row_max);
    sum += weight;
    const double* v_row = v + kv_offset(p, b, j, h_k);
    for (int c = 0; c < d; ++c) out_row[c] += weight * v_row[c];
  }
  for (int c = 0; c < d; ++c) out_row[c] /= sum;
  return row_max + std::log(sum);
}

}  // namespace

void check_problem(const Problem& p) {
  if (p.batch < 0) invalid("batch = " + std::to_string(p.batch) + " is negative");
  if (p.num_heads <= 0 || p.num_heads_k <= 0 || p.head_dim <= 0) {
    invalid("num_heads, num_heads_k and head_dim must be positive, got " + std::to_string(p.num_heads) + ", " +
            std::to_string(p.num_heads_k) + " and " + std::to_string(p.head_dim));
  }
  if (p.num_heads % p.num_heads_k != 0) {
    invalid("num_heads = " + std::to_string(p.num_heads) + " is not a multiple of num_heads_k = " +
            std::to_string(p.num_heads_k));
  }
  if (p.seqlen_q < 0 || p.seqlen_k < 0) {
    invalid("seqlen_q and seqlen_k must be >= 0, got " + std::to_string(p.seqlen_q) + " and " +
            std::to_string(p.seqlen_k));
  }
  if (p.window_left < -1 || p.window_right < -1) {
    invalid("window_left and window_right must be >= -1, got " + std::to_string(p.window_left) + " and " +
            std::to_string(p.window_right));
  }
  if (p.is_causal && p.window_right > 0) {
    invalid("is_causal is window_right 0; window_right = " + std::to_string(p.window_right) + " conflicts with it");
  }
  if (!(p.softcap >= 0.0) || !std::isfinite(p.softcap)) invalid("softcap = " + std::to_string(p.softcap));
  if (p.cu_seqlens_q.empty() != p.cu_seqlens_k.empty()) invalid("cu_seqlens_q and cu_seqlens_k go together");
  if (is_varlen(p)) {
    check_offsets(p.cu_seqlens_q, "cu_seqlens_q", p.batch);
    check_offsets(p.cu_seqlens_k, "cu_seqlens_k", p.batch);
  }
  if (!p.seqused_k.empty() && p.seqused_k.size() != static_cast<size_t>(p.batch)) {
    invalid("seqused_k has " + std::to_string(p.seqused_k.size()) + " entries for batch " + std::to_string(p.batch));
  }
}

bool is_varlen(const Problem& p) { return !p.cu_seqlens_q.empty(); }

std::vector<int> cu_seqlens_of(const std::vector<int>& lengths) {
  std::vector<int> offsets = {0};
  for (const int length : lengths) offsets.push_back(offsets.back() + length);
  return offsets;
}

int64_t total_q(const Problem& p) { return is_varlen(p) ? p.cu_seqlens_q.back() : int64_t{p.batch} * p.seqlen_q; }

int64_t total_k(const Problem& p) { return is_varlen(p) ? p.cu_seqlens_k.back() : int64_t{p.batch} * p.seqlen_k; }

int64_t q_elements(const Problem& p) { return total_q(p) * p.num_heads * p.head_dim; }

int64_t kv_elements(const Problem& p) { return total_k(p) * p.num_heads_k * p.head_dim; }

int64_t lse_elements(const Problem& p) { return total_q(p) * p.num_heads; }

int seqlen_of_q(const Problem& p, int b) {
  return is_varlen(p) ? p.cu_seqlens_q[b + 1] - p.cu_seqlens_q[b] : p.seqlen_q;
}

int seqlen_of_k(const Problem& p, int b) {
  const int keys = is_varlen(p) ? p.cu_seqlens_k[b + 1] - p.cu_seqlens_k[b] : p.seqlen_k;
  return p.seqused_k.empty() ? keys : std::clamp(p.seqused_k[b], 0, keys);
}

int64_t q_offset(const Problem& p, int b, int i, int h) {
  return ((first_q_row(p, b) + i) * p.num_heads + h) * p.head_dim;
}

int64_t kv_offset(const Problem& p, int b, int j, int h_k) {
  return ((first_k_row(p, b) + j) * p.num_heads_k + h_k) * p.head_dim;
}

int64_t lse_index(const Problem& p, int b, int h, int i) {
  if (is_varlen(p)) return int64_t{h} * total_q(p) + p.cu_seqlens_q[b] + i;
  return (int64_t{b} * p.num_heads + h) * p.seqlen_q + i;
}

KeyRange visible_keys(const Problem& p, int b, int i) {
  const int64_t len_k = seqlen_of_k(p, b);
  // Bottom-right alignment: the diagonal of row i is key i + len_k - len_q.
  const int64_t diagonal = int64_t{i} + len_k - seqlen_of_q(p, b);
  const int right = p.is_causal ? 0 : p.window_right;
  int64_t begin = 0;
  int64_t end = len_k;
  if (p.window_left >= 0) begin = std::max<int64_t>(begin, diagonal - p.window_left);
  if (right >= 0) end = std::min<int64_t>(end, diagonal + right + 1);
  if (begin >= end) return {};
  return {static_cast<int>(begin), static_cast<int>(end)};
}

double attention_row(const Problem& problem, const double* q, const double* k, const double* v, int b, int h, int i,
                     double* out_row) {
  check_problem(problem);
  if (b < 0 || b >= problem.batch || h < 0 || h >= problem.num_heads || i < 0 || i >= seqlen_of_q(problem, b)) {
    invalid("row (batch " + std::to_string(b) + ", head " + std::to_string(h) + ", row " + std::to_string(i) +
            ") is outside the problem");
  }
  return row_unchecked(problem, q, k, v, b, h, i, out_row);
}

void attention_forward(const Problem& problem, const double* q, const double* k, const double* v, double* out,
                       double* lse, int threads) {
  const Problem& p = problem;
  check_problem(p);
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
      const int rows = seqlen_of_q(p, b);
      for (int i = 0; i < rows; ++i) {
        const double row_lse = row_unchecked(p, q, k, v, b, h, i, out + q_offset(p, b, i, h));
        if (lse != nullptr) lse[lse_index(p, b, h, i)] = row_lse;
      }
    }
  };
  std::vector<std::thread> pool;
  for (int64_t t = 1; t < workers; ++t) pool.emplace_back(work, t);
  work(0);
  for (std::thread& thread : pool) thread.join();
}

}  // namespace flash::reference
