#include "neutrino/train/metrics.h"

#include <cmath>
#include <vector>

#include "neutrino/ops/ops.h"

namespace neutrino::train {

namespace {
class BinaryAccuracy : public Metric {
 public:
  BinaryAccuracy(std::string shown, double threshold) : shown_(std::move(shown)), threshold_(threshold) {}
  std::string name() const override { return shown_; }
  void update(const Tensor& y_true, const Tensor& y_pred) override {
    NEUTRINO_CHECK_SHAPE(y_true.numel() == y_pred.numel(),
                         "binary_accuracy: y_true {} does not match y_pred {}",
                         y_true.shape_string(), y_pred.shape_string());
    const std::vector<double> t = y_true.to_vector<double>();
    const std::vector<double> p = y_pred.to_vector<double>();
    double hits = 0;
    for (size_t i = 0; i < t.size(); ++i) hits += ((p[i] > threshold_) == (t[i] > 0.5)) ? 1 : 0;
    add(hits, static_cast<double>(t.size()));
  }

 private:
  std::string shown_;
  double threshold_;
};

class CategoricalAccuracy : public Metric {
 public:
  CategoricalAccuracy(std::string shown, bool sparse) : shown_(std::move(shown)), sparse_(sparse) {}
  std::string name() const override { return shown_; }
  void update(const Tensor& y_true, const Tensor& y_pred) override {
    NEUTRINO_CHECK_SHAPE(y_pred.dim() == 2, "{}: y_pred must be (batch, classes), got {}", shown_,
                         y_pred.shape_string());
    const std::vector<int64_t> predicted = argmax(y_pred.detach(), 1).to_vector<int64_t>();
    std::vector<int64_t> truth;
    if (sparse_) {
      NEUTRINO_CHECK_SHAPE(y_true.numel() == y_pred.size(0), "{}: {} labels for {} predictions",
                           shown_, y_true.numel(), y_pred.size(0));
      for (double v : y_true.to_vector<double>()) truth.push_back(static_cast<int64_t>(std::llround(v)));
    } else {
      NEUTRINO_CHECK_SHAPE(y_true.shape() == y_pred.shape(), "{}: y_true {} does not match y_pred {}",
                           shown_, y_true.shape_string(), y_pred.shape_string());
      truth = argmax(y_true.detach().to(y_pred.dtype()), 1).to_vector<int64_t>();
    }
    double hits = 0;
    for (size_t i = 0; i < truth.size(); ++i) hits += predicted[i] == truth[i] ? 1 : 0;
    add(hits, static_cast<double>(truth.size()));
  }

 private:
  std::string shown_;
  bool sparse_;
};
}  // namespace

std::unique_ptr<Metric> make_metric(const std::string& name, const std::string& loss_name,
                                    int64_t output_units) {
  if (name == "accuracy" || name == "acc") {
    if (loss_name == "binary_crossentropy" || output_units == 1) return std::make_unique<BinaryAccuracy>(name, 0.5);
    if (loss_name == "sparse_categorical_crossentropy") {
      return std::make_unique<CategoricalAccuracy>(name, true);
    }
    return std::make_unique<CategoricalAccuracy>(name, false);
  }
  if (name == "binary_accuracy") return std::make_unique<BinaryAccuracy>(name, 0.5);
  if (name == "categorical_accuracy") return std::make_unique<CategoricalAccuracy>(name, false);
  if (name == "sparse_categorical_accuracy") return std::make_unique<CategoricalAccuracy>(name, true);
  throw ValueError(fmt::format(
      "unknown metric '{}' (known: accuracy, binary_accuracy, categorical_accuracy, "
      "sparse_categorical_accuracy)",
      name));
}

}  // namespace neutrino::train
