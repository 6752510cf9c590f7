// The kernel list in tools/generate_kernels.py is the only list of kernels: the generated files
// must be current and the compiled dispatch table must be exactly that list, in order.
#include <cstdio>
#include <cstdlib>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
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

// The generator's variant names.
std::string variant_name(const KernelEntry& entry) { return entry.general ? "general" : "dense"; }

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

  std::vector<std::tuple<std::string, int, std::string>> listed;
  std::istringstream lines(text);
  std::string dtype;
  int head_dim = 0;
  std::string variant;
  while (lines >> dtype >> head_dim >> variant) listed.emplace_back(dtype, head_dim, variant);

  std::vector<std::tuple<std::string, int, std::string>> table;
  for (int i = 0; i < kNumKernels; ++i) {
    table.emplace_back(generator_dtype_name(kKernelTable[i].dtype), kKernelTable[i].head_dim,
                       variant_name(kKernelTable[i]));
  }
  EXPECT_FALSE(listed.empty());
  EXPECT_EQ(listed, table);
  EXPECT_EQ(kNumKernels, static_cast<int>(listed.size()));
}

TEST(Generator, TableRowsAreUniqueAndNamed) {
  std::set<std::tuple<int, int, bool>> seen;
  for (int i = 0; i < kNumKernels; ++i) {
    const KernelEntry& entry = kKernelTable[i];
    EXPECT_TRUE(seen.insert({static_cast<int>(entry.dtype), entry.head_dim, entry.general}).second)
        << "two rows for " << generator_dtype_name(entry.dtype) << " head_dim " << entry.head_dim << " "
        << variant_name(entry);
    EXPECT_NE(entry.launch, nullptr);
    ASSERT_NE(entry.name, nullptr);
    EXPECT_EQ(std::string(entry.name), generator_dtype_name(entry.dtype) + "_hdim" + std::to_string(entry.head_dim) +
                                           "_" + variant_name(entry) + "_sm90");
  }
}

// find_kernel decides support from the dense rows and then picks either variant: every (dtype,
// head_dim) must have both.
TEST(Generator, EveryKernelHasBothVariants) {
  std::set<std::tuple<int, int, bool>> rows;
  for (int i = 0; i < kNumKernels; ++i) {
    rows.insert({static_cast<int>(kKernelTable[i].dtype), kKernelTable[i].head_dim, kKernelTable[i].general});
  }
  for (const auto& [dtype, head_dim, general] : rows) {
    EXPECT_EQ(rows.count({dtype, head_dim, !general}), 1u)
        << generator_dtype_name(static_cast<DataType>(dtype)) << " head_dim " << head_dim << " has only the "
        << (general ? "general" : "dense") << " variant";
  }
}

}  // namespace
}  // namespace flash::detail
