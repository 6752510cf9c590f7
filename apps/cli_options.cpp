#include "cli_options.h"

#include <algorithm>
#include <cerrno>
#include <cctype>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "host/host_tensor.h"

namespace flash::cli {
namespace {

// Qwen2.5-VL's vision encoder merges 2 x 2 patches into a group of 4 consecutive tokens, and its
// windowed layers attend within windows of 4 x 4 groups.
constexpr int kVitMergeSize = 2;
constexpr int kVitWindowGroups = 4;

std::vector<int> qwen_vit_windows() { return qwen_vit_window_lengths(kQwenVitPatchRows, kQwenVitPatchCols); }

struct Preset {
  const char* name;
  const char* purpose;
  int batch;
  int seqlen;
  int heads;
  int heads_k;
  int head_dim;
  DataType dtype;
  bool causal;
  // Variable-length presets: the sequence lengths (the same for queries and keys); batch and
  // seqlen above are then unused. Null for a dense batch.
  std::vector<int> (*varlen_lens)() = nullptr;
  int seqlen_q = 0;   // > 0: the query length (decode), seqlen then being the cache's; 0: seqlen
};

constexpr Preset kPresets[] = {
    {kDefaultPreset, "the seed example", 1, 512, 16, 16, 128, DataType::FP16, false},
    // One prefill sequence of the first user's language model (GQA 8:1).
    {"qwen2.5-vl-3b-llm-prefill", "Qwen2.5-VL-3B language-model prefill", 1, 4096, 16, 2, 128, DataType::BF16, true},
    // One decode step of it: a new token against a 16k-token KV cache (--seqlen-k sets the cache).
    {"qwen2.5-vl-3b-llm-decode", "Qwen2.5-VL-3B language-model decode", 1, 16384, 16, 2, 128, DataType::BF16, false,
     nullptr, 1},
    // The vision encoder's windowed layers: one sequence per window.
    {"qwen2.5-vl-3b-vit-window", "Qwen2.5-VL-3B vision encoder, windowed layers (84 x 58 patches)", 0, 0, 16, 16, 80,
     DataType::BF16, false, qwen_vit_windows},
    // Its full-attention layers: the whole image as one sequence.
    {"qwen2.5-vl-3b-vit-full", "Qwen2.5-VL-3B vision encoder, full-attention layers (84 x 58 patches)", 1,
     kQwenVitPatchRows * kQwenVitPatchCols, 16, 16, 80, DataType::BF16, false},
};

const Preset* find_preset(const std::string& name) {
  for (const Preset& preset : kPresets) {
    if (name == preset.name) return &preset;
  }
  return nullptr;
}

void apply_preset(const Preset& preset, CliOptions* options) {
  options->preset = preset.name;
  options->batch = preset.batch;
  options->seqlen_q = preset.seqlen_q > 0 ? preset.seqlen_q : preset.seqlen;
  options->seqlen_k = preset.seqlen;
  options->heads = preset.heads;
  options->heads_k = preset.heads_k;
  options->head_dim = preset.head_dim;
  options->dtype = preset.dtype;
  options->causal = preset.causal;
  options->varlen_q_lens.clear();
  options->varlen_k_lens.clear();
  if (preset.varlen_lens) {
    options->varlen_q_lens = preset.varlen_lens();
    options->varlen_k_lens = options->varlen_q_lens;
  }
}

struct ParseState {
  CliOptions options;
  const Preset* preset = nullptr;
  bool heads_given = false;
  bool heads_k_given = false;
  // The text given to --varlen-q-lens/--varlen-k-lens (the last one); empty: not given.
  std::string varlen_q_text;
  std::string varlen_k_text;
};

// Applies one flag; returns an error message, or an empty string on success.
using ApplyFn = std::string (*)(const std::string& flag, const std::string& value, ParseState* state);

struct Flag {
  const char* name;
  const char* value_name;  // null for a switch that takes no value
  const char* help;
  ApplyFn apply;
};

std::string invalid(const std::string& flag, const std::string& value, const std::string& expected) {
  return "invalid value '" + value + "' for " + flag + ": expected " + expected;
}

std::string set_int(const std::string& flag, const std::string& value, int min_value, int* field) {
  int64_t parsed = 0;
  if (!parse_int_in_range(value, min_value, INT_MAX, &parsed)) {
    return invalid(flag, value, "an integer >= " + std::to_string(min_value));
  }
  *field = static_cast<int>(parsed);
  return {};
}

// set_int for a shape field, remembering that a flag set it.
std::string set_shape(const std::string& flag, const std::string& value, int min_value, int* field,
                      ShapeFlag* given) {
  std::string error = set_int(flag, value, min_value, field);
  if (error.empty()) *given = ShapeFlag{flag, *field};
  return error;
}

std::string set_path(const std::string& flag, const std::string& value, std::string* field) {
  if (value.empty()) return invalid(flag, value, "a file path");
  *field = value;
  return {};
}

// A finite float >= 0 (the whole string).
std::string set_nonnegative_float(const std::string& flag, const std::string& value, float* field) {
  const char* begin = value.c_str();
  char* end = nullptr;
  errno = 0;
  const double parsed = std::strtod(begin, &end);
  const auto narrowed = static_cast<float>(parsed);
  if (value.empty() || std::isspace(static_cast<unsigned char>(value[0])) || *end != '\0' || errno != 0 ||
      !std::isfinite(narrowed) || parsed < 0.0) {
    return invalid(flag, value, "a finite number >= 0");
  }
  *field = narrowed;
  return {};
}

// A comma-separated list of integers >= 0, at least one ("64,17,0").
std::string set_int_list(const std::string& flag, const std::string& value, std::vector<int>* field) {
  std::vector<int> items;
  size_t start = 0;
  while (true) {
    const size_t comma = value.find(',', start);
    const std::string item = value.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    int64_t parsed = 0;
    if (!parse_int_in_range(item, 0, INT_MAX, &parsed)) {
      return invalid(flag, value, "a comma-separated list of integers >= 0 (e.g. 64,17,0)");
    }
    items.push_back(static_cast<int>(parsed));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  *field = std::move(items);
  return {};
}

// "1 entry", "3 entries".
std::string count_text(size_t count, const char* one, const char* many) {
  return std::to_string(count) + " " + (count == 1 ? one : many);
}

std::string list_text(const std::vector<int>& values) {
  std::string text;
  for (size_t i = 0; i < values.size(); ++i) text += (i ? "," : "") + std::to_string(values[i]);
  return text;
}

// Sum of the lengths, or -1 when it exceeds INT_MAX (the library's total_q/total_k are int).
int64_t checked_total(const std::vector<int>& lengths) {
  const int64_t total = std::accumulate(lengths.begin(), lengths.end(), int64_t{0});
  return total > INT_MAX ? -1 : total;
}

constexpr int kMinExtent = 1;   // batch, sequence lengths, heads, head dim, timed launches
constexpr int kMinWarmup = 0;
constexpr int kNoWindow = -1;   // window sizes: -1 is no limit on that side

const Flag kFlags[] = {
    {"--preset", "NAME", "shape preset (default seed; see Presets); other flags override it",
     [](const std::string& flag, const std::string& value, ParseState* state) -> std::string {
       const Preset* preset = find_preset(value);
       if (!preset) {
         std::string known;
         for (const Preset& p : kPresets) known += std::string(known.empty() ? "" : ", ") + p.name;
         return invalid(flag, value, "one of " + known);
       }
       state->preset = preset;
       apply_preset(*preset, &state->options);
       return {};
     }},
    {"--batch", "N", "batch size",
     [](const std::string& flag, const std::string& value, ParseState* state) {
       return set_shape(flag, value, kMinExtent, &state->options.batch, &state->options.explicit_shape.batch);
     }},
    {"--seqlen", "N", "query and key sequence length",
     [](const std::string& flag, const std::string& value, ParseState* state) {
       ExplicitShape& given = state->options.explicit_shape;
       std::string error = set_shape(flag, value, kMinExtent, &state->options.seqlen_q, &given.seqlen_q);
       if (error.empty()) error = set_shape(flag, value, kMinExtent, &state->options.seqlen_k, &given.seqlen_k);
       return error;
     }},
    {"--seqlen-q", "N", "query sequence length",
     [](const std::string& flag, const std::string& value, ParseState* state) {
       return set_shape(flag, value, kMinExtent, &state->options.seqlen_q, &state->options.explicit_shape.seqlen_q);
     }},
    {"--seqlen-k", "N", "key/value sequence length",
     [](const std::string& flag, const std::string& value, ParseState* state) {
       return set_shape(flag, value, kMinExtent, &state->options.seqlen_k, &state->options.explicit_shape.seqlen_k);
     }},
    {"--heads", "N", "query heads (with an MHA preset and no --heads-k, also the KV heads)",
     [](const std::string& flag, const std::string& value, ParseState* state) {
       state->heads_given = true;
       return set_shape(flag, value, kMinExtent, &state->options.heads, &state->options.explicit_shape.heads);
     }},
    {"--heads-k", "N", "key/value heads (a divisor of --heads: MHA, GQA, MQA)",
     [](const std::string& flag, const std::string& value, ParseState* state) {
       state->heads_k_given = true;
       return set_shape(flag, value, kMinExtent, &state->options.heads_k, &state->options.explicit_shape.heads_k);
     }},
    {"--head-dim", "N", "head dimension",
     [](const std::string& flag, const std::string& value, ParseState* state) {
       return set_shape(flag, value, kMinExtent, &state->options.head_dim, &state->options.explicit_shape.head_dim);
     }},
    {"--dtype", "TYPE", "input type: fp16, bf16 or fp8 (e4m3)",
     [](const std::string& flag, const std::string& value, ParseState* state) -> std::string {
       if (!host::parse_dtype(value, &state->options.dtype)) return invalid(flag, value, "fp16, bf16 or fp8");
       return {};
     }},
    {"--causal", nullptr, "causal mask (bottom-right aligned when seqlen_q != seqlen_k)",
     [](const std::string&, const std::string&, ParseState* state) -> std::string {
       state->options.causal = true;
       return {};
     }},
    {"--no-causal", nullptr, "no mask",
     [](const std::string&, const std::string&, ParseState* state) -> std::string {
       state->options.causal = false;
       return {};
     }},
    {"--scale", "X", "softmax scale (default 0: 1/sqrt(head_dim))",
     [](const std::string& flag, const std::string& value, ParseState* state) {
       return set_nonnegative_float(flag, value, &state->options.scale);
     }},
    {"--window-left", "N", "sliding window: keys left of the diagonal a query sees (default -1: all)",
     [](const std::string& flag, const std::string& value, ParseState* state) {
       return set_int(flag, value, kNoWindow, &state->options.window_left);
     }},
    {"--window-right", "N", "keys right of the diagonal a query sees (default -1: all; with --causal -1 or 0)",
     [](const std::string& flag, const std::string& value, ParseState* state) {
       return set_int(flag, value, kNoWindow, &state->options.window_right);
     }},
    {"--softcap", "X", "softcap: scaled score s -> X tanh(s / X) (default 0: off)",
     [](const std::string& flag, const std::string& value, ParseState* state) {
       return set_nonnegative_float(flag, value, &state->options.softcap);
     }},
    {"--varlen-q-lens", "LENS", "query lengths of a packed variable-length batch, comma-separated (0 allowed); with "
                                "--varlen-k-lens, sets the batch and the longest lengths",
     [](const std::string& flag, const std::string& value, ParseState* state) {
       state->varlen_q_text = value;
       return set_int_list(flag, value, &state->options.varlen_q_lens);
     }},
    {"--varlen-k-lens", "LENS", "key/value lengths, one per sequence",
     [](const std::string& flag, const std::string& value, ParseState* state) {
       state->varlen_k_text = value;
       return set_int_list(flag, value, &state->options.varlen_k_lens);
     }},
    {"--seqused-k", "COUNTS", "keys used per batch entry, comma-separated (its first ones; clamped to its keys)",
     [](const std::string& flag, const std::string& value, ParseState* state) {
       return set_int_list(flag, value, &state->options.seqused_k);
     }},
    {"--page-size", "N", "paged KV cache: keys per page, a multiple of 16 (pages shuffled; default 0: contiguous)",
     [](const std::string& flag, const std::string& value, ParseState* state) {
       return set_int(flag, value, 0, &state->options.page_size);
     }},
    {"--num-splits", "N", "split-KV: 0 automatic (default), 1 never, N forced (up to 256); the workspace is sized "
                          "by flash_attention_workspace_size",
     [](const std::string& flag, const std::string& value, ParseState* state) {
       return set_int(flag, value, 0, &state->options.num_splits);
     }},
    {"--lse", nullptr, "also return the log-sum-exp per row and check it",
     [](const std::string&, const std::string&, ParseState* state) -> std::string {
       state->options.lse = true;
       return {};
     }},
    {"--check", nullptr, "compare against the CPU double reference (default)",
     [](const std::string&, const std::string&, ParseState* state) -> std::string {
       state->options.check = true;
       return {};
     }},
    {"--no-check", nullptr, "skip the reference comparison",
     [](const std::string&, const std::string&, ParseState* state) -> std::string {
       state->options.check = false;
       return {};
     }},
    {"--iters", "N", "timed launches (default 20)",
     [](const std::string& flag, const std::string& value, ParseState* state) {
       return set_int(flag, value, kMinExtent, &state->options.iters);
     }},
    {"--warmup", "N", "untimed launches before timing (default 5)",
     [](const std::string& flag, const std::string& value, ParseState* state) {
       return set_int(flag, value, kMinWarmup, &state->options.warmup);
     }},
    {"--json", "PATH", "write the results as one JSON object to PATH",
     [](const std::string& flag, const std::string& value, ParseState* state) -> std::string {
       if (value.empty()) return invalid(flag, value, "a file path");
       state->options.json_path = value;
       return {};
     }},
    {"--seed", "N", "seed of the random inputs and sampled check rows (default 1)",
     [](const std::string& flag, const std::string& value, ParseState* state) -> std::string {
       char* end = nullptr;
       errno = 0;
       const unsigned long long parsed = std::strtoull(value.c_str(), &end, 10);
       // strtoull would accept "-1" (wrapping it) and leading spaces; a seed is plain digits.
       if (value.empty() || !std::isdigit(static_cast<unsigned char>(value[0])) || *end != '\0' || errno != 0) {
         return invalid(flag, value, "an unsigned 64-bit integer");
       }
       state->options.seed = parsed;
       return {};
     }},
    {"--load-q", "PATH", "read q from a .npy file [batch, seqlen_q, heads, head_dim] (with --load-k, --load-v; "
                         "the files set the shape)",
     [](const std::string& flag, const std::string& value, ParseState* state) {
       return set_path(flag, value, &state->options.load_q);
     }},
    {"--load-k", "PATH", "read k from a .npy file [batch, seqlen_k, heads_k, head_dim]",
     [](const std::string& flag, const std::string& value, ParseState* state) {
       return set_path(flag, value, &state->options.load_k);
     }},
    {"--load-v", "PATH", "read v from a .npy file (the shape of k)",
     [](const std::string& flag, const std::string& value, ParseState* state) {
       return set_path(flag, value, &state->options.load_v);
     }},
    {"--save-out", "PATH", "write the output to a .npy file (fp16 '<f2'; bf16 as raw bits '<u2')",
     [](const std::string& flag, const std::string& value, ParseState* state) {
       return set_path(flag, value, &state->options.save_out);
     }},
    {"--save-lse", "PATH", "write the LSE to a .npy file ('<f4' [batch, heads, seqlen_q]); implies --lse",
     [](const std::string& flag, const std::string& value, ParseState* state) {
       return set_path(flag, value, &state->options.save_lse);
     }},
};

const Flag* find_flag(const std::string& name) {
  for (const Flag& flag : kFlags) {
    if (name == flag.name) return &flag;
  }
  return nullptr;
}

bool is_help(const std::string& arg) { return arg == "--help" || arg == "-h"; }

// Where the variable-length sequences come from, for error messages.
std::string varlen_source(const ParseState& state) {
  if (!state.varlen_q_text.empty() || !state.varlen_k_text.empty()) return "--varlen-q-lens/--varlen-k-lens";
  return std::string("--preset ") + state.preset->name;
}

// Variable-length sequences: both lists or neither, as many of each, at least one token each, no
// .npy inputs; then they set the batch and the longest lengths (explicit shape flags must agree).
std::string apply_varlen(ParseState* state) {
  CliOptions& o = state->options;
  if (o.varlen_q_lens.empty() != o.varlen_k_lens.empty()) {
    return std::string("--varlen-q-lens and --varlen-k-lens go together: missing ") +
           (o.varlen_q_lens.empty() ? "--varlen-q-lens" : "--varlen-k-lens");
  }
  if (!o.varlen()) return {};
  const std::string source = varlen_source(*state);
  if (o.varlen_q_lens.size() != o.varlen_k_lens.size()) {
    return "--varlen-q-lens '" + list_text(o.varlen_q_lens) + "' has " +
           count_text(o.varlen_q_lens.size(), "length", "lengths") + " but --varlen-k-lens '" +
           list_text(o.varlen_k_lens) + "' has " + std::to_string(o.varlen_k_lens.size()) +
           ": one of each per sequence";
  }
  const struct {
    const char* flag;
    const std::vector<int>& lengths;
  } lists[] = {{"--varlen-q-lens", o.varlen_q_lens}, {"--varlen-k-lens", o.varlen_k_lens}};
  for (const auto& list : lists) {
    const int64_t total = checked_total(list.lengths);
    if (total <= 0) {
      return invalid(list.flag, list_text(list.lengths),
                     total == 0 ? "lengths with at least one token in all (the packed tensors need a row)"
                                : "lengths that sum to at most " + std::to_string(INT_MAX));
    }
  }
  if (o.loads_inputs()) {
    return "--load-q/--load-k/--load-v cannot be combined with variable-length sequences (" + source +
           "): .npy inputs are dense [batch, seqlen, heads, head_dim]";
  }
  const int batch = static_cast<int>(o.varlen_q_lens.size());
  const int longest_q = *std::max_element(o.varlen_q_lens.begin(), o.varlen_q_lens.end());
  const int longest_k = *std::max_element(o.varlen_k_lens.begin(), o.varlen_k_lens.end());
  const struct {
    const ShapeFlag& flag;
    int value;
    const char* what;
  } fields[] = {{o.explicit_shape.batch, batch, "sequences"},
                {o.explicit_shape.seqlen_q, longest_q, "as the longest query length"},
                {o.explicit_shape.seqlen_k, longest_k, "as the longest key length"}};
  for (const auto& field : fields) {
    if (!field.flag.flag.empty() && field.flag.value != field.value) {
      return field.flag.flag + " " + std::to_string(field.flag.value) + " conflicts with the variable-length " +
             "sequences of " + source + " (" + std::to_string(field.value) + " " + field.what +
             "): they set the batch and the longest lengths";
    }
  }
  o.batch = batch;
  o.seqlen_q = longest_q;
  o.seqlen_k = longest_k;
  return {};
}

// --seqused-k (one entry per batch entry; checked by apply_loaded_shapes with .npy inputs, whose
// batch is not known yet) and the window against the causal mask.
std::string check_masks(const ParseState& state) {
  const CliOptions& o = state.options;
  if (!o.seqused_k.empty() && !o.loads_inputs() && static_cast<int>(o.seqused_k.size()) != o.batch) {
    return "--seqused-k '" + list_text(o.seqused_k) + "' has " + count_text(o.seqused_k.size(), "entry", "entries") +
           " but the batch has " + std::to_string(o.batch) + ": one per batch entry";
  }
  if (o.page_size > 0 && o.varlen()) {
    return "--page-size " + std::to_string(o.page_size) + " cannot be combined with variable-length sequences (" +
           varlen_source(state) + "): a paged cache takes a dense batch (use --seqused-k for per-entry lengths)";
  }
  if (o.causal && o.window_right > 0) {
    return "--window-right " + std::to_string(o.window_right) + " conflicts with the causal mask (--causal or the " +
           "preset's), which allows no key right of the diagonal: use -1 or 0, or add --no-causal";
  }
  return {};
}

ParseResult error_result(std::string message) {
  ParseResult result;
  result.action = ParseResult::Action::kError;
  result.error = std::move(message);
  return result;
}

}  // namespace

std::vector<int> qwen_vit_window_lengths(int patch_rows, int patch_cols) {
  if (patch_rows <= 0 || patch_cols <= 0 || patch_rows % kVitMergeSize != 0 || patch_cols % kVitMergeSize != 0) {
    throw std::invalid_argument("qwen_vit_window_lengths: a " + std::to_string(patch_rows) + " x " +
                                std::to_string(patch_cols) + " patch grid; both sides must be positive multiples of " +
                                std::to_string(kVitMergeSize));
  }
  const int group_rows = patch_rows / kVitMergeSize;
  const int group_cols = patch_cols / kVitMergeSize;
  constexpr int kTokensPerGroup = kVitMergeSize * kVitMergeSize;
  std::vector<int> lengths;
  for (int row = 0; row < group_rows; row += kVitWindowGroups) {
    for (int col = 0; col < group_cols; col += kVitWindowGroups) {
      const int rows = std::min(kVitWindowGroups, group_rows - row);
      const int cols = std::min(kVitWindowGroups, group_cols - col);
      lengths.push_back(rows * cols * kTokensPerGroup);
    }
  }
  return lengths;
}

bool parse_int_in_range(const std::string& text, int64_t min_value, int64_t max_value, int64_t* value) {
  // strtoll skips leading spaces and accepts '+'; an option value is plain digits with an optional '-'.
  if (text.empty() || !(std::isdigit(static_cast<unsigned char>(text[0])) || text[0] == '-')) return false;
  char* end = nullptr;
  errno = 0;
  const long long parsed = std::strtoll(text.c_str(), &end, 10);
  if (*end != '\0' || errno != 0 || parsed < min_value || parsed > max_value) return false;
  *value = parsed;
  return true;
}

ParseResult parse_cli(int argc, const char* const* argv) {
  struct Token {
    const Flag* flag;
    std::string name;
    std::string value;
  };
  std::vector<Token> tokens;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (is_help(arg)) {
      ParseResult result;
      result.action = ParseResult::Action::kHelp;
      return result;
    }
    if (arg.rfind("--", 0) != 0) return error_result("unexpected argument '" + arg + "' (options start with --)");
    const size_t equals = arg.find('=');
    const std::string name = arg.substr(0, equals);
    const Flag* flag = find_flag(name);
    if (!flag) return error_result("unknown option '" + name + "' (see --help)");
    std::string value;
    if (!flag->value_name) {
      if (equals != std::string::npos) return error_result(name + " takes no value (got '" + arg.substr(equals + 1) + "')");
    } else if (equals != std::string::npos) {
      value = arg.substr(equals + 1);
    } else if (i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0) {
      value = argv[++i];
    } else {
      return error_result("missing value for " + name + " (expected " + flag->value_name + ")");
    }
    tokens.push_back({flag, name, value});
  }

  ParseState state;
  state.preset = find_preset(kDefaultPreset);
  apply_preset(*state.preset, &state.options);
  // Presets first so that every explicit flag overrides them, wherever it stands.
  for (const bool preset_pass : {true, false}) {
    for (const Token& token : tokens) {
      if ((std::string(token.flag->name) == "--preset") != preset_pass) continue;
      std::string error = token.flag->apply(token.name, token.value, &state);
      if (!error.empty()) return error_result(error);
    }
  }
  if (state.heads_given && !state.heads_k_given && state.preset->heads == state.preset->heads_k) {
    state.options.heads_k = state.options.heads;
  }
  const CliOptions& o = state.options;
  const int loads = !o.load_q.empty() + !o.load_k.empty() + !o.load_v.empty();
  if (loads != 0 && loads != 3) {
    std::string missing;
    if (o.load_q.empty()) missing = "--load-q";
    if (o.load_k.empty()) missing += std::string(missing.empty() ? "" : " and ") + "--load-k";
    if (o.load_v.empty()) missing += std::string(missing.empty() ? "" : " and ") + "--load-v";
    return error_result("--load-q, --load-k and --load-v go together: missing " + missing);
  }
  if (!o.save_lse.empty()) state.options.lse = true;
  std::string error = apply_varlen(&state);
  if (error.empty()) error = check_masks(state);
  if (!error.empty()) return error_result(error);

  ParseResult result;
  result.action = ParseResult::Action::kRun;
  result.options = state.options;
  return result;
}

std::string apply_loaded_shapes(const std::vector<int64_t>& q, const std::vector<int64_t>& k,
                                const std::vector<int64_t>& v, CliOptions* options) {
  const auto shape_text = [](const std::vector<int64_t>& shape) {
    std::string text = "(";
    for (size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
    return text + (shape.size() == 1 ? ",)" : ")");
  };
  const struct {
    const char* flag;
    const std::string& path;
    const std::vector<int64_t>& shape;
  } inputs[] = {{"--load-q", options->load_q, q}, {"--load-k", options->load_k, k}, {"--load-v", options->load_v, v}};
  for (const auto& input : inputs) {
    const std::string where = std::string(input.flag) + " " + input.path + ": ";
    if (input.shape.size() != 4) {
      return where + "expected 4 dimensions [batch, seqlen, heads, head_dim], got shape " + shape_text(input.shape);
    }
    for (const int64_t dim : input.shape) {
      if (dim < kMinExtent || dim > INT_MAX) {
        return where + "every dimension must be in [1, " + std::to_string(INT_MAX) + "], got shape " +
               shape_text(input.shape);
      }
    }
  }
  const std::string qk = "--load-q " + options->load_q + " " + shape_text(q) + " and --load-k " + options->load_k +
                         " " + shape_text(k);
  if (q[0] != k[0]) return qk + " differ in batch (dimension 0)";
  if (q[3] != k[3]) return qk + " differ in head_dim (dimension 3)";
  if (q[2] % k[2] != 0) return qk + ": q's heads (dimension 2) must be a multiple of k's";
  if (k != v) {
    return "--load-k " + options->load_k + " " + shape_text(k) + " and --load-v " + options->load_v + " " +
           shape_text(v) + " must have the same shape";
  }

  const ExplicitShape& given = options->explicit_shape;
  const struct {
    const ShapeFlag& flag;
    int64_t loaded;
    const char* what;
  } fields[] = {{given.batch, q[0], "batch"},      {given.seqlen_q, q[1], "seqlen_q"},
                {given.seqlen_k, k[1], "seqlen_k"}, {given.heads, q[2], "heads"},
                {given.heads_k, k[2], "heads_k"},   {given.head_dim, q[3], "head_dim"}};
  for (const auto& field : fields) {
    if (!field.flag.flag.empty() && field.flag.value != field.loaded) {
      return field.flag.flag + " " + std::to_string(field.flag.value) + " conflicts with the loaded inputs (" +
             field.what + " " + std::to_string(field.loaded) + " in " + qk + "); the files set the shape";
    }
  }
  if (!options->seqused_k.empty() && static_cast<int64_t>(options->seqused_k.size()) != q[0]) {
    return "--seqused-k '" + list_text(options->seqused_k) + "' has " +
           count_text(options->seqused_k.size(), "entry", "entries") + " but the loaded inputs have batch " +
           std::to_string(q[0]) + " (" + qk + "): one per batch entry";
  }
  options->batch = static_cast<int>(q[0]);
  options->seqlen_q = static_cast<int>(q[1]);
  options->seqlen_k = static_cast<int>(k[1]);
  options->heads = static_cast<int>(q[2]);
  options->heads_k = static_cast<int>(k[2]);
  options->head_dim = static_cast<int>(q[3]);
  return {};
}

std::string usage_text(const std::string& program) {
  constexpr int kFlagColumn = 22;
  std::ostringstream out;
  out << "Usage: " << program << " [options]\n\n"
      << "Runs FlashAttention forward once on the current SM90 GPU with random inputs (or q, k, v read\n"
      << "from .npy files), checks that every output was written, compares it with a CPU\n"
      << "double-precision reference and times it.\n\n"
      << "Options:\n";
  for (const Flag& flag : kFlags) {
    std::string left = std::string("  ") + flag.name + (flag.value_name ? std::string(" ") + flag.value_name : "");
    left.resize(std::max<size_t>(left.size() + 1, kFlagColumn), ' ');
    out << left << flag.help << "\n";
  }
  std::string help_left = "  --help, -h";
  help_left.resize(kFlagColumn, ' ');
  out << help_left << "print this text\n\nPresets (shape, dtype and mask):\n";
  for (const Preset& p : kPresets) {
    std::string left = std::string("  ") + p.name;
    left.resize(std::max<size_t>(left.size() + 1, kFlagColumn), ' ');
    out << left << p.purpose << ": ";
    if (p.varlen_lens) {
      const std::vector<int> lengths = p.varlen_lens();
      out << lengths.size() << " variable-length sequences (up to "
          << *std::max_element(lengths.begin(), lengths.end()) << " tokens, " << checked_total(lengths)
          << " in all)";
    } else if (p.seqlen_q > 0) {
      out << "batch " << p.batch << ", seqlen-q " << p.seqlen_q << ", seqlen-k " << p.seqlen;
    } else {
      out << "batch " << p.batch << ", seqlen " << p.seqlen;
    }
    out << ", heads " << p.heads << ", heads-k " << p.heads_k << ", head-dim " << p.head_dim << ", "
        << host::dtype_name(p.dtype) << ", " << (p.causal ? "causal" : "non-causal") << "\n";
  }
  out << "\n.npy files: '<f2' (float16) and '<f4' (float32) are rounded to the run's dtype (nearest even) when\n"
      << "they are not its own type; bf16 is stored as '<u2' holding the raw bf16 bits (read it back with\n"
      << "np.load(p).view(ml_dtypes.bfloat16)), fp8 as '|u1' raw e4m3 bytes. The output is saved in the run's\n"
      << "output dtype, [batch, seqlen_q, heads, head_dim] ([total_q, heads, head_dim] with variable lengths;\n"
      << "the LSE [heads, total_q]). --load-q/k/v cannot be combined with variable lengths.\n";
  out << "\nExit status: 0 success; 1 no SM90 device, unreadable input file, library error or failed check; "
      << kExitUsageError << " bad command line (loaded shapes that disagree included).\n";
  return out.str();
}

}  // namespace flash::cli
