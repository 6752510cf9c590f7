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
// Paired order (causal and right-window launches of equal-length entries): a causal tile's cost grows
// linearly with its query block, so within a head the blocks go longest, shortest, second longest,
// second shortest, ... and a CTA takes them two at a time: tiles 2c, 2c + 1, then 2c + 2 grid,
// 2c + 2 grid + 1, ... Every pair costs about the same (query blocks m and M - 1 - m see M + 1
// blocks' worth of keys together), so a static stride over pairs is balanced where one over single
// tiles was not (see grid_size), and the grid stays persistent. With an odd count M the middle
// blocks of two heads make a pair (each sees half of M + 1); two heads then span 2M positions, and
// with an odd number of heads the last middle block pairs with an empty slot (m_block = M: no
// rows). (An empty slot per head instead made a half-cost pair in every head, and with a grid that
// is a multiple of the pairs per head, 132 = 6 x 22 at d64 2k, some CTAs got the half pair in every
// head: measured, H200, bf16 d64 causal 512, 147 TFLOP/s against 163 with one CTA per tile.)
struct StaticPersistentScheduler {
  struct Params {
    int num_m_blocks;
    int num_heads;
    int batch;
    int num_splits;
    int num_groups;    // (split, head, batch) triples: the tiles of one group share their keys
    int num_tiles;     // positions: num_m_blocks x num_groups, rounded up to whole pairs when paired
    bool paired;
  };

  static Params make_params(int num_m_blocks, int num_heads, int batch, int num_splits, bool paired) {
    int const groups = num_heads * batch * num_splits;
    bool const odd = paired && num_m_blocks % 2 == 1;
    int const tiles = odd ? 2 * num_m_blocks * ((groups + 1) / 2) : num_m_blocks * groups;
    return {num_m_blocks, num_heads, batch, num_splits, groups, tiles, paired};
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
    int const m = p.num_m_blocks;
    int group;
    int m_block;
    if (!p.paired || m % 2 == 0) {
      int const slot = tile % m;
      group = tile / m;
      // Paired: pair k = slot / 2 is query blocks M - 1 - k, then k.
      m_block = !p.paired ? m - 1 - slot : slot % 2 == 0 ? m - 1 - slot / 2 : slot / 2;
    } else {
      // Two heads' 2M positions: the pairs of the first head, those of the second, then the middle
      // blocks of both.
      int const slot = tile % (2 * m);
      int const pair = slot / 2;
      int const second = slot % 2;
      int const half = (m - 1) / 2;   // pairs per head besides the middle block
      group = 2 * (tile / (2 * m));
      if (pair < 2 * half) {
        group += pair / half;
        int const k = pair % half;
        m_block = second == 0 ? m - 1 - k : k;
      } else {
        group += second;
        m_block = half;
      }
      if (group >= p.num_groups) {   // an odd number of heads: the missing second head's positions
        group = p.num_groups - 1;
        m_block = m;
      }
    }
    int split = 0;
    if constexpr (kSplit) {
      split = group % p.num_splits;
      group /= p.num_splits;
    }
    return {m_block, group % p.num_heads, group / p.num_heads, split};
  }
};

}  // namespace flash::sm90
