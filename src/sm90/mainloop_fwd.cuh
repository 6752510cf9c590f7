// Mainloop of the SM90 forward kernel: the producer's TMA loads and the consumers' wgmma GEMMs
// with the online softmax between them.
//
// Producer (one elected thread): per tile, K and V of each key block the tile sees, last block first, through two
// rings of shared-memory stages guarded by mbarriers (full: TMA landed; empty: consumers are done),
// and Q after the first block's K and V. A paged KV cache is read block by block through the page
// table: one TMA box per block when pages are whole key blocks, else one per half block or 16-row
// chunk, the boxes of a block issued by three or four producer warps. With GQA packing a second
// producer warp copies Q's rows itself (no TMA box covers them).
// Consumers (two or three warpgroups, 64 query rows each): S = Q K^T (both operands in shared memory),
// softcap, mask, online softmax, O += P V with P in registers; in the dense kernel each warpgroup
// over the key blocks its own rows see (on the causal diagonal of a tile taller than a key block,
// and for rows past the entry's last, fewer than the tile's: its turns for the others pass
// without work). The next block's Q K^T is issued together
// with the current P V and waited for first, so the softmax of one block runs while the tensor
// cores work on the next. Where the tile plan asks for them, scheduler barriers make the warpgroups
// issue their GEMMs in turn, so one warpgroup's softmax overlaps the others' GEMMs.
// A batch entry's rows start at its SeqLenInfo offsets (packed variable-length batches); the tile
// rows past its length are loaded from the next entry or zero-filled by TMA and masked (keys) or
// never stored (queries). Where those key rows may hold anything (seqused_k, paged caches: not
// NaN-free, and P = 0 times NaN is NaN), the consumers zero V's rows past the last key.
// Split keys: a tile's key blocks are cut into num_splits consecutive ranges, one per CTA.
// FP8: three producer warps transpose each V block into V^T (FP8 wgmma reads its B operand
// K-major only) and hand it to the consumers through a second ring; P is quantised to e4m3 with
// its keys relabelled so that each thread packs its own accumulator registers (fp8_key_of_slot).
#pragma once

#include <cute/tensor.hpp>
#include <cutlass/arch/barrier.h>
#include <cutlass/pipeline/pipeline.hpp>

#include "api/fwd_args.h"
#include "sm90/mask.cuh"
#include "sm90/seqlen.cuh"
#include "sm90/softmax.cuh"
#include "sm90/tile_scheduler.cuh"
#include "sm90/traits.cuh"
#include "sm90/utils.cuh"

namespace flash::sm90 {

template <class Traits>
struct MainloopFwdSm90 {
  using Element = typename Traits::Element;
  using TileShapeQK = typename Traits::TileShapeQK;
  using SmemLayoutQ = typename Traits::SmemLayoutQ;
  using SmemLayoutKV = typename Traits::SmemLayoutKV;
  using SmemLayoutVt = typename Traits::SmemLayoutVt;
  using PipelineVt = typename Traits::PipelineVt;
  using TiledMmaQK = typename Traits::TiledMmaQK;
  using TiledMmaPV = typename Traits::TiledMmaPV;
  using Pipeline = typename Traits::Pipeline;
  using PipelineState = typename Traits::PipelineState;
  using SharedStorage = typename Traits::SharedStorage;
  using Mask = FwdMask<Traits::kBlockM, Traits::kBlockN, Traits::kGeneral>;
  static constexpr int kNumMmaThreads = Traits::kNumMmaThreads;
  static constexpr int kBlockM = Traits::kBlockM;
  static constexpr int kBlockN = Traits::kBlockN;
  static constexpr int kHeadDim = Traits::kHeadDim;
  static constexpr int kPageChunk = Traits::kPageChunk;
  static constexpr int kPageHalf = Traits::kPageHalf;
  // 16-byte units: what cp.async and the zeroing stores move; the swizzles keep each one contiguous.
  static constexpr int kUnit = 16 / int(sizeof(Element));
  static constexpr int kUnitsPerRow = kHeadDim / kUnit;
  static constexpr int kRowsPerWarpGroup = kBlockM / Traits::kNumMmaWarpGroups;

  // Global tensors as (rows, head_dim, head, batch) with head_dim contiguous: rows are an entry's
  // sequence (dense) or all tokens of a packed batch (one batch).
  using ShapeQKV = Shape<int32_t, int32_t, int32_t, int32_t>;
  using StrideQKV = Stride<int64_t, _1, int64_t, int64_t>;
  using GmemTensor = decltype(make_tensor(make_gmem_ptr(static_cast<Element const*>(nullptr)), ShapeQKV{}, StrideQKV{}));
  using TmaQ = decltype(make_tma_copy(SM90_TMA_LOAD{}, GmemTensor{}, SmemLayoutQ{}, select<0, 2>(TileShapeQK{}), _1{}));
  using TmaKV = decltype(make_tma_copy(SM90_TMA_LOAD{}, GmemTensor{}, take<0, 2>(SmemLayoutKV{}), select<1, 2>(TileShapeQK{}), _1{}));
  template <int kRows>
  using RowsShape = Shape<Int<kRows>, Int<kHeadDim>>;
  template <int kRows>
  using TmaKVRows = decltype(make_tma_copy(SM90_TMA_LOAD{}, GmemTensor{}, typename Traits::template SmemLayoutKVRows<kRows>{},
                                           RowsShape<kRows>{}, _1{}));
  using TmaKVChunk = TmaKVRows<kPageChunk>;
  using TmaKVHalf = TmaKVRows<kPageHalf>;

  struct Params {
    ShapeQKV shape_q;
    ShapeQKV shape_k;      // paged: (page_size, d, heads_k, num_pages)
    TmaQ tma_q;
    TmaKV tma_k;
    TmaKV tma_v;
    TmaKVHalf tma_k_half;     // paged caches whose pages are whole half blocks
    TmaKVHalf tma_v_half;
    TmaKVChunk tma_k_chunk;   // paged caches whose pages are neither
    TmaKVChunk tma_v_chunk;
    int window_left;       // FwdMask's window, -1: unbounded
    int window_right;
    float scale_log2;      // applied to the (softcapped) scores before exp2
    float softcap_scale;   // > 0: scores become tanh(score * softcap_scale) first
    int head_ratio;        // num_heads / num_heads_k: query heads per KV head
    int num_splits;        // > 1: the tile's key blocks are split (tile.split says which part)
    // GQA packing (FwdArgs::pack_gqa): Q rows are copied by a producer warp from here.
    bool pack_gqa;
    Element const* q;
    int64_t q_batch_stride;
    int64_t q_row_stride;
    int64_t q_head_stride;
    int head_dim;
    // Paged KV cache: null page_table means contiguous K/V.
    int32_t const* page_table;
    int page_table_stride;
    int page_size;
    int num_pages;
    bool zero_kv_tail;     // key rows past an entry's length may hold anything (seqused_k, paged)
    // FP8 descale factors (null = 1) of (batch b, KV head h): ptr[b * batch_stride + h * head_stride].
    float const* q_descale;
    float const* k_descale;
    float const* v_descale;
    int64_t descale_batch_stride;
    int64_t descale_head_stride;
  };

  // The rows of a tile, key blocks [begin, end).
  struct BlockRange {
    int begin;
    int end;
  };

  CUTE_DEVICE static Mask make_mask(Params const& p, SeqLenInfo const& seq) {
    if constexpr (Traits::kGeneral) {
      return {seq.len_q, seq.len_k, p.window_left, p.window_right, p.pack_gqa ? p.head_ratio : 1};
    } else {
      return {seq.len_q, seq.len_k, p.window_left, p.window_right};
    }
  }

  // The key blocks tile `tile` sees, and of those its split's share: the range cut into num_splits
  // consecutive parts of equal block counts (the last ones may be shorter or empty).
  CUTE_DEVICE static BlockRange block_range(Params const& p, Mask const& mask, TileCoord const& tile) {
    BlockRange r{mask.n_block_begin(tile.m_block), mask.n_block_end(tile.m_block)};
    if constexpr (Traits::kGeneral) {
      if (p.num_splits > 1 && r.begin < r.end) {
        int const per_split = (r.end - r.begin + p.num_splits - 1) / p.num_splits;
        int const begin = min(r.begin + tile.split * per_split, r.end);
        r = {begin, min(begin + per_split, r.end)};
      }
    }
    return r;
  }

  // The K/V head of a tile.
  CUTE_DEVICE static int kv_head(Params const& p, TileCoord const& tile) {
    return Traits::kGeneral && p.pack_gqa ? tile.head : tile.head / p.head_ratio;
  }

  static Params to_underlying_arguments(detail::FwdArgs const& args) {
    SeqLens const seqlens = SeqLens::from(args);
    auto gmem = [&](void const* ptr, int rows, int heads, int batches, detail::TensorStrides s) {
      return make_tensor(make_gmem_ptr(static_cast<Element const*>(ptr)), ShapeQKV(rows, args.head_dim, heads, batches),
                         StrideQKV(s.row, _1{}, s.head, s.batch));
    };
    // A paged cache is addressed as (row in page, d, head, page).
    bool const paged = args.page_table != nullptr;
    int const rows_k = paged ? args.page_size : seqlens.rows_k();
    int const batches_k = paged ? args.num_pages : seqlens.tensor_batches(args.batch);
    GmemTensor q = gmem(args.q, seqlens.rows_q(), args.num_heads, seqlens.tensor_batches(args.batch), args.q_strides);
    GmemTensor k = gmem(args.k, rows_k, args.num_heads_k, batches_k, args.k_strides);
    GmemTensor v = gmem(args.v, rows_k, args.num_heads_k, batches_k, args.v_strides);
    Params p{q.shape(),
             k.shape(),
             make_tma_copy(SM90_TMA_LOAD{}, q, SmemLayoutQ{}, select<0, 2>(TileShapeQK{}), _1{}),
             make_tma_copy(SM90_TMA_LOAD{}, k, take<0, 2>(SmemLayoutKV{}), select<1, 2>(TileShapeQK{}), _1{}),
             make_tma_copy(SM90_TMA_LOAD{}, v, take<0, 2>(SmemLayoutKV{}), select<1, 2>(TileShapeQK{}), _1{}),
             TmaKVHalf{},
             TmaKVHalf{},
             TmaKVChunk{},
             TmaKVChunk{},
             args.window_left,
             args.window_right,
             args.softmax_scale_log2,
             args.softcap_scale,
             args.num_heads / args.num_heads_k,
             args.num_splits,
             args.pack_gqa,
             static_cast<Element const*>(args.q),
             args.q_strides.batch,
             args.q_strides.row,
             args.q_strides.head,
             args.head_dim,
             args.page_table,
             args.page_table_stride,
             args.page_size,
             args.num_pages,
             paged || args.seqused_k != nullptr,
             args.q_descale,
             args.k_descale,
             args.v_descale,
             args.descale_batch_stride,
             args.descale_head_stride};
    int const box_rows = paged ? paged_box_rows(args.page_size) : kBlockN;
    if (box_rows == kPageHalf) {
      p.tma_k_half = make_tma_copy(SM90_TMA_LOAD{}, k, typename Traits::template SmemLayoutKVRows<kPageHalf>{},
                                   RowsShape<kPageHalf>{}, _1{});
      p.tma_v_half = make_tma_copy(SM90_TMA_LOAD{}, v, typename Traits::template SmemLayoutKVRows<kPageHalf>{},
                                   RowsShape<kPageHalf>{}, _1{});
    } else if (box_rows == kPageChunk) {
      p.tma_k_chunk = make_tma_copy(SM90_TMA_LOAD{}, k, typename Traits::template SmemLayoutKVRows<kPageChunk>{},
                                    RowsShape<kPageChunk>{}, _1{});
      p.tma_v_chunk = make_tma_copy(SM90_TMA_LOAD{}, v, typename Traits::template SmemLayoutKVRows<kPageChunk>{},
                                    RowsShape<kPageChunk>{}, _1{});
    }
    return p;
  }

  CUTE_DEVICE static void prefetch_tma_descriptors(Params const& p) {
    cute::prefetch_tma_descriptor(p.tma_q.get_tma_descriptor());
    cute::prefetch_tma_descriptor(p.tma_k.get_tma_descriptor());
    cute::prefetch_tma_descriptor(p.tma_v.get_tma_descriptor());
  }

  // FP8 descale factor of a tile's (batch entry, KV head); 1 without factors.
  CUTE_DEVICE static float descale(Params const& p, float const* factors, TileCoord const& tile) {
    if constexpr (!Traits::kFp8) return 1.0f;
    if (factors == nullptr) return 1.0f;
    return factors[tile.batch * p.descale_batch_stride + kv_head(p, tile) * p.descale_head_stride];
  }
  // What raw scores are multiplied by before exp2: softmax_scale * log2(e), times the q and k
  // descale factors for FP8.
  CUTE_DEVICE static float score_scale_log2(Params const& p, TileCoord const& tile) {
    if constexpr (!Traits::kFp8) return p.scale_log2;
    return p.scale_log2 * descale(p, p.q_descale, tile) * descale(p, p.k_descale, tile);
  }
  // What O is multiplied by besides 1 / row sum: the v descale factor for FP8.
  CUTE_DEVICE static float output_scale(Params const& p, TileCoord const& tile) { return descale(p, p.v_descale, tile); }

  // Tile rows of an entry: its queries, times the group size with GQA packing.
  CUTE_DEVICE static int tile_rows(Params const& p, SeqLenInfo const& seq) { return make_mask(p, seq).rows(); }

  // The page holding key `key` of batch entry `batch`; table positions and entries are clamped, so
  // keys past the entry (a tail block) read some page of the cache, never outside it.
  CUTE_DEVICE static int page_of(Params const& p, int batch, int key) {
    int const slot = min(key / p.page_size, p.page_table_stride - 1);
    int const page = p.page_table[int64_t(batch) * p.page_table_stride + slot];
    return page < 0 ? 0 : (page >= p.num_pages ? p.num_pages - 1 : page);
  }

  // Rows per TMA box of a paged block: the block, half of it, or kPageChunk (boxes never cross a
  // page). The one place this rule lives: the descriptors (to_underlying_arguments), the lookups
  // and the copies follow it.
  CUTE_HOST_DEVICE static int paged_box_rows(int page_size) {
    return page_size % kBlockN == 0 ? kBlockN : page_size % kPageHalf == 0 ? kPageHalf : kPageChunk;
  }

  // The producer warps that issue a key block's TMA copies: warp 0 alone, except for paged caches
  // whose blocks are several boxes: then also warps 2 and 3, and warp 1 unless it copies
  // GQA-packed Q rows. Warp `index` of `count` issues the boxes c with c % count == index. (A
  // thread issuing the boxes of a block alone took ~300 cycles per box, H200: pages of 16 ran at
  // 0.37 of contiguous at prefill and 0.56 at decode; spread over 4 warps 0.77 and 0.95.)
  // Warps that issue nothing get index -1.
  struct LoadRole {
    int index;
    int count;
  };
  CUTE_DEVICE static LoadRole load_role(Params const& p, int warp) {
    if (!Traits::kGeneral || p.page_table == nullptr || paged_box_rows(p.page_size) == kBlockN) {
      return {warp == 0 ? 0 : -1, 1};
    }
    int const count = p.pack_gqa ? 3 : 4;
    return {warp == 0 ? 0 : warp == 1 ? (p.pack_gqa ? -1 : 3) : warp - 1, count};
  }

  // Paged caches, the producer warp's lanes together: lane c gets the page of the block's box c.
  // One memory latency per block, shared by K and V, instead of one per box and tensor.
  static_assert(kBlockN / kPageChunk <= 32, "one lane per box");
  CUTE_DEVICE static int block_pages(Params const& p, int batch, int n_block, int lane) {
    int const rows = paged_box_rows(p.page_size);
    return lane < kBlockN / rows ? page_of(p, batch, n_block * kBlockN + lane * rows) : 0;
  }

  // This warp's kRows-row boxes of one key block (its LoadRole's), box c from page `pages` of lane
  // c; lane 0 issues. The stage's barrier expects the whole block (warp 0's producer_acquire).
  template <int kRows, class Tma, class TensorSmem>
  CUTE_DEVICE static void load_boxes(Params const& p, Tma const& tma, TensorSmem& sX, uint64_t& barrier, int head_k,
                                     int n_block, int stage, int pages, int lane, LoadRole role) {
#pragma unroll 1
    for (int c = role.index; c < kBlockN / kRows; c += role.count) {   // page_size is a multiple of kRows
      int const page = __shfl_sync(0xffffffff, pages, c);
      if (lane == 0) {
        int const key = n_block * kBlockN + c * kRows;
        Tensor mX = tma.get_tma_tensor(p.shape_k)(_, _, head_k, page);                        // (page_size, d)
        Tensor gX = local_tile(mX, RowsShape<kRows>{}, make_coord(_, _0{}));                  // (rows, d, boxes)
        Tensor sC = local_tile(sX(_, _, stage), RowsShape<kRows>{}, make_coord(c, _0{}));     // (rows, d)
        auto [tCgX, tCsX] = tma_partition(tma, _0{}, Layout<_1>{}, group_modes<0, 2>(sC), group_modes<0, 2>(gX));
        copy(tma.with(barrier, 0), tCgX(_, (key % p.page_size) / kRows), tCsX);
      }
    }
  }

  // One key block of K or V into stage `stage` of sX (N, d, stage): through tXgX/tXsX (contiguous
  // caches, partitioned once per tile), or through the pages of block_pages (`pages`: lane c's).
  // Every lane of the calling warp enters (the pages pass through shuffles); lane 0 issues.
  template <class TensorG, class TensorS, class TensorSmem>
  CUTE_DEVICE static void load_kv_block(Params const& p, TmaKV const& tma, TmaKVHalf const& tma_half,
                                        TmaKVChunk const& tma_chunk, TensorG const& tXgX, TensorS& tXsX,
                                        TensorSmem& sX, uint64_t& barrier, int head_k, int n_block, int stage,
                                        int pages, int lane, LoadRole role) {
    if (!Traits::kGeneral || p.page_table == nullptr) {
      if (lane == 0) copy(tma.with(barrier, 0), tXgX(_, n_block), tXsX(_, stage));
      return;
    }
    int const box_rows = paged_box_rows(p.page_size);
    if (box_rows == kBlockN) {   // the block lies in one page
      int const key0 = n_block * kBlockN;
      if (lane == 0) {
        Tensor mX = tma.get_tma_tensor(p.shape_k)(_, _, head_k, pages);                                   // (page_size, d)
        Tensor gX = local_tile(mX, select<1, 2>(TileShapeQK{}), make_coord(_, _0{}));                     // (N, d, blocks)
        auto [tPgX, tPsX] = tma_partition(tma, _0{}, Layout<_1>{}, group_modes<0, 2>(sX), group_modes<0, 2>(gX));
        copy(tma.with(barrier, 0), tPgX(_, (key0 % p.page_size) / kBlockN), tPsX(_, stage));
      }
      return;
    }
    if (box_rows == kPageHalf) {
      load_boxes<kPageHalf>(p, tma_half, sX, barrier, head_k, n_block, stage, pages, lane, role);
    } else {
      load_boxes<kPageChunk>(p, tma_chunk, sX, barrier, head_k, n_block, stage, pages, lane, role);
    }
  }

  // Producer (one thread, lane 0, in the dense kernel; one warp in the general one, whose lane 0
  // issues): K and V of blocks n_end-1 down to n_begin, and Q after the first block's K and V: Q's
  // buffer may still be draining the previous tile's O, and wait_q_buffer() (which blocks until it
  // is free) then overlaps those loads. Q is loaded also for a tile that sees no key, so the
  // consumers, which always wait for it, stay in step with the producer. With GQA packing Q is
  // load_q_packed's (another warp). A paged block's pages are looked up one block ahead. Every warp
  // with a LoadRole walks the same blocks and issues its boxes; Q is warp 0's.
  template <class WaitQBuffer>
  CUTE_DEVICE static void load(Params const& p, Pipeline& pipeline_k, Pipeline& pipeline_v, PipelineState& state,
                               SharedStorage& storage, TileCoord tile, SeqLenInfo const& seq, int tensor_batch,
                               int n_begin, int n_end, int lane, LoadRole role, WaitQBuffer const& wait_q_buffer) {
    Tensor sQ = make_tensor(make_smem_ptr(storage.q.data()), SmemLayoutQ{});     // (M, d)
    Tensor sK = make_tensor(make_smem_ptr(storage.k.data()), SmemLayoutKV{});    // (N, d, stage)
    Tensor sV = make_tensor(make_smem_ptr(storage.v.data()), SmemLayoutKV{});    // (N, d, stage)
    int const head_k = kv_head(p, tile);
    // (rows, d) of this batch entry, starting at its first row (a paged cache's tensors are only
    // used through load_kv_block)
    int const kv_batch = Traits::kGeneral && p.page_table != nullptr ? 0 : tensor_batch;
    Tensor mQ = domain_offset(make_coord(seq.offset_q, _0{}), p.tma_q.get_tma_tensor(p.shape_q)(_, _, tile.head, tensor_batch));
    Tensor mK = domain_offset(make_coord(seq.offset_k, _0{}), p.tma_k.get_tma_tensor(p.shape_k)(_, _, head_k, kv_batch));
    Tensor mV = domain_offset(make_coord(seq.offset_k, _0{}), p.tma_v.get_tma_tensor(p.shape_k)(_, _, head_k, kv_batch));
    Tensor gQ = local_tile(mQ, select<0, 2>(TileShapeQK{}), make_coord(tile.m_block, _0{}));  // (M, d)
    Tensor gK = local_tile(mK, select<1, 2>(TileShapeQK{}), make_coord(_, _0{}));            // (N, d, n)
    Tensor gV = local_tile(mV, select<1, 2>(TileShapeQK{}), make_coord(_, _0{}));            // (N, d, n)

    auto [tQgQ, tQsQ] = tma_partition(p.tma_q, _0{}, Layout<_1>{}, group_modes<0, 2>(sQ), group_modes<0, 2>(gQ));
    auto [tKgK, tKsK] = tma_partition(p.tma_k, _0{}, Layout<_1>{}, group_modes<0, 2>(sK), group_modes<0, 2>(gK));
    auto [tVgV, tVsV] = tma_partition(p.tma_v, _0{}, Layout<_1>{}, group_modes<0, 2>(sV), group_modes<0, 2>(gV));

    bool q_issued = (Traits::kGeneral && p.pack_gqa) || role.index != 0;
    bool const paged = Traits::kGeneral && p.page_table != nullptr;
    int next_pages = paged && n_begin < n_end ? block_pages(p, tile.batch, n_end - 1, lane) : 0;
    for (int n_block = n_end - 1; n_block >= n_begin; --n_block) {
      int const pages = next_pages;
      if (paged && n_block > n_begin) next_pages = block_pages(p, tile.batch, n_block - 1, lane);
      pipeline_k.producer_acquire(state);
      load_kv_block(p, p.tma_k, p.tma_k_half, p.tma_k_chunk, tKgK, tKsK, sK, *pipeline_k.producer_get_barrier(state),
                    head_k, n_block, state.index(), pages, lane, role);
      pipeline_v.producer_acquire(state);
      load_kv_block(p, p.tma_v, p.tma_v_half, p.tma_v_chunk, tVgV, tVsV, sV, *pipeline_v.producer_get_barrier(state),
                    head_k, n_block, state.index(), pages, lane, role);
      ++state;
      if (!q_issued) {
        load_q(p, storage, tQgQ, tQsQ, lane, wait_q_buffer);
        q_issued = true;
      }
    }
    if (!q_issued) load_q(p, storage, tQgQ, tQsQ, lane, wait_q_buffer);
  }

  template <class TensorG, class TensorS, class WaitQBuffer>
  CUTE_DEVICE static void load_q(Params const& p, SharedStorage& storage, TensorG const& tQgQ, TensorS& tQsQ, int lane,
                                 WaitQBuffer const& wait_q_buffer) {
    wait_q_buffer();
    if (lane == 0) {
      storage.barrier_q.arrive_and_expect_tx(Traits::kTmaBytesQ);
      copy(p.tma_q.with(reinterpret_cast<uint64_t&>(storage.barrier_q), 0), tQgQ, tQsQ);
    }
  }

  // GQA packing: tile row r of an entry is query r / ratio of query head kv_head * ratio +
  // r % ratio, rows no TMA box covers. One producer warp copies them with cp.async, 16 bytes per
  // lane and step, zero-fills the rows past the entry and the columns past head_dim, and arrives
  // on barrier_q (32 arrivals) once the copies are visible to the tensor cores.
  CUTE_DEVICE static void load_q_packed(Params const& p, SharedStorage& storage, TileCoord tile, SeqLenInfo const& seq,
                                        int tensor_batch, int lane) {
    Tensor sQ = make_tensor(make_smem_ptr(storage.q.data()), SmemLayoutQ{});   // (M, d)
    int const row0 = tile.m_block * kBlockM;
    int const rows = tile_rows(p, seq);
    Element const* q_entry = p.q + tensor_batch * p.q_batch_stride + int64_t(seq.offset_q) * p.q_row_stride +
                             int64_t(tile.head) * p.head_ratio * p.q_head_stride;
#pragma unroll 1
    for (int i = lane; i < kBlockM * kUnitsPerRow; i += 32) {
      int const r = i / kUnitsPerRow;
      int const col = (i % kUnitsPerRow) * kUnit;
      auto* dst = reinterpret_cast<cute::uint128_t*>(&sQ(r, col));
      if (row0 + r < rows && col < p.head_dim) {
        int const query = (row0 + r) / p.head_ratio;
        int const head = row0 + r - query * p.head_ratio;
        auto const* src = reinterpret_cast<cute::uint128_t const*>(q_entry + int64_t(query) * p.q_row_stride +
                                                                   int64_t(head) * p.q_head_stride + col);
        SM80_CP_ASYNC_CACHEGLOBAL<cute::uint128_t>::copy(*src, *dst);
      } else {
        *dst = cute::uint128_t{0, 0};
      }
    }
    cp_async_wait<0>();
    cutlass::arch::fence_view_async_shared();   // generic-proxy writes, read by wgmma
    storage.barrier_q.arrive();
  }

  // Consumer warpgroup `w` waits for its turn to issue GEMMs, then hands the turn to the next one.
  // Each scheduler barrier joins two warpgroups: the one waiting and the one passing the turn.
  static constexpr int kSchedulerBarrierThreads = 2 * Traits::kThreadsPerWarpGroup;
  CUTE_DEVICE static void scheduler_wait(int w) {
    if constexpr (!Traits::kUseSchedulerBarrier) return;
    cutlass::arch::NamedBarrier::sync(kSchedulerBarrierThreads, uint32_t(NamedBarrierId::kWarpSchedulerWG0) + w);
  }
  CUTE_DEVICE static void scheduler_pass(int w) {
    if constexpr (!Traits::kUseSchedulerBarrier) return;
    int const next = (w + 1) % Traits::kNumMmaWarpGroups;
    cutlass::arch::NamedBarrier::arrive(kSchedulerBarrierThreads, uint32_t(NamedBarrierId::kWarpSchedulerWG0) + next);
  }

  // Consumers, once their last Q K^T of a tile is done: where O has its own buffer, Q's may take
  // the next tile's Q while the last block's softmax, P V and the epilogue still run (else the
  // epilogue frees it once O is stored from it).
  CUTE_DEVICE static void release_q(SharedStorage& storage) {
    if constexpr (Traits::kSeparateO) storage.barrier_q_free.arrive();
  }

  // Consumers: accumulates the unnormalised O of the tile in tOrO and the softmax statistics, and
  // releases Q's buffer (release_q) after the last Q K^T. Requires n_begin < n_end and Q in shared
  // memory.
  // pipeline_v: V's ring (16-bit) or V^T's (FP8).
  template <class FragO, class Softmax, class PipelineV>
  CUTE_DEVICE static void mma(Params const& p, Pipeline& pipeline_k, PipelineV& pipeline_v, PipelineState& state,
                              FragO& tOrO, Softmax& softmax, int thread_idx, SharedStorage& storage, TileCoord tile,
                              SeqLenInfo const& seq, int n_begin, int n_end) {
    // 16-bit: read from the kernel parameters where used.
    float const fp8_scale_log2 = Traits::kFp8 ? score_scale_log2(p, tile) : 0.0f;
    Tensor sQ = make_tensor(make_smem_ptr(storage.q.data()), SmemLayoutQ{});
    Tensor sK = make_tensor(make_smem_ptr(storage.k.data()), SmemLayoutKV{});
    Tensor sVt = make_tensor(make_smem_ptr(Traits::kFp8 ? storage.vt.data() : storage.v.data()), SmemLayoutVt{});   // (d, N, stage)

    TiledMmaQK mma_qk;
    TiledMmaPV mma_pv;
    auto thr_qk = mma_qk.get_thread_slice(thread_idx);
    auto thr_pv = mma_pv.get_thread_slice(thread_idx);
    Tensor tSrQ = thr_qk.partition_fragment_A(sQ);    // descriptors
    Tensor tSrK = thr_qk.partition_fragment_B(sK);    // (MMA, MMA_N, MMA_K, stage)
    Tensor tOrV = thr_pv.partition_fragment_B(sVt);   // (MMA, MMA_N, MMA_K, stage)
    Tensor tSrS = partition_fragment_C(mma_qk, select<0, 1>(TileShapeQK{}));            // (MMA, MMA_M, MMA_N)
    Tensor tScS = thr_qk.partition_C(make_identity_tensor(select<0, 1>(TileShapeQK{})));  // (row, col) of each score
    Tensor scores = make_tensor(tSrS.data(), rowcol_layout(tSrS.layout()));
    auto make_p = [&] {
      if constexpr (Traits::kFp8) {
        return make_tensor<Element>(fp8_a_operand_shape(tSrS.layout()));
      } else {
        return make_tensor<Element>(acc_as_a_operand_layout(tSrS.layout()));
      }
    };
    Tensor tOrP = make_p();
    auto convert_p = [&] {
      if constexpr (Traits::kFp8) {
        convert_p_fp8(tSrS, tOrP);
      } else {
        convert_fragment(tSrS, tOrP);
      }
    };
    constexpr int kRows = decltype(size<0>(scores))::value;
    float o_scale[kRows];

    int const warp_group = thread_idx / Traits::kThreadsPerWarpGroup;
    // The blocks this warpgroup computes, [n_begin, n_end_wg): its own rows' where the plan has
    // kWarpGroupRanges (broadcast from lane 0, so that ptxas keeps the loop over them on the
    // uniform datapath), else the tile's. The mask is rebuilt where it is used rather than kept in
    // registers: in the dense kernel its fields are kernel parameters, which the compiler reads
    // again instead of holding (so the tile's first masked block, not the warpgroup's: held
    // through the loop, that one made ptxas spill at FP8 d128).
    int n_end_wg = n_end;
    if constexpr (Traits::kWarpGroupRanges) {
      int const own_end = make_mask(p, seq).n_block_end_of_rows(tile.m_block * kBlockM + warp_group * kRowsPerWarpGroup,
                                                                kRowsPerWarpGroup);
      n_end_wg = __shfl_sync(0xffffffffu, max(n_begin, min(n_end, own_end)), 0);
    }
    int const first_right_masked = make_mask(p, seq).first_right_masked_block(tile.m_block);
    int const left_masked_end = make_mask(p, seq).left_masked_block_end(tile.m_block);
    auto softmax_step = [&](int n_block) {
      if (Traits::kGeneral && p.softcap_scale != 0.0f) {
        CUTE_UNROLL
        for (int i = 0; i < size(tSrS); ++i) tSrS(i) = tanh_fast(tSrS(i) * p.softcap_scale);
      }
      if (n_block >= first_right_masked || n_block < left_masked_end) {
        make_mask(p, seq).apply(tSrS, tScS, tile.m_block, n_block);
      }
      softmax.update(scores, Traits::kFp8 ? fp8_scale_log2 : p.scale_log2, o_scale);
    };

    // The last warpgroup gives the first one the first turn.
    if (warp_group == Traits::kNumMmaWarpGroups - 1) scheduler_pass(warp_group);

    // Blocks past this warpgroup's rows (the causal diagonal of a tile taller than a key block, or
    // rows past the entry's last): their turns and stages pass without GEMMs or softmax, so every
    // warpgroup takes n_end - n_begin + 1 turns.
    if constexpr (Traits::kWarpGroupRanges) {
      // No row of this warpgroup sees a key of the range: it never reads Q, whose buffer may take
      // the next tile's Q at once (not after its turns), and its O is 0.
      bool const idle = n_end_wg == n_begin;
      if (idle) release_q(storage);
      PipelineState skipped = state;
      for (int n_block = n_end - 1; n_block >= n_end_wg; --n_block) skip_block(pipeline_k, pipeline_v, skipped, warp_group);
      state = skipped;
      if (idle) {   // the turn of the last P V
        scheduler_wait(warp_group);
        scheduler_pass(warp_group);
        clear(tOrO);
        if (warp_group == 0) scheduler_wait(warp_group);
        return;
      }
      // The state is the same in every lane, but ptxas takes the skip loop's as per-thread, and
      // every GEMM turn then moved its descriptors to the uniform datapath register by register
      // (bf16 d64: 68 -> 87 instructions per turn): broadcast it.
      state = warp_uniform_state(state);
    }

    int n_block = n_end_wg - 1;
    PipelineState state_v = state;
    scheduler_wait(warp_group);
    pipeline_k.consumer_wait(state);
    warpgroup_gemm</*kARegisters=*/false>(mma_qk, tSrQ, tSrK(_, _, _, state.index()), tSrS, /*zero_init=*/true);
    scheduler_pass(warp_group);
    warpgroup_wait<0>();
    warpgroup_fence_operand(tSrS);
    pipeline_k.consumer_release(state);
    if (n_begin == n_block) release_q(storage);
    ++state;
    softmax_step(n_block);
    convert_p();
    // The first block processed is the last one the tile sees: where it reaches past the entry's
    // keys and those rows may hold anything, their V rows become 0 before any P V reads them.
    if constexpr (Traits::kGeneral) {
      static_assert(!Traits::kWarpGroupRanges, "every consumer warpgroup takes part in the zeroing");
      if (p.zero_kv_tail && n_end * kBlockN > seq.len_k) {
        zero_v_rows(pipeline_v, state_v, storage, thread_idx, seq.len_k - (n_end - 1) * kBlockN);
      }
    }

    bool o_zero = true;   // the first P V overwrites O
    for (--n_block; n_block >= n_begin; --n_block) {
      scheduler_wait(warp_group);
      pipeline_k.consumer_wait(state);
      warpgroup_gemm</*kARegisters=*/false>(mma_qk, tSrQ, tSrK(_, _, _, state.index()), tSrS, /*zero_init=*/true);
      pipeline_v.consumer_wait(state_v);
      warpgroup_gemm</*kARegisters=*/true>(mma_pv, tOrP, tOrV(_, _, _, state_v.index()), tOrO, o_zero);
      o_zero = false;
      scheduler_pass(warp_group);
      warpgroup_wait<1>();   // S of this block is ready; P V of the previous block may still run
      warpgroup_fence_operand(tSrS);
      pipeline_k.consumer_release(state);
      if (n_block == n_begin) release_q(storage);
      softmax_step(n_block);
      warpgroup_wait<0>();
      // The fences keep the compiler from touching O, or overwriting P, before the wait.
      warpgroup_fence_operand(tOrO);
      warpgroup_fence_operand(tOrP);
      pipeline_v.consumer_release(state_v);
      if (!Traits::kSkipRescale || softmax.warp_rescales(o_scale)) scale_rows(tOrO, o_scale);
      convert_p();
      state_v = state;
      ++state;
    }

    scheduler_wait(warp_group);
    pipeline_v.consumer_wait(state_v);
    warpgroup_gemm</*kARegisters=*/true>(mma_pv, tOrP, tOrV(_, _, _, state_v.index()), tOrO, o_zero);
    scheduler_pass(warp_group);
    warpgroup_wait<0>();
    warpgroup_fence_operand(tOrO);
    pipeline_v.consumer_release(state_v);
    // Take back the turn the last warpgroup passed last, so every arrival has been waited for.
    if (warp_group == 0) scheduler_wait(warp_group);
  }

  // A block outside the calling warpgroup's rows: its GEMM turn is passed on at once and its K and
  // V stages are released once they have landed (an earlier release would count towards the
  // previous use's phase).
  template <class PipelineV>
  CUTE_DEVICE static void skip_block(Pipeline& pipeline_k, PipelineV& pipeline_v, PipelineState& state, int warp_group) {
    scheduler_wait(warp_group);
    scheduler_pass(warp_group);
    pipeline_k.consumer_wait(state);
    pipeline_k.consumer_release(state);
    pipeline_v.consumer_wait(state);
    pipeline_v.consumer_release(state);
    ++state;
  }

  // FP8, producer warps 1..3 (t = 0..95): V^T of blocks n_end-1 down to n_begin, in the consumers'
  // order, from V's ring (whose consumers these threads are) into V^T's (whose producers they are).
  CUTE_DEVICE static void transpose_v(Pipeline& pipeline_v, PipelineState& state_v, PipelineVt& pipeline_vt,
                                      PipelineState& state_vt, SharedStorage& storage, int t, int n_begin, int n_end) {
    VtTransposer const transposer(storage, t);
    for (int n_block = n_end - 1; n_block >= n_begin; --n_block) {
      pipeline_v.consumer_wait(state_v);
      pipeline_vt.producer_acquire(state_vt);
      transposer.run(state_v.index(), state_vt.index());
      cutlass::arch::fence_view_async_shared();   // generic-proxy stores, read by wgmma
      pipeline_vt.producer_commit(state_vt);
      pipeline_v.consumer_release(state_v);
      ++state_v;
      ++state_vt;
    }
  }

  // One warp's part of V^T(d, slot) = V(fp8_key_of_slot(slot), d) for a block, in steps of 32 keys
  // x 16 d (512 bytes): one ldmatrix, four byte permutes and four 32-bit stores per lane.
  // - ldmatrix .trans reads the step as four 8 x 8 matrices of 16-bit d pairs, matrix m holding
  //   keys 8m .. 8m + 7 (lane l addresses key l). Lane (p, q) = (lane / 4, lane % 4) receives d pair
  //   p (d 2p, 2p + 1) of keys 8m + 2q and 8m + 2q + 1 from each.
  // - Permuting matrices m and m + 1 (m = 0, 2) gives V^T rows 2p and 2p + 1 at slots
  //   16 (m / 2) + 4q .. + 3, whose keys 2q, 2q + 1, 2q + 8, 2q + 9 (+ 8m) are fp8_key_of_slot's.
  // - Banks: each matrix read is 8 consecutive keys, 8 distinct 16-byte chunks in V's swizzled
  //   layout. Lanes with p < 4 store row 2p first and those with p >= 4 row 2p + 1: each store then
  //   writes even rows of one 8-row swizzle atom and odd rows of the next, 8 distinct chunks.
  // - Addresses: offset(lane's coordinates + step origin) = (offset(lane) ^ x) + a with x (bits 4-6,
  //   the chunk a swizzle permutes) and a constants of the step, so with the steps unrolled a lane
  //   keeps one load and four store offsets. check() proves all of this for every lane and step.
  struct VtTransposer {
    static constexpr int kSlotBlocks = kBlockN / 32;                 // 32-slot steps per V^T row
    static constexpr int kDBlocks = kHeadDim / 16;                   // 16-d steps per key row
    static constexpr int kSteps = kSlotBlocks * kDBlocks;            // step = slot block * kDBlocks + d block
    static constexpr int kWarps = Traits::kNumTransposeThreads / 32;
    // Steps whose loads are issued together: four hide ldmatrix's latency, but take 16 registers
    // (56 in all); a producer of 40 registers spilled with two (d128) and keeps one.
    static constexpr int kInFlight = Traits::kProducerRegisters >= 56 ? 4 : 1;
    static constexpr int kChunkBits = 0x70;
    static constexpr uint32_t kLowRow = 0x6420u;    // byte permute: V^T row 2p of matrices (m, m + 1)
    static constexpr uint32_t kHighRow = 0x7531u;   // row 2p + 1

    uint32_t load;          // shared address of this lane's key row in stage 0, step 0
    uint32_t store[4];      // shared addresses of its four V^T words in stage 0, step 0
    uint32_t select[2];     // byte permutes of stores 0 / 1 (and 2 / 3)
    int warp;

    // Lane coordinates: key row of the load; V^T row and slot of store s.
    CUTE_HOST_DEVICE static constexpr int store_row(int lane, int s) { return 2 * (lane / 4) + ((s & 1) ^ (lane / 16)); }
    CUTE_HOST_DEVICE static constexpr int store_slot(int lane, int s) { return 16 * (s / 2) + 4 * (lane % 4); }
    // A step's origin, split into the XORed chunk bits and the added rest.
    CUTE_HOST_DEVICE static constexpr int load_origin(int step) {
      return SmemLayoutKV{}(32 * (step / kDBlocks), 16 * (step % kDBlocks), 0);
    }
    CUTE_HOST_DEVICE static constexpr int store_origin(int step) {
      return SmemLayoutVt{}(16 * (step % kDBlocks), 32 * (step / kDBlocks), 0);
    }

    // Every lane and step: the split addresses are the layouts' own, the data each store writes is
    // what V^T holds there, every V^T byte is written, and no access conflicts on banks. Null when
    // all holds, else what failed. Run on the host by tests/test_fp8_transposer.cu (too long for
    // the compiler's constant evaluation).
    static char const* check() {
      if (SmemLayoutKV{}(0, 0, 1) % 128 != 0 || SmemLayoutVt{}(0, 0, 1) % 128 != 0) return "stage offset not 128-aligned";
      bool written[kHeadDim * kBlockN / 4] = {};   // one stage of V^T words
      for (int step = 0; step < kSteps; ++step) {
        int const key0 = 32 * (step / kDBlocks);
        int const d0 = 16 * (step % kDBlocks);
        int const lo = load_origin(step), so = store_origin(step);
        bool chunk_used[8] = {};
        for (int lane = 0; lane < 32; ++lane) {
          int const off = SmemLayoutKV{}(key0 + lane, d0, 0);
          if (off != ((SmemLayoutKV{}(lane, 0, 0) ^ (lo & kChunkBits)) + (lo & ~kChunkBits))) return "load address split";
          if (off % 16 != 0) return "ldmatrix row not 16-byte aligned";
          int const chunk = (off / 16) % 8;
          if (lane % 8 == 0) for (int c = 0; c < 8; ++c) chunk_used[c] = false;
          if (chunk_used[chunk]) return "ldmatrix bank conflict";
          chunk_used[chunk] = true;
        }
        for (int s = 0; s < 4; ++s) {
          bool bank_used[32] = {};
          for (int lane = 0; lane < 32; ++lane) {
            int const row = store_row(lane, s), slot = store_slot(lane, s);
            int const off = SmemLayoutVt{}(d0 + row, key0 + slot, 0);   // slots number like keys
            if (off != ((SmemLayoutVt{}(row, slot, 0) ^ (so & kChunkBits)) + (so & ~kChunkBits))) return "store address split";
            if (off % 4 != 0 || bank_used[(off / 4) % 32]) return "store bank conflict";
            bank_used[(off / 4) % 32] = true;
            if (off >= kHeadDim * kBlockN || written[off / 4]) return "a V^T word is written twice or out of the stage";
            written[off / 4] = true;
            // What the word holds: ldmatrix gave lane (p, q) bytes (key 8m + 2q + (b >> 1), d 2p + (b & 1))
            // in byte b of matrix m; the permute takes bytes of matrices m = 2 (s / 2) and m + 1.
            int const p = lane / 4, q = lane % 4;
            uint32_t const sel = ((s & 1) ^ (lane / 16)) ? kHighRow : kLowRow;
            for (int u = 0; u < 4; ++u) {
              int const pick = int(sel >> (4 * u)) & 7;        // byte of (matrix m, matrix m + 1)
              int const m = 2 * (s / 2) + pick / 4, b = pick % 4;
              int const key = 8 * m + 2 * q + (b >> 1);
              int const d = 2 * p + (b & 1);
              if (d != row || key != fp8_key_of_slot(slot + u)) return "V^T byte holds the wrong (key, d)";
            }
          }
        }
      }
      for (int w = 0; w < kHeadDim * kBlockN / 4; ++w) {
        if (!written[w]) return "a V^T word is never written";
      }
      return nullptr;
    }

    CUTE_DEVICE VtTransposer(SharedStorage& storage, int t) {
      int const lane = t % 32;
      warp = t / 32;
      load = cute::cast_smem_ptr_to_uint(storage.v.data()) + SmemLayoutKV{}(lane, 0, 0);
      uint32_t const vt = cute::cast_smem_ptr_to_uint(storage.vt.data());
      CUTE_UNROLL
      for (int s = 0; s < 4; ++s) store[s] = vt + SmemLayoutVt{}(store_row(lane, s), store_slot(lane, s), 0);
      select[0] = lane / 16 ? kHighRow : kLowRow;
      select[1] = lane / 16 ? kLowRow : kHighRow;
    }

    CUTE_DEVICE void run(int stage_v, int stage_vt) const {
      uint32_t const v = load + SmemLayoutKV{}(0, 0, stage_v);
      uint32_t const vt = SmemLayoutVt{}(0, 0, stage_vt);
      if (warp == 0) {
        run_steps<0>(v, vt);
      } else if (warp == 1) {
        run_steps<1>(v, vt);
      } else {
        run_steps<2>(v, vt);
      }
    }

    // Steps kWarp, kWarp + kWarps, ...: kInFlight loads, then their permutes and stores (volatile asm
    // keeps the accesses in program order, after the pipeline wait and before its release).
    template <int kWarp>
    CUTE_DEVICE void run_steps(uint32_t v, uint32_t vt) const {
      static_assert(kWarps == 3 && kWarp < kWarps);
      constexpr int kMine = (kSteps - kWarp + kWarps - 1) / kWarps;
      CUTE_UNROLL
      for (int g = 0; g < kMine; g += kInFlight) {
        uint32_t in[kInFlight][4];
        CUTE_UNROLL
        for (int k = 0; k < kInFlight; ++k) {
          if (g + k < kMine) {
            int const origin = load_origin(kWarp + kWarps * (g + k));
            uint32_t const addr = (v ^ uint32_t(origin & kChunkBits)) + uint32_t(origin & ~kChunkBits);
            asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];"
                         : "=r"(in[k][0]), "=r"(in[k][1]), "=r"(in[k][2]), "=r"(in[k][3])
                         : "r"(addr));
          }
        }
        CUTE_UNROLL
        for (int k = 0; k < kInFlight; ++k) {
          if (g + k < kMine) {
            int const origin = store_origin(kWarp + kWarps * (g + k));
            CUTE_UNROLL
            for (int s = 0; s < 4; ++s) {
              uint32_t const word = __byte_perm(in[k][2 * (s / 2)], in[k][2 * (s / 2) + 1], select[s & 1]);
              uint32_t const addr = ((store[s] + vt) ^ uint32_t(origin & kChunkBits)) + uint32_t(origin & ~kChunkBits);
              asm volatile("st.shared.b32 [%0], %1;" ::"r"(addr), "r"(word));
            }
          }
        }
      }
    }
  };

  // All consumer threads: rows [first_row, kBlockN) of V's stage become 0 once its TMA has landed;
  // the barrier then keeps every warpgroup's P V behind every thread's stores. Called outside the
  // scheduler turns, so no warpgroup waits here for a turn another one holds.
  CUTE_DEVICE static void zero_v_rows(Pipeline& pipeline_v, PipelineState const& state_v, SharedStorage& storage,
                                      int thread_idx, int first_row) {
    pipeline_v.consumer_wait(state_v);
    Tensor sV = make_tensor(make_smem_ptr(storage.v.data()), SmemLayoutKV{});   // (N, d, stage)
#pragma unroll 1
    for (int i = thread_idx; i < (kBlockN - first_row) * kUnitsPerRow; i += kNumMmaThreads) {
      int const row = first_row + i / kUnitsPerRow;
      *reinterpret_cast<cute::uint128_t*>(&sV(row, (i % kUnitsPerRow) * kUnit, state_v.index())) = cute::uint128_t{0, 0};
    }
    cutlass::arch::fence_view_async_shared();
    cutlass::arch::NamedBarrier::sync(kNumMmaThreads, uint32_t(NamedBarrierId::kKvTail));
  }
};

}  // namespace flash::sm90
