// flash_attention_exec's command-line parsing: defaults, every flag, presets and their overrides,
// and errors that name the flag and the bad value. Pure parsing: no GPU needed.
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

}  // namespace
