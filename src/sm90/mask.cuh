// Which keys each query row of one batch entry sees: the entry's seqlen_k tail and, optionally, a
// window around the bottom-right-aligned diagonal: query i sees key j when
//   i + seqlen_k - seqlen_q - window_left <= j <= i + seqlen_k - seqlen_q + window_right,
// each side unbounded at -1 (causal is window_right = 0). A policy object built per tile from the
// entry's lengths: it gives a query tile its key-block range, says which blocks need masking, and
// masks. With GQA packing a tile's rows are (query, head in group) pairs, `pack` rows per query:
// tile row r holds query r / pack.
#pragma once

#include <cmath>

#include <cute/tensor.hpp>

#include "sm90/utils.cuh"

namespace flash::sm90 {

// kGeneral false (the dense kernel): window_left is -1 and pack 1, and both cost nothing.
template <int kBlockM, int kBlockN, bool kGeneral>
struct FwdMask {
  static constexpr bool kLeftWindow = kGeneral;
  // An unbounded window side: far outside any row's reach (validation keeps lengths below 2^30),
  // yet row + it cannot overflow int.
  static constexpr int kUnbounded = 1 << 30;

  int seqlen_q;
  int seqlen_k;
  // Row `row` sees keys [row + diag_lo, row + diag_hi) within [0, seqlen_k). A left window of at
  // least seqlen_k - 1 keys hides no key from any row (the last row's reaches key 0): unbounded.
  int diag_lo;
  int diag_hi;
  int pack;   // tile rows per query row (kGeneral only)

  CUTE_HOST_DEVICE FwdMask(int seqlen_q_, int seqlen_k_, int window_left, int window_right, int pack_ = 1)
      : seqlen_q(seqlen_q_),
        seqlen_k(seqlen_k_),
        diag_lo(window_left >= 0 && window_left < seqlen_k_ - 1 ? clamp_diag(int64_t(seqlen_k_) - seqlen_q_ - window_left)
                                                                 : -kUnbounded),
        diag_hi(window_right >= 0 ? clamp_diag(int64_t(seqlen_k_) - seqlen_q_ + window_right + 1) : kUnbounded),
        pack(pack_) {}

  // The query of tile-row index `row`, and the tile rows of the entry (capped: an entry longer
  // than the launch's seqlen_q has rows past its last tile, which no tile reaches).
  CUTE_HOST_DEVICE int query_of(int row) const { return kGeneral ? row / pack : row; }
  CUTE_HOST_DEVICE int rows() const {
    return kGeneral ? int(min(int64_t(seqlen_q) * pack, int64_t(kUnbounded))) : seqlen_q;
  }

  // Windows wider than any sequence are unbounded in effect; the clamp keeps int arithmetic exact.
  CUTE_HOST_DEVICE static int clamp_diag(int64_t diag) {
    return int(diag < -kUnbounded ? -kUnbounded : (diag > kUnbounded ? kUnbounded : diag));
  }

  // The first and last query a tile holds.
  CUTE_HOST_DEVICE int first_row(int m_block) const { return query_of(m_block * kBlockM); }
  CUTE_HOST_DEVICE int last_row(int m_block) const { return query_of(min((m_block + 1) * kBlockM, rows()) - 1); }
  // Keys [begin, end) that row `row` sees, clipped to [0, seqlen_k) (end <= begin: none).
  CUTE_HOST_DEVICE int key_begin(int row) const { return kLeftWindow ? max(row + diag_lo, 0) : 0; }
  CUTE_HOST_DEVICE int key_end(int row) const { return min(row + diag_hi, seqlen_k); }

  // Key blocks [n_block_begin, n_block_end) hold every key some row of query tile m_block sees;
  // the range is empty when no row sees a key.
  CUTE_HOST_DEVICE int n_block_end(int m_block) const { return block_end_of(key_end(last_row(m_block))); }
  CUTE_HOST_DEVICE int n_block_begin(int m_block) const { return key_begin(first_row(m_block)) / kBlockN; }

  // Blocks at or above this index cross the seqlen_k tail or the right window edge for some row
  // (the tile's first row sees the fewest keys on the right): block n is whole for that row when
  // (n + 1) * kBlockN <= its key_end.
  CUTE_HOST_DEVICE int first_right_masked_block(int m_block) const { return masked_from(key_end(first_row(m_block))); }
  // Blocks below this index cross the left window edge for some row (the tile's last row sees the
  // fewest keys on the left).
  CUTE_HOST_DEVICE int left_masked_block_end(int m_block) const {
    return (key_begin(last_row(m_block)) + kBlockN - 1) / kBlockN;
  }

  // The same end for some of a tile's rows, [row0, row0 + num_rows) in tile-row index (a consumer
  // warpgroup's): rows that end before the tile's see fewer key blocks on the right, and rows that
  // all lie past the entry's last see none (0).
  CUTE_HOST_DEVICE int n_block_end_of_rows(int row0, int num_rows) const {
    int const last = min(row0 + num_rows, rows()) - 1;
    return last < row0 ? 0 : block_end_of(key_end(query_of(last)));
  }

  // The blocks that hold keys [0, key_end), and the first block a row seeing keys below key_end
  // does not see whole.
  CUTE_HOST_DEVICE static int block_end_of(int key_end) { return key_end <= 0 ? 0 : (key_end + kBlockN - 1) / kBlockN; }
  CUTE_HOST_DEVICE static int masked_from(int key_end) { return key_end <= 0 ? 0 : key_end / kBlockN; }

  // Sets the scores of keys a row does not see to -inf. tScS holds each score's (row, col)
  // coordinate inside the (kBlockM, kBlockN) tile, in the same order as tSrS. Each thread's rows
  // are whole in the (rows, cols) view, so the column limits are computed once per row. In the
  // general kernel a tile without GQA packing and without a left window (causal prefill, packed
  // or not) takes the dense kernel's code: the row division and the left comparisons cost 115 of
  // the masked block's ~300 instructions.
  template <class TensorS, class TensorC>
  CUTE_DEVICE void apply(TensorS& tSrS, TensorC const& tScS, int m_block, int n_block) const {
    if constexpr (kGeneral) {
      if (pack == 1 && diag_lo == -kUnbounded) {
        apply_rows</*kPacked=*/false, /*kLeft=*/false>(tSrS, tScS, m_block, n_block);
        return;
      }
    }
    apply_rows<kGeneral, kLeftWindow>(tSrS, tScS, m_block, n_block);
  }

 private:
  template <bool kPacked, bool kLeft, class TensorS, class TensorC>
  CUTE_DEVICE void apply_rows(TensorS& tSrS, TensorC const& tScS, int m_block, int n_block) const {
    Tensor scores = make_tensor(tSrS.data(), rowcol_layout(tSrS.layout()));
    Tensor coords = make_tensor(tScS.data(), rowcol_layout(tScS.layout()));
    int const col0 = n_block * kBlockN;
    CUTE_UNROLL
    for (int r = 0; r < size<0>(scores); ++r) {
      int const tile_row = m_block * kBlockM + get<0>(coords(r, 0));
      int const row = kPacked ? tile_row / pack : tile_row;
      int const lo = row + diag_lo - col0;
      int const hi = min(row + diag_hi, seqlen_k) - col0;
      CUTE_UNROLL
      for (int c = 0; c < size<1>(scores); ++c) {
        int const col = get<1>(coords(r, c));
        if (col >= hi || (kLeft && col < lo)) scores(r, c) = -INFINITY;
      }
    }
  }
};

}  // namespace flash::sm90
