#include "neutrino/nn/losses.h"

#include <cmath>

#include "neutrino/backend/kernels.h"
#include "neutrino/ops/ops.h"

namespace neutrino::nn {

namespace {
constexpr double kEpsilon = 1e-7;  // Keras's backend epsilon

// y_true may drop y_pred's trailing 1 ((n) against (n, 1)), and may be of another dtype.
Tensor align_targets(const Tensor& y_true, const Tensor& y_pred, const char* loss) {
  NEUTRINO_CHECK_VALUE(y_true.defined() && y_pred.defined(), "{}: undefined input", loss);
  NEUTRINO_CHECK_SHAPE(y_true.numel() == y_pred.numel(),
                       "{}: y_true {} does not match y_pred {}", loss, y_true.shape_string(),
                       y_pred.shape_string());
  Tensor t = y_true.dtype() == y_pred.dtype() ? y_true : cast(y_true, y_pred.dtype());
  return t.shape() == y_pred.shape() ? t : reshape(t, y_pred.shape());
}

Tensor labels_of(const Tensor& y_true, int64_t batch, const char* loss) {
  NEUTRINO_CHECK_SHAPE(y_true.numel() == batch && (y_true.dim() == 1 || y_true.dim() == 2),
                       "{}: expected {} class labels of shape ({},) or ({}, 1), got {}", loss,
                       batch, batch, batch, y_true.shape_string());
  Tensor labels = reshape(y_true.detach(), {batch});
  if (labels.dtype() != DType::kInt64) {
    const std::vector<double> values = labels.to_vector<double>();
    for (double v : values) {
      NEUTRINO_CHECK_VALUE(v == std::floor(v), "{}: label {} is not a whole number", loss, v);
    }
    labels = cast(labels, DType::kInt64);
  }
  return labels;
}
}  // namespace

namespace {
// Each int64 label in [0, classes), or a ValueError naming the caller and the position; the
// labels, contiguous.
Tensor check_labels(const Tensor& labels, int64_t classes, const char* caller) {
  NEUTRINO_CHECK_VALUE(labels.dtype() == DType::kInt64, "{}: labels must be int64", caller);
  const Tensor values = densify(labels);
  const int64_t n = values.numel();
  const int64_t* p = values.data<int64_t>();
  const int64_t bad = kernels::find_out_of_range(p, n, classes);
  NEUTRINO_CHECK_VALUE(bad == n, "{}: label {} at position {} is out of range for {} classes",
                       caller, p[bad], bad, classes);
  return values;
}
}  // namespace

Tensor one_hot(const Tensor& labels, int64_t classes, DType dtype, const char* caller) {
  const Tensor values = check_labels(labels, classes, caller);
  const int64_t n = values.numel();
  Tensor out = Tensor::empty({n, classes}, dtype);
  dispatch_float(dtype, caller, [&]<class T>() {
    kernels::one_hot(values.data<int64_t>(), n, classes, out.data<T>());
  });
  return out;
}

Tensor mean_squared_error(const Tensor& y_true, const Tensor& y_pred) {
  const Tensor diff = sub(y_pred, align_targets(y_true, y_pred, "mean_squared_error"));
  return mean(mul(diff, diff));
}

// -(y log p + (1 - y) log(1 - p)); from logits x: softplus(x) - x y.
Tensor binary_crossentropy(const Tensor& y_true, const Tensor& y_pred, bool from_logits) {
  const Tensor y = align_targets(y_true, y_pred, "binary_crossentropy");
  if (from_logits) return mean(sub(softplus(y_pred), mul(y_pred, y)));
  const Tensor p = clamp(y_pred, kEpsilon, 1 - kEpsilon);
  return neg(mean(add(mul(y, log(p)), mul(rsub(1.0, y), log(rsub(1.0, p))))));
}

// -sum(y log p) per sample; probabilities are renormalized to sum to 1 first, as in Keras.
Tensor categorical_crossentropy(const Tensor& y_true, const Tensor& y_pred, bool from_logits) {
  NEUTRINO_CHECK_SHAPE(y_pred.dim() >= 2 && y_true.shape() == y_pred.shape(),
                       "categorical_crossentropy: y_true {} must match y_pred {} (batch, classes)",
                       y_true.shape_string(), y_pred.shape_string());
  const Tensor y = align_targets(y_true, y_pred, "categorical_crossentropy");
  Tensor log_p;
  if (from_logits) {
    log_p = log_softmax(y_pred, -1);
  } else {
    const Tensor p = div(y_pred, sum(y_pred, {-1}, true));
    log_p = log(clamp(p, kEpsilon, 1 - kEpsilon));
  }
  return neg(mean(sum(mul(y, log_p), {-1})));
}

Tensor nll_loss(const Tensor& log_probs, const Tensor& labels) {
  NEUTRINO_CHECK_SHAPE(log_probs.dim() == 2, "nll_loss: log_probs must be (batch, classes), got {}",
                       log_probs.shape_string());
  const Tensor hot = one_hot(labels_of(labels, log_probs.size(0), "nll_loss"), log_probs.size(1),
                             log_probs.dtype(), "nll_loss");
  return neg(mean(sum(mul(hot, log_probs), {1})));
}

Tensor sparse_categorical_crossentropy(const Tensor& y_true, const Tensor& y_pred,
                                       bool from_logits) {
  NEUTRINO_CHECK_SHAPE(y_pred.dim() == 2,
                       "sparse_categorical_crossentropy: y_pred must be (batch, classes), got {}",
                       y_pred.shape_string());
  const Tensor labels = labels_of(y_true, y_pred.size(0), "sparse_categorical_crossentropy");
  if (from_logits) {
    check_labels(labels, y_pred.size(1), "sparse_categorical_crossentropy");
    return softmax_cross_entropy(y_pred, labels);
  }
  const Tensor log_p = log(clamp(y_pred, kEpsilon, 1 - kEpsilon));
  const Tensor hot = one_hot(labels, y_pred.size(1), y_pred.dtype(), "sparse_categorical_crossentropy");
  return neg(mean(sum(mul(hot, log_p), {1})));
}

Loss::Loss(std::string name, bool from_logits) : name_(std::move(name)), from_logits_(from_logits) {
  if (name_ == "mse") name_ = "mean_squared_error";
  NEUTRINO_CHECK_VALUE(name_ == "mean_squared_error" || name_ == "binary_crossentropy" ||
                           name_ == "categorical_crossentropy" ||
                           name_ == "sparse_categorical_crossentropy",
                       "unknown loss '{}' (known: mean_squared_error, binary_crossentropy, "
                       "categorical_crossentropy, sparse_categorical_crossentropy)",
                       name_);
}

Tensor Loss::operator()(const Tensor& y_true, const Tensor& y_pred) const {
  if (name_ == "mean_squared_error") return mean_squared_error(y_true, y_pred);
  if (name_ == "binary_crossentropy") return binary_crossentropy(y_true, y_pred, from_logits_);
  if (name_ == "categorical_crossentropy") {
    return categorical_crossentropy(y_true, y_pred, from_logits_);
  }
  return sparse_categorical_crossentropy(y_true, y_pred, from_logits_);
}

Tensor Loss::weighted(const Tensor& y_true, const Tensor& y_pred,
                      const Tensor& class_weight) const {
  NEUTRINO_CHECK_VALUE(name_ == "sparse_categorical_crossentropy",
                       "class_weight: works with sparse_categorical_crossentropy, not {}", name_);
  NEUTRINO_CHECK_SHAPE(y_pred.dim() == 2 && class_weight.shape() == Shape{y_pred.size(-1)},
                       "class_weight: {} weights for predictions {} (one per class)",
                       class_weight.numel(), y_pred.shape_string());
  const Tensor labels = labels_of(y_true, y_pred.size(0), "sparse_categorical_crossentropy");
  check_labels(labels, y_pred.size(1), "sparse_categorical_crossentropy");
  // -log p[i, label_i] per sample, as the unweighted loss computes it before its mean.
  const Tensor log_p = from_logits_ ? log_softmax(y_pred, 1) : log(clamp(y_pred, kEpsilon, 1 - kEpsilon));
  const Tensor hot = one_hot(labels, y_pred.size(1), y_pred.dtype(), "sparse_categorical_crossentropy");
  const Tensor per_sample = neg(sum(mul(hot, log_p), {1}));
  return mean(mul(per_sample, index_select(cast(class_weight, y_pred.dtype()), 0, labels)));
}

}  // namespace neutrino::nn
