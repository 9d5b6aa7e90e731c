#include "neutrino/backend/dnnl_util.h"

#include <omp.h>

#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace neutrino::kernels::dnnl_util {

dnnl::engine& engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

dnnl::stream& stream() {
  thread_local dnnl::stream s(engine());
  return s;
}

namespace {
struct PrimitiveCache {
  std::mutex mutex;
  std::unordered_map<std::string, std::shared_ptr<void>> entries;
  uint64_t hits = 0, misses = 0;
};
PrimitiveCache& primitive_cache() {
  static PrimitiveCache cache;
  return cache;
}

struct ConstantEntry {
  std::vector<char> source;
  Tensor converted;
};
struct ConstantCache {
  std::mutex mutex;
  std::map<std::pair<const Convert*, const void*>, ConstantEntry> entries;
  size_t bytes_held = 0;
  uint64_t hits = 0, misses = 0;
};
ConstantCache& constant_cache() {
  static ConstantCache cache;
  return cache;
}

// Bumped by clear_caches(); each thread's bound() memories belong to one generation.
std::atomic<uint64_t> cache_generation{0};
}  // namespace

std::shared_ptr<void> cached(const std::string& problem,
                             const std::function<std::shared_ptr<void>()>& make) {
  PrimitiveCache& cache = primitive_cache();
  // oneDNN plans a primitive's split over threads when it is created, so the thread count it is
  // made for (which follows the machine's load) is part of the key.
  std::string key(1, static_cast<char>(omp_get_max_threads()));
  key += problem;
  {
    std::lock_guard<std::mutex> lock(cache.mutex);
    auto found = cache.entries.find(key);
    if (found != cache.entries.end()) {
      ++cache.hits;
      return found->second;
    }
    ++cache.misses;
  }
  // Made outside the lock: two threads may both make it, and the first one stored wins.
  std::shared_ptr<void> made = make();
  std::lock_guard<std::mutex> lock(cache.mutex);
  return cache.entries.emplace(key, std::move(made)).first->second;
}

CacheCounts primitive_cache_counts() {
  PrimitiveCache& cache = primitive_cache();
  std::lock_guard<std::mutex> lock(cache.mutex);
  return {cache.entries.size(), cache.hits, cache.misses, 0};
}

CacheCounts constant_cache_counts() {
  ConstantCache& cache = constant_cache();
  std::lock_guard<std::mutex> lock(cache.mutex);
  return {cache.entries.size(), cache.hits, cache.misses, cache.bytes_held};
}

void clear_caches() {
  // The generation moves first, under the primitive cache's lock: a thread that gets a new
  // object from cached() after the clear then also sees the new generation in bound().
  std::unordered_map<std::string, std::shared_ptr<void>> primitives;
  std::map<std::pair<const Convert*, const void*>, ConstantEntry> constants;
  {
    std::lock_guard<std::mutex> lock(primitive_cache().mutex);
    cache_generation.fetch_add(1, std::memory_order_acq_rel);
    primitives.swap(primitive_cache().entries);
  }
  {
    std::lock_guard<std::mutex> lock(constant_cache().mutex);
    constants.swap(constant_cache().entries);
    constant_cache().bytes_held = 0;
  }
  // Destroyed here, outside the locks.
}

dnnl::memory bound(const void* owner, int slot, const dnnl::memory::desc& md, const void* data) {
  struct Key {
    const void* owner;
    int slot;
    bool operator==(const Key&) const = default;
  };
  struct Hash {
    size_t operator()(const Key& k) const {
      return std::hash<const void*>()(k.owner) * 31 + static_cast<size_t>(k.slot);
    }
  };
  thread_local std::unordered_map<Key, dnnl::memory, Hash> memories;
  thread_local uint64_t generation = 0;
  const uint64_t current = cache_generation.load(std::memory_order_acquire);
  if (generation != current) {
    memories.clear();
    generation = current;
  }
  void* handle = const_cast<void*>(data);
  auto [at, inserted] = memories.try_emplace(Key{owner, slot});
  if (inserted) {
    at->second = dnnl::memory(md, engine(), handle);
  } else {
    at->second.set_data_handle(handle);
  }
  return at->second;
}

Tensor scratch(size_t bytes) {
  return Tensor::empty({static_cast<int64_t>((bytes + 3) / 4)}, DType::kFloat32);
}

Convert::Convert(const dnnl::memory::desc& from, const dnnl::memory::desc& to)
    : needed_(from != to), from_(from), to_(to) {
  if (needed_) reorder_ = dnnl::reorder(dnnl::reorder::primitive_desc(engine(), from, engine(), to));
}

dnnl::memory Convert::operator()(const dnnl::memory& from, Tensor& keep) const {
  if (!needed_) return from;
  keep = scratch(to_.get_size());
  const dnnl::memory to = bound(this, 0, to_, keep.data<float>());
  into(from, to);
  return to;
}

dnnl::memory Convert::output_for(const dnnl::memory& user, Tensor& keep) const {
  if (!needed_) return user;
  keep = scratch(from_.get_size());
  return bound(this, 1, from_, keep.data<float>());
}

dnnl::memory Convert::constant(const dnnl::memory& from, Tensor& keep) const {
  if (!needed_) return from;
  ConstantCache& cache = constant_cache();
  constexpr size_t kMaxBytes = size_t{256} << 20;  // beyond this the cache starts again
  const size_t bytes = from_.get_size();
  const void* source = from.get_data_handle();
  const std::pair<const Convert*, const void*> key{this, source};
  {
    std::lock_guard<std::mutex> lock(cache.mutex);
    auto found = cache.entries.find(key);
    if (found != cache.entries.end() &&
        std::memcmp(found->second.source.data(), source, bytes) == 0) {
      ++cache.hits;
      keep = found->second.converted;
      return bound(this, 2, to_, keep.data<float>());
    }
    ++cache.misses;
  }
  const dnnl::memory to = (*this)(from, keep);
  ConstantEntry entry{std::vector<char>(static_cast<const char*>(source),
                                        static_cast<const char*>(source) + bytes),
                      keep};
  std::lock_guard<std::mutex> lock(cache.mutex);
  if (cache.bytes_held + 2 * bytes > kMaxBytes) {
    cache.entries.clear();
    cache.bytes_held = 0;
  }
  auto [at, inserted] = cache.entries.try_emplace(key);
  if (!inserted) cache.bytes_held -= at->second.source.size() * 2;
  at->second = std::move(entry);
  cache.bytes_held += 2 * bytes;
  return to;
}

void Convert::into(const dnnl::memory& from, const dnnl::memory& to) const {
  if (!needed_) {
    std::memcpy(to.get_data_handle(), from.get_data_handle(), to_.get_size());
    return;
  }
  reorder_.execute(stream(), {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}});
}

dnnl::primitive_attr user_scratchpad_attr() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

dnnl::memory scratchpad_for(const dnnl::memory::desc& desc, Tensor& keep) {
  const size_t bytes = desc.get_size();
  if (bytes == 0) return dnnl::memory(desc, engine(), nullptr);
  keep = scratch(bytes);
  return dnnl::memory(desc, engine(), keep.raw_data());
}

}  // namespace neutrino::kernels::dnnl_util
