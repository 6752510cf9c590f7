// Compile-time plan of the SM90 forward kernel for one (element type, head dim): tile sizes,
// pipeline depth, warpgroup roles and register budgets, MMA atoms and shared-memory layouts.
#pragma once

#include <cute/tensor.hpp>
#include <cutlass/arch/barrier.h>
#include <cutlass/gemm/collective/builders/sm90_common.inl>
#include <cutlass/numeric_types.h>
#include <cutlass/pipeline/pipeline.hpp>

#include "api/fwd_args.h"

namespace flash::sm90 {

using namespace cute;

// dense, general, decode or dense_short (detail::KernelVariant says what each serves).
using Variant = detail::KernelVariant;

struct TilePlan {
  int block_m;   // query rows per CTA tile: 64 per consumer warpgroup
  int block_n;   // key rows per pipeline stage
  int stages;    // depth of the K and V shared-memory rings
  int producer_registers;   // setmaxnreg budgets: 128 x (producer + consumers x consumer) <= 65536
  int consumer_registers;
  bool scheduler_barrier;   // consumer warpgroups issue their GEMMs in turn
  bool separate_o;          // O is staged in its own buffer (else in Q's), so the next Q loads during the epilogue
  int ctas_per_sm = 1;      // CTAs resident per SM (launch bounds, persistent grid, register pool)
  // A warp whose rows all kept their running max skips O's rescale, a branch around the multiply
  // of every O register of the thread (softmax.cuh). Measured per plan (H200, FA3-paper grid, one
  // run each way, then with a lag threshold that session 13 removed for its accuracy cost): on at
  // 16-bit d128/d256 and FP8 d64/d256, where O is 64-128 registers; off at 16-bit d64 (-3-9%) and
  // FP8 d128 (-4-8%), where the branch cost more than the multiplies it saved.
  bool skip_rescale = false;
  // Of every 8 scores, how many are exponentiated on the FMA pipe (softmax.cuh, exp2_fma) rather
  // than on the MUFU unit, whose 16 exp2 per cycle per SM take as long as the GEMMs at FP8 d128.
  int poly_exp2 = 0;
};

// One choice per head dim and variant, each with its reason (measured on H100, bf16, FA3-paper
// grid, in one run against the alternatives named). Shared-memory budget: 227 KB per CTA.
// Variants: the dense kernel serves dense batches without a mask or with a right window (causal);
// the general kernel adds packed variable-length batches, seqused_k, left windows, softcap, paged
// caches, GQA packing and split keys at run time, which costs registers: per-tile lengths, the
// window's two edges, the packed-row store.
constexpr TilePlan base_tile_plan(int head_dim, Variant variant, bool fp8) {
  bool const general = detail::has_general_features(variant);
  // FP8 (dense only): V is transposed in shared memory by three producer warps and O is staged in
  // its own 16-bit buffer (Q's holds one byte per element). The transposer's registers: five lane
  // addresses, two selectors and 4 registers per ldmatrix in flight (VtTransposer::kInFlight: 4 at
  // 56 registers, 1 below).
  // d64: exp-bound as in 16 bits: three consumer warpgroups (192 rows), a third softmax to overlap
  // with the GEMMs. 128 x (56 + 3 x 152) = 65536 registers, no spills; 192 x 160 (FA3's tile)
  // spilled 96 bytes at 152. Q 12 KB + K, V, V^T 2 stages x 8 KB + O 24 KB = 84 KB.
  // Before (128 x 128, two warpgroups at 56 / 224): 506 TFLOP/s at 16k non-causal (H200).
  // d128: 128 x 224 (FA3's tile): a block's fixed costs (barriers, O rescale, GEMM issue) over more
  // keys; S takes 112 registers, P 28, O 64: the consumers need 232, which leaves the producer 40
  // (128 x (40 + 2 x 232) = 64512), where ptxas is clean with one ldmatrix in flight (two spilled 4
  // bytes). Q 16 KB + K, V, V^T 2 x 28 KB + O 32 KB = 216 KB. The wgmma N of 224 is an extended
  // shape (CUTE_SM90_EXTENDED_MMA_SHAPES_ENABLED, set by the build).
  // Before: 128 x 192 measured 649 TFLOP/s at 16k non-causal and 645 causal against 607 and 605
  // with 128 x 128 (H200, one run, the old transposer).
  // d256: 128 x 64, two stages: Q 32 KB + K, V, V^T 2 x 16 KB + O 64 KB = 192 KB; 128 keys would
  // need 96 KB more.
  // dense_short (d64, causal calls of at most 1024 queries and keys: choose_kernel): 128 x 128,
  // two consumer warpgroups. Where a tile's warpgroups share its key range (FP8), a causal 512-token
  // sequence on 192-row tiles (rows padded to 576, each diagonal across two key blocks) computes
  // 1.68x its visible score pairs, on 128-row tiles 1.25x (1k: 1.50x and 1.12x). The 16-bit kernel's
  // per-warpgroup ranges (kWarpGroupRanges) compute 1.25x on either tile; there the 192-row tile's
  // warpgroups run unequal block counts (1, 1 and 2 in the first tile at 512) between barriers they
  // share, and the last tile's third warpgroup has no rows (a cause read from the schedule, not
  // profiled). Measured (H100, FA3-paper grid, two A B runs against the 192-row plan,
  // 2026-12-07): causal 512 +11-13% (16-bit) and +10% (FP8), 1k +9% and +5.5%; causal 2k -8% and
  // -13%, longer and non-causal calls 0.66-0.95 (non-causal 512: 0.99 at 16 bits, 0.91 FP8), where
  // the third softmax overlapping the GEMMs is worth more than the padding.
  // FP8 d128 (calls of at most 2048 queries and keys, causal or not): 128 x 128 against 128 x 224,
  // whose key blocks pad 512 keys to 672. Measured (H100, FA3-paper grid, two A B runs):
  // non-causal 512 +25%, 1k +8%, 2k +2%, 4k-16k -5-10%; causal 512 +48%, 1k +22%, 2k +14%, 4k -1-2%,
  // 8k-16k -7-10%. 40/232 registers as at 128 x 224, no spills.
  if (variant == Variant::kDenseShort) {
    if (fp8 && head_dim > 64) return TilePlan{128, 128, 2, 40, 232, true, true};
    return fp8 ? TilePlan{128, 128, 2, 56, 224, true, true} : TilePlan{128, 128, 2, 32, 232, true, true};
  }
  if (fp8) {
    if (head_dim <= 64) return TilePlan{192, 128, 2, 56, 152, true, true};
    if (head_dim <= 128) return TilePlan{128, 224, 2, 40, 232, true, true};
    return TilePlan{128, 64, 2, 56, 224, false, true};
  }
  // decode: at most 64 query rows per tile (one token of 8 GQA heads is 8). With 128-row tiles the
  // second consumer warpgroup multiplied zero rows, and the GEMMs and exponentials of a key block
  // took about as long as its 64 KB took to arrive (d128, H200: 0.94-0.99 of cuDNN at large
  // batches). One consumer warpgroup halves that work and frees shared memory for a deeper K/V
  // ring: 192 KB in flight per SM (d128: Q 16 KB + O 16 KB + 3 x 64 KB; d64: 6 x 32 KB).
  // d80 (the vision encoder's packed windows of <= 64 tokens, 1408 one-block tiles): on the
  // 128 x 128 general plan half of every tile's rows and keys were empty and each SM ran one tile
  // at a time, paying its loads' latency alone (57 us against cuDNN's 38, H200). 64 x 64 tiles
  // with two CTAs per SM: each tile's work is that of its window, and one CTA's loads and stores
  // overlap the other's GEMMs. Q 10 KB + O 10 KB + K,V 2 x 2 x 10 KB = 60 KB and 128 registers
  // per thread per CTA (40 + 216).
  if (variant == Variant::kDecode) {
    if (head_dim <= 64) return TilePlan{64, 128, 6, 40, 240, false, true};
    if (head_dim <= 80) return TilePlan{64, 64, 2, 40, 216, false, true, 2};
    return TilePlan{64, 128, 3, 40, 240, false, true};
  }
  // hdim 64 is exp-bound: a third consumer warpgroup (192 rows) gives the scheduler one more
  // softmax to overlap with GEMMs: 525 TFLOP/s at 16k non-causal, 538 causal, against 488 and 490
  // with 128 rows (short causal sequences lose ~10%: 173 against 190 at 512). Q 24 KB + K,V
  // 2 x 2 x 16 KB + O 24 KB. 128 x 32 + 384 x 160 registers = 65536.
  // The general variant's extra state does not fit 160 registers (ptxas spilled 100-150 bytes): it
  // runs d128's two-warpgroup plan. Its producer takes 40 registers at every head dim up to 192:
  // the page-table lookups, split ranges and GQA-packed Q copies spilled 20-70 bytes at 32 (the
  // consumers keep 232, which the pool allows: 128 x (40 + 2 x 232) = 64512).
  if (head_dim <= 64) return general ? TilePlan{128, 128, 2, 40, 232, true, true} : TilePlan{192, 128, 2, 32, 160, true, true};
  // hdim 80 (Qwen2.5-VL's vision encoder) and 96: d64's three-warpgroup plan does not fit: at 128
  // registers per thread (512 threads) ptxas spilled 116 (d80) and 220 (d96) bytes and serialised
  // the wgmmas (C7512). Two warpgroups as at 128: Q 20/24 KB + K,V 2 x 2 x 20/24 KB + O 20/24 KB.
  if (head_dim <= 96) return general ? TilePlan{128, 128, 2, 40, 232, true, true} : TilePlan{128, 128, 2, 32, 232, true, true};
  // hdim 128: Q 32 KB + K,V 2 x 2 x 32 KB + O 32 KB = 192 KB; S and O take 64 fp32 registers each
  // per thread.
  // 128 x 176 (FA3's non-causal tile) measured 485 against 609; 3 stages and dropping the
  // scheduler barrier changed nothing (+-2%). The producer needs only TMA coordinates, yet at 24
  // registers ptxas spilled 8 bytes of them, so it gets 32 and the consumers 232.
  if (head_dim <= 128) return general ? TilePlan{128, 128, 2, 40, 232, true, true} : TilePlan{128, 128, 2, 32, 232, true, true};
  // hdim 192: as 256, 64-key blocks; Q 48 KB + K,V 2 x 2 x 24 KB + O 48 KB = 192 KB leaves room for
  // a separate O buffer.
  if (head_dim <= 192) return general ? TilePlan{128, 64, 2, 40, 232, false, true} : TilePlan{128, 64, 2, 32, 232, false, true};
  // hdim 256: O alone takes 128 fp32 registers per thread. 128 x 64 measured 758 TFLOP/s at 16k
  // non-causal and 750 causal against 502 and 508 with 128 x 80 (FA3's tile); the scheduler barrier
  // made no difference at 128 x 80. Q 64 KB + K,V 2 x 2 x 32 KB = 192 KB leaves no room for a
  // separate O buffer: O is staged in Q's. 32/232 registers fit
  // without spills here (128 x 80 needed 240 and still spilled) and measured equal or faster than
  // 24/240 (which spilled 20 bytes of the producer's coordinates). The general variant takes
  // 24/240 and spills: 12 bytes of the producer's coordinates when chosen, more as it took on
  // features (68 bytes stored at 03b1522, 116 at 4953207, 140 stored and 192 loaded from 28e4442
  // on), in both roles, some loads in the consumers' key-block loop. It serves only the serving
  // features at d256 (packed, paged, windowed, split calls); the dense grid runs on the plan above.
  // 32/240 compiled clean but hung on the H100: it asks for 65536 registers, more than the CTA's
  // pool (see kLaunchRegisters).
  return general ? TilePlan{128, 64, 2, 24, 240, false, false} : TilePlan{128, 64, 2, 32, 232, false, false};
}

// The rescale branch (TilePlan::skip_rescale) where the dense kernel measured faster with it: 16-bit
// d128 and d256, FP8 d64 and d256. Every variant of a head dim makes the same choice, so that a
// packed batch of equal lengths gives the dense kernel's bits (tests/test_gpu_serving.cpp); the
// general and decode kernels were not timed both ways.
// Exponentials on the FMA pipe (TilePlan::poly_exp2): 1 of 8 at FP8 d128 only. Measured (H200,
// FA3-paper grid, non-causal, one run, k of 8 against the MUFU alone): FP8 d128 k = 1 +2-5% (16k
// 889 -> 905), k = 2 -1% to +2%, k = 3 and 4 -2% to -9%; FP8 d64 -4% to -8% at k = 1, worse above;
// bf16 d64 -2% to -7% at k = 1; the vision encoder's d80 unchanged. The d64 softmaxes are not held
// by the MUFU unit (nor, profiled, by issue slots: docs/PERF_NOTES.md), and the polynomial's eight
// instructions in place of one cost more than they save there.
constexpr TilePlan tile_plan(int head_dim, Variant variant, bool fp8 = false) {
  TilePlan plan = base_tile_plan(head_dim, variant, fp8);
  plan.skip_rescale = fp8 ? (head_dim <= 64 || head_dim > 128) : (head_dim > 96 && head_dim <= 128) || head_dim > 192;
  plan.poly_exp2 = fp8 && head_dim > 64 && head_dim <= 128 ? 1 : 0;
  return plan;
}

enum class WarpGroupRole : int {
  kProducer = 0,   // TMA loads of Q, K, V
  kConsumer = 1,   // first of the MMA warpgroups
};

// Named-barrier ids, counted from CUTLASS's first user barrier.
enum class NamedBarrierId : uint32_t {
  kEpilogue = 0,           // all consumer threads: O is in shared memory, the store may start
  kWarpSchedulerWG0 = 1,   // consumer warpgroup w waits on kWarpSchedulerWG0 + w before its GEMMs
  kKvTail = 4,             // all consumer threads: the key tail of V is zeroed (after 1 + 3 schedulers)
};

template <class Element_, int kHeadDim_, Variant kVariant_>
struct FwdTraits {
  using Element = Element_;
  using ElementAccum = float;
  // FP8 (e4m3) inputs: V is transposed in shared memory (FP8 wgmma reads B K-major only), P is
  // quantised to e4m3, and O is written in 16 bits: BF16 or FP16, chosen at run time (both have
  // this type's layouts; the TMA store moves bytes).
  static constexpr bool kFp8 = sizeof(Element) == 1;
  using ElementOut = cute::conditional_t<kFp8, cutlass::bfloat16_t, Element>;
  static constexpr int kHeadDim = kHeadDim_;
  static constexpr Variant kVariant = kVariant_;
  static constexpr bool kGeneral = detail::has_general_features(kVariant);   // the run-time features (see tile_plan)
  static_assert(kVariant != Variant::kDenseShort || kHeadDim <= 64 || (kFp8 && kHeadDim <= 128),
                "the short-sequence plans are d64's and FP8 d128's");
  static_assert(!kFp8 || !kGeneral, "FP8 has the dense variant only");
  static constexpr TilePlan kPlan = tile_plan(kHeadDim, kVariant, kFp8);
  static constexpr int kBlockM = kPlan.block_m;
  static constexpr int kBlockN = kPlan.block_n;
  static constexpr int kStages = kPlan.stages;
  // Each consumer warpgroup computes only the key blocks its own rows see (FwdMask::n_block_end_of_rows)
  // where a tile is taller than a key block, so that its warpgroups' causal diagonals end in
  // different blocks (d64: 192 x 128, d192/d256: 128 x 64), in the dense 16-bit kernel. Measured
  // (H100, FA3-paper grid, against the tile-wide range in the same call; PERF_NOTES): 16-bit d64
  // causal +2-7%, d256 causal +1-2%, d64 non-causal 512 -4% (geometric mean +0.8%); but FP8 d64
  // -3-7% (non-causal, and causal from 4k) and FP8 d256 -1-3%, where the same code cost more than
  // the skipped blocks saved. Elsewhere the warpgroups keep the tile's range: with the
  // per-warpgroup bound and the skipped turns ptxas spilled 52 bytes at FP8 d128 (128 x 224), 8 at
  // general d64 (0 before) and 12 more at general d256; square tiles gain only on an entry's last
  // tile.
  static constexpr bool kWarpGroupRanges = !kGeneral && !kFp8 && kBlockM > kBlockN;

  static constexpr int kThreadsPerWarpGroup = 128;
  static constexpr int kNumMmaWarpGroups = kBlockM / 64;
  static constexpr int kNumMmaThreads = kNumMmaWarpGroups * kThreadsPerWarpGroup;
  static constexpr int kNumThreads = kNumMmaThreads + kThreadsPerWarpGroup;
  static constexpr int kProducerRegisters = kPlan.producer_registers;
  static constexpr int kConsumerRegisters = kPlan.consumer_registers;
  static constexpr bool kUseSchedulerBarrier = kPlan.scheduler_barrier;
  static constexpr int kCtasPerSm = kPlan.ctas_per_sm;
  // setmaxnreg only moves registers within the CTA's pool, which is what it was launched with: the
  // per-thread count the launch bounds allow (65536 / (threads x CTAs per SM), in units of 8) for
  // every thread. A plan asking for more makes the consumers' setmaxnreg.inc wait forever.
  static constexpr int kLaunchRegisters = 65536 / (kNumThreads * kCtasPerSm) / 8 * 8;
  static_assert(kThreadsPerWarpGroup * (kProducerRegisters + kNumMmaWarpGroups * kConsumerRegisters) <=
                    kLaunchRegisters * kNumThreads,
                "register plan exceeds the CTA's register pool");
  static_assert(kBlockM % 64 == 0, "64 query rows per consumer warpgroup");
  static_assert(kNumMmaWarpGroups >= 2 || !kUseSchedulerBarrier, "scheduler barriers take turns between warpgroups");
  static_assert(kHeadDim % 16 == 0 && kBlockN % 16 == 0, "wgmma K steps are 16 elements");
  static_assert(!kFp8 || (kHeadDim % 32 == 0 && kBlockN % 32 == 0), "FP8 wgmma K steps are 32 elements");
  // FP8: producer warps 1..3 transpose V (warp 0 issues the TMA loads).
  static constexpr int kNumTransposeThreads = kFp8 ? 3 * 32 : 0;
  // Softmax (softmax.cuh): P = exp2(score - max + offset) <= 2^offset. FP8: an offset of 7 keeps
  // probabilities down to 2^-13 of the max in e4m3's normal range (smallest 2^-6) and P <= 128
  // below e4m3's 448. 16-bit: no offset.
  static constexpr bool kSkipRescale = kPlan.skip_rescale;
  static constexpr int kSoftmaxMaxOffset = kFp8 ? 7 : 0;
  static constexpr int kPolyExp2 = kPlan.poly_exp2;
  static constexpr int kPolyDegree = kFp8 ? 2 : 3;

  using TileShapeQK = Shape<Int<kBlockM>, Int<kBlockN>, Int<kHeadDim>>;   // (M, N, K) of S = Q K^T
  using TileShapePV = Shape<Int<kBlockM>, Int<kHeadDim>, Int<kBlockN>>;   // (M, N, K) of O = P V
  using MmaWarpGroupLayout = Layout<Shape<Int<kNumMmaWarpGroups>, _1, _1>>;  // warpgroups split M

  // Both operands of Q K^T come from shared memory (K-major). P V takes P from registers and
  // V from shared memory, where V's head dim is contiguous: an MN-major B operand.
  using TiledMmaQK = decltype(make_tiled_mma(
      SM90::GMMA::ss_op_selector<Element, Element, ElementAccum, TileShapeQK>(), MmaWarpGroupLayout{}));
  // FP8 reads V^T, the producer's transposed copy (keys contiguous): a K-major B operand.
  static constexpr GMMA::Major kMajorV = kFp8 ? GMMA::Major::K : GMMA::Major::MN;
  using TiledMmaPV = decltype(make_tiled_mma(
      SM90::GMMA::rs_op_selector<Element, Element, ElementAccum, TileShapePV, GMMA::Major::K, kMajorV>(),
      MmaWarpGroupLayout{}));

  using SmemLayoutQ = decltype(tile_to_shape(
      cutlass::gemm::collective::detail::ss_smem_selector<GMMA::Major::K, Element, Int<kBlockM>, Int<kHeadDim>>(),
      Shape<Int<kBlockM>, Int<kHeadDim>>{}));                                        // (M, d)
  using SmemLayoutKV = decltype(tile_to_shape(
      cutlass::gemm::collective::detail::ss_smem_selector<GMMA::Major::K, Element, Int<kBlockN>, Int<kHeadDim>>(),
      Shape<Int<kBlockN>, Int<kHeadDim>, Int<kStages>>{}));                          // (N, d, stage)
  // Paged KV caches whose pages are not whole key blocks load a block in chunks (one TMA box each,
  // never crossing a page): halves of a block where pages hold whole halves, else 16-row chunks.
  // A chunk's layout is that of a stage's first rows, which every chunk shares (chunks start at
  // multiples of the swizzle period). Fewer, larger boxes: each box costs the copy engine about the
  // same time whatever its size (measured, H200: ~300 cycles per 2 KB box).
  static constexpr int kPageChunk = 16;
  static constexpr int kPageHalf = kBlockN / 2;
  static_assert(kBlockN % kPageChunk == 0 && kPageHalf % kPageChunk == 0, "key blocks are whole page chunks");
  template <int kRows>
  using SmemLayoutKVRows = decltype(composition(take<0, 2>(SmemLayoutKV{}),
                                                make_tile(Layout<Int<kRows>>{}, Layout<Int<kHeadDim>>{})));
  // V seen as the B operand of P V, (d, N, stage): 16-bit, the same bytes as V (MN-major); FP8, a
  // buffer of its own that the producer's transpose fills (K-major: keys contiguous).
  using SmemLayoutVtView = decltype(composition(
      SmemLayoutKV{},
      make_ordered_layout(Shape<Int<kHeadDim>, Int<kBlockN>, Int<kStages>>{}, Step<_2, _1, _3>{})));
  using SmemLayoutVtFp8 = decltype(tile_to_shape(
      cutlass::gemm::collective::detail::ss_smem_selector<GMMA::Major::K, Element, Int<kHeadDim>, Int<kBlockN>>(),
      Shape<Int<kHeadDim>, Int<kBlockN>, Int<kStages>>{}));
  using SmemLayoutVt = cute::conditional_t<kFp8, SmemLayoutVtFp8, SmemLayoutVtView>;
  // O is staged for the TMA store with Q's layout (of the output type), in its own buffer where
  // shared memory allows (the next tile's Q then loads during the epilogue), else in Q's buffer:
  // each consumer warpgroup then overwrites only the rows of Q that it alone has read.
  using SmemLayoutO = decltype(tile_to_shape(
      cutlass::gemm::collective::detail::ss_smem_selector<GMMA::Major::K, ElementOut, Int<kBlockM>, Int<kHeadDim>>(),
      Shape<Int<kBlockM>, Int<kHeadDim>>{}));
  static constexpr bool kSeparateO = kPlan.separate_o;
  static_assert(kSeparateO || !kFp8, "a 16-bit O does not fit an FP8 Q's buffer");

  using Pipeline = cutlass::PipelineTmaAsync<kStages>;
  using PipelineState = typename Pipeline::PipelineState;
  // FP8: the transposing warps hand V^T to the consumers (both sides arrive per thread).
  using PipelineVt = cutlass::PipelineAsync<kStages>;
  static_assert(cute::is_same_v<PipelineState, typename PipelineVt::PipelineState>);
  static constexpr uint32_t kTmaBytesQ = kBlockM * kHeadDim * sizeof(Element);
  static constexpr uint32_t kTmaBytesKV = kBlockN * kHeadDim * sizeof(Element);

  struct SharedStorage {
    cute::array_aligned<Element, cute::cosize_v<SmemLayoutQ>, 1024> q;   // Q (and O without kSeparateO)
    cute::array_aligned<ElementOut, kSeparateO ? cute::cosize_v<SmemLayoutO> : 1, 1024> o;
    cute::array_aligned<Element, cute::cosize_v<SmemLayoutKV>, 1024> k;
    cute::array_aligned<Element, cute::cosize_v<SmemLayoutKV>, 1024> v;
    cute::array_aligned<Element, kFp8 ? cute::cosize_v<SmemLayoutVt> : 1, 1024> vt;   // FP8: V transposed
    alignas(16) cutlass::arch::ClusterTransactionBarrier barrier_q;   // Q of the current tile landed
    // Q's buffer may be reloaded: the consumers' last Q K^T of the tile is done (kSeparateO), or the last
    // tile's O store has read it (O staged in Q's buffer).
    cutlass::arch::ClusterBarrier barrier_q_free;
    typename Pipeline::SharedStorage pipeline_k;
    typename Pipeline::SharedStorage pipeline_v;
    typename PipelineVt::SharedStorage pipeline_vt;

    CUTE_DEVICE ElementOut* o_buffer() { return kSeparateO ? o.data() : reinterpret_cast<ElementOut*>(q.data()); }
  };
  // Arrivals that complete barrier_q_free: every consumer thread, or the one that issued the store.
  static constexpr int kQFreeArrivals = kSeparateO ? kNumMmaThreads : 1;
  static constexpr int kSharedStorageBytes = sizeof(SharedStorage);
  // 228 KB per SM, of which each resident CTA reserves 1 KB; 227 KB at most for one CTA.
  static_assert(kSharedStorageBytes <= 227 * 1024 && kCtasPerSm * (kSharedStorageBytes + 1024) <= 228 * 1024,
                "shared memory plan exceeds the SM90 limit for its CTAs per SM");
};

}  // namespace flash::sm90
