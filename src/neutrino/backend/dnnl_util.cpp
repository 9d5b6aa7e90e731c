#include "neutrino/backend/dnnl_util.h"

#include <omp.h>

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

std::shared_ptr<void> cached(const std::string& problem,
                             const std::function<std::shared_ptr<void>()>& make) {
  static std::mutex mutex;
  static std::unordered_map<std::string, std::shared_ptr<void>> cache;
  // oneDNN plans a primitive's split over threads when it is created, so the thread count it is
  // made for (which follows the machine's load) is part of the key.
  std::string key(1, static_cast<char>(omp_get_max_threads()));
  key += problem;
  {
    std::lock_guard<std::mutex> lock(mutex);
    auto found = cache.find(key);
    if (found != cache.end()) return found->second;
  }
  // Made outside the lock: two threads may both make it, and the first one stored wins.
  std::shared_ptr<void> made = make();
  std::lock_guard<std::mutex> lock(mutex);
  return cache.emplace(key, std::move(made)).first->second;
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
  struct Entry {
    std::vector<char> source;
    Tensor converted;
  };
  static std::mutex mutex;
  static std::map<std::pair<const Convert*, const void*>, Entry> entries;
  static size_t bytes_held = 0;
  constexpr size_t kMaxBytes = size_t{256} << 20;  // beyond this the cache starts again
  const size_t bytes = from_.get_size();
  const void* source = from.get_data_handle();
  const std::pair<const Convert*, const void*> key{this, source};
  {
    std::lock_guard<std::mutex> lock(mutex);
    auto found = entries.find(key);
    if (found != entries.end() && std::memcmp(found->second.source.data(), source, bytes) == 0) {
      keep = found->second.converted;
      return bound(this, 2, to_, keep.data<float>());
    }
  }
  const dnnl::memory to = (*this)(from, keep);
  Entry entry{std::vector<char>(static_cast<const char*>(source),
                                static_cast<const char*>(source) + bytes),
              keep};
  std::lock_guard<std::mutex> lock(mutex);
  if (bytes_held + 2 * bytes > kMaxBytes) {
    entries.clear();
    bytes_held = 0;
  }
  auto [at, inserted] = entries.try_emplace(key);
  if (!inserted) bytes_held -= at->second.source.size() * 2;
  at->second = std::move(entry);
  bytes_held += 2 * bytes;
  return to;
}

void Convert::into(const dnnl::memory& from, const dnnl::memory& to) const {
  if (!needed_) {
    std::memcpy(to.get_data_handle(), from.get_data_handle(), to_.get_size());
    return;
  }
  reorder_.execute(stream(), {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}});
}

}  // namespace neutrino::kernels::dnnl_util
