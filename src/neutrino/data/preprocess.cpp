#include "neutrino/data/preprocess.h"

#include <cmath>
#include <cstring>

#include "neutrino/autograd/autograd.h"
#include "neutrino/ops/ops.h"

namespace neutrino::data {

Tensor rescale(const Tensor& x, double factor) {
  NoGradGuard no_grad;
  return mul(cast(x.detach(), DType::kFloat32), factor);
}

Standardizer Standardizer::fit(const Tensor& x) {
  NEUTRINO_CHECK_SHAPE(x.dim() >= 1 && x.size(0) > 0, "standardize: no samples to fit, got {}",
                       x.shape_string());
  NoGradGuard no_grad;
  const Tensor xf = cast(x.detach(), DType::kFloat64);
  const Tensor m = neutrino::mean(xf, {0});
  const Tensor centered = sub(xf, m);
  Tensor s = sqrt(neutrino::mean(mul(centered, centered), {0}));
  // A constant feature would divide by zero; leave it centred but unscaled.
  std::vector<double> values = s.to_vector<double>();
  for (double& v : values) v = v > 1e-12 ? v : 1.0;
  s = Tensor::from_vector(values, s.shape());
  return {cast(m, DType::kFloat32), cast(s, DType::kFloat32)};
}

Tensor Standardizer::apply(const Tensor& x) const {
  NEUTRINO_CHECK_VALUE(mean.defined() && stddev.defined(), "standardize: not fitted");
  NEUTRINO_CHECK_SHAPE(x.dim() >= 1, "standardize: expected a batch of samples, got a scalar");
  // The first dim counts samples: a 1-D input of 4 values is 4 samples of shape ().
  const Shape sample(x.shape().begin() + 1, x.shape().end());
  NEUTRINO_CHECK_SHAPE(sample == mean.shape(),
                       "standardize: fitted on samples of shape {}, but the input {} holds {} "
                       "samples of shape {} (the first dim counts samples)",
                       mean.shape_string(), x.shape_string(), x.size(0), shape_str(sample));
  NoGradGuard no_grad;
  return div(sub(cast(x.detach(), DType::kFloat32), mean), stddev);
}

std::vector<int64_t> permutation(int64_t n, Generator& gen) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[i] = i;
  for (int64_t i = n - 1; i > 0; --i) {
    std::swap(order[i], order[gen.below(static_cast<uint64_t>(i + 1))]);
  }
  return order;
}

Tensor take_rows(const Tensor& t, const std::vector<int64_t>& rows) {
  NoGradGuard no_grad;
  return index_select(t.detach(), 0,
                      Tensor::from_vector(rows, {static_cast<int64_t>(rows.size())}));
}

Split train_test_split(const Tensor& x, const Tensor& y, double test_fraction, uint64_t seed) {
  NEUTRINO_CHECK_SHAPE(x.dim() >= 1 && y.dim() >= 1 && x.size(0) == y.size(0),
                       "train_test_split: x {} and y {} have different numbers of samples",
                       x.shape_string(), y.shape_string());
  NEUTRINO_CHECK_VALUE(test_fraction > 0 && test_fraction < 1,
                       "train_test_split: test fraction must be in (0, 1), got {}", test_fraction);
  const int64_t n = x.size(0);
  const int64_t n_test = static_cast<int64_t>(std::ceil(static_cast<double>(n) * test_fraction));
  NEUTRINO_CHECK_VALUE(n_test < n, "train_test_split: {} samples leave none for training", n);
  Generator gen(seed);
  const std::vector<int64_t> order = permutation(n, gen);
  const std::vector<int64_t> test(order.begin(), order.begin() + n_test);
  const std::vector<int64_t> train(order.begin() + n_test, order.end());
  return {take_rows(x, train), take_rows(y, train), take_rows(x, test), take_rows(y, test)};
}

namespace {
void check_images(const Tensor& images, const char* op) {
  NEUTRINO_CHECK_SHAPE(images.dim() == 4, "{}: expected images (N, C, H, W), got {}", op,
                       images.shape_string());
  NEUTRINO_CHECK_VALUE(images.dtype() == DType::kFloat32, "{}: expected float32 images, got {}", op,
                       dtype_name(images.dtype()));
}
}  // namespace

Tensor random_flip(const Tensor& images, Generator& gen) {
  check_images(images, "random_flip");
  const Tensor src = contiguous(images.detach());
  Tensor out = clone(src).detach();
  const int64_t n = images.size(0), rows = images.size(1) * images.size(2), w = images.size(3);
  const float* in = src.data<float>();
  float* o = out.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    if (gen.uniform() >= 0.5) continue;
    for (int64_t r = 0; r < rows; ++r) {
      const float* from = in + (i * rows + r) * w;
      float* to = o + (i * rows + r) * w;
      for (int64_t c = 0; c < w; ++c) to[c] = from[w - 1 - c];
    }
  }
  return out;
}

Tensor random_crop(const Tensor& images, int64_t padding, Generator& gen) {
  check_images(images, "random_crop");
  NEUTRINO_CHECK_VALUE(padding >= 0, "random_crop: padding must be >= 0, got {}", padding);
  const Tensor src = contiguous(images.detach());
  const int64_t n = images.size(0), ch = images.size(1), h = images.size(2), w = images.size(3);
  Tensor out = Tensor::zeros(images.shape());
  const float* in = src.data<float>();
  float* o = out.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    // Offset of the crop inside the padded image, as (dy, dx) in [-padding, padding].
    const int64_t dy =
        static_cast<int64_t>(gen.below(static_cast<uint64_t>(2 * padding + 1))) - padding;
    const int64_t dx =
        static_cast<int64_t>(gen.below(static_cast<uint64_t>(2 * padding + 1))) - padding;
    for (int64_t c = 0; c < ch; ++c) {
      const float* plane = in + (i * ch + c) * h * w;
      float* target = o + (i * ch + c) * h * w;
      for (int64_t y = 0; y < h; ++y) {
        const int64_t sy = y + dy;
        if (sy < 0 || sy >= h) continue;
        for (int64_t x = 0; x < w; ++x) {
          const int64_t sx = x + dx;
          if (sx >= 0 && sx < w) target[y * w + x] = plane[sy * w + sx];
        }
      }
    }
  }
  return out;
}

}  // namespace neutrino::data
