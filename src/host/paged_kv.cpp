#include "host/paged_kv.h"

#include <algorithm>
#include <numeric>
#include <random>
#include <stdexcept>

namespace flash::host {

PagedLayout make_paged_layout(int batch, int seqlen_k, int page_size, int spare_pages, uint64_t seed) {
  if (batch <= 0 || seqlen_k <= 0 || page_size <= 0 || spare_pages < 0) {
    throw std::invalid_argument("make_paged_layout: batch, seqlen_k and page_size must be positive");
  }
  PagedLayout layout;
  layout.page_size = page_size;
  layout.pages_per_entry = (seqlen_k + page_size - 1) / page_size;
  const int64_t used = int64_t{batch} * layout.pages_per_entry;
  if (used + spare_pages > INT32_MAX) throw std::invalid_argument("make_paged_layout: too many pages");
  layout.num_pages = static_cast<int>(used + spare_pages);
  std::vector<int32_t> pages(static_cast<size_t>(layout.num_pages));
  std::iota(pages.begin(), pages.end(), 0);
  std::mt19937_64 rng(seed);
  std::shuffle(pages.begin(), pages.end(), rng);
  layout.page_table.assign(pages.begin(), pages.begin() + used);
  return layout;
}

std::vector<uint16_t> scatter_pages(const PagedLayout& layout, const std::vector<uint16_t>& dense, int batch,
                                    int seqlen_k, int64_t row_elems, uint16_t fill) {
  if (dense.size() != static_cast<size_t>(int64_t{batch} * seqlen_k * row_elems)) {
    throw std::invalid_argument("scatter_pages: dense cache is not [batch, seqlen_k, row_elems]");
  }
  std::vector<uint16_t> paged(static_cast<size_t>(int64_t{layout.num_pages} * layout.page_size * row_elems), fill);
  for (int b = 0; b < batch; ++b) {
    for (int j = 0; j < seqlen_k; ++j) {
      const int64_t page = layout.page_table[static_cast<size_t>(int64_t{b} * layout.pages_per_entry + j / layout.page_size)];
      const int64_t to = (page * layout.page_size + j % layout.page_size) * row_elems;
      const int64_t from = (int64_t{b} * seqlen_k + j) * row_elems;
      std::copy(dense.begin() + from, dense.begin() + from + row_elems, paged.begin() + to);
    }
  }
  return paged;
}

}  // namespace flash::host
