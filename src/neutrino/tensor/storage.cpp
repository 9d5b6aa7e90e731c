#include "neutrino/tensor/storage.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

namespace neutrino {

namespace {
std::atomic<uint64_t> allocation_count{0};

// Freed blocks kept for reuse by size. A training step allocates the same sizes every time;
// without this each large block goes back to the system (munmap) and the next step pays for
// fresh, kernel-zeroed pages, which measured as a third of CNN training time. Small blocks are
// kept too, so a steady-state step allocates no tensor memory at all.
class BlockCache {
 public:
  static constexpr size_t kMaxCached = 1ull << 30;  // bytes held for reuse at most

  void* take(size_t size) {
    std::lock_guard lock(mutex_);
    auto it = free_.find(size);
    if (it == free_.end() || it->second.empty()) return nullptr;
    void* block = it->second.back();
    it->second.pop_back();
    cached_ -= size;
    --blocks_;
    ++hits_;
    return block;
  }

  Storage::CacheStats stats() {
    std::lock_guard lock(mutex_);
    return {blocks_, cached_, hits_, allocation_count.load(std::memory_order_relaxed)};
  }

  void release() {
    std::lock_guard lock(mutex_);
    for (auto& [size, blocks] : free_) {
      for (void* block : blocks) std::free(block);
    }
    free_.clear();
    cached_ = 0;
    blocks_ = 0;
  }

  // Keeps the block, or returns false when the cache is full (the caller frees it).
  bool give(void* block, size_t size) {
    std::lock_guard lock(mutex_);
    if (cached_ + size > kMaxCached) return false;
    free_[size].push_back(block);
    cached_ += size;
    ++blocks_;
    return true;
  }

 private:
  std::mutex mutex_;
  std::unordered_map<size_t, std::vector<void*>> free_;
  size_t cached_ = 0;
  size_t blocks_ = 0;
  uint64_t hits_ = 0;
};

// Never destroyed: storages owned by other statics may be released after main returns.
BlockCache& block_cache() {
  static BlockCache* cache = new BlockCache;
  return *cache;
}

size_t block_size(size_t nbytes) {
  // aligned_alloc wants a size that is a multiple of the alignment, and never zero.
  const size_t rounded = (nbytes + Storage::kAlignment - 1) / Storage::kAlignment * Storage::kAlignment;
  return rounded == 0 ? Storage::kAlignment : rounded;
}
}  // namespace

uint64_t Storage::allocations() { return allocation_count.load(std::memory_order_relaxed); }
Storage::CacheStats Storage::cache_stats() { return block_cache().stats(); }
void Storage::release_cached() { block_cache().release(); }

Storage::Storage(size_t nbytes, bool zero_fill) : nbytes_(nbytes) {
  const size_t size = block_size(nbytes);
  data_ = block_cache().take(size);
  if (data_ == nullptr) {
    data_ = std::aligned_alloc(kAlignment, size);
    if (data_ == nullptr) throw std::bad_alloc();
    allocation_count.fetch_add(1, std::memory_order_relaxed);
  }
  if (zero_fill) std::memset(data_, 0, size);
}

Storage::~Storage() {
  const size_t size = block_size(nbytes_);
  if (block_cache().give(data_, size)) return;
  std::free(data_);
}

}  // namespace neutrino
