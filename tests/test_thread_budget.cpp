// The thread budget: how many threads parallel work uses when other processes load the machine.
#include <gtest/gtest.h>
#include <omp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <string>
#include <thread>

#include "neutrino/backend/runtime.h"
#include "neutrino/backend/thread_budget.h"
#include "neutrino/data/loader.h"
#include "neutrino/ops/ops.h"

namespace neutrino::kernels {
namespace {

bool every_cpu(int, const void*) { return true; }
bool only_cpu1(int cpu, const void*) { return cpu == 1; }

TEST(ThreadBudget, OthersBusyCoresAreTakenOffTheCount) {
  EXPECT_EQ(threads_for_load(2, 2, 0.0), 2);
  EXPECT_EQ(threads_for_load(2, 2, 0.4), 2);  // noise: less than half a core
  EXPECT_EQ(threads_for_load(2, 2, 0.6), 1);
  EXPECT_EQ(threads_for_load(2, 2, 1.0), 1);
  EXPECT_EQ(threads_for_load(2, 2, 7.0), 1);  // never below one
  EXPECT_EQ(threads_for_load(4, 4, 1.2), 3);
  EXPECT_EQ(threads_for_load(2, 8, 3.0), 2);  // capped by the starting OpenMP count
  EXPECT_EQ(threads_for_load(2, 2, std::nan("")), 2);
  EXPECT_EQ(threads_for_load(2, 2, -1.0), 2);
}

TEST(ThreadBudget, ParsesProcStat) {
  const std::string text =
      "cpu  30 2 10 500 6 4 2 0 0 0\n"
      "cpu0 10 1 5 250 3 2 1 0 0 0\n"
      "cpu1 20 1 5 250 3 2 1 9 0 0\n"
      "intr 12345 0 0\n"
      "ctxt 999\n";
  // user + nice + system + irq + softirq: 19 and 29 (idle, iowait and steal are not busy).
  EXPECT_EQ(busy_ticks_from_proc_stat(text, every_cpu, nullptr), 19 + 29);
  EXPECT_EQ(busy_ticks_from_proc_stat(text, only_cpu1, nullptr), 29);
  EXPECT_EQ(busy_ticks_from_proc_stat("cpu0 1 2\nnonsense\n", every_cpu, nullptr), -1);
  EXPECT_EQ(busy_ticks_from_proc_stat("", every_cpu, nullptr), -1);
  EXPECT_EQ(busy_ticks_from_proc_stat("cpu0 x 1 2 3 4 5 6\n", every_cpu, nullptr), -1);
}

// A busy-loop child process takes a core; within a few sampling intervals the budget drops to
// the cores it leaves free, and turning load-following off restores the full count.
TEST(ThreadBudget, FollowsABusyProcess) {
  const int full = omp_get_max_threads();
  set_follow_load(true);
  follow_load();
  const LoadSample idle = last_load_sample();
  if (idle.cores < 2 || full < 2) GTEST_SKIP() << "needs 2 cores";
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    alarm(10);  // never outlives a stuck test
    volatile uint64_t spins = 0;
    for (;;) spins = spins + 1;
  }
  int threads = full;
  for (int i = 0; i < 40 && threads == full; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    threads = follow_load();
  }
  const LoadSample busy = last_load_sample();
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  EXPECT_LT(threads, full);
  EXPECT_EQ(omp_get_max_threads(), threads);
  EXPECT_GE(busy.others_busy_cores, 0.5);
  set_follow_load(false);
  EXPECT_EQ(follow_load(), full);
  EXPECT_EQ(omp_get_max_threads(), full);
}

// A thread's limit caps its own budget only, and the guard gives the previous limit back.
TEST(ThreadBudget, ThreadLimitCapsOnlyTheCallingThread) {
  set_follow_load(false);
  const int full = follow_load();
  {
    const runtime::ThreadLimit one(1);
    EXPECT_EQ(follow_load(), 1);
    EXPECT_EQ(omp_get_max_threads(), 1);
    int other = 0;
    std::thread([&] { other = follow_load(); }).join();
    EXPECT_EQ(other, full);
    {
      const runtime::ThreadLimit none(0);
      EXPECT_EQ(follow_load(), full);
    }
    EXPECT_EQ(follow_load(), 1);
  }
  EXPECT_EQ(thread_limit(), 0);
  EXPECT_EQ(follow_load(), full);
  set_follow_load(true);
}

int threads_in_process() {
  int n = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/task")) ++n;
  return n;
}

// The loader's background thread runs its kernels on itself (a relu big enough to
// split over the cores on any other thread), so it never starts a second OpenMP team: while it
// works, the process has one thread more than before, not two.
TEST(ThreadBudget, DataLoaderWorkerStaysSerial) {
  set_follow_load(false);
  const int full = follow_load();
  if (full < 2) GTEST_SKIP() << "needs 2 OpenMP threads";
  const Tensor big = Tensor::ones({int64_t{1} << 20});
  EXPECT_EQ(sum(relu(big)).item(), 1 << 20);  // the main team exists
  const int before = threads_in_process();
  int seen_limit = -1, seen_threads = -1;
  auto observe = [&](const Tensor& x, Generator&) {
    EXPECT_EQ(sum(relu(big)).item(), 1 << 20);
    seen_limit = thread_limit();
    seen_threads = threads_in_process();
    return x;
  };
  data::DataLoader loader(Tensor::ones({4, 1}), Tensor(), {.batch_size = 2, .augment = observe});
  loader.start(0);
  while (loader.next()) {
  }
  EXPECT_EQ(seen_limit, 1);
  EXPECT_EQ(seen_threads, before + 1);
  EXPECT_EQ(thread_limit(), 0);
  EXPECT_EQ(follow_load(), full);
  set_follow_load(true);
}

}  // namespace
}  // namespace neutrino::kernels
