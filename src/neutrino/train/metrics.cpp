#include "neutrino/train/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <numeric>
#include <optional>
#include <string_view>
#include <vector>

#include "neutrino/ops/ops.h"
#include "neutrino/train/report.h"

namespace neutrino::train {

namespace {
class BinaryAccuracy : public Metric {
 public:
  BinaryAccuracy(std::string shown, double threshold)
      : shown_(std::move(shown)), threshold_(threshold) {}
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
      for (double v : y_true.to_vector<double>())
        truth.push_back(static_cast<int64_t>(std::llround(v)));
    } else {
      NEUTRINO_CHECK_SHAPE(y_true.shape() == y_pred.shape(),
                           "{}: y_true {} does not match y_pred {}", shown_, y_true.shape_string(),
                           y_pred.shape_string());
      truth = argmax(cast(y_true.detach(), y_pred.dtype()), 1).to_vector<int64_t>();
    }
    double hits = 0;
    for (size_t i = 0; i < truth.size(); ++i) hits += predicted[i] == truth[i] ? 1 : 0;
    add(hits, static_cast<double>(truth.size()));
  }

 private:
  std::string shown_;
  bool sparse_;
};

class TopKAccuracy : public Metric {
 public:
  TopKAccuracy(std::string shown, int64_t k, bool sparse)
      : shown_(std::move(shown)), k_(k), sparse_(sparse) {}
  std::string name() const override { return shown_; }
  void update(const Tensor& y_true, const Tensor& y_pred) override {
    NEUTRINO_CHECK_SHAPE(y_pred.dim() == 2, "{}: y_pred must be (batch, classes), got {}", shown_,
                         y_pred.shape_string());
    const int64_t n = y_pred.size(0), c = y_pred.size(1);
    // Keras's sparse and categorical variants differ only in the form of y_true; hold the caller
    // to the form the name promises rather than guessing.
    if (sparse_) {
      NEUTRINO_CHECK_SHAPE(y_true.numel() == n, "{}: y_true {} holds {} labels for {} predictions",
                           shown_, y_true.shape_string(), y_true.numel(), n);
    } else {
      NEUTRINO_CHECK_SHAPE(y_true.shape() == y_pred.shape(),
                           "{}: y_true {} does not match y_pred {}", shown_, y_true.shape_string(),
                           y_pred.shape_string());
    }
    const std::vector<int64_t> truth = true_labels(y_true, n, c, shown_);
    const std::vector<double> scores = y_pred.detach().to_vector<double>();
    double hits = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double* row = scores.data() + i * c;
      const double target = row[truth[static_cast<size_t>(i)]];
      const auto higher = std::count_if(row, row + c, [&](double s) { return s > target; });
      hits += higher < k_ ? 1 : 0;
    }
    add(hits, static_cast<double>(n));
  }

 private:
  std::string shown_;
  int64_t k_;
  bool sparse_;
};

enum class Score { kPrecision, kRecall, kF1 };

double pick(Score score, const ClassReport& row) {
  switch (score) {
    case Score::kPrecision:
      return row.precision;
    case Score::kRecall:
      return row.recall;
    case Score::kF1:
      return row.f1;
  }
  return 0;
}

// Precision, recall or F1 of the positive class, from counts summed over batches (a mean of
// per-batch ratios would weight small batches too much).
class BinaryScore : public Metric {
 public:
  BinaryScore(std::string shown, Score score) : shown_(std::move(shown)), score_(score) {}
  std::string name() const override { return shown_; }
  void update(const Tensor& y_true, const Tensor& y_pred) override {
    NEUTRINO_CHECK_SHAPE(y_true.numel() == y_pred.numel(), "{}: y_true {} does not match y_pred {}",
                         shown_, y_true.shape_string(), y_pred.shape_string());
    const std::vector<double> t = y_true.detach().to_vector<double>();
    const std::vector<double> p = y_pred.detach().to_vector<double>();
    for (size_t i = 0; i < t.size(); ++i) {
      const bool actual = t[i] > 0.5, predicted = p[i] > 0.5;
      confusion_[actual ? 1 : 0][predicted ? 1 : 0] += 1;
    }
  }
  double result() const override {
    return pick(score_, report_from_confusion(confusion_).classes[1]);
  }
  void reset() override {
    Metric::reset();
    confusion_ = {{0, 0}, {0, 0}};
  }

 private:
  std::string shown_;
  Score score_;
  ConfusionMatrix confusion_ = {{0, 0}, {0, 0}};
};

// Macro average over classes of a confusion matrix summed over batches.
class MacroScore : public Metric {
 public:
  MacroScore(std::string shown, Score score) : shown_(std::move(shown)), score_(score) {}
  std::string name() const override { return shown_; }
  void update(const Tensor& y_true, const Tensor& y_pred) override {
    NEUTRINO_CHECK_SHAPE(y_pred.dim() == 1 || y_pred.dim() == 2,
                         "{}: y_pred must be (N), (N, 1) or (N, classes), got {}", shown_,
                         y_pred.shape_string());
    // One column is a sigmoid output: two classes, thresholded inside confusion_matrix.
    const int64_t c = y_pred.dim() == 2 && y_pred.size(1) > 1 ? y_pred.size(1) : 2;
    NEUTRINO_CHECK_SHAPE(confusion_.empty() || static_cast<int64_t>(confusion_.size()) == c,
                         "{}: y_pred {} has {} classes, earlier batches had {}", shown_,
                         y_pred.shape_string(), c, confusion_.size());
    const ConfusionMatrix batch = confusion_matrix(y_true, y_pred, c);
    if (confusion_.empty()) {
      confusion_ = batch;
      return;
    }
    for (size_t i = 0; i < batch.size(); ++i) {
      for (size_t j = 0; j < batch.size(); ++j) confusion_[i][j] += batch[i][j];
    }
  }
  double result() const override {
    return confusion_.empty() ? 0.0 : pick(score_, report_from_confusion(confusion_).macro_avg);
  }
  void reset() override {
    Metric::reset();
    confusion_.clear();
  }

 private:
  std::string shown_;
  Score score_;
  ConfusionMatrix confusion_;
};

// ROC AUC as the Mann-Whitney U statistic: the share of (positive, negative) pairs ordered right,
// ties counting half, computed from average ranks in O(n log n). Empty without both classes.
std::optional<double> roc_auc(const std::vector<double>& scores,
                              const std::vector<bool>& positive) {
  const size_t n = scores.size();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  double positive_rank_sum = 0, positives = 0;
  for (size_t start = 0; start < n;) {
    size_t end = start;
    while (end < n && scores[order[end]] == scores[order[start]]) ++end;
    // 1-based ranks start+1 .. end share their mean.
    const double rank = (static_cast<double>(start + 1) + static_cast<double>(end)) / 2;
    for (size_t i = start; i < end; ++i) {
      if (positive[order[i]]) {
        positive_rank_sum += rank;
        positives += 1;
      }
    }
    start = end;
  }
  const double negatives = static_cast<double>(n) - positives;
  if (positives == 0 || negatives == 0) return std::nullopt;
  return (positive_rank_sum - positives * (positives + 1) / 2) / (positives * negatives);
}

class Auc : public Metric {
 public:
  explicit Auc(std::string shown) : shown_(std::move(shown)) {}
  std::string name() const override { return shown_; }
  void update(const Tensor& y_true, const Tensor& y_pred) override {
    NEUTRINO_CHECK_SHAPE(y_pred.dim() == 1 || y_pred.dim() == 2,
                         "{}: y_pred must be (N), (N, 1) or (N, classes), got {}", shown_,
                         y_pred.shape_string());
    const int64_t n = y_pred.size(0);
    const int64_t c = y_pred.dim() == 2 ? y_pred.size(1) : 1;
    NEUTRINO_CHECK_SHAPE(scores_.empty() || static_cast<int64_t>(scores_.size()) == c,
                         "{}: y_pred {} has {} columns, earlier batches had {}", shown_,
                         y_pred.shape_string(), c, scores_.size());
    scores_.resize(static_cast<size_t>(c));
    positive_.resize(static_cast<size_t>(c));
    const std::vector<double> p = y_pred.detach().to_vector<double>();
    for (double v : p) {
      // NaN would break the strict weak ordering the sort relies on.
      NEUTRINO_CHECK_VALUE(!std::isnan(v), "{}: y_pred holds NaN", shown_);
    }
    const std::vector<double> t = y_true.detach().to_vector<double>();
    if (c == 1 || y_true.shape() == y_pred.shape()) {
      // Binary, or one-hot / multi-hot columns: each column is its own positive-vs-rest problem.
      NEUTRINO_CHECK_SHAPE(y_true.numel() == y_pred.numel(),
                           "{}: y_true {} does not match y_pred {}", shown_, y_true.shape_string(),
                           y_pred.shape_string());
      for (size_t i = 0; i < p.size(); ++i) {
        scores_[i % c].push_back(p[i]);
        positive_[i % c].push_back(t[i] > 0.5);
      }
      return;
    }
    const std::vector<int64_t> labels = true_labels(y_true, n, c, shown_);
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t j = 0; j < c; ++j) {
        scores_[j].push_back(p[static_cast<size_t>(i * c + j)]);
        positive_[j].push_back(labels[static_cast<size_t>(i)] == j);
      }
    }
  }
  double result() const override {
    double sum = 0, classes = 0;
    for (size_t j = 0; j < scores_.size(); ++j) {
      if (const std::optional<double> auc = roc_auc(scores_[j], positive_[j])) {
        sum += *auc;
        classes += 1;
      }
    }
    return classes > 0 ? sum / classes : 0.0;
  }
  void reset() override {
    Metric::reset();
    scores_.clear();
    positive_.clear();
  }

 private:
  std::string shown_;
  std::vector<std::vector<double>> scores_;  // per class (one column when binary)
  std::vector<std::vector<bool>> positive_;
};

// Parses [sparse_]top_{k|<digits>}_[categorical_]accuracy. Returns k (0 when the name is not of
// this form) and sets *sparse: from the name when it says, else from the loss as "accuracy" does.
int64_t parse_top_k(const std::string& name, const std::string& loss_name, bool* sparse) {
  std::string_view rest = name;
  const bool sparse_prefix = rest.starts_with("sparse_");
  if (sparse_prefix) rest.remove_prefix(7);
  if (!rest.starts_with("top_")) return 0;
  rest.remove_prefix(4);
  bool categorical = false;
  if (rest.ends_with("_categorical_accuracy")) {
    rest.remove_suffix(21);
    categorical = true;
  } else if (rest.ends_with("_accuracy")) {
    rest.remove_suffix(9);
  } else {
    return 0;
  }
  int64_t k = 5;  // Keras's default
  if (rest != "k") {
    const auto [end, error] = std::from_chars(rest.data(), rest.data() + rest.size(), k);
    if (rest.empty() || error != std::errc() || end != rest.data() + rest.size()) return 0;
    NEUTRINO_CHECK_VALUE(k >= 1, "metric '{}': k must be at least 1", name);
  }
  *sparse = sparse_prefix || (!categorical && loss_name == "sparse_categorical_crossentropy");
  return k;
}
}  // namespace

std::unique_ptr<Metric> make_metric(const std::string& name, const std::string& loss_name,
                                    int64_t output_units) {
  const bool binary = loss_name == "binary_crossentropy" || output_units == 1;
  if (name == "accuracy" || name == "acc") {
    if (binary) return std::make_unique<BinaryAccuracy>(name, 0.5);
    if (loss_name == "sparse_categorical_crossentropy") {
      return std::make_unique<CategoricalAccuracy>(name, true);
    }
    return std::make_unique<CategoricalAccuracy>(name, false);
  }
  if (name == "binary_accuracy") return std::make_unique<BinaryAccuracy>(name, 0.5);
  if (name == "categorical_accuracy") return std::make_unique<CategoricalAccuracy>(name, false);
  if (name == "sparse_categorical_accuracy")
    return std::make_unique<CategoricalAccuracy>(name, true);
  bool sparse = false;
  if (const int64_t k = parse_top_k(name, loss_name, &sparse); k > 0) {
    return std::make_unique<TopKAccuracy>(name, k, sparse);
  }
  struct Named {
    const char* suffix;
    Score score;
  };
  for (const Named& scored : {Named{"precision", Score::kPrecision},
                              Named{"recall", Score::kRecall}, Named{"f1", Score::kF1}}) {
    const std::string suffix = scored.suffix;
    if (name == suffix) {
      if (binary) return std::make_unique<BinaryScore>(name, scored.score);
      return std::make_unique<MacroScore>(name, scored.score);
    }
    if (name == "binary_" + suffix) return std::make_unique<BinaryScore>(name, scored.score);
    if (name == "macro_" + suffix) return std::make_unique<MacroScore>(name, scored.score);
  }
  if (name == "auc") return std::make_unique<Auc>(name);
  throw ValueError(fmt::format(
      "unknown metric '{}' (known: accuracy, acc, binary_accuracy, categorical_accuracy, "
      "sparse_categorical_accuracy, top_k_categorical_accuracy, sparse_top_k_categorical_accuracy, "
      "top_<k>_accuracy, precision, recall, f1, binary_precision, binary_recall, binary_f1, "
      "macro_precision, macro_recall, macro_f1, auc)",
      name));
}

}  // namespace neutrino::train
