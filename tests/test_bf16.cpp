// bfloat16 tensors, the storage of a bf16 network's activations: the number format itself, casts,
// copies and files, then each op with bf16 kernels (convolution, the channels-last 2x2 max pool,
// relu) against the same op in float32, and Sequential's policy of keeping a convolutional
// stack's activations in bf16.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <vector>

#include "neutrino/autograd/autograd.h"
#include "neutrino/core/precision.h"
#include "neutrino/core/random.h"
#include "neutrino/data/npy.h"
#include "neutrino/io/tensor_file.h"
#include "neutrino/neutrino.h"
#include "neutrino/ops/op_util.h"
#include "neutrino/ops/ops.h"
#include "test_util.h"

using namespace neutrino;
using neutrino::testing::max_rel_diff;
namespace fs = std::filesystem;

namespace {

constexpr DType kBf16 = DType::kBFloat16;
constexpr DType kF32 = DType::kFloat32;
// One bf16 rounding: half a unit in the 8-bit significand.
constexpr double kBf16Eps = 1.0 / 256;

// Exact equality, NaN equal to NaN.
void expect_same_values(const Tensor& got, const Tensor& want, const std::string& what) {
  const auto x = got.to_vector<double>(), y = want.to_vector<double>();
  ASSERT_EQ(x.size(), y.size()) << what;
  for (size_t i = 0; i < x.size(); ++i) {
    if (std::isnan(y[i])) {
      EXPECT_TRUE(std::isnan(x[i])) << what << " at " << i;
    } else {
      EXPECT_EQ(x[i], y[i]) << what << " at " << i;
    }
  }
}

// Values that bf16 holds exactly, so float32 and bf16 runs see the same inputs.
Tensor bf16_exact_normal(const Shape& shape, double stddev = 1.0) {
  return cast(cast(Tensor::normal(shape, 0, stddev), kBf16), kF32);
}

}  // namespace

TEST(Bf16Format, RoundsToNearestEven) {
  EXPECT_EQ(float_to_bf16_bits(1.0f), 0x3f80);
  EXPECT_EQ(float_to_bf16_bits(-2.0f), 0xc000);
  // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: ties go to the even significand (1).
  EXPECT_EQ(float_to_bf16_bits(1.0f + 0x1p-8f), 0x3f80);
  // 1 + 3 * 2^-8 lies halfway between 1 + 2^-7 (odd) and 1 + 2^-6 (even).
  EXPECT_EQ(float_to_bf16_bits(1.0f + 3 * 0x1p-8f), 0x3f82);
  // Just above a tie rounds up.
  EXPECT_EQ(float_to_bf16_bits(1.0f + 0x1p-8f + 0x1p-20f), 0x3f81);
  EXPECT_EQ(float_to_bf16_bits(-0.0f), 0x8000);
  EXPECT_EQ(float_to_bf16_bits(std::numeric_limits<float>::infinity()), 0x7f80);
  EXPECT_EQ(float_to_bf16_bits(std::numeric_limits<float>::max()), 0x7f80);  // overflows to inf
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(std::isnan(bf16_bits_to_float(float_to_bf16_bits(nan))));
  // A NaN whose payload sits in the low half only must not become infinity.
  const float low_payload_nan = std::bit_cast<float>(0x7f800001u);
  EXPECT_TRUE(std::isnan(bf16_bits_to_float(float_to_bf16_bits(low_payload_nan))));
  EXPECT_EQ(bf16_bits_to_float(0x3fc0), 1.5f);
  EXPECT_EQ(static_cast<float>(bfloat16(0.15625)), 0.15625f);
}

TEST(Bf16Tensor, CastsRoundTripAndCarryGradients) {
  manual_seed(1);
  const Tensor x = Tensor::normal({7, 300});  // over the parallel threshold in neither case
  const Tensor big = Tensor::normal({600, 300});
  for (const Tensor& t : {x, big}) {
    const Tensor h = cast(t, kBf16);
    EXPECT_EQ(h.dtype(), kBf16);
    EXPECT_EQ(h.shape(), t.shape());
    const Tensor back = cast(h, kF32);
    const auto a = t.to_vector<float>(), b = back.to_vector<float>();
    for (size_t i = 0; i < a.size(); ++i) {
      ASSERT_LE(std::abs(a[i] - b[i]), std::abs(a[i]) * kBf16Eps) << i;
      // The fast cast and the element-by-element rounding agree.
      ASSERT_EQ(b[i], bf16_bits_to_float(float_to_bf16_bits(a[i]))) << i;
    }
    // Values bf16 holds survive the round trip exactly.
    expect_same_values(cast(cast(back, kBf16), kF32), back, "round trip");
  }
  // float64 and int64 cast through the generic path.
  neutrino::testing::expect_values(
      cast(Tensor::from_vector(std::vector<double>{1.5, -3.0}, {2}), kBf16), {1.5, -3.0});
  neutrino::testing::expect_values(cast(Tensor::arange(4, DType::kInt64), kBf16), {0, 1, 2, 3});

  // d/dx sum(3 * cast(cast(x, bf16), f32)) = 3, arriving as float32 at a float32 leaf.
  Tensor leaf = Tensor::normal({3, 4}).set_requires_grad();
  backward(sum(mul(cast(cast(leaf, kBf16), kF32), 3.0)));
  ASSERT_TRUE(leaf.grad().defined());
  EXPECT_EQ(leaf.grad().dtype(), kF32);
  neutrino::testing::expect_values(leaf.grad(), std::vector<double>(12, 3.0));
}

TEST(Bf16Tensor, CopiesViewsAndPrinting) {
  manual_seed(2);
  const Tensor x = bf16_exact_normal({2, 3, 4, 5});
  const Tensor h = cast(x, kBf16);
  // A strided copy moves the 2-byte elements like any other.
  expect_same_values(cast(contiguous(permute(h, {0, 2, 3, 1})), kF32),
                     contiguous(permute(x, {0, 2, 3, 1})), "permute");
  expect_same_values(cast(contiguous(slice(h, 3, 1, 4)), kF32), contiguous(slice(x, 3, 1, 4)),
                     "slice");
  EXPECT_EQ(h.at({1, 2, 3, 4}), x.at({1, 2, 3, 4}));
  Tensor filled = Tensor::zeros({3}, kBf16);
  filled.fill_(0.5);
  neutrino::testing::expect_values(filled, {0.5, 0.5, 0.5});
  EXPECT_NE(filled.to_string().find("bfloat16"), std::string::npos) << filled.to_string();
}

TEST(Bf16Tensor, OpsWithoutABf16KernelAskForACast) {
  const Tensor h = cast(Tensor::ones({2, 2}), kBf16);
  neutrino::testing::expect_error<ValueError>([&] { add(h, h); }, {"add", "bfloat16", "float32"});
  neutrino::testing::expect_error<ValueError>([&] { softmax(h, 1); }, {"softmax", "bfloat16"});
  neutrino::testing::expect_error<ValueError>(
      [&] {
        conv2d(cast(Tensor::ones({1, 1, 3, 3}), kBf16), cast(Tensor::ones({1, 1, 3, 3}), kBf16), Tensor(),
               {});
      },
      {"conv2d", "bfloat16", "float32 weight"});
}

TEST(Bf16Tensor, SafetensorsStoresBf16AndNpyRefusesIt) {
  manual_seed(3);
  const Tensor h = cast(Tensor::normal({4, 5}), kBf16);
  const fs::path path = fs::temp_directory_path() / "neutrino_bf16_test.safetensors";
  io::save_tensors(path.string(), {{"h", h}}, {});
  const io::TensorFile file = io::load_tensors(path.string());
  const Tensor loaded = file.tensors.at("h");
  EXPECT_EQ(loaded.dtype(), kBf16);
  expect_same_values(cast(loaded, kF32), cast(h, kF32), "safetensors");
  fs::remove(path);
  neutrino::testing::expect_error<ValueError>([&] { data::write_npy_bytes(h); },
                                              {"bfloat16", "float32"});
}

namespace {
struct ConvRun {
  Tensor out, gx, gw, gb;
};

// conv2d (with a relu epilogue) of x in `dtype` with float32 weights; L = sum(out * r).
ConvRun run_conv(const Tensor& x0, const Tensor& w0, const Tensor& b0, const Tensor& r,
                 const Conv2dParams& p, DType dtype) {
  Tensor x = cast(x0, dtype).detach().set_requires_grad();
  Tensor w = w0.detach().set_requires_grad(), b = b0.detach().set_requires_grad();
  Tensor out = conv2d(x, w, b, p, Epilogue::kRelu);
  backward(sum(mul(cast(out, kF32), r)));
  return {out, x.grad(), w.grad(), b.grad()};
}
}  // namespace

TEST(Bf16Conv, MatchesFloat32ComputedInBf16) {
  manual_seed(4);
  const Conv2dParams same{.pad_top = 1, .pad_left = 1, .pad_bottom = 1, .pad_right = 1};
  const Conv2dParams strided{.stride_h = 2, .stride_w = 2};
  struct Case {
    Shape x, w;
    Conv2dParams p;
    bool channels_last_input;
  };
  const std::vector<Case> cases = {
      {{4, 1, 12, 12}, {16, 1, 3, 3}, same, false},  // a first layer
      {{3, 16, 9, 9}, {32, 16, 3, 3}, same, true},   // a conv after a conv, channels-last
      {{2, 8, 11, 10}, {6, 8, 3, 3}, strided, false},
  };
  for (const Case& c : cases) {
    Tensor x = bf16_exact_normal(c.x);
    if (c.channels_last_input) x = detail::to_channels_last(x);
    const Tensor w = bf16_exact_normal(c.w, 0.3), b = Tensor::normal({c.w[0]});
    Shape out_shape;
    {
      NoGradGuard no_grad;
      out_shape = conv2d(x, w, b, c.p).shape();
    }
    const Tensor r = bf16_exact_normal(out_shape);
    // The reference: float32 activations with the arithmetic in bf16, so both runs round the
    // same operands; bf16 activations differ by the rounding of what they store.
    ConvRun want;
    {
      PrecisionGuard guard(Precision::kBFloat16);
      want = run_conv(x, w, b, r, c.p, kF32);
    }
    const ConvRun got = run_conv(x, w, b, r, c.p, kBf16);
    EXPECT_EQ(got.out.dtype(), kBf16);
    EXPECT_EQ(got.gx.dtype(), kBf16);
    EXPECT_EQ(got.gw.dtype(), kF32);
    EXPECT_EQ(got.gb.dtype(), kF32);
    const std::string what = shape_str(c.x);
    EXPECT_LE(max_rel_diff(cast(got.out, kF32), want.out), 2 * kBf16Eps) << what;
    EXPECT_LE(max_rel_diff(cast(got.gx, kF32), want.gx), 2 * kBf16Eps) << what;
    EXPECT_LE(max_rel_diff(got.gw, want.gw), 8 * kBf16Eps) << what;
    EXPECT_LE(max_rel_diff(got.gb, want.gb), 8 * kBf16Eps) << what;
    // And within bf16's reach of a pure float32 run.
    const ConvRun exact = run_conv(x, w, b, r, c.p, kF32);
    EXPECT_LE(max_rel_diff(cast(got.out, kF32), exact.out), 0.05) << what;
  }
}

TEST(Bf16Pool, ChannelsLastKernelMatchesFloat32Exactly) {
  manual_seed(5);
  // Conv outputs are channels-last; 6x8 and 7x9 (odd edges outside every window), 16 and 40
  // channels (a full vector and a remainder).
  for (const Shape& shape : {Shape{3, 16, 6, 8}, Shape{2, 40, 7, 9}}) {
    std::vector<float> v = bf16_exact_normal(shape).to_vector<float>();
    auto flat = [&](int64_t n, int64_t c, int64_t h, int64_t w) {
      return static_cast<size_t>(((n * shape[1] + c) * shape[2] + h) * shape[3] + w);
    };
    // Ties, a NaN and an infinity exercise the first-winner rule.
    v[flat(0, 0, 0, 0)] = v[flat(0, 0, 0, 1)] = v[flat(0, 0, 1, 0)] = 5.0f;
    v[flat(0, 1, 0, 0)] = v[flat(0, 1, 0, 1)] = v[flat(0, 1, 1, 0)] = v[flat(0, 1, 1, 1)] = 0.0f;
    v[flat(1, 2, 2, 3)] = std::numeric_limits<float>::quiet_NaN();
    v[flat(1, 3, 4, 4)] = -std::numeric_limits<float>::infinity();
    const Tensor x = detail::to_channels_last(Tensor::from_vector(v, shape));
    const Pool2dParams p{};
    const Tensor gy = bf16_exact_normal({shape[0], shape[1], shape[2] / 2, shape[3] / 2});

    Tensor xf = x.detach().set_requires_grad();
    Tensor yf = max_pool2d(xf, p);
    backward(sum(mul(yf, gy)));

    Tensor xh = cast(x, kBf16);
    xh = detail::to_channels_last(xh).detach().set_requires_grad();
    ASSERT_TRUE(detail::is_channels_last(xh));
    Tensor yh = max_pool2d(xh, p);
    EXPECT_EQ(yh.dtype(), kBf16);
    EXPECT_TRUE(detail::is_channels_last(yh));
    backward(sum(mul(cast(yh, kF32), gy)));
    const std::string what = shape_str(shape);
    expect_same_values(cast(yh, kF32), yf, what + " forward");
    ASSERT_TRUE(xh.grad().defined());
    EXPECT_EQ(xh.grad().dtype(), kBf16);
    expect_same_values(cast(xh.grad(), kF32), xf.grad(), what + " backward");
  }
}

TEST(Bf16Pool, OtherPoolsRunThroughFloat32) {
  manual_seed(6);
  const Tensor x = bf16_exact_normal({2, 3, 7, 7});  // contiguous NCHW: no bf16 kernel
  const Pool2dParams p3{.kernel_h = 3, .kernel_w = 3, .stride_h = 2, .stride_w = 2};
  const Pool2dParams p2{};
  for (const Pool2dParams& p : {p2, p3}) {
    Tensor xh = cast(x, kBf16).detach().set_requires_grad();
    const Tensor y = max_pool2d(xh, p);
    EXPECT_EQ(y.dtype(), kBf16);
    expect_same_values(cast(y, kF32), max_pool2d(x, p), "max_pool2d");
    backward(sum(cast(y, kF32)));
    EXPECT_EQ(xh.grad().dtype(), kBf16);
    const Tensor a = avg_pool2d(cast(x, kBf16), p);
    EXPECT_EQ(a.dtype(), kBf16);
    EXPECT_LE(max_rel_diff(cast(a, kF32), avg_pool2d(x, p)), kBf16Eps);
  }
}

TEST(Bf16ConvPool, TrainingOrderMatchesThePlainOrder) {
  manual_seed(7);
  const Tensor x = bf16_exact_normal({4, 8, 10, 10}), w = bf16_exact_normal({16, 8, 3, 3}, 0.3);
  const Tensor b = Tensor::normal({16});
  const Conv2dParams same{.pad_top = 1, .pad_left = 1, .pad_bottom = 1, .pad_right = 1};
  const Tensor r = bf16_exact_normal({4, 16, 5, 5});
  // fused: relu(max_pool(conv)) with a graph; else max_pool(relu(conv)), as written.
  auto run = [&](DType dtype, bool fused) {
    Tensor xv = cast(x, dtype).detach().set_requires_grad();
    Tensor wv = w.detach().set_requires_grad(), bv = b.detach().set_requires_grad();
    const Tensor y = fused ? conv2d_relu_max_pool2d(xv, wv, bv, same, {})
                           : max_pool2d(conv2d(xv, wv, bv, same, Epilogue::kRelu), {});
    backward(sum(mul(cast(y, kF32), r)));
    return std::vector<Tensor>{cast(y, kF32), cast(xv.grad(), kF32), wv.grad(), bv.grad()};
  };
  const std::vector<Tensor> fused = run(kBf16, true), plain = run(kBf16, false);
  const char* names[] = {"y", "grad x", "grad w", "grad b"};
  for (size_t i = 0; i < fused.size(); ++i) expect_same_values(fused[i], plain[i], names[i]);
  // The values (not the gradients: rounding can move a window's winner) stay near float32.
  PrecisionGuard guard(Precision::kBFloat16);
  EXPECT_LE(max_rel_diff(fused[0], run(kF32, true)[0]), 2 * kBf16Eps);
  // Inference takes the same pair through the unfused ops (bf16 has no fused kernel).
  NoGradGuard no_grad;
  const Tensor inferred = conv2d_relu_max_pool2d(cast(x, kBf16), w, b, same, {});
  expect_same_values(cast(inferred, kF32), fused[0], "inference");
}

namespace {
// Records the dtype of what reaches it; passes bf16 through like a pool.
class DTypeSpy : public nn::Layer {
 public:
  explicit DTypeSpy(Bf16Use use) : Layer({}, ""), use_(use) {}
  std::string type_name() const override { return "DTypeSpy"; }
  Shape output_shape(const Shape& input_shape) const override { return input_shape; }
  Bf16Use bf16_use() const override { return use_; }
  std::vector<DType>* seen = nullptr;

 protected:
  Tensor call(const Tensor& x) override {
    seen->push_back(x.dtype());
    return x;
  }

 private:
  Bf16Use use_;
};

train::Sequential spied_cnn(std::vector<DType>* seen) {
  auto pass = std::make_shared<DTypeSpy>(nn::Layer::Bf16Use::kPassesThrough);
  auto stop = std::make_shared<DTypeSpy>(nn::Layer::Bf16Use::kNo);
  pass->seen = seen;
  stop->seen = seen;
  return train::Sequential(
      {nn::Conv2D(8, 3, {.input_shape = {1, 8, 8}, .padding = "same", .activation = "relu"}),
       nn::LayerPtr(pass), nn::MaxPooling2D(2), nn::LayerPtr(stop), nn::Flatten(), nn::Dense(3)});
}
}  // namespace

TEST(Bf16Sequential, ConvStackActivationsStayBf16UnderThePolicy) {
  manual_seed(8);
  const Tensor x = Tensor::normal({5, 1, 8, 8});
  std::vector<DType> seen;
  train::Sequential model = spied_cnn(&seen);
  NoGradGuard no_grad;
  const Tensor fp32 = model.forward(x);
  EXPECT_EQ(seen, (std::vector<DType>{kF32, kF32}));
  seen.clear();
  Tensor bf16;
  {
    PrecisionGuard guard(Precision::kBFloat16);
    bf16 = model.forward(x);
  }
  EXPECT_EQ(bf16.dtype(), kF32);  // the model's output is float32 either way
  if (bf16_supported()) {
    // After the conv: bf16; before a layer without bf16 kernels: float32 again.
    EXPECT_EQ(seen, (std::vector<DType>{kBf16, kF32}));
  }
  EXPECT_LE(max_rel_diff(bf16, fp32), 0.05);
}

TEST(Bf16Sequential, CnnTrainsUnderThePolicyLikeFloat32) {
  // Two classes of 8x8 images: a bright top half or a bright bottom half, plus noise.
  manual_seed(9);
  const int64_t n = 128;
  std::vector<float> pixels = Tensor::normal({n, 1, 8, 8}, 0, 0.5).to_vector<float>();
  std::vector<int64_t> labels(n);
  for (int64_t i = 0; i < n; ++i) {
    labels[i] = i % 2;
    const int64_t first_row = labels[i] == 0 ? 0 : 4;
    for (int64_t k = 0; k < 32; ++k)
      pixels[static_cast<size_t>(i * 64 + first_row * 8 + k)] += 1.5f;
  }
  const Tensor x = Tensor::from_vector(pixels, {n, 1, 8, 8});
  const Tensor y = Tensor::from_vector(labels, {n});
  auto train_one = [&](Precision precision) {
    manual_seed(10);
    train::Sequential model(
        {nn::Conv2D(8, 3, {.input_shape = {1, 8, 8}, .padding = "same", .activation = "relu"}),
         nn::MaxPooling2D(2), nn::Conv2D(8, 3, {.padding = "same", .activation = "relu"}),
         nn::MaxPooling2D(2), nn::Flatten(), nn::Dense(2)});
    model.compile(optim::Adam({.learning_rate = 0.01}),
                  nn::Loss("sparse_categorical_crossentropy", true), {"accuracy"});
    model.set_mixed_precision(precision);
    model.fit(x, y, {.epochs = 15, .batch_size = 32, .verbose = 0});
    return model.evaluate(x, y, {.verbose = 0});
  };
  const train::Scores fp32 = train_one(Precision::kFloat32);
  const train::Scores bf16 = train_one(Precision::kBFloat16);
  EXPECT_GE(fp32["accuracy"], 0.95);
  EXPECT_GE(bf16["accuracy"], 0.95);
  EXPECT_NEAR(bf16["loss"], fp32["loss"], 0.1);
}
