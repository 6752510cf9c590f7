// Epilogue of the SM90 forward kernel: O is normalised by the row sums, converted to the output
// type, staged in shared memory with stmatrix and written by one TMA store (which clips the rows
// past seqlen_q); the LSE goes straight from registers to global memory. O is staged in its own
// buffer, whose last store is waited for before it is rewritten, or in Q's buffer, which the store
// then frees for the next tile's Q (barrier_q_free).
// In a packed variable-length batch the rows past an entry's length belong to the next entry, which
// a TMA store cannot leave out, and with GQA packing a tile's rows belong to several heads: there
// (an entry's last, partial tile; every GQA-packed tile) the consumer threads copy the staged tile
// row by row instead. A split tile (split-KV) writes its
// O, normalised by its own row sums, and its LSE in fp32 straight from registers to the workspace,
// where the combine kernel merges the splits. FP8 inputs write O in BF16 or FP16 (out_fp16).
#pragma once

#include <cute/tensor.hpp>
#include <cutlass/arch/barrier.h>

#include "api/fwd_args.h"
#include "api/launch_plan.h"
#include "sm90/seqlen.cuh"
#include "sm90/tile_scheduler.cuh"
#include "sm90/traits.cuh"
#include "sm90/utils.cuh"

namespace flash::sm90 {

template <class Traits>
struct EpilogueFwdSm90 {
  using Element = typename Traits::ElementOut;   // O's type (FP8 inputs: BF16, or FP16 by out_fp16)
  using TileShapePV = typename Traits::TileShapePV;
  using SmemLayoutO = typename Traits::SmemLayoutO;
  using TiledMmaPV = typename Traits::TiledMmaPV;
  using SharedStorage = typename Traits::SharedStorage;

  using ShapeO = Shape<int32_t, int32_t, int32_t, int32_t>;     // (seqlen_q, d, head, batch)
  using StrideO = Stride<int64_t, _1, int64_t, int64_t>;
  using GmemTensorO = decltype(make_tensor(make_gmem_ptr(static_cast<Element*>(nullptr)), ShapeO{}, StrideO{}));
  using TmaO = decltype(make_tma_copy(SM90_TMA_STORE{}, GmemTensorO{}, SmemLayoutO{}, select<0, 1>(TileShapePV{}), _1{}));

  struct Params {
    ShapeO shape_o;
    TmaO tma_o;
    Element* out;              // the row-by-row store (packed batches, GQA packing)
    int64_t out_batch_stride;
    int64_t out_row_stride;
    int64_t out_head_stride;
    int head_dim;
    bool packed;
    bool pack_gqa;             // tile row r: query r / head_ratio of head tile.head * head_ratio + r % head_ratio
    int head_ratio;
    // LSE of (batch, head, row): lse[batch * lse_batch_stride + head * lse_head_stride + offset_q +
    // row]; [batch, num_heads, seqlen_q] dense, [num_heads, total_q] packed; null: not written.
    float* lse;
    int64_t lse_batch_stride;
    int64_t lse_head_stride;
    // Split keys (num_splits > 1): row `row` of entry `batch`, head h, split s goes to partial row
    // p = (s * num_heads + h) * partial_rows + batch * seqlen_q + offset_q + row (batch 0 packed):
    // LSE at lse_partial[p], O at o_partial[p * head_dim].
    int num_splits;
    int num_heads;
    int seqlen_q;
    int partial_rows;
    float* lse_partial;
    float* o_partial;
    // FP8 inputs: O in FP16 (else BF16). Last: placed between head_dim and the flags after it, it
    // made ptxas spill 116 bytes instead of 68 in the d256 general kernel (bisected).
    bool out_fp16;
  };

  static Params to_underlying_arguments(detail::FwdArgs const& args) {
    SeqLens const seqlens = SeqLens::from(args);
    GmemTensorO o = make_tensor(make_gmem_ptr(static_cast<Element*>(args.out)),
                                ShapeO(seqlens.rows_q(), args.head_dim, args.num_heads, seqlens.tensor_batches(args.batch)),
                                StrideO(args.out_strides.row, _1{}, args.out_strides.head, args.out_strides.batch));
    int64_t const rows = seqlens.rows_q();
    return {o.shape(),
            make_tma_copy(SM90_TMA_STORE{}, o, SmemLayoutO{}, select<0, 1>(TileShapePV{}), _1{}),
            static_cast<Element*>(args.out),
            args.out_strides.batch,
            args.out_strides.row,
            args.out_strides.head,
            args.head_dim,
            seqlens.packed(),
            args.pack_gqa,
            args.num_heads / args.num_heads_k,
            args.lse,
            seqlens.packed() ? 0 : args.num_heads * rows,
            rows,
            args.num_splits,
            args.num_heads,
            args.seqlen_q,
            int(detail::partial_rows(args)),   // below 2^31 for a split call (plan_launch)
            args.lse_partial,
            args.o_partial,
            args.out_dtype == DataType::FP16};
  }

  // Where tile row `row` (0..kBlockM) goes: its query row within the entry and its query head; valid
  // is false for rows past the entry.
  struct RowTarget {
    int query;
    int head;
    bool valid;
  };
  CUTE_DEVICE static RowTarget target(Params const& p, TileCoord const& tile, SeqLenInfo const& seq, int row) {
    int const r = tile.m_block * Traits::kBlockM + row;
    if (Traits::kGeneral && p.pack_gqa) {
      int const query = r / p.head_ratio;
      return {query, tile.head * p.head_ratio + r - query * p.head_ratio, query < seq.len_q};
    }
    return {r, tile.head, r < seq.len_q};
  }

  CUTE_DEVICE static void prefetch_tma_descriptors(Params const& p) {
    cute::prefetch_tma_descriptor(p.tma_o.get_tma_descriptor());
  }

  // tOrO: unnormalised O; o_scale: per-row 1 / sum; lse per row. All consumer threads call this.
  template <class FragO, int kRows>
  CUTE_DEVICE static void store(Params const& p, FragO& tOrO, float const (&o_scale)[kRows], float const (&lse)[kRows],
                                SharedStorage& storage, int thread_idx, TileCoord tile, SeqLenInfo const& seq,
                                int tensor_batch) {
    scale_rows(tOrO, o_scale);
    if constexpr (Traits::kGeneral) {
      if (p.num_splits > 1) {
        store_partial(p, tOrO, lse, thread_idx, tile, seq, tensor_batch);
        // Every warpgroup is past its GEMMs: the producer may load the next Q into Q's buffer
        // (where O is staged there). The barrier also keeps the last warpgroup's first scheduler
        // pass of the next tile behind warpgroup 0's taking back of this tile's last pass
        // (Mainloop::mma), as the other epilogue paths' barriers do: a second arrival on that
        // barrier before it would complete it without warpgroup 0, which would then wait forever.
        cutlass::arch::NamedBarrier::sync(Traits::kNumMmaThreads, uint32_t(NamedBarrierId::kEpilogue));
        if constexpr (!Traits::kSeparateO) {
          if (thread_idx == 0) storage.barrier_q_free.arrive();
        }
        return;
      }
    }
    Tensor tOrO_out = make_tensor<Element>(tOrO.layout());
    if constexpr (Traits::kFp8) {
      if (p.out_fp16) {   // the same 16-bit registers, filled with FP16
        Tensor half = make_tensor(make_rmem_ptr<cutlass::half_t>(raw_pointer_cast(tOrO_out.data())), tOrO_out.layout());
        convert_fragment(tOrO, half);
      } else {
        convert_fragment(tOrO, tOrO_out);
      }
    } else {
      convert_fragment(tOrO, tOrO_out);
    }

    if constexpr (Traits::kSeparateO) {
      // The last tile's store must have read the O buffer before it is rewritten.
      store_tail(thread_idx);
      cutlass::arch::NamedBarrier::sync(Traits::kNumMmaThreads, uint32_t(NamedBarrierId::kEpilogue));
    }
    // In Q's buffer, each consumer warpgroup writes only the rows of Q it read itself, after its
    // last GEMM.
    Tensor sO = make_tensor(make_smem_ptr(storage.o_buffer()), SmemLayoutO{});   // (M, d)
    auto smem_copy = make_tiled_copy_C(Copy_Atom<SM90_U32x4_STSM_N, Element>{}, TiledMmaPV{});
    auto thr_copy = smem_copy.get_thread_slice(thread_idx);
    copy(smem_copy, thr_copy.retile_S(tOrO_out), thr_copy.partition_D(sO));
    cutlass::arch::fence_view_async_shared();   // make the generic-proxy writes visible to TMA
    cutlass::arch::NamedBarrier::sync(Traits::kNumMmaThreads, uint32_t(NamedBarrierId::kEpilogue));

    if (p.lse != nullptr && thread_idx % 4 == 0) {   // a quad shares its rows; its first thread writes
      Tensor tOcO = TiledMmaPV{}.get_thread_slice(thread_idx).partition_C(make_identity_tensor(select<0, 1>(TileShapePV{})));
      Tensor rows = make_tensor(tOcO.data(), rowcol_layout(tOcO.layout()));
      float* lse_entry = p.lse + tile.batch * p.lse_batch_stride + seq.offset_q;
      CUTE_UNROLL
      for (int r = 0; r < kRows; ++r) {
        RowTarget const t = target(p, tile, seq, get<0>(rows(r, 0)));
        if (t.valid) lse_entry[t.head * p.lse_head_stride + t.query] = lse[r];
      }
    }

    if (row_copy(p, tile, seq)) {
      copy_rows(p, sO, thread_idx, tile, seq, tensor_batch);
      if constexpr (!Traits::kSeparateO) {
        // Every thread has read its part of Q's buffer: the producer may load the next Q.
        cutlass::arch::NamedBarrier::sync(Traits::kNumMmaThreads, uint32_t(NamedBarrierId::kEpilogue));
        if (thread_idx == 0) storage.barrier_q_free.arrive();
      }
    } else if (thread_idx == 0) {
      Tensor mO = domain_offset(make_coord(seq.offset_q, _0{}),
                                p.tma_o.get_tma_tensor(p.shape_o)(_, _, tile.head, tensor_batch));   // (entry rows, d)
      Tensor gO = local_tile(mO, select<0, 1>(TileShapePV{}), make_coord(tile.m_block, _0{}));   // (M, d)
      auto [tOgO, tOsO] = tma_partition(p.tma_o, _0{}, Layout<_1>{}, group_modes<0, 2>(sO), group_modes<0, 2>(gO));
      copy(p.tma_o, tOsO, tOgO);
      tma_store_arrive();
      if constexpr (!Traits::kSeparateO) {
        tma_store_wait<0>();   // the store has read Q's buffer: the producer may load the next Q
        storage.barrier_q_free.arrive();
      }
    }
  }

  // Tiles the TMA store cannot write: with GQA packing (rows of several heads), and in a packed
  // batch those reaching past their entry's last row (the rows after it are the next entry's).
  // A packed tile wholly inside its entry is stored by TMA at the entry's offset (measured, H200,
  // bf16 d128, 8 x 2k causal packed: see docs/PERF_NOTES.md).
  CUTE_DEVICE static bool row_copy(Params const& p, TileCoord const& tile, SeqLenInfo const& seq) {
    if constexpr (!Traits::kGeneral) return false;
    return p.pack_gqa || (p.packed && (tile.m_block + 1) * Traits::kBlockM > seq.len_q);
  }

  // Packed batches and GQA packing: the consumer threads copy the staged tile's rows that belong
  // to the entry, 16 bytes at a time, consecutive threads along a row. The shared-memory swizzle
  // moves whole 16-byte units, so each unit is contiguous in sO.
  template <class TensorS>
  CUTE_DEVICE static void copy_rows(Params const& p, TensorS const& sO, int thread_idx, TileCoord tile,
                                    SeqLenInfo const& seq, int tensor_batch) {
    constexpr int kUnit = 16 / sizeof(Element);
    constexpr int kUnitsPerRow = Traits::kHeadDim / kUnit;
    int const units = p.head_dim / kUnit;   // the rest of a padded row is not part of out
    Element* out = p.out + tensor_batch * p.out_batch_stride + int64_t(seq.offset_q) * p.out_row_stride;
#pragma unroll 1   // unrolled, its addresses were hoisted out of the tile loop and spilled
    for (int i = thread_idx; i < Traits::kBlockM * kUnitsPerRow; i += Traits::kNumMmaThreads) {
      int const row = i / kUnitsPerRow;
      int const unit = i % kUnitsPerRow;
      RowTarget const t = target(p, tile, seq, row);
      if (!t.valid) break;   // rows are in order: the rest of the tile is past the entry
      if (unit < units) {
        *reinterpret_cast<uint4*>(out + int64_t(t.query) * p.out_row_stride + int64_t(t.head) * p.out_head_stride +
                                  unit * kUnit) = *reinterpret_cast<uint4 const*>(&sO(row, unit * kUnit));
      }
    }
  }

  // Split keys: O (already normalised by this split's row sums) and LSE in fp32 into the
  // workspace, straight from the accumulator registers; a thread holds column pairs of its rows.
  template <class FragO, int kRows>
  CUTE_DEVICE static void store_partial(Params const& p, FragO const& tOrO, float const (&lse)[kRows], int thread_idx,
                                        TileCoord tile, SeqLenInfo const& seq, int tensor_batch) {
    Tensor tOcO = TiledMmaPV{}.get_thread_slice(thread_idx).partition_C(make_identity_tensor(select<0, 1>(TileShapePV{})));
    Tensor coords = make_tensor(tOcO.data(), rowcol_layout(tOcO.layout()));
    Tensor values = make_tensor(tOrO.data(), rowcol_layout(tOrO.layout()));
    static_assert(decltype(size<0>(values))::value == kRows);
    int64_t const entry_row = int64_t(tensor_batch) * p.seqlen_q + seq.offset_q;
    CUTE_UNROLL
    for (int r = 0; r < kRows; ++r) {
      RowTarget const t = target(p, tile, seq, get<0>(coords(r, 0)));
      if (!t.valid) continue;
      int64_t const row = (int64_t(tile.split) * p.num_heads + t.head) * p.partial_rows + entry_row + t.query;
      if (thread_idx % 4 == 0) p.lse_partial[row] = lse[r];
      float* o_row = p.o_partial + row * p.head_dim;
      CUTE_UNROLL
      for (int c = 0; c < size<1>(values); c += 2) {   // columns c and c + 1 are adjacent
        int const col = get<1>(coords(r, c));
        if (col < p.head_dim) *reinterpret_cast<float2*>(o_row + col) = make_float2(values(r, c), values(r, c + 1));
      }
    }
  }

  // The thread that issues the stores waits until the last one has read shared memory: before the
  // O buffer is rewritten and before the CTA exits.
  CUTE_DEVICE static void store_tail(int thread_idx) {
    if (thread_idx == 0) tma_store_wait<0>();
  }
};

}  // namespace flash::sm90
