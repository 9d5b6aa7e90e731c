// Numeric gradient checks: every differentiable op's backward against central differences, in
// float64, plus tests of the autograd engine itself (accumulation, fan-out, no-grad mode, errors).
// The ops' cases come from the op table (tests/op_table.json, every case with the "grad" check);
// the hand-written tests below cover what a table row cannot say: views and non-contiguous
// operands inside the checked function, compositions, dropout's mask, and the harness itself.
//
// Method: the inputs become leaves that require grad; the op's outputs are reduced to the scalar
// L = sum_k sum(out_k * R_k) with fixed random R_k (so every output element matters);
// backward(L) gives the analytic gradient, and (L(x + h e_i) - L(x - h e_i)) / 2h, on a detached
// copy under NoGradGuard, the numeric one for every element i of every differentiated input.
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "neutrino/autograd/autograd.h"
#include "neutrino/core/error.h"
#include "neutrino/core/random.h"
#include "neutrino/nn/lora.h"
#include "neutrino/nn/losses.h"
#include "neutrino/ops/ops.h"
#include "neutrino/tensor/tensor.h"
#include "op_table.h"

using namespace neutrino;

namespace {

constexpr DType kF64 = DType::kFloat64;
using Inputs = std::vector<Tensor>;
using TensorFn = std::function<Tensor(const Inputs&)>;
using TensorsFn = std::function<std::vector<Tensor>(const Inputs&)>;

// ---- input helpers --------------------------------------------------------------------------

Tensor randn(const Shape& shape, double mean = 0, double stddev = 1) {
  return Tensor::normal(shape, mean, stddev, kF64);
}
Tensor randu(const Shape& shape, double low, double high) {
  return Tensor::uniform(shape, low, high, kF64);
}

// Distinct values spread evenly over (low, high) in a random order, as the table's "spaced" fill.
Tensor spaced(const Shape& shape, double low, double high) {
  const int64_t n = shape_numel(shape);
  std::vector<double> v(static_cast<size_t>(n));
  const double step = (high - low) / static_cast<double>(n);
  Generator& gen = global_generator();
  for (int64_t i = 0; i < n; ++i) {
    v[i] = low + (static_cast<double>(i) + 0.5 + 0.2 * (gen.uniform() - 0.5)) * step;
  }
  for (int64_t i = n - 1; i > 0; --i) {
    std::swap(v[i], v[gen.below(static_cast<uint64_t>(i + 1))]);
  }
  return Tensor::from_vector(v, shape);
}

Tensor indices(const std::vector<int64_t>& values, const Shape& shape) {
  return Tensor::from_vector(values, shape);
}

std::vector<double> values_of(const Tensor& t) { return t.to_vector<double>(); }

// The fixed weights R of the scalar reduction, from a private generator so the global stream
// (dropout) is untouched.
std::vector<std::vector<double>> reduction_weights(const std::vector<Tensor>& outs) {
  Generator gen(20240607);
  std::vector<std::vector<double>> r;
  for (const Tensor& out : outs) {
    r.emplace_back(static_cast<size_t>(out.numel()));
    for (auto& x : r.back()) x = gen.normal();
  }
  return r;
}

double weighted_sum(const std::vector<Tensor>& outs, const std::vector<std::vector<double>>& r) {
  double total = 0;
  for (size_t k = 0; k < outs.size(); ++k) {
    const std::vector<double> v = values_of(outs[k]);
    for (size_t i = 0; i < v.size(); ++i) total += v[i] * r[k][i];
  }
  return total;
}

// ---- the gradient check ---------------------------------------------------------------------

// Checks the analytic gradient of f with respect to every input where `differentiate` is set
// (float64 inputs only) against central differences; the others (indices, masks, targets,
// running statistics) are passed through unchecked. A check passes when
// |analytic - numeric| <= tol * max(1, |numeric|).
void check_gradients(const std::string& name, const TensorsFn& f, Inputs inputs,
                     std::vector<bool> differentiate, double tol = 1e-6) {
  SCOPED_TRACE(name);
  constexpr double h = 1e-6;
  for (size_t k = 0; k < inputs.size(); ++k) {
    if (differentiate[k]) {
      ASSERT_EQ(inputs[k].dtype(), kF64) << name << ": input " << k << " is not float64";
      inputs[k].set_requires_grad(true);
    }
  }

  // Analytic gradients.
  const std::vector<Tensor> outs = f(inputs);
  ASSERT_FALSE(outs.empty()) << name << ": no outputs";
  for (const Tensor& out : outs) {
    ASSERT_EQ(out.dtype(), kF64) << name << ": output is not float64";
    ASSERT_TRUE(out.requires_grad()) << name << ": output does not require grad";
  }
  const std::vector<std::vector<double>> r = reduction_weights(outs);
  Tensor loss;
  for (size_t k = 0; k < outs.size(); ++k) {
    const Tensor term = sum(mul(outs[k], Tensor::from_vector(r[k], outs[k].shape())));
    loss = k == 0 ? term : add(loss, term);
  }
  backward(loss);

  // Numeric gradients on detached copies.
  NoGradGuard no_grad;
  Inputs probe;
  for (size_t k = 0; k < inputs.size(); ++k) {
    probe.push_back(differentiate[k] ? clone(inputs[k].detach()) : inputs[k]);
  }
  const double base = weighted_sum(f(probe), r);
  ASSERT_TRUE(std::isfinite(base)) << name << ": the loss is not finite";

  double max_abs = 0, max_rel = 0;
  int failures = 0;
  for (size_t k = 0; k < inputs.size(); ++k) {
    if (!differentiate[k]) continue;
    const Tensor grad = inputs[k].grad();
    std::vector<double> analytic(static_cast<size_t>(inputs[k].numel()), 0.0);
    if (grad.defined()) {
      ASSERT_EQ(grad.shape(), inputs[k].shape())
          << name << ": gradient of input " << k << " has the wrong shape";
      analytic = values_of(grad);
    }
    double* p = probe[k].data<double>();
    for (int64_t i = 0; i < probe[k].numel(); ++i) {
      const double saved = p[i];
      p[i] = saved + h;
      const double up = weighted_sum(f(probe), r);
      p[i] = saved - h;
      const double down = weighted_sum(f(probe), r);
      p[i] = saved;
      const double numeric = (up - down) / (2 * h);
      const double a = analytic[static_cast<size_t>(i)];
      const double abs_err = std::abs(a - numeric);
      const double rel_err = abs_err / std::max(1.0, std::abs(numeric));
      max_abs = std::max(max_abs, abs_err);
      max_rel = std::max(max_rel, rel_err);
      if (!(rel_err <= tol)) {
        if (++failures <= 5) {
          ADD_FAILURE() << name << ": input " << k << " " << inputs[k].shape_string()
                        << ", element " << i << ": analytic " << a << ", numeric " << numeric
                        << " (abs err " << abs_err << ")";
        }
      }
    }
  }
  if (failures > 0) {
    ADD_FAILURE() << name << ": " << failures << " mismatched elements; max abs err " << max_abs
                  << ", max rel err " << max_rel;
  }
}

// One output; every float64 input differentiated.
void expect_gradients_match(const std::string& name, const TensorFn& f, Inputs inputs,
                            double tol = 1e-6) {
  std::vector<bool> differentiate;
  for (const Tensor& x : inputs) differentiate.push_back(x.dtype() == kF64);
  check_gradients(
      name, [&f](const Inputs& in) { return std::vector<Tensor>{f(in)}; }, std::move(inputs),
      std::move(differentiate), tol);
}


// ============================================================================================
// The harness itself: it must catch a wrong gradient
// ============================================================================================

// x * x with a backward that forgets the factor 2.
Tensor wrong_square(const Tensor& x) {
  Tensor out;
  {
    NoGradGuard no_grad;
    out = mul(x, x);
  }
  record(out, "wrong_square", {x}, [x](const Tensor& g) { return std::vector<Tensor>{mul(g, x)}; });
  return out;
}

void check_wrong_square() {
  manual_seed(99);
  expect_gradients_match("wrong_square", [](const Inputs& in) { return wrong_square(in[0]); },
                         {randn({2, 3})});
}

void check_right_square() {
  manual_seed(99);
  expect_gradients_match("square", [](const Inputs& in) { return mul(in[0], in[0]); },
                         {randn({2, 3})});
}

TEST(GradcheckHarness, CatchesAWrongGradient) {
  ::testing::TestPartResultArray results;
  {
    ::testing::ScopedFakeTestPartResultReporter intercept(
        ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &results);
    check_wrong_square();
  }
  // Five per-element reports (the cap) and one summary, all non-fatal.
  ASSERT_EQ(results.size(), 6);
  for (int i = 0; i < results.size(); ++i) EXPECT_TRUE(results.GetTestPartResult(i).nonfatally_failed());
  EXPECT_NE(std::string(results.GetTestPartResult(0).message()).find("wrong_square: input 0 (2, 3), element 0"),
            std::string::npos);
  EXPECT_NE(std::string(results.GetTestPartResult(5).message()).find("6 mismatched elements"),
            std::string::npos);
  check_right_square();
}

// ============================================================================================
// Every op-table case with the "grad" check
// ============================================================================================

class OpTableGradcheck : public ::testing::TestWithParam<neutrino::testing::OpCase> {};

TEST_P(OpTableGradcheck, MatchesCentralDifferences) {
  const neutrino::testing::OpCase& c = GetParam();
  manual_seed(neutrino::testing::case_seed(c.name));
  const Inputs inputs = neutrino::testing::make_inputs(c, kF64);
  std::vector<bool> differentiate;
  for (size_t k = 0; k < inputs.size(); ++k) {
    differentiate.push_back(inputs[k].dtype() == kF64 && c.inputs[k].grad);
  }
  check_gradients(
      c.name, [&c](const Inputs& in) { return neutrino::testing::run_op(c, in, kF64); }, inputs,
      differentiate);
}

INSTANTIATE_TEST_SUITE_P(OpTable, OpTableGradcheck,
                         ::testing::ValuesIn(neutrino::testing::op_cases_with("grad")), neutrino::testing::CaseName());

// ============================================================================================
// What a table row cannot say: views and non-contiguous operands inside the checked function,
// and compositions of ops
// ============================================================================================

TEST(GradcheckViews, NonContiguousOperands) {
  manual_seed(7);
  expect_gradients_match(
      "mul of transposed views",
      [](const Inputs& in) { return mul(transpose(in[0], 0, 1), in[1]); },
      {randn({4, 3}), randn({3, 4})});
  expect_gradients_match(
      "add of a stepped slice and a broadcast",
      [](const Inputs& in) { return add(slice(in[0], 1, 0, 6, 2), in[1]); },
      {randn({2, 6}), randn({2, 1})});
  expect_gradients_match("exp of a transposed view",
                         [](const Inputs& in) { return exp(transpose(in[0], 0, 1)); },
                         {randn({3, 4})});
  expect_gradients_match("sum of permuted view",
                         [](const Inputs& in) { return sum(permute(in[0], {2, 0, 1}), {1}); },
                         {randn({2, 3, 4})});
  expect_gradients_match("max of transposed view",
                         [](const Inputs& in) { return max(transpose(in[0], 0, 1), {0}, true); },
                         {spaced({3, 4}, -2, 2)});
  expect_gradients_match(
      "reshape of a transposed view",
      [](const Inputs& in) { return reshape(transpose(in[0], 0, 2), {4, 6}) * in[1]; },
      {randn({2, 3, 4}), randn({6})});
  const Tensor idx = indices({3, 3, 0}, {3});
  expect_gradients_match("index_select dim -1 of a transposed view",
                         [idx](const Inputs& in) {
                           return index_select(transpose(in[0], 0, 1), -1, idx);
                         },
                         {randn({4, 3})});
  expect_gradients_match("log_softmax of a transposed view",
                         [](const Inputs& in) { return log_softmax(transpose(in[0], 0, 1), 1); },
                         {randn({4, 3})});
  expect_gradients_match(
      "conv2d of a permuted input",
      [](const Inputs& v) { return conv2d(permute(v[0], {1, 0, 2, 3}), v[1], v[2], {}); },
      {randn({2, 1, 4, 4}), randn({2, 2, 3, 3}), randn({2})});
}

TEST(GradcheckViews, MatmulTransposedInputs) {
  manual_seed(41);
  // Transposes inside f: the op sees non-contiguous views of the leaves.
  expect_gradients_match(
      "matmul a^T @ b",
      [](const Inputs& in) { return matmul(transpose(in[0], 0, 1), in[1]); },
      {randn({4, 3}), randn({4, 2})});
  expect_gradients_match(
      "matmul a @ b^T",
      [](const Inputs& in) { return matmul(in[0], transpose(in[1], 0, 1)); },
      {randn({3, 4}), randn({2, 4})});
  expect_gradients_match(
      "matmul batched a^T @ b^T",
      [](const Inputs& in) {
        return matmul(transpose(in[0], -1, -2), transpose(in[1], -1, -2));
      },
      {randn({2, 4, 3}), randn({2, 5, 4})});
  expect_gradients_match(
      "matmul permuted batch",
      [](const Inputs& in) { return matmul(permute(in[0], {1, 0, 2}), in[1]); },
      {randn({3, 2, 4}), randn({2, 4, 2})});
  // Non-contiguous leaves: the leaf itself is a transposed view.
  const Tensor a = transpose(randn({4, 3}), 0, 1);
  const Tensor b = transpose(randn({2, 4}), 0, 1);
  ASSERT_FALSE(a.is_contiguous());
  ASSERT_FALSE(b.is_contiguous());
  expect_gradients_match("matmul non-contiguous leaves",
                         [](const Inputs& in) { return matmul(in[0], in[1]); }, {a, b});
}

TEST(GradcheckViews, Compositions) {
  manual_seed(6);
  expect_gradients_match(
      "operators a*b + a/c - b",
      [](const Inputs& in) { return in[0] * in[1] + in[0] / in[2] - in[1]; },
      {randn({3, 4}), randn({4}), randu({3, 1}, 0.5, 2.0)});
  expect_gradients_match("scalar operators",
                         [](const Inputs& in) { return (2.0 - in[0]) * 3.0 / 4.0 - 1.0 + -in[0]; },
                         {randn({3, 4})});
  expect_gradients_match("permute (1,2,0) then mul",
                         [](const Inputs& in) { return permute(in[0], {1, -1, 0}) * in[1]; },
                         {randn({2, 3, 4}), randn({4, 1})});
  expect_gradients_match("transpose -1,-2 twice",
                         [](const Inputs& in) {
                           return transpose(transpose(in[0], -1, -2) * 2.0, 0, 1);
                         },
                         {randn({2, 3, 4})});
  expect_gradients_match("chained slices then op",
                         [](const Inputs& in) {
                           return exp(slice(slice(in[0], 1, 1, 6, 2), 0, -2, 3));
                         },
                         {randn({3, 6, 4})});
  expect_gradients_match("expand (1,3,1) -> (2,3,4) then mul",
                         [](const Inputs& in) { return expand(in[0], {2, 3, 4}) * in[1]; },
                         {randn({1, 3, 1}), randn({2, 3, 4})});
  expect_gradients_match(
      "concat same tensor twice with a view",
      [](const Inputs& in) { return concat({in[0], transpose(in[1], 0, 1), in[0]}, 0); },
      {randn({2, 3}), randn({3, 2})});
  expect_gradients_match("contiguous of a transposed view",
                         [](const Inputs& in) { return contiguous(transpose(in[0], 0, 1)); },
                         {randn({3, 4})});
  expect_gradients_match("clone", [](const Inputs& in) { return clone(in[0]) * in[0]; },
                         {randn({3, 4})});
}

// ============================================================================================
// Dropout (random, so not in the table) and pooling's padded count
// ============================================================================================

TEST(GradcheckRandom, Dropout) {
  // Reseeding before each forward draws the same mask in every call of f.
  expect_gradients_match(
      "dropout p=0.3 training",
      [](const Inputs& in) {
        manual_seed(777);
        return dropout(in[0], 0.3, true);
      },
      {randn({5, 8})});

  // The gradient is the mask scaling itself: y / x, that is 0 or 1 / (1 - p).
  manual_seed(62);
  Tensor x = randu({5, 8}, 0.5, 1.5);
  x.set_requires_grad(true);
  manual_seed(9);
  const Tensor y = dropout(x, 0.3, true);
  backward(y, Tensor::ones(y.shape(), kF64));
  const auto xs = values_of(x), ys = values_of(y), gs = values_of(x.grad());
  int dropped = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const double ratio = ys[i] / xs[i];
    EXPECT_NEAR(gs[i], ratio, 1e-12) << "element " << i;
    EXPECT_TRUE(std::abs(ratio) < 1e-12 || std::abs(ratio - 1 / 0.7) < 1e-12) << ratio;
    dropped += std::abs(ratio) < 1e-12;
  }
  EXPECT_GT(dropped, 0);
  EXPECT_LT(dropped, 40);

  // Evaluation is the identity.
  expect_gradients_match("dropout eval",
                         [](const Inputs& in) { return dropout(in[0], 0.3, false) * 2.0; },
                         {randn({3, 4})});
}

Pool2dParams pool_params(int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t pt, int64_t pl,
                         int64_t pb, int64_t pr, bool include_pad = true) {
  Pool2dParams p;
  p.kernel_h = kh;
  p.kernel_w = kw;
  p.stride_h = sh;
  p.stride_w = sw;
  p.pad_top = pt;
  p.pad_left = pl;
  p.pad_bottom = pb;
  p.pad_right = pr;
  p.count_include_pad = include_pad;
  return p;
}

TEST(GradcheckPool, AvgPool2dCountIncludePadBottomRight) {
  Pool2dParams p = pool_params(2, 2, 2, 2, 0, 0, 1, 1, true);
  const Tensor y = avg_pool2d(Tensor::ones({1, 1, 3, 3}, kF64), p);
  EXPECT_EQ(values_of(y), (std::vector<double>{1, 0.5, 0.5, 0.25}));
}

// ============================================================================================
// Normalization
// ============================================================================================

// ============================================================================================
// A small composite: an MLP step end to end
// ============================================================================================

TEST(GradcheckComposite, TwoLayerMlp) {
  manual_seed(95);
  const Tensor labels = indices({0, 2, 1}, {3});
  expect_gradients_match(
      "mlp linear-gelu-linear-cross-entropy",
      [labels](const Inputs& v) {
        const Tensor h = gelu(linear(v[0], v[1], v[2]), "tanh");
        return nn::sparse_categorical_crossentropy(labels, linear(h, v[3], v[4]), true);
      },
      {randn({3, 4}), randn({5, 4}, 0, 0.5), randn({5}), randn({3, 5}, 0, 0.5), randn({3})});
}

// LoRA's linear (nn/lora.h) composes linear, mul, add and dropout: x, W, b, A and B all get the
// gradient of x W^T + b + dropout(x) A^T B^T * alpha / r (a nonzero B, as after some training).
TEST(GradcheckComposite, LoraLinear) {
  manual_seed(96);
  for (const double p : {0.0, 0.25}) {
    expect_gradients_match(
        p > 0 ? "lora linear, dropout 0.25" : "lora linear",
        [p](const Inputs& v) {
          manual_seed(778);  // the same dropout mask in every call
          const nn::LoraAdapter lora{.a = v[3], .b = v[4], .scaling = 2.0, .dropout = p};
          return nn::lora_linear(v[0], v[1], v[2], lora, true);
        },
        {randn({2, 3, 6}), randn({5, 6}, 0, 0.5), randn({5}), randn({2, 6}, 0, 0.5),
         randn({5, 2}, 0, 0.5)});
  }
}

// ============================================================================================
// The autograd engine
// ============================================================================================

Tensor leaf(std::vector<double> values) {
  const int64_t n = static_cast<int64_t>(values.size());
  Tensor t = Tensor::from_vector(values, {n});
  t.set_requires_grad(true);
  return t;
}

TEST(AutogradEngine, GradientsAccumulateAcrossBackwardCalls) {
  Tensor x = leaf({1, 2, 3});
  backward(sum(mul(x, 2.0)));
  EXPECT_EQ(values_of(x.grad()), (std::vector<double>{2, 2, 2}));
  backward(sum(mul(x, x)));
  EXPECT_EQ(values_of(x.grad()), (std::vector<double>{4, 6, 8}));
  x.zero_grad();
  EXPECT_FALSE(x.grad().defined());
  backward(sum(x));
  EXPECT_EQ(values_of(x.grad()), (std::vector<double>{1, 1, 1}));
}

TEST(AutogradEngine, TensorUsedTwiceGetsSummedGradient) {
  Tensor x = leaf({-1.5, 0.5, 2});
  const Tensor y = add(mul(x, x), x);  // dy/dx = 2x + 1
  backward(sum(y));
  EXPECT_EQ(values_of(x.grad()), (std::vector<double>{-2, 2, 5}));

  // A diamond: x -> a, b -> a * b, through shared intermediates.
  Tensor z = leaf({0.5, -2});
  const Tensor a = exp(z);
  const Tensor b = mul(a, 3.0);
  backward(sum(mul(a, b)));  // 3 e^{2z} -> 6 e^{2z}
  const auto g = values_of(z.grad());
  EXPECT_NEAR(g[0], 6 * std::exp(1.0), 1e-12);
  EXPECT_NEAR(g[1], 6 * std::exp(-4.0), 1e-12);
}

TEST(AutogradEngine, NoGradGuardRecordsNothing) {
  Tensor x = leaf({1, 2});
  EXPECT_TRUE(grad_enabled());
  {
    NoGradGuard guard;
    EXPECT_FALSE(grad_enabled());
    const Tensor y = exp(mul(x, 2.0));
    EXPECT_FALSE(y.requires_grad());
    EXPECT_TRUE(y.is_leaf());
    {
      NoGradGuard nested;
      EXPECT_FALSE(grad_enabled());
    }
    EXPECT_FALSE(grad_enabled());  // the nested guard restores "off"
  }
  EXPECT_TRUE(grad_enabled());
  const Tensor y = mul(x, 2.0);
  EXPECT_TRUE(y.requires_grad());
  EXPECT_FALSE(y.is_leaf());
}

TEST(AutogradEngine, NoGradGuardIsThreadLocal) {
  Tensor x = leaf({1, 2, 3});
  NoGradGuard guard;
  ASSERT_FALSE(grad_enabled());
  bool thread_enabled = false, thread_records = false;
  std::thread worker([&] {
    thread_enabled = grad_enabled();
    const Tensor y = mul(x, 2.0);
    thread_records = y.requires_grad() && !y.is_leaf();
  });
  worker.join();
  EXPECT_TRUE(thread_enabled);
  EXPECT_TRUE(thread_records);
  EXPECT_FALSE(grad_enabled());
  EXPECT_FALSE(mul(x, 2.0).requires_grad());

  // And the other way: a guard on another thread leaves this one alone.
  std::atomic<bool> worker_off{true};
  {
    std::thread other([&] {
      NoGradGuard inner;
      worker_off = !grad_enabled();
    });
    other.join();
  }
  EXPECT_TRUE(worker_off);
  EXPECT_FALSE(grad_enabled());  // still this thread's own guard
}

TEST(AutogradEngine, GuardOnOtherThreadDoesNotAffectMain) {
  Tensor x = leaf({1, 2, 3});
  std::thread other([] {
    NoGradGuard inner;
    EXPECT_FALSE(grad_enabled());
  });
  other.join();
  EXPECT_TRUE(grad_enabled());
  EXPECT_TRUE(mul(x, 2.0).requires_grad());
}

TEST(AutogradEngine, BackwardOnNonScalarNeedsGradient) {
  Tensor x = leaf({1, 2, 3});
  const Tensor y = mul(x, 3.0);
  EXPECT_THROW(backward(y), ShapeError);
  // With an explicit gradient it works: d(3x) . g = 3g.
  backward(y, Tensor::from_vector(std::vector<double>{1, -1, 0.5}, {3}));
  EXPECT_EQ(values_of(x.grad()), (std::vector<double>{3, -3, 1.5}));
  // A gradient of the wrong shape is a ShapeError too.
  const Tensor y2 = mul(x, 3.0);
  EXPECT_THROW(backward(y2, Tensor::ones({2}, kF64)), ShapeError);
}

TEST(AutogradEngine, BackwardOnTensorWithoutGraphThrows) {
  const Tensor x = Tensor::from_vector(std::vector<double>{1, 2}, {2});
  EXPECT_THROW(backward(sum(x)), ValueError);
}

TEST(AutogradEngine, BackwardTwiceNeedsRetainGraph) {
  {
    Tensor x = leaf({1, 2, 3});
    const Tensor loss = sum(add(mul(x, x), x));
    backward(loss);
    EXPECT_THROW(backward(loss), ValueError);
  }
  {
    Tensor x = leaf({1, 2, 3});
    const Tensor loss = sum(add(mul(x, x), x));
    backward(loss, Tensor(), /*retain_graph=*/true);
    EXPECT_EQ(values_of(x.grad()), (std::vector<double>{3, 5, 7}));
    EXPECT_NO_THROW(backward(loss));
    EXPECT_EQ(values_of(x.grad()), (std::vector<double>{6, 10, 14}));
    EXPECT_THROW(backward(loss), ValueError);  // the second call did not retain
  }
}

TEST(AutogradEngine, DetachStopsGradients) {
  Tensor x = leaf({1.5, -2});
  const Tensor d = x.detach();
  EXPECT_FALSE(d.requires_grad());
  EXPECT_TRUE(d.is_leaf());
  // y = stopgrad(x) * x: dy/dx = x, not 2x.
  backward(sum(mul(d, x)));
  EXPECT_EQ(values_of(x.grad()), (std::vector<double>{1.5, -2}));
  // A detached intermediate cuts the graph above it.
  Tensor z = leaf({0.5, 1});
  const Tensor hidden = exp(z).detach();
  const Tensor out = sum(mul(hidden, 2.0));
  EXPECT_FALSE(out.requires_grad());
  EXPECT_THROW(backward(out), ValueError);
  EXPECT_FALSE(z.grad().defined());
}

TEST(AutogradEngine, InputsWithoutRequiresGradGetNoGradient) {
  Tensor x = leaf({1, 2});
  const Tensor c = Tensor::from_vector(std::vector<double>{3, 4}, {2});
  backward(sum(mul(x, c)));
  EXPECT_EQ(values_of(x.grad()), (std::vector<double>{3, 4}));
  EXPECT_FALSE(c.grad().defined());
}

}  // namespace
