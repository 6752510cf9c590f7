// The kernel list in tools/generate_kernels.py is the only list of kernels: the generated files
// must be current and the compiled dispatch table must be exactly that list, in order.
#include <cstdio>
#include <cstdlib>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <sys/wait.h>

#include <gtest/gtest.h>

#include "api/fwd_args.h"

namespace flash::detail {
namespace {

std::string generator_command(const std::string& option) {
  return std::string("\"") + FLASH_PYTHON + "\" \"" + FLASH_SOURCE_DIR + "/tools/generate_kernels.py\" " + option;
}

// The generator's own dtype names.
std::string generator_dtype_name(DataType dtype) {
  switch (dtype) {
    case DataType::FP16: return "fp16";
    case DataType::BF16: return "bf16";
    case DataType::FP8_E4M3: return "fp8_e4m3";
  }
  return "unknown";
}

TEST(Generator, GeneratedFilesAreCurrent) {
  const int status = std::system(generator_command("--check").c_str());
  ASSERT_NE(status, -1) << "could not start " << generator_command("--check");
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "src/instances/ is stale: run tools/generate_kernels.py";
}

TEST(Generator, ListEqualsKernelTable) {
  FILE* pipe = popen(generator_command("--list").c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string text;
  char buffer[256];
  while (fgets(buffer, sizeof(buffer), pipe) != nullptr) text += buffer;
  const int status = pclose(pipe);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "--list failed";

  std::vector<std::pair<std::string, int>> listed;
  std::istringstream lines(text);
  std::string dtype;
  int head_dim = 0;
  while (lines >> dtype >> head_dim) listed.emplace_back(dtype, head_dim);

  std::vector<std::pair<std::string, int>> table;
  for (int i = 0; i < kNumKernels; ++i) {
    table.emplace_back(generator_dtype_name(kKernelTable[i].dtype), kKernelTable[i].head_dim);
  }
  EXPECT_FALSE(listed.empty());
  EXPECT_EQ(listed, table);
  EXPECT_EQ(kNumKernels, static_cast<int>(listed.size()));
}

TEST(Generator, TableRowsAreUniqueAndNamed) {
  std::set<std::pair<int, int>> seen;
  for (int i = 0; i < kNumKernels; ++i) {
    const KernelEntry& entry = kKernelTable[i];
    EXPECT_TRUE(seen.insert({static_cast<int>(entry.dtype), entry.head_dim}).second)
        << "two rows for " << generator_dtype_name(entry.dtype) << " head_dim " << entry.head_dim;
    EXPECT_NE(entry.launch, nullptr);
    ASSERT_NE(entry.name, nullptr);
    EXPECT_EQ(std::string(entry.name),
              generator_dtype_name(entry.dtype) + "_hdim" + std::to_string(entry.head_dim) + "_sm90");
  }
}

}  // namespace
}  // namespace flash::detail
