// Numeric gradient checks: every differentiable op's backward against central differences, in
// float64, plus tests of the autograd engine itself (accumulation, fan-out, no-grad mode, errors).
//
// Method: the inputs become leaves that require grad; the op's output is reduced to the scalar
// L = sum(out * R) with a fixed random R (so every output element matters); L.backward() gives the
// analytic gradient, and (L(x + h e_i) - L(x - h e_i)) / 2h, on a detached copy under NoGradGuard,
// the numeric one for every element i of every input.
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
#include "neutrino/nn/losses.h"
#include "neutrino/ops/ops.h"
#include "neutrino/tensor/tensor.h"

using namespace neutrino;

namespace {

constexpr DType kF64 = DType::kFloat64;
using Inputs = std::vector<Tensor>;
using TensorFn = std::function<Tensor(const Inputs&)>;

// ---- input helpers --------------------------------------------------------------------------

Tensor randn(const Shape& shape, double mean = 0, double stddev = 1) {
  return Tensor::normal(shape, mean, stddev, kF64);
}
Tensor randu(const Shape& shape, double low, double high) {
  return Tensor::uniform(shape, low, high, kF64);
}

// Distinct values spread evenly over (low, high) in a random order, at least
// (high - low) / (2 numel) away from each other and from low + k (high - low) / numel for any k:
// no ties (max, max_pool2d, maximum) and, for a symmetric range with an even count, no zeros.
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

Tensor bool_mask(const std::vector<int64_t>& values, const Shape& shape) {
  return Tensor::from_vector(values, shape).to(DType::kBool);
}

std::vector<double> values_of(const Tensor& t) { return t.to_vector<double>(); }

// The fixed weights R of the scalar reduction, from a private generator so the global stream
// (dropout) is untouched.
std::vector<double> reduction_weights(int64_t n) {
  Generator gen(20240607);
  std::vector<double> r(static_cast<size_t>(n));
  for (auto& x : r) x = gen.normal();
  return r;
}

double weighted_sum(const Tensor& out, const std::vector<double>& r) {
  const std::vector<double> v = values_of(out);
  double total = 0;
  for (size_t i = 0; i < v.size(); ++i) total += v[i] * r[i];
  return total;
}

// ---- the gradient check ---------------------------------------------------------------------

// Checks the analytic gradient of f with respect to every float64 input against central
// differences. Non-float64 inputs (indices, masks) are passed through unchecked. A check passes
// when |analytic - numeric| <= tol * max(1, |numeric|).
void expect_gradients_match(const std::string& name, const TensorFn& f, Inputs inputs,
                            double tol = 1e-6) {
  SCOPED_TRACE(name);
  constexpr double h = 1e-6;
  for (Tensor& x : inputs) {
    if (x.dtype() == kF64) x.set_requires_grad(true);
  }

  // Analytic gradients.
  const Tensor out = f(inputs);
  ASSERT_EQ(out.dtype(), kF64) << name << ": output is not float64";
  ASSERT_TRUE(out.requires_grad()) << name << ": output does not require grad";
  const std::vector<double> r = reduction_weights(out.numel());
  const Tensor weights = Tensor::from_vector(r, out.shape());
  const Tensor loss = sum(mul(out, weights));
  loss.backward();

  // Numeric gradients on detached copies.
  NoGradGuard no_grad;
  Inputs probe;
  for (const Tensor& x : inputs) probe.push_back(x.dtype() == kF64 ? x.detach().clone() : x);
  const double base = weighted_sum(f(probe), r);
  ASSERT_TRUE(std::isfinite(base)) << name << ": the loss is not finite";

  double max_abs = 0, max_rel = 0;
  int failures = 0;
  for (size_t k = 0; k < inputs.size(); ++k) {
    if (inputs[k].dtype() != kF64) continue;
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

Tensor undefined() { return Tensor(); }

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
// Elementwise binary ops with broadcasting
// ============================================================================================

struct BroadcastCase {
  Shape a, b;
};
const std::vector<BroadcastCase> kBroadcastCases = {
    {{3, 4}, {3, 4}}, {{3, 4}, {4}}, {{4}, {3, 4}}, {{2, 1, 3}, {1, 4, 1}}, {{2, 3}, {}},
};

TEST(GradcheckBinary, Add) {
  manual_seed(1);
  for (const auto& c : kBroadcastCases) {
    expect_gradients_match("add " + shape_str(c.a) + " + " + shape_str(c.b),
                           [](const Inputs& in) { return add(in[0], in[1]); },
                           {randn(c.a), randn(c.b)});
  }
}

TEST(GradcheckBinary, Sub) {
  manual_seed(2);
  for (const auto& c : kBroadcastCases) {
    expect_gradients_match("sub " + shape_str(c.a) + " - " + shape_str(c.b),
                           [](const Inputs& in) { return sub(in[0], in[1]); },
                           {randn(c.a), randn(c.b)});
  }
}

TEST(GradcheckBinary, Mul) {
  manual_seed(3);
  for (const auto& c : kBroadcastCases) {
    expect_gradients_match("mul " + shape_str(c.a) + " * " + shape_str(c.b),
                           [](const Inputs& in) { return mul(in[0], in[1]); },
                           {randn(c.a), randn(c.b)});
  }
}

TEST(GradcheckBinary, Div) {
  manual_seed(4);
  for (const auto& c : kBroadcastCases) {
    // Denominators in +-[0.5, 1.5], away from zero.
    expect_gradients_match("div " + shape_str(c.a) + " / " + shape_str(c.b),
                           [](const Inputs& in) { return div(in[0], in[1]); },
                           {randn(c.a), mul(sign(randn(c.b)), randu(c.b, 0.5, 1.5))});
  }
}

TEST(GradcheckBinary, Maximum) {
  manual_seed(5);
  // Distinct values drawn jointly, so a and b never tie.
  {
    const Tensor both = spaced({2, 3, 4}, -3, 3);
    expect_gradients_match("maximum (3,4) & (3,4)",
                           [](const Inputs& in) { return maximum(in[0], in[1]); },
                           {reshape(slice(both, 0, 0, 1), {3, 4}).detach().clone(),
                            reshape(slice(both, 0, 1, 2), {3, 4}).detach().clone()});
  }
  {
    const Tensor a = spaced({3, 4}, -3, 3);
    const Tensor b = Tensor::from_vector(std::vector<double>{-2.05, -0.4, 0.35, 1.3}, {4});
    expect_gradients_match("maximum (3,4) & (4,)",
                           [](const Inputs& in) { return maximum(in[0], in[1]); }, {a, b});
  }
  {
    const Tensor a = spaced({2, 1, 3}, -2, 2);
    const Tensor b = Tensor::from_vector(std::vector<double>{-1.1, 0.05, 0.6, 1.7}, {1, 4, 1});
    expect_gradients_match("maximum (2,1,3) & (1,4,1)",
                           [](const Inputs& in) { return maximum(in[0], in[1]); }, {a, b});
  }
}

TEST(GradcheckBinary, Operators) {
  manual_seed(6);
  expect_gradients_match(
      "operators a*b + a/c - b",
      [](const Inputs& in) { return in[0] * in[1] + in[0] / in[2] - in[1]; },
      {randn({3, 4}), randn({4}), randu({3, 1}, 0.5, 2.0)});
}

TEST(GradcheckBinary, NonContiguousOperands) {
  manual_seed(7);
  expect_gradients_match(
      "mul of transposed views",
      [](const Inputs& in) { return mul(transpose(in[0], 0, 1), in[1]); },
      {randn({4, 3}), randn({3, 4})});
  expect_gradients_match(
      "add of a stepped slice and a broadcast",
      [](const Inputs& in) { return add(slice(in[0], 1, 0, 6, 2), in[1]); },
      {randn({2, 6}), randn({2, 1})});
}

// ============================================================================================
// Scalar and unary ops
// ============================================================================================

TEST(GradcheckUnary, ScalarOps) {
  manual_seed(10);
  const Shape s{3, 4};
  expect_gradients_match("add scalar", [](const Inputs& in) { return add(in[0], 2.5); },
                         {randn(s)});
  expect_gradients_match("mul scalar", [](const Inputs& in) { return mul(in[0], -1.75); },
                         {randn(s)});
  expect_gradients_match("rsub", [](const Inputs& in) { return rsub(3.0, in[0]); }, {randn(s)});
  expect_gradients_match("neg", [](const Inputs& in) { return neg(in[0]); }, {randn(s)});
  expect_gradients_match("scalar operators",
                         [](const Inputs& in) { return (2.0 - in[0]) * 3.0 / 4.0 - 1.0 + -in[0]; },
                         {randn(s)});
}

TEST(GradcheckUnary, ExpLogSqrt) {
  manual_seed(11);
  expect_gradients_match("exp", [](const Inputs& in) { return exp(in[0]); }, {randn({3, 4})});
  expect_gradients_match("log", [](const Inputs& in) { return log(in[0]); },
                         {randu({3, 4}, 0.5, 3.0)});
  expect_gradients_match("sqrt", [](const Inputs& in) { return sqrt(in[0]); },
                         {randu({3, 4}, 0.5, 3.0)});
  expect_gradients_match("exp of a transposed view",
                         [](const Inputs& in) { return exp(transpose(in[0], 0, 1)); },
                         {randn({3, 4})});
}

TEST(GradcheckUnary, Pow) {
  manual_seed(12);
  expect_gradients_match("pow 2", [](const Inputs& in) { return pow(in[0], 2.0); },
                         {randn({3, 4})});
  expect_gradients_match("pow 3", [](const Inputs& in) { return pow(in[0], 3.0); },
                         {randn({3, 4})});
  expect_gradients_match("pow 0.5", [](const Inputs& in) { return pow(in[0], 0.5); },
                         {randu({3, 4}, 0.5, 2.0)});
  expect_gradients_match("pow -1.5", [](const Inputs& in) { return pow(in[0], -1.5); },
                         {randu({3, 4}, 0.5, 2.0)});
  expect_gradients_match("pow 1", [](const Inputs& in) { return pow(in[0], 1.0); },
                         {randn({3, 4})});
}

TEST(GradcheckUnary, AbsClampRelu) {
  manual_seed(13);
  // spaced() over a symmetric range with an even count keeps values >= 0.08 from 0.
  expect_gradients_match("abs", [](const Inputs& in) { return abs(in[0]); },
                         {spaced({3, 4}, -2, 2)});
  expect_gradients_match("relu", [](const Inputs& in) { return relu(in[0]); },
                         {spaced({3, 4}, -2, 2)});
  expect_gradients_match("leaky_relu 0.01", [](const Inputs& in) { return leaky_relu(in[0]); },
                         {spaced({3, 4}, -2, 2)});
  expect_gradients_match("leaky_relu 0.2",
                         [](const Inputs& in) { return leaky_relu(in[0], 0.2); },
                         {spaced({3, 4}, -2, 2)});
  // Bounds -0.55 and 0.45 fall between the spaced values (step 1/3 over (-2, 2)).
  const Tensor x = spaced({3, 4}, -2, 2);
  for (double v : values_of(x)) {
    ASSERT_GT(std::abs(v + 0.55), 1e-3);
    ASSERT_GT(std::abs(v - 0.45), 1e-3);
  }
  expect_gradients_match("clamp", [](const Inputs& in) { return clamp(in[0], -0.55, 0.45); },
                         {x});
}

TEST(GradcheckUnary, SmoothActivations) {
  manual_seed(14);
  const Shape s{3, 5};
  expect_gradients_match("sigmoid", [](const Inputs& in) { return sigmoid(in[0]); },
                         {randn(s, 0, 3)});
  expect_gradients_match("tanh", [](const Inputs& in) { return tanh(in[0]); }, {randn(s, 0, 2)});
  expect_gradients_match("gelu none", [](const Inputs& in) { return gelu(in[0], "none"); },
                         {randn(s, 0, 2)});
  expect_gradients_match("gelu tanh", [](const Inputs& in) { return gelu(in[0], "tanh"); },
                         {randn(s, 0, 2)});
  expect_gradients_match("softplus", [](const Inputs& in) { return softplus(in[0]); },
                         {randn(s, 0, 3)});
  // Large magnitudes: the stable forms must keep finite, correct gradients.
  const Tensor big = Tensor::from_vector(std::vector<double>{-40, -25, -8, 8, 25, 40}, {6});
  expect_gradients_match("sigmoid large", [](const Inputs& in) { return sigmoid(in[0]); },
                         {big.clone()});
  expect_gradients_match("softplus large", [](const Inputs& in) { return softplus(in[0]); },
                         {big.clone()});
}

// ============================================================================================
// where and masked_fill
// ============================================================================================

TEST(GradcheckSelect, Where) {
  manual_seed(20);
  const Tensor cond = bool_mask({1, 0, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1}, {3, 4});
  expect_gradients_match(
      "where same shape", [cond](const Inputs& in) { return where(cond, in[0], in[1]); },
      {randn({3, 4}), randn({3, 4})});
  const Tensor row_cond = bool_mask({1, 0, 1}, {3, 1});
  expect_gradients_match(
      "where cond (3,1), a (3,4), b (4,)",
      [row_cond](const Inputs& in) { return where(row_cond, in[0], in[1]); },
      {randn({3, 4}), randn({4})});
  const Tensor col_cond = bool_mask({0, 1, 1, 0}, {4});
  expect_gradients_match(
      "where cond (4,), a (2,1,1), b (2,3,1)",
      [col_cond](const Inputs& in) { return where(col_cond, in[0], in[1]); },
      {randn({2, 1, 1}), randn({2, 3, 1})});
}

TEST(GradcheckSelect, MaskedFill) {
  manual_seed(21);
  const Tensor mask = bool_mask({1, 0, 0, 1, 0, 1, 1, 0, 0, 0, 1, 0}, {3, 4});
  expect_gradients_match("masked_fill",
                         [mask](const Inputs& in) { return masked_fill(in[0], mask, -7.0); },
                         {randn({3, 4})});
  const Tensor bcast = bool_mask({0, 1, 0, 1}, {1, 4});
  expect_gradients_match("masked_fill broadcast mask",
                         [bcast](const Inputs& in) { return masked_fill(in[0], bcast, 2.5); },
                         {randn({2, 3, 4})});
}

// ============================================================================================
// Reductions
// ============================================================================================

struct ReduceCase {
  std::vector<int64_t> dims;
  bool keepdim;
};
const std::vector<ReduceCase> kReduceCases = {
    {{}, false}, {{}, true},      {{0}, false},    {{1}, true},   {{-1}, false},
    {{2}, true}, {{0, 2}, false}, {{0, 2}, true}, {{-1, 0}, false}, {{0, 1, 2}, false},
};

std::string reduce_name(const char* op, const ReduceCase& c) {
  std::ostringstream s;
  s << op << " dims {";
  for (size_t i = 0; i < c.dims.size(); ++i) s << (i ? "," : "") << c.dims[i];
  s << "} keepdim " << c.keepdim;
  return s.str();
}

TEST(GradcheckReduce, Sum) {
  manual_seed(30);
  for (const auto& c : kReduceCases) {
    expect_gradients_match(
        reduce_name("sum", c),
        [c](const Inputs& in) { return sum(in[0], c.dims, c.keepdim); }, {randn({2, 3, 4})});
  }
}

TEST(GradcheckReduce, Mean) {
  manual_seed(31);
  for (const auto& c : kReduceCases) {
    expect_gradients_match(
        reduce_name("mean", c),
        [c](const Inputs& in) { return mean(in[0], c.dims, c.keepdim); }, {randn({2, 3, 4})});
  }
}

TEST(GradcheckReduce, Max) {
  manual_seed(32);
  for (const auto& c : kReduceCases) {
    expect_gradients_match(
        reduce_name("max", c),
        [c](const Inputs& in) { return max(in[0], c.dims, c.keepdim); },
        {spaced({2, 3, 4}, -3, 3)});
  }
}

TEST(GradcheckReduce, ReduceNonContiguous) {
  manual_seed(33);
  expect_gradients_match("sum of permuted view",
                         [](const Inputs& in) { return sum(permute(in[0], {2, 0, 1}), {1}); },
                         {randn({2, 3, 4})});
  expect_gradients_match("max of transposed view",
                         [](const Inputs& in) { return max(transpose(in[0], 0, 1), {0}, true); },
                         {spaced({3, 4}, -2, 2)});
}

TEST(GradcheckReduce, SumTo) {
  manual_seed(34);
  for (const Shape& target : std::vector<Shape>{{3, 1}, {1, 4}, {4}, {2, 1, 1}, {3, 4}, {}}) {
    expect_gradients_match("sum_to (2,3,4) -> " + shape_str(target),
                           [target](const Inputs& in) { return sum_to(in[0], target); },
                           {randn({2, 3, 4})});
  }
}

// ============================================================================================
// Linear algebra
// ============================================================================================

TEST(GradcheckLinalg, Matmul) {
  manual_seed(40);
  struct Case {
    Shape a, b;
  };
  const std::vector<Case> cases = {
      {{3, 4}, {4, 2}},          // plain
      {{2, 3, 4}, {2, 4, 5}},    // batched
      {{2, 1, 3, 4}, {3, 4, 2}}, // broadcast batch (2,1) & (3,) -> (2,3)
      {{3, 4}, {2, 4, 5}},       // 2-D left, batched right
      {{2, 3, 4}, {4, 2}},       // batched left, 2-D right
      {{4}, {4, 3}},             // 1-D left
      {{3, 4}, {4}},             // 1-D right
      {{4}, {2, 4, 3}},          // 1-D left, batched right
      {{2, 3, 4}, {4}},          // batched left, 1-D right
  };
  for (const auto& c : cases) {
    expect_gradients_match("matmul " + shape_str(c.a) + " @ " + shape_str(c.b),
                           [](const Inputs& in) { return matmul(in[0], in[1]); },
                           {randn(c.a), randn(c.b)});
  }
}

TEST(GradcheckLinalg, MatmulVectorDotVector) {
  manual_seed(43);
  expect_gradients_match("matmul (3,) @ (3,)", [](const Inputs& in) { return matmul(in[0], in[1]); },
                         {randn({3}), randn({3})});
}

TEST(GradcheckLinalg, MatmulTransposedInputs) {
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

TEST(GradcheckLinalg, Linear) {
  manual_seed(42);
  expect_gradients_match(
      "linear with bias",
      [](const Inputs& in) { return linear(in[0], in[1], in[2]); },
      {randn({3, 4}), randn({2, 4}), randn({2})});
  expect_gradients_match(
      "linear without bias",
      [](const Inputs& in) { return linear(in[0], in[1], undefined()); },
      {randn({3, 4}), randn({2, 4})});
  expect_gradients_match(
      "linear 3-D input",
      [](const Inputs& in) { return linear(in[0], in[1], in[2]); },
      {randn({2, 3, 4}), randn({5, 4}), randn({5})});
  expect_gradients_match(
      "linear 1-D input",
      [](const Inputs& in) { return linear(in[0], in[1], in[2]); },
      {randn({4}), randn({3, 4}), randn({3})});
}

// ============================================================================================
// Shape and indexing
// ============================================================================================

TEST(GradcheckShape, ReshapeFlatten) {
  manual_seed(50);
  expect_gradients_match("reshape", [](const Inputs& in) { return reshape(in[0], {4, 6}); },
                         {randn({2, 3, 4})});
  expect_gradients_match("reshape -1", [](const Inputs& in) { return reshape(in[0], {-1, 2}); },
                         {randn({2, 3, 4})});
  expect_gradients_match(
      "reshape of a transposed view",
      [](const Inputs& in) { return reshape(transpose(in[0], 0, 2), {4, 6}) * in[1]; },
      {randn({2, 3, 4}), randn({6})});
  for (int64_t start : {0, 1, 2, -1}) {
    expect_gradients_match("flatten start " + std::to_string(start),
                           [start](const Inputs& in) { return flatten(in[0], start); },
                           {randn({2, 3, 4})});
  }
}

TEST(GradcheckShape, PermuteTranspose) {
  manual_seed(51);
  expect_gradients_match("permute (2,0,1)",
                         [](const Inputs& in) { return permute(in[0], {2, 0, 1}); },
                         {randn({2, 3, 4})});
  expect_gradients_match("permute (1,2,0) then mul",
                         [](const Inputs& in) { return permute(in[0], {1, -1, 0}) * in[1]; },
                         {randn({2, 3, 4}), randn({4, 1})});
  expect_gradients_match("transpose 0,2",
                         [](const Inputs& in) { return transpose(in[0], 0, 2); },
                         {randn({2, 3, 4})});
  expect_gradients_match("transpose -1,-2 twice",
                         [](const Inputs& in) {
                           return transpose(transpose(in[0], -1, -2) * 2.0, 0, 1);
                         },
                         {randn({2, 3, 4})});
}

TEST(GradcheckShape, Slice) {
  manual_seed(52);
  struct Case {
    int64_t dim, start, end, step;
  };
  const std::vector<Case> cases = {
      {0, 1, 3, 1},   {1, 0, 5, 2},  {1, -4, -1, 1}, {1, -5, 6, 3}, {-1, 1, 4, 2},
      {2, -3, 100, 1}, {0, -100, 2, 1},
  };
  for (const auto& c : cases) {
    std::ostringstream name;
    name << "slice dim " << c.dim << " [" << c.start << ":" << c.end << ":" << c.step << "]";
    expect_gradients_match(name.str(),
                           [c](const Inputs& in) {
                             return slice(in[0], c.dim, c.start, c.end, c.step);
                           },
                           {randn({3, 6, 4})});
  }
  expect_gradients_match("chained slices then op",
                         [](const Inputs& in) {
                           return exp(slice(slice(in[0], 1, 1, 6, 2), 0, -2, 3));
                         },
                         {randn({3, 6, 4})});
}

TEST(GradcheckShape, Expand) {
  manual_seed(53);
  expect_gradients_match("expand (3,1) -> (2,3,4)",
                         [](const Inputs& in) { return expand(in[0], {2, 3, 4}); },
                         {randn({3, 1})});
  expect_gradients_match("expand (4,) -> (3,4)",
                         [](const Inputs& in) { return expand(in[0], {3, 4}); }, {randn({4})});
  expect_gradients_match("expand (1,3,1) -> (2,3,4) then mul",
                         [](const Inputs& in) { return expand(in[0], {2, 3, 4}) * in[1]; },
                         {randn({1, 3, 1}), randn({2, 3, 4})});
  expect_gradients_match("expand () -> (2,3)",
                         [](const Inputs& in) { return expand(in[0], {2, 3}); }, {randn({})});
}

TEST(GradcheckShape, Concat) {
  manual_seed(54);
  expect_gradients_match("concat 2 dim 0",
                         [](const Inputs& in) { return concat({in[0], in[1]}, 0); },
                         {randn({2, 3}), randn({1, 3})});
  expect_gradients_match("concat 3 dim 1",
                         [](const Inputs& in) { return concat({in[0], in[1], in[2]}, 1); },
                         {randn({2, 1, 3}), randn({2, 2, 3}), randn({2, 3, 3})});
  expect_gradients_match("concat 3 dim -1",
                         [](const Inputs& in) { return concat({in[0], in[1], in[2]}, -1); },
                         {randn({2, 3, 1}), randn({2, 3, 2}), randn({2, 3, 1})});
  expect_gradients_match(
      "concat same tensor twice with a view",
      [](const Inputs& in) { return concat({in[0], transpose(in[1], 0, 1), in[0]}, 0); },
      {randn({2, 3}), randn({3, 2})});
}

TEST(GradcheckShape, IndexSelect) {
  manual_seed(55);
  const Tensor idx = indices({2, 0, 2, 2, 1}, {5});
  expect_gradients_match("index_select dim 0 repeated",
                         [idx](const Inputs& in) { return index_select(in[0], 0, idx); },
                         {randn({3, 4})});
  const Tensor idx1 = indices({3, 3, 0}, {3});
  expect_gradients_match("index_select dim 1 repeated",
                         [idx1](const Inputs& in) { return index_select(in[0], 1, idx1); },
                         {randn({2, 4, 3})});
  expect_gradients_match("index_select dim -1 of a transposed view",
                         [idx1](const Inputs& in) {
                           return index_select(transpose(in[0], 0, 1), -1, idx1);
                         },
                         {randn({4, 3})});
}

TEST(GradcheckShape, IndexAdd) {
  manual_seed(56);
  const Tensor idx = indices({1, 3, 1, 0, 1}, {5});
  expect_gradients_match(
      "index_add dim 0 repeated",
      [idx](const Inputs& in) { return index_add({4, 3}, 0, idx, in[0]); }, {randn({5, 3})});
  const Tensor idx1 = indices({2, 2, 0}, {3});
  expect_gradients_match(
      "index_add dim 1 repeated",
      [idx1](const Inputs& in) { return index_add({2, 3, 2}, 1, idx1, in[0]); },
      {randn({2, 3, 2})});
}

TEST(GradcheckShape, Embedding) {
  manual_seed(57);
  const Tensor ids = indices({1, 4, 1, 0, 4, 4}, {2, 3});
  expect_gradients_match("embedding 2-D indices repeated",
                         [ids](const Inputs& in) { return embedding(in[0], ids); },
                         {randn({5, 3})});
  const Tensor flat = indices({2, 2, 0}, {3});
  expect_gradients_match("embedding 1-D indices",
                         [flat](const Inputs& in) { return embedding(in[0], flat); },
                         {randn({3, 4})});
}

TEST(GradcheckShape, CopiesAndConversions) {
  manual_seed(58);
  expect_gradients_match("contiguous of a transposed view",
                         [](const Inputs& in) { return transpose(in[0], 0, 1).contiguous(); },
                         {randn({3, 4})});
  expect_gradients_match("clone", [](const Inputs& in) { return in[0].clone() * in[0]; },
                         {randn({3, 4})});
}

// ============================================================================================
// Softmax family and dropout
// ============================================================================================

TEST(GradcheckNN, Softmax) {
  manual_seed(60);
  for (int64_t dim : {0, 1, 2, -1}) {
    expect_gradients_match("softmax dim " + std::to_string(dim),
                           [dim](const Inputs& in) { return softmax(in[0], dim); },
                           {randn({2, 3, 4})});
  }
}

TEST(GradcheckNN, LogSoftmax) {
  manual_seed(61);
  for (int64_t dim : {0, 1, 2, -1}) {
    expect_gradients_match("log_softmax dim " + std::to_string(dim),
                           [dim](const Inputs& in) { return log_softmax(in[0], dim); },
                           {randn({2, 3, 4})});
  }
  expect_gradients_match("log_softmax of a transposed view",
                         [](const Inputs& in) { return log_softmax(transpose(in[0], 0, 1), 1); },
                         {randn({4, 3})});
}

TEST(GradcheckNN, Dropout) {
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
  y.backward(Tensor::ones(y.shape(), kF64));
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

// ============================================================================================
// Convolution and pooling
// ============================================================================================

struct ConvCase {
  std::string name;
  Shape x, w;
  bool bias;
  Conv2dParams p;
};

Conv2dParams conv_params(int64_t stride_h, int64_t stride_w, int64_t pad_top, int64_t pad_left,
                         int64_t pad_bottom, int64_t pad_right, int64_t dil_h, int64_t dil_w,
                         int64_t groups) {
  Conv2dParams p;
  p.stride_h = stride_h;
  p.stride_w = stride_w;
  p.pad_top = pad_top;
  p.pad_left = pad_left;
  p.pad_bottom = pad_bottom;
  p.pad_right = pad_right;
  p.dilation_h = dil_h;
  p.dilation_w = dil_w;
  p.groups = groups;
  return p;
}

TEST(GradcheckConv, Conv2d) {
  manual_seed(70);
  const std::vector<ConvCase> cases = {
      {"plain with bias", {2, 2, 4, 4}, {3, 2, 3, 3}, true, conv_params(1, 1, 0, 0, 0, 0, 1, 1, 1)},
      {"plain no bias", {1, 2, 4, 5}, {2, 2, 2, 3}, false, conv_params(1, 1, 0, 0, 0, 0, 1, 1, 1)},
      {"stride 2 pad 1", {1, 2, 5, 5}, {2, 2, 3, 3}, true, conv_params(2, 2, 1, 1, 1, 1, 1, 1, 1)},
      {"stride (2,1) asymmetric pad", {1, 2, 4, 4}, {2, 2, 3, 2}, false,
       conv_params(2, 1, 1, 0, 2, 1, 1, 1, 1)},
      {"asymmetric pad bottom/right only", {1, 1, 4, 4}, {2, 1, 3, 3}, true,
       conv_params(1, 1, 0, 0, 1, 2, 1, 1, 1)},
      {"dilation 2 pad 1", {1, 1, 6, 6}, {2, 1, 2, 2}, true, conv_params(1, 1, 1, 1, 1, 1, 2, 2, 1)},
      {"dilation (2,1) stride (1,2)", {1, 2, 5, 6}, {2, 2, 2, 3}, false,
       conv_params(1, 2, 0, 1, 0, 1, 2, 1, 1)},
      {"groups 2", {1, 4, 4, 4}, {4, 2, 2, 2}, true, conv_params(1, 1, 0, 0, 0, 0, 1, 1, 2)},
      {"depthwise groups 3 pad 1", {2, 3, 3, 3}, {3, 1, 3, 3}, false,
       conv_params(1, 1, 1, 1, 1, 1, 1, 1, 3)},
      {"groups 2, 2 out per group, stride 2", {1, 2, 5, 5}, {4, 1, 3, 3}, true,
       conv_params(2, 2, 1, 1, 0, 0, 1, 1, 2)},
  };
  for (const auto& c : cases) {
    Inputs in{randn(c.x), randn(c.w, 0, 0.5)};
    if (c.bias) in.push_back(randn({c.w[0]}));
    const Conv2dParams p = c.p;
    expect_gradients_match(
        "conv2d " + c.name,
        [p](const Inputs& v) { return conv2d(v[0], v[1], v.size() > 2 ? v[2] : Tensor(), p); },
        in);
  }
}

TEST(GradcheckConv, Conv2dNonContiguousInput) {
  manual_seed(71);
  expect_gradients_match(
      "conv2d of a permuted input",
      [](const Inputs& v) { return conv2d(permute(v[0], {1, 0, 2, 3}), v[1], v[2], {}); },
      {randn({2, 1, 4, 4}), randn({2, 2, 3, 3}), randn({2})});
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

TEST(GradcheckPool, MaxPool2d) {
  manual_seed(72);
  struct Case {
    std::string name;
    Shape x;
    Pool2dParams p;
  };
  const std::vector<Case> cases = {
      {"2x2 stride 2", {2, 2, 4, 4}, pool_params(2, 2, 2, 2, 0, 0, 0, 0)},
      {"3x3 stride 2 pad 1", {1, 2, 5, 5}, pool_params(3, 3, 2, 2, 1, 1, 1, 1)},
      {"overlapping 2x3 stride 1x2 pad", {1, 1, 4, 5}, pool_params(2, 3, 1, 2, 1, 1, 0, 1)},
      {"3x3 stride 1 pad bottom/right", {1, 1, 4, 4}, pool_params(3, 3, 1, 1, 0, 0, 1, 1)},
  };
  for (const auto& c : cases) {
    const Pool2dParams p = c.p;
    expect_gradients_match("max_pool2d " + c.name,
                           [p](const Inputs& v) { return max_pool2d(v[0], p); },
                           {spaced(c.x, -3, 3)});
  }
}

TEST(GradcheckPool, AvgPool2d) {
  manual_seed(73);
  struct Case {
    std::string name;
    Shape x;
    Pool2dParams p;
  };
  for (bool include : {true, false}) {
    const std::vector<Case> cases = {
        {"2x2 stride 2", {2, 2, 4, 4}, pool_params(2, 2, 2, 2, 0, 0, 0, 0, include)},
        {"3x3 stride 2 pad 1", {1, 2, 5, 5}, pool_params(3, 3, 2, 2, 1, 1, 1, 1, include)},
        {"overlapping 2x3 stride 1x2 pad", {1, 1, 4, 5},
         pool_params(2, 3, 1, 2, 1, 1, 0, 1, include)},
        {"3x3 stride 1 pad bottom/right", {1, 1, 4, 4},
         pool_params(3, 3, 1, 1, 0, 0, 1, 1, include)},
    };
    for (const auto& c : cases) {
      const Pool2dParams p = c.p;
      expect_gradients_match(
          "avg_pool2d " + c.name + (include ? " count_include_pad" : " exclude pad"),
          [p](const Inputs& v) { return avg_pool2d(v[0], p); }, {randn(c.x)});
    }
  }
}

TEST(GradcheckPool, AvgPool2dCountIncludePadBottomRight) {
  Pool2dParams p = pool_params(2, 2, 2, 2, 0, 0, 1, 1, true);
  const Tensor y = avg_pool2d(Tensor::ones({1, 1, 3, 3}, kF64), p);
  EXPECT_EQ(values_of(y), (std::vector<double>{1, 0.5, 0.5, 0.25}));
}

// ============================================================================================
// Normalization
// ============================================================================================

TEST(GradcheckNorm, BatchNormTraining) {
  manual_seed(80);
  for (const Shape& shape : std::vector<Shape>{{4, 3}, {2, 3, 2, 2}}) {
    const int64_t c = shape[1];
    // Running statistics are updated in place on every call but do not affect training output.
    const Tensor rm = Tensor::zeros({c}, kF64);
    const Tensor rv = Tensor::ones({c}, kF64);
    expect_gradients_match(
        "batch_norm training " + shape_str(shape) + " x, weight, bias",
        [rm, rv](const Inputs& v) { return batch_norm(v[0], v[1], v[2], rm, rv, true, 0.1, 1e-5); },
        {randn(shape, 0.5, 2), randn({c}, 1, 0.5), randn({c})});
    expect_gradients_match(
        "batch_norm training " + shape_str(shape) + " no affine, no running stats",
        [](const Inputs& v) {
          return batch_norm(v[0], Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-5);
        },
        {randn(shape, -1, 1.5)});
  }
}

TEST(GradcheckNorm, BatchNormEval) {
  manual_seed(81);
  for (const Shape& shape : std::vector<Shape>{{4, 3}, {2, 3, 2, 2}}) {
    const int64_t c = shape[1];
    const Tensor rm = randn({c});
    const Tensor rv = randu({c}, 0.5, 2.0);
    expect_gradients_match(
        "batch_norm eval " + shape_str(shape) + " x, weight, bias",
        [rm, rv](const Inputs& v) {
          return batch_norm(v[0], v[1], v[2], rm, rv, false, 0.1, 1e-5);
        },
        {randn(shape), randn({c}, 1, 0.5), randn({c})});
  }
}

TEST(GradcheckNorm, LayerNorm) {
  manual_seed(82);
  expect_gradients_match(
      "layer_norm (3,4) over (4,)",
      [](const Inputs& v) { return layer_norm(v[0], {4}, v[1], v[2], 1e-5); },
      {randn({3, 4}, 1, 2), randn({4}, 1, 0.5), randn({4})});
  expect_gradients_match(
      "layer_norm (2,3,4) over (3,4)",
      [](const Inputs& v) { return layer_norm(v[0], {3, 4}, v[1], v[2], 1e-5); },
      {randn({2, 3, 4}), randn({3, 4}, 1, 0.5), randn({3, 4})});
  expect_gradients_match(
      "layer_norm (2,5) without affine",
      [](const Inputs& v) { return layer_norm(v[0], {5}, Tensor(), Tensor(), 1e-5); },
      {randn({2, 5}, -1, 3)});
}

// ============================================================================================
// Losses, with respect to y_pred
// ============================================================================================

TEST(GradcheckLoss, MeanSquaredError) {
  manual_seed(90);
  const Tensor y_true = randn({4, 3});
  expect_gradients_match(
      "mean_squared_error",
      [y_true](const Inputs& v) { return nn::mean_squared_error(y_true, v[0]); },
      {randn({4, 3})});
  const Tensor y_flat = randn({4});
  expect_gradients_match(
      "mean_squared_error (4,) vs (4,1)",
      [y_flat](const Inputs& v) { return nn::mean_squared_error(y_flat, v[0]); },
      {randn({4, 1})});
}

TEST(GradcheckLoss, BinaryCrossentropy) {
  manual_seed(91);
  const Tensor hard = Tensor::from_vector(std::vector<double>{1, 0, 0, 1, 1, 0}, {6, 1});
  const Tensor soft = randu({6, 1}, 0, 1);
  for (const Tensor& y_true : {hard, soft}) {
    expect_gradients_match(
        "binary_crossentropy probabilities",
        [y_true](const Inputs& v) { return nn::binary_crossentropy(y_true, v[0], false); },
        {randu({6, 1}, 0.1, 0.9)});
    expect_gradients_match(
        "binary_crossentropy from_logits",
        [y_true](const Inputs& v) { return nn::binary_crossentropy(y_true, v[0], true); },
        {randn({6, 1}, 0, 2)});
  }
}

TEST(GradcheckLoss, CategoricalCrossentropy) {
  manual_seed(92);
  const Tensor one_hot =
      Tensor::from_vector(std::vector<double>{0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1}, {3, 4});
  const Tensor soft = softmax(randn({3, 4}), 1);
  for (const Tensor& y_true : {one_hot, soft}) {
    expect_gradients_match(
        "categorical_crossentropy probabilities (unnormalized)",
        [y_true](const Inputs& v) { return nn::categorical_crossentropy(y_true, v[0], false); },
        {randu({3, 4}, 0.1, 1.0)});
    expect_gradients_match(
        "categorical_crossentropy from_logits",
        [y_true](const Inputs& v) { return nn::categorical_crossentropy(y_true, v[0], true); },
        {randn({3, 4})});
  }
}

TEST(GradcheckLoss, SparseCategoricalCrossentropy) {
  manual_seed(93);
  const Tensor labels = indices({2, 0, 3}, {3});
  const Tensor float_labels = Tensor::from_vector(std::vector<double>{1, 3, 3}, {3, 1});
  for (const Tensor& y_true : {labels, float_labels}) {
    const std::string kind = y_true.dtype() == DType::kInt64 ? " int64 labels" : " float labels";
    expect_gradients_match(
        "sparse_categorical_crossentropy probabilities" + kind,
        [y_true](const Inputs& v) {
          return nn::sparse_categorical_crossentropy(y_true, v[0], false);
        },
        {randu({3, 4}, 0.05, 0.9)});
    expect_gradients_match(
        "sparse_categorical_crossentropy from_logits" + kind,
        [y_true](const Inputs& v) {
          return nn::sparse_categorical_crossentropy(y_true, v[0], true);
        },
        {randn({3, 4})});
  }
}

TEST(GradcheckLoss, NllLoss) {
  manual_seed(94);
  const Tensor labels = indices({1, 1, 0, 2}, {4});
  expect_gradients_match("nll_loss of raw values",
                         [labels](const Inputs& v) { return nn::nll_loss(v[0], labels); },
                         {randn({4, 3})});
  expect_gradients_match(
      "nll_loss of log_softmax",
      [labels](const Inputs& v) { return nn::nll_loss(log_softmax(v[0], 1), labels); },
      {randn({4, 3})});
}

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
  sum(mul(x, 2.0)).backward();
  EXPECT_EQ(values_of(x.grad()), (std::vector<double>{2, 2, 2}));
  sum(mul(x, x)).backward();
  EXPECT_EQ(values_of(x.grad()), (std::vector<double>{4, 6, 8}));
  x.zero_grad();
  EXPECT_FALSE(x.grad().defined());
  sum(x).backward();
  EXPECT_EQ(values_of(x.grad()), (std::vector<double>{1, 1, 1}));
}

TEST(AutogradEngine, TensorUsedTwiceGetsSummedGradient) {
  Tensor x = leaf({-1.5, 0.5, 2});
  const Tensor y = add(mul(x, x), x);  // dy/dx = 2x + 1
  sum(y).backward();
  EXPECT_EQ(values_of(x.grad()), (std::vector<double>{-2, 2, 5}));

  // A diamond: x -> a, b -> a * b, through shared intermediates.
  Tensor z = leaf({0.5, -2});
  const Tensor a = exp(z);
  const Tensor b = mul(a, 3.0);
  sum(mul(a, b)).backward();  // 3 e^{2z} -> 6 e^{2z}
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
  EXPECT_THROW(y.backward(), ShapeError);
  // With an explicit gradient it works: d(3x) . g = 3g.
  y.backward(Tensor::from_vector(std::vector<double>{1, -1, 0.5}, {3}));
  EXPECT_EQ(values_of(x.grad()), (std::vector<double>{3, -3, 1.5}));
  // A gradient of the wrong shape is a ShapeError too.
  const Tensor y2 = mul(x, 3.0);
  EXPECT_THROW(y2.backward(Tensor::ones({2}, kF64)), ShapeError);
}

TEST(AutogradEngine, BackwardOnTensorWithoutGraphThrows) {
  const Tensor x = Tensor::from_vector(std::vector<double>{1, 2}, {2});
  EXPECT_THROW(sum(x).backward(), ValueError);
}

TEST(AutogradEngine, BackwardTwiceNeedsRetainGraph) {
  {
    Tensor x = leaf({1, 2, 3});
    const Tensor loss = sum(add(mul(x, x), x));
    loss.backward();
    EXPECT_THROW(loss.backward(), ValueError);
  }
  {
    Tensor x = leaf({1, 2, 3});
    const Tensor loss = sum(add(mul(x, x), x));
    loss.backward(Tensor(), /*retain_graph=*/true);
    EXPECT_EQ(values_of(x.grad()), (std::vector<double>{3, 5, 7}));
    EXPECT_NO_THROW(loss.backward());
    EXPECT_EQ(values_of(x.grad()), (std::vector<double>{6, 10, 14}));
    EXPECT_THROW(loss.backward(), ValueError);  // the second call did not retain
  }
}

TEST(AutogradEngine, DetachStopsGradients) {
  Tensor x = leaf({1.5, -2});
  const Tensor d = x.detach();
  EXPECT_FALSE(d.requires_grad());
  EXPECT_TRUE(d.is_leaf());
  // y = stopgrad(x) * x: dy/dx = x, not 2x.
  sum(mul(d, x)).backward();
  EXPECT_EQ(values_of(x.grad()), (std::vector<double>{1.5, -2}));
  // A detached intermediate cuts the graph above it.
  Tensor z = leaf({0.5, 1});
  const Tensor hidden = exp(z).detach();
  const Tensor out = sum(mul(hidden, 2.0));
  EXPECT_FALSE(out.requires_grad());
  EXPECT_THROW(out.backward(), ValueError);
  EXPECT_FALSE(z.grad().defined());
}

TEST(AutogradEngine, InputsWithoutRequiresGradGetNoGradient) {
  Tensor x = leaf({1, 2});
  const Tensor c = Tensor::from_vector(std::vector<double>{3, 4}, {2});
  sum(mul(x, c)).backward();
  EXPECT_EQ(values_of(x.grad()), (std::vector<double>{3, 4}));
  EXPECT_FALSE(c.grad().defined());
}

}  // namespace
