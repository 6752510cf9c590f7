// The persistent tile scheduler (sm90/tile_scheduler.cuh), walked on the host for every CTA of a
// grid: each tile is visited exactly once, and in the paired order (the dense kernel's causal
// launches) every CTA takes a head's query blocks two at a time, longest with shortest, so that
// each pair sees the same number of key blocks.
#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <map>
#include <tuple>
#include <vector>

#include "sm90/tile_scheduler.cuh"

namespace {

using flash::sm90::StaticPersistentScheduler;
using flash::sm90::TileCoord;
using Scheduler = StaticPersistentScheduler;

// Every CTA's tiles, in its order.
std::vector<std::vector<TileCoord>> walk(Scheduler::Params const& p, int grid) {
  std::vector<std::vector<TileCoord>> tiles(grid);
  for (int cta = 0; cta < grid; ++cta) {
    for (int t = Scheduler::first_tile(p, cta); Scheduler::valid(p, t); t = Scheduler::next_tile(p, t, grid)) {
      tiles[cta].push_back(Scheduler::coord<true>(p, t));
    }
  }
  return tiles;
}

struct Shape {
  int m_blocks, heads, batch, splits;
};
constexpr Shape kShapes[] = {{1, 1, 1, 1}, {2, 3, 1, 1}, {3, 1, 1, 1}, {3, 2, 2, 1}, {4, 1, 3, 2},
                             {5, 3, 1, 1}, {5, 4, 1, 1}, {11, 2, 3, 1}, {7, 3, 1, 3}, {22, 16, 1, 1}};
constexpr int kGrids[] = {1, 2, 5, 7, 132};

// (m_block, head, batch, split) of every real tile, counted over all CTAs.
std::map<std::tuple<int, int, int, int>, int> visits(std::vector<std::vector<TileCoord>> const& tiles, int m_blocks) {
  std::map<std::tuple<int, int, int, int>, int> seen;
  for (auto const& cta : tiles) {
    for (TileCoord const& c : cta) {
      if (c.m_block < m_blocks) ++seen[{c.m_block, c.head, c.batch, c.split}];
    }
  }
  return seen;
}

void expect_every_tile_once(Shape const& s, bool paired, int grid) {
  Scheduler::Params const p = Scheduler::make_params(s.m_blocks, s.heads, s.batch, s.splits, paired);
  auto const seen = visits(walk(p, grid), s.m_blocks);
  EXPECT_EQ(seen.size(), size_t(s.m_blocks) * s.heads * s.batch * s.splits) << "grid " << grid;
  for (auto const& [tile, count] : seen) {
    EXPECT_EQ(count, 1) << "m_block " << std::get<0>(tile) << " head " << std::get<1>(tile) << " grid " << grid;
    EXPECT_LT(std::get<1>(tile), s.heads);
    EXPECT_LT(std::get<2>(tile), s.batch);
    EXPECT_LT(std::get<3>(tile), s.splits);
  }
}

TEST(TileScheduler, StridedOrderVisitsEveryTileOnce) {
  for (Shape const& s : kShapes) {
    for (int grid : kGrids) expect_every_tile_once(s, /*paired=*/false, grid);
  }
}

TEST(TileScheduler, PairedOrderVisitsEveryTileOnce) {
  for (Shape const& s : kShapes) {
    for (int grid : kGrids) expect_every_tile_once(s, /*paired=*/true, grid);
  }
}

// Within a head the strided order runs the last query block (under a causal mask the longest) first.
TEST(TileScheduler, StridedOrderStartsWithTheLastQueryBlock) {
  Scheduler::Params const p = Scheduler::make_params(5, 2, 1, 1, false);
  EXPECT_EQ(Scheduler::coord<false>(p, 0).m_block, 4);
  EXPECT_EQ(Scheduler::coord<false>(p, 4).m_block, 0);
  EXPECT_EQ(Scheduler::coord<false>(p, 5).m_block, 4);
  EXPECT_EQ(Scheduler::coord<false>(p, 5).head, 1);
}

// A CTA's tiles come in pairs: query blocks m and M - 1 - m of one head, the longer first, or
// with an odd M the middle blocks of two consecutive heads, or the last head's middle block and
// the empty slot (m_block == M, which has no rows) when the head count is odd too.
TEST(TileScheduler, PairedOrderPairsLongestWithShortest) {
  for (Shape const& s : kShapes) {
    for (int grid : kGrids) {
      Scheduler::Params const p = Scheduler::make_params(s.m_blocks, s.heads, s.batch, s.splits, true);
      EXPECT_EQ(p.num_tiles % 2, 0);
      int const middle = (s.m_blocks - 1) / 2;
      auto group = [&](TileCoord const& t) { return (t.batch * s.heads + t.head) * s.splits + t.split; };
      int empty_slots = 0;
      for (auto const& cta : walk(p, grid)) {
        ASSERT_EQ(cta.size() % 2, 0u) << "M " << s.m_blocks << " grid " << grid;
        for (size_t i = 0; i < cta.size(); i += 2) {
          TileCoord const& first = cta[i];
          TileCoord const& second = cta[i + 1];
          if (second.m_block == s.m_blocks) {
            empty_slots += first.m_block == s.m_blocks ? 2 : 1;
            if (first.m_block != s.m_blocks) {
              EXPECT_EQ(first.m_block, middle);
              EXPECT_EQ(group(first), p.num_groups - 1) << "only the last head's middle block lacks a partner";
            }
          } else if (group(first) == group(second)) {
            EXPECT_EQ(first.m_block + second.m_block, s.m_blocks - 1);
            EXPECT_GT(first.m_block, second.m_block) << "the longer tile first";
          } else {
            EXPECT_EQ(s.m_blocks % 2, 1) << "pairs across heads only for an odd query-block count";
            EXPECT_EQ(first.m_block, middle);
            EXPECT_EQ(second.m_block, middle);
            EXPECT_EQ(group(second), group(first) + 1);
          }
        }
      }
      // An odd number of heads leaves the second head of the last two-head span empty: M slots.
      int const groups = s.heads * s.batch * s.splits;
      EXPECT_EQ(empty_slots, s.m_blocks % 2 == 1 && groups % 2 == 1 ? s.m_blocks : 0);
    }
  }
}

// With causal costs (query block m sees m + 1 key blocks, the empty slot none), every CTA's work
// is within one pair of every other's, also where the grid is a multiple of the pairs per head
// (with an empty slot per head, an odd M then gave some CTAs a half-cost pair in every head).
TEST(TileScheduler, PairedOrderBalancesCausalCost) {
  struct Case {
    int m_blocks, heads, batch, grid;
  };
  const Case cases[] = {{3, 64, 1, 2}, {3, 32, 32, 132}, {11, 32, 8, 132}, {16, 16, 8, 132}, {22, 16, 1, 132}, {7, 5, 3, 12}};
  for (Case const& c : cases) {
    Scheduler::Params const p = Scheduler::make_params(c.m_blocks, c.heads, c.batch, 1, true);
    int const grid = Scheduler::grid_size(p, c.grid, true);
    int lo = INT32_MAX, hi = 0;
    for (auto const& cta : walk(p, grid)) {
      int cost = 0;
      for (TileCoord const& t : cta) cost += t.m_block < c.m_blocks ? t.m_block + 1 : 0;
      lo = std::min(lo, cost);
      hi = std::max(hi, cost);
    }
    EXPECT_LE(hi - lo, c.m_blocks + 1) << "M " << c.m_blocks << " heads " << c.heads << " batch " << c.batch
                                       << " grid " << grid << ": CTA costs " << lo << " .. " << hi;
  }
}

// Paired launches take one CTA per pair, at most the CTAs that run at once; strided ones one CTA
// per tile when uneven or few, else one per slot.
TEST(TileScheduler, GridSize) {
  Scheduler::Params const paired = Scheduler::make_params(22, 16, 1, 1, true);   // 352 tiles, 176 pairs
  EXPECT_EQ(Scheduler::grid_size(paired, 132, true), 132);
  EXPECT_EQ(Scheduler::grid_size(paired, 264, true), 176);
  Scheduler::Params const odd = Scheduler::make_params(3, 1, 1, 1, true);        // 3 tiles and an empty slot
  EXPECT_EQ(odd.num_tiles, 6);   // two heads' positions, the second head's empty
  EXPECT_EQ(Scheduler::grid_size(odd, 132, true), 3);
  Scheduler::Params const strided = Scheduler::make_params(22, 16, 1, 1, false);
  EXPECT_EQ(Scheduler::grid_size(strided, 132, false), 132);
  EXPECT_EQ(Scheduler::grid_size(strided, 132, true), 352);
  EXPECT_EQ(Scheduler::grid_size(strided, 400, false), 352);
}

}  // namespace
