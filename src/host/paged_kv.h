// Paged KV caches on the host (CLI, benchmark, tests): a page table that scatters every batch
// entry's keys over shuffled pages, and the copy of a dense cache into that layout. Not part of the
// library.
#pragma once

#include <cstdint>
#include <vector>

namespace flash::host {

// Pages of page_size keys: entry b's key j lives in page page_table[b * pages_per_entry + j /
// page_size], row j % page_size. Every page belongs to at most one (entry, slot); spare_pages
// more pages belong to none.
struct PagedLayout {
  int page_size = 0;
  int pages_per_entry = 0;   // the page table's row length: ceil(seqlen_k / page_size)
  int num_pages = 0;
  std::vector<int32_t> page_table;   // [batch, pages_per_entry]
};

// A random assignment (from `seed`) of batch * ceil(seqlen_k / page_size) + spare_pages pages.
PagedLayout make_paged_layout(int batch, int seqlen_k, int page_size, int spare_pages, uint64_t seed);

// Dense [batch, seqlen_k, row_elems] elements to the paged [num_pages, page_size, row_elems] layout;
// rows that hold no key (the last page's tail, spare pages) are `fill`.
std::vector<uint16_t> scatter_pages(const PagedLayout& layout, const std::vector<uint16_t>& dense, int batch,
                                    int seqlen_k, int64_t row_elems, uint16_t fill);

}  // namespace flash::host
