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
// Paired order (the dense kernel's causal and right-window launches): a causal tile's cost grows
// linearly with its query block, so within a head the blocks go longest, shortest, second longest,
// second shortest, ... and a CTA takes them two at a time: tiles 2c, 2c + 1, then 2c + 2 grid,
// 2c + 2 grid + 1, ... Every pair costs about the same (query blocks m and M - 1 - m see M + 1
// blocks' worth of keys together), so a static stride over pairs is balanced where one over single
// tiles was not (see grid_size), and the grid stays persistent. With an odd count of query blocks
// the head's last pair holds the middle block and an empty slot (m_block = num_m_blocks: no rows).
struct StaticPersistentScheduler {
  struct Params {
    int num_m_blocks;
    int m_slots;       // tile positions per head: num_m_blocks, rounded up to even when paired
    int num_heads;
    int batch;
    int num_splits;
    int num_tiles;
    bool paired;
  };

  static Params make_params(int num_m_blocks, int num_heads, int batch, int num_splits, bool paired) {
    int const m_slots = paired ? num_m_blocks + (num_m_blocks & 1) : num_m_blocks;
    return {num_m_blocks, m_slots, num_heads, batch, num_splits, m_slots * num_heads * batch * num_splits, paired};
  }

  // Non-causal tiles all cost the same, so one CTA per SM walking every grid-th tile is balanced.
  // Causal tiles do not: a static stride gave some CTAs only long tiles (at d64 4k there are 22
  // query blocks per head and 132 = 6 x 22 SMs, so each CTA kept one query block throughout) and
  // measured up to 40% slower than one CTA per tile, where the hardware hands the next tile to
  // whichever SM frees first. Launches whose tiles differ in cost (`uneven`: a right window, the
  // causal diagonal and its generalisation; seqused_k; a packed batch whose entries span several
  // query tiles) therefore get one CTA per tile, and the same loop runs once per CTA, unless their
  // order is paired: then pairs of equal cost are strided over a persistent grid, which, unlike one
  // CTA per tile, overlaps a tile's epilogue with the next one's loads and starts no new CTA.
  // `slots`: the CTAs that run at once, SMs x CTAs per SM.
  static int grid_size(Params const& p, int slots, bool uneven) {
    if (p.paired) return p.num_tiles / 2 < slots ? p.num_tiles / 2 : slots;
    return uneven || p.num_tiles < slots ? p.num_tiles : slots;
  }

  // CTA `cta` of a grid of `grid` CTAs (blockIdx.x and gridDim.x in the kernel; a host test walks them all).
  CUTE_HOST_DEVICE static int first_tile(Params const& p, int cta) { return p.paired ? 2 * cta : cta; }
  CUTE_HOST_DEVICE static int next_tile(Params const& p, int tile, int grid) {
    if (!p.paired) return tile + grid;
    return tile % 2 == 0 ? tile + 1 : tile - 1 + 2 * grid;
  }
  CUTE_HOST_DEVICE static bool valid(Params const& p, int tile) { return tile < p.num_tiles; }

  // kSplit false: num_splits is 1 (the dense kernel), and the split index costs nothing.
  template <bool kSplit>
  CUTE_HOST_DEVICE static TileCoord coord(Params const& p, int tile) {
    int const slot = tile % p.m_slots;
    int m_block = p.num_m_blocks - 1 - slot;
    if (p.paired) m_block = slot >= p.num_m_blocks ? p.num_m_blocks : slot % 2 == 1 ? slot / 2 : p.num_m_blocks - 1 - slot / 2;
    int rest = tile / p.m_slots;
    int split = 0;
    if constexpr (kSplit) {
      split = rest % p.num_splits;
      rest /= p.num_splits;
    }
    return {m_block, rest % p.num_heads, rest / p.num_heads, split};
  }
};

}  // namespace flash::sm90
