// oneDNN plumbing shared by the backend's primitive-based kernels (private to backend/).
// Primitive descriptors cost tens of microseconds to create, so each distinct problem creates
// its primitives once and keeps them in a process-wide cache.
#pragma once

#include <dnnl.hpp>
#include <functional>
#include <memory>
#include <string>

#include "neutrino/tensor/tensor.h"

namespace neutrino::kernels::dnnl_util {

dnnl::engine& engine();
// A stream per thread, so concurrent inference threads never share one.
dnnl::stream& stream();

// The cached object for `key`, made by `make` the first time (thread-safe).
std::shared_ptr<void> cached(const std::string& key, const std::function<std::shared_ptr<void>()>& make);
template <class T>
std::shared_ptr<T> cached(const std::string& key, const std::function<std::shared_ptr<T>()>& make) {
  return std::static_pointer_cast<T>(
      cached(key, std::function<std::shared_ptr<void>()>([&] { return std::shared_ptr<void>(make()); })));
}

// The two process-wide caches here, for neutrino::runtime: the primitives of cached() and the
// converted weights of Convert::constant().
struct CacheCounts {
  size_t entries = 0;
  uint64_t hits = 0, misses = 0;
  size_t bytes = 0;  // held data, where the cache knows it (constant weights)
};
CacheCounts primitive_cache_counts();
CacheCounts constant_cache_counts();
// Empties both, and makes every thread drop its bound() memories at its next call (they are
// keyed by the address of a cached object, which a new object may reuse). Objects in use stay
// alive through their shared_ptr.
void clear_caches();

// A buffer of at least `bytes` from our caching allocator, kept alive by the returned tensor.
Tensor scratch(size_t bytes);

// A memory object for `data` in layout `md`. Creating one costs a heap allocation, so each
// thread keeps one per (owner, slot) and points it at each call's buffer; `owner` is the cached
// primitive (or Convert) it serves and `md` must be the same on every call for that pair.
dnnl::memory bound(const void* owner, int slot, const dnnl::memory::desc& md, const void* data);

// Every primitive runs with a scratchpad of its caller's (scratchpad_mode::user): with the
// library's own, oneDNN (built without DNNL_ENABLE_CONCURRENT_EXEC, as Debian's is) gives a
// primitive one scratchpad, and two threads running the same cached primitive (inference on a
// shared model) overwrite each other's scratch space.
dnnl::primitive_attr user_scratchpad_attr();
// Memory of `desc` for one execution, in a buffer kept alive by `keep` (the caching allocator
// makes it cheap); an empty desc gives an empty memory.
dnnl::memory scratchpad_for(const dnnl::memory::desc& desc, Tensor& keep);

// A layout (and data type) change between the caller's memory and what a primitive wants,
// made once per problem: a no-op when the two agree.
class Convert {
 public:
  Convert() = default;
  Convert(const dnnl::memory::desc& from, const dnnl::memory::desc& to);
  // `from` in the target layout: itself, or a converted copy whose buffer lives in `keep`.
  dnnl::memory operator()(const dnnl::memory& from, Tensor& keep) const;
  // Converts into existing memory (for outputs the caller owns).
  void into(const dnnl::memory& from, const dnnl::memory& to) const;
  bool needed() const { return needed_; }
  // operator() for data that rarely changes (inference weights): the converted copy is kept
  // beside a copy of its source and reused while the source bytes are the same. Comparing
  // bytes costs a fraction of a blocking reorder and can never serve stale weights.
  dnnl::memory constant(const dnnl::memory& from, Tensor& keep) const;

  // For an output the caller owns (this Convert goes from the primitive's layout to the
  // caller's): where the primitive should write it, `user` itself when the layouts agree, else
  // scratch kept in `keep`. finish() then moves it into `user`.
  dnnl::memory output_for(const dnnl::memory& user, Tensor& keep) const;
  void finish(const dnnl::memory& written, const dnnl::memory& user) const {
    if (needed_) into(written, user);
  }

 private:
  bool needed_ = false;
  dnnl::memory::desc from_, to_;
  dnnl::reorder reorder_;
};

}  // namespace neutrino::kernels::dnnl_util
