// Process-wide state (issue 11 item 7): the caches can be inspected and emptied, also while other
// threads compute, and the global generator is safe to draw from on several threads.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <set>
#include <thread>
#include <vector>

#include "neutrino/neutrino.h"

using namespace neutrino;

namespace {
runtime::CacheStats stats_of(const std::string& name) {
  for (const runtime::CacheStats& s : runtime::cache_stats()) {
    if (s.name == name) return s;
  }
  ADD_FAILURE() << "no cache named " << name;
  return {};
}

// A float32 convolution (oneDNN primitives), in inference (its weights' reorder is cached).
std::vector<float> convolve(const Tensor& x, const Tensor& w, const Tensor& b) {
  NoGradGuard no_grad;
  return conv2d(x, w, b, {.pad_top = 1, .pad_left = 1, .pad_bottom = 1, .pad_right = 1}).to_vector<float>();
}

// Within rounding: the thread count follows the machine's load, and a primitive made for another
// count may sum in another order. A primitive or weight reorder used after it was freed, or a
// bound() memory of another problem, gives garbage instead.
bool close(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::abs(a[i] - b[i]) > 1e-4f * std::max(1.0f, std::abs(b[i]))) return false;
  }
  return true;
}
}  // namespace

TEST(Runtime, CacheStatsCountAndClearEmptiesEveryCache) {
  std::vector<std::string> names;
  for (const auto& s : runtime::cache_stats()) names.push_back(s.name);
  EXPECT_EQ(names, (std::vector<std::string>{"primitives", "constant_weights", "tensor_blocks"}));

  manual_seed(3);
  const Tensor x = Tensor::normal({4, 8, 12, 12}), w = Tensor::normal({16, 8, 3, 3}), b = Tensor::normal({16});
  const std::vector<float> first = convolve(x, w, b);
  const runtime::CacheStats after_first = stats_of("primitives");
  EXPECT_GT(after_first.entries, 0u);
  const std::vector<float> second = convolve(x, w, b);
  const runtime::CacheStats after_second = stats_of("primitives");
  EXPECT_EQ(after_second.entries, after_first.entries);  // the same problem: nothing new made
  EXPECT_GT(after_second.hits, after_first.hits);
  EXPECT_EQ(after_second.misses, after_first.misses);
  EXPECT_EQ(second, first);
  EXPECT_GT(stats_of("constant_weights").hits + stats_of("constant_weights").misses, 0u);

  runtime::clear_caches();
  for (const auto& s : runtime::cache_stats()) {
    EXPECT_EQ(s.entries, 0u) << s.name;
    EXPECT_EQ(s.bytes, 0u) << s.name;
  }
  // Counters keep counting; the caches refill, and give the same result.
  EXPECT_GE(stats_of("primitives").hits, after_second.hits);
  EXPECT_EQ(convolve(x, w, b), first);
  EXPECT_GT(stats_of("primitives").entries, 0u);
  EXPECT_GT(stats_of("primitives").misses, after_second.misses);

  // Tensor blocks: a freed tensor's block is held, and reused by the next of its size.
  runtime::clear_caches();
  { Tensor t = Tensor::empty({1000}); }
  EXPECT_EQ(stats_of("tensor_blocks").entries, 1u);
  EXPECT_GE(stats_of("tensor_blocks").bytes, 4000u);
  const uint64_t hits = stats_of("tensor_blocks").hits;
  { Tensor t = Tensor::empty({1000}); }
  EXPECT_EQ(stats_of("tensor_blocks").hits, hits + 1);
}

// Workers run convolutions whose weights require grad (the training primitives) and inference
// matmuls, both through the primitive cache and bound(), while the main thread clears it.
TEST(Runtime, ClearingWhileOtherThreadsComputeIsSafe) {
  manual_seed(4);
  const Tensor x = Tensor::normal({2, 4, 10, 10}), b = Tensor::normal({8});
  Tensor w = Tensor::normal({8, 4, 3, 3});
  w.set_requires_grad();
  const Tensor a = Tensor::normal({16, 64}), m = Tensor::normal({64, 32});
  auto compute = [&] {
    std::vector<float> out = conv2d(x, w, b, {.pad_top = 1, .pad_left = 1, .pad_bottom = 1, .pad_right = 1})
                                 .detach()
                                 .to_vector<float>();
    NoGradGuard no_grad;
    const std::vector<float> product = matmul(a, m).to_vector<float>();
    out.insert(out.end(), product.begin(), product.end());
    return out;
  };
  const std::vector<float> expected = compute();
  std::atomic<bool> stop{false};
  std::atomic<int> wrong{0}, runs{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < 3; ++t) {
    workers.emplace_back([&] {
      while (!stop.load()) {
        if (!close(compute(), expected)) ++wrong;
        ++runs;
      }
    });
  }
  for (int i = 0; i < 200; ++i) {
    runtime::clear_caches();
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  stop = true;
  for (auto& worker : workers) worker.join();
  EXPECT_GT(runs.load(), 0);
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_TRUE(close(compute(), expected));
}

// Found while writing the test above, not caused by the caches (it fails without clear_caches):
// inference convolutions (forward_inference primitives, weights that need no grad) run from
// several threads at once sometimes give wrong values, though README says inference on a shared
// model is thread-safe. Disabled until the backend fixes it; run with
// --gtest_also_run_disabled_tests --gtest_filter='*ConcurrentInference*'.
TEST(Runtime, ConcurrentInferenceConvolutionsAgree) {
  manual_seed(4);
  const Tensor x = Tensor::normal({2, 4, 10, 10}), w = Tensor::normal({8, 4, 3, 3}), b = Tensor::normal({8});
  const std::vector<float> expected = convolve(x, w, b);
  std::atomic<int> wrong{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < 3; ++t) {
    workers.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        if (!close(convolve(x, w, b), expected)) ++wrong;
      }
    });
  }
  for (auto& worker : workers) worker.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST(GlobalGenerator, OneThreadAfterASeedContinuesTheSeededStream) {
  Generator reference(11);
  std::vector<uint64_t> expected(5);
  for (auto& v : expected) v = reference.next_u64();
  manual_seed(11);
  std::vector<uint64_t> got(5);
  // Drawn on another thread: still the seeded stream, as when the generator was one object.
  std::thread([&] {
    for (auto& v : got) v = global_generator().next_u64();
  }).join();
  EXPECT_EQ(got, expected);
  // A second thread gets a stream of its own, not a copy of the first.
  std::vector<uint64_t> other(5);
  std::thread([&] {
    for (auto& v : other) v = global_generator().next_u64();
  }).join();
  EXPECT_NE(other, expected);
  // Seeding again restarts: the next thread to draw (this one) continues Generator(11).
  manual_seed(11);
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(global_generator().next_u64(), expected[i]);
}

TEST(GlobalGenerator, ManyThreadsDrawingAndSeedingAtOnce) {
  // Each thread's stream must stay a stream: what a thread draws after reading its state is
  // exactly what a Generator restored to that state draws. A shared generator without a lock
  // interleaves and tears its state, which breaks this (and races, for sanitizers).
  constexpr int kThreads = 8;
  constexpr int kDraws = 20000;
  std::atomic<int> broken{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  std::vector<uint64_t> firsts(kThreads);
  manual_seed(99);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      while (!go.load()) std::this_thread::yield();
      for (int round = 0; round < 5; ++round) {
        Generator& gen = global_generator();
        const std::string state = gen.state();
        std::vector<double> drawn(kDraws);
        for (int i = 0; i < kDraws; ++i) drawn[i] = i % 3 == 0 ? gen.uniform() : i % 3 == 1 ? gen.normal()
                                                                                : static_cast<double>(gen.below(10));
        Generator replay;
        replay.set_state(state);
        for (int i = 0; i < kDraws; ++i) {
          const double again = i % 3 == 0 ? replay.uniform() : i % 3 == 1 ? replay.normal()
                                                                          : static_cast<double>(replay.below(10));
          if (again != drawn[i]) {
            ++broken;
            break;
          }
          if (i % 3 == 0 && (drawn[i] < 0 || drawn[i] >= 1)) ++broken;
        }
        if (round == 0) firsts[t] = static_cast<uint64_t>(drawn[0] * 0x1p53);
      }
    });
  }
  go = true;
  // Reseeding from another thread meanwhile: each thread picks the new seed at its next call.
  std::thread seeder([] {
    for (int i = 0; i < 50; ++i) {
      manual_seed(static_cast<uint64_t>(i));
      std::this_thread::yield();
    }
  });
  for (auto& thread : threads) thread.join();
  seeder.join();
  EXPECT_EQ(broken.load(), 0);
}

TEST(GlobalGenerator, ThreadsSeededTogetherGetDistinctStreams) {
  manual_seed(5);
  constexpr int kThreads = 6;
  std::vector<uint64_t> first(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] { first[t] = global_generator().next_u64(); });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(std::set<uint64_t>(first.begin(), first.end()).size(), static_cast<size_t>(kThreads));
  EXPECT_EQ(std::count(first.begin(), first.end(), Generator(5).next_u64()), 1);  // one continues the seed
}
