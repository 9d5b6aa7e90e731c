// Fast kernels against the plain reference kernels they replace.
#include <gtest/gtest.h>

#include <cmath>
#include <utility>
#include <vector>

#include "neutrino/backend/kernels.h"
#include "neutrino/core/random.h"
#include "neutrino/ops/ops.h"

using namespace neutrino;

namespace {
std::vector<float> random_values(size_t n, Generator& gen) {
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(gen.normal());
  return v;
}
}  // namespace

TEST(KernelsGemm, FastMatchesReferenceForEveryLayout) {
  Generator gen(5);
  struct Case {
    int64_t m, n, k;
  };
  for (const Case& c : {Case{1, 1, 1}, Case{3, 5, 4}, Case{17, 33, 9}, Case{64, 48, 80},
                        Case{1, 200, 64}, Case{128, 1, 256}, Case{100, 130, 70}}) {
    for (bool trans_a : {false, true}) {
      for (bool trans_b : {false, true}) {
        for (bool accumulate : {false, true}) {
          const auto a = random_values(static_cast<size_t>(c.m * c.k), gen);
          const auto b = random_values(static_cast<size_t>(c.k * c.n), gen);
          const auto c0 = random_values(static_cast<size_t>(c.m * c.n), gen);
          // A stored (m, k) or, transposed, (k, m); likewise B.
          const int64_t a_row = trans_a ? 1 : c.k, a_col = trans_a ? c.m : 1;
          const int64_t b_row = trans_b ? 1 : c.n, b_col = trans_b ? c.k : 1;
          std::vector<float> fast = c0, slow = c0;
          kernels::gemm(c.m, c.n, c.k, a.data(), a_row, a_col, b.data(), b_row, b_col,
                        fast.data(), accumulate);
          kernels::reference::gemm(c.m, c.n, c.k, a.data(), a_row, a_col, b.data(), b_row, b_col,
                                   slow.data(), accumulate);
          for (size_t i = 0; i < fast.size(); ++i) {
            ASSERT_NEAR(fast[i], slow[i], 1e-4 * (1 + std::abs(slow[i])))
                << "m=" << c.m << " n=" << c.n << " k=" << c.k << " trans_a=" << trans_a
                << " trans_b=" << trans_b << " accumulate=" << accumulate << " at " << i;
          }
        }
      }
    }
  }
}

TEST(KernelsGemm, OddStridesFallBackCorrectly) {
  // Every other column of a wider matrix: neither layout oneDNN takes.
  Generator gen(6);
  const int64_t m = 20, n = 30, k = 40;
  const auto a = random_values(static_cast<size_t>(m * k * 2), gen);
  const auto b = random_values(static_cast<size_t>(k * n), gen);
  std::vector<float> fast(m * n), slow(m * n);
  kernels::gemm(m, n, k, a.data(), 2 * k, 2, b.data(), n, 1, fast.data(), false);
  kernels::reference::gemm(m, n, k, a.data(), 2 * k, 2, b.data(), n, 1, slow.data(), false);
  for (size_t i = 0; i < fast.size(); ++i) ASSERT_FLOAT_EQ(fast[i], slow[i]);
}

// The bias gradient of a channels-last convolution: per-channel sums against a float64 loop,
// below and above the size that splits the rows over the cores, with an odd channel count and a
// large common offset (where a plain float running sum would drift).
TEST(KernelsChannelSums, MatchFloat64Sums) {
  manual_seed(5);
  for (const auto& [rows, c] : std::vector<std::pair<int64_t, int64_t>>{{3, 5}, {1000, 37}, {70001, 64}}) {
    const Tensor x = add(Tensor::normal({rows, c}), 100.0);
    const float* p = x.data<float>();
    std::vector<float> got(static_cast<size_t>(c), -1.0f);
    kernels::channel_sums(p, rows, c, got.data());
    for (int64_t ch = 0; ch < c; ++ch) {
      double want = 0;
      for (int64_t r = 0; r < rows; ++r) want += p[r * c + ch];
      EXPECT_NEAR(got[static_cast<size_t>(ch)], want, std::abs(want) * 1e-6) << rows << " x " << c;
    }
  }
}

// index_select and index_add against plain loops, above the sizes that split them over the cores:
// one outer block (an embedding, split inside its rows) and several blocks whose split falls
// inside a row. A gather is a copy and the scatter-add keeps each output's order of additions,
// so both must match exactly.
TEST(KernelsIndex, SplitGatherAndScatterAddMatchPlainLoops) {
  Generator gen(8);
  struct Case {
    int64_t outer, n, inner, count;
  };
  for (const Case& c : {Case{1, 1000, 64, 3001}, Case{5, 300, 33, 701}, Case{3, 7, 1, 20}}) {
    std::vector<int64_t> index(static_cast<size_t>(c.count));
    for (int64_t& i : index) i = static_cast<int64_t>(gen.below(static_cast<uint64_t>(c.n)));
    const auto x = random_values(static_cast<size_t>(c.outer * c.n * c.inner), gen);
    const auto source = random_values(static_cast<size_t>(c.outer * c.count * c.inner), gen);
    std::vector<float> gathered(source.size()), want_gathered(source.size());
    std::vector<float> added(x.size(), 0.0f), want_added(x.size(), 0.0f);
    kernels::index_select(x.data(), c.outer, c.n, c.inner, sizeof(float), index.data(), c.count,
                          gathered.data());
    kernels::index_add(source.data(), c.outer, c.count, index.data(), c.n, c.inner, added.data());
    for (int64_t o = 0; o < c.outer; ++o) {
      for (int64_t i = 0; i < c.count; ++i) {
        for (int64_t k = 0; k < c.inner; ++k) {
          const size_t at = static_cast<size_t>((o * c.count + i) * c.inner + k);
          const size_t row = static_cast<size_t>((o * c.n + index[static_cast<size_t>(i)]) * c.inner + k);
          want_gathered[at] = x[row];
          want_added[row] += source[at];
        }
      }
    }
    EXPECT_EQ(gathered, want_gathered) << c.outer << " x " << c.n << " x " << c.inner;
    EXPECT_EQ(added, want_added) << c.outer << " x " << c.n << " x " << c.inner;
  }
}
