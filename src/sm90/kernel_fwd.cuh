// The SM90 forward kernel, persistent: a producer warpgroup that loads (and, for FP8, transposes
// V) and consumer warpgroups that compute and store, all walking the scheduler's tiles. Everything else lives in the
// mainloop, epilogue and scheduler it is built from.
#pragma once

#include <cute/tensor.hpp>
#include <cutlass/arch/reg_reconfig.h>
#include <cutlass/pipeline/pipeline.hpp>

#include "sm90/epilogue_fwd.cuh"
#include "sm90/mainloop_fwd.cuh"
#include "sm90/seqlen.cuh"
#include "sm90/softmax.cuh"
#include "sm90/tile_scheduler.cuh"
#include "sm90/traits.cuh"

namespace flash::sm90 {

template <class Traits_, class Mainloop_, class Epilogue_, class Scheduler_>
struct FwdKernelSm90 {
  using Traits = Traits_;
  using Mainloop = Mainloop_;
  using Epilogue = Epilogue_;
  using Scheduler = Scheduler_;
  using Pipeline = typename Traits::Pipeline;
  using PipelineState = typename Traits::PipelineState;
  using PipelineVt = typename Traits::PipelineVt;
  using SharedStorage = typename Traits::SharedStorage;
  static constexpr int kNumThreads = Traits::kNumThreads;
  static constexpr int kSharedStorageBytes = Traits::kSharedStorageBytes;
  static constexpr int kCtasPerSm = Traits::kCtasPerSm;

  struct Params {
    typename Mainloop::Params mainloop;
    typename Epilogue::Params epilogue;
    typename Scheduler::Params scheduler;
    SeqLens seqlens;
  };

  // Tiles per (head, entry): query blocks of seqlen_q rows, or with GQA packing of seqlen_q x ratio
  // rows per KV head.
  static int num_m_blocks(detail::FwdArgs const& args) {
    int64_t const rows = int64_t(args.seqlen_q) * (args.pack_gqa ? args.num_heads / args.num_heads_k : 1);
    return int((rows + Traits::kBlockM - 1) / Traits::kBlockM);
  }
  static int tile_heads(detail::FwdArgs const& args) { return args.pack_gqa ? args.num_heads_k : args.num_heads; }

  // Causal and right-window launches take the scheduler's paired order where every entry has the
  // same length (a tile's cost then depends on its query block only, linearly) and the keys are not
  // split, and where they have more tiles than the GPU runs at once (with fewer, one CTA per tile
  // finishes with the longest tile, a pair one block later). Same lengths: a dense batch without
  // seqused_k, or a packed one whose token counts are batch x the longest entry's on both sides,
  // which no entry shorter than the longest allows. (The order only balances the CTAs' work: every
  // tile is visited whatever the device arrays hold.)
  static bool paired_order(detail::FwdArgs const& args) {
    int64_t const tiles = int64_t(num_m_blocks(args)) * tile_heads(args) * args.batch * args.num_splits;
    bool const packed_equal = int64_t(args.total_q) == int64_t(args.batch) * args.seqlen_q &&
                              int64_t(args.total_k) == int64_t(args.batch) * args.seqlen_k;
    bool const same_lengths = args.seqused_k == nullptr && (args.cu_seqlens_q == nullptr || packed_equal);
    return args.window_right >= 0 && same_lengths && args.num_splits == 1 && tiles > int64_t(args.num_sms) * kCtasPerSm;
  }

  static Params to_underlying_arguments(detail::FwdArgs const& args) {
    return {Mainloop::to_underlying_arguments(args), Epilogue::to_underlying_arguments(args),
            Scheduler::make_params(num_m_blocks(args), tile_heads(args), args.batch, args.num_splits, paired_order(args)),
            SeqLens::from(args)};
  }

  CUTE_DEVICE static SeqLenInfo seq_info(Params const& params, int batch) {
    return params.seqlens.template get<Traits::kGeneral>(batch);
  }
  // The consumers' view: whole warps call it, so the general kernel's lengths can be made
  // warp-uniform (SeqLenInfo::warp_uniform; the dense kernel's are kernel parameters already).
  CUTE_DEVICE static SeqLenInfo consumer_seq_info(Params const& params, int batch) {
    SeqLenInfo const seq = seq_info(params, batch);
    if constexpr (Traits::kGeneral) return seq.warp_uniform();
    return seq;
  }
  CUTE_DEVICE static int tensor_batch(Params const& params, int batch) {
    return params.seqlens.template tensor_batch<Traits::kGeneral>(batch);
  }
  // A tile of a packed batch whose entry is shorter than seqlen_q (the longest), or the empty slot
  // of the scheduler's paired order, holds no query row: producer and consumers both skip it, so
  // the per-tile barrier phases stay in step.
  CUTE_DEVICE static bool has_rows(Params const& params, TileCoord const& tile, SeqLenInfo const& seq) {
    return tile.m_block * Traits::kBlockM < Mainloop::tile_rows(params.mainloop, seq);
  }
  CUTE_DEVICE static int first_tile(Params const& params) { return Scheduler::first_tile(params.scheduler, blockIdx.x); }
  CUTE_DEVICE static int next_tile(Params const& params, int t) { return Scheduler::next_tile(params.scheduler, t, gridDim.x); }
  CUTE_DEVICE static TileCoord coord(Params const& params, int t) {
    return Scheduler::template coord<Traits::kGeneral>(params.scheduler, t);
  }

  CUTE_DEVICE void operator()(Params const& params, char* smem) {
    // A split launch's combine kernel (a programmatic dependent) may be scheduled once every CTA
    // has started; it waits for this grid's results itself.
    if constexpr (Traits::kGeneral) asm volatile("griddepcontrol.launch_dependents;");
    SharedStorage& storage = *reinterpret_cast<SharedStorage*>(smem);
    int const warp_group = cutlass::canonical_warp_group_idx();
    int const warp = cutlass::canonical_warp_idx_sync();
    bool const lane_predicate = cute::elect_one_sync();

    // Q arrives by TMA (one arrival with its bytes) or, with GQA packing, from one warp's copies.
    bool const pack_gqa = Traits::kGeneral && params.mainloop.pack_gqa;
    if (warp == 0 && lane_predicate) {
      Mainloop::prefetch_tma_descriptors(params.mainloop);
      Epilogue::prefetch_tma_descriptors(params.epilogue);
      storage.barrier_q.init(pack_gqa ? 32 : 1);
      storage.barrier_q_free.init(Traits::kQFreeArrivals);
    }
    typename Pipeline::Params pipeline_params;
    pipeline_params.transaction_bytes = Traits::kTmaBytesKV;
    pipeline_params.role = warp_group == int(WarpGroupRole::kProducer) ? Pipeline::ThreadCategory::Producer
                                                                        : Pipeline::ThreadCategory::Consumer;
    pipeline_params.is_leader = threadIdx.x % Traits::kThreadsPerWarpGroup == 0;
    pipeline_params.num_consumers = Traits::kNumMmaThreads;
    Pipeline pipeline_k(storage.pipeline_k, pipeline_params, Shape<_1, _1, _1>{});
    // FP8: V's ring feeds the transposing producer warps, whose V^T ring feeds the consumers.
    bool const transposer = Traits::kFp8 && warp_group == int(WarpGroupRole::kProducer) && warp > 0;
    if constexpr (Traits::kFp8) {
      pipeline_params.num_consumers = Traits::kNumTransposeThreads;
      pipeline_params.role = warp == 0    ? Pipeline::ThreadCategory::Producer
                             : transposer ? Pipeline::ThreadCategory::Consumer
                                          : Pipeline::ThreadCategory::NonParticipant;
    }
    Pipeline pipeline_v(storage.pipeline_v, pipeline_params, Shape<_1, _1, _1>{});
    // FP8 only (16-bit kernels get an empty placeholder).
    auto make_pipeline_vt = [&] {
      if constexpr (Traits::kFp8) {
        typename PipelineVt::Params vt_params;
        vt_params.role = transposer ? PipelineVt::ThreadCategory::Producer
                         : warp_group == int(WarpGroupRole::kProducer) ? PipelineVt::ThreadCategory::NonParticipant
                                                                       : PipelineVt::ThreadCategory::Consumer;
        vt_params.producer_arv_count = Traits::kNumTransposeThreads;
        vt_params.consumer_arv_count = Traits::kNumMmaThreads;
        return PipelineVt(storage.pipeline_vt, vt_params);
      } else {
        return cute::tuple<>{};
      }
    };
    auto pipeline_vt = make_pipeline_vt();
    cutlass::arch::fence_barrier_init();
    __syncthreads();

    // Both roles walk the same tiles; `iteration` counts those with rows and gives the barrier phases.
    if (warp_group == int(WarpGroupRole::kProducer)) {
      cutlass::arch::warpgroup_reg_dealloc<Traits::kProducerRegisters>();
      // The loads come from one elected thread; with a paged cache the whole first warp walks the
      // tiles, so that its lanes can look up a key block's pages together, and lane 0 (the
      // pipelines' leader) issues the copies. (Warp-wide for every general launch measured the
      // same on packed prefill and the vision windows, H200: 0.908 of dense and 57-58 us either way.)
      // Paged blocks of several boxes take three or four warps (Mainloop::load_role).
      bool const warp_wide = Traits::kGeneral && params.mainloop.page_table != nullptr;
      typename Mainloop::LoadRole const role = Mainloop::load_role(params.mainloop, warp);
      if ((warp == 0 && (warp_wide || lane_predicate)) || role.index > 0) {
        int const lane = warp_wide ? int(threadIdx.x % 32) : 0;
        PipelineState state = cutlass::make_producer_start_state<Pipeline>();
        int iteration = 0;
        for (int t = first_tile(params); Scheduler::valid(params.scheduler, t); t = next_tile(params, t)) {
          TileCoord const tile = coord(params, t);
          SeqLenInfo const seq = seq_info(params, tile.batch);
          if (!has_rows(params, tile, seq)) continue;
          auto const range = Mainloop::block_range(params.mainloop, Mainloop::make_mask(params.mainloop, seq), tile);
          auto wait_q_buffer = [&storage, iteration] {
            if (iteration > 0) storage.barrier_q_free.wait((iteration - 1) & 1);
          };
          Mainloop::load(params.mainloop, pipeline_k, pipeline_v, state, storage, tile, seq,
                         tensor_batch(params, tile.batch), range.begin, range.end, lane, role, wait_q_buffer);
          ++iteration;
        }
        if (warp == 0) {
          pipeline_k.producer_tail(state);
          pipeline_v.producer_tail(state);
        }
      } else if (transposer) {   // FP8: V^T of every key block, in the loads' order
        if constexpr (Traits::kFp8) {
          PipelineState state_v;
          PipelineState state_vt = cutlass::make_producer_start_state<PipelineVt>();
          for (int t = first_tile(params); Scheduler::valid(params.scheduler, t); t = next_tile(params, t)) {
            TileCoord const tile = coord(params, t);
            SeqLenInfo const seq = seq_info(params, tile.batch);
            if (!has_rows(params, tile, seq)) continue;
            auto const range = Mainloop::block_range(params.mainloop, Mainloop::make_mask(params.mainloop, seq), tile);
            Mainloop::transpose_v(pipeline_v, state_v, pipeline_vt, state_vt, storage, threadIdx.x - 32, range.begin,
                                  range.end);
          }
        }
      } else if (pack_gqa && warp == 1) {   // GQA packing: this warp loads Q, tile by tile
        int iteration = 0;
        for (int t = first_tile(params); Scheduler::valid(params.scheduler, t); t = next_tile(params, t)) {
          TileCoord const tile = coord(params, t);
          SeqLenInfo const seq = seq_info(params, tile.batch);
          if (!has_rows(params, tile, seq)) continue;
          if (iteration > 0) storage.barrier_q_free.wait((iteration - 1) & 1);
          Mainloop::load_q_packed(params.mainloop, storage, tile, seq, tensor_batch(params, tile.batch),
                                  threadIdx.x % 32);
          ++iteration;
        }
      }
    } else {
      cutlass::arch::warpgroup_reg_alloc<Traits::kConsumerRegisters>();
      int const thread_idx = threadIdx.x - Traits::kThreadsPerWarpGroup;
      PipelineState state;
      int iteration = 0;
      for (int t = first_tile(params); Scheduler::valid(params.scheduler, t); t = next_tile(params, t)) {
        TileCoord const tile = coord(params, t);
        SeqLenInfo const seq = consumer_seq_info(params, tile.batch);
        if (!has_rows(params, tile, seq)) continue;
        if constexpr (Traits::kGeneral) state = warp_uniform_state(state);
        auto const range = Mainloop::block_range(params.mainloop, Mainloop::make_mask(params.mainloop, seq), tile);
        int const n_begin = range.begin;
        int const n_end = range.end;
        typename Traits::TiledMmaPV mma_pv;
        Tensor tOrO = partition_fragment_C(mma_pv, select<0, 1>(typename Traits::TileShapePV{}));
        constexpr int kRows = decltype(size<0>(rowcol_layout(tOrO.layout())))::value;
        OnlineSoftmax<kRows, Traits::kSoftmaxMaxOffset, Traits::kPolyExp2, Traits::kPolyDegree> softmax;
        storage.barrier_q.wait(iteration & 1);
        if (n_begin < n_end) {
          if constexpr (Traits::kFp8) {
            Mainloop::mma(params.mainloop, pipeline_k, pipeline_vt, state, tOrO, softmax, thread_idx, storage, tile, seq,
                          n_begin, n_end);
          } else {
            Mainloop::mma(params.mainloop, pipeline_k, pipeline_v, state, tOrO, softmax, thread_idx, storage, tile, seq,
                          n_begin, n_end);
          }
        } else {
          clear(tOrO);   // no row of this tile sees a key: O = 0, LSE = -inf
          Mainloop::release_q(storage);
        }
        float o_scale[kRows];
        float lse[kRows];
        // Recomputed, not kept through the mainloop (16-bit: a kernel parameter; FP8: two cached loads).
        softmax.finalize(Mainloop::score_scale_log2(params.mainloop, tile), o_scale, lse);
        if constexpr (Traits::kFp8) {
          float const v_scale = Mainloop::output_scale(params.mainloop, tile);
          CUTE_UNROLL
          for (int r = 0; r < kRows; ++r) o_scale[r] *= v_scale;
        }
        // The entry's lengths are read again rather than kept in registers through the mainloop.
        Epilogue::store(params.epilogue, tOrO, o_scale, lse, storage, thread_idx, tile, consumer_seq_info(params, tile.batch),
                        tensor_batch(params, tile.batch));
        ++iteration;
      }
      Epilogue::store_tail(thread_idx);
    }
  }
};

template <class Kernel>
__global__ void __launch_bounds__(Kernel::kNumThreads, Kernel::kCtasPerSm) fwd_kernel_sm90(CUTE_GRID_CONSTANT typename Kernel::Params const params) {
  extern __shared__ __align__(1024) char smem[];
  Kernel{}(params, smem);
}

}  // namespace flash::sm90
