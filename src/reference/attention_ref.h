// CPU reference attention forward in double precision: plain loops, independent of the kernels.
#pragma once

#include <cstdint>
#include <vector>

namespace flash::reference {

// The semantics are those of FlashAttentionParams (include/flash_api.h). Query i (0-based within
// its sequence) of batch entry b sees key j when
//   j < len_k,
//   i + len_k - len_q - window_left <= j    (when window_left >= 0),
//   j <= i + len_k - len_q + window_right   (when window_right >= 0; is_causal makes it 0),
// with len_q, len_k the entry's lengths (seqlen_of_q, seqlen_of_k). A row that sees no key gets
// output 0 and LSE -inf.
struct Problem {
  int batch = 0;
  int seqlen_q = 0;             // dense only; with cu_seqlens the lengths come from the offsets
  int seqlen_k = 0;
  int num_heads = 0;
  int num_heads_k = 0;
  int head_dim = 0;
  bool is_causal = false;       // bottom-right aligned: query i sees key j when j <= i + seqlen_k - seqlen_q
  double softmax_scale = 0.0;   // 0 means 1 / sqrt(head_dim)
  int window_left = -1;         // as FlashAttentionParams::window_size_left; -1 unbounded
  int window_right = -1;        // as window_size_right; is_causal means window_right = 0 (allowed: -1 or 0)
  double softcap = 0.0;         // > 0: score s (already scaled) -> softcap * tanh(s / softcap)
  // Empty: dense. Otherwise batch + 1 non-decreasing offsets each (packed layout): entry b owns
  // rows [cu_seqlens_q[b], cu_seqlens_q[b + 1]) of q and out and [cu_seqlens_k[b], cu_seqlens_k[b + 1])
  // of k and v.
  std::vector<int> cu_seqlens_q{}, cu_seqlens_k{};
  // Empty: all keys. Otherwise batch entries: entry b attends to its first seqused_k[b] keys
  // (clamped to [0, its key count]).
  std::vector<int> seqused_k{};
};

// Layouts, all contiguous:
//   dense:  q, out [batch, seqlen_q, num_heads, head_dim]; k, v [batch, seqlen_k, num_heads_k, head_dim];
//           lse [batch, num_heads, seqlen_q]
//   varlen: q, out [total_q, num_heads, head_dim];        k, v [total_k, num_heads_k, head_dim];
//           lse [num_heads, total_q]
// Rows of out (and lse) that belong to no sequence are not written (varlen with cu_seqlens_q[0] > 0).
// Throws std::invalid_argument for an inconsistent problem (check_problem). Work is split over
// (batch, head) across `threads` host threads (0 = hardware concurrency).
void attention_forward(const Problem& problem, const double* q, const double* k, const double* v,
                       double* out, double* lse, int threads = 0);

// One query row (batch entry b, head h, row i within entry b's sequence): writes head_dim outputs
// to out_row and returns the LSE. Throws std::invalid_argument for an inconsistent problem or
// (b, h, i) outside it.
double attention_row(const Problem& problem, const double* q, const double* k, const double* v,
                     int b, int h, int i, double* out_row);

// Throws std::invalid_argument naming the problem: non-positive heads or head_dim, num_heads not
// a multiple of num_heads_k, negative batch or lengths, windows < -1, is_causal with
// window_right > 0, negative or non-finite softcap, cu_seqlens not both or neither, not batch + 1
// entries or decreasing or starting below 0, seqused_k not batch entries.
void check_problem(const Problem& problem);

bool is_varlen(const Problem& problem);   // cu_seqlens_q/k given

// Offsets (cu_seqlens) of sequences of these lengths packed along one token dimension: 0, l0,
// l0 + l1, ...
std::vector<int> cu_seqlens_of(const std::vector<int>& lengths);

// Rows of the q/out tensor (batch * seqlen_q, or cu_seqlens_q.back()) and of the k/v tensor.
int64_t total_q(const Problem& problem);
int64_t total_k(const Problem& problem);
// Elements of q (and out), of k (and v), and of the LSE (num_heads * total_q in both layouts).
int64_t q_elements(const Problem& problem);
int64_t kv_elements(const Problem& problem);
int64_t lse_elements(const Problem& problem);

// Query rows of entry b, and the keys it attends to (after seqused_k).
int seqlen_of_q(const Problem& problem, int b);
int seqlen_of_k(const Problem& problem, int b);

// Element offset of (b, i, h, 0) in q and out; of (b, j, h_k, 0) in k and v; index of (b, h, i) in
// the LSE. i and j are rows within entry b's sequence.
int64_t q_offset(const Problem& problem, int b, int i, int h);
int64_t kv_offset(const Problem& problem, int b, int j, int h_k);
int64_t lse_index(const Problem& problem, int b, int h, int i);

// The keys [begin, end) that query row i of entry b sees (begin == end: none).
struct KeyRange {
  int begin = 0;
  int end = 0;
  int count() const { return end - begin; }
};
KeyRange visible_keys(const Problem& problem, int b, int i);

}  // namespace flash::reference
