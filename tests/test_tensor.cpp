// Tensor creation, views, broadcasting, op forward values, error messages and seeded randomness.
#include <gtest/gtest.h>

#include "test_util.h"

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "neutrino/neutrino.h"

using namespace neutrino;

namespace {

using neutrino::testing::expect_error;
using neutrino::testing::expect_values;

Tensor arange_shaped(const Shape& shape) {
  return reshape(Tensor::arange(shape_numel(shape)), shape);
}

// ---- creation and access -------------------------------------------------------------------

TEST(TensorCreate, ZerosOnesFullArange) {
  Tensor z = Tensor::zeros({2, 3});
  EXPECT_EQ(z.shape(), (Shape{2, 3}));
  EXPECT_EQ(z.dtype(), DType::kFloat32);
  expect_values(z, {0, 0, 0, 0, 0, 0});
  expect_values(Tensor::ones({4}), {1, 1, 1, 1});
  Tensor f = Tensor::full({2, 2}, 2.5, DType::kFloat64);
  EXPECT_EQ(f.dtype(), DType::kFloat64);
  expect_values(f, {2.5, 2.5, 2.5, 2.5});
  Tensor a = Tensor::arange(5, DType::kInt64);
  EXPECT_EQ(a.dtype(), DType::kInt64);
  EXPECT_EQ(a.to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 2, 3, 4}));
  EXPECT_DOUBLE_EQ(Tensor::scalar(3.5).item(), 3.5);
  EXPECT_EQ(Tensor::scalar(1).dim(), 0);
}

TEST(TensorCreate, OfAndFromVector) {
  Tensor m = Tensor::of({{1, 2, 3}, {4, 5, 6}});
  EXPECT_EQ(m.shape(), (Shape{2, 3}));
  EXPECT_DOUBLE_EQ(m.at({1, 2}), 6);
  EXPECT_DOUBLE_EQ(m.at({0, 1}), 2);
  Tensor v = Tensor::of({1, 2, 3}, DType::kFloat64);
  EXPECT_EQ(v.shape(), (Shape{3}));
  EXPECT_EQ(v.dtype(), DType::kFloat64);
  Tensor fv = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {3, 2});
  EXPECT_EQ(fv.to_vector<float>(), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_DOUBLE_EQ(fv.at({2, 0}), 5);
  Tensor iv = Tensor::from_vector(std::vector<int64_t>{7, -8}, {2});
  EXPECT_EQ(iv.dtype(), DType::kInt64);
  EXPECT_DOUBLE_EQ(iv.at({1}), -8);
  EXPECT_THROW(Tensor::from_vector(std::vector<float>{1, 2, 3}, {2, 2}), ShapeError);
  EXPECT_THROW(Tensor::of({{1, 2}, {3}}), ShapeError);
}

TEST(TensorCreate, DataIs64ByteAligned) {
  for (int64_t n : {1, 3, 17, 100, 1000}) {
    for (DType dt : {DType::kFloat32, DType::kFloat64, DType::kInt64, DType::kBool}) {
      Tensor t = Tensor::zeros({n}, dt);
      EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw_data()) % 64, 0u) << n;
    }
  }
}

TEST(TensorCreate, ShapeStridesNumel) {
  Tensor t = Tensor::zeros({2, 3, 4});
  EXPECT_EQ(t.strides(), (Shape{12, 4, 1}));
  EXPECT_EQ(t.numel(), 24);
  EXPECT_EQ(t.dim(), 3);
  EXPECT_EQ(t.size(-1), 4);
  EXPECT_EQ(t.size(0), 2);
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_EQ(t.shape_string(), "(2, 3, 4)");
  EXPECT_EQ(shape_str({5}), "(5,)");
  EXPECT_THROW(t.size(3), ShapeError);
}

TEST(TensorCreate, ItemAndAt) {
  EXPECT_DOUBLE_EQ(reshape(Tensor::of({4.5}), {1, 1}).item(), 4.5);
  EXPECT_THROW(Tensor::zeros({2}).item(), ShapeError);
  Tensor t = arange_shaped({2, 3});
  EXPECT_DOUBLE_EQ(t.at({1, 1}), 4);
  EXPECT_THROW(t.at({2, 0}), ShapeError);
  EXPECT_THROW(t.at({0}), ShapeError);
}

TEST(TensorCreate, DtypeConversion) {
  Tensor f = Tensor::of({-1.5, 0.0, 2.7});
  Tensor d = cast(f, DType::kFloat64);
  EXPECT_EQ(d.dtype(), DType::kFloat64);
  expect_values(d, {-1.5, 0.0, 2.7}, 1e-6);
  Tensor i = cast(f, DType::kInt64);
  EXPECT_EQ(i.to_vector<int64_t>(), (std::vector<int64_t>{-1, 0, 2}));  // truncation
  Tensor b = cast(f, DType::kBool);
  EXPECT_EQ(b.dtype(), DType::kBool);
  expect_values(b, {1, 0, 1});
  Tensor back = cast(b, DType::kFloat32);
  expect_values(back, {1, 0, 1});
  EXPECT_THROW(f.data<double>(), ValueError);
}

TEST(TensorPrint, Format) {
  Tensor t = arange_shaped({2, 3});
  const std::string s = t.to_string();
  EXPECT_NE(s.find("tensor("), std::string::npos) << s;
  EXPECT_NE(s.find("shape=(2, 3)"), std::string::npos) << s;
  EXPECT_NE(s.find("1.0000"), std::string::npos) << s;
  EXPECT_NE(s.find("5.0000"), std::string::npos) << s;
  EXPECT_EQ(s.find("dtype"), std::string::npos) << s;  // float32 is the default, not shown
  const std::string i = Tensor::arange(3, DType::kInt64).to_string();
  EXPECT_NE(i.find("[0, 1, 2]"), std::string::npos) << i;
  EXPECT_NE(i.find("dtype=int64"), std::string::npos) << i;
  const std::string big = Tensor::arange(100).to_string();
  EXPECT_NE(big.find("..."), std::string::npos) << big;
  EXPECT_NE(big.find("99.0000"), std::string::npos) << big;
  EXPECT_EQ(Tensor().to_string(), "tensor(undefined)");
}

// ---- views ---------------------------------------------------------------------------------

TEST(TensorView, ReshapeSharesStorage) {
  Tensor t = Tensor::arange(6);
  Tensor r = reshape(t, {2, -1});
  EXPECT_EQ(r.shape(), (Shape{2, 3}));
  EXPECT_EQ(r.impl()->storage, t.impl()->storage);
  EXPECT_EQ(r.raw_data(), t.raw_data());
  r.fill_(9);
  EXPECT_DOUBLE_EQ(t.at({4}), 9);
}

TEST(TensorView, PermuteTransposeAreNonContiguousViews) {
  Tensor t = arange_shaped({2, 3, 4});
  Tensor p = permute(t, {2, 0, 1});
  EXPECT_EQ(p.shape(), (Shape{4, 2, 3}));
  EXPECT_EQ(p.strides(), (Shape{1, 12, 4}));
  EXPECT_FALSE(p.is_contiguous());
  EXPECT_EQ(p.impl()->storage, t.impl()->storage);
  EXPECT_DOUBLE_EQ(p.at({3, 1, 2}), t.at({1, 2, 3}));
  Tensor tr = transpose(arange_shaped({2, 3}), 0, 1);
  EXPECT_EQ(tr.shape(), (Shape{3, 2}));
  EXPECT_FALSE(tr.is_contiguous());
  expect_values(tr, {0, 3, 1, 4, 2, 5});  // to_vector reads in C order
}

TEST(TensorView, SliceWithStepAndNegativeBounds) {
  Tensor t = Tensor::arange(10);
  Tensor s = slice(t, 0, 1, 8, 3);
  EXPECT_EQ(s.shape(), (Shape{3}));
  expect_values(s, {1, 4, 7});
  EXPECT_EQ(s.impl()->storage, t.impl()->storage);
  expect_values(slice(t, 0, -3, 10), {7, 8, 9});
  expect_values(slice(t, 0, -4, -1), {6, 7, 8});
  expect_values(slice(t, 0, 8, 100), {8, 9});  // bounds clip like Python
  EXPECT_EQ(slice(t, 0, 5, 2).numel(), 0);
  Tensor m = arange_shaped({3, 4});
  Tensor cols = slice(m, 1, 0, 4, 2);
  EXPECT_FALSE(cols.is_contiguous());
  expect_values(cols, {0, 2, 4, 6, 8, 10});
}

TEST(TensorView, WritingThroughSliceChangesBase) {
  Tensor m = Tensor::zeros({3, 4});
  slice(m, 1, 1, 4, 2).fill_(7);
  expect_values(m, {0, 7, 0, 7, 0, 7, 0, 7, 0, 7, 0, 7});
  slice(m, 0, 1, 2).fill_(1);
  expect_values(m, {0, 7, 0, 7, 1, 1, 1, 1, 0, 7, 0, 7});
}

TEST(TensorView, ExpandHasZeroStride) {
  Tensor col = reshape(Tensor::of({1, 2, 3}), {3, 1});
  Tensor e = expand(col, {3, 4});
  EXPECT_EQ(e.shape(), (Shape{3, 4}));
  EXPECT_EQ(e.strides()[1], 0);
  EXPECT_EQ(e.impl()->storage, col.impl()->storage);
  expect_values(e, {1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3});
  Tensor e2 = expand(Tensor::of({1, 2}), {3, 2});
  EXPECT_EQ(e2.strides()[0], 0);
  expect_values(e2, {1, 2, 1, 2, 1, 2});
  EXPECT_THROW(expand(Tensor::of({1, 2}), {3, 3}), ShapeError);
}

TEST(TensorView, ContiguousCopiesInCOrder) {
  Tensor t = arange_shaped({2, 3});
  Tensor tr = transpose(t, 0, 1);
  Tensor c = contiguous(tr);
  EXPECT_TRUE(c.is_contiguous());
  EXPECT_NE(c.impl()->storage, t.impl()->storage);
  EXPECT_EQ(c.strides(), (Shape{2, 1}));
  const float* p = c.data<float>();
  const std::vector<float> expected{0, 3, 1, 4, 2, 5};
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_EQ(p[i], expected[i]);
  EXPECT_TRUE(contiguous(t).same(t));  // already contiguous: no copy
  // Reshape of a non-contiguous view copies rather than aliasing wrongly.
  expect_values(reshape(tr, {6}), {0, 3, 1, 4, 2, 5});
}

// ---- broadcasting --------------------------------------------------------------------------

TEST(OpsBroadcast, ColumnPlusRow) {
  Tensor a = reshape(Tensor::of({1, 2, 3}), {3, 1});
  Tensor b = Tensor::of({{10, 20, 30, 40}});
  Tensor c = a + b;
  EXPECT_EQ(c.shape(), (Shape{3, 4}));
  expect_values(c, {11, 21, 31, 41, 12, 22, 32, 42, 13, 23, 33, 43});
  expect_values(a * b, {10, 20, 30, 40, 20, 40, 60, 80, 30, 60, 90, 120});
}

TEST(OpsBroadcast, MatrixAndVectorAndScalar) {
  Tensor m = Tensor::of({{1, 2, 3}, {4, 5, 6}});
  Tensor v = Tensor::of({10, 20, 30});
  expect_values(m + v, {11, 22, 33, 14, 25, 36});
  expect_values(m - v, {-9, -18, -27, -6, -15, -24});
  expect_values(v / m, {10, 10, 10, 2.5, 4, 5});
  expect_values(maximum(m, Tensor::scalar(3.5)), {3.5, 3.5, 3.5, 4, 5, 6});
  Tensor s = Tensor::scalar(2);
  Tensor ms = m * s;
  EXPECT_EQ(ms.shape(), (Shape{2, 3}));
  expect_values(ms, {2, 4, 6, 8, 10, 12});
  expect_values(m * 0.5 + 1.0, {1.5, 2, 2.5, 3, 3.5, 4});
  expect_values(10.0 - m, {9, 8, 7, 6, 5, 4});
  // A non-contiguous operand broadcasts correctly too.
  expect_values(transpose(m, 0, 1) + Tensor::of({100, 200}), {101, 204, 102, 205, 103, 206});
}

// ---- forward values ------------------------------------------------------------------------

TEST(OpsMatmul, TwoD) {
  Tensor a = Tensor::of({{1, 2, 3}, {4, 5, 6}});
  Tensor b = Tensor::of({{7, 8}, {9, 10}, {11, 12}});
  Tensor c = matmul(a, b);
  EXPECT_EQ(c.shape(), (Shape{2, 2}));
  expect_values(c, {58, 64, 139, 154});
  // Transposed (non-contiguous) operand.
  expect_values(matmul(a, transpose(a, 0, 1)), {14, 32, 32, 77});
}

TEST(OpsMatmul, BatchedWithBroadcastBatchDims) {
  const Shape sa{2, 1, 2, 3}, sb{3, 3, 2};
  Tensor a = arange_shaped(sa);
  Tensor b = arange_shaped(sb) * 0.5;
  Tensor c = matmul(a, b);
  ASSERT_EQ(c.shape(), (Shape{2, 3, 2, 2}));
  for (int64_t i = 0; i < 2; ++i) {
    for (int64_t j = 0; j < 3; ++j) {
      for (int64_t r = 0; r < 2; ++r) {
        for (int64_t q = 0; q < 2; ++q) {
          double want = 0;
          for (int64_t k = 0; k < 3; ++k) want += a.at({i, 0, r, k}) * b.at({j, k, q});
          EXPECT_NEAR(c.at({i, j, r, q}), want, 1e-4);
        }
      }
    }
  }
  // Batched @ plain 2-D.
  Tensor d = matmul(arange_shaped({2, 2, 3}), Tensor::ones({3, 1}));
  EXPECT_EQ(d.shape(), (Shape{2, 2, 1}));
  expect_values(d, {3, 12, 21, 30});
}

TEST(OpsMatmul, OneD) {
  Tensor m = Tensor::of({{1, 2, 3}, {4, 5, 6}});
  Tensor mv = matmul(m, Tensor::of({1, 0, -1}));
  EXPECT_EQ(mv.shape(), (Shape{2}));
  expect_values(mv, {-2, -2});
  Tensor vm = matmul(Tensor::of({1, 1}), m);
  EXPECT_EQ(vm.shape(), (Shape{3}));
  expect_values(vm, {5, 7, 9});
}

TEST(OpsMatmul, VectorDotVector) {
  Tensor d = matmul(Tensor::of({1, 2, 3}), Tensor::of({4, 5, 6}));
  EXPECT_EQ(d.dim(), 0);
  EXPECT_DOUBLE_EQ(d.item(), 32);
}

TEST(OpsReduce, SumMeanMaxArgmax) {
  Tensor t = Tensor::of({{1, 5, 3}, {4, 2, 6}});
  EXPECT_DOUBLE_EQ(sum(t).item(), 21);
  EXPECT_EQ(sum(t).dim(), 0);
  expect_values(sum(t, {0}), {5, 7, 9});
  Tensor k = sum(t, {1}, true);
  EXPECT_EQ(k.shape(), (Shape{2, 1}));
  expect_values(k, {9, 12});
  expect_values(sum(t, {-1}), {9, 12});
  EXPECT_DOUBLE_EQ(mean(t).item(), 3.5);
  expect_values(mean(t, {0}), {2.5, 3.5, 4.5});
  expect_values(max(t, {1}), {5, 6});
  EXPECT_EQ(max(t, {0}, true).shape(), (Shape{1, 3}));
  EXPECT_DOUBLE_EQ(max(t).item(), 6);
  Tensor am = argmax(t, 1);
  EXPECT_EQ(am.dtype(), DType::kInt64);
  EXPECT_EQ(am.to_vector<int64_t>(), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(argmax(t, 0, true).shape(), (Shape{1, 3}));
  EXPECT_EQ(argmax(t, 0).to_vector<int64_t>(), (std::vector<int64_t>{1, 0, 1}));
  Tensor t3 = arange_shaped({2, 3, 4});
  expect_values(sum(t3, {0, 2}), {60, 92, 124});
  EXPECT_EQ(sum(t3, {0, 2}, true).shape(), (Shape{1, 3, 1}));
}

TEST(OpsSoftmax, RowsSumToOneAndStable) {
  Tensor x = Tensor::of({{1000, 1001, 1002}, {-1000, -1001, -1002}, {0, 0, 0}});
  Tensor y = softmax(x, 1);
  for (double v : y.to_vector<double>()) EXPECT_TRUE(std::isfinite(v));
  expect_values(sum(y, {1}), {1, 1, 1}, 1e-5);
  const double e1 = std::exp(1.0), e2 = std::exp(2.0), z = 1 + e1 + e2;
  EXPECT_NEAR(y.at({0, 2}), e2 / z, 1e-5);
  EXPECT_NEAR(y.at({1, 0}), e2 / z, 1e-5);
  EXPECT_NEAR(y.at({2, 1}), 1.0 / 3, 1e-6);
  Tensor ls = log_softmax(x, -1);
  for (double v : ls.to_vector<double>()) EXPECT_TRUE(std::isfinite(v));
  EXPECT_NEAR(ls.at({0, 2}), 2 - std::log(z), 1e-4);
  EXPECT_NEAR(ls.at({1, 2}), -2 - std::log(z / (e2)), 1e-4);  // row max is -1000
  // Softmax over dim 0 of a column layout.
  expect_values(sum(softmax(x, 0), {0}), {1, 1, 1}, 1e-5);
}

TEST(OpsShape, ConcatIndexSelectEmbedding) {
  Tensor a = Tensor::of({{1, 2}, {3, 4}});
  Tensor b = Tensor::of({{5, 6}});
  Tensor c0 = concat({a, b}, 0);
  EXPECT_EQ(c0.shape(), (Shape{3, 2}));
  expect_values(c0, {1, 2, 3, 4, 5, 6});
  Tensor c1 = concat({a, reshape(Tensor::of({9, 8}), {2, 1})}, 1);
  expect_values(c1, {1, 2, 9, 3, 4, 8});
  Tensor idx = Tensor::from_vector(std::vector<int64_t>{2, 0, 2}, {3});
  Tensor rows = index_select(c0, 0, idx);
  expect_values(rows, {5, 6, 1, 2, 5, 6});
  expect_values(index_select(c0, 1, Tensor::from_vector(std::vector<int64_t>{1}, {1})), {2, 4, 6});
  Tensor w = arange_shaped({4, 3});
  Tensor ids = Tensor::from_vector(std::vector<int64_t>{3, 1, 0, 3}, {2, 2});
  Tensor e = embedding(w, ids);
  EXPECT_EQ(e.shape(), (Shape{2, 2, 3}));
  expect_values(e, {9, 10, 11, 3, 4, 5, 0, 1, 2, 9, 10, 11});
}

TEST(OpsSelect, WhereMaskedFillClampGelu) {
  Tensor cond = Tensor::of({1, 0, 1}, DType::kBool);
  Tensor a = Tensor::of({1, 2, 3});
  Tensor b = Tensor::of({-1, -2, -3});
  expect_values(where(cond, a, b), {1, -2, 3});
  // Broadcast: (3,) condition against (2, 3) values and a scalar.
  Tensor m = Tensor::of({{1, 2, 3}, {4, 5, 6}});
  expect_values(where(cond, m, Tensor::scalar(0)), {1, 0, 3, 4, 0, 6});
  expect_values(masked_fill(m, greater(m, Tensor::scalar(3)), -1), {1, 2, 3, -1, -1, -1});
  EXPECT_THROW(where(a, a, b), ValueError);  // condition must be bool
  expect_values(clamp(Tensor::of({-5, 0.5, 5}), -1, 1), {-1, 0.5, 1});
  EXPECT_THROW(clamp(a, 2, 1), ValueError);
  Tensor g = gelu(Tensor::of({0, 1, -1}));
  EXPECT_DOUBLE_EQ(g.at({0}), 0.0);
  EXPECT_NEAR(g.at({1}), 0.8413447, 1e-5);
  EXPECT_NEAR(g.at({2}), -0.1586553, 1e-5);
  EXPECT_NEAR(gelu(Tensor::of({1}), "tanh").item(), 0.8411920, 1e-5);
  expect_values(relu(Tensor::of({-1, 2})), {0, 2});
  EXPECT_NEAR(sigmoid(Tensor::of({-1000})).item(), 0.0, 1e-12);
  EXPECT_NEAR(softplus(Tensor::of({1000})).item(), 1000, 1e-3);
}

TEST(OpsConv, Conv2dHandComputed) {
  Tensor x = reshape(add(Tensor::arange(9), 1.0), {1, 1, 3, 3});  // 1..9
  Tensor w = reshape(Tensor::of({1, 2, 3, 4}), {1, 1, 2, 2});
  Tensor y = conv2d(x, w, Tensor::of({1}), {});
  EXPECT_EQ(y.shape(), (Shape{1, 1, 2, 2}));
  // Cross-correlation: y[0,0] = 1*1 + 2*2 + 3*4 + 4*5 = 37, + bias 1.
  expect_values(y, {38, 48, 68, 78});
  // Padding 1, stride 2: windows at (-1,-1), (-1,1), (1,-1), (1,1).
  Conv2dParams p;
  p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = 1;
  p.stride_h = p.stride_w = 2;
  Tensor yp = conv2d(x, w, Tensor(), p);
  EXPECT_EQ(yp.shape(), (Shape{1, 1, 2, 2}));
  // (0,0): only x[0,0]=1 under w[1,1]=4 -> 4; (0,1): x[0,1]=2*3 + x[0,2]=3*4 = 18;
  // (1,0): x[1,0]=4*2 + x[2,0]=7*4 = 36; (1,1): 5*1 + 6*2 + 8*3 + 9*4 = 77.
  expect_values(yp, {4, 18, 36, 77});
  // Two input channels, two filters: each filter sums its channels.
  Tensor x2 = concat({x, x * 10.0}, 1);
  Tensor w2 = Tensor::ones({2, 2, 1, 1});
  slice(w2, 0, 1, 2).fill_(-1);
  Tensor y2 = conv2d(x2, w2, Tensor(), {});
  EXPECT_EQ(y2.shape(), (Shape{1, 2, 3, 3}));
  EXPECT_DOUBLE_EQ(y2.at({0, 0, 1, 1}), 55);
  EXPECT_DOUBLE_EQ(y2.at({0, 1, 2, 2}), -99);
  // Groups: each filter sees only its own pair of channels.
  Conv2dParams g;
  g.groups = 2;
  expect_values(conv2d(arange_shaped({1, 4, 2, 2}), Tensor::ones({2, 2, 1, 1}), Tensor(), g),
                {4, 6, 8, 10, 20, 22, 24, 26});
  // Dilation 2: a 2x2 kernel samples x[i, j], x[i, j+2], x[i+2, j], x[i+2, j+2].
  Conv2dParams d;
  d.dilation_h = d.dilation_w = 2;
  expect_values(conv2d(arange_shaped({1, 1, 5, 5}), Tensor::ones({1, 1, 2, 2}), Tensor(), d),
                {24, 28, 32, 44, 48, 52, 64, 68, 72});
}

TEST(OpsPool, MaxAndAvgPool) {
  Tensor x = arange_shaped({1, 1, 4, 4});
  Tensor mx = max_pool2d(x, {});
  EXPECT_EQ(mx.shape(), (Shape{1, 1, 2, 2}));
  expect_values(mx, {5, 7, 13, 15});
  expect_values(avg_pool2d(x, {}), {2.5, 4.5, 10.5, 12.5});
  Pool2dParams p;
  p.kernel_h = p.kernel_w = 3;
  p.stride_h = p.stride_w = 1;
  expect_values(max_pool2d(x, p), {10, 11, 14, 15});
  expect_values(avg_pool2d(x, p), {5, 6, 9, 10});
  // Symmetric padding 1 with count_include_pad: corner window holds 0,1,4,5 over 4 cells.
  Pool2dParams q;
  q.pad_top = q.pad_left = q.pad_bottom = q.pad_right = 1;
  q.stride_h = q.stride_w = 2;
  Tensor a = avg_pool2d(x, q);
  EXPECT_EQ(a.shape(), (Shape{1, 1, 3, 3}));
  EXPECT_DOUBLE_EQ(a.at({0, 0, 0, 0}), 0.0 / 4);
  EXPECT_DOUBLE_EQ(a.at({0, 0, 1, 1}), (5 + 6 + 9 + 10) / 4.0);
  EXPECT_DOUBLE_EQ(a.at({0, 0, 2, 2}), 15 / 4.0);
  q.count_include_pad = false;
  EXPECT_DOUBLE_EQ(avg_pool2d(x, q).at({0, 0, 2, 2}), 15.0);
}

TEST(OpsPool, AvgPoolAsymmetricPaddingCountsBottomRightPad) {
  Tensor x = arange_shaped({1, 1, 3, 3});
  Pool2dParams p;
  p.pad_bottom = p.pad_right = 1;  // 2x2 windows, stride 2, over a 4x4 padded image
  expect_values(avg_pool2d(x, p), {8 / 4.0, 7 / 4.0, 13 / 4.0, 8 / 4.0});
}

// ---- error messages ------------------------------------------------------------------------

TEST(TensorErrors, ShapeErrorsNameOpAndShapes) {
  expect_error<ShapeError>([] { matmul(Tensor::zeros({2, 3}), Tensor::zeros({4, 5})); },
                           {"matmul", "(2, 3)", "(4, 5)"});
  expect_error<ShapeError>([] { matmul(Tensor::zeros({3}), Tensor::zeros({4, 5})); },
                           {"matmul", "(3,)", "(4, 5)"});
  expect_error<ShapeError>([] { matmul(Tensor::zeros({2, 3}), Tensor::zeros({4})); },
                           {"matmul", "(2, 3)", "(4,)"});
  expect_error<ShapeError>([] { add(Tensor::zeros({2, 3}), Tensor::zeros({4})); },
                           {"add", "(2, 3)", "(4,)", "cannot be broadcast"});
  expect_error<ShapeError>([] { mul(Tensor::zeros({2, 3}), Tensor::zeros({3, 2})); },
                           {"mul", "(2, 3)", "(3, 2)"});
  expect_error<ShapeError>([] { reshape(Tensor::zeros({2, 3}), {4}); },
                           {"reshape", "(2, 3)", "(4,)"});
  expect_error<ShapeError>([] { reshape(Tensor::zeros({2, 3}), {4, -1}); }, {"reshape", "(2, 3)"});
  expect_error<ShapeError>(
      [] { conv2d(Tensor::zeros({1, 3, 5, 5}), Tensor::zeros({4, 2, 3, 3}), Tensor(), {}); },
      {"conv2d", "(1, 3, 5, 5)", "(4, 2, 3, 3)"});
  expect_error<ShapeError>(
      [] { linear(Tensor::zeros({2, 5}), Tensor::zeros({3, 4}), Tensor::zeros({3})); },
      {"linear", "(2, 5)", "(3, 4)"});
  expect_error<ShapeError>([] { concat({Tensor::zeros({2, 3}), Tensor::zeros({2, 4})}, 0); },
                           {"concat", "(2, 4)", "(2, 3)"});
  expect_error<ShapeError>([] { permute(Tensor::zeros({2, 3}), {0, 0}); }, {"permute", "repeated"});
  expect_error<ShapeError>([] { sum(Tensor::zeros({2, 3}), {2}); }, {"sum", "dim 2"});
}

TEST(TensorErrors, ValueErrors) {
  expect_error<ValueError>(
      [] {
        index_select(Tensor::zeros({3, 2}), 0, Tensor::from_vector(std::vector<int64_t>{0, 5}, {2}));
      },
      {"index_select", "index 5"});
  expect_error<ValueError>(
      [] { add(Tensor::zeros({2}), Tensor::zeros({2}, DType::kFloat64)); },
      {"add", "float32", "float64"});
  expect_error<ValueError>([] { slice(Tensor::zeros({4}), 0, 0, 4, 0); }, {"slice", "step"});
  expect_error<ValueError>([] { exp(Tensor::zeros({2}, DType::kInt64)); }, {"exp", "int64"});
  expect_error<ValueError>(
      [] { embedding(Tensor::zeros({3, 2}), Tensor::from_vector(std::vector<int64_t>{3}, {1})); },
      {"index 3"});
}

// The ops added with the op table (split, chunk, stack, tril/triu, cumsum, arange, int64
// comparisons): their values are checked by the table; here, their argument errors.
TEST(TensorErrors, NewOpsNameTheirArguments) {
  const Tensor x = Tensor::zeros({2, 5});
  expect_error<ShapeError>(
      [&] {
        split(x, std::vector<int64_t>{2, 2}, 1);
      },
      {"split", "adding up to 4", "(2, 5)"});
  expect_error<ValueError>([&] { split(x, 0, 1); }, {"split", "split_size"});
  expect_error<ValueError>([&] { chunk(x, 0, 1); }, {"chunk", "chunks"});
  expect_error<ShapeError>(
      [&] {
        stack({x, Tensor::zeros({5, 2})}, 0);
      },
      {"stack", "(5, 2)", "(2, 5)"});
  expect_error<ShapeError>([&] { stack({x}, 3); }, {"stack", "dim 3"});
  expect_error<ShapeError>([] { tril(Tensor::zeros({4})); }, {"tril", "2 dims", "(4,)"});
  expect_error<ValueError>([] { arange(0, 1, 0); }, {"arange", "step"});
  expect_error<ValueError>([] { arange(0, 1.5, 1, DType::kInt64); }, {"arange", "whole numbers"});
  expect_error<ShapeError>([&] { cumsum(x, 2); }, {"cumsum", "dim 2"});
  const Tensor ints = Tensor::from_vector(std::vector<int64_t>{1, 2}, {2});
  expect_error<ValueError>([&] { less(ints, Tensor::zeros({2})); }, {"less", "int64", "float32"});
  expect_error<ValueError>(
      [] { greater(Tensor::zeros({2}, DType::kBool), Tensor::zeros({2}, DType::kBool)); },
      {"greater", "bool"});
  // Split pieces are views of x and share its gradient.
  Tensor y = Tensor::ones({2, 5}).set_requires_grad();
  const std::vector<Tensor> pieces = chunk(y, 2, 1);
  ASSERT_EQ(pieces.size(), 2u);
  EXPECT_EQ(pieces[1].shape(), (Shape{2, 2}));
  backward(sum(mul(pieces[1], 3.0)));
  expect_values(y.grad(), {0, 0, 0, 3, 3, 0, 0, 0, 3, 3});
}

// ---- randomness ----------------------------------------------------------------------------

TEST(TensorRandom, SameSeedSameDraws) {
  manual_seed(1234);
  const std::vector<float> n1 = Tensor::normal({257}, 0, 1).to_vector<float>();
  const std::vector<float> u1 = Tensor::uniform({100}, -2, 3).to_vector<float>();
  manual_seed(1234);
  const std::vector<float> n2 = Tensor::normal({257}, 0, 1).to_vector<float>();
  const std::vector<float> u2 = Tensor::uniform({100}, -2, 3).to_vector<float>();
  EXPECT_EQ(n1, n2);  // bit-identical
  EXPECT_EQ(u1, u2);
  for (float v : u1) {
    EXPECT_GE(v, -2.0f);
    EXPECT_LT(v, 3.0f);
  }
  manual_seed(1235);
  EXPECT_NE(Tensor::normal({257}).to_vector<float>(), n1);
  // Rough moments of a large draw.
  manual_seed(7);
  Tensor big = Tensor::normal({20000}, 2.0, 3.0, DType::kFloat64);
  EXPECT_NEAR(mean(big).item(), 2.0, 0.1);
  EXPECT_NEAR(std::sqrt(mean(pow(big - 2.0, 2)).item()), 3.0, 0.1);
}

TEST(TensorRandom, GeneratorStateRoundTrip) {
  Generator g(99);
  g.normal();  // leaves a spare normal in the state
  const std::string state = g.state();
  std::vector<double> first;
  for (int i = 0; i < 5; ++i) first.push_back(g.normal());
  for (int i = 0; i < 3; ++i) first.push_back(g.uniform());
  first.push_back(static_cast<double>(g.below(1000)));
  Generator h(1);
  h.set_state(state);
  std::vector<double> second;
  for (int i = 0; i < 5; ++i) second.push_back(h.normal());
  for (int i = 0; i < 3; ++i) second.push_back(h.uniform());
  second.push_back(static_cast<double>(h.below(1000)));
  EXPECT_EQ(first, second);
  EXPECT_THROW(h.set_state("not a state"), ValueError);
  // The global generator round-trips too.
  manual_seed(5);
  const std::string global = global_generator().state();
  const std::vector<float> a = Tensor::normal({9}).to_vector<float>();
  global_generator().set_state(global);
  EXPECT_EQ(Tensor::normal({9}).to_vector<float>(), a);
}

}  // namespace
