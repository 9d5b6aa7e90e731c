// The fused attention ops against their compositions: scaled_dot_product_attention (FlashAttention
// tiles, kernels::attention_forward / _backward) against scaled_dot_product_attention_composite
// (matmul, where, softmax) in float32, forward and every gradient, on causal, masked, strided
// (KV-cache slices) and dropout cases; fully masked rows; argument errors; and the memory of a
// long sequence. The op table (tests/op_table.json) holds the PyTorch and gradient checks.
#include <gtest/gtest.h>

#include <cmath>
#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "neutrino/autograd/autograd.h"
#include "neutrino/backend/kernels.h"
#include "neutrino/core/random.h"
#include "neutrino/neutrino.h"
#include "neutrino/ops/ops.h"
#include "neutrino/tensor/storage.h"
#include "test_util.h"

using namespace neutrino;
using neutrino::testing::expect_error;
using neutrino::testing::max_rel_diff;

namespace {

using AttentionFn = Tensor (*)(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                               const AttentionOptions&);

struct Result {
  Tensor out, dq, dk, dv;
};

// Output and gradients of sum(attention(q, k, v) * r). q, k, v are leaves (or views of leaves,
// whose gradients land in `leaves`).
Result run(AttentionFn fn, const std::vector<Tensor>& qkv, const Tensor& mask,
           const AttentionOptions& o, const Tensor& r,
           const std::vector<Tensor>* views = nullptr) {
  std::vector<Tensor> leaves;
  for (const Tensor& t : qkv) leaves.push_back(t.detach().set_requires_grad());
  std::vector<Tensor> in = leaves;
  if (views) {
    // views[i] defined: take rows [0, views[i].size(2)) of the leaf (a KV-cache slice).
    for (size_t i = 0; i < in.size(); ++i) {
      if ((*views)[i].defined()) in[i] = slice(leaves[i], 2, 0, (*views)[i].size(2));
    }
  }
  const Tensor out = fn(in[0], in[1], in[2], mask, o);
  backward(sum(mul(out, r)));
  return {out.detach(), leaves[0].grad(), leaves[1].grad(), leaves[2].grad()};
}

void expect_close(const Result& a, const Result& b, double tol, const std::string& what) {
  EXPECT_LT(max_rel_diff(a.out, b.out), tol) << what << ": out";
  EXPECT_LT(max_rel_diff(a.dq, b.dq), tol) << what << ": dq";
  EXPECT_LT(max_rel_diff(a.dk, b.dk), tol) << what << ": dk";
  EXPECT_LT(max_rel_diff(a.dv, b.dv), tol) << what << ": dv";
}

struct Case {
  std::string name;
  int64_t b, h, tq, tk, d, dv;
  bool causal;
  std::string mask;  // "", "padding" (B, 1, 1, Tk), "full" (B, H, Tq, Tk)
  double scale = 0;
};

Tensor make_mask(const Case& c) {
  if (c.mask.empty()) return Tensor();
  // Random keeps, with the first key always kept so that no row is empty (those have their test).
  const Shape s = c.mask == "padding" ? Shape{c.b, 1, 1, c.tk} : Shape{c.b, c.h, c.tq, c.tk};
  std::vector<float> v = Tensor::uniform(s, 0, 1).to_vector<float>();
  std::vector<double> bits(v.size());
  for (size_t i = 0; i < v.size(); ++i) bits[i] = (i % c.tk == 0 || v[i] < 0.7f) ? 1 : 0;
  return not_equal(Tensor::from_vector(bits, s), Tensor::scalar(0, DType::kFloat64));
}

}  // namespace

TEST(Attention, FusedMatchesCompositeFloat32) {
  const std::vector<Case> cases = {
      {"plain", 2, 3, 5, 7, 8, 8, false, ""},
      {"causal square", 2, 2, 9, 9, 8, 6, true, ""},
      {"causal Tq < Tk (a cache continued)", 1, 2, 3, 11, 8, 8, true, ""},
      {"causal Tq > Tk (early rows see nothing)", 1, 1, 6, 4, 4, 4, true, ""},
      {"padding mask", 2, 2, 6, 10, 8, 8, false, "padding"},
      {"full mask, causal", 1, 2, 7, 7, 4, 4, true, "full"},
      {"long, tiles and tails", 1, 2, 70, 133, 16, 12, true, ""},
      {"long masked", 2, 1, 130, 70, 8, 8, false, "padding", 0.3},
      {"decode step", 3, 2, 1, 90, 32, 32, true, "padding"},
  };
  for (const Case& c : cases) {
    manual_seed(11);
    const std::vector<Tensor> qkv = {Tensor::normal({c.b, c.h, c.tq, c.d}),
                                     Tensor::normal({c.b, c.h, c.tk, c.d}),
                                     Tensor::normal({c.b, c.h, c.tk, c.dv})};
    const Tensor mask = make_mask(c);
    const Tensor r = Tensor::normal({c.b, c.h, c.tq, c.dv});
    const AttentionOptions o{.causal = c.causal, .scale = c.scale};
    const Result fused = run(&scaled_dot_product_attention, qkv, mask, o, r);
    const Result plain = run(&scaled_dot_product_attention_composite, qkv, mask, o, r);
    expect_close(fused, plain, 1e-5, c.name);
  }
}

TEST(Attention, KeyValueCacheSlicesNeedNoCopy) {
  // k and v are the first 37 rows of a (B, H, 64, D) cache: strided views along T.
  manual_seed(12);
  const std::vector<Tensor> qkv = {Tensor::normal({2, 2, 5, 8}), Tensor::normal({2, 2, 64, 8}),
                                   Tensor::normal({2, 2, 64, 6})};
  const std::vector<Tensor> views = {Tensor(), Tensor::empty({2, 2, 37, 8}),
                                     Tensor::empty({2, 2, 37, 6})};
  const Tensor r = Tensor::normal({2, 2, 5, 6});
  for (bool causal : {false, true}) {
    const AttentionOptions o{.causal = causal};
    const Result fused = run(&scaled_dot_product_attention, qkv, Tensor(), o, r, &views);
    const Result plain = run(&scaled_dot_product_attention_composite, qkv, Tensor(), o, r, &views);
    expect_close(fused, plain, 1e-5, causal ? "causal slice" : "slice");
    // The cache rows past the slice get no gradient.
    EXPECT_EQ(sum(abs(slice(fused.dk, 2, 37, 64))).item(), 0.0);
  }
}

TEST(Attention, DropoutMatchesCompositeWithTheSameSeed) {
  manual_seed(13);
  const std::vector<Tensor> qkv = {Tensor::normal({2, 2, 70, 8}), Tensor::normal({2, 2, 70, 8}),
                                   Tensor::normal({2, 2, 70, 8})};
  const Tensor r = Tensor::normal({2, 2, 70, 8});
  for (bool causal : {false, true}) {
    const AttentionOptions o{.causal = causal, .dropout = 0.3};
    Generator g1(99), g2(99);
    Result fused, plain;
    {
      GeneratorGuard guard(g1);
      fused = run(&scaled_dot_product_attention, qkv, Tensor(), o, r);
    }
    {
      GeneratorGuard guard(g2);
      plain = run(&scaled_dot_product_attention_composite, qkv, Tensor(), o, r);
    }
    expect_close(fused, plain, 1e-5, causal ? "causal dropout" : "dropout");
    // Dropout did something: without it the output differs.
    const Result none = run(&scaled_dot_product_attention, qkv, Tensor(), {.causal = causal}, r);
    EXPECT_GT(max_rel_diff(fused.out, none.out), 1e-2);
  }
}

TEST(Attention, DropoutKeepsAboutOneMinusP) {
  const kernels::AttentionProblem p{.batch = 2, .heads = 3, .tq = 50, .tk = 60, .dropout = 0.25,
                                    .seed = 7};
  std::vector<float> keep(2 * 3 * 50 * 60);
  kernels::attention_dropout_mask(p, keep.data());
  double kept = 0;
  for (float k : keep) kept += k != 0 ? 1 : 0;
  EXPECT_NEAR(kept / static_cast<double>(keep.size()), 0.75, 0.02);
  EXPECT_FLOAT_EQ(*std::max_element(keep.begin(), keep.end()), 1.0f / 0.75f);
}

TEST(Attention, FullyMaskedRowGivesZerosNotNaN) {
  manual_seed(14);
  Tensor q = Tensor::normal({1, 1, 3, 4}).set_requires_grad();
  Tensor k = Tensor::normal({1, 1, 5, 4}).set_requires_grad();
  Tensor v = Tensor::normal({1, 1, 5, 4}).set_requires_grad();
  // Query 1 may see no key.
  std::vector<double> bits(15, 1.0);
  for (int j = 0; j < 5; ++j) bits[5 + j] = 0;
  const Tensor mask = not_equal(Tensor::from_vector(bits, {1, 1, 3, 5}),
                                Tensor::scalar(0, DType::kFloat64));
  for (AttentionFn fn : {&scaled_dot_product_attention, &scaled_dot_product_attention_composite}) {
    q.zero_grad(), k.zero_grad(), v.zero_grad();
    const Tensor out = fn(q, k, v, mask, {});
    backward(sum(out));
    const std::vector<float> o = out.to_vector<float>(), gq = q.grad().to_vector<float>();
    for (float x : o) EXPECT_FALSE(std::isnan(x));
    for (int e = 0; e < 4; ++e) {
      EXPECT_EQ(o[4 + e], 0.0f);
      EXPECT_EQ(gq[4 + e], 0.0f);
    }
    for (float x : k.grad().to_vector<float>()) EXPECT_FALSE(std::isnan(x));
  }
  // Causal with more queries than keys: the first rows see nothing.
  const Tensor out = scaled_dot_product_attention(Tensor::normal({1, 1, 4, 4}),
                                                  Tensor::normal({1, 1, 2, 4}),
                                                  Tensor::normal({1, 1, 2, 4}), {}, {.causal = true});
  EXPECT_EQ(sum(abs(slice(out, 2, 0, 2))).item(), 0.0);
  EXPECT_GT(sum(abs(slice(out, 2, 2, 4))).item(), 0.0);
}

TEST(Attention, RejectsBadArguments) {
  const Tensor q = Tensor::zeros({2, 3, 4, 8}), k = Tensor::zeros({2, 3, 5, 8});
  const Tensor v = Tensor::zeros({2, 3, 5, 6});
  for (AttentionFn fn : {&scaled_dot_product_attention, &scaled_dot_product_attention_composite}) {
    expect_error<ShapeError>([&] { fn(Tensor::zeros({3, 4, 8}), k, v, {}, {}); },
                             {"attention", "(3, 4, 8)", "(batch, heads, steps, dim)"});
    expect_error<ShapeError>([&] { fn(q, Tensor::zeros({1, 3, 5, 8}), v, {}, {}); },
                             {"attention", "(2, 3, 4, 8)", "(1, 3, 5, 8)", "batch and heads"});
    expect_error<ShapeError>([&] { fn(q, Tensor::zeros({2, 2, 5, 8}), v, {}, {}); },
                             {"attention", "(2, 2, 5, 8)", "batch and heads"});
    expect_error<ShapeError>([&] { fn(q, Tensor::zeros({2, 3, 5, 7}), v, {}, {}); },
                             {"attention", "(2, 3, 5, 7)", "head dim"});
    expect_error<ShapeError>([&] { fn(q, k, Tensor::zeros({2, 3, 6, 6}), {}, {}); },
                             {"attention", "(2, 3, 6, 6)", "same steps"});
    const Tensor bad_mask = greater(Tensor::zeros({2, 1, 1, 4}), Tensor::zeros({1}));
    expect_error<ShapeError>([&] { fn(q, k, v, bad_mask, {}); },
                             {"attention", "mask (2, 1, 1, 4)", "(2, 3, 4, 5)"});
    expect_error<ValueError>([&] { fn(q, k, v, Tensor::zeros({5}), {}); },
                             {"attention", "mask must be bool"});
    expect_error<ValueError>([&] { fn(q, k, v, {}, {.dropout = 1.0}); },
                             {"attention", "dropout", "[0, 1)"});
    expect_error<ValueError>([&] { fn(q, k, v, {}, {.dropout = -0.1}); },
                             {"attention", "dropout"});
  }
  expect_error<ShapeError>([&] { rotary_embedding(Tensor::zeros({1, 2, 3, 5})); },
                           {"rotary_embedding", "(1, 2, 3, 5)", "even"});
  expect_error<ShapeError>([&] { rms_norm(Tensor::zeros({2, 4}), Tensor::zeros({3}), 1e-6); },
                           {"rms_norm", "(3,)", "(2, 4)"});
}

TEST(Attention, RotaryIsARotationAndContinuesAtTheOffset) {
  manual_seed(15);
  const Tensor x = Tensor::normal({1, 2, 6, 8}, 0, 1, DType::kFloat64);
  const Tensor y = rotary_embedding(x, 0);
  // Norms of each pair are kept, and position 0 is not rotated.
  EXPECT_LT(max_rel_diff(sum(mul(y, y), {3}), sum(mul(x, x), {3})), 1e-12);
  EXPECT_LT(max_rel_diff(slice(y, 2, 0, 1), slice(x, 2, 0, 1)), 1e-15);
  // Rotating steps 3.. with offset 3 equals rotating the whole and taking steps 3..
  const Tensor tail = rotary_embedding(slice(x, 2, 3, 6), 3);
  EXPECT_LT(max_rel_diff(tail, slice(y, 2, 3, 6)), 1e-12);
}

TEST(Attention, LayerNormFusedMatchesComposite) {
  // The fused float32 kernel against the float64 composition (the op table checks small cases).
  manual_seed(16);
  const Tensor x = Tensor::normal({6, 9, 128}, 3, 2);
  const Tensor w = Tensor::uniform({128}, 0.5, 1.5), b = Tensor::normal({128});
  const Tensor r = Tensor::normal({6, 9, 128});
  auto grads = [&](DType dtype) {
    Tensor xx = cast(x, dtype).detach().set_requires_grad();
    Tensor ww = cast(w, dtype).detach().set_requires_grad();
    Tensor bb = cast(b, dtype).detach().set_requires_grad();
    const Tensor y = layer_norm(xx, {128}, ww, bb, 1e-5);
    backward(sum(mul(y, cast(r, dtype))));
    return std::vector<Tensor>{y.detach(), xx.grad(), ww.grad(), bb.grad()};
  };
  const auto fast = grads(DType::kFloat32), ref = grads(DType::kFloat64);
  for (size_t i = 0; i < fast.size(); ++i) EXPECT_LT(max_rel_diff(fast[i], ref[i]), 1e-4) << i;
}

namespace {
// Bytes of tensor memory freed into the block cache while `fn` ran: every block it allocated
// and released (with the cache emptied first and nothing reused, which a first call ensures).
size_t tensor_bytes_of(const std::function<void()>& fn) {
  Storage::release_cached();
  fn();
  return Storage::cache_stats().bytes;
}
}  // namespace

TEST(Attention, LongSequenceHoldsNoSquareBuffer) {
  const int64_t t = 4096, d = 64;
  manual_seed(17);
  const Tensor q0 = Tensor::normal({1, 1, t, d}), k0 = Tensor::normal({1, 1, t, d});
  const Tensor v0 = Tensor::normal({1, 1, t, d}), r = Tensor::normal({1, 1, t, d});
  const size_t bytes = tensor_bytes_of([&] {
    Tensor q = q0.detach().set_requires_grad(), k = k0.detach().set_requires_grad();
    Tensor v = v0.detach().set_requires_grad();
    backward(sum(mul(scaled_dot_product_attention(q, k, v, {}, {.causal = true}), r)));
    ASSERT_TRUE(q.grad().defined());
  });
  // Out, lse, the gradients and the loss's temporaries are a few (T, D) tensors of 1 MB (6 MB in
  // all, measured), against 64 MiB for one T x T float buffer (the composite frees 678 MB here).
  EXPECT_LT(bytes, size_t{16} << 20);
}
