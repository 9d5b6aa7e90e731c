#include "neutrino/backend/runtime.h"

#include "neutrino/backend/dnnl_util.h"
#include "neutrino/backend/thread_budget.h"
#include "neutrino/tensor/storage.h"

namespace neutrino::runtime {

namespace {
CacheStats row(const char* name, const kernels::dnnl_util::CacheCounts& c) {
  return {name, c.entries, c.hits, c.misses, c.bytes};
}
}  // namespace

std::vector<CacheStats> cache_stats() {
  const Storage::CacheStats blocks = Storage::cache_stats();
  return {row("primitives", kernels::dnnl_util::primitive_cache_counts()),
          row("constant_weights", kernels::dnnl_util::constant_cache_counts()),
          {"tensor_blocks", blocks.blocks, blocks.hits, blocks.misses, blocks.bytes}};
}

void clear_caches() {
  kernels::dnnl_util::clear_caches();
  // After the primitives: clearing them frees the scratch and weight tensors they held, whose
  // blocks go back to the block cache, which is emptied last.
  Storage::release_cached();
}

ThreadLimit::ThreadLimit(int threads) : previous_(kernels::thread_limit()) {
  kernels::set_thread_limit(threads);
}

ThreadLimit::~ThreadLimit() { kernels::set_thread_limit(previous_); }

}  // namespace neutrino::runtime
