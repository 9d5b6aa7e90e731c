#include "neutrino/train/report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "neutrino/core/error.h"

namespace neutrino::train {

namespace {
// A label given as a number (labels often arrive as float32): it must be an exact integer, since
// rounding 1.5 to a class would hide a bug in the caller's data.
int64_t checked_label(double value, int64_t num_classes, const std::string& who) {
  NEUTRINO_CHECK_VALUE(std::isfinite(value) && value == std::floor(value),
                       "{}: label {} is not an integer class", who, value);
  NEUTRINO_CHECK_VALUE(value >= 0 && value < static_cast<double>(num_classes),
                       "{}: label {} is outside [0, {}) for {} classes", who, value, num_classes,
                       num_classes);
  return static_cast<int64_t>(value);
}

// Row-wise argmax of a (rows, cols) block in C order; the first maximum wins, as in NumPy.
std::vector<int64_t> row_argmax(const std::vector<double>& values, int64_t rows, int64_t cols) {
  std::vector<int64_t> out(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    const auto first = values.begin() + r * cols;
    out[static_cast<size_t>(r)] = std::max_element(first, first + cols) - first;
  }
  return out;
}

double ratio(double numerator, double denominator) {
  return denominator > 0 ? numerator / denominator : 0.0;  // zero_division=0
}

ClassReport scores(std::string name, int64_t hits, int64_t predicted, int64_t support) {
  ClassReport row{.name = std::move(name), .support = support};
  row.precision = ratio(static_cast<double>(hits), static_cast<double>(predicted));
  row.recall = ratio(static_cast<double>(hits), static_cast<double>(support));
  row.f1 = ratio(2 * row.precision * row.recall, row.precision + row.recall);
  return row;
}

nlohmann::json row_json(const ClassReport& row) {
  return {{"name", row.name},
          {"precision", row.precision},
          {"recall", row.recall},
          {"f1", row.f1},
          {"support", row.support}};
}
}  // namespace

std::vector<int64_t> true_labels(const Tensor& y_true, int64_t batch, int64_t num_classes,
                                 const std::string& who) {
  NEUTRINO_CHECK_VALUE(y_true.defined(), "{}: y_true is undefined", who);
  const std::vector<double> values = y_true.detach().to_vector<double>();
  if (num_classes > 1 && y_true.dim() == 2 && y_true.size(0) == batch &&
      y_true.size(1) == num_classes) {
    return row_argmax(values, batch, num_classes);
  }
  NEUTRINO_CHECK_SHAPE(y_true.numel() == batch,
                       "{}: y_true {} does not fit {} predictions of {} classes (expected labels "
                       "{} or one-hot {})",
                       who, y_true.shape_string(), batch, num_classes, shape_str({batch}),
                       shape_str({batch, num_classes}));
  std::vector<int64_t> out;
  out.reserve(values.size());
  for (double v : values) out.push_back(checked_label(v, num_classes, who));
  return out;
}

std::vector<int64_t> predicted_labels(const Tensor& y_pred, int64_t num_classes,
                                      const std::string& who) {
  NEUTRINO_CHECK_VALUE(y_pred.defined(), "{}: y_pred is undefined", who);
  NEUTRINO_CHECK_VALUE(num_classes >= 1, "{}: num_classes must be positive, got {}", who,
                       num_classes);
  NEUTRINO_CHECK_SHAPE(y_pred.dim() == 1 || y_pred.dim() == 2,
                       "{}: y_pred must be (N), (N, 1) or (N, classes), got {}", who,
                       y_pred.shape_string());
  const int64_t n = y_pred.size(0);
  const std::vector<double> values = y_pred.detach().to_vector<double>();
  if (y_pred.dim() == 2 && y_pred.size(1) != 1) {
    NEUTRINO_CHECK_SHAPE(y_pred.size(1) == num_classes,
                         "{}: y_pred {} has {} columns for {} classes", who, y_pred.shape_string(),
                         y_pred.size(1), num_classes);
    return row_argmax(values, n, num_classes);
  }
  std::vector<int64_t> out;
  out.reserve(values.size());
  // Thresholding covers both probabilities and 0/1 labels, so binary callers need not say which.
  for (double v : values) {
    out.push_back(num_classes == 2 ? (v > 0.5 ? 1 : 0) : checked_label(v, num_classes, who));
  }
  return out;
}

ConfusionMatrix confusion_matrix(const Tensor& y_true, const Tensor& y_pred, int64_t num_classes) {
  const std::vector<int64_t> predicted = predicted_labels(y_pred, num_classes, "confusion_matrix");
  const std::vector<int64_t> truth =
      true_labels(y_true, static_cast<int64_t>(predicted.size()), num_classes, "confusion_matrix");
  ConfusionMatrix counts(static_cast<size_t>(num_classes),
                         std::vector<int64_t>(static_cast<size_t>(num_classes), 0));
  for (size_t i = 0; i < truth.size(); ++i) {
    ++counts[static_cast<size_t>(truth[i])][static_cast<size_t>(predicted[i])];
  }
  return counts;
}

Report report_from_confusion(const ConfusionMatrix& confusion,
                             const std::vector<std::string>& class_names) {
  const size_t c = confusion.size();
  for (const auto& row : confusion) {
    NEUTRINO_CHECK_SHAPE(row.size() == c,
                         "report: the confusion matrix has {} rows but a row of {}", c, row.size());
  }
  NEUTRINO_CHECK_VALUE(class_names.empty() || class_names.size() == c,
                       "report: {} class names for {} classes", class_names.size(), c);
  Report report;
  report.confusion = confusion;
  int64_t total = 0, correct = 0;
  for (size_t i = 0; i < c; ++i) {
    int64_t support = 0, predicted = 0;
    for (size_t j = 0; j < c; ++j) {
      support += confusion[i][j];
      predicted += confusion[j][i];
    }
    total += support;
    correct += confusion[i][i];
    report.classes.push_back(scores(class_names.empty() ? std::to_string(i) : class_names[i],
                                    confusion[i][i], predicted, support));
  }
  report.accuracy = ratio(static_cast<double>(correct), static_cast<double>(total));
  report.macro_avg = {.name = "macro avg", .support = total};
  report.weighted_avg = {.name = "weighted avg", .support = total};
  // Sums first, then one division, as NumPy's mean and average(weights=support) do.
  for (const ClassReport& row : report.classes) {
    const auto support = static_cast<double>(row.support);
    report.macro_avg.precision += row.precision;
    report.macro_avg.recall += row.recall;
    report.macro_avg.f1 += row.f1;
    report.weighted_avg.precision += support * row.precision;
    report.weighted_avg.recall += support * row.recall;
    report.weighted_avg.f1 += support * row.f1;
  }
  for (double* value :
       {&report.macro_avg.precision, &report.macro_avg.recall, &report.macro_avg.f1}) {
    *value = ratio(*value, static_cast<double>(c));
  }
  for (double* value :
       {&report.weighted_avg.precision, &report.weighted_avg.recall, &report.weighted_avg.f1}) {
    *value = ratio(*value, static_cast<double>(total));
  }
  return report;
}

Report classification_report(const Tensor& y_true, const Tensor& y_pred,
                             const std::vector<std::string>& class_names) {
  NEUTRINO_CHECK_VALUE(y_pred.defined(), "classification_report: y_pred is undefined");
  NEUTRINO_CHECK_SHAPE(y_pred.dim() == 1 || y_pred.dim() == 2,
                       "classification_report: y_pred must be (N), (N, 1) or (N, classes), got {}",
                       y_pred.shape_string());
  const bool one_column = y_pred.dim() == 1 || y_pred.size(1) == 1;
  const int64_t num_classes =
      !one_column ? y_pred.size(1) : std::max<int64_t>(2, static_cast<int64_t>(class_names.size()));
  NEUTRINO_CHECK_VALUE(
      class_names.empty() || static_cast<int64_t>(class_names.size()) == num_classes,
      "classification_report: {} class names for {} classes", class_names.size(), num_classes);
  return report_from_confusion(confusion_matrix(y_true, y_pred, num_classes), class_names);
}

std::string format_report(const Report& report) {
  // Mirrors sklearn.metrics.classification_report(digits=2) character for character.
  size_t width = std::string("weighted avg").size();
  for (const ClassReport& row : report.classes) width = std::max(width, row.name.size());
  std::string out = fmt::format("{:>{}} ", "", width);
  for (const char* header : {"precision", "recall", "f1-score", "support"}) {
    out += fmt::format(" {:>9}", header);
  }
  out += "\n\n";
  const auto line = [&](const ClassReport& row) {
    out += fmt::format("{:>{}}  {:>9.2f} {:>9.2f} {:>9.2f} {:>9}\n", row.name, width, row.precision,
                       row.recall, row.f1, row.support);
  };
  for (const ClassReport& row : report.classes) line(row);
  out += "\n";
  out += fmt::format("{:>{}}  {:>9} {:>9} {:>9.2f} {:>9}\n", "accuracy", width, "", "",
                     report.accuracy, report.macro_avg.support);
  line(report.macro_avg);
  line(report.weighted_avg);
  return out;
}

std::string report_json(const Report& report) {
  nlohmann::json classes = nlohmann::json::array();
  for (const ClassReport& row : report.classes) classes.push_back(row_json(row));
  const nlohmann::json out = {{"classes", std::move(classes)},
                              {"accuracy", report.accuracy},
                              {"macro_avg", row_json(report.macro_avg)},
                              {"weighted_avg", row_json(report.weighted_avg)},
                              {"confusion", report.confusion}};
  return out.dump();
}

}  // namespace neutrino::train
