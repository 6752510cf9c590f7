// CPU reference attention forward in double precision: plain loops, independent of the kernels.
#pragma once

#include <cstdint>

namespace flash::reference {

struct Problem {
  int batch = 0;
  int seqlen_q = 0;
  int seqlen_k = 0;
  int num_heads = 0;
  int num_heads_k = 0;
  int head_dim = 0;
  bool is_causal = false;       // bottom-right aligned: query i sees key j when j <= i + seqlen_k - seqlen_q
  double softmax_scale = 0.0;   // 0 means 1 / sqrt(head_dim)
};

// q: [batch, seqlen_q, num_heads, head_dim]; k, v: [batch, seqlen_k, num_heads_k, head_dim], all
// contiguous. out: [batch, seqlen_q, num_heads, head_dim]; lse: [batch, num_heads, seqlen_q] or null.
// A row that sees no key gets output 0 and LSE -inf. Work is split over (batch, head) across
// `threads` host threads (0 = hardware concurrency).
void attention_forward(const Problem& problem, const double* q, const double* k, const double* v,
                       double* out, double* lse, int threads = 0);

// One query row (batch b, head h, row i): writes head_dim outputs to out_row and returns the LSE.
double attention_row(const Problem& problem, const double* q, const double* k, const double* v,
                     int b, int h, int i, double* out_row);

}  // namespace flash::reference
