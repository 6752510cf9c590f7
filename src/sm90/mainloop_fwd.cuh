// Mainloop of the SM90 forward kernel: the producer's TMA loads and the consumers' wgmma GEMMs
// with the online softmax between them.
//
// Producer (one elected thread): per tile, K and V of each key block the tile sees, last block first, through two
// rings of shared-memory stages guarded by mbarriers (full: TMA landed; empty: consumers are done),
// and Q after the first block's K and V.
// Consumers (two or three warpgroups, 64 query rows each): S = Q K^T (both operands in shared memory),
// softcap, mask, online softmax, O += P V with P in registers. The next block's Q K^T is issued together
// with the current P V and waited for first, so the softmax of one block runs while the tensor
// cores work on the next. Where the tile plan asks for them, scheduler barriers make the warpgroups
// issue their GEMMs in turn, so one warpgroup's softmax overlaps the others' GEMMs.
// A batch entry's rows start at its SeqLenInfo offsets (packed variable-length batches); the tile
// rows past its length are loaded from the next entry or zero-filled by TMA and masked (keys) or
// never stored (queries).
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
  using TiledMmaQK = typename Traits::TiledMmaQK;
  using TiledMmaPV = typename Traits::TiledMmaPV;
  using Pipeline = typename Traits::Pipeline;
  using PipelineState = typename Traits::PipelineState;
  using SharedStorage = typename Traits::SharedStorage;
  using Mask = FwdMask<Traits::kBlockM, Traits::kBlockN, /*kLeftWindow=*/Traits::kGeneral>;
  static constexpr int kNumMmaThreads = Traits::kNumMmaThreads;

  // Global tensors as (rows, head_dim, head, batch) with head_dim contiguous: rows are an entry's
  // sequence (dense) or all tokens of a packed batch (one batch).
  using ShapeQKV = Shape<int32_t, int32_t, int32_t, int32_t>;
  using StrideQKV = Stride<int64_t, _1, int64_t, int64_t>;
  using GmemTensor = decltype(make_tensor(make_gmem_ptr(static_cast<Element const*>(nullptr)), ShapeQKV{}, StrideQKV{}));
  using TmaQ = decltype(make_tma_copy(SM90_TMA_LOAD{}, GmemTensor{}, SmemLayoutQ{}, select<0, 2>(TileShapeQK{}), _1{}));
  using TmaKV = decltype(make_tma_copy(SM90_TMA_LOAD{}, GmemTensor{}, take<0, 2>(SmemLayoutKV{}), select<1, 2>(TileShapeQK{}), _1{}));

  struct Params {
    ShapeQKV shape_q;
    ShapeQKV shape_k;
    TmaQ tma_q;
    TmaKV tma_k;
    TmaKV tma_v;
    int window_left;       // FwdMask's window, -1: unbounded
    int window_right;
    float scale_log2;      // applied to the (softcapped) scores before exp2
    float softcap_scale;   // > 0: scores become tanh(score * softcap_scale) first
    int head_ratio;        // num_heads / num_heads_k: query heads per KV head
  };

  CUTE_DEVICE static Mask make_mask(Params const& p, SeqLenInfo const& seq) {
    return {seq.len_q, seq.len_k, p.window_left, p.window_right};
  }

  static Params to_underlying_arguments(detail::FwdArgs const& args) {
    SeqLens const seqlens = SeqLens::from(args);
    auto gmem = [&](void const* ptr, int rows, int heads, detail::TensorStrides s) {
      return make_tensor(make_gmem_ptr(static_cast<Element const*>(ptr)),
                         ShapeQKV(rows, args.head_dim, heads, seqlens.tensor_batches(args.batch)),
                         StrideQKV(s.row, _1{}, s.head, s.batch));
    };
    GmemTensor q = gmem(args.q, seqlens.rows_q(), args.num_heads, args.q_strides);
    GmemTensor k = gmem(args.k, seqlens.rows_k(), args.num_heads_k, args.k_strides);
    GmemTensor v = gmem(args.v, seqlens.rows_k(), args.num_heads_k, args.v_strides);
    return {q.shape(),
            k.shape(),
            make_tma_copy(SM90_TMA_LOAD{}, q, SmemLayoutQ{}, select<0, 2>(TileShapeQK{}), _1{}),
            make_tma_copy(SM90_TMA_LOAD{}, k, take<0, 2>(SmemLayoutKV{}), select<1, 2>(TileShapeQK{}), _1{}),
            make_tma_copy(SM90_TMA_LOAD{}, v, take<0, 2>(SmemLayoutKV{}), select<1, 2>(TileShapeQK{}), _1{}),
            args.window_left,
            args.window_right,
            args.softmax_scale_log2,
            args.softcap_scale,
            args.num_heads / args.num_heads_k};
  }

  CUTE_DEVICE static void prefetch_tma_descriptors(Params const& p) {
    cute::prefetch_tma_descriptor(p.tma_q.get_tma_descriptor());
    cute::prefetch_tma_descriptor(p.tma_k.get_tma_descriptor());
    cute::prefetch_tma_descriptor(p.tma_v.get_tma_descriptor());
  }

  // Producer, one thread: K and V of blocks n_end-1 down to n_begin, and Q after the first block's K and
  // V: Q's buffer may still be draining the previous tile's O, and wait_q_buffer() (which blocks
  // until it is free) then overlaps those loads. Q is loaded also for a tile that sees no key, so
  // the consumers, which always wait for it, stay in step with the producer.
  template <class WaitQBuffer>
  CUTE_DEVICE static void load(Params const& p, Pipeline& pipeline_k, Pipeline& pipeline_v, PipelineState& state,
                               SharedStorage& storage, TileCoord tile, SeqLenInfo const& seq, int tensor_batch,
                               int n_begin, int n_end, WaitQBuffer const& wait_q_buffer) {
    Tensor sQ = make_tensor(make_smem_ptr(storage.q.data()), SmemLayoutQ{});     // (M, d)
    Tensor sK = make_tensor(make_smem_ptr(storage.k.data()), SmemLayoutKV{});    // (N, d, stage)
    Tensor sV = make_tensor(make_smem_ptr(storage.v.data()), SmemLayoutKV{});    // (N, d, stage)
    int const head_k = tile.head / p.head_ratio;
    // (rows, d) of this batch entry, starting at its first row
    Tensor mQ = domain_offset(make_coord(seq.offset_q, _0{}), p.tma_q.get_tma_tensor(p.shape_q)(_, _, tile.head, tensor_batch));
    Tensor mK = domain_offset(make_coord(seq.offset_k, _0{}), p.tma_k.get_tma_tensor(p.shape_k)(_, _, head_k, tensor_batch));
    Tensor mV = domain_offset(make_coord(seq.offset_k, _0{}), p.tma_v.get_tma_tensor(p.shape_k)(_, _, head_k, tensor_batch));
    Tensor gQ = local_tile(mQ, select<0, 2>(TileShapeQK{}), make_coord(tile.m_block, _0{}));  // (M, d)
    Tensor gK = local_tile(mK, select<1, 2>(TileShapeQK{}), make_coord(_, _0{}));            // (N, d, n)
    Tensor gV = local_tile(mV, select<1, 2>(TileShapeQK{}), make_coord(_, _0{}));            // (N, d, n)

    auto [tQgQ, tQsQ] = tma_partition(p.tma_q, _0{}, Layout<_1>{}, group_modes<0, 2>(sQ), group_modes<0, 2>(gQ));
    auto [tKgK, tKsK] = tma_partition(p.tma_k, _0{}, Layout<_1>{}, group_modes<0, 2>(sK), group_modes<0, 2>(gK));
    auto [tVgV, tVsV] = tma_partition(p.tma_v, _0{}, Layout<_1>{}, group_modes<0, 2>(sV), group_modes<0, 2>(gV));

    bool q_issued = false;
    for (int n_block = n_end - 1; n_block >= n_begin; --n_block) {
      pipeline_k.producer_acquire(state);
      copy(p.tma_k.with(*pipeline_k.producer_get_barrier(state), 0), tKgK(_, n_block), tKsK(_, state.index()));
      pipeline_v.producer_acquire(state);
      copy(p.tma_v.with(*pipeline_v.producer_get_barrier(state), 0), tVgV(_, n_block), tVsV(_, state.index()));
      ++state;
      if (!q_issued) {
        load_q(p, storage, tQgQ, tQsQ, wait_q_buffer);
        q_issued = true;
      }
    }
    if (!q_issued) load_q(p, storage, tQgQ, tQsQ, wait_q_buffer);
  }

  template <class TensorG, class TensorS, class WaitQBuffer>
  CUTE_DEVICE static void load_q(Params const& p, SharedStorage& storage, TensorG const& tQgQ, TensorS& tQsQ,
                                 WaitQBuffer const& wait_q_buffer) {
    wait_q_buffer();
    storage.barrier_q.arrive_and_expect_tx(Traits::kTmaBytesQ);
    copy(p.tma_q.with(reinterpret_cast<uint64_t&>(storage.barrier_q), 0), tQgQ, tQsQ);
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

  // Consumers: accumulates the unnormalised O of the tile in tOrO and the softmax statistics.
  // Requires n_begin < n_end and Q in shared memory.
  template <class FragO, class Softmax>
  CUTE_DEVICE static void mma(Params const& p, Pipeline& pipeline_k, Pipeline& pipeline_v, PipelineState& state,
                              FragO& tOrO, Softmax& softmax, int thread_idx, SharedStorage& storage, TileCoord tile,
                              SeqLenInfo const& seq, int n_begin, int n_end) {
    Tensor sQ = make_tensor(make_smem_ptr(storage.q.data()), SmemLayoutQ{});
    Tensor sK = make_tensor(make_smem_ptr(storage.k.data()), SmemLayoutKV{});
    Tensor sVt = make_tensor(make_smem_ptr(storage.v.data()), SmemLayoutVt{});   // (d, N, stage)

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
    Tensor tOrP = make_tensor<Element>(acc_as_a_operand_layout(tSrS.layout()));
    constexpr int kRows = decltype(size<0>(scores))::value;
    float o_scale[kRows];

    int const warp_group = thread_idx / Traits::kThreadsPerWarpGroup;
    // The mask is rebuilt where it is used rather than kept in registers: in the dense kernel its
    // fields are kernel parameters, which the compiler reads again instead of holding.
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
      softmax.update(scores, p.scale_log2, o_scale);
    };

    // The last warpgroup gives the first one the first turn.
    if (warp_group == Traits::kNumMmaWarpGroups - 1) scheduler_pass(warp_group);

    int n_block = n_end - 1;
    PipelineState state_v = state;
    scheduler_wait(warp_group);
    pipeline_k.consumer_wait(state);
    warpgroup_gemm</*kARegisters=*/false>(mma_qk, tSrQ, tSrK(_, _, _, state.index()), tSrS, /*zero_init=*/true);
    scheduler_pass(warp_group);
    warpgroup_wait<0>();
    warpgroup_fence_operand(tSrS);
    pipeline_k.consumer_release(state);
    ++state;
    softmax_step(n_block);
    convert_fragment(tSrS, tOrP);

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
      softmax_step(n_block);
      warpgroup_wait<0>();
      // The fences keep the compiler from touching O, or overwriting P, before the wait.
      warpgroup_fence_operand(tOrO);
      warpgroup_fence_operand(tOrP);
      pipeline_v.consumer_release(state_v);
      scale_rows(tOrO, o_scale);
      convert_fragment(tSrS, tOrP);
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
};

}  // namespace flash::sm90
