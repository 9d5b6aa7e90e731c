// Confusion matrix and a per-class report in the layout of scikit-learn's classification_report.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "neutrino/tensor/tensor.h"

namespace neutrino::train {

using ConfusionMatrix = std::vector<std::vector<int64_t>>;

// Class labels of y_true, one per prediction: integer labels (batch) / (batch, 1), or, when its
// shape is (batch, num_classes) with num_classes > 1, the argmax of each (one-hot) row. Throws
// ShapeError when the sizes do not fit and ValueError for a label that is not an integer in
// [0, num_classes); `who` starts the message.
std::vector<int64_t> true_labels(const Tensor& y_true, int64_t batch, int64_t num_classes,
                                 const std::string& who = "true_labels");

// Predicted class labels: the argmax of scores (N, num_classes), the first maximum on ties as in
// NumPy. A y_pred of one value per sample, (N) or (N, 1), is a probability thresholded at 0.5 when
// num_classes == 2 (which also reads 0/1 labels right), and integer labels otherwise.
std::vector<int64_t> predicted_labels(const Tensor& y_pred, int64_t num_classes,
                                      const std::string& who = "predicted_labels");

// counts[i][j]: samples of true class i predicted as j. y_pred as for predicted_labels, y_true as
// for true_labels.
ConfusionMatrix confusion_matrix(const Tensor& y_true, const Tensor& y_pred, int64_t num_classes);

struct ClassReport {
  std::string name;
  double precision = 0, recall = 0, f1 = 0;
  int64_t support = 0;  // true samples of the class; all samples for the averages
};

struct Report {
  std::vector<ClassReport> classes;
  double accuracy = 0;
  ClassReport macro_avg, weighted_avg;  // unweighted / support-weighted means over classes
  ConfusionMatrix confusion;
};

// The report of a confusion matrix, e.g. one summed over batches. Every class in the matrix is
// listed and averaged, also those with no samples (scikit-learn's labels=range(C)). A zero
// denominator gives 0 for precision, recall or F1 (scikit-learn's zero_division=0, without its
// warning); an empty matrix gives accuracy 0. Class names default to "0", "1", ...
Report report_from_confusion(const ConfusionMatrix& confusion,
                             const std::vector<std::string>& class_names = {});

// y_pred: scores (N, C) (argmax taken) or, for binary, probabilities (N) / (N, 1) (threshold 0.5);
// y_true: labels (N) or one-hot rows (N, C). With more than two class_names, a y_pred of one value
// per sample is read as integer predicted labels instead. class_names, when given, must name every
// class (ValueError otherwise).
Report classification_report(const Tensor& y_true, const Tensor& y_pred,
                             const std::vector<std::string>& class_names = {});

// scikit-learn's text layout (digits=2): a row per class, then "accuracy", "macro avg" and
// "weighted avg".
std::string format_report(const Report& report);

// A JSON object: {"classes": [{"name", "precision", "recall", "f1", "support"}, ...],
// "accuracy", "macro_avg": {...}, "weighted_avg": {...}, "confusion": [[...], ...]}.
std::string report_json(const Report& report);

}  // namespace neutrino::train
