// GPU test of the CLI's .npy path: q, k and v written with the project's own .npy writer
// (apps/npy_io.h: fp16 as '<f2', bf16 as '<u2' raw bits) go through flash_attention_exec
// --load-q/k/v --save-out --save-lse, and what it saves must equal, bit for bit, a direct
// flash::flash_attention_forward call on the same inputs. The CLI also runs its own reference check
// (on by default), so its exit status 0 says the saved values are right as well as identical.
// Skipped, and reported so by CTest, without an SM90 device.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>

#include "flash_api.h"
#include "gpu_test_util.h"
#include "host/host_tensor.h"
#include "npy_io.h"

#ifndef FLASH_EXEC_PATH
#error "FLASH_EXEC_PATH (the flash_attention_exec binary) must be defined by the build"
#endif

namespace {

using flash::DataType;
using flash::host::GuardedDeviceBuffer;

struct Case {
  DataType dtype;
  int batch, seqlen_q, seqlen_k, heads, heads_k, head_dim;
  bool causal;
};

std::string case_name(const Case& c) {
  return std::string(flash::host::dtype_name(c.dtype)) + "_d" + std::to_string(c.head_dim) +
         (c.causal ? "_causal" : "_full") + "_b" + std::to_string(c.batch) + "_h" + std::to_string(c.heads) + "x" +
         std::to_string(c.heads_k) + "_q" + std::to_string(c.seqlen_q) + "_k" + std::to_string(c.seqlen_k);
}

// What CTest shows after the test name, instead of the struct's bytes.
void PrintTo(const Case& c, std::ostream* os) { *os << case_name(c); }

// 'text' for /bin/sh: single quotes, with any single quote inside closed, escaped and reopened.
std::string shell_quote(const std::string& text) {
  std::string quoted = "'";
  for (const char ch : text) quoted += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return quoted + "'";
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// A fresh directory of its own: CTest runs the cases of this file as parallel processes.
std::string make_temp_dir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "flash_npy_roundtrip.XXXXXX").string();
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (!mkdtemp(buffer.data())) return "";
  return buffer.data();
}

class CliNpyRoundTrip : public ::testing::TestWithParam<Case> {};

TEST_P(CliNpyRoundTrip, CliOutputEqualsLibraryCallBitForBit) {
  SKIP_WITHOUT_SM90();
  const Case& c = GetParam();
  const size_t q_elems = size_t(c.batch) * c.seqlen_q * c.heads * c.head_dim;
  const size_t kv_elems = size_t(c.batch) * c.seqlen_k * c.heads_k * c.head_dim;
  const size_t lse_elems = size_t(c.batch) * c.heads * c.seqlen_q;
  const std::vector<int64_t> q_shape{c.batch, c.seqlen_q, c.heads, c.head_dim};
  const std::vector<int64_t> kv_shape{c.batch, c.seqlen_k, c.heads_k, c.head_dim};
  const std::vector<int64_t> lse_shape{c.batch, c.heads, c.seqlen_q};

  std::vector<uint16_t> q, k, v;
  flash::host::fill_random(c.dtype, q_elems, 4242, &q, nullptr);
  flash::host::fill_random(c.dtype, kv_elems, 4243, &k, nullptr);
  flash::host::fill_random(c.dtype, kv_elems, 4244, &v, nullptr);

  // --- the CLI, through .npy files ---
  const std::string dir = make_temp_dir();
  ASSERT_FALSE(dir.empty()) << "mkdtemp failed: " << std::strerror(errno);
  const std::string q_path = dir + "/q.npy", k_path = dir + "/k.npy", v_path = dir + "/v.npy";
  const std::string out_path = dir + "/out.npy", lse_path = dir + "/lse.npy", log_path = dir + "/cli.log";
  flash::npy::write_elements(q_path, c.dtype, q.data(), q.size(), q_shape);
  flash::npy::write_elements(k_path, c.dtype, k.data(), k.size(), kv_shape);
  flash::npy::write_elements(v_path, c.dtype, v.data(), v.size(), kv_shape);
  // The files set the shape; dtype and mask come from the flags. The reference check stays on.
  const std::string command = shell_quote(FLASH_EXEC_PATH) + " --dtype " + flash::host::dtype_name(c.dtype) +
                              (c.causal ? " --causal" : " --no-causal") + " --load-q " + shell_quote(q_path) +
                              " --load-k " + shell_quote(k_path) + " --load-v " + shell_quote(v_path) +
                              " --save-out " + shell_quote(out_path) + " --save-lse " + shell_quote(lse_path) +
                              " --iters 1 --warmup 0 > " + shell_quote(log_path) + " 2>&1";
  const int status = std::system(command.c_str());
  const std::string log = read_text(log_path);
  ASSERT_TRUE(status != -1 && WIFEXITED(status)) << "could not run: " << command;
  ASSERT_EQ(WEXITSTATUS(status), 0) << command << "\n" << log;
  // Files holding the dtype's own bits are taken as they are, with no rounding note.
  EXPECT_EQ(log.find("note:"), std::string::npos) << log;

  const flash::npy::Array out_cli = flash::npy::read(out_path);
  const flash::npy::Array lse_cli = flash::npy::read(lse_path);
  using flash::npy::ElementType;
  const ElementType out_type = c.dtype == DataType::FP16 ? ElementType::kFloat16 : ElementType::kUInt16;
  ASSERT_EQ(out_cli.type, out_type) << "saved out has descr " << flash::npy::descr(out_cli.type);
  ASSERT_EQ(out_cli.shape, q_shape);
  ASSERT_EQ(out_cli.data.size(), q_elems * sizeof(uint16_t));
  ASSERT_EQ(lse_cli.type, ElementType::kFloat32) << "saved lse has descr " << flash::npy::descr(lse_cli.type);
  ASSERT_EQ(lse_cli.shape, lse_shape);
  ASSERT_EQ(lse_cli.data.size(), lse_elems * sizeof(float));

  // --- the library, directly on the same elements ---
  GuardedDeviceBuffer q_dev(q_elems * 2), k_dev(kv_elems * 2), v_dev(kv_elems * 2);
  GuardedDeviceBuffer out_dev(q_elems * 2), lse_dev(lse_elems * sizeof(float));
  q_dev.copy_from_host(q.data(), q_elems * 2);
  k_dev.copy_from_host(k.data(), kv_elems * 2);
  v_dev.copy_from_host(v.data(), kv_elems * 2);
  out_dev.poison(flash::host::kPoisonNaN);
  lse_dev.poison(flash::host::kPoisonNaN);
  flash::FlashAttentionParams p;
  p.q = q_dev.data(), p.k = k_dev.data(), p.v = v_dev.data(), p.out = out_dev.data();
  p.softmax_lse = static_cast<float*>(lse_dev.data());
  p.batch_size = c.batch, p.seqlen_q = c.seqlen_q, p.seqlen_k = c.seqlen_k;
  p.num_heads = c.heads, p.num_heads_k = c.heads_k, p.head_dim = c.head_dim;
  p.dtype = c.dtype;
  p.is_causal = c.causal;   // softmax_scale 0: 1/sqrt(head_dim), as the CLI without --scale
  // The CLI passes a workspace of the size the library asks for (num_splits 0: the library may
  // split the keys), so the direct call does too.
  size_t workspace_bytes = 0;
  ASSERT_EQ(flash::flash_attention_workspace_size(p, &workspace_bytes), flash::kSuccess) << flash::last_error_message();
  GuardedDeviceBuffer workspace(std::max<size_t>(workspace_bytes, 16));
  if (workspace_bytes > 0) {
    p.workspace = workspace.data();
    p.workspace_bytes = workspace_bytes;
  }
  const int result = flash::flash_attention_forward(p, nullptr);
  ASSERT_EQ(result, flash::kSuccess) << flash::status_string(result) << ": " << flash::last_error_message();
  flash::host::cuda_check(cudaDeviceSynchronize(), "kernel execution");
  std::vector<uint8_t> out_lib(q_elems * 2), lse_lib(lse_elems * sizeof(float));
  out_dev.copy_to_host(out_lib.data(), out_lib.size());
  lse_dev.copy_to_host(lse_lib.data(), lse_lib.size());
  EXPECT_TRUE(out_dev.guards_intact() && lse_dev.guards_intact());

  // memcmp for the verdict; the first differing element for the message.
  const auto first_difference = [](const std::vector<uint8_t>& a, const std::vector<uint8_t>& b, size_t width) {
    for (size_t i = 0; i < a.size(); i += width)
      if (std::memcmp(&a[i], &b[i], width) != 0) return std::to_string(i / width);
    return std::string("none");
  };
  EXPECT_EQ(std::memcmp(out_cli.data.data(), out_lib.data(), out_lib.size()), 0)
      << "out differs; first differing element " << first_difference(out_cli.data, out_lib, 2);
  EXPECT_EQ(std::memcmp(lse_cli.data.data(), lse_lib.data(), lse_lib.size()), 0)
      << "lse differs; first differing element " << first_difference(lse_cli.data, lse_lib, 4);

  // With seqlen_q > seqlen_k under the causal mask, the first rows see no key: LSE -inf, out 0.
  if (c.causal && c.seqlen_q > c.seqlen_k) {
    float first_lse = 0.0f;
    std::memcpy(&first_lse, lse_lib.data(), sizeof(float));
    EXPECT_TRUE(std::isinf(first_lse) && first_lse < 0) << "row 0 should see no key; lse " << first_lse;
  }

  if (!HasFailure()) {
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  } else {
    std::printf("[ kept     ] %s (inputs, CLI outputs and log)\n", dir.c_str());
  }
}

// Causal GQA/MQA with odd lengths (tails in every tile loop), seqlen_q != seqlen_k both ways
// (the bottom-right mask; seqlen_q > seqlen_k leaves rows that see no key), fp16 and bf16.
INSTANTIATE_TEST_SUITE_P(CausalGqa, CliNpyRoundTrip,
                         ::testing::Values(Case{DataType::FP16, 2, 173, 301, 8, 2, 128, true},
                                           Case{DataType::BF16, 2, 173, 301, 8, 2, 128, true},
                                           Case{DataType::FP16, 1, 301, 173, 4, 1, 64, true},
                                           Case{DataType::BF16, 1, 301, 173, 4, 1, 64, true}),
                         [](const ::testing::TestParamInfo<Case>& info) { return case_name(info.param); });

}  // namespace
