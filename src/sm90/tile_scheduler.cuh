// Maps CTAs to (query block, split, head, batch) tiles.
#pragma once

#include <cstdint>

#include <cute/config.hpp>

namespace flash::sm90 {

// head is the query head, or the KV head when GQA packing puts a KV head's query heads in one
// tile; split is the tile's share of the key blocks (0 when the keys are not split).
struct TileCoord {
  int m_block;
  int head;
  int batch;
  int split;
};

// Tiles c, c + grid, c + 2 grid, ... go to CTA c. With a persistent grid (one CTA per SM slot) a CTA's
// next tile reuses its shared-memory pipeline and the producer loads it while the consumers finish
// the last one.
// Tile order: query blocks vary fastest, so the tiles in flight share one head's K and V, which L2
// holds, instead of each wave streaming every head's K and V from DRAM again (measured on H100, bf16
// d128 MHA, 8 x 2k tokens: 362 TFLOP/s with heads fastest, DRAM-bound, 619 with query blocks
// fastest). Heads come next, so query heads that share a KV head run together. Within a head the
// last query blocks come first: under a causal mask they see the most keys, so the longest tiles
// start first. The splits of one tile come next to each other.
struct StaticPersistentScheduler {
  struct Params {
    int num_m_blocks;
    int num_heads;
    int batch;
    int num_splits;
    int num_tiles;
  };

  static Params make_params(int num_m_blocks, int num_heads, int batch, int num_splits) {
    return {num_m_blocks, num_heads, batch, num_splits, num_m_blocks * num_heads * batch * num_splits};
  }

  // Non-causal tiles all cost the same, so one CTA per SM walking every grid-th tile is balanced.
  // Causal tiles do not: a static stride gave some CTAs only long tiles (at d64 4k there are 22
  // query blocks per head and 132 = 6 x 22 SMs, so each CTA kept one query block throughout) and
  // measured up to 40% slower than one CTA per tile, where the hardware hands the next tile to
  // whichever SM frees first. Causal launches therefore get one CTA per tile; the same loop then
  // runs once per CTA. So do other launches whose tiles differ in cost (`uneven`): a right window
  // (the causal diagonal and its generalisation), seqused_k, or a packed batch whose entries span
  // several query tiles.
  // `slots`: the CTAs that run at once, SMs x CTAs per SM.
  static int grid_size(Params const& p, int slots, bool uneven) {
    return uneven || p.num_tiles < slots ? p.num_tiles : slots;
  }

  CUTE_DEVICE static int first_tile() { return blockIdx.x; }
  CUTE_DEVICE static int next_tile(int tile) { return tile + gridDim.x; }
  CUTE_DEVICE static bool valid(Params const& p, int tile) { return tile < p.num_tiles; }

  // kSplit false: num_splits is 1 (the dense kernel), and the split index costs nothing.
  template <bool kSplit>
  CUTE_DEVICE static TileCoord coord(Params const& p, int tile) {
    int const m_block = p.num_m_blocks - 1 - tile % p.num_m_blocks;
    int rest = tile / p.num_m_blocks;
    int split = 0;
    if constexpr (kSplit) {
      split = rest % p.num_splits;
      rest /= p.num_splits;
    }
    return {m_block, rest % p.num_heads, rest / p.num_heads, split};
  }
};

}  // namespace flash::sm90
