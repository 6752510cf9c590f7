// flash_bench: times attention forward through the public API over the FlashAttention-3 paper's
// grid and the Qwen2.5-VL-3B serving shapes (language-model prefill, dense and packed with variable
// lengths, sliding windows, the vision encoder's windowed and full layers), checks sampled rows
// against the CPU double reference, prints a table and the figures derived from several points,
// and writes JSON (bench/compare_peers.py adds cuDNN and FlashAttention-2 to it).
// A benchmark is a program, not a test: CUDA events, warm-up, median of many launches, inputs
// rotated so that L2 does not hold them, random data (zeros run faster).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <initializer_list>
#include <iostream>
#include <iterator>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <cuda_runtime_api.h>

#include "cli_options.h"
#include "flash_api.h"
#include "forward_runner.h"
#include "host/host_tensor.h"
#include "json_report.h"
#include "reference/attention_ref.h"
#include "reference_check.h"

#ifndef FLASH_BUILD_GIT_COMMIT
#error "bench/CMakeLists.txt defines FLASH_BUILD_GIT_COMMIT"
#endif

namespace {

using flash::DataType;
using flash::reference::Problem;

constexpr const char* kProgram = "flash_bench";
constexpr int kExitFailure = 1;
constexpr int kDefaultIters = 50;
constexpr int kDefaultWarmup = 10;
constexpr int kDefaultCheckRows = 64;
constexpr uint64_t kDefaultSeed = 1;
constexpr double kMsPerSecond = 1e3;
constexpr double kFlopsPerTflop = 1e12;
constexpr double kBytesPerTb = 1e12;
constexpr int kCudaVersionMajorScale = 1000;   // cudaRuntimeGetVersion gives 1000*major + 10*minor
constexpr int kCudaVersionMinorScale = 10;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// FlashAttention-3 paper grid: 16k tokens (batch * seqlen) and hidden size 2048 (heads * head_dim).
constexpr int kFa3PaperTokens = 16384;
constexpr int kFa3PaperHidden = 2048;
constexpr int kFa3PaperSeqlens[] = {512, 1024, 2048, 4096, 8192, 16384};
constexpr int kFa3PaperHeadDims[] = {64, 128, 256};
constexpr std::initializer_list<DataType> kFa3PaperDtypes = {DataType::FP16, DataType::BF16};

// Qwen2.5-VL-3B language model: 16 query heads sharing 2 KV heads, head dim 128, bf16; 16k tokens
// per batch, at least one sequence.
constexpr int kQwenTokens = 16384;
constexpr int kQwenHeads = 16;
constexpr int kQwenHeadsK = 2;
constexpr int kQwenHeadDim = 128;
constexpr int kQwenSeqlens[] = {512, 1024, 2048, 4096, 8192, 16384, 32768};
constexpr std::initializer_list<DataType> kQwenDtypes = {DataType::BF16};

// Qwen2.5-VL-3B vision encoder on the first user's 84 x 58 patch grid (4,872 tokens; the CLI's
// qwen2.5-vl-3b-vit-* presets): 16 heads of dim 80, non-causal, bf16.
// Its windowed layers attend within the 88 windows of flash::cli::qwen_vit_window_lengths (one
// packed batch); its full layers over one 4,872-token sequence, run both packed (one entry: the
// general kernel) and dense (batch 1). Issue 5: each at least 1.3x faster than cuDNN
// (bench/compare_peers.py times cuDNN and FlashAttention-2 on these points).
constexpr int kVitHeads = 16;
constexpr int kVitHeadDim = 80;
constexpr std::initializer_list<DataType> kVitDtypes = {DataType::BF16};

// Variable-length prefill on the language model's heads, causal: 8 equal lengths of 2048 packed
// beside the dense 8 x 2048 batch; and mixed lengths spanning 1..8k packed beside each length alone
// as a dense batch of 1, whose FLOP-weighted TFLOP/s is their FLOPs summed over their times summed.
// Issue 5: packed equal lengths within 5% of dense; mixed lengths at >= 90% of the FLOP-weighted
// dense figure.
constexpr int kVarlenEqualBatch = 8;
constexpr int kVarlenEqualSeqlen = 2048;
// Powers of two, lengths that end inside a query tile (3000, 777, 300, 17) and one token.
constexpr int kVarlenMixedLengths[] = {8192, 4096, 3000, 2048, 1024, 777, 512, 300, 128, 64, 17, 1};
constexpr double kVarlenEqualTarget = 0.95;
constexpr double kVarlenMixedTarget = 0.90;
constexpr std::initializer_list<DataType> kVarlenDtypes = {DataType::BF16};

// Sliding windows on the language model's heads over one 16k sequence: causal with 1k keys to the
// left of the diagonal, and non-causal with 1k on each side, each against full causal attention.
// Issue 5: the cost scales with the window, not the sequence (the time ratio against full causal
// should follow the FLOP ratio, the FLOPs counted on visible pairs).
constexpr int kWindowSeqlen = 16384;
constexpr int kWindowSize = 1024;
constexpr std::initializer_list<DataType> kWindowDtypes = {DataType::BF16};

// Decode on the language model's heads: one query per entry against a dense KV cache, batch 1..64,
// cache 4k..128k (the points of shared/anchors/h100_serving_peers.json), the split count chosen by
// the library (a workspace is passed); plus batches 1 and 8 at 16k unsplit, which show what the
// split buys. Issue 5: faster than cuDNN everywhere; >= 2.5 TB/s of K and V read where that read is
// >= 64 MB; at batch 1 x 16k at least twice cuDNN's bandwidth. Every entry holds the same K/V
// (entry 0's, repeated on upload: random data for 2 GB caches would take minutes to generate);
// the query rows differ, and the sampled check covers entry 0 (the GPU tests cover the rest).
constexpr int kDecodeBatches[] = {1, 8, 32, 64};
constexpr int kDecodeCaches[] = {4096, 16384, 65536, 131072};
constexpr int64_t kDecodeMaxKeys = int64_t{32} * 131072;   // b 64 x 128k (8.6 GB) is left out, as in the anchors
constexpr int kDecodeUnsplitCache = 16384;
constexpr int kDecodeUnsplitBatches[] = {1, 8};
constexpr double kDecodeTargetTbps = 2.5;
constexpr double kDecodeTargetMinBytes = 64e6;
constexpr std::initializer_list<DataType> kDecodeDtypes = {DataType::BF16};

// Paged KV caches against the contiguous layout, same shapes: decode (batch 8, 16k cache) and
// causal prefill (batch 4 x 4096) with pages of 16, 64 and 256 keys. Issue 5: within 5% of the
// contiguous time at page size >= 64, within 15% at 16.
constexpr int kPagedSizes[] = {16, 64, 256};
constexpr int kPagedDecodeBatch = 8;
constexpr int kPagedDecodeCache = 16384;
constexpr int kPagedPrefillBatch = 4;
constexpr int kPagedPrefillSeqlen = 4096;
constexpr int kPagedLargePage = 64;
constexpr double kPagedLargeTarget = 0.95;
constexpr double kPagedSmallTarget = 0.85;
constexpr std::initializer_list<DataType> kPagedDtypes = {DataType::BF16};

constexpr const char* kGridFa3Paper = "fa3paper";
constexpr const char* kGridQwen = "qwen";
constexpr const char* kGridVit = "vit";
constexpr const char* kGridVarlen = "varlen";
constexpr const char* kGridWindow = "window";
constexpr const char* kGridDecode = "decode";
constexpr const char* kGridPaged = "paged";
// In the order they run (within each dtype).
constexpr const char* kGrids[] = {kGridFa3Paper, kGridQwen, kGridVit, kGridVarlen, kGridWindow, kGridDecode, kGridPaged};

// Each point's role in its grid ("case" in the JSON), by which the derived figures find it.
constexpr const char* kCaseSweep = "sweep";                  // fa3paper and qwen points
constexpr const char* kCaseVitWindows = "windows-packed";    // vit: the 88 windows, packed
constexpr const char* kCaseVitFullPacked = "full-packed";    // vit: 4,872 tokens, packed, one entry
constexpr const char* kCaseVitFullDense = "full-dense";      // vit: 4,872 tokens, dense batch 1
constexpr const char* kCaseEqualPacked = "equal-packed";     // varlen: 8 x 2048 packed
constexpr const char* kCaseEqualDense = "equal-dense";       // varlen: 8 x 2048 dense
constexpr const char* kCaseMixedPacked = "mixed-packed";     // varlen: kVarlenMixedLengths packed
constexpr const char* kCaseMixedDense = "mixed-dense";       // varlen: one of them alone, dense batch 1
constexpr const char* kCaseFullCausal = "full-causal";       // window: no window, causal
constexpr const char* kCaseWindowCausal = "window-causal";   // window: (1024, -1), causal
constexpr const char* kCaseWindowBoth = "window-both";       // window: (1024, 1024), non-causal
constexpr const char* kCaseDecode = "decode";                // decode: automatic splits
constexpr const char* kCaseDecodeUnsplit = "decode-unsplit";  // decode: num_splits 1
constexpr const char* kCasePagedDecode = "decode-paged";     // paged: decode, pages of page_size
constexpr const char* kCaseContigDecode = "decode-contig";   // paged: the same decode, contiguous
constexpr const char* kCasePagedPrefill = "prefill-paged";   // paged: causal prefill, pages
constexpr const char* kCaseContigPrefill = "prefill-contig"; // paged: the same prefill, contiguous

struct BenchOptions {
  std::vector<std::string> grids = {std::begin(kGrids), std::end(kGrids)};
  std::optional<DataType> dtype;   // replaces each grid's own dtypes
  std::optional<int> head_dim;
  std::optional<bool> causal;
  int iters = kDefaultIters;
  int warmup = kDefaultWarmup;
  int check_rows = kDefaultCheckRows;
  uint64_t seed = kDefaultSeed;
  std::string json_path;
};

// A point is the problem (dense or packed, masks included) that the runner and the reference share.
struct BenchPoint {
  const char* grid;
  const char* name;   // its case
  DataType dtype;
  Problem problem;
  flash::apps::RunLayout layout{};   // paged cache, split choice
  bool repeat_kv = false;            // every entry holds entry 0's K/V (decode grid)
};

struct PointResult {
  int status = flash::kSuccess;
  std::string error;
  flash::apps::WriteCheck written;
  bool checked = false;
  flash::apps::ReferenceCheck check;
  bool timed = false;
  double flops = 0.0;
  double ms = 0.0;
  double tflops = 0.0;
  double kv_tbps = 0.0;       // K and V bytes the entries attend to, over the time
  bool split = false;         // the first run split the keys
  size_t workspace_bytes = 0;
  bool passed() const {
    return status == flash::kSuccess && written.ok() && (!checked || check.passed()) && timed;
  }
};

struct Measured {
  BenchPoint point;
  PointResult result;
};

// A figure computed from several points: issue 5's targets compare points with each other.
struct DerivedFigure {
  DerivedFigure(std::string name_, const char* grid_, DataType dtype_, std::string description_)
      : name(std::move(name_)), grid(grid_), dtype(dtype_), description(std::move(description_)) {}
  std::string name;
  const char* grid;
  DataType dtype;
  std::string description;
  double value = kNaN;        // a ratio; NaN when one of its points failed
  double target_min = kNaN;   // issue 5's lower bound on value; NaN: none
  std::string detail;         // the measurements behind it, as printed
  flash::apps::JsonObject inputs;   // the same, in the JSON
};

std::string usage_text() {
  return std::string("Usage: ") + kProgram +
         " [options]\n\n"
         "Times attention forward over benchmark grids and writes a table (stdout) and JSON.\n\n"
         "Options:\n"
         "  --grid NAMES        all (default) or a comma-separated list of:\n"
         "                        fa3paper  hidden 2048, 16k tokens, head dims 64/128/256, fp16+bf16\n"
         "                        qwen      16 q heads, 2 kv heads, head dim 128, bf16, seqlen 512..32k\n"
         "                        vit       Qwen2.5-VL-3B vision encoder (16 heads, head dim 80, bf16, non-causal,\n"
         "                                  84 x 58 patches): the 88 windows packed; 4,872 tokens packed and dense\n"
         "                        varlen    qwen heads, causal: 8 x 2048 packed and dense; lengths\n"
         "                                  8192,4096,3000,2048,1024,777,512,300,128,64,17,1 packed and each alone\n"
         "                        window    qwen heads, seqlen 16384: causal, causal with window (1024,-1),\n"
         "                                  non-causal window (1024,1024)\n"
         "                        decode    qwen heads, bf16, one query: batch 1/8/32/64 x cache 4k..128k, automatic\n"
         "                                  split (and unsplit at 16k, batch 1 and 8)\n"
         "                        paged     qwen heads, bf16: decode 8 x 16k and causal prefill 4 x 4096, pages of\n"
         "                                  16/64/256 keys and contiguous\n"
         "  --dtype TYPE        only this input type (fp16, bf16, fp8), replacing each grid's own\n"
         "  --head-dim N        only this head dimension\n"
         "  --causal            only causal points\n"
         "  --no-causal         only non-causal points\n"
         "  --iters N           timed launches per point (default 50)\n"
         "  --warmup N          untimed launches before them (default 10)\n"
         "  --check-rows N      rows per point checked against the CPU reference (default 64; 0: none),\n"
         "                      drawn so that rel_l2 estimates the whole output's relative L2 error:\n"
         "                      with probability 1 / keys seen, each weighted by its keys seen\n"
         "  --seed N            seed of the random inputs and the sampled rows (default 1)\n"
         "  --json PATH         write the results as JSON\n"
         "  --help              print this text\n\n"
         "After the table come the derived figures: packed vs dense TFLOP/s (varlen, vit), mixed lengths\n"
         "vs the FLOP-weighted dense TFLOP/s of each length alone (varlen), window vs full causal time\n"
         "(window), paged vs contiguous time (paged). Sliding-window FLOPs count the visible (query, key)\n"
         "pairs; TB/s counts the K and V bytes the entries attend to.\n"
         "FLASH_GIT_COMMIT in the environment overrides the commit recorded at configure time.\n";
}

std::string grid_list() {
  std::string list;
  for (const char* grid : kGrids) list += std::string(list.empty() ? "" : ", ") + grid;
  return list;
}

// "all", or a comma-separated list of grid names; the grids run in kGrids order whatever the
// order given. Returns an error message, or an empty string.
std::string parse_grids(const std::string& value, std::vector<std::string>* grids) {
  const std::string expected = "expected all or a comma-separated list of " + grid_list();
  std::vector<std::string> names;
  std::stringstream stream(value);
  for (std::string name; std::getline(stream, name, ',');) names.push_back(name);
  if (names.empty() || value.back() == ',') return "invalid value '" + value + "' for --grid: " + expected;
  for (const std::string& name : names) {
    const bool known = name == "all" || std::find(std::begin(kGrids), std::end(kGrids), name) != std::end(kGrids);
    if (!known) return "invalid value '" + value + "' for --grid: unknown grid '" + name + "'; " + expected;
  }
  const bool all = std::find(names.begin(), names.end(), "all") != names.end();
  grids->clear();
  for (const char* grid : kGrids) {
    if (all || std::find(names.begin(), names.end(), grid) != names.end()) grids->push_back(grid);
  }
  return {};
}

// Returns an error message, or an empty string; *help is set for --help.
std::string parse_options(int argc, char** argv, BenchOptions* options, bool* help) {
  auto int_value = [](const std::string& flag, const std::string& value, int64_t min_value, int* field) {
    int64_t parsed = 0;
    if (!flash::cli::parse_int_in_range(value, min_value, INT32_MAX, &parsed)) {
      return "invalid value '" + value + "' for " + flag + ": expected an integer >= " + std::to_string(min_value);
    }
    *field = static_cast<int>(parsed);
    return std::string();
  };
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      *help = true;
      return {};
    }
    if (flag == "--causal" || flag == "--no-causal") {
      options->causal = flag == "--causal";
      continue;
    }
    const bool takes_value = flag == "--grid" || flag == "--dtype" || flag == "--head-dim" || flag == "--iters" ||
                             flag == "--warmup" || flag == "--check-rows" || flag == "--seed" || flag == "--json";
    if (!takes_value) return "unknown option '" + flag + "' (see --help)";
    if (i + 1 >= argc) return "missing value for " + flag;
    const std::string value = argv[++i];
    std::string error;
    if (flag == "--grid") {
      error = parse_grids(value, &options->grids);
    } else if (flag == "--dtype") {
      DataType dtype;
      if (!flash::host::parse_dtype(value, &dtype)) {
        return "invalid value '" + value + "' for --dtype: expected fp16, bf16 or fp8";
      }
      options->dtype = dtype;
    } else if (flag == "--head-dim") {
      int head_dim = 0;
      error = int_value(flag, value, 1, &head_dim);
      options->head_dim = head_dim;
    } else if (flag == "--iters") {
      error = int_value(flag, value, 1, &options->iters);
    } else if (flag == "--warmup") {
      error = int_value(flag, value, 0, &options->warmup);
    } else if (flag == "--check-rows") {
      error = int_value(flag, value, 0, &options->check_rows);
    } else if (flag == "--seed") {
      int64_t seed = 0;
      if (!flash::cli::parse_int_in_range(value, 0, INT64_MAX, &seed)) {
        return "invalid value '" + value + "' for --seed: expected a non-negative integer";
      }
      options->seed = static_cast<uint64_t>(seed);
    } else {
      options->json_path = value;   // --json
    }
    if (!error.empty()) return error;
  }
  return {};
}

bool runs_grid(const BenchOptions& o, const char* grid) {
  return std::find(o.grids.begin(), o.grids.end(), grid) != o.grids.end();
}

std::vector<DataType> dtypes_for(const BenchOptions& o, std::initializer_list<DataType> grid_dtypes) {
  if (o.dtype) return {*o.dtype};
  return grid_dtypes;
}

bool selected(const BenchOptions& o, int head_dim, bool causal) {
  return (!o.head_dim || *o.head_dim == head_dim) && (!o.causal || *o.causal == causal);
}

Problem dense_problem(int batch, int heads, int heads_k, int seqlen, int head_dim, bool causal) {
  Problem problem;
  problem.batch = batch;
  problem.seqlen_q = seqlen;
  problem.seqlen_k = seqlen;
  problem.num_heads = heads;
  problem.num_heads_k = heads_k;
  problem.head_dim = head_dim;
  problem.is_causal = causal;
  return problem;
}

// Sequences of these lengths (the same for queries and keys) packed along one token dimension:
// cu_seqlens 0, l0, l0 + l1, ...; seqlen_q/k are the longest length, as the library wants them.
Problem packed_problem(const std::vector<int>& lengths, int heads, int heads_k, int head_dim, bool causal) {
  const int longest = *std::max_element(lengths.begin(), lengths.end());
  Problem problem = dense_problem(static_cast<int>(lengths.size()), heads, heads_k, longest, head_dim, causal);
  problem.cu_seqlens_q = flash::reference::cu_seqlens_of(lengths);
  problem.cu_seqlens_k = problem.cu_seqlens_q;
  return problem;
}

Problem decode_problem(int batch, int seqlen_q, int cache, bool causal) {
  Problem problem = dense_problem(batch, kQwenHeads, kQwenHeadsK, cache, kQwenHeadDim, causal);
  problem.seqlen_q = seqlen_q;
  return problem;
}

flash::apps::RunLayout run_layout(int page_size, int num_splits) {
  flash::apps::RunLayout layout;
  layout.page_size = page_size;
  layout.num_splits = num_splits;
  return layout;
}

Problem with_window(Problem problem, int left, int right) {
  problem.window_left = left;
  problem.window_right = right;
  return problem;
}

// Points in the order they run: grouped by dtype so that one pool of random inputs serves them all.
std::vector<BenchPoint> make_points(const BenchOptions& o) {
  std::vector<BenchPoint> points;
  const auto add = [&](const char* grid, const char* name, DataType dtype, const Problem& problem,
                       flash::apps::RunLayout layout = {}, bool repeat_kv = false) {
    if (selected(o, problem.head_dim, problem.is_causal)) {
      points.push_back({grid, name, dtype, problem, layout, repeat_kv});
    }
  };
  if (runs_grid(o, kGridFa3Paper)) {
    for (const DataType dtype : dtypes_for(o, kFa3PaperDtypes)) {
      for (const int head_dim : kFa3PaperHeadDims) {
        for (const bool causal : {false, true}) {
          const int heads = kFa3PaperHidden / head_dim;
          for (const int seqlen : kFa3PaperSeqlens) {
            add(kGridFa3Paper, kCaseSweep, dtype,
                dense_problem(kFa3PaperTokens / seqlen, heads, heads, seqlen, head_dim, causal));
          }
        }
      }
    }
  }
  if (runs_grid(o, kGridQwen)) {
    for (const DataType dtype : dtypes_for(o, kQwenDtypes)) {
      for (const bool causal : {false, true}) {
        for (const int seqlen : kQwenSeqlens) {
          const int batch = std::max(1, kQwenTokens / seqlen);
          add(kGridQwen, kCaseSweep, dtype, dense_problem(batch, kQwenHeads, kQwenHeadsK, seqlen, kQwenHeadDim, causal));
        }
      }
    }
  }
  if (runs_grid(o, kGridVit)) {
    const std::vector<int> windows =
        flash::cli::qwen_vit_window_lengths(flash::cli::kQwenVitPatchRows, flash::cli::kQwenVitPatchCols);
    const int tokens = flash::cli::kQwenVitPatchRows * flash::cli::kQwenVitPatchCols;
    for (const DataType dtype : dtypes_for(o, kVitDtypes)) {
      add(kGridVit, kCaseVitWindows, dtype, packed_problem(windows, kVitHeads, kVitHeads, kVitHeadDim, false));
      add(kGridVit, kCaseVitFullPacked, dtype, packed_problem({tokens}, kVitHeads, kVitHeads, kVitHeadDim, false));
      add(kGridVit, kCaseVitFullDense, dtype, dense_problem(1, kVitHeads, kVitHeads, tokens, kVitHeadDim, false));
    }
  }
  if (runs_grid(o, kGridVarlen)) {
    const std::vector<int> equal(kVarlenEqualBatch, kVarlenEqualSeqlen);
    const std::vector<int> mixed(std::begin(kVarlenMixedLengths), std::end(kVarlenMixedLengths));
    for (const DataType dtype : dtypes_for(o, kVarlenDtypes)) {
      add(kGridVarlen, kCaseEqualPacked, dtype, packed_problem(equal, kQwenHeads, kQwenHeadsK, kQwenHeadDim, true));
      add(kGridVarlen, kCaseEqualDense, dtype,
          dense_problem(kVarlenEqualBatch, kQwenHeads, kQwenHeadsK, kVarlenEqualSeqlen, kQwenHeadDim, true));
      add(kGridVarlen, kCaseMixedPacked, dtype, packed_problem(mixed, kQwenHeads, kQwenHeadsK, kQwenHeadDim, true));
      for (const int length : mixed) {
        add(kGridVarlen, kCaseMixedDense, dtype, dense_problem(1, kQwenHeads, kQwenHeadsK, length, kQwenHeadDim, true));
      }
    }
  }
  if (runs_grid(o, kGridWindow)) {
    for (const DataType dtype : dtypes_for(o, kWindowDtypes)) {
      const Problem causal = dense_problem(1, kQwenHeads, kQwenHeadsK, kWindowSeqlen, kQwenHeadDim, true);
      const Problem non_causal = dense_problem(1, kQwenHeads, kQwenHeadsK, kWindowSeqlen, kQwenHeadDim, false);
      add(kGridWindow, kCaseFullCausal, dtype, causal);
      add(kGridWindow, kCaseWindowCausal, dtype, with_window(causal, kWindowSize, -1));
      add(kGridWindow, kCaseWindowBoth, dtype, with_window(non_causal, kWindowSize, kWindowSize));
    }
  }
  if (runs_grid(o, kGridDecode)) {
    for (const DataType dtype : dtypes_for(o, kDecodeDtypes)) {
      for (const int cache : kDecodeCaches) {
        for (const int batch : kDecodeBatches) {
          if (int64_t{batch} * cache > kDecodeMaxKeys) continue;
          add(kGridDecode, kCaseDecode, dtype, decode_problem(batch, 1, cache, false), run_layout(0, 0), true);
        }
      }
      for (const int batch : kDecodeUnsplitBatches) {
        add(kGridDecode, kCaseDecodeUnsplit, dtype, decode_problem(batch, 1, kDecodeUnsplitCache, false),
            run_layout(0, 1), true);
      }
    }
  }
  if (runs_grid(o, kGridPaged)) {
    for (const DataType dtype : dtypes_for(o, kPagedDtypes)) {
      const Problem decode = decode_problem(kPagedDecodeBatch, 1, kPagedDecodeCache, false);
      const Problem prefill = decode_problem(kPagedPrefillBatch, kPagedPrefillSeqlen, kPagedPrefillSeqlen, true);
      add(kGridPaged, kCaseContigDecode, dtype, decode, run_layout(0, 0));
      add(kGridPaged, kCaseContigPrefill, dtype, prefill, run_layout(0, 0));
      for (const int page_size : kPagedSizes) {
        add(kGridPaged, kCasePagedDecode, dtype, decode, run_layout(page_size, 0));
        add(kGridPaged, kCasePagedPrefill, dtype, prefill, run_layout(page_size, 0));
      }
    }
  }
  std::stable_sort(points.begin(), points.end(), [](const BenchPoint& a, const BenchPoint& b) {
    return static_cast<int>(a.dtype) < static_cast<int>(b.dtype);
  });
  return points;
}

bool is_packed(const Problem& p) { return flash::reference::is_varlen(p); }

bool has_window(const Problem& p) { return p.window_left >= 0 || p.window_right >= 0; }

// Per-entry lengths of a packed problem: seqlen_of_q or seqlen_of_k of every batch entry.
std::vector<int> lengths_of(const Problem& p, int (*length)(const Problem&, int) = flash::reference::seqlen_of_q) {
  std::vector<int> lengths;
  for (int b = 0; b < p.batch; ++b) lengths.push_back(length(p, b));
  return lengths;
}

double tflops_of(double flops, double ms) { return flops / (ms / kMsPerSecond) / kFlopsPerTflop; }

// Random q, k, v large enough for every point of one dtype; each point reads a prefix, so the
// generator runs once per dtype instead of once per point.
struct InputPool {
  std::vector<uint16_t> q_bits, k_bits, v_bits;
  std::vector<double> q, k, v;
};

InputPool make_pool(DataType dtype, const std::vector<BenchPoint>& points, bool with_values, uint64_t seed) {
  size_t q_max = 0;
  size_t kv_max = 0;
  for (const BenchPoint& p : points) {
    if (p.dtype != dtype) continue;
    q_max = std::max(q_max, flash::apps::q_elements(p.problem));
    // A point that repeats entry 0's K/V draws only that entry from the pool.
    kv_max = std::max(kv_max, flash::apps::kv_elements(p.problem) / (p.repeat_kv ? p.problem.batch : 1));
  }
  InputPool pool;
  flash::host::fill_random(dtype, q_max, seed, &pool.q_bits, with_values ? &pool.q : nullptr);
  flash::host::fill_random(dtype, kv_max, seed + 1, &pool.k_bits, with_values ? &pool.k : nullptr);
  flash::host::fill_random(dtype, kv_max, seed + 2, &pool.v_bits, with_values ? &pool.v : nullptr);
  return pool;
}

// Entry 0's K or V (a prefix of the pool) repeated for every entry of a dense problem.
std::vector<uint16_t> repeated_entry(const std::vector<uint16_t>& pool, const Problem& p) {
  const size_t entry = flash::apps::kv_elements(p) / static_cast<size_t>(p.batch);
  std::vector<uint16_t> all(entry * static_cast<size_t>(p.batch));
  for (int b = 0; b < p.batch; ++b) std::copy(pool.begin(), pool.begin() + entry, all.begin() + entry * b);
  return all;
}

PointResult run_point(const BenchPoint& point, const InputPool& pool, const BenchOptions& o,
                      const flash::apps::DeviceInfo& device) {
  const Problem& problem = point.problem;
  const int copies = flash::apps::rotation_copies(flash::apps::input_bytes(problem, point.dtype), device.l2_bytes,
                                                  o.warmup + o.iters);
  PointResult result;
  std::optional<flash::apps::ForwardRunner> runner;
  if (point.repeat_kv) {
    runner.emplace(problem, point.dtype, /*with_lse=*/false, pool.q_bits.data(), repeated_entry(pool.k_bits, problem).data(),
                   repeated_entry(pool.v_bits, problem).data(), copies, point.layout);
  } else {
    runner.emplace(problem, point.dtype, /*with_lse=*/false, pool.q_bits.data(), pool.k_bits.data(), pool.v_bits.data(),
                   copies, point.layout);
  }
  const cudaStream_t stream = nullptr;
  result.flops = flash::apps::attention_flops(problem);
  result.workspace_bytes = runner->workspace_bytes();
  result.status = runner->run_once(stream);
  if (result.status != flash::kSuccess) {
    result.error = flash::last_error_message();
    return result;
  }
  result.split = runner->last_run_split();
  std::vector<uint16_t> out;
  result.written = runner->read_outputs(&out, nullptr);
  if (o.check_rows > 0) {
    result.checked = true;
    // Repeated K/V: entry 0's rows (the first rows of q and out) against the pool's entry 0.
    Problem checked = problem;
    if (point.repeat_kv) checked.batch = 1;
    // Rows drawn for an estimate of the whole output's relative L2 error (what peers report).
    const auto sample = flash::apps::sample_rows_for_error(checked, o.check_rows, o.seed);
    result.check = flash::apps::check_rows(checked, point.dtype, {pool.q.data(), pool.k.data(), pool.v.data()},
                                           {out.data(), nullptr}, sample);
  }
  result.status = runner->time(o.warmup, o.iters, stream, &result.ms);
  if (result.status != flash::kSuccess) {
    result.error = flash::last_error_message();
    return result;
  }
  result.timed = true;
  result.tflops = tflops_of(result.flops, result.ms);
  result.kv_tbps = flash::apps::kv_bytes_read(problem, point.dtype) / (result.ms / kMsPerSecond) / kBytesPerTb;
  result.written.guards_intact = result.written.guards_intact && runner->guards_intact();
  return result;
}

// "dense", "packed" or "page<N>".
std::string layout_text(const BenchPoint& point) {
  if (point.layout.page_size > 0) return "page" + std::to_string(point.layout.page_size);
  return is_packed(point.problem) ? "packed" : "dense";
}

// "left,right" as FlashAttentionParams takes them, or "-" without a window.
std::string window_text(const Problem& p) {
  if (!has_window(p)) return "-";
  return std::to_string(p.window_left) + "," + std::to_string(p.window_right);
}

void print_header() {
  std::printf("%-8s %-14s %-5s %5s %5s %4s %6s %6s %4s %-6s %-9s %-7s %5s %9s %8s %6s %9s %9s  %s\n", "grid", "case",
              "dtype", "batch", "heads", "kv", "seq_q", "seq_k", "hdim", "causal", "window", "layout", "split", "ms",
              "TFLOP/s", "TB/s", "rel_l2", "max_abs", "status");
  std::printf("(packed: batch = sequences, seqlen = the longest; the JSON lists the lengths. TB/s: K and V read)\n");
}

void print_row(const BenchPoint& point, const PointResult& r) {
  const Problem& p = point.problem;
  std::printf("%-8s %-14s %-5s %5d %5d %4d %6d %6d %4d %-6s %-9s %-7s %5s ", point.grid, point.name,
              flash::host::dtype_name(point.dtype), p.batch, p.num_heads, p.num_heads_k, p.seqlen_q, p.seqlen_k,
              p.head_dim, p.is_causal ? "yes" : "no", window_text(p).c_str(), layout_text(point).c_str(),
              r.split ? "yes" : "no");
  if (r.timed) {
    std::printf("%9.4f %8.1f %6.3f ", r.ms, r.tflops, r.kv_tbps);
  } else {
    std::printf("%9s %8s %6s ", "-", "-", "-");
  }
  if (r.checked && r.status == flash::kSuccess) {
    std::printf("%9.2e %9.2e  ", r.check.out.rel_l2, r.check.out.max_abs);
  } else {
    std::printf("%9s %9s  ", "-", "-");
  }
  if (r.status != flash::kSuccess) {
    std::printf("%s: %s\n", flash::status_string(r.status), r.error.c_str());
  } else if (!r.written.ok()) {
    std::printf("FAIL: %lld unwritten outputs, guard bytes %s\n", static_cast<long long>(r.written.out_nonfinite),
                r.written.guards_intact ? "intact" : "CHANGED");
  } else if (r.checked && !r.check.passed()) {
    std::printf("FAIL: rel_l2 above %.0e\n", r.check.tolerance);
  } else {
    std::printf("ok\n");
  }
  std::fflush(stdout);
}

std::string point_json(const BenchPoint& point, const PointResult& r) {
  const Problem& p = point.problem;
  flash::apps::JsonObject json;
  json.string("grid", point.grid)
      .string("case", point.name)
      .string("dtype", flash::host::dtype_name(point.dtype))
      .string("layout", layout_text(point))
      .integer("page_size", point.layout.page_size)
      .integer("num_splits", point.layout.num_splits)   // as requested; 0: automatic
      .boolean("split", r.split)
      .integer("workspace_bytes", static_cast<int64_t>(r.workspace_bytes))
      .boolean("kv_repeated", point.repeat_kv)
      .integer("batch", p.batch)   // packed: the number of sequences
      .integer("heads", p.num_heads)
      .integer("heads_k", p.num_heads_k)
      .integer("seqlen_q", p.seqlen_q)   // packed: the longest lengths
      .integer("seqlen_k", p.seqlen_k)
      .integer("total_q", flash::reference::total_q(p))
      .integer("total_k", flash::reference::total_k(p));
  if (is_packed(p)) {
    json.raw("seqlens_q", flash::apps::json_int_array(lengths_of(p)))
        .raw("seqlens_k", flash::apps::json_int_array(lengths_of(p, flash::reference::seqlen_of_k)));
  } else {
    json.null("seqlens_q").null("seqlens_k");
  }
  json.integer("head_dim", p.head_dim)
      .boolean("causal", p.is_causal)
      .integer("window_left", p.window_left)
      .integer("window_right", p.window_right)
      .number("softcap", p.softcap)
      .number("flops", r.flops);
  if (r.timed) {
    json.number("ms", r.ms).number("tflops", r.tflops).number("kv_tbps", r.kv_tbps);
  } else {
    json.null("ms").null("tflops").null("kv_tbps");
  }
  if (r.checked && r.status == flash::kSuccess) {
    json.number("rel_l2", r.check.out.rel_l2).number("max_abs", r.check.out.max_abs).integer("rows_checked", r.check.rows);
  } else {
    json.null("rel_l2").null("max_abs").integer("rows_checked", 0);
  }
  json.string("status", flash::status_string(r.status))
      .string("error", r.error)
      .integer("unwritten", r.written.out_nonfinite)
      .boolean("guards_intact", r.written.guards_intact)
      .boolean("passed", r.passed());
  return json.str();
}

// The points of one case of a grid that ran in `dtype`.
std::vector<const Measured*> find_points(const std::vector<Measured>& measured, const char* grid, const char* name,
                                         DataType dtype) {
  std::vector<const Measured*> found;
  for (const Measured& m : measured) {
    if (std::string(m.point.grid) == grid && std::string(m.point.name) == name && m.point.dtype == dtype) {
      found.push_back(&m);
    }
  }
  return found;
}

// The one point of a case, or null when it did not run (filtered out, or the run stopped early).
const Measured* find_point(const std::vector<Measured>& measured, const char* grid, const char* name, DataType dtype) {
  const std::vector<const Measured*> found = find_points(measured, grid, name, dtype);
  return found.size() == 1 ? found.front() : nullptr;
}

double timed_value(const PointResult& r, double value) { return r.timed ? value : kNaN; }

template <typename... Args>
std::string format(const char* spec, Args... args) {
  char text[256];
  std::snprintf(text, sizeof(text), spec, args...);
  return text;
}

// A packed point's TFLOP/s over those of the same sequences run dense (the same FLOPs: the dense
// time over the packed one).
DerivedFigure packed_vs_dense(const std::string& name, const std::string& description, const Measured& packed,
                              const Measured& dense, double target_min) {
  DerivedFigure figure{name, packed.point.grid, packed.point.dtype, description};
  const double packed_tflops = timed_value(packed.result, packed.result.tflops);
  const double dense_tflops = timed_value(dense.result, dense.result.tflops);
  const double packed_ms = timed_value(packed.result, packed.result.ms);
  const double dense_ms = timed_value(dense.result, dense.result.ms);
  figure.value = packed_tflops / dense_tflops;
  figure.target_min = target_min;
  figure.detail = format("%.1f vs %.1f TFLOP/s (%.4f vs %.4f ms)", packed_tflops, dense_tflops, packed_ms, dense_ms);
  figure.inputs.string("packed_case", packed.point.name)
      .string("dense_case", dense.point.name)
      .number("flops", packed.result.flops)
      .number("packed_ms", packed_ms)
      .number("packed_tflops", packed_tflops)
      .number("dense_ms", dense_ms)
      .number("dense_tflops", dense_tflops);
  return figure;
}

// Mixed lengths packed against the FLOP-weighted TFLOP/s of each length alone (dense, batch 1).
DerivedFigure mixed_ratio(const Measured& packed, const std::vector<const Measured*>& singles) {
  DerivedFigure figure{"varlen_mixed_packed_vs_weighted_dense", packed.point.grid, packed.point.dtype,
                       "mixed lengths packed / FLOP-weighted dense alone"};
  double flops = 0.0;
  double ms = 0.0;
  bool all_timed = singles.size() == static_cast<size_t>(packed.point.problem.batch);
  for (const Measured* single : singles) {
    flops += single->result.flops;
    ms += single->result.ms;
    all_timed = all_timed && single->result.timed;
  }
  const double weighted = all_timed ? tflops_of(flops, ms) : kNaN;
  const double packed_tflops = timed_value(packed.result, packed.result.tflops);
  figure.value = packed_tflops / weighted;
  figure.target_min = kVarlenMixedTarget;
  figure.detail = format("%.1f vs %.1f TFLOP/s (%.4f ms vs %.4f ms summed over %zu lengths)", packed_tflops, weighted,
                         timed_value(packed.result, packed.result.ms), all_timed ? ms : kNaN, singles.size());
  figure.inputs.raw("lengths", flash::apps::json_int_array(lengths_of(packed.point.problem)))
      .number("packed_flops", packed.result.flops)
      .number("packed_ms", timed_value(packed.result, packed.result.ms))
      .number("packed_tflops", packed_tflops)
      .number("dense_flops_sum", flops)
      .number("dense_ms_sum", all_timed ? ms : kNaN)
      .number("dense_weighted_tflops", weighted);
  return figure;
}

// A window's time over full causal attention's, beside the ratio of their FLOPs (visible pairs).
DerivedFigure window_ratio(const std::string& name, const Measured& window, const Measured& full) {
  const Problem& p = window.point.problem;
  DerivedFigure figure{name, window.point.grid, window.point.dtype,
                       "window (" + window_text(p) + (p.is_causal ? ") causal" : ")") + " / full causal time"};
  const double ms = timed_value(window.result, window.result.ms);
  const double full_ms = timed_value(full.result, full.result.ms);
  const double flops_ratio = window.result.flops / full.result.flops;
  figure.value = ms / full_ms;
  figure.detail = format("%.4f vs %.4f ms; FLOP ratio %.3f; %.1f vs %.1f TFLOP/s", ms, full_ms, flops_ratio,
                         timed_value(window.result, window.result.tflops), timed_value(full.result, full.result.tflops));
  figure.inputs.integer("seqlen", p.seqlen_q)
      .integer("window_left", p.window_left)
      .integer("window_right", p.window_right)
      .boolean("causal", p.is_causal)
      .number("ms", ms)
      .number("full_causal_ms", full_ms)
      .number("time_ratio", ms / full_ms)
      .number("flops", window.result.flops)
      .number("full_causal_flops", full.result.flops)
      .number("flops_ratio", flops_ratio)
      .number("tflops", timed_value(window.result, window.result.tflops))
      .number("full_causal_tflops", timed_value(full.result, full.result.tflops));
  return figure;
}

// A paged point's speed over the contiguous one's (contiguous time over paged time).
DerivedFigure paged_ratio(const Measured& paged, const Measured& contiguous) {
  const int page_size = paged.point.layout.page_size;
  const bool decode = std::string(paged.point.name) == kCasePagedDecode;
  DerivedFigure figure{format("paged_%s_page%d_vs_contiguous", decode ? "decode" : "prefill", page_size),
                       paged.point.grid, paged.point.dtype,
                       format("%s, pages of %d / contiguous (speed)", decode ? "decode" : "prefill", page_size)};
  const double ms = timed_value(paged.result, paged.result.ms);
  const double contiguous_ms = timed_value(contiguous.result, contiguous.result.ms);
  figure.value = contiguous_ms / ms;
  figure.target_min = page_size >= kPagedLargePage ? kPagedLargeTarget : kPagedSmallTarget;
  figure.detail = format("%.4f vs %.4f ms", ms, contiguous_ms);
  figure.inputs.integer("page_size", page_size)
      .number("paged_ms", ms)
      .number("contiguous_ms", contiguous_ms)
      .number("paged_kv_tbps", timed_value(paged.result, paged.result.kv_tbps))
      .number("contiguous_kv_tbps", timed_value(contiguous.result, contiguous.result.kv_tbps));
  return figure;
}

// A decode point's K/V bandwidth where it reads at least kDecodeTargetMinBytes (issue 5's bound).
DerivedFigure decode_bandwidth(const Measured& decode) {
  const Problem& p = decode.point.problem;
  DerivedFigure figure{format("decode_b%d_cache%d_kv_tbps", p.batch, p.seqlen_k), decode.point.grid, decode.point.dtype,
                       format("decode b %d x cache %d: TB/s of K and V", p.batch, p.seqlen_k)};
  const double bytes = flash::apps::kv_bytes_read(p, decode.point.dtype);
  figure.value = timed_value(decode.result, decode.result.kv_tbps);
  figure.target_min = kDecodeTargetTbps;
  figure.detail = format("%.1f MB in %.4f ms", bytes / 1e6, timed_value(decode.result, decode.result.ms));
  figure.inputs.integer("batch", p.batch)
      .integer("cache", p.seqlen_k)
      .number("kv_bytes", bytes)
      .number("ms", timed_value(decode.result, decode.result.ms));
  return figure;
}

// The figures that compare points with each other, for every dtype that ran; a figure whose
// points were filtered out is left out, one whose points failed has value NaN (null in the JSON).
std::vector<DerivedFigure> derive(const std::vector<Measured>& measured) {
  std::vector<DataType> dtypes;
  for (const Measured& m : measured) {
    if (std::find(dtypes.begin(), dtypes.end(), m.point.dtype) == dtypes.end()) dtypes.push_back(m.point.dtype);
  }
  std::vector<DerivedFigure> figures;
  for (const DataType dtype : dtypes) {
    const auto find = [&](const char* grid, const char* name) { return find_point(measured, grid, name, dtype); };
    if (const Measured *packed = find(kGridVit, kCaseVitFullPacked), *dense = find(kGridVit, kCaseVitFullDense);
        packed && dense) {
      figures.push_back(packed_vs_dense("vit_full_packed_vs_dense", "full layer packed (1 entry) / dense TFLOP/s",
                                        *packed, *dense, kNaN));
    }
    if (const Measured *packed = find(kGridVarlen, kCaseEqualPacked), *dense = find(kGridVarlen, kCaseEqualDense);
        packed && dense) {
      figures.push_back(packed_vs_dense("varlen_equal_packed_vs_dense",
                                        format("%d x %d packed / dense TFLOP/s", kVarlenEqualBatch, kVarlenEqualSeqlen),
                                        *packed, *dense, kVarlenEqualTarget));
    }
    if (const Measured* packed = find(kGridVarlen, kCaseMixedPacked)) {
      const std::vector<const Measured*> singles = find_points(measured, kGridVarlen, kCaseMixedDense, dtype);
      if (!singles.empty()) figures.push_back(mixed_ratio(*packed, singles));
    }
    for (const Measured* decode : find_points(measured, kGridDecode, kCaseDecode, dtype)) {
      if (flash::apps::kv_bytes_read(decode->point.problem, dtype) >= kDecodeTargetMinBytes) {
        figures.push_back(decode_bandwidth(*decode));
      }
    }
    const std::pair<const char*, const char*> paged_cases[] = {{kCasePagedDecode, kCaseContigDecode},
                                                               {kCasePagedPrefill, kCaseContigPrefill}};
    for (const auto& [paged_case, contiguous_case] : paged_cases) {
      const Measured* contiguous = find(kGridPaged, contiguous_case);
      if (contiguous == nullptr) continue;
      for (const Measured* paged : find_points(measured, kGridPaged, paged_case, dtype)) {
        figures.push_back(paged_ratio(*paged, *contiguous));
      }
    }
    if (const Measured* full = find(kGridWindow, kCaseFullCausal)) {
      const std::pair<const char*, const char*> windows[] = {
          {kCaseWindowCausal, "window_causal_vs_full_causal"}, {kCaseWindowBoth, "window_both_sides_vs_full_causal"}};
      for (const auto& [point_name, figure_name] : windows) {
        if (const Measured* window = find(kGridWindow, point_name)) {
          figures.push_back(window_ratio(figure_name, *window, *full));
        }
      }
    }
  }
  return figures;
}

std::string target_text(const DerivedFigure& f) {
  if (std::isnan(f.target_min)) return "";
  return format(">= %.2f: %s", f.target_min, std::isnan(f.value) ? "n/a" : f.value >= f.target_min ? "met" : "MISSED");
}

void print_derived(const std::vector<DerivedFigure>& figures) {
  if (figures.empty()) return;
  std::printf("\nderived figures (issue 5; ratios of the points above)\n");
  std::printf("%-8s %-5s %-50s %7s  %-16s %s\n", "grid", "dtype", "figure", "ratio", "target", "from");
  for (const DerivedFigure& f : figures) {
    std::printf("%-8s %-5s %-50s %7.3f  %-16s %s\n", f.grid, flash::host::dtype_name(f.dtype), f.description.c_str(),
                f.value, target_text(f).c_str(), f.detail.c_str());
  }
  std::fflush(stdout);
}

std::string derived_json(const DerivedFigure& f) {
  flash::apps::JsonObject json;
  json.string("name", f.name)
      .string("grid", f.grid)
      .string("dtype", flash::host::dtype_name(f.dtype))
      .string("description", f.description)
      .number("value", f.value)
      .number("target_min", f.target_min);   // null: issue 5 sets no bound on this ratio
  if (std::isnan(f.target_min) || std::isnan(f.value)) {
    json.null("met");
  } else {
    json.boolean("met", f.value >= f.target_min);
  }
  json.raw("inputs", f.inputs.str());
  return json.str();
}

std::string git_commit() {
  const char* env = std::getenv("FLASH_GIT_COMMIT");
  return env && *env ? env : FLASH_BUILD_GIT_COMMIT;
}

std::string cuda_runtime_version() {
  int version = 0;
  if (cudaRuntimeGetVersion(&version) != cudaSuccess) return "unknown";
  return std::to_string(version / kCudaVersionMajorScale) + "." +
         std::to_string(version % kCudaVersionMajorScale / kCudaVersionMinorScale);
}

std::string report_json(const BenchOptions& o, const flash::apps::DeviceInfo& device,
                        const std::vector<std::string>& points, const std::vector<DerivedFigure>& figures) {
  std::vector<std::string> grids;
  for (const std::string& grid : o.grids) grids.push_back(flash::apps::json_quote(grid));
  std::vector<std::string> derived;
  for (const DerivedFigure& figure : figures) derived.push_back(derived_json(figure));
  flash::apps::JsonObject json;
  json.string("git_commit", git_commit())
      .string("gpu", device.name)
      .string("date", flash::apps::utc_timestamp())
      .string("cuda_runtime", cuda_runtime_version())
      .integer("sm_count", device.sm_count)
      .integer("iters", o.iters)
      .integer("warmup", o.warmup)
      .integer("check_rows", o.check_rows)
      .integer("seed", static_cast<int64_t>(o.seed))
      .raw("grids", flash::apps::json_array(grids))
      .raw("points", flash::apps::json_array(points))
      .raw("derived", flash::apps::json_array(derived));
  return json.str();
}

}  // namespace

int main(int argc, char** argv) {
  BenchOptions options;
  bool help = false;
  const std::string parse_error = parse_options(argc, argv, &options, &help);
  if (help) {
    std::cout << usage_text();
    return 0;
  }
  if (!parse_error.empty()) {
    std::cerr << kProgram << ": " << parse_error << "\n";
    return flash::cli::kExitUsageError;
  }
  const std::vector<BenchPoint> points = make_points(options);
  if (points.empty()) {
    std::cerr << kProgram << ": no benchmark point matches the filters\n";
    return flash::cli::kExitUsageError;
  }

  flash::apps::DeviceInfo device;
  std::string reason;
  if (!flash::apps::find_sm90_device(&device, &reason)) {
    std::cerr << kProgram << ": " << reason << "\n";
    return kExitFailure;
  }
  std::printf("%s: %s, %d SMs, commit %s, %d timed launches after %d warm-up per point\n", kProgram,
              device.name.c_str(), device.sm_count, git_commit().c_str(), options.iters, options.warmup);
  print_header();

  std::vector<Measured> measured;
  std::vector<std::string> point_records;
  bool all_passed = true;
  int exit_code = 0;
  try {
    std::optional<DataType> pool_dtype;
    InputPool pool;
    for (const BenchPoint& point : points) {
      if (pool_dtype != point.dtype) {
        pool = InputPool();   // release the previous dtype's pool before building the next
        pool = make_pool(point.dtype, points, options.check_rows > 0, options.seed);
        pool_dtype = point.dtype;
      }
      const PointResult result = run_point(point, pool, options, device);
      print_row(point, result);
      point_records.push_back(point_json(point, result));
      measured.push_back({point, result});
      all_passed = all_passed && result.passed();
    }
  } catch (const std::exception& e) {
    // A CUDA fault leaves the context unusable: stop, but keep what was measured.
    std::cerr << kProgram << ": " << e.what() << "\n";
    exit_code = kExitFailure;
  }
  const std::vector<DerivedFigure> figures = derive(measured);
  print_derived(figures);
  if (!options.json_path.empty()) {
    std::string error;
    if (!flash::apps::write_text_file(options.json_path, report_json(options, device, point_records, figures),
                                      &error)) {
      std::cerr << kProgram << ": " << error << "\n";
      exit_code = kExitFailure;
    }
  }
  if (!all_passed) exit_code = kExitFailure;
  std::printf("%s: %zu points, %s\n", kProgram, point_records.size(), exit_code == 0 ? "all passed" : "FAILURES above");
  return exit_code;
}
