// flash_attention_exec: runs FlashAttention forward through the public API on random inputs (or
// q, k, v read from .npy files), dense or as a packed variable-length batch, with optional sliding
// window, softcap and seqused_k; checks that every output was written and matches the CPU double
// reference, and times it; optionally saves the output and the LSE as .npy.
// Exit status: 0 success; 1 no SM90 device, unreadable input file, library error or failed check;
// 2 bad command line (loaded shapes that disagree with each other or with a shape flag included).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>

#include "cli_options.h"
#include "flash_api.h"
#include "forward_runner.h"
#include "host/host_tensor.h"
#include "json_report.h"
#include "npy_io.h"
#include "reference/attention_ref.h"
#include "reference_check.h"

namespace {

using flash::apps::ReferenceCheck;
using flash::apps::WriteCheck;
using flash::cli::CliOptions;

constexpr const char* kProgram = "flash_attention_exec";
constexpr int kExitFailure = 1;
// Problems up to this many h*sq*sk*d multiply-adds (summed over the batch entries) are checked row
// by row in full (a few seconds of host threads); larger ones on a sample of rows.
constexpr double kFullCheckMaxWork = 2147483648.0;   // 2^31
constexpr int kSampledRandomRows = 256;
constexpr int kFirstAndLastRows = 2;
constexpr double kMsPerSecond = 1e3;
constexpr double kFlopsPerTflop = 1e12;
constexpr double kBytesPerTb = 1e12;

enum class CheckMode { kOff, kAllRows, kSampledRows };

const char* check_mode_name(CheckMode mode) {
  switch (mode) {
    case CheckMode::kOff: return "off";
    case CheckMode::kAllRows: return "all rows";
    case CheckMode::kSampledRows: return "sampled rows";
  }
  return "unknown";
}

struct Report {
  std::string gpu;
  int status = flash::kSuccess;
  std::string error;                // last_error_message after a library failure
  bool ran = false;                 // the first run succeeded: written and check are meaningful
  WriteCheck written;
  CheckMode check_mode = CheckMode::kOff;
  ReferenceCheck check;
  int copies = 0;
  double ms = 0.0;
  double tflops = 0.0;
  double kv_tbps = 0.0;             // K and V bytes the entries attend to, over the time
  bool split = false;               // the run split the keys (wrote the workspace)
  size_t workspace_bytes = 0;       // what flash_attention_workspace_size asked for
  bool timed = false;

  bool passed() const {
    return status == flash::kSuccess && written.ok() && (check_mode == CheckMode::kOff || check.passed());
  }
};

void fail_line(const std::string& reason) { std::cerr << kProgram << ": " << reason << "\n"; }

// Stored elements of q, k and v read with --load-q/k/v; empty when the inputs are random.
struct LoadedInputs {
  std::vector<uint16_t> q;
  std::vector<uint16_t> k;
  std::vector<uint16_t> v;
};

// Reads the three files, makes their shapes the problem shape (*options) and converts them to the
// run's dtype. Throws std::runtime_error on unreadable files; returns false with *shape_error set
// when the shapes disagree (with each other or with a shape flag).
bool load_inputs(CliOptions* options, LoadedInputs* loaded, std::string* shape_error) {
  const flash::npy::Array q = flash::npy::read(options->load_q);
  const flash::npy::Array k = flash::npy::read(options->load_k);
  const flash::npy::Array v = flash::npy::read(options->load_v);
  *shape_error = flash::cli::apply_loaded_shapes(q.shape, k.shape, v.shape, options);
  if (!shape_error->empty()) return false;
  const struct {
    const flash::npy::Array& array;
    const std::string& path;
    std::vector<uint16_t>* bits;
  } inputs[] = {{q, options->load_q, &loaded->q}, {k, options->load_k, &loaded->k}, {v, options->load_v, &loaded->v}};
  for (const auto& input : inputs) {
    bool converted = false;
    *input.bits = flash::npy::to_elements(input.array, options->dtype, input.path, &converted);
    if (converted) {
      std::cerr << kProgram << ": note: " << input.path << " holds '" << flash::npy::descr(input.array.type)
                << "'; rounded to " << flash::host::dtype_name(options->dtype) << " (nearest, ties to even)\n";
    }
  }
  return true;
}

// The problem the options describe; the same for the library (through ForwardRunner) and the
// reference.
flash::reference::Problem problem_of(const CliOptions& o) {
  flash::reference::Problem problem;
  problem.batch = o.batch;
  problem.seqlen_q = o.seqlen_q;   // with variable lengths: the longest ones
  problem.seqlen_k = o.seqlen_k;
  problem.num_heads = o.heads;
  problem.num_heads_k = o.heads_k;
  problem.head_dim = o.head_dim;
  problem.is_causal = o.causal;
  problem.softmax_scale = o.scale;   // 0 means 1/sqrt(head_dim) on both sides
  problem.window_left = o.window_left;
  problem.window_right = o.window_right;
  problem.softcap = o.softcap;       // a float, as the library gets it
  if (o.varlen()) {
    problem.cu_seqlens_q = flash::reference::cu_seqlens_of(o.varlen_q_lens);
    problem.cu_seqlens_k = flash::reference::cu_seqlens_of(o.varlen_k_lens);
  }
  problem.seqused_k = o.seqused_k;
  return problem;
}

// Multiply-adds of the reference over all rows, masks ignored: h * len_q * len_k * d per entry.
double reference_work(const flash::reference::Problem& p) {
  double work = 0.0;
  for (int b = 0; b < p.batch; ++b) {
    work += static_cast<double>(p.num_heads) * flash::reference::seqlen_of_q(p, b) *
            flash::reference::seqlen_of_k(p, b) * p.head_dim;
  }
  return work;
}

// A summary of lengths: "shortest..longest (total in all)".
std::string lengths_text(const std::vector<int>& lengths) {
  const auto [shortest, longest] = std::minmax_element(lengths.begin(), lengths.end());
  int64_t total = 0;
  for (const int length : lengths) total += length;
  return std::to_string(*shortest) + ".." + std::to_string(*longest) + " (" + std::to_string(total) + " in all)";
}

void print_stats(const char* label, const flash::host::ErrorStats& stats) {
  std::printf("  %-4s rel_l2 %.3e  max_abs %.3e  non-finite %lld of %lld\n", label, stats.rel_l2, stats.max_abs,
              static_cast<long long>(stats.nonfinite), static_cast<long long>(stats.count));
}

void print_report(const CliOptions& o, const Report& r) {
  std::printf("gpu      %s\n", r.gpu.c_str());
  std::printf("shape    batch %d  seqlen_q %d  seqlen_k %d  heads %d  heads_k %d  head_dim %d\n", o.batch, o.seqlen_q,
              o.seqlen_k, o.heads, o.heads_k, o.head_dim);
  if (o.loads_inputs()) {
    std::printf("inputs   %s, %s, %s\n", o.load_q.c_str(), o.load_k.c_str(), o.load_v.c_str());
  } else {
    std::printf("inputs   random (seed %llu)\n", static_cast<unsigned long long>(o.seed));
  }
  if (o.varlen()) {
    std::printf("varlen   %zu sequences, query lengths %s, key lengths %s\n", o.varlen_q_lens.size(),
                lengths_text(o.varlen_q_lens).c_str(), lengths_text(o.varlen_k_lens).c_str());
  }
  if (!o.seqused_k.empty()) std::printf("seqused  keys used per entry %s\n", lengths_text(o.seqused_k).c_str());
  std::printf("options  dtype %s  causal %s  scale %s  lse %s  preset %s\n", flash::host::dtype_name(o.dtype),
              o.causal ? "yes" : "no", o.scale == 0.0f ? "1/sqrt(head_dim)" : std::to_string(o.scale).c_str(),
              o.lse ? "yes" : "no", o.preset.c_str());
  std::printf("mask     window left %d right %d (-1: no limit)  softcap %s\n", o.window_left, o.window_right,
              o.softcap == 0.0f ? "off" : std::to_string(o.softcap).c_str());
  std::printf("layout   kv cache %s  num_splits %d (0: automatic)\n",
              o.page_size > 0 ? ("paged, " + std::to_string(o.page_size) + " keys per page").c_str() : "contiguous",
              o.num_splits);
  if (!r.ran) return;
  std::printf("split    %s (workspace %zu bytes)\n", r.split ? "yes: keys split, merged by the combine kernel" : "no",
              r.workspace_bytes);
  std::printf("written  %s (non-finite outputs %lld, NaN LSE %lld, guard bytes %s)\n",
              r.written.ok() ? "ok" : "FAILED", static_cast<long long>(r.written.out_nonfinite),
              static_cast<long long>(r.written.lse_nan), r.written.guards_intact ? "intact" : "CHANGED");
  if (r.check_mode == CheckMode::kOff) {
    std::printf("check    off\n");
  } else {
    std::printf("check    %s: %lld rows against the CPU double reference, tolerance rel_l2 %.1e: %s\n",
                check_mode_name(r.check_mode), static_cast<long long>(r.check.rows), r.check.tolerance,
                r.check.passed() ? "PASS" : "FAIL");
    print_stats("out", r.check.out);
    if (r.check.has_lse) print_stats("lse", r.check.lse);
  }
  if (!o.save_out.empty()) std::printf("saved    out to %s\n", o.save_out.c_str());
  if (!o.save_lse.empty()) std::printf("saved    lse to %s\n", o.save_lse.c_str());
  if (r.timed) {
    std::printf("time     median %.4f ms of %d launches (%d warm-up, %d input copies)\n", r.ms, o.iters, o.warmup,
                r.copies);
    std::printf("speed    %.1f TFLOP/s, %.3f TB/s of K and V\n", r.tflops, r.kv_tbps);
  }
}

void add_stats(flash::apps::JsonObject* json, const std::string& prefix, const flash::host::ErrorStats& stats) {
  json->number(prefix + "rel_l2", stats.rel_l2)
      .number(prefix + "max_abs", stats.max_abs)
      .integer(prefix + "nonfinite", stats.nonfinite);
}

std::string report_json(const CliOptions& o, const Report& r) {
  flash::apps::JsonObject json;
  json.string("program", kProgram)
      .string("gpu", r.gpu)
      .string("date", flash::apps::utc_timestamp())
      .string("preset", o.preset)
      .integer("batch", o.batch)
      .integer("seqlen_q", o.seqlen_q)
      .integer("seqlen_k", o.seqlen_k)
      .integer("heads", o.heads)
      .integer("heads_k", o.heads_k)
      .integer("head_dim", o.head_dim)
      .string("dtype", flash::host::dtype_name(o.dtype))
      .boolean("causal", o.causal)
      .number("softmax_scale", o.scale)
      .integer("window_left", o.window_left)
      .integer("window_right", o.window_right)
      .number("softcap", o.softcap)
      .boolean("varlen", o.varlen());
  if (o.varlen()) {
    json.raw("seqlens_q", flash::apps::json_int_array(o.varlen_q_lens))
        .raw("seqlens_k", flash::apps::json_int_array(o.varlen_k_lens));
  } else {
    json.null("seqlens_q").null("seqlens_k");
  }
  if (o.seqused_k.empty()) {
    json.null("seqused_k");
  } else {
    json.raw("seqused_k", flash::apps::json_int_array(o.seqused_k));
  }
  json.integer("page_size", o.page_size)
      .integer("num_splits", o.num_splits)
      .boolean("split", r.split)
      .integer("workspace_bytes", static_cast<int64_t>(r.workspace_bytes));
  json.boolean("lse", o.lse)
      .integer("seed", static_cast<int64_t>(o.seed))
      .string("inputs", o.loads_inputs() ? "npy" : "random")
      .integer("status_code", r.status)
      .string("status", flash::status_string(r.status))
      .string("error", r.error)
      .string("check", check_mode_name(r.check_mode));
  if (r.ran) {
    json.integer("unwritten_out", r.written.out_nonfinite)
        .integer("unwritten_lse", r.written.lse_nan)
        .boolean("guards_intact", r.written.guards_intact);
  }
  if (r.ran && r.check_mode != CheckMode::kOff) {
    json.integer("rows_checked", r.check.rows).number("tolerance", r.check.tolerance);
    add_stats(&json, "", r.check.out);
    if (r.check.has_lse) add_stats(&json, "lse_", r.check.lse);
    json.boolean("check_passed", r.check.passed());
  }
  json.integer("iters", o.iters).integer("warmup", o.warmup).integer("input_copies", r.copies);
  if (r.timed) {
    json.number("ms", r.ms).number("tflops", r.tflops).number("kv_tbps", r.kv_tbps);
  } else {
    json.null("ms").null("tflops").null("kv_tbps");
  }
  json.boolean("passed", r.passed());
  return json.str();
}

// Everything after a successful device query; fills *report.
void run(const CliOptions& o, const LoadedInputs& loaded, const flash::apps::DeviceInfo& device, Report* report) {
  const flash::reference::Problem problem = problem_of(o);

  const size_t q_elements = flash::apps::q_elements(problem);
  const size_t kv_elements = flash::apps::kv_elements(problem);
  std::vector<uint16_t> q_random, k_random, v_random;
  std::vector<double> q, k, v;
  if (o.loads_inputs()) {
    // The decoded values are needed only by the reference check.
    const auto decode_all = [&o](const std::vector<uint16_t>& bits, std::vector<double>* values) {
      values->resize(bits.size());
      for (size_t i = 0; i < bits.size(); ++i) (*values)[i] = flash::host::decode(o.dtype, bits[i]);
    };
    if (o.check) {
      decode_all(loaded.q, &q);
      decode_all(loaded.k, &k);
      decode_all(loaded.v, &v);
    }
  } else {
    // Distinct seeds per tensor; the decoded values are needed only by the reference check.
    flash::host::fill_random(o.dtype, q_elements, o.seed, &q_random, o.check ? &q : nullptr);
    flash::host::fill_random(o.dtype, kv_elements, o.seed + 1, &k_random, o.check ? &k : nullptr);
    flash::host::fill_random(o.dtype, kv_elements, o.seed + 2, &v_random, o.check ? &v : nullptr);
  }
  const std::vector<uint16_t>& q_bits = o.loads_inputs() ? loaded.q : q_random;
  const std::vector<uint16_t>& k_bits = o.loads_inputs() ? loaded.k : k_random;
  const std::vector<uint16_t>& v_bits = o.loads_inputs() ? loaded.v : v_random;
  if (q_bits.size() != q_elements || k_bits.size() != kv_elements || v_bits.size() != kv_elements) {
    throw std::logic_error("input element counts do not match the problem shape");
  }

  report->copies = flash::apps::rotation_copies(flash::apps::input_bytes(problem, o.dtype), device.l2_bytes,
                                                o.warmup + o.iters);
  flash::apps::RunLayout layout;
  layout.page_size = o.page_size;
  layout.page_seed = o.seed + 3;
  layout.num_splits = o.num_splits;
  flash::apps::ForwardRunner runner(problem, o.dtype, o.lse, q_bits.data(), k_bits.data(), v_bits.data(),
                                    report->copies, layout);
  const cudaStream_t stream = nullptr;
  report->workspace_bytes = runner.workspace_bytes();
  report->status = runner.run_once(stream);
  if (report->status != flash::kSuccess) {
    report->error = flash::last_error_message();
    return;
  }
  report->ran = true;
  report->split = runner.last_run_split();
  std::vector<uint16_t> out;
  std::vector<float> lse;
  report->written = runner.read_outputs(&out, &lse);
  // Saved as read back, before any check: a failing run's output is worth looking at too.
  // Variable lengths: packed out [total_q, heads, head_dim] and LSE [heads, total_q].
  const int64_t total_q = flash::reference::total_q(problem);
  if (!o.save_out.empty()) {
    const std::vector<int64_t> shape = o.varlen() ? std::vector<int64_t>{total_q, o.heads, o.head_dim}
                                                  : std::vector<int64_t>{o.batch, o.seqlen_q, o.heads, o.head_dim};
    flash::npy::write_elements(o.save_out, flash::host::output_dtype(o.dtype), out.data(), out.size(), shape);
  }
  if (!o.save_lse.empty()) {
    const std::vector<int64_t> shape = o.varlen() ? std::vector<int64_t>{o.heads, total_q}
                                                  : std::vector<int64_t>{o.batch, o.heads, o.seqlen_q};
    flash::npy::write_float32(o.save_lse, lse.data(), lse.size(), shape);
  }

  if (o.check) {
    const flash::apps::HostInputs inputs{q.data(), k.data(), v.data()};
    const flash::apps::DeviceOutputs outputs{out.data(), o.lse ? lse.data() : nullptr};
    if (reference_work(problem) <= kFullCheckMaxWork) {
      report->check_mode = CheckMode::kAllRows;
      report->check = flash::apps::check_all_rows(problem, o.dtype, inputs, outputs);
    } else {
      report->check_mode = CheckMode::kSampledRows;
      const auto rows = flash::apps::sample_rows(problem, kSampledRandomRows + kFirstAndLastRows, o.seed);
      report->check = flash::apps::check_rows(problem, o.dtype, inputs, outputs, rows);
    }
  }

  report->status = runner.time(o.warmup, o.iters, stream, &report->ms);
  if (report->status != flash::kSuccess) {
    report->error = flash::last_error_message();
    return;
  }
  report->timed = true;
  report->tflops = flash::apps::attention_flops(problem) / (report->ms / kMsPerSecond) / kFlopsPerTflop;
  report->kv_tbps = flash::apps::kv_bytes_read(problem, o.dtype) / (report->ms / kMsPerSecond) / kBytesPerTb;
  // The timed launches wrote the same outputs again: they must still stay inside them.
  report->written.guards_intact = report->written.guards_intact && runner.guards_intact();
}

}  // namespace

int main(int argc, char** argv) {
  const flash::cli::ParseResult parsed = flash::cli::parse_cli(argc, argv);
  if (parsed.action == flash::cli::ParseResult::Action::kHelp) {
    std::cout << flash::cli::usage_text(kProgram);
    return 0;
  }
  if (parsed.action == flash::cli::ParseResult::Action::kError) {
    fail_line(parsed.error);
    return flash::cli::kExitUsageError;
  }
  CliOptions options = parsed.options;

  // Files first: a bad input file is reported on any machine, and before minutes of GPU work.
  LoadedInputs loaded;
  if (options.loads_inputs()) {
    std::string shape_error;
    try {
      if (!load_inputs(&options, &loaded, &shape_error)) {
        fail_line(shape_error);
        return flash::cli::kExitUsageError;
      }
    } catch (const std::exception& e) {
      fail_line(e.what());
      return kExitFailure;
    }
  }

  flash::apps::DeviceInfo device;
  std::string reason;
  if (!flash::apps::find_sm90_device(&device, &reason)) {
    fail_line(reason);
    return kExitFailure;
  }

  Report report;
  report.gpu = device.name;
  try {
    run(options, loaded, device, &report);
  } catch (const std::exception& e) {
    fail_line(e.what());
    return kExitFailure;
  }
  print_report(options, report);
  if (report.status != flash::kSuccess) {
    fail_line(std::string("flash_attention_forward failed: ") + flash::status_string(report.status) + " (status " +
              std::to_string(report.status) + "): " + report.error);
  }
  if (!options.json_path.empty()) {
    std::string error;
    if (!flash::apps::write_text_file(options.json_path, report_json(options, report), &error)) {
      fail_line(error);
      return kExitFailure;
    }
  }
  return report.passed() ? 0 : kExitFailure;
}
