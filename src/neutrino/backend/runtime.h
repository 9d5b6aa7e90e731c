// The process-wide state a user can see and reset: the caches that make repeated work cheap.
//
// Three caches live for the whole process, shared by every thread:
//   "primitives"       oneDNN primitives and reorders, one per problem (shape, layout, thread
//                      count); creating one costs tens of microseconds
//   "constant_weights" inference weights converted to oneDNN's blocked layout, reused while the
//                      source bytes are unchanged (at most 256 MB, then it starts again)
//   "tensor_blocks"    freed tensor memory kept for reuse by size (at most 1 GiB), so a steady
//                      training step takes no memory from the system
// clear_caches() empties all three, e.g. between models of very different shapes in one
// long-lived process, or before measuring memory. It is safe while other threads run: objects
// in use stay alive until their call ends, and the caches refill on demand. The random
// generator is not a cache; see core/random.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace neutrino::runtime {

struct CacheStats {
  std::string name;      // "primitives", "constant_weights", "tensor_blocks"
  size_t entries = 0;    // held now
  uint64_t hits = 0;     // lookups served from the cache, since the process started
  uint64_t misses = 0;   // lookups that had to make (or allocate) the object
  size_t bytes = 0;      // data held now, where the cache tracks it (0 for "primitives")
};

// One row per cache, in the order above.
std::vector<CacheStats> cache_stats();

// Empties every cache (hit and miss counts keep counting).
void clear_caches();

// Caps the threads that kernels called from this thread may use, for the guard's lifetime (the
// previous cap comes back after). ThreadLimit(1) keeps a helper thread's work on that thread:
// a data loader's worker uses it, as PyTorch's DataLoader workers call torch.set_num_threads(1),
// so that its copies never start a second OpenMP thread team competing with the training
// thread's for the same cores. Other threads are not affected.
class ThreadLimit {
 public:
  explicit ThreadLimit(int threads);
  ~ThreadLimit();
  ThreadLimit(const ThreadLimit&) = delete;
  ThreadLimit& operator=(const ThreadLimit&) = delete;

 private:
  int previous_;
};

}  // namespace neutrino::runtime
