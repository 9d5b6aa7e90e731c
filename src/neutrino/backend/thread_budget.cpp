#include "neutrino/backend/thread_budget.h"

#include <fcntl.h>
#include <omp.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <mutex>

namespace neutrino::kernels {

namespace {

constexpr int64_t kIntervalNs = 100'000'000;  // between measurements

int64_t now_ns(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

bool in_affinity(int cpu, const void* ctx) {
  const auto* set = static_cast<const cpu_set_t*>(ctx);
  return cpu >= 0 && cpu < CPU_SETSIZE && CPU_ISSET(cpu, set);
}

// The whole /proc/stat into `buffer` (a few KB on small machines); its length, or -1.
int64_t read_proc_stat(char* buffer, size_t size) {
  const int fd = open("/proc/stat", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t used = 0;
  while (used < size) {
    const ssize_t got = read(fd, buffer + used, size - used);
    if (got <= 0) break;
    used += static_cast<size_t>(got);
  }
  close(fd);
  return static_cast<int64_t>(used);
}

class LoadMonitor {
 public:
  LoadMonitor() {
    max_threads_ = std::max(1, omp_get_max_threads());
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
      affinity_ = set;
      cores_ = std::max(1, CPU_COUNT(&set));
    } else {
      CPU_ZERO(&affinity_);
      for (int c = 0; c < max_threads_; ++c) CPU_SET(c, &affinity_);
      cores_ = max_threads_;
    }
    ticks_per_second_ = static_cast<double>(std::max<long>(1, sysconf(_SC_CLK_TCK)));
    budget_.store(max_threads_);
    last_ = {max_threads_, cores_, 0.0, 0};
    // A thread count the user asked for (OMP_NUM_THREADS) is kept as it is.
    const char* asked = std::getenv("OMP_NUM_THREADS");
    enabled_.store(asked == nullptr || *asked == '\0');
  }

  int budget(int64_t now) {
    if (!enabled_.load(std::memory_order_relaxed)) return max_threads_;
    if (now - last_ns_.load(std::memory_order_relaxed) >= kIntervalNs && mutex_.try_lock()) {
      std::lock_guard<std::mutex> lock(mutex_, std::adopt_lock);
      if (now - last_ns_.load(std::memory_order_relaxed) >= kIntervalNs) measure(now);
    }
    return budget_.load(std::memory_order_relaxed);
  }

  void set_enabled(bool enabled) {
    std::lock_guard<std::mutex> lock(mutex_);
    enabled_.store(enabled);
    budget_.store(max_threads_);
    history_size_ = 0;
    last_ns_.store(0);
  }

  int max_threads() const { return max_threads_; }

  LoadSample sample() {
    std::lock_guard<std::mutex> lock(mutex_);
    return last_;
  }

 private:
  // Others' busy time = all CPUs' busy time minus our own CPU time, over the wall-clock interval.
  void measure(int64_t now) {
    last_ns_.store(now, std::memory_order_relaxed);
    char buffer[1 << 16];
    const int64_t length = read_proc_stat(buffer, sizeof(buffer));
    const int64_t busy =
        length > 0 ? busy_ticks_from_proc_stat({buffer, static_cast<size_t>(length)}, in_affinity, &affinity_)
                   : -1;
    const int64_t own = now_ns(CLOCK_PROCESS_CPUTIME_ID);
    if (busy < 0) return;  // no /proc: stay at the full count
    // Over the last few measurements, not only the last one: /proc/stat counts in 10 ms ticks,
    // which alone could make a 100 ms interval look 0.4 cores busier than it was.
    const Reading reading{now, busy, own};
    // After a pause in parallel work, start the window afresh instead of averaging over the pause.
    if (history_size_ > 0 && now - history_[(history_next_ + kHistory - 1) % kHistory].wall > 10 * kIntervalNs) {
      history_size_ = 0;
    }
    if (history_size_ > 0) {
      const Reading& first = history_[(history_next_ + kHistory - history_size_) % kHistory];
      if (now > first.wall) {
        const double wall = static_cast<double>(now - first.wall) * 1e-9;
        const double all = static_cast<double>(busy - first.busy) / ticks_per_second_;
        const double mine = static_cast<double>(own - first.own) * 1e-9;
        const double others = std::max(0.0, (all - mine) / wall);
        const int threads = threads_for_load(max_threads_, cores_, others);
        budget_.store(threads, std::memory_order_relaxed);
        last_ = {threads, cores_, others, last_.samples + 1};
      }
    }
    history_[history_next_] = reading;
    history_next_ = (history_next_ + 1) % kHistory;
    history_size_ = std::min(history_size_ + 1, kHistory - 1);
  }

  int max_threads_ = 1, cores_ = 1;
  cpu_set_t affinity_{};
  double ticks_per_second_ = 100;
  std::atomic<bool> enabled_{true};
  std::atomic<int> budget_{1};
  std::atomic<int64_t> last_ns_{0};
  std::mutex mutex_;
  struct Reading {
    int64_t wall = 0, busy = 0, own = 0;
  };
  static constexpr int kHistory = 4;  // measurements kept: the window is the last three intervals
  Reading history_[kHistory];
  int history_next_ = 0, history_size_ = 0;
  LoadSample last_;
};

LoadMonitor& monitor() {
  static LoadMonitor m;
  return m;
}

}  // namespace

int threads_for_load(int max_threads, int cores, double others_busy_cores) {
  const double others = std::isfinite(others_busy_cores) ? std::max(0.0, others_busy_cores) : 0.0;
  const int taken = static_cast<int>(std::floor(others + 0.5));
  return std::clamp(std::min(max_threads, cores - taken), 1, std::max(1, max_threads));
}

int64_t busy_ticks_from_proc_stat(std::string_view text, bool (*wanted)(int, const void*),
                                  const void* ctx) {
  int64_t total = 0;
  bool any = false;
  while (!text.empty()) {
    const size_t end = std::min(text.find('\n'), text.size());
    std::string_view line = text.substr(0, end);
    text.remove_prefix(std::min(end + 1, text.size()));
    if (line.size() < 4 || line.substr(0, 3) != "cpu" || line[3] < '0' || line[3] > '9') continue;
    const char* p = line.data() + 3;
    const char* last = line.data() + line.size();
    int cpu = -1;
    auto [q, ec] = std::from_chars(p, last, cpu);
    if (ec != std::errc() || !wanted(cpu, ctx)) continue;
    // user nice system idle iowait irq softirq [steal guest guest_nice]
    int64_t fields[7] = {};
    int parsed = 0;
    for (; parsed < 7; ++parsed) {
      while (q < last && *q == ' ') ++q;
      auto [r, e] = std::from_chars(q, last, fields[parsed]);
      if (e != std::errc()) break;
      q = r;
    }
    if (parsed < 7) continue;
    total += fields[0] + fields[1] + fields[2] + fields[5] + fields[6];
    any = true;
  }
  return any ? total : -1;
}

namespace {
thread_local int limit_of_this_thread = 0;
}  // namespace

void set_thread_limit(int threads) { limit_of_this_thread = std::max(0, threads); }
int thread_limit() { return limit_of_this_thread; }

int follow_load() {
  thread_local int applied = 0;
  int threads = monitor().budget(now_ns(CLOCK_MONOTONIC_COARSE));
  if (limit_of_this_thread > 0) threads = std::min(threads, limit_of_this_thread);
  if (threads != applied) {
    omp_set_num_threads(threads);
    applied = threads;
  }
  return threads;
}

void set_follow_load(bool enabled) { monitor().set_enabled(enabled); }

LoadSample last_load_sample() { return monitor().sample(); }

}  // namespace neutrino::kernels
