// flash_attention_exec's command-line parsing: defaults, every flag, presets and their overrides,
// errors that name the flag and the bad value, and the .npy flags (--load-q/k/v, --save-out,
// --save-lse) with their shape checks. Pure parsing: no GPU needed.
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
  o = parse_ok({"--preset", "qwen2.5-vl-3b-llm", "--heads", "32"});
  EXPECT_EQ(o.heads, 32);
  EXPECT_EQ(o.heads_k, 2);
  o = parse_ok({"--heads-k", "1", "--heads", "8"});
  EXPECT_EQ(o.heads_k, 1);
}

TEST(CliPresets, QwenLanguageModel) {
  const CliOptions o = parse_ok({"--preset", "qwen2.5-vl-3b-llm"});
  EXPECT_EQ(o.preset, "qwen2.5-vl-3b-llm");
  EXPECT_EQ(o.heads, 16);
  EXPECT_EQ(o.heads_k, 2);
  EXPECT_EQ(o.head_dim, 128);
  EXPECT_EQ(o.dtype, DataType::BF16);
  EXPECT_EQ(o.seqlen_q, 4096);
  EXPECT_EQ(o.seqlen_k, 4096);
  EXPECT_TRUE(o.causal);
  EXPECT_TRUE(o.check);
}

TEST(CliPresets, ExplicitFlagsOverrideThePreset) {
  CliOptions o = parse_ok({"--preset", "qwen2.5-vl-3b-llm", "--no-causal", "--dtype", "fp16", "--seqlen", "1024"});
  EXPECT_FALSE(o.causal);
  EXPECT_EQ(o.dtype, DataType::FP16);
  EXPECT_EQ(o.seqlen_q, 1024);
  EXPECT_EQ(o.heads_k, 2);
  // Also when the flag comes first: a preset never silently undoes an explicit flag.
  o = parse_ok({"--batch", "2", "--preset", "qwen2.5-vl-3b-llm"});
  EXPECT_EQ(o.batch, 2);
  EXPECT_EQ(o.seqlen_q, 4096);
  // The last preset wins, and "seed" can be named explicitly.
  o = parse_ok({"--preset", "qwen2.5-vl-3b-llm", "--preset=seed"});
  EXPECT_EQ(o.preset, "seed");
  EXPECT_EQ(o.heads_k, 16);
}

TEST(CliPresets, UnknownPresetIsAnError) {
  const std::string error = parse_error({"--preset", "llama"});
  EXPECT_NE(error.find("--preset"), std::string::npos) << error;
  EXPECT_NE(error.find("'llama'"), std::string::npos) << error;
  EXPECT_NE(error.find("qwen2.5-vl-3b-llm"), std::string::npos) << error;
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
                           "--json", "--seed", "--preset", "--help", "seed", "qwen2.5-vl-3b-llm"}) {
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
  CliOptions o = loading({"--preset", "qwen2.5-vl-3b-llm"});
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

}  // namespace
