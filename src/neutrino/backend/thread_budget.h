// How many threads parallel work may use right now. On an idle machine that is every core this
// process may run on; when other processes keep cores busy, it is the cores they leave free.
//
// Why: OpenMP threads (ours and oneDNN's) meet at a barrier at the end of every parallel loop,
// and libgomp's waiting threads spin. With another CPU-bound process on a 2-core machine, two
// threads plus that process share two cores, so at nearly every barrier one of our threads waits
// for a partner the scheduler has taken off its core: a training epoch ran ~4x slower while the
// CPU we lost was half. One thread on the one free core loses at most that half. Setting
// OMP_WAIT_POLICY=passive instead cost 30-45% on an idle machine, and would have to be set by
// the user before the process starts (libgomp reads it once, at load).
#pragma once

#include <cstdint>
#include <string_view>

namespace neutrino::kernels {

// The thread budget for the calling thread: re-measures the machine's load when the last
// measurement is older than the sampling interval (100 ms; one clock read otherwise) and sets the
// calling thread's OpenMP thread count to it, so our loops and oneDNN's primitives (whose cache
// keys hold the count) follow. Called at the backend's parallel entry points. Never above the
// calling thread's own limit.
int follow_load();

// The most threads the calling thread's parallel work may use (0: no limit of its own); the
// public face of this is runtime::ThreadLimit.
void set_thread_limit(int threads);
int thread_limit();

// Turns following the load on (the default, unless OMP_NUM_THREADS is set) or off (then the budget is the starting OpenMP
// thread count, as if the machine were idle). For tests and benchmarks that need fixed counts.
void set_follow_load(bool enabled);

// The decision, without measuring: `max_threads` capped by the cores left after other processes
// kept `others_busy_cores` busy (a core counts once it is more than half busy); at least 1.
int threads_for_load(int max_threads, int cores, double others_busy_cores);

// Total busy CPU time in clock ticks (user, nice, system, irq, softirq) of the `cpu<N>` lines of
// a /proc/stat text, for the CPUs that `wanted(N)` accepts; -1 when no such line parses.
int64_t busy_ticks_from_proc_stat(std::string_view text, bool (*wanted)(int cpu, const void* ctx),
                                  const void* ctx);

// What the last measurement saw, for benchmarks and tests.
struct LoadSample {
  int threads = 0;             // the budget it gave
  int cores = 0;               // CPUs this process may run on
  double others_busy_cores = 0;  // cores other processes kept busy over the interval
  int64_t samples = 0;         // measurements taken so far
};
LoadSample last_load_sample();

}  // namespace neutrino::kernels
