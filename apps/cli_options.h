// Command-line options of flash_attention_exec. Parsing is a pure function (no CUDA, no I/O) so the
// tests can check every flag, preset and error message.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "flash_api.h"

namespace flash::cli {

// Exit status for a command line that cannot be parsed (1 is kept for run-time failures).
constexpr int kExitUsageError = 2;

constexpr const char* kDefaultPreset = "seed";
constexpr int kDefaultIters = 20;
constexpr int kDefaultWarmup = 5;
constexpr uint64_t kDefaultSeed = 1;

// A shape field set by an explicit flag (not by a preset): loaded inputs must agree with it.
struct ShapeFlag {
  std::string flag;   // the flag that set it last ("--seqlen" sets both sequence lengths); empty: not given
  int value = 0;
};

struct ExplicitShape {
  ShapeFlag batch, seqlen_q, seqlen_k, heads, heads_k, head_dim;
};

// Shape, dtype and causal come from the preset unless a flag sets them; with --load-q/k/v the
// shape comes from the files instead (apply_loaded_shapes). With variable-length sequences
// (--varlen-q-lens/--varlen-k-lens or a varlen preset) batch is the number of sequences and
// seqlen_q/seqlen_k the longest lengths.
struct CliOptions {
  std::string preset;
  int batch = 0;
  int seqlen_q = 0;
  int seqlen_k = 0;
  int heads = 0;
  int heads_k = 0;
  int head_dim = 0;
  DataType dtype = DataType::FP16;
  bool causal = false;
  float scale = 0.0f;      // 0 means 1/sqrt(head_dim), as in the library
  int window_left = -1;    // sliding window (FlashAttentionParams::window_size_left/right); -1 unbounded
  int window_right = -1;
  float softcap = 0.0f;    // 0: off
  std::vector<int> varlen_q_lens;   // per-sequence lengths (both or neither); empty: dense batch
  std::vector<int> varlen_k_lens;
  std::vector<int> seqused_k;       // keys used per batch entry; empty: all
  int page_size = 0;       // > 0: the KV cache is paged, this many keys per page (shuffled pages)
  int num_splits = 0;      // FlashAttentionParams::num_splits (0: automatic, with a workspace)
  bool lse = false;        // also return the LSE and check it
  bool check = true;       // compare against the CPU double reference
  int iters = kDefaultIters;     // timed launches
  int warmup = kDefaultWarmup;   // untimed launches before them
  std::string json_path;         // empty: no JSON report
  uint64_t seed = kDefaultSeed;  // of the random inputs and of the sampled check rows
  std::string load_q;            // .npy inputs [batch, seqlen, heads, head_dim]: all three or none
  std::string load_k;
  std::string load_v;
  std::string save_out;          // empty: the output is not saved
  std::string save_lse;          // empty: the LSE is not saved; otherwise lse is true
  ExplicitShape explicit_shape;  // shape flags given on the command line

  bool loads_inputs() const { return !load_q.empty(); }
  bool varlen() const { return !varlen_q_lens.empty(); }
};

struct ParseResult {
  enum class Action { kRun, kHelp, kError };
  Action action = Action::kError;
  CliOptions options;      // filled when action is kRun
  std::string error;       // one line naming the flag and the bad value when action is kError
};

// Parses argv[1..argc). The default preset ("seed") is applied first, then --preset (the last one
// given) wherever it appears, then every other flag in order, so explicit flags override the preset.
ParseResult parse_cli(int argc, const char* const* argv);

// With --load-q/k/v: checks the shapes read from the three files ([batch, seqlen, heads,
// head_dim] each; equal batch and head_dim, k and v the same shape, q's heads a multiple of k's)
// and against every explicit shape flag and --seqused-k's entry count, then makes them the problem
// shape. Returns an error naming the file(s) or the flag, or an empty string. Pure: the caller
// reads the files.
std::string apply_loaded_shapes(const std::vector<int64_t>& q, const std::vector<int64_t>& k,
                                const std::vector<int64_t>& v, CliOptions* options);

// The --help text: every flag with its default, and the presets.
std::string usage_text(const std::string& program);

// The window lengths (tokens) of Qwen2.5-VL's vision encoder on a patch grid of patch_rows x
// patch_cols (both even): patches merge in 2 x 2 groups of 4 consecutive tokens, and windows of
// 4 x 4 groups (64 tokens), smaller at the grid's right and bottom edges, are listed row by row.
// 84 x 58 gives 11 x 8 = 88 windows, 4872 tokens. Throws std::invalid_argument for odd or
// non-positive sizes.
std::vector<int> qwen_vit_window_lengths(int patch_rows, int patch_cols);

// The vision presets' image (and the benchmark's): an 84 x 58 patch grid, one token per patch.
constexpr int kQwenVitPatchRows = 84;
constexpr int kQwenVitPatchCols = 58;

// Strict integer parsing shared with the benchmark's options: the whole string must be a base-10
// integer in [min_value, max_value].
bool parse_int_in_range(const std::string& text, int64_t min_value, int64_t max_value, int64_t* value);

}  // namespace flash::cli
