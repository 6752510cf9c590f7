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
#include "api/launch_plan.h"

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
    case DataType::FP8_E4M3: return "fp8";
    case DataType::AUTO: break;
  }
  return "unknown";
}

// The generator's variant names.
std::string variant_name(const KernelEntry& entry) {
  switch (entry.variant) {
    case KernelVariant::kDense: return "dense";
    case KernelVariant::kGeneral: return "general";
    case KernelVariant::kDecode: return "decode";
    case KernelVariant::kDenseShort: return "dense_short";
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
  std::set<std::tuple<int, int, int>> seen;
  for (int i = 0; i < kNumKernels; ++i) {
    const KernelEntry& entry = kKernelTable[i];
    EXPECT_TRUE(seen.insert({static_cast<int>(entry.dtype), entry.head_dim, static_cast<int>(entry.variant)}).second)
        << "two rows for " << generator_dtype_name(entry.dtype) << " head_dim " << entry.head_dim << " "
        << variant_name(entry);
    EXPECT_NE(entry.launch, nullptr);
    ASSERT_NE(entry.name, nullptr);
    EXPECT_EQ(std::string(entry.name), generator_dtype_name(entry.dtype) + "_hdim" + std::to_string(entry.head_dim) +
                                           "_" + variant_name(entry) + "_sm90");
  }
}

// find_kernel decides support from the dense rows and then picks a variant: every (dtype,
// head_dim) must have the dense one, every 16-bit one the general one too (FP8 has dense kernels
// only, and the API rejects the general features for it); a decode kernel needs a general kernel
// of its width (the API uses it only when no more padding is involved).
TEST(Generator, EveryKernelHasDenseAndGeneralVariants) {
  std::set<std::tuple<int, int, int>> rows;
  for (int i = 0; i < kNumKernels; ++i) {
    rows.insert({static_cast<int>(kKernelTable[i].dtype), kKernelTable[i].head_dim,
                 static_cast<int>(kKernelTable[i].variant)});
  }
  const int dense = static_cast<int>(KernelVariant::kDense), general = static_cast<int>(KernelVariant::kGeneral);
  int decode_rows = 0;
  for (const auto& [dtype, head_dim, variant] : rows) {
    const std::string what = generator_dtype_name(static_cast<DataType>(dtype)) + " head_dim " + std::to_string(head_dim);
    EXPECT_EQ(rows.count({dtype, head_dim, dense}), 1u) << what << " has no dense variant";
    const bool fp8 = dtype == static_cast<int>(DataType::FP8_E4M3);
    EXPECT_EQ(rows.count({dtype, head_dim, general}), fp8 ? 0u : 1u)
        << what << (fp8 ? " has a general variant, which the API never selects" : " has no general variant");
    decode_rows += variant == static_cast<int>(KernelVariant::kDecode);
  }
  EXPECT_GT(decode_rows, 0) << "the decode variant has no kernel";
}

// A dense_short kernel is the dense kernel of its (dtype, head_dim) on smaller tiles (fewer query
// rows or fewer keys per block, neither more), and the API takes it for some calls.
TEST(Generator, DenseShortKernelsHaveSmallerTilesThanTheirDenseKernel) {
  int short_rows = 0;
  for (int i = 0; i < kNumKernels; ++i) {
    const KernelEntry& entry = kKernelTable[i];
    if (entry.variant != KernelVariant::kDenseShort) continue;
    ++short_rows;
    const KernelEntry* dense = nullptr;
    for (int j = 0; j < kNumKernels; ++j) {
      const KernelEntry& other = kKernelTable[j];
      if (other.variant == KernelVariant::kDense && other.dtype == entry.dtype && other.head_dim == entry.head_dim) dense = &other;
    }
    ASSERT_NE(dense, nullptr) << entry.name << " has no dense kernel";
    EXPECT_LE(entry.tiles().block_m, dense->tiles().block_m) << entry.name;
    EXPECT_LE(entry.tiles().block_n, dense->tiles().block_n) << entry.name;
    EXPECT_LT(entry.tiles().block_m * entry.tiles().block_n, dense->tiles().block_m * dense->tiles().block_n)
        << entry.name;
    EXPECT_GT(dense_short_max_seqlen(entry, /*masked=*/true), 0) << entry.name << " is never chosen";
  }
  EXPECT_GT(short_rows, 0) << "the dense_short variant has no kernel";
}

}  // namespace
}  // namespace flash::detail
