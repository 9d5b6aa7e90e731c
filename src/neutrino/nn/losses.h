// Losses with Keras names and argument order (y_true, y_pred), each reduced to the batch mean.
// With from_logits, y_pred holds raw scores and the loss uses the log-sum-exp forms, which never
// overflow; without it, probabilities are clipped to [1e-7, 1 - 1e-7] as Keras does.
#pragma once

#include <string>

#include "neutrino/tensor/tensor.h"

namespace neutrino::nn {

Tensor mean_squared_error(const Tensor& y_true, const Tensor& y_pred);
Tensor binary_crossentropy(const Tensor& y_true, const Tensor& y_pred, bool from_logits = false);
// y_true: one-hot or soft targets of y_pred's shape (batch, classes).
Tensor categorical_crossentropy(const Tensor& y_true, const Tensor& y_pred,
                                bool from_logits = false);
// y_true: class indices (batch) or (batch, 1), int64 or integral floats.
Tensor sparse_categorical_crossentropy(const Tensor& y_true, const Tensor& y_pred,
                                       bool from_logits = false);
// Mean of -log_probs[i, labels[i]] (PyTorch's nll_loss).
Tensor nll_loss(const Tensor& log_probs, const Tensor& labels);
// (n) int64 class indices -> (n, classes) one-hot in `dtype`; errors name the bad label.
Tensor one_hot(const Tensor& labels, int64_t classes, DType dtype, const char* caller);

// A loss chosen by name, for compile() and configs.
class Loss {
 public:
  // mean_squared_error (mse), binary_crossentropy, categorical_crossentropy,
  // sparse_categorical_crossentropy.
  explicit Loss(std::string name, bool from_logits = false);
  Loss(const char* name) : Loss(std::string(name)) {}  // NOLINT: "mse" reads as a Loss
  Tensor operator()(const Tensor& y_true, const Tensor& y_pred) const;
  // Keras's class_weight: the mean over the batch of class_weight[label_i] * loss_i, for
  // sparse_categorical_crossentropy (class_weight: float (classes), y_pred's dtype); any other
  // loss, or a weight per class that does not match y_pred's classes, is a ValueError.
  Tensor weighted(const Tensor& y_true, const Tensor& y_pred, const Tensor& class_weight) const;
  const std::string& name() const { return name_; }
  bool from_logits() const { return from_logits_; }

 private:
  std::string name_;
  bool from_logits_;
};

}  // namespace neutrino::nn
