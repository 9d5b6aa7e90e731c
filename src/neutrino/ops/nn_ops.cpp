// Neural-network ops: normalization (layer_norm and rms_norm fused over the last dim), dropout and the fused softmax cross-entropy loss.
#include "neutrino/backend/kernels.h"
#include "neutrino/core/random.h"
#include "neutrino/ops/op_util.h"

namespace neutrino {

using namespace detail;

// y = (x - mean) / sqrt(var + eps) * weight + bias, statistics over every dim but the channel
// dim 1. Composed of differentiable ops, so its backward comes from theirs.
Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias,
                  const Tensor& running_mean, const Tensor& running_var, bool training,
                  double momentum, double eps) {
  check_float(x, "batch_norm");
  NEUTRINO_CHECK_SHAPE(x.dim() >= 2, "batch_norm: input must have a channel dim 1, got {}",
                       x.shape_string());
  const int64_t channels = x.size(1);
  Shape stat_shape(x.dim(), 1);
  stat_shape[1] = channels;
  auto check_param = [&](const Tensor& t, const char* what) {
    if (!t.defined()) return;
    check_same_float(x, t, "batch_norm");
    NEUTRINO_CHECK_SHAPE(t.dim() == 1 && t.size(0) == channels,
                         "batch_norm: {} {} does not fit input {} with {} channels", what,
                         t.shape_string(), x.shape_string(), channels);
  };
  check_param(weight, "weight");
  check_param(bias, "bias");
  check_param(running_mean, "running_mean");
  check_param(running_var, "running_var");
  std::vector<int64_t> dims{0};
  for (int64_t d = 2; d < x.dim(); ++d) dims.push_back(d);

  Tensor centered, var;
  if (training) {
    const int64_t count = x.numel() / channels;
    NEUTRINO_CHECK_SHAPE(count > 1, "batch_norm: training needs more than one value per channel, got input {}",
                         x.shape_string());
    const Tensor batch_mean = mean(x, dims, true);
    centered = sub(x, batch_mean);
    var = mean(mul(centered, centered), dims, true);
    if (running_mean.defined() && running_var.defined()) {
      NoGradGuard no_grad;
      const double unbias = static_cast<double>(count) / static_cast<double>(count - 1);
      running_mean.copy_(add(mul(running_mean, 1 - momentum), mul(reshape(batch_mean, {channels}), momentum)));
      running_var.copy_(add(mul(running_var, 1 - momentum), mul(reshape(var.detach(), {channels}), momentum * unbias)));
    }
  } else {
    NEUTRINO_CHECK_VALUE(running_mean.defined() && running_var.defined(),
                         "batch_norm: evaluation needs running_mean and running_var");
    centered = sub(x, reshape(running_mean, stat_shape));
    var = reshape(running_var, stat_shape);
  }
  Tensor y = div(centered, sqrt(add(var, eps)));
  if (weight.defined()) y = mul(y, reshape(weight, stat_shape));
  if (bias.defined()) y = add(y, reshape(bias, stat_shape));
  return y;
}

namespace {

template <class T>
const T* data_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

// y = (x - mean) / sqrt(var + eps) * weight + bias over the last dim, as one kernel each way
// (kernels::layer_norm_forward / _backward): rows = numel / n rows of n, the row means and
// 1 / sqrt(var + eps) saved for the backward, which gives dx, dweight and dbias in one call.
Tensor layer_norm_fused(const Tensor& x_in, const Tensor& weight_in, const Tensor& bias_in,
                        double eps) {
  const Tensor x = materialize(x_in);
  const Tensor weight = weight_in.defined() ? materialize(weight_in) : Tensor();
  const Tensor bias = bias_in.defined() ? materialize(bias_in) : Tensor();
  const int64_t n = x.size(-1), rows = n == 0 ? 0 : x.numel() / n;
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  Tensor mean = Tensor::empty({rows}, x.dtype()), rstd = Tensor::empty({rows}, x.dtype());
  dispatch_float(x.dtype(), "layer_norm", [&]<class T>() {
    kernels::layer_norm_forward(x.data<T>(), data_or_null<T>(weight), data_or_null<T>(bias), rows,
                                n, eps, y.data<T>(), mean.data<T>(), rstd.data<T>());
  });
  if (!any_requires_grad({&x_in, &weight_in, &bias_in})) return y;
  record(y, "layer_norm", {x_in, weight_in, bias_in}, [=](const Tensor& g_in) {
    const Tensor g = materialize(g_in);
    Tensor dx = Tensor::empty(x.shape(), x.dtype());
    Tensor dw = needs_grad(weight_in) ? Tensor::empty({n}, x.dtype()) : Tensor();
    Tensor db = needs_grad(bias_in) ? Tensor::empty({n}, x.dtype()) : Tensor();
    dispatch_float(x.dtype(), "layer_norm", [&]<class T>() {
      kernels::layer_norm_backward(g.data<T>(), x.data<T>(), data_or_null<T>(weight),
                                   mean.data<T>(), rstd.data<T>(), rows, n, dx.data<T>(),
                                   dw.defined() ? dw.data<T>() : nullptr,
                                   db.defined() ? db.data<T>() : nullptr);
    });
    return std::vector<Tensor>{dx, dw, db};
  });
  return y;
}

}  // namespace

// y = (x - mean) / sqrt(var + eps) * weight + bias over the trailing normalized_shape dims.
// float32 over the last dim (every Transformer block) runs the fused kernel; float64 and several
// normalized dims are composed of differentiable ops, which makes them the reference that the
// op table's fast cases compare the kernel with.
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight,
                  const Tensor& bias, double eps) {
  check_float(x, "layer_norm");
  const int64_t k = static_cast<int64_t>(normalized_shape.size());
  NEUTRINO_CHECK_SHAPE(k >= 1 && x.dim() >= k &&
                           Shape(x.shape().end() - k, x.shape().end()) == normalized_shape,
                       "layer_norm: input {} does not end with normalized shape {}",
                       x.shape_string(), shape_str(normalized_shape));
  for (const Tensor* t : {&weight, &bias}) {
    if (!t->defined()) continue;
    check_same_float(x, *t, "layer_norm");
    NEUTRINO_CHECK_SHAPE(t->shape() == normalized_shape,
                         "layer_norm: weight/bias {} should have shape {}", t->shape_string(),
                         shape_str(normalized_shape));
  }
  if (k == 1 && x.dtype() == DType::kFloat32) return layer_norm_fused(x, weight, bias, eps);
  std::vector<int64_t> dims;
  for (int64_t d = x.dim() - k; d < x.dim(); ++d) dims.push_back(d);
  const Tensor centered = sub(x, mean(x, dims, true));
  const Tensor var = mean(mul(centered, centered), dims, true);
  Tensor y = div(centered, sqrt(add(var, eps)));
  if (weight.defined()) y = mul(y, weight);
  if (bias.defined()) y = add(y, bias);
  return y;
}

// y = x * rstd * weight, rstd = 1 / sqrt(mean(x^2) + eps) per row of the last dim, saved for the
// backward: with gh = g * weight, dx = rstd * (gh - x * rstd^2 * mean(gh * x)) and
// dweight = sum over rows of g * x * rstd (kernels::rms_norm_forward / _backward).
Tensor rms_norm(const Tensor& x_in, const Tensor& weight_in, double eps) {
  check_float(x_in, "rms_norm");
  NEUTRINO_CHECK_SHAPE(x_in.dim() >= 1, "rms_norm: input must have a last dim, got {}",
                       x_in.shape_string());
  const int64_t n = x_in.size(-1), rows = n == 0 ? 0 : x_in.numel() / n;
  if (weight_in.defined()) {
    check_same_float(x_in, weight_in, "rms_norm");
    NEUTRINO_CHECK_SHAPE(weight_in.shape() == Shape{n},
                         "rms_norm: weight {} should have shape ({}) for input {}",
                         weight_in.shape_string(), n, x_in.shape_string());
  }
  NEUTRINO_CHECK_VALUE(eps >= 0, "rms_norm: eps must be >= 0, got {}", eps);
  const Tensor x = materialize(x_in);
  const Tensor weight = weight_in.defined() ? materialize(weight_in) : Tensor();
  Tensor y = Tensor::empty(x.shape(), x.dtype()), rstd = Tensor::empty({rows}, x.dtype());
  dispatch_float(x.dtype(), "rms_norm", [&]<class T>() {
    kernels::rms_norm_forward(x.data<T>(), data_or_null<T>(weight), rows, n, eps, y.data<T>(),
                              rstd.data<T>());
  });
  if (!any_requires_grad({&x_in, &weight_in})) return y;
  record(y, "rms_norm", {x_in, weight_in}, [=](const Tensor& g_in) {
    const Tensor g = materialize(g_in);
    Tensor dx = Tensor::empty(x.shape(), x.dtype());
    Tensor dw = needs_grad(weight_in) ? Tensor::empty({n}, x.dtype()) : Tensor();
    dispatch_float(x.dtype(), "rms_norm", [&]<class T>() {
      kernels::rms_norm_backward(g.data<T>(), x.data<T>(), data_or_null<T>(weight),
                                 rstd.data<T>(), rows, n, dx.data<T>(),
                                 dw.defined() ? dw.data<T>() : nullptr);
    });
    return std::vector<Tensor>{dx, dw};
  });
  return y;
}

// Inverted dropout: in training, zeroes each element with probability p and scales the rest by
// 1 / (1 - p), so evaluation is the identity.
Tensor dropout(const Tensor& x, double p, bool training) {
  NEUTRINO_CHECK_VALUE(p >= 0 && p < 1, "dropout: rate must be in [0, 1), got {}", p);
  if (!training || p == 0) return x;
  check_float(x, "dropout");
  Tensor mask = Tensor::empty(x.shape(), x.dtype());
  const double scale = 1.0 / (1.0 - p);
  dispatch_float(x.dtype(), "dropout", [&]<class T>() {
    kernels::dropout_mask(mask.data<T>(), x.numel(), p, scale, global_generator());
  });
  return mul(x, mask);
}

// loss = -1/N sum_i (z_i[l_i] - logsumexp(z_i)); dloss/dz = (softmax(z) - one_hot(l)) / N.
Tensor softmax_cross_entropy(const Tensor& logits, const Tensor& labels) {
  check_float(logits, "softmax_cross_entropy");
  NEUTRINO_CHECK_SHAPE(logits.dim() == 2 && logits.size(0) > 0,
                       "softmax_cross_entropy: logits must be (batch, classes), got {}",
                       logits.shape_string());
  NEUTRINO_CHECK_VALUE(labels.dtype() == DType::kInt64,
                       "softmax_cross_entropy: labels must be int64, got {}",
                       dtype_name(labels.dtype()));
  const int64_t rows = logits.size(0), classes = logits.size(1);
  NEUTRINO_CHECK_SHAPE(labels.numel() == rows,
                       "softmax_cross_entropy: {} labels for logits {}", labels.numel(),
                       logits.shape_string());
  const Tensor z = materialize(logits), lc = materialize(labels);
  const int64_t* l = lc.data<int64_t>();
  const int64_t bad = kernels::find_out_of_range(l, rows, classes);
  NEUTRINO_CHECK_VALUE(bad == rows,
                       "softmax_cross_entropy: label {} at position {} is out of range for {} "
                       "classes",
                       l[bad], bad, classes);
  Tensor out = Tensor::empty({}, logits.dtype());
  dispatch_float(logits.dtype(), "softmax_cross_entropy", [&]<class T>() {
    *out.data<T>() = static_cast<T>(kernels::softmax_cross_entropy(z.data<T>(), l, rows, classes));
  });
  record(out, "softmax_cross_entropy", {logits}, [logits, lc, rows, classes](const Tensor& g) {
    Tensor hot = Tensor::empty({rows, classes}, logits.dtype());
    dispatch_float(logits.dtype(), "softmax_cross_entropy", [&]<class T>() {
      kernels::one_hot(lc.data<int64_t>(), rows, classes, hot.data<T>());
    });
    return std::vector<Tensor>{
        mul(sub(softmax(logits, 1), hot), mul(g, 1.0 / static_cast<double>(rows)))};
  });
  return out;
}

}  // namespace neutrino
