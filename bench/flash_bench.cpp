// flash_bench: times attention forward through the public API over the FlashAttention-3 paper's
// grid and the Qwen2.5-VL-3B serving shapes, checks sampled rows against the CPU double reference,
// prints a table and writes JSON (bench/compare_peers.py adds cuDNN and FlashAttention-2 to it).
// A benchmark is a program, not a test: CUDA events, warm-up, median of many launches, inputs
// rotated so that L2 does not hold them, random data (zeros run faster).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <initializer_list>
#include <iostream>
#include <optional>
#include <string>
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

constexpr const char* kProgram = "flash_bench";
constexpr int kExitFailure = 1;
constexpr int kDefaultIters = 50;
constexpr int kDefaultWarmup = 10;
constexpr int kDefaultCheckRows = 64;
constexpr uint64_t kDefaultSeed = 1;
constexpr double kMsPerSecond = 1e3;
constexpr double kFlopsPerTflop = 1e12;
constexpr int kCudaVersionMajorScale = 1000;   // cudaRuntimeGetVersion gives 1000*major + 10*minor
constexpr int kCudaVersionMinorScale = 10;

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

constexpr const char* kGridFa3Paper = "fa3paper";
constexpr const char* kGridQwen = "qwen";

struct BenchOptions {
  bool fa3paper = true;
  bool qwen = true;
  std::optional<DataType> dtype;   // replaces each grid's own dtypes
  std::optional<int> head_dim;
  std::optional<bool> causal;
  int iters = kDefaultIters;
  int warmup = kDefaultWarmup;
  int check_rows = kDefaultCheckRows;
  uint64_t seed = kDefaultSeed;
  std::string json_path;
};

struct BenchPoint {
  const char* grid;
  DataType dtype;
  int batch;
  int heads;
  int heads_k;
  int seqlen;
  int head_dim;
  bool causal;
};

struct PointResult {
  int status = flash::kSuccess;
  std::string error;
  flash::apps::WriteCheck written;
  bool checked = false;
  flash::apps::ReferenceCheck check;
  bool timed = false;
  double ms = 0.0;
  double tflops = 0.0;
  bool passed() const {
    return status == flash::kSuccess && written.ok() && (!checked || check.passed()) && timed;
  }
};

std::string usage_text() {
  return std::string("Usage: ") + kProgram +
         " [options]\n\n"
         "Times attention forward over benchmark grids and writes a table (stdout) and JSON.\n\n"
         "Options:\n"
         "  --grid NAME         fa3paper (hidden 2048, 16k tokens, head dims 64/128/256, fp16+bf16),\n"
         "                      qwen (16 q heads, 2 kv heads, head dim 128, bf16, seqlen 512..32k) or all (default)\n"
         "  --dtype TYPE        only this input type (fp16, bf16, fp8), replacing each grid's own\n"
         "  --head-dim N        only this head dimension\n"
         "  --causal            only causal points\n"
         "  --no-causal         only non-causal points\n"
         "  --iters N           timed launches per point (default 50)\n"
         "  --warmup N          untimed launches before them (default 10)\n"
         "  --check-rows N      rows per point checked against the CPU reference (default 64; 0: none)\n"
         "  --seed N            seed of the random inputs and the sampled rows (default 1)\n"
         "  --json PATH         write the results as JSON\n"
         "  --help              print this text\n\n"
         "FLASH_GIT_COMMIT in the environment overrides the commit recorded at configure time.\n";
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
      if (value != kGridFa3Paper && value != kGridQwen && value != "all") {
        return "invalid value '" + value + "' for --grid: expected fa3paper, qwen or all";
      }
      options->fa3paper = value != kGridQwen;
      options->qwen = value != kGridFa3Paper;
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

std::vector<DataType> dtypes_for(const BenchOptions& o, std::initializer_list<DataType> grid_dtypes) {
  if (o.dtype) return {*o.dtype};
  return grid_dtypes;
}

bool selected(const BenchOptions& o, int head_dim, bool causal) {
  return (!o.head_dim || *o.head_dim == head_dim) && (!o.causal || *o.causal == causal);
}

// Points in the order they run: grouped by dtype so that one pool of random inputs serves them all.
std::vector<BenchPoint> make_points(const BenchOptions& o) {
  std::vector<BenchPoint> points;
  if (o.fa3paper) {
    for (const DataType dtype : dtypes_for(o, kFa3PaperDtypes)) {
      for (const int head_dim : kFa3PaperHeadDims) {
        for (const bool causal : {false, true}) {
          if (!selected(o, head_dim, causal)) continue;
          const int heads = kFa3PaperHidden / head_dim;
          for (const int seqlen : kFa3PaperSeqlens) {
            points.push_back({kGridFa3Paper, dtype, kFa3PaperTokens / seqlen, heads, heads, seqlen, head_dim, causal});
          }
        }
      }
    }
  }
  if (o.qwen) {
    for (const DataType dtype : dtypes_for(o, kQwenDtypes)) {
      for (const bool causal : {false, true}) {
        if (!selected(o, kQwenHeadDim, causal)) continue;
        for (const int seqlen : kQwenSeqlens) {
          const int batch = std::max(1, kQwenTokens / seqlen);
          points.push_back({kGridQwen, dtype, batch, kQwenHeads, kQwenHeadsK, seqlen, kQwenHeadDim, causal});
        }
      }
    }
  }
  std::stable_sort(points.begin(), points.end(), [](const BenchPoint& a, const BenchPoint& b) {
    return static_cast<int>(a.dtype) < static_cast<int>(b.dtype);
  });
  return points;
}

flash::reference::Problem problem_of(const BenchPoint& p) {
  flash::reference::Problem problem;
  problem.batch = p.batch;
  problem.seqlen_q = p.seqlen;
  problem.seqlen_k = p.seqlen;
  problem.num_heads = p.heads;
  problem.num_heads_k = p.heads_k;
  problem.head_dim = p.head_dim;
  problem.is_causal = p.causal;
  return problem;
}

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
    q_max = std::max(q_max, flash::apps::q_elements(problem_of(p)));
    kv_max = std::max(kv_max, flash::apps::kv_elements(problem_of(p)));
  }
  InputPool pool;
  flash::host::fill_random(dtype, q_max, seed, &pool.q_bits, with_values ? &pool.q : nullptr);
  flash::host::fill_random(dtype, kv_max, seed + 1, &pool.k_bits, with_values ? &pool.k : nullptr);
  flash::host::fill_random(dtype, kv_max, seed + 2, &pool.v_bits, with_values ? &pool.v : nullptr);
  return pool;
}

PointResult run_point(const BenchPoint& point, const InputPool& pool, const BenchOptions& o,
                      const flash::apps::DeviceInfo& device) {
  const flash::reference::Problem problem = problem_of(point);
  const int copies = flash::apps::rotation_copies(flash::apps::input_bytes(problem, point.dtype), device.l2_bytes,
                                                  o.warmup + o.iters);
  flash::apps::ForwardRunner runner(problem, point.dtype, /*with_lse=*/false, pool.q_bits.data(),
                                    pool.k_bits.data(), pool.v_bits.data(), copies);
  const cudaStream_t stream = nullptr;
  PointResult result;
  result.status = runner.run_once(stream);
  if (result.status != flash::kSuccess) {
    result.error = flash::last_error_message();
    return result;
  }
  std::vector<uint16_t> out;
  result.written = runner.read_outputs(&out, nullptr);
  if (o.check_rows > 0) {
    result.checked = true;
    const auto rows = flash::apps::sample_rows(problem, o.check_rows, o.seed);
    result.check = flash::apps::check_rows(problem, point.dtype, {pool.q.data(), pool.k.data(), pool.v.data()},
                                           {out.data(), nullptr}, rows);
  }
  result.status = runner.time(o.warmup, o.iters, stream, &result.ms);
  if (result.status != flash::kSuccess) {
    result.error = flash::last_error_message();
    return result;
  }
  result.timed = true;
  result.tflops = flash::host::attention_flops(point.batch, point.heads, point.seqlen, point.seqlen, point.head_dim,
                                               point.causal) /
                  (result.ms / kMsPerSecond) / kFlopsPerTflop;
  result.written.guards_intact = result.written.guards_intact && runner.guards_intact();
  return result;
}

void print_header() {
  std::printf("%-9s %-5s %5s %5s %4s %6s %4s %-6s %9s %8s %9s %9s  %s\n", "grid", "dtype", "batch", "heads", "kv",
              "seqlen", "hdim", "causal", "ms", "TFLOP/s", "rel_l2", "max_abs", "status");
}

void print_row(const BenchPoint& p, const PointResult& r) {
  std::printf("%-9s %-5s %5d %5d %4d %6d %4d %-6s ", p.grid, flash::host::dtype_name(p.dtype), p.batch, p.heads,
              p.heads_k, p.seqlen, p.head_dim, p.causal ? "yes" : "no");
  if (r.timed) {
    std::printf("%9.4f %8.1f ", r.ms, r.tflops);
  } else {
    std::printf("%9s %8s ", "-", "-");
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

std::string point_json(const BenchPoint& p, const PointResult& r) {
  flash::apps::JsonObject json;
  json.string("grid", p.grid)
      .string("dtype", flash::host::dtype_name(p.dtype))
      .integer("batch", p.batch)
      .integer("heads", p.heads)
      .integer("heads_k", p.heads_k)
      .integer("seqlen_q", p.seqlen)
      .integer("seqlen_k", p.seqlen)
      .integer("head_dim", p.head_dim)
      .boolean("causal", p.causal);
  if (r.timed) {
    json.number("ms", r.ms).number("tflops", r.tflops);
  } else {
    json.null("ms").null("tflops");
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
                        const std::vector<std::string>& points) {
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
      .raw("points", flash::apps::json_array(points));
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
      all_passed = all_passed && result.passed();
    }
  } catch (const std::exception& e) {
    // A CUDA fault leaves the context unusable: stop, but keep what was measured.
    std::cerr << kProgram << ": " << e.what() << "\n";
    exit_code = kExitFailure;
  }
  if (!options.json_path.empty()) {
    std::string error;
    if (!flash::apps::write_text_file(options.json_path, report_json(options, device, point_records), &error)) {
      std::cerr << kProgram << ": " << error << "\n";
      exit_code = kExitFailure;
    }
  }
  if (!all_passed) exit_code = kExitFailure;
  std::printf("%s: %zu points, %s\n", kProgram, point_records.size(), exit_code == 0 ? "all passed" : "FAILURES above");
  return exit_code;
}
