// flash_attention_exec's command-line parsing: defaults, every flag, presets and their overrides,
// errors that name the flag and the bad value, and the .npy flags (--load-q/k/v, --save-out,
// --save-lse) with their shape checks. Pure parsing: no GPU needed.
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cli_options.h"

namespace {

using flash::DataType;
using flash::cli::CliOptions;
using flash::cli::ParseResult;

ParseResult parse(std::vector<std::string> args) {
  args.insert(args.begin(), "flash_attention_exec");
  std::vector<const char*> argv;
  for (const std::string& arg : args) argv.push_back(arg.c_str());
  return flash::cli::parse_cli(static_cast<int>(argv.size()), argv.data());
}

CliOptions parse_ok(const std::vector<std::string>& args) {
  const ParseResult result = parse(args);
  EXPECT_EQ(result.action, ParseResult::Action::kRun) << result.error;
  return result.options;
}

// The error text for `args`, which must fail to parse.
std::string parse_error(const std::vector<std::string>& args) {
  const ParseResult result = parse(args);
  EXPECT_EQ(result.action, ParseResult::Action::kError);
  return result.error;
}

void expect_error_names(const std::vector<std::string>& args, const std::string& flag, const std::string& value) {
  const std::string error = parse_error(args);
  EXPECT_NE(error.find(flag), std::string::npos) << error;
  EXPECT_NE(error.find("'" + value + "'"), std::string::npos) << error;
}

TEST(CliDefaults, NoArgumentsRunTheSeedPreset) {
  const CliOptions o = parse_ok({});
  EXPECT_EQ(o.preset, "seed");
  EXPECT_EQ(o.batch, 1);
  EXPECT_EQ(o.seqlen_q, 512);
  EXPECT_EQ(o.seqlen_k, 512);
  EXPECT_EQ(o.heads, 16);
  EXPECT_EQ(o.heads_k, 16);
  EXPECT_EQ(o.head_dim, 128);
  EXPECT_EQ(o.dtype, DataType::FP16);
  EXPECT_FALSE(o.causal);
  EXPECT_EQ(o.scale, 0.0f);
  EXPECT_FALSE(o.lse);
  EXPECT_TRUE(o.check);
  EXPECT_EQ(o.iters, 20);
  EXPECT_EQ(o.warmup, 5);
  EXPECT_TRUE(o.json_path.empty());
  EXPECT_EQ(o.seed, flash::cli::kDefaultSeed);
}

TEST(CliFlags, ShapeFlags) {
  const CliOptions o = parse_ok({"--batch", "3", "--seqlen-q", "113", "--seqlen-k", "239", "--heads", "8",
                                 "--heads-k", "2", "--head-dim", "64"});
  EXPECT_EQ(o.batch, 3);
  EXPECT_EQ(o.seqlen_q, 113);
  EXPECT_EQ(o.seqlen_k, 239);
  EXPECT_EQ(o.heads, 8);
  EXPECT_EQ(o.heads_k, 2);
  EXPECT_EQ(o.head_dim, 64);
}

TEST(CliFlags, SeqlenSetsBothAndLaterFlagsWin) {
  CliOptions o = parse_ok({"--seqlen", "1023"});
  EXPECT_EQ(o.seqlen_q, 1023);
  EXPECT_EQ(o.seqlen_k, 1023);
  o = parse_ok({"--seqlen", "100", "--seqlen-k", "200"});
  EXPECT_EQ(o.seqlen_q, 100);
  EXPECT_EQ(o.seqlen_k, 200);
  o = parse_ok({"--seqlen-k", "200", "--seqlen", "100"});
  EXPECT_EQ(o.seqlen_k, 100);
}

TEST(CliFlags, Dtypes) {
  EXPECT_EQ(parse_ok({"--dtype", "fp16"}).dtype, DataType::FP16);
  EXPECT_EQ(parse_ok({"--dtype", "bf16"}).dtype, DataType::BF16);
  EXPECT_EQ(parse_ok({"--dtype", "fp8"}).dtype, DataType::FP8_E4M3);
  EXPECT_EQ(parse_ok({"--dtype", "e4m3"}).dtype, DataType::FP8_E4M3);
}

TEST(CliFlags, Switches) {
  CliOptions o = parse_ok({"--causal", "--lse", "--no-check"});
  EXPECT_TRUE(o.causal);
  EXPECT_TRUE(o.lse);
  EXPECT_FALSE(o.check);
  o = parse_ok({"--causal", "--no-causal", "--no-check", "--check"});
  EXPECT_FALSE(o.causal);
  EXPECT_TRUE(o.check);
}

TEST(CliFlags, ScaleTimingSeedAndJson) {
  const CliOptions o = parse_ok({"--scale", "0.125", "--iters", "7", "--warmup", "0", "--seed", "18446744073709551615",
                                 "--json", "out/run.json"});
  EXPECT_EQ(o.scale, 0.125f);
  EXPECT_EQ(o.iters, 7);
  EXPECT_EQ(o.warmup, 0);
  EXPECT_EQ(o.seed, 18446744073709551615ull);
  EXPECT_EQ(o.json_path, "out/run.json");
}

TEST(CliFlags, EqualsFormTakesTheValue) {
  const CliOptions o = parse_ok({"--batch=4", "--dtype=bf16", "--json=a=b.json"});
  EXPECT_EQ(o.batch, 4);
  EXPECT_EQ(o.dtype, DataType::BF16);
  EXPECT_EQ(o.json_path, "a=b.json");
}

TEST(CliFlags, HeadsAloneKeepsAnMhaPresetMha) {
  CliOptions o = parse_ok({"--heads", "8"});
  EXPECT_EQ(o.heads, 8);
  EXPECT_EQ(o.heads_k, 8);
  // A GQA preset keeps its KV heads.
  o = parse_ok({"--preset", "qwen2.5-vl-3b-llm-prefill", "--heads", "32"});
  EXPECT_EQ(o.heads, 32);
  EXPECT_EQ(o.heads_k, 2);
  o = parse_ok({"--heads-k", "1", "--heads", "8"});
  EXPECT_EQ(o.heads_k, 1);
}

TEST(CliPresets, QwenLanguageModel) {
  const CliOptions o = parse_ok({"--preset", "qwen2.5-vl-3b-llm-prefill"});
  EXPECT_EQ(o.preset, "qwen2.5-vl-3b-llm-prefill");
  EXPECT_EQ(o.heads, 16);
  EXPECT_EQ(o.heads_k, 2);
  EXPECT_EQ(o.head_dim, 128);
  EXPECT_EQ(o.dtype, DataType::BF16);
  EXPECT_EQ(o.seqlen_q, 4096);
  EXPECT_EQ(o.seqlen_k, 4096);
  EXPECT_TRUE(o.causal);
  EXPECT_TRUE(o.check);
}

TEST(CliPresets, QwenDecode) {
  const CliOptions o = parse_ok({"--preset", "qwen2.5-vl-3b-llm-decode"});
  EXPECT_EQ(o.preset, "qwen2.5-vl-3b-llm-decode");
  EXPECT_EQ(o.batch, 1);
  EXPECT_EQ(o.seqlen_q, 1);
  EXPECT_EQ(o.seqlen_k, 16384);
  EXPECT_EQ(o.heads, 16);
  EXPECT_EQ(o.heads_k, 2);
  EXPECT_EQ(o.head_dim, 128);
  EXPECT_EQ(o.dtype, DataType::BF16);
  EXPECT_FALSE(o.causal);
  EXPECT_EQ(o.num_splits, 0);
  EXPECT_EQ(o.page_size, 0);
  // The cache length and the batch are the flags' to set.
  const CliOptions longer = parse_ok({"--preset", "qwen2.5-vl-3b-llm-decode", "--seqlen-k", "131072", "--batch", "8"});
  EXPECT_EQ(longer.seqlen_q, 1);
  EXPECT_EQ(longer.seqlen_k, 131072);
  EXPECT_EQ(longer.batch, 8);
}

TEST(CliServingFlags, PageSizeAndNumSplits) {
  const CliOptions o = parse_ok({"--preset", "qwen2.5-vl-3b-llm-decode", "--page-size", "64", "--num-splits=7"});
  EXPECT_EQ(o.page_size, 64);
  EXPECT_EQ(o.num_splits, 7);
  expect_error_names({"--page-size", "-16"}, "--page-size", "-16");
  expect_error_names({"--num-splits", "x"}, "--num-splits", "x");
  // The library checks the values themselves (a multiple of 16, at most 256 splits).
  EXPECT_EQ(parse_ok({"--page-size", "24", "--num-splits", "300"}).page_size, 24);
}

TEST(CliServingFlags, PagedCacheTakesADenseBatch) {
  const std::string error = parse_error({"--varlen-q-lens", "3,4", "--varlen-k-lens", "5,6", "--page-size", "16"});
  EXPECT_NE(error.find("--page-size 16"), std::string::npos) << error;
  EXPECT_NE(error.find("--varlen-q-lens/--varlen-k-lens"), std::string::npos) << error;
  EXPECT_NE(error.find("--seqused-k"), std::string::npos) << error;
}

TEST(CliPresets, ExplicitFlagsOverrideThePreset) {
  CliOptions o =
      parse_ok({"--preset", "qwen2.5-vl-3b-llm-prefill", "--no-causal", "--dtype", "fp16", "--seqlen", "1024"});
  EXPECT_FALSE(o.causal);
  EXPECT_EQ(o.dtype, DataType::FP16);
  EXPECT_EQ(o.seqlen_q, 1024);
  EXPECT_EQ(o.heads_k, 2);
  // Also when the flag comes first: a preset never silently undoes an explicit flag.
  o = parse_ok({"--batch", "2", "--preset", "qwen2.5-vl-3b-llm-prefill"});
  EXPECT_EQ(o.batch, 2);
  EXPECT_EQ(o.seqlen_q, 4096);
  // The last preset wins, and "seed" can be named explicitly.
  o = parse_ok({"--preset", "qwen2.5-vl-3b-llm-prefill", "--preset=seed"});
  EXPECT_EQ(o.preset, "seed");
  EXPECT_EQ(o.heads_k, 16);
}

TEST(CliPresets, UnknownPresetIsAnError) {
  const std::string error = parse_error({"--preset", "llama"});
  EXPECT_NE(error.find("--preset"), std::string::npos) << error;
  EXPECT_NE(error.find("'llama'"), std::string::npos) << error;
  EXPECT_NE(error.find("qwen2.5-vl-3b-llm-prefill"), std::string::npos) << error;
}

TEST(CliErrors, BadValuesNameTheFlagAndTheValue) {
  expect_error_names({"--batch", "0"}, "--batch", "0");
  expect_error_names({"--dtype", "fp32"}, "--dtype", "fp32");
  expect_error_names({"--seqlen", "abc"}, "--seqlen", "abc");
  expect_error_names({"--seqlen-q", "12x"}, "--seqlen-q", "12x");
  expect_error_names({"--heads", "-4"}, "--heads", "-4");
  expect_error_names({"--head-dim", "99999999999"}, "--head-dim", "99999999999");
  expect_error_names({"--iters", "0"}, "--iters", "0");
  expect_error_names({"--warmup", "-1"}, "--warmup", "-1");
  expect_error_names({"--scale", "-0.5"}, "--scale", "-0.5");
  expect_error_names({"--scale", "nan"}, "--scale", "nan");
  expect_error_names({"--scale", "1e300"}, "--scale", "1e300");
  expect_error_names({"--seed", "-1"}, "--seed", "-1");
  expect_error_names({"--batch", " 4"}, "--batch", " 4");
  expect_error_names({"--json="}, "--json", "");
}

TEST(CliErrors, UnknownFlag) {
  const std::string error = parse_error({"--bacth", "2"});
  EXPECT_NE(error.find("'--bacth'"), std::string::npos) << error;
}

TEST(CliErrors, MissingValue) {
  EXPECT_NE(parse_error({"--batch"}).find("missing value for --batch"), std::string::npos);
  // A following flag is not taken as the value.
  EXPECT_NE(parse_error({"--heads", "--causal"}).find("missing value for --heads"), std::string::npos);
}

TEST(CliErrors, SwitchGivenAValueAndStrayArgument) {
  const std::string error = parse_error({"--causal=yes"});
  EXPECT_NE(error.find("--causal"), std::string::npos) << error;
  EXPECT_NE(error.find("'yes'"), std::string::npos) << error;
  EXPECT_NE(parse_error({"512"}).find("'512'"), std::string::npos);
}

TEST(CliHelp, HelpListsEveryFlagAndPreset) {
  EXPECT_EQ(parse({"--help"}).action, ParseResult::Action::kHelp);
  EXPECT_EQ(parse({"--batch", "2", "-h"}).action, ParseResult::Action::kHelp);
  const std::string usage = flash::cli::usage_text("flash_attention_exec");
  for (const char* flag : {"--batch", "--seqlen", "--seqlen-q", "--seqlen-k", "--heads", "--heads-k", "--head-dim",
                           "--dtype", "--causal", "--scale", "--lse", "--check", "--no-check", "--iters", "--warmup",
                           "--json", "--seed", "--preset", "--help", "seed", "qwen2.5-vl-3b-llm-prefill",
                           "qwen2.5-vl-3b-llm-decode", "--page-size", "--num-splits"}) {
    EXPECT_NE(usage.find(flag), std::string::npos) << flag;
  }
  EXPECT_EQ(flash::cli::kExitUsageError, 2);
}

// --- CLI flags ------------------------------------------------------------------------------------

TEST(CliNpyFlags, LoadAllThreeAndSave) {
  const ParseResult r = parse({"--load-q", "q.npy", "--load-k=k.npy", "--load-v", "v.npy", "--save-out", "o.npy"});
  ASSERT_EQ(r.action, ParseResult::Action::kRun) << r.error;
  EXPECT_TRUE(r.options.loads_inputs());
  EXPECT_EQ(r.options.load_q, "q.npy");
  EXPECT_EQ(r.options.load_k, "k.npy");
  EXPECT_EQ(r.options.load_v, "v.npy");
  EXPECT_EQ(r.options.save_out, "o.npy");
  EXPECT_FALSE(r.options.lse);
  EXPECT_FALSE(parse({}).options.loads_inputs());
}

TEST(CliNpyFlags, MissingOneOfQkvIsAnError) {
  ParseResult r = parse({"--load-q", "q.npy", "--load-v", "v.npy"});
  EXPECT_EQ(r.action, ParseResult::Action::kError);
  EXPECT_NE(r.error.find("missing --load-k"), std::string::npos) << r.error;
  r = parse({"--load-k", "k.npy"});
  EXPECT_EQ(r.action, ParseResult::Action::kError);
  EXPECT_NE(r.error.find("missing --load-q and --load-v"), std::string::npos) << r.error;
  r = parse({"--load-q="});
  EXPECT_EQ(r.action, ParseResult::Action::kError);
  EXPECT_NE(r.error.find("--load-q"), std::string::npos) << r.error;
}

TEST(CliNpyFlags, SaveLseImpliesLse) {
  const ParseResult r = parse({"--save-lse", "lse.npy"});
  ASSERT_EQ(r.action, ParseResult::Action::kRun) << r.error;
  EXPECT_TRUE(r.options.lse);
  EXPECT_EQ(r.options.save_lse, "lse.npy");
  EXPECT_EQ(parse({"--save-out"}).action, ParseResult::Action::kError);
}

TEST(CliNpyFlags, HelpListsTheFlags) {
  const std::string usage = flash::cli::usage_text("flash_attention_exec");
  for (const char* text : {"--load-q", "--load-k", "--load-v", "--save-out", "--save-lse", "'<u2'"}) {
    EXPECT_NE(usage.find(text), std::string::npos) << text;
  }
}

CliOptions loading(const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"--load-q", "q.npy", "--load-k", "k.npy", "--load-v", "v.npy"};
  args.insert(args.end(), extra.begin(), extra.end());
  const ParseResult r = parse(args);
  EXPECT_EQ(r.action, ParseResult::Action::kRun) << r.error;
  return r.options;
}

TEST(CliNpyShapes, FilesSetTheShapeOverThePreset) {
  CliOptions o = loading({"--preset", "qwen2.5-vl-3b-llm-prefill"});
  EXPECT_EQ(flash::cli::apply_loaded_shapes({2, 100, 8, 64}, {2, 300, 2, 64}, {2, 300, 2, 64}, &o), "");
  EXPECT_EQ(o.batch, 2);
  EXPECT_EQ(o.seqlen_q, 100);
  EXPECT_EQ(o.seqlen_k, 300);
  EXPECT_EQ(o.heads, 8);
  EXPECT_EQ(o.heads_k, 2);
  EXPECT_EQ(o.head_dim, 64);
  EXPECT_EQ(o.dtype, DataType::BF16);   // dtype and mask still come from the preset
  EXPECT_TRUE(o.causal);
  // Explicit shape flags that agree with the files are fine.
  o = loading({"--heads", "8", "--seqlen-k", "300", "--batch", "2"});
  EXPECT_EQ(flash::cli::apply_loaded_shapes({2, 100, 8, 64}, {2, 300, 2, 64}, {2, 300, 2, 64}, &o), "");
}

TEST(CliNpyShapes, ConflictingShapeFlagIsAnError) {
  CliOptions o = loading({"--heads", "16"});
  std::string error = flash::cli::apply_loaded_shapes({1, 64, 8, 64}, {1, 64, 8, 64}, {1, 64, 8, 64}, &o);
  EXPECT_NE(error.find("--heads 16 conflicts"), std::string::npos) << error;
  EXPECT_NE(error.find("heads 8"), std::string::npos) << error;
  o = loading({"--seqlen", "64"});   // sets both sequence lengths; k has 128
  error = flash::cli::apply_loaded_shapes({1, 64, 8, 64}, {1, 128, 8, 64}, {1, 128, 8, 64}, &o);
  EXPECT_NE(error.find("--seqlen 64 conflicts"), std::string::npos) << error;
  EXPECT_NE(error.find("seqlen_k 128"), std::string::npos) << error;
}

TEST(CliNpyShapes, InconsistentFilesAreErrorsNamingThem) {
  CliOptions o = loading({});
  const auto error_for = [&o](std::vector<int64_t> q, std::vector<int64_t> k, std::vector<int64_t> v) {
    return flash::cli::apply_loaded_shapes(q, k, v, &o);
  };
  std::string error = error_for({1, 64, 8}, {1, 64, 8, 64}, {1, 64, 8, 64});
  EXPECT_NE(error.find("--load-q q.npy: expected 4 dimensions"), std::string::npos) << error;
  EXPECT_NE(error.find("(1, 64, 8)"), std::string::npos) << error;
  EXPECT_NE(error_for({2, 64, 8, 64}, {1, 64, 8, 64}, {1, 64, 8, 64}).find("differ in batch"), std::string::npos);
  EXPECT_NE(error_for({1, 64, 8, 64}, {1, 64, 8, 128}, {1, 64, 8, 128}).find("differ in head_dim"), std::string::npos);
  EXPECT_NE(error_for({1, 64, 8, 64}, {1, 64, 3, 64}, {1, 64, 3, 64}).find("multiple of k's"), std::string::npos);
  error = error_for({1, 64, 8, 64}, {1, 64, 8, 64}, {1, 32, 8, 64});
  EXPECT_NE(error.find("--load-v v.npy (1, 32, 8, 64)"), std::string::npos) << error;
  EXPECT_NE(error.find("same shape"), std::string::npos) << error;
  EXPECT_NE(error_for({1, 0, 8, 64}, {1, 64, 8, 64}, {1, 64, 8, 64}).find("every dimension"), std::string::npos);
  // Nothing changed by a failed check.
  EXPECT_EQ(o.heads, 16);
}

// --- Serving flags: window, softcap, variable lengths, seqused_k ----------------------------------

TEST(CliServing, DefaultsAreOff) {
  const CliOptions o = parse_ok({});
  EXPECT_EQ(o.window_left, -1);
  EXPECT_EQ(o.window_right, -1);
  EXPECT_EQ(o.softcap, 0.0f);
  EXPECT_FALSE(o.varlen());
  EXPECT_TRUE(o.varlen_q_lens.empty());
  EXPECT_TRUE(o.varlen_k_lens.empty());
  EXPECT_TRUE(o.seqused_k.empty());
}

TEST(CliServing, WindowAndSoftcap) {
  CliOptions o = parse_ok({"--window-left", "128", "--window-right=0", "--softcap", "30"});
  EXPECT_EQ(o.window_left, 128);
  EXPECT_EQ(o.window_right, 0);
  EXPECT_EQ(o.softcap, 30.0f);
  o = parse_ok({"--window-left", "0", "--window-right", "7", "--softcap", "0.5", "--window-left", "-1"});
  EXPECT_EQ(o.window_left, -1);
  EXPECT_EQ(o.window_right, 7);
  EXPECT_EQ(o.softcap, 0.5f);
  EXPECT_EQ(parse_ok({"--softcap", "0"}).softcap, 0.0f);
}

TEST(CliServing, WindowWithCausal) {
  // Causal is window-right 0: -1 and 0 go with it, anything larger does not.
  EXPECT_EQ(parse_ok({"--causal", "--window-left", "16", "--window-right", "0"}).window_right, 0);
  EXPECT_EQ(parse_ok({"--causal", "--window-left", "16"}).window_left, 16);
  std::string error = parse_error({"--causal", "--window-right", "3"});
  EXPECT_NE(error.find("--window-right 3"), std::string::npos) << error;
  EXPECT_NE(error.find("--no-causal"), std::string::npos) << error;
  // Also when the preset makes the mask causal, and not once --no-causal undoes it.
  error = parse_error({"--preset", "qwen2.5-vl-3b-llm-prefill", "--window-right", "1"});
  EXPECT_NE(error.find("--window-right 1"), std::string::npos) << error;
  EXPECT_EQ(parse_ok({"--preset", "qwen2.5-vl-3b-llm-prefill", "--window-right", "1", "--no-causal"}).window_right, 1);
}

TEST(CliServing, WindowAndSoftcapErrorsNameTheFlagAndTheValue) {
  expect_error_names({"--window-left", "-2"}, "--window-left", "-2");
  expect_error_names({"--window-left", "abc"}, "--window-left", "abc");
  expect_error_names({"--window-right", "1.5"}, "--window-right", "1.5");
  expect_error_names({"--window-right", "99999999999"}, "--window-right", "99999999999");
  expect_error_names({"--softcap", "-1"}, "--softcap", "-1");
  expect_error_names({"--softcap", "nan"}, "--softcap", "nan");
  expect_error_names({"--softcap", "inf"}, "--softcap", "inf");
  expect_error_names({"--softcap", "1e300"}, "--softcap", "1e300");
  expect_error_names({"--softcap", "3x"}, "--softcap", "3x");
  EXPECT_NE(parse_error({"--softcap"}).find("missing value for --softcap"), std::string::npos);
}

TEST(CliServing, VarlenListsSetTheBatchAndTheLongestLengths) {
  const CliOptions o = parse_ok({"--varlen-q-lens", "3,0,17", "--varlen-k-lens=5,2,0"});
  EXPECT_TRUE(o.varlen());
  EXPECT_EQ(o.varlen_q_lens, std::vector<int>({3, 0, 17}));
  EXPECT_EQ(o.varlen_k_lens, std::vector<int>({5, 2, 0}));
  EXPECT_EQ(o.batch, 3);
  EXPECT_EQ(o.seqlen_q, 17);
  EXPECT_EQ(o.seqlen_k, 5);
  // One sequence; explicit shape flags that agree are fine.
  const CliOptions one = parse_ok({"--varlen-q-lens", "100", "--varlen-k-lens", "300", "--batch", "1", "--seqlen-k",
                                   "300", "--causal", "--heads", "8", "--heads-k", "2"});
  EXPECT_EQ(one.batch, 1);
  EXPECT_EQ(one.seqlen_q, 100);
  EXPECT_EQ(one.seqlen_k, 300);
  EXPECT_TRUE(one.causal);
  EXPECT_EQ(one.heads_k, 2);
}

TEST(CliServing, VarlenErrors) {
  // Each list: integers >= 0, comma-separated, nothing else.
  for (const char* bad : {"", "3,,4", "3,-1", "a", "3, 4", "3,", ",3", "1.5", "99999999999"}) {
    expect_error_names({"--varlen-q-lens=" + std::string(bad), "--varlen-k-lens", "1"}, "--varlen-q-lens", bad);
    expect_error_names({"--varlen-q-lens", "1", "--varlen-k-lens=" + std::string(bad)}, "--varlen-k-lens", bad);
  }
  // Both or neither, one length of each per sequence.
  std::string error = parse_error({"--varlen-q-lens", "1,2"});
  EXPECT_NE(error.find("missing --varlen-k-lens"), std::string::npos) << error;
  error = parse_error({"--varlen-k-lens", "1,2"});
  EXPECT_NE(error.find("missing --varlen-q-lens"), std::string::npos) << error;
  error = parse_error({"--varlen-q-lens", "1,2,3", "--varlen-k-lens", "1,2"});
  EXPECT_NE(error.find("'1,2,3' has 3 lengths"), std::string::npos) << error;
  EXPECT_NE(error.find("'1,2' has 2"), std::string::npos) << error;
  // The packed tensors need at least one row, and their row count must fit an int.
  expect_error_names({"--varlen-q-lens", "0,0", "--varlen-k-lens", "1,1"}, "--varlen-q-lens", "0,0");
  expect_error_names({"--varlen-q-lens", "1,1", "--varlen-k-lens", "0,0"}, "--varlen-k-lens", "0,0");
  expect_error_names({"--varlen-q-lens", "2147483647,1", "--varlen-k-lens", "1,1"}, "--varlen-q-lens",
                     "2147483647,1");
  // Explicit shape flags that disagree with the lists.
  error = parse_error({"--varlen-q-lens", "4,5", "--varlen-k-lens", "4,5", "--batch", "3"});
  EXPECT_NE(error.find("--batch 3 conflicts"), std::string::npos) << error;
  EXPECT_NE(error.find("--varlen-q-lens"), std::string::npos) << error;
  error = parse_error({"--seqlen", "8", "--varlen-q-lens", "4,5", "--varlen-k-lens", "4,8"});
  EXPECT_NE(error.find("--seqlen 8 conflicts"), std::string::npos) << error;
  EXPECT_NE(error.find("5 as the longest query length"), std::string::npos) << error;
  error = parse_error({"--varlen-q-lens", "4,5", "--varlen-k-lens", "4,5", "--seqlen-k", "4"});
  EXPECT_NE(error.find("--seqlen-k 4 conflicts"), std::string::npos) << error;
}

TEST(CliServing, VarlenRejectsLoadedInputs) {
  std::string error = parse_error({"--varlen-q-lens", "4,5", "--varlen-k-lens", "4,5", "--load-q", "q.npy",
                                   "--load-k", "k.npy", "--load-v", "v.npy"});
  EXPECT_NE(error.find("--load-q"), std::string::npos) << error;
  EXPECT_NE(error.find("variable-length"), std::string::npos) << error;
  error = parse_error({"--preset", "qwen2.5-vl-3b-vit-window", "--load-q", "q.npy", "--load-k", "k.npy", "--load-v",
                       "v.npy"});
  EXPECT_NE(error.find("--preset qwen2.5-vl-3b-vit-window"), std::string::npos) << error;
}

TEST(CliServing, SequsedK) {
  CliOptions o = parse_ok({"--batch", "3", "--seqused-k", "5,0,512"});
  EXPECT_EQ(o.seqused_k, std::vector<int>({5, 0, 512}));
  o = parse_ok({"--varlen-q-lens", "1,2", "--varlen-k-lens", "7,9", "--seqused-k", "3,100"});
  EXPECT_EQ(o.seqused_k, std::vector<int>({3, 100}));
  expect_error_names({"--seqused-k", "1,-2"}, "--seqused-k", "1,-2");
  expect_error_names({"--seqused-k", "x"}, "--seqused-k", "x");
  // One entry per batch entry.
  std::string error = parse_error({"--seqused-k", "1,2"});   // the seed preset has batch 1
  EXPECT_NE(error.find("--seqused-k '1,2' has 2 entries"), std::string::npos) << error;
  EXPECT_NE(error.find("batch has 1"), std::string::npos) << error;
  error = parse_error({"--varlen-q-lens", "1,2,3", "--varlen-k-lens", "7,9,1", "--seqused-k", "3,100"});
  EXPECT_NE(error.find("batch has 3"), std::string::npos) << error;
  // With .npy inputs the batch comes from the files.
  o = parse_ok({"--load-q", "q.npy", "--load-k", "k.npy", "--load-v", "v.npy", "--seqused-k", "4,4"});
  EXPECT_EQ(flash::cli::apply_loaded_shapes({2, 64, 8, 64}, {2, 64, 8, 64}, {2, 64, 8, 64}, &o), "");
  error = flash::cli::apply_loaded_shapes({3, 64, 8, 64}, {3, 64, 8, 64}, {3, 64, 8, 64}, &o);
  EXPECT_NE(error.find("--seqused-k '4,4' has 2 entries"), std::string::npos) << error;
}

TEST(CliServing, HelpListsTheServingFlagsAndPresets) {
  const std::string usage = flash::cli::usage_text("flash_attention_exec");
  for (const char* text : {"--window-left", "--window-right", "--softcap", "--varlen-q-lens", "--varlen-k-lens",
                           "--seqused-k", "qwen2.5-vl-3b-llm-prefill", "qwen2.5-vl-3b-vit-window",
                           "qwen2.5-vl-3b-vit-full", "88 variable-length sequences (up to 64 tokens, 4872 in all)"}) {
    EXPECT_NE(usage.find(text), std::string::npos) << text;
  }
}

// --- Qwen2.5-VL vision presets -----------------------------------------------------------------------

TEST(CliQwenVit, WindowLengthsOfThe84By58Grid) {
  // 42 x 29 groups of 2 x 2 patches; windows of 4 x 4 groups: 11 rows of windows (the last 2 groups
  // high) by 8 columns (the last 1 group wide).
  const std::vector<int> lengths = flash::cli::qwen_vit_window_lengths(84, 58);
  ASSERT_EQ(lengths.size(), 88u);
  int total = 0;
  std::map<int, int> windows_of_size;
  for (const int length : lengths) {
    total += length;
    ++windows_of_size[length];
  }
  EXPECT_EQ(total, 4872);
  EXPECT_EQ(windows_of_size, (std::map<int, int>{{64, 70}, {32, 7}, {16, 10}, {8, 1}}));
  // Row by row: each row of windows ends with a 1-group-wide one, the last row is 2 groups high.
  EXPECT_EQ(lengths[0], 64);
  EXPECT_EQ(lengths[7], 16);
  EXPECT_EQ(lengths[80], 32);
  EXPECT_EQ(lengths[87], 8);
}

TEST(CliQwenVit, WindowLengthsOfOtherGrids) {
  EXPECT_EQ(flash::cli::qwen_vit_window_lengths(2, 2), std::vector<int>({4}));
  EXPECT_EQ(flash::cli::qwen_vit_window_lengths(8, 8), std::vector<int>({64}));
  EXPECT_EQ(flash::cli::qwen_vit_window_lengths(10, 8), std::vector<int>({64, 16}));
  EXPECT_EQ(flash::cli::qwen_vit_window_lengths(8, 12), std::vector<int>({64, 32}));
  EXPECT_THROW(flash::cli::qwen_vit_window_lengths(83, 58), std::invalid_argument);
  EXPECT_THROW(flash::cli::qwen_vit_window_lengths(84, 0), std::invalid_argument);
}

TEST(CliPresets, QwenVisionWindowed) {
  const CliOptions o = parse_ok({"--preset", "qwen2.5-vl-3b-vit-window"});
  EXPECT_EQ(o.preset, "qwen2.5-vl-3b-vit-window");
  EXPECT_TRUE(o.varlen());
  EXPECT_EQ(o.varlen_q_lens, flash::cli::qwen_vit_window_lengths(84, 58));
  EXPECT_EQ(o.varlen_k_lens, o.varlen_q_lens);
  EXPECT_EQ(o.batch, 88);
  EXPECT_EQ(o.seqlen_q, 64);
  EXPECT_EQ(o.seqlen_k, 64);
  EXPECT_EQ(o.heads, 16);
  EXPECT_EQ(o.heads_k, 16);
  EXPECT_EQ(o.head_dim, 80);
  EXPECT_EQ(o.dtype, DataType::BF16);
  EXPECT_FALSE(o.causal);
  EXPECT_EQ(o.window_left, -1);
  EXPECT_EQ(o.window_right, -1);
  // Flags still override the rest; --heads alone keeps this MHA preset MHA.
  const CliOptions fp16 = parse_ok({"--preset", "qwen2.5-vl-3b-vit-window", "--dtype", "fp16", "--heads", "8"});
  EXPECT_EQ(fp16.dtype, DataType::FP16);
  EXPECT_EQ(fp16.heads_k, 8);
  EXPECT_EQ(fp16.batch, 88);
  // Explicit lists replace the preset's windows.
  const CliOptions lists = parse_ok({"--preset", "qwen2.5-vl-3b-vit-window", "--varlen-q-lens", "10,20",
                                     "--varlen-k-lens", "10,20"});
  EXPECT_EQ(lists.batch, 2);
  EXPECT_EQ(lists.seqlen_q, 20);
  // A shape flag that contradicts the windows names the preset.
  const std::string error = parse_error({"--preset", "qwen2.5-vl-3b-vit-window", "--batch", "4"});
  EXPECT_NE(error.find("--batch 4 conflicts"), std::string::npos) << error;
  EXPECT_NE(error.find("--preset qwen2.5-vl-3b-vit-window"), std::string::npos) << error;
  EXPECT_NE(error.find("88 sequences"), std::string::npos) << error;
  // A later dense preset drops the windows.
  const CliOptions seed = parse_ok({"--preset", "qwen2.5-vl-3b-vit-window", "--preset", "seed"});
  EXPECT_FALSE(seed.varlen());
  EXPECT_EQ(seed.batch, 1);
  EXPECT_EQ(seed.seqlen_q, 512);
}

TEST(CliPresets, QwenVisionFull) {
  const CliOptions o = parse_ok({"--preset", "qwen2.5-vl-3b-vit-full"});
  EXPECT_EQ(o.preset, "qwen2.5-vl-3b-vit-full");
  EXPECT_FALSE(o.varlen());
  EXPECT_EQ(o.batch, 1);
  EXPECT_EQ(o.seqlen_q, 4872);
  EXPECT_EQ(o.seqlen_k, 4872);
  EXPECT_EQ(o.heads, 16);
  EXPECT_EQ(o.heads_k, 16);
  EXPECT_EQ(o.head_dim, 80);
  EXPECT_EQ(o.dtype, DataType::BF16);
  EXPECT_FALSE(o.causal);
}

TEST(CliPresets, QwenLanguageModelPrefillIsDense) {
  const CliOptions o = parse_ok({"--preset", "qwen2.5-vl-3b-llm-prefill"});
  EXPECT_FALSE(o.varlen());
  EXPECT_EQ(o.batch, 1);
  EXPECT_EQ(o.window_left, -1);
  EXPECT_EQ(o.softcap, 0.0f);
  // The old name is gone; the error lists the presets.
  const std::string error = parse_error({"--preset", "qwen2.5-vl-3b-llm"});
  for (const char* name : {"seed", "qwen2.5-vl-3b-llm-prefill", "qwen2.5-vl-3b-vit-window", "qwen2.5-vl-3b-vit-full"}) {
    EXPECT_NE(error.find(name), std::string::npos) << error;
  }
}

}  // namespace
