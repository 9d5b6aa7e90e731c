// Streaming metrics with Keras's names: update() once per batch, result() at any time.
#pragma once

#include <memory>
#include <string>

#include "neutrino/tensor/tensor.h"

namespace neutrino::train {

class Metric {
 public:
  virtual ~Metric() = default;
  // The name shown in logs: exactly the name the user gave to make_metric().
  virtual std::string name() const = 0;
  // Adds one batch; y_pred holds probabilities or scores.
  virtual void update(const Tensor& y_true, const Tensor& y_pred) = 0;
  // The value over every batch so far. The default is the running mean of what add() collected
  // (right for accuracies); ratios of counts (precision) and rank statistics (AUC) are not means
  // of per-batch values, so those metrics override it.
  virtual double result() const { return count_ > 0 ? total_ / count_ : 0.0; }
  // Forgets every batch (Keras's reset_state). Overrides must call Metric::reset() too.
  virtual void reset() { total_ = count_ = 0; }

 protected:
  void add(double total, double count) {
    total_ += total;
    count_ += count;
  }

 private:
  double total_ = 0, count_ = 0;
};

// Builds a metric by Keras's name; the name is kept as given for the logs.
//
// Accuracies: binary_accuracy (threshold 0.5), categorical_accuracy (argmax of both),
// sparse_categorical_accuracy (argmax against integer labels). "accuracy" (or "acc") becomes one
// of them by the loss, as in Keras: binary for binary_crossentropy or a single output unit, sparse
// for sparse_categorical_crossentropy, categorical otherwise.
//
// Top-k: top_k_categorical_accuracy and sparse_top_k_categorical_accuracy (k = 5), and with an
// explicit k: top_3_accuracy (sparse or categorical chosen by the loss as for "accuracy"),
// top_3_categorical_accuracy, sparse_top_3_categorical_accuracy. A sample counts as a hit when
// fewer than k classes score strictly higher than its true class, so classes tied at the k-th
// place all count as in the top k (TensorFlow's in_top_k does the same).
//
// Precision, recall, F1: binary_* read y_pred (N) / (N, 1) as the probability of the positive
// class (positive when > 0.5) and y_true as positive when > 0.5; multi-label (N, C) tensors are
// counted element by element, as Keras's Precision does. macro_* take the argmax of y_pred (N, C)
// against integer labels (N) or one-hot rows (N, C), compute the score per class from the
// accumulated confusion matrix and average the C classes with equal weight (macro F1 is the mean
// of the per-class F1s, as in scikit-learn, not the F1 of macro precision and recall); a y_pred
// of one column is read as two classes with threshold 0.5. The plain names "precision", "recall"
// and "f1" mean the binary versions when the loss is binary_crossentropy or the model has one
// output unit, and the macro versions otherwise. A zero denominator gives 0 (scikit-learn's
// zero_division=0), so a class never predicted has precision 0 rather than NaN.
//
// AUC ("auc"): the exact ROC AUC over every sample seen, the Mann-Whitney statistic with tied
// scores given their average rank (so a tie counts as half a correctly ordered pair). y_pred (N)
// / (N, 1) is binary; y_pred (N, C) gives the macro one-vs-rest AUC, the mean over the classes
// that have both positive and negative samples. With no such class (only one label seen so far)
// the result is 0, as in Keras, rather than NaN. Every score is kept until reset(), so memory
// grows with the number of samples.
//
// Throws ValueError naming the known metrics for an unknown name.
std::unique_ptr<Metric> make_metric(const std::string& name, const std::string& loss_name,
                                    int64_t output_units);

}  // namespace neutrino::train
