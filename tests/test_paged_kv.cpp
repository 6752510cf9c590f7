// The host's paged-KV helpers (src/host/paged_kv.h), which the GPU tests, the CLI and the
// benchmark use to build paged caches: every key lands where the page table says, pages are
// distinct, and unused rows get the fill value.
#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <stdexcept>
#include <vector>

#include "host/paged_kv.h"

namespace {

TEST(PagedKv, LayoutCoversEveryKeyWithDistinctPages) {
  const flash::host::PagedLayout layout = flash::host::make_paged_layout(3, 100, 16, 2, 7);
  EXPECT_EQ(layout.page_size, 16);
  EXPECT_EQ(layout.pages_per_entry, 7);   // ceil(100 / 16)
  EXPECT_EQ(layout.num_pages, 3 * 7 + 2);
  ASSERT_EQ(layout.page_table.size(), 21u);
  std::set<int32_t> pages(layout.page_table.begin(), layout.page_table.end());
  EXPECT_EQ(pages.size(), 21u) << "a page serves two slots";
  for (int32_t page : layout.page_table) {
    EXPECT_GE(page, 0);
    EXPECT_LT(page, layout.num_pages);
  }
  // Shuffled: the table is not the identity (seed 7).
  bool identity = true;
  for (size_t i = 0; i < layout.page_table.size(); ++i) identity = identity && layout.page_table[i] == int32_t(i);
  EXPECT_FALSE(identity);
}

TEST(PagedKv, ScatterPutsEachKeyAtItsPageRow) {
  const int batch = 2, seqlen_k = 37, row = 3;
  const flash::host::PagedLayout layout = flash::host::make_paged_layout(batch, seqlen_k, 16, 1, 11);
  std::vector<uint16_t> dense(size_t(batch) * seqlen_k * row);
  for (size_t i = 0; i < dense.size(); ++i) dense[i] = uint16_t(i + 1);
  const std::vector<uint16_t> paged = flash::host::scatter_pages(layout, dense, batch, seqlen_k, row, 0xBEEF);
  ASSERT_EQ(paged.size(), size_t(layout.num_pages) * 16 * row);
  size_t keys = 0;
  for (int b = 0; b < batch; ++b)
    for (int j = 0; j < seqlen_k; ++j) {
      const int page = layout.page_table[size_t(b) * layout.pages_per_entry + j / 16];
      for (int e = 0; e < row; ++e) {
        EXPECT_EQ(paged[(size_t(page) * 16 + j % 16) * row + e], dense[(size_t(b) * seqlen_k + j) * row + e]);
      }
      ++keys;
    }
  size_t filled = 0;
  for (uint16_t value : paged) filled += value == 0xBEEF;
  EXPECT_EQ(filled, paged.size() - keys * row) << "rows that hold no key must be the fill value";
}

TEST(PagedKv, RejectsBadShapes) {
  EXPECT_THROW(flash::host::make_paged_layout(0, 10, 16, 0, 1), std::invalid_argument);
  EXPECT_THROW(flash::host::make_paged_layout(1, 10, 0, 0, 1), std::invalid_argument);
  const flash::host::PagedLayout layout = flash::host::make_paged_layout(1, 10, 16, 0, 1);
  EXPECT_THROW(flash::host::scatter_pages(layout, std::vector<uint16_t>(5), 1, 10, 1, 0), std::invalid_argument);
}

}  // namespace
