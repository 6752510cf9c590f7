// Maps CTAs to (query block, head, batch) tiles.
#pragma once

#include <cute/config.hpp>

namespace flash::sm90 {

struct TileCoord {
  int m_block;
  int head;
  int batch;
};

// One CTA per tile, launched in order of decreasing query block: under a causal mask the last
// query blocks see the most keys, so the longest tiles start first and the short ones fill the
// last wave. Heads vary fastest, so query heads sharing a KV head run together and share L2.
struct SingleTileScheduler {
  struct Params {
    int num_m_blocks;
    int num_heads;
    int batch;
  };

  static int64_t num_tiles(Params const& p) {
    return int64_t(p.num_m_blocks) * p.num_heads * p.batch;
  }

  CUTE_DEVICE static TileCoord tile(Params const& p) {
    int const heads_x_batch = p.num_heads * p.batch;
    int const t = blockIdx.x;
    int const rest = t % heads_x_batch;
    return {p.num_m_blocks - 1 - t / heads_x_batch, rest % p.num_heads, rest / p.num_heads};
  }
};

}  // namespace flash::sm90
