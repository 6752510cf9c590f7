// The key-block ranges of sm90/mask.cuh, run on the host (no GPU): for every query tile of the
// kernels' tile shapes and every consumer warpgroup's 64 rows of it, the blocks a warpgroup
// computes (row_blocks) hold every key its rows see and no block past the last such key, the
// blocks it leaves unmasked hold only keys all its rows see on the right, and the tile's range is
// the union of its warpgroups' ranges. Each row's keys come from the mask's definition (query i sees
// key j when i + sk - sq - left <= j <= i + sk - sq + right, 0 <= j < sk), not from the mask's
// code. Compiled by nvcc with the kernels' headers (the mask's header needs CUDA's intrinsics).
#include <gtest/gtest.h>

#include <algorithm>

#include "sm90/mask.cuh"

namespace {

struct Case {
  int seqlen_q, seqlen_k, window_left, window_right, pack;
};

// Keys [begin, end) of query `query`, from the definition (end <= begin: none).
struct Keys {
  int begin, end;
};
Keys keys_of(Case const& c, int query) {
  int const diag = query + c.seqlen_k - c.seqlen_q;
  int const begin = c.window_left < 0 ? 0 : std::max(diag - c.window_left, 0);
  int const end = c.window_right < 0 ? c.seqlen_k : std::min(diag + c.window_right + 1, c.seqlen_k);
  return {begin, end};
}

template <int kBlockM, int kBlockN, bool kGeneral>
void check_case(Case const& c) {
  using Mask = flash::sm90::FwdMask<kBlockM, kBlockN, kGeneral>;
  constexpr int kRowsPerWarpGroup = 64;
  Mask const mask(c.seqlen_q, c.seqlen_k, c.window_left, c.window_right, c.pack);
  int const rows = c.seqlen_q * c.pack;
  ASSERT_EQ(mask.rows(), rows);
  for (int m = 0; m * kBlockM < rows; ++m) {
    int tile_end = 0;
    int tile_masked = 1 << 30;
    for (int w = 0; w < kBlockM / kRowsPerWarpGroup; ++w) {
      int const row0 = m * kBlockM + w * kRowsPerWarpGroup;
      auto const own = mask.row_blocks(row0, kRowsPerWarpGroup);
      int last_key = -1;                 // the last key any of the warpgroup's rows sees
      int first_unseen_right = 1 << 30;  // the first key past some row's right edge
      bool any_row = false;
      for (int r = row0; r < std::min(row0 + kRowsPerWarpGroup, rows); ++r) {
        Keys const k = keys_of(c, r / c.pack);
        any_row = true;
        first_unseen_right = std::min(first_unseen_right, std::max(k.end, 0));
        if (k.end > k.begin) last_key = std::max(last_key, k.end - 1);
      }
      SCOPED_TRACE(testing::Message() << "tile " << kBlockM << "x" << kBlockN << (kGeneral ? " general" : " dense")
                                      << " sq " << c.seqlen_q << " sk " << c.seqlen_k << " window (" << c.window_left
                                      << ", " << c.window_right << ") pack " << c.pack << " m_block " << m
                                      << " warpgroup " << w);
      int const expected_end = last_key < 0 ? 0 : last_key / kBlockN + 1;
      EXPECT_EQ(own.n_block_end, expected_end);
      if (!any_row) continue;
      // Blocks below first_right_masked hold no key past any row's right edge; the block at it
      // (if the warpgroup computes it) holds one.
      EXPECT_LE(own.first_right_masked * kBlockN, first_unseen_right);
      if (own.first_right_masked < own.n_block_end) {
        EXPECT_GT((own.first_right_masked + 1) * kBlockN, first_unseen_right);
      }
      tile_end = std::max(tile_end, own.n_block_end);
      tile_masked = std::min(tile_masked, own.first_right_masked);
    }
    SCOPED_TRACE(testing::Message() << "tile " << kBlockM << "x" << kBlockN << " sq " << c.seqlen_q << " sk "
                                    << c.seqlen_k << " m_block " << m);
    EXPECT_EQ(mask.n_block_end(m), tile_end);
    EXPECT_EQ(mask.first_right_masked_block(m), tile_masked);
  }
}

// Causal and non-causal, seqlen_q above, equal to and below seqlen_k, windows on each side, tails
// that are not whole blocks, rows that see no key (seqlen_q > seqlen_k, causal).
constexpr Case kDenseCases[] = {
    {512, 512, -1, 0, 1},  {512, 512, -1, -1, 1}, {1024, 1024, -1, 0, 1}, {1000, 1000, -1, 0, 1},
    {113, 239, -1, 0, 1},  {239, 113, -1, 0, 1},  {1100, 700, -1, 0, 1},  {1, 1, -1, 0, 1},
    {17, 2049, -1, 0, 1},  {300, 300, -1, 5, 1},  {2049, 2049, -1, 0, 1}, {4872, 4872, -1, -1, 1},
    {65, 65, -1, 0, 1},    {129, 1, -1, -1, 1},
};
// The general kernel adds left windows and GQA-packed rows (pack query heads per query).
constexpr Case kGeneralCases[] = {
    {512, 512, 100, 0, 1}, {700, 300, 64, 17, 1}, {8, 1000, -1, 0, 8}, {3, 700, -1, 0, 4},
    {1, 16384, -1, 0, 8},  {33, 33, 0, 0, 2},     {200, 200, -1, 0, 3},
};

TEST(MaskBlocks, DenseTileShapes) {
  for (Case const& c : kDenseCases) {
    check_case<192, 128, false>(c);   // 16-bit and FP8 d64
    check_case<128, 128, false>(c);   // d80..d128
    check_case<128, 64, false>(c);    // d192, d256
    check_case<128, 224, false>(c);   // FP8 d128
  }
}

TEST(MaskBlocks, GeneralTileShapes) {
  for (Case const& c : kDenseCases) {
    check_case<128, 128, true>(c);
    check_case<64, 128, true>(c);
  }
  for (Case const& c : kGeneralCases) {
    check_case<128, 128, true>(c);
    check_case<128, 64, true>(c);
    check_case<64, 64, true>(c);
  }
}

// The ranges the kernels' tiles save on the FA3-paper grid's causal 512-token shape (192 x 128,
// d64): of the 27 warpgroup blocks the three query tiles took, 20 hold a key some row sees.
TEST(MaskBlocks, CausalDiagonalSaving) {
  flash::sm90::FwdMask<192, 128, false> const mask(512, 512, -1, 0);
  int tile_blocks = 0, warpgroup_blocks = 0;
  for (int m = 0; m * 192 < 512; ++m) {
    tile_blocks += 3 * mask.n_block_end(m);
    for (int w = 0; w < 3; ++w) warpgroup_blocks += mask.row_blocks(m * 192 + 64 * w, 64).n_block_end;
  }
  EXPECT_EQ(tile_blocks, 27);
  EXPECT_EQ(warpgroup_blocks, 20);
}

}  // namespace
