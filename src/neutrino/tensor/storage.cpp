#include "neutrino/tensor/storage.h"

#include <cstdlib>
#include <cstring>
#include <new>

namespace neutrino {

Storage::Storage(size_t nbytes, bool zero_fill) : nbytes_(nbytes) {
  // aligned_alloc wants a size that is a multiple of the alignment, and never zero.
  const size_t rounded = (nbytes + kAlignment - 1) / kAlignment * kAlignment;
  data_ = std::aligned_alloc(kAlignment, rounded == 0 ? kAlignment : rounded);
  if (data_ == nullptr) throw std::bad_alloc();
  if (zero_fill) std::memset(data_, 0, rounded == 0 ? kAlignment : rounded);
}

Storage::~Storage() { std::free(data_); }

}  // namespace neutrino
