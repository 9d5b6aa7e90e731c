// Fast paths against the reference paths they replace: every op-table case with the "fast" check
// (float32 convolution on oneDNN against the float64 im2col reference, the Dense fast paths, the
// fused first layer), fused linear / softmax-cross-entropy against their unfused compositions, the
// 2x2 max-pool fast path against a plain loop, and bf16 compute precision.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "neutrino/autograd/autograd.h"
#include "neutrino/core/precision.h"
#include "neutrino/core/random.h"
#include "neutrino/neutrino.h"
#include "neutrino/nn/losses.h"
#include "neutrino/ops/op_util.h"
#include "neutrino/ops/ops.h"
#include "op_table.h"
#include "test_util.h"

using namespace neutrino;
using neutrino::testing::max_rel_diff;

namespace {

struct Grads {
  Tensor out, gx, gw, gb;
};

// Output and input gradients of L = sum(conv(x) * r).
Grads conv_grads(const Tensor& x0, const Tensor& w0, const Tensor& b0, const Tensor& r,
                 const Conv2dParams& p, Epilogue e, DType dtype) {
  Tensor x = cast(x0, dtype).detach().set_requires_grad(), w = cast(w0, dtype).detach().set_requires_grad();
  Tensor b = b0.defined() ? cast(b0, dtype).detach().set_requires_grad() : Tensor();
  Tensor out = conv2d(x, w, b, p, e);
  backward(sum(mul(out, cast(r, dtype))));
  return {out, x.grad(), w.grad(), b.defined() ? b.grad() : Tensor()};
}

Conv2dParams params(int64_t stride, int64_t pad, int64_t dilation, int64_t groups) {
  return {.stride_h = stride, .stride_w = stride, .pad_top = pad, .pad_left = pad,
          .pad_bottom = pad, .pad_right = pad, .dilation_h = dilation, .dilation_w = dilation,
          .groups = groups};
}

struct ConvCase {
  std::string name;
  Shape x, w;
  bool bias;
  Conv2dParams p;
};

const std::vector<ConvCase>& conv_cases() {
  static const std::vector<ConvCase> cases = {
      {"3x3 same, 1 channel (first layer)", {4, 1, 12, 12}, {8, 1, 3, 3}, true, params(1, 1, 1, 1)},
      {"3x3 same, 16 -> 32", {3, 16, 9, 9}, {32, 16, 3, 3}, true, params(1, 1, 1, 1)},
      {"stride 2, no bias", {2, 3, 11, 10}, {5, 3, 3, 3}, false, params(2, 0, 1, 1)},
      {"dilation 2", {2, 4, 10, 10}, {6, 4, 3, 3}, true, params(1, 2, 2, 1)},
      {"groups 2", {2, 8, 7, 7}, {6, 4, 3, 3}, true, params(1, 1, 1, 2)},
      {"asymmetric padding", {2, 3, 6, 7}, {4, 3, 2, 3}, true,
       {.pad_top = 0, .pad_left = 1, .pad_bottom = 1, .pad_right = 2}},
  };
  return cases;
}

}  // namespace

// Every op-table case with the "fast" check: float32, where the fast kernels run (oneDNN, the
// channels-last layouts, the fused first layer, the few-row Dense), against float64, where the
// reference kernels run (im2col + GEMM, plain loops): outputs and the gradients of
// sum_k sum(out_k * r_k) with a graph, and outputs without one (the inference paths).
class OpTableFast : public ::testing::TestWithParam<neutrino::testing::OpCase> {};

TEST_P(OpTableFast, Float32MatchesFloat64Reference) {
  const neutrino::testing::OpCase& c = GetParam();
  manual_seed(neutrino::testing::case_seed(c.name));
  const std::vector<Tensor> base = neutrino::testing::make_inputs(c, DType::kFloat64);
  std::vector<Tensor> weights;  // r_k, drawn on the float64 run
  auto run = [&](DType dtype, bool graph) {
    std::vector<Tensor> in, results;
    for (size_t i = 0; i < base.size(); ++i) {
      Tensor t = is_floating(base[i].dtype()) ? cast(base[i], dtype).detach() : base[i];
      if (graph && is_floating(t.dtype()) && c.inputs[i].grad) t.set_requires_grad(true);
      in.push_back(t);
    }
    std::optional<NoGradGuard> no_grad;
    if (!graph) no_grad.emplace();
    const std::vector<Tensor> outs = neutrino::testing::run_op(c, in, dtype);
    Tensor loss;
    for (size_t k = 0; k < outs.size(); ++k) {
      results.push_back(outs[k].detach());
      if (!graph || !outs[k].requires_grad()) continue;
      if (weights.size() <= k)
        weights.push_back(Tensor::normal(outs[k].shape(), 0, 1, DType::kFloat64));
      const Tensor term = sum(mul(outs[k], cast(weights[k], dtype)));
      loss = loss.defined() ? add(loss, term) : term;
    }
    if (loss.defined()) backward(loss);
    for (const Tensor& t : in) {
      if (t.requires_grad()) results.push_back(t.grad());
    }
    return results;
  };
  for (bool graph : {true, false}) {
    const std::vector<Tensor> want = run(DType::kFloat64, graph);
    const std::vector<Tensor> got = run(DType::kFloat32, graph);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_TRUE(got[i].defined() && want[i].defined()) << "result " << i;
      EXPECT_LT(max_rel_diff(got[i], want[i]), 1e-4)
          << c.name << (graph ? " with a graph" : " without a graph") << ", result " << i
          << " (outputs, then input gradients)";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(OpTable, OpTableFast,
                         ::testing::ValuesIn(neutrino::testing::op_cases_with("fast")),
                         neutrino::testing::CaseName());

TEST(FastConv, InferenceModeMatchesTraining) {
  manual_seed(4);
  const Tensor x = Tensor::normal({3, 4, 8, 8}), w = Tensor::normal({6, 4, 3, 3});
  const Tensor b = Tensor::normal({6});
  const Tensor trained = conv2d(x, w.detach().set_requires_grad(), b, params(1, 1, 1, 1));
  NoGradGuard no_grad;
  const Tensor inferred = conv2d(x, w, b, params(1, 1, 1, 1), Epilogue::kRelu);
  EXPECT_LT(max_rel_diff(inferred, relu(trained.detach())), 1e-5);
}

TEST(FastConv, Bf16StaysCloseToFloat32) {
  manual_seed(5);
  const auto& c = conv_cases()[1];
  const Tensor x = Tensor::normal(c.x), w = Tensor::normal(c.w, 0, 0.3), b = Tensor::normal({32});
  const Tensor r = Tensor::normal({3, 32, 9, 9});
  const Grads fp32 = conv_grads(x, w, b, r, c.p, Epilogue::kNone, DType::kFloat32);
  Grads bf16;
  {
    PrecisionGuard guard(Precision::kBFloat16);
    EXPECT_EQ(compute_precision(),
              bf16_supported() ? Precision::kBFloat16 : Precision::kFloat32);
    bf16 = conv_grads(x, w, b, r, c.p, Epilogue::kNone, DType::kFloat32);
  }
  EXPECT_EQ(compute_precision(), Precision::kFloat32);
  // bfloat16 keeps 8 significant bits: a sum of 144 products stays within a few percent.
  const double tol = bf16_supported() ? 5e-2 : 0.0;
  EXPECT_LE(max_rel_diff(bf16.out, fp32.out), tol);
  EXPECT_LE(max_rel_diff(bf16.gx, fp32.gx), tol);
  EXPECT_LE(max_rel_diff(bf16.gw, fp32.gw), tol * 4);  // sums over the whole batch
  if (bf16_supported()) {
    EXPECT_GT(max_rel_diff(bf16.out, fp32.out), 0.0) << "bf16 was not used";
  }
}

TEST(FastMatmul, Bf16StaysCloseToFloat32) {
  manual_seed(6);
  const Tensor a = Tensor::normal({64, 96}), w = Tensor::normal({80, 96}), bias = Tensor::normal({80});
  const Tensor fp32 = linear(a, w, bias);
  Tensor bf16;
  {
    PrecisionGuard guard(Precision::kBFloat16);
    bf16 = linear(a, w, bias);
  }
  const double diff = max_rel_diff(bf16, fp32);
  if (!bf16_supported()) {
    EXPECT_EQ(diff, 0.0);
    return;
  }
  EXPECT_LT(diff, 0.1);
  EXPECT_GT(diff, 0.0) << "bf16 was not used";
}

TEST(FastLinear, ReluEpilogueMatchesUnfused) {
  manual_seed(7);
  for (DType dtype : {DType::kFloat32, DType::kFloat64}) {
    for (const Shape& xs : {Shape{5, 7}, Shape{2, 3, 7}}) {
      Tensor x1 = Tensor::normal(xs, 0, 1, dtype).set_requires_grad();
      Tensor w1 = Tensor::normal({4, 7}, 0, 1, dtype).set_requires_grad();
      Tensor b1 = Tensor::normal({4}, 0, 1, dtype).set_requires_grad();
      Tensor x2 = x1.detach().set_requires_grad(), w2 = w1.detach().set_requires_grad();
      Tensor b2 = b1.detach().set_requires_grad();
      Tensor r = Tensor::normal(Shape(xs.begin(), xs.end() - 1), 0, 1, dtype);
      const Tensor fused = linear(x1, w1, b1, Epilogue::kRelu);
      const Tensor plain = relu(add(matmul(x2, transpose(w2, 0, 1)), b2));
      EXPECT_LT(max_rel_diff(fused, plain), 1e-6);
      backward(sum(fused));
      backward(sum(plain));
      EXPECT_LT(max_rel_diff(x1.grad(), x2.grad()), 1e-6);
      EXPECT_LT(max_rel_diff(w1.grad(), w2.grad()), 1e-6);
      EXPECT_LT(max_rel_diff(b1.grad(), b2.grad()), 1e-6);
    }
  }
}

TEST(FastLoss, SoftmaxCrossEntropyMatchesLogSoftmaxNll) {
  manual_seed(8);
  Tensor z1 = Tensor::normal({6, 5}, 0, 3, DType::kFloat64).set_requires_grad();
  Tensor z2 = z1.detach().set_requires_grad();
  const Tensor labels = Tensor::from_vector(std::vector<int64_t>{0, 4, 2, 2, 1, 3}, {6});
  const Tensor fused = softmax_cross_entropy(z1, labels);
  const Tensor plain = nn::nll_loss(log_softmax(z2, 1), labels);
  EXPECT_NEAR(fused.item(), plain.item(), 1e-12);
  backward(fused);
  backward(plain);
  EXPECT_LT(max_rel_diff(z1.grad(), z2.grad()), 1e-12);
  // Huge logits stay finite (the max is subtracted first).
  const Tensor big = Tensor::from_vector(std::vector<float>{1000, -1000, 0, 2000}, {2, 2});
  const Tensor loss = softmax_cross_entropy(big, Tensor::from_vector(std::vector<int64_t>{1, 0}, {2}));
  EXPECT_NEAR(loss.item(), (2000.0 + 2000.0) / 2, 1e-3);
}

TEST(FastLoss, SoftmaxCrossEntropyRejectsBadLabels) {
  const Tensor z = Tensor::zeros({2, 3});
  neutrino::testing::expect_error<ValueError>(
      [&] { softmax_cross_entropy(z, Tensor::from_vector(std::vector<int64_t>{0, 3}, {2})); },
      {"softmax_cross_entropy", "label 3", "position 1", "3 classes"});
  neutrino::testing::expect_error<ShapeError>(
      [&] { softmax_cross_entropy(z, Tensor::from_vector(std::vector<int64_t>{0}, {1})); },
      {"softmax_cross_entropy", "1 labels", "(2, 3)"});
}

TEST(FastPool, TwoByTwoMatchesPlainLoopWithTiesAndNaN) {
  manual_seed(9);
  Tensor x = Tensor::normal({2, 3, 6, 8});
  std::vector<float> v = x.to_vector<float>();
  v[0] = v[1] = 5.0f;  // a tie: the first one wins
  v[10] = std::numeric_limits<float>::quiet_NaN();
  x = Tensor::from_vector(v, x.shape());
  Tensor xg = x.detach().set_requires_grad();
  const Tensor y = max_pool2d(xg, {});
  const auto got = y.to_vector<float>();
  size_t i = 0;
  std::vector<double> grad_want(v.size(), 0.0);
  for (int64_t plane = 0; plane < 6; ++plane) {
    for (int64_t oy = 0; oy < 3; ++oy) {
      for (int64_t ox = 0; ox < 4; ++ox, ++i) {
        float best = 0;
        int64_t at = -1;
        for (int64_t dy = 0; dy < 2; ++dy) {
          for (int64_t dx = 0; dx < 2; ++dx) {
            const int64_t k = plane * 48 + (2 * oy + dy) * 8 + 2 * ox + dx;
            if (at < 0 || v[k] > best || (std::isnan(v[k]) && !std::isnan(best))) {
              best = v[k];
              at = k;
            }
          }
        }
        if (std::isnan(best)) {
          EXPECT_TRUE(std::isnan(got[i])) << i;
        } else {
          EXPECT_EQ(got[i], best) << i;
        }
        grad_want[static_cast<size_t>(at)] += 1.0;
      }
    }
  }
  backward(sum(y));
  neutrino::testing::expect_values(xg.grad(), grad_want, 0.0);
}

// conv -> relu -> pool -> conv -> pool -> flatten, as in a CNN: in float32 the activations stay
// channels-last between oneDNN and the pool kernels; float64 runs the plain NCHW reference.
TEST(FastConv, ChannelsLastChainMatchesReference) {
  manual_seed(10);
  const Tensor x0 = Tensor::normal({3, 2, 10, 10});
  const Tensor w1 = Tensor::normal({8, 2, 3, 3}, 0, 0.3), b1 = Tensor::normal({8});
  const Tensor w2 = Tensor::normal({6, 8, 3, 3}, 0, 0.3), b2 = Tensor::normal({6});
  const Tensor r = Tensor::normal({3, 6 * 2 * 2});
  std::vector<Tensor> results[2];
  for (int k = 0; k < 2; ++k) {
    const DType dtype = k == 0 ? DType::kFloat64 : DType::kFloat32;
    std::vector<Tensor> leaves;
    for (const Tensor& t : {x0, w1, b1, w2, b2}) leaves.push_back(cast(t, dtype).detach().set_requires_grad());
    Tensor h = conv2d(leaves[0], leaves[1], leaves[2], params(1, 1, 1, 1), Epilogue::kRelu);
    if (k == 1) {
      EXPECT_FALSE(h.is_contiguous());  // channels-last
    }
    h = max_pool2d(h, {});
    h = conv2d(h, leaves[3], leaves[4], params(1, 1, 1, 1), Epilogue::kRelu);
    h = flatten(max_pool2d(h, {}));
    backward(sum(mul(h, cast(r, dtype))));
    results[k].push_back(h);
    for (const Tensor& leaf : leaves) results[k].push_back(leaf.grad());
  }
  for (size_t i = 0; i < results[0].size(); ++i) {
    EXPECT_LT(max_rel_diff(results[1][i], results[0][i]), 1e-4) << "result " << i;
  }
}

TEST(FastPool, ChannelsLastMatchesPlain) {
  manual_seed(11);
  for (const Shape& s : {Shape{2, 5, 6, 8}, Shape{2, 3, 7, 5}}) {
    const Tensor plain = Tensor::normal(s);
    Tensor a = plain.detach().set_requires_grad();
    Tensor b = detail::to_channels_last(plain).detach().set_requires_grad();
    ASSERT_FALSE(b.is_contiguous());
    const Tensor ya = max_pool2d(a, {}), yb = max_pool2d(b, {});
    EXPECT_EQ(ya.to_vector<float>(), yb.to_vector<float>());
    const Tensor r = Tensor::normal(ya.shape());
    backward(sum(mul(ya, r)));
    backward(sum(mul(yb, r)));
    EXPECT_EQ(a.grad().to_vector<float>(), b.grad().to_vector<float>());
  }
}

// relu(max_pool2d(x)) in one pass (channels-last 2x2) against the two ops, in float32 and bf16:
// windows that are all negative, all zero, tied, or hold a NaN, where relu's mask and the
// pool's first-winner rule meet.
TEST(FastPool, ReluInThePoolMatchesReluAfterThePool) {
  manual_seed(12);
  const Shape s{2, 20, 6, 8};
  std::vector<float> v = cast(cast(Tensor::normal(s), DType::kBFloat16), DType::kFloat32).to_vector<float>();
  auto at = [&](int64_t c, int64_t h, int64_t w) {
    return static_cast<size_t>(((1 * s[1] + c) * s[2] + h) * s[3] + w);
  };
  for (int64_t h = 0; h < 2; ++h) {
    for (int64_t w = 0; w < 2; ++w) {
      v[at(0, h, w)] = -1.0f - static_cast<float>(h + w);  // all negative
      v[at(1, h, w)] = 0.0f;                               // all zero
      v[at(2, h, w)] = 2.0f;                               // a four-way tie
    }
  }
  v[at(3, 2, 2)] = std::numeric_limits<float>::quiet_NaN();
  const Tensor plain = Tensor::from_vector(v, s);
  for (DType dtype : {DType::kFloat32, DType::kBFloat16}) {
    const Tensor x0 = detail::to_channels_last(cast(plain, dtype));
    const Tensor r = cast(cast(Tensor::normal({2, 20, 3, 4}), DType::kBFloat16), DType::kFloat32);
    Tensor a = x0.detach().set_requires_grad(), b = x0.detach().set_requires_grad();
    const Tensor ya = detail::max_pool2d_relu(a, {});
    const Tensor yb = relu(cast(max_pool2d(cast(cast(b, DType::kFloat32), dtype), {}), DType::kFloat32));
    EXPECT_TRUE(detail::is_channels_last(ya));
    EXPECT_EQ(ya.to_vector<float>(), yb.to_vector<float>()) << dtype_name(dtype);
    backward(sum(mul(cast(ya, DType::kFloat32), r)));
    backward(sum(mul(yb, r)));
    EXPECT_EQ(a.grad().to_vector<float>(), b.grad().to_vector<float>()) << dtype_name(dtype);
  }
}

// contiguous() of transposed and permuted views (the tiled and row-copy paths of copy_strided)
// against element-by-element indexing.
TEST(FastCopy, StridedCopiesMatchIndexing) {
  manual_seed(12);
  // The second base is large enough for the parallel path.
  // The third has a size-1 dim and dims that merge (a channels-last (N, 1, 7, 64) made NCHW).
  for (const Shape& base_shape : {Shape{3, 5, 37, 19}, Shape{4, 64, 40, 30}, Shape{2, 1, 7, 64}})
  for (const std::vector<int64_t>& dims :
       {std::vector<int64_t>{0, 2, 3, 1}, {0, 3, 1, 2}, {3, 2, 1, 0}, {1, 0, 2, 3}, {0, 1, 3, 2}}) {
    const Tensor base = Tensor::normal(base_shape);
    const Tensor view = permute(base, dims);
    const Tensor copy = contiguous(view);
    ASSERT_TRUE(copy.is_contiguous());
    const auto got = copy.to_vector<float>();
    size_t i = 0;
    const Shape& s = view.shape();
    for (int64_t a = 0; a < s[0]; ++a) {
      for (int64_t b = 0; b < s[1]; ++b) {
        for (int64_t c = 0; c < s[2]; ++c) {
          for (int64_t d = 0; d < s[3]; ++d, ++i) {
            ASSERT_EQ(got[i], static_cast<float>(view.at({a, b, c, d})));
          }
        }
      }
    }
  }
}

// concat of channels-last parts (how micro-batched inference reassembles a batch) copies each
// part through the strided fast path.
TEST(FastCopy, ConcatOfChannelsLastPartsMatchesContiguous) {
  manual_seed(16);
  std::vector<Tensor> views, dense;
  for (int64_t n : {3, 5}) {
    views.push_back(permute(Tensor::normal({n, 7, 7, 64}), {0, 3, 1, 2}));
    dense.push_back(contiguous(views.back()));
  }
  EXPECT_EQ(concat(views, 0).to_vector<float>(), concat(dense, 0).to_vector<float>());
}

// Inference convolutions keep their reordered weights between calls; a weight changed in place
// must still be seen by the next call.
TEST(FastConv, InferenceSeesWeightsChangedInPlace) {
  manual_seed(17);
  const Tensor x = Tensor::normal({2, 3, 9, 9}), w = Tensor::normal({8, 3, 3, 3});
  const Tensor b = Tensor::normal({8});
  NoGradGuard no_grad;
  for (int round = 0; round < 3; ++round) {
    const Tensor got = conv2d(x, w, b, params(1, 1, 1, 1));
    const Tensor want = conv2d(cast(x, DType::kFloat64), cast(w, DType::kFloat64),
                               cast(b, DType::kFloat64), params(1, 1, 1, 1));
    EXPECT_LT(max_rel_diff(got, want), 1e-5) << "round " << round;
    w.data<float>()[round * 7] += 0.5f;  // as an optimizer step or a weight load would
  }
}

// The fused first-layer conv + relu + 2x2 max pool against the two ops it replaces: several
// channel counts, with and without bias, a NaN, and shapes it must hand back to the unfused path.
TEST(FastConvPool, FusedMatchesConvThenPool) {
  manual_seed(18);
  struct Case {
    Shape x, w;
    bool bias;
  };
  for (const Case& c : {Case{{1, 1, 28, 28}, {32, 1, 3, 3}, true},
                        Case{{5, 3, 10, 12}, {16, 3, 3, 3}, true},
                        Case{{40, 2, 8, 6}, {48, 2, 3, 3}, false},
                        Case{{3, 4, 6, 6}, {64, 4, 3, 3}, true},
                        Case{{2, 1, 7, 8}, {16, 1, 3, 3}, true},   // odd height: unfused
                        Case{{2, 8, 6, 6}, {16, 8, 3, 3}, true},   // 8 input channels: unfused
                        Case{{2, 1, 6, 6}, {24, 1, 3, 3}, true}}) {  // 24 outputs: unfused
    Tensor x = Tensor::normal(c.x);
    const Tensor w = Tensor::normal(c.w), b = c.bias ? Tensor::normal({c.w[0]}) : Tensor();
    x.data<float>()[5] = std::numeric_limits<float>::quiet_NaN();
    NoGradGuard no_grad;
    const Tensor fused = conv2d_relu_max_pool2d(x, w, b, params(1, 1, 1, 1), {});
    // The fused kernel follows our relu's rule (NaN -> 0). oneDNN's relu post-op, which the
    // unfused shapes use, keeps a NaN on AVX2 CPUs (and the pool then spreads it) but makes it 0
    // on AVX-512 ones, so the fused shapes are checked against our relu op instead.
    const bool fused_shape = c.x[1] <= 4 && c.w[0] % 16 == 0 && c.w[0] <= 64 && c.x[2] % 2 == 0;
    const Tensor conv = conv2d(x, w, b, params(1, 1, 1, 1), fused_shape ? Epilogue::kNone : Epilogue::kRelu);
    const Tensor plain = max_pool2d(fused_shape ? relu(conv) : conv, {});
    ASSERT_EQ(fused.shape(), plain.shape());
    const auto got = fused.to_vector<float>(), want = plain.to_vector<float>();
    for (size_t i = 0; i < got.size(); ++i) {
      if (std::isnan(want[i])) {
        EXPECT_TRUE(std::isnan(got[i])) << shape_str(c.x) << " at " << i;
      } else {
        EXPECT_NEAR(got[i], want[i], 1e-4 * std::max(1.0f, std::abs(want[i])))
            << shape_str(c.x) << " at " << i;
      }
    }
  }
}

// With a graph to record, the pair runs unfused and gradients flow.
TEST(FastConvPool, FallsBackWhenGradientsAreNeeded) {
  manual_seed(19);
  const Tensor x = Tensor::normal({2, 1, 6, 6});
  const Tensor w = Tensor::normal({16, 1, 3, 3}).set_requires_grad();
  const Tensor y = conv2d_relu_max_pool2d(x, w, Tensor(), params(1, 1, 1, 1), {});
  backward(sum(y));
  ASSERT_TRUE(w.grad().defined());
  EXPECT_EQ(w.grad().shape(), w.shape());
}

// With a graph, the pair runs as relu(pool(conv)): outputs and all gradients must equal those of
// pool(relu(conv)), in float32 (channels-last, oneDNN) and float64, for 2x2 and 3x3 pools.
TEST(FastConvPool, TrainingOrderGivesTheSameGradients) {
  manual_seed(21);
  for (DType dtype : {DType::kFloat32, DType::kFloat64})
  for (const Pool2dParams& pool : {Pool2dParams{}, Pool2dParams{.kernel_h = 3, .kernel_w = 3}}) {
    const Tensor x0 = cast(Tensor::normal({3, 4, 10, 10}), dtype);
    const Tensor w0 = cast(Tensor::normal({8, 4, 3, 3}), dtype), b0 = cast(Tensor::normal({8}), dtype);
    Tensor outs[2], gx[2], gw[2], gb[2];
    for (int fused = 0; fused < 2; ++fused) {
      const Tensor x = x0.detach().set_requires_grad(), w = w0.detach().set_requires_grad();
      const Tensor b = b0.detach().set_requires_grad();
      const Tensor y =
          fused ? conv2d_relu_max_pool2d(x, w, b, params(1, 1, 1, 1), pool)
                : max_pool2d(conv2d(x, w, b, params(1, 1, 1, 1), Epilogue::kRelu), pool);
      manual_seed(22);
      const Tensor r = cast(Tensor::normal(y.shape()), dtype);
      backward(sum(mul(y, r)));
      outs[fused] = y.detach();
      gx[fused] = x.grad();
      gw[fused] = w.grad();
      gb[fused] = b.grad();
    }
    EXPECT_LT(max_rel_diff(outs[1], outs[0]), 1e-5);
    EXPECT_LT(max_rel_diff(gx[1], gx[0]), 1e-5);
    EXPECT_LT(max_rel_diff(gw[1], gw[0]), 1e-5);
    EXPECT_LT(max_rel_diff(gb[1], gb[0]), 1e-5);
  }
}

// A Sequential's inference (which fuses Conv2D(relu) + MaxPooling2D) against its layers run one
// by one, and a pair the fusion must leave alone (average pooling).
TEST(FastConvPool, SequentialInferenceMatchesLayerByLayer) {
  manual_seed(20);
  for (bool average : {false, true}) {
    std::vector<nn::AnyLayer> layers;
    layers.push_back(nn::Conv2D(32, 3, {.input_shape = {1, 12, 12}, .padding = "same",
                                        .activation = "relu"}));
    if (average) {
      layers.push_back(nn::AveragePooling2D(2));
    } else {
      layers.push_back(nn::MaxPooling2D(2));
    }
    layers.push_back(nn::Flatten());
    layers.push_back(nn::Dense(4));
    train::Sequential model(std::move(layers));
    model.eval();
    NoGradGuard no_grad;
    const Tensor x = Tensor::normal({3, 1, 12, 12});
    const Tensor whole = model.forward(x);
    Tensor h = x;
    for (const auto& layer : model.layers()) h = layer->forward(h);
    EXPECT_LT(max_rel_diff(whole, h), 1e-5) << (average ? "average" : "max");
  }
}

// Inference splits large batches into cache-sized micro-batches; the outputs must be those of
// running each sample alone (BatchNormalization in evaluation mode included).
TEST(FastInference, MicroBatchesMatchPerSampleResults) {
  manual_seed(13);
  train::Sequential model({nn::Conv2D(8, 3, {.input_shape = {1, 12, 12}, .padding = "same",
                                              .activation = "relu"}),
                           nn::BatchNormalization(), nn::MaxPooling2D(2), nn::Flatten(),
                           nn::Dense(5)});
  const Tensor x = Tensor::normal({150, 1, 12, 12});
  model.eval();
  NoGradGuard no_grad;
  const Tensor whole = model.forward(x);  // 150 > 2 x the micro-batch: runs in pieces
  ASSERT_EQ(whole.shape(), (Shape{150, 5}));
  for (int64_t i : {0, 31, 32, 33, 149}) {
    const Tensor alone = model.forward(slice(x, 0, i, i + 1));
    EXPECT_LT(max_rel_diff(alone, slice(whole, 0, i, i + 1)), 1e-5) << "sample " << i;
  }
}

// bf16 GEMM on transposed operands (the backward's layouts) packs them through oneDNN reorders.
// It is used only where it pays: a product large against the operands it must round (384 x 512
// x 512 here); a Dense backward at batch 128 stays float32.
TEST(FastMatmul, Bf16TransposedOperandsStayCloseToFloat32) {
  manual_seed(15);
  // Scaled so that the sums of 512 products stay near 1 (the tolerance is relative to max(1, |x|)).
  const Tensor a = Tensor::normal({512, 384}, 0, 0.2), b = Tensor::normal({512, 512}, 0, 0.2);
  const Tensor fp32 = matmul(transpose(a, 0, 1), transpose(b, 0, 1));  // (384, 512)
  const Tensor small_a = Tensor::normal({128, 128}), small_b = Tensor::normal({128, 784});
  const Tensor small_fp32 = matmul(transpose(small_a, 0, 1), small_b);
  Tensor bf16, small_bf16;
  {
    PrecisionGuard guard(Precision::kBFloat16);
    bf16 = matmul(transpose(a, 0, 1), transpose(b, 0, 1));
    small_bf16 = matmul(transpose(small_a, 0, 1), small_b);
  }
  const double diff = max_rel_diff(bf16, fp32);
  EXPECT_LT(diff, 0.1);
  if (bf16_supported()) {
    EXPECT_GT(diff, 0.0) << "bf16 was not used";
  }
  EXPECT_EQ(small_bf16.to_vector<float>(), small_fp32.to_vector<float>());
}
