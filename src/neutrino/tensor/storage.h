// A reference-counted, 64-byte aligned block of memory that tensors view.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace neutrino {

class Storage {
 public:
  static constexpr size_t kAlignment = 64;
  // Uninitialized unless `zero_fill`: most kernels overwrite every byte anyway.
  explicit Storage(size_t nbytes, bool zero_fill = false);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  // Blocks taken from the system so far (not counting reuse of cached blocks), for benchmarks.
  static uint64_t allocations();

  void* data() { return data_; }
  const void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
};

}  // namespace neutrino
