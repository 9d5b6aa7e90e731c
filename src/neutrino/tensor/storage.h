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

  // The cache of freed blocks kept for reuse (process-wide; neutrino::runtime reports it).
  struct CacheStats {
    size_t blocks = 0;   // blocks held for reuse now
    size_t bytes = 0;    // their total size
    uint64_t hits = 0;   // allocations served from the cache
    uint64_t misses = 0; // allocations taken from the system (= allocations())
  };
  static CacheStats cache_stats();
  // Returns every held block to the system; the counters keep counting.
  static void release_cached();

  void* data() { return data_; }
  const void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
};

}  // namespace neutrino
