// Which keys each query row sees: the seqlen_k tail and, when causal, the bottom-right-aligned
// diagonal (query i sees key j when j <= i + seqlen_k - seqlen_q). A policy object holding runtime
// lengths: it gives each query tile its key-block range, says which blocks need masking, and masks.
#pragma once

#include <cmath>

#include <cute/tensor.hpp>

#include "sm90/utils.cuh"

namespace flash::sm90 {

template <int kBlockM, int kBlockN>
struct FwdMask {
  int seqlen_q = 0;
  int seqlen_k = 0;
  bool is_causal = false;

  // One past the last key block that some row of query tile m_block sees; 0 when no row sees a key.
  CUTE_HOST_DEVICE int n_block_end(int m_block) const {
    int n_end = (seqlen_k + kBlockN - 1) / kBlockN;
    if (is_causal) {
      int const last_row = min((m_block + 1) * kBlockM, seqlen_q) - 1;
      int const last_key = last_row + seqlen_k - seqlen_q;   // last key that row sees
      n_end = min(n_end, last_key < 0 ? 0 : last_key / kBlockN + 1);
    }
    return n_end;
  }

  // Key blocks at or above this index cross the seqlen_k tail or the causal diagonal for some row
  // of the tile and need masking; blocks below it are fully visible to every row of the tile.
  CUTE_HOST_DEVICE int first_masked_block(int m_block) const {
    int first = seqlen_k / kBlockN;
    if (is_causal) {
      // The tile's first row sees keys [0, visible): block n is whole when (n + 1) * kBlockN <= visible.
      int const visible = m_block * kBlockM + seqlen_k - seqlen_q + 1;
      first = min(first, visible <= 0 ? 0 : visible / kBlockN);
    }
    return first;
  }

  // Sets the scores of keys a row does not see to -inf. tScS holds each score's (row, col)
  // coordinate inside the (kBlockM, kBlockN) tile, in the same order as tSrS. Each thread's rows
  // are whole in the (rows, cols) view, so the column limit is computed once per row and each
  // score costs one compare.
  template <class TensorS, class TensorC>
  CUTE_DEVICE void apply(TensorS& tSrS, TensorC const& tScS, int m_block, int n_block) const {
    Tensor scores = make_tensor(tSrS.data(), rowcol_layout(tSrS.layout()));
    Tensor coords = make_tensor(tScS.data(), rowcol_layout(tScS.layout()));
    int const col0 = n_block * kBlockN;
    int const diagonal = seqlen_k - seqlen_q + 1 - col0;   // row + diagonal: first unseen column
    CUTE_UNROLL
    for (int r = 0; r < size<0>(scores); ++r) {
      int const row = m_block * kBlockM + get<0>(coords(r, 0));
      int const limit = is_causal ? min(seqlen_k - col0, row + diagonal) : seqlen_k - col0;
      CUTE_UNROLL
      for (int c = 0; c < size<1>(scores); ++c) {
        if (get<1>(coords(r, c)) >= limit) scores(r, c) = -INFINITY;
      }
    }
  }
};

}  // namespace flash::sm90
