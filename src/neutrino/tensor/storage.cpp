#include "neutrino/tensor/storage.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>

namespace neutrino {

namespace {
std::atomic<uint64_t> allocation_count{0};
}

uint64_t Storage::allocations() { return allocation_count.load(std::memory_order_relaxed); }

Storage::Storage(size_t nbytes, bool zero_fill) : nbytes_(nbytes) {
  // aligned_alloc wants a size that is a multiple of the alignment, and never zero.
  const size_t rounded = (nbytes + kAlignment - 1) / kAlignment * kAlignment;
  data_ = std::aligned_alloc(kAlignment, rounded == 0 ? kAlignment : rounded);
  if (data_ == nullptr) throw std::bad_alloc();
  allocation_count.fetch_add(1, std::memory_order_relaxed);
  if (zero_fill) std::memset(data_, 0, rounded == 0 ? kAlignment : rounded);
}

Storage::~Storage() { std::free(data_); }

}  // namespace neutrino
