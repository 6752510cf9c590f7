// The key-block ranges of sm90/mask.cuh, run on the host (no GPU), for every query tile of the
// kernels' tile shapes and every consumer warpgroup's 64 rows of it:
// - the blocks a warpgroup computes (n_block_end_of_rows) hold every key its rows see and no block
//   past the last such key, and the tile's end is the largest of its warpgroups';
// - the tile's first masked block on the right holds a key past some row's right edge and the
//   blocks below it none; the tile's first block holds its first row's first key; the blocks
//   below left_masked_block_end are those holding a key left of some row's window.
// Each row's keys come from the mask's definition (query i sees key j when
// i + sk - sq - left <= j <= i + sk - sq + right, 0 <= j < sk), not from the mask's code.
// Compiled by nvcc with the kernels' headers (the mask's header needs CUDA's intrinsics).
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
  constexpr int kNone = 1 << 30;
  Mask const mask(c.seqlen_q, c.seqlen_k, c.window_left, c.window_right, c.pack);
  int const rows = c.seqlen_q * c.pack;
  ASSERT_EQ(mask.rows(), rows);
  for (int m = 0; m * kBlockM < rows; ++m) {
    SCOPED_TRACE(testing::Message() << "tile " << kBlockM << "x" << kBlockN << (kGeneral ? " general" : " dense")
                                    << " sq " << c.seqlen_q << " sk " << c.seqlen_k << " window (" << c.window_left
                                    << ", " << c.window_right << ") pack " << c.pack << " m_block " << m);
    int tile_end = 0;
    int first_unseen_right = kNone;   // the first key past some row's right edge
    int last_unseen_left = -1;        // the last key left of some row's window (that row sees a key)
    int first_key = kNone;            // the first key the tile's first row sees
    for (int w = 0; w < kBlockM / kRowsPerWarpGroup; ++w) {
      int const row0 = m * kBlockM + w * kRowsPerWarpGroup;
      int last_key = -1;   // the last key any of the warpgroup's rows sees
      for (int r = row0; r < std::min(row0 + kRowsPerWarpGroup, rows); ++r) {
        Keys const k = keys_of(c, r / c.pack);
        first_unseen_right = std::min(first_unseen_right, std::max(k.end, 0));
        if (k.end > k.begin) {
          last_key = std::max(last_key, k.end - 1);
          last_unseen_left = std::max(last_unseen_left, k.begin - 1);
          if (r == m * kBlockM) first_key = k.begin;
        }
      }
      int const expected_end = last_key < 0 ? 0 : last_key / kBlockN + 1;
      EXPECT_EQ(mask.n_block_end_of_rows(row0, kRowsPerWarpGroup), expected_end) << "warpgroup " << w;
      tile_end = std::max(tile_end, expected_end);
    }
    EXPECT_EQ(mask.n_block_end(m), tile_end);
    int const masked = mask.first_right_masked_block(m);
    EXPECT_LE(masked * kBlockN, first_unseen_right);
    if (masked < tile_end) EXPECT_GT((masked + 1) * kBlockN, first_unseen_right);
    if (first_key != kNone) EXPECT_EQ(mask.n_block_begin(m), first_key / kBlockN);
    if (tile_end > 0) EXPECT_EQ(mask.left_masked_block_end(m), (last_unseen_left + kBlockN) / kBlockN);
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
// The general kernel adds left windows (those of at least seqlen_k - 1 keys hide none: the mask
// drops them) and GQA-packed rows (pack query heads per query).
constexpr Case kGeneralCases[] = {
    {512, 512, 100, 0, 1}, {700, 300, 64, 17, 1}, {8, 1000, -1, 0, 8},  {3, 700, -1, 0, 4},
    {1, 16384, -1, 0, 8},  {33, 33, 0, 0, 2},     {200, 200, -1, 0, 3}, {512, 512, 511, 0, 1},
    {512, 512, 510, 0, 1}, {700, 300, 299, -1, 1}, {700, 300, 298, -1, 1}, {300, 700, 699, 5, 2},
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

// What the per-warpgroup ranges save on the FA3-paper grid's causal 512-token shape (192 x 128,
// d64): of the 27 warpgroup blocks the three query tiles took, 20 hold a key some row sees.
TEST(MaskBlocks, CausalDiagonalSaving) {
  flash::sm90::FwdMask<192, 128, false> const mask(512, 512, -1, 0);
  int tile_blocks = 0, warpgroup_blocks = 0;
  for (int m = 0; m * 192 < 512; ++m) {
    tile_blocks += 3 * mask.n_block_end(m);
    for (int w = 0; w < 3; ++w) warpgroup_blocks += mask.n_block_end_of_rows(m * 192 + 64 * w, 64);
  }
  EXPECT_EQ(tile_blocks, 27);
  EXPECT_EQ(warpgroup_blocks, 20);
}

}  // namespace
