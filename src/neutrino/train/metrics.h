// Streaming metrics, averaged over samples across batches, with Keras's names.
#pragma once

#include <memory>
#include <string>

#include "neutrino/tensor/tensor.h"

namespace neutrino::train {

class Metric {
 public:
  virtual ~Metric() = default;
  virtual std::string name() const = 0;
  // Adds one batch; y_pred holds probabilities or scores.
  virtual void update(const Tensor& y_true, const Tensor& y_pred) = 0;
  double result() const { return count_ > 0 ? total_ / count_ : 0.0; }
  void reset() { total_ = count_ = 0; }

 protected:
  void add(double total, double count) {
    total_ += total;
    count_ += count;
  }

 private:
  double total_ = 0, count_ = 0;
};

// Keras's metric names: binary_accuracy (threshold 0.5), categorical_accuracy (argmax of both),
// sparse_categorical_accuracy (argmax against integer labels). "accuracy" (or "acc") becomes one of
// them by the loss, as in Keras: binary for binary_crossentropy or a single output unit, sparse
// for sparse_categorical_crossentropy, categorical otherwise.
std::unique_ptr<Metric> make_metric(const std::string& name, const std::string& loss_name,
                                    int64_t output_units);

}  // namespace neutrino::train
