// Streaming metrics (top-k, precision/recall/F1, AUC) and the classification report, against
// values computed by hand or by scikit-learn (the snippet is quoted next to each constant).
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "neutrino/neutrino.h"
#include "neutrino/train/report.h"

using namespace neutrino;
using namespace neutrino::train;

namespace {
double run(const std::string& name, const std::string& loss, int64_t units,
           const std::vector<std::pair<Tensor, Tensor>>& batches) {
  std::unique_ptr<Metric> metric = make_metric(name, loss, units);
  for (const auto& [y_true, y_pred] : batches) metric->update(y_true, y_pred);
  return metric->result();
}

double run(const std::string& name, const std::string& loss, int64_t units, const Tensor& y_true,
           const Tensor& y_pred) {
  return run(name, loss, units, {{y_true, y_pred}});
}

Tensor rows(const Tensor& t, int64_t begin, int64_t end) { return slice(t, 0, begin, end); }

// Binary example: predictions > 0.5 are [1, 1, 0, 1, 0, 1], so TP = 2 (samples 0, 3),
// FP = 2 (1, 5), FN = 1 (2): precision 2/4, recall 2/3, F1 = 2TP / (2TP + FP + FN) = 4/7.
const Tensor kBinaryTrue = Tensor::of({1, 0, 1, 1, 0, 0});
const Tensor kBinaryProb = Tensor::of({0.9, 0.8, 0.4, 0.7, 0.2, 0.6});

// Three classes; argmax predictions are [0, 1, 1, 1, 2, 0, 2].
//   class 0: TP 1, FP 1 (sample 5), FN 1 (sample 1) -> P 1/2, R 1/2, F1 1/2
//   class 1: TP 2, FP 1 (sample 1), FN 0             -> P 2/3, R 1,   F1 4/5
//   class 2: TP 2, FP 0,            FN 1 (sample 5)  -> P 1,   R 2/3, F1 4/5
// macro P = (1/2 + 2/3 + 1) / 3 = 13/18, macro R = 13/18, macro F1 = (1/2 + 4/5 + 4/5) / 3 = 7/10.
const Tensor kThreeTrue = Tensor::of({0, 0, 1, 1, 2, 2, 2});
const Tensor kThreeScores = Tensor::of({{0.8, 0.1, 0.1},
                                        {0.2, 0.7, 0.1},
                                        {0.1, 0.6, 0.3},
                                        {0.3, 0.4, 0.3},
                                        {0.1, 0.2, 0.7},
                                        {0.5, 0.2, 0.3},
                                        {0.2, 0.3, 0.5}});
const Tensor kThreeOneHot =
    Tensor::of({{1, 0, 0}, {1, 0, 0}, {0, 1, 0}, {0, 1, 0}, {0, 0, 1}, {0, 0, 1}, {0, 0, 1}});
}  // namespace

TEST(MetricsTopK, SparseCountsTiesAtTheBoundaryAsHits) {
  // Classes scoring strictly above the true class: 1, 3, 0 (all tied), 2 (0.5 and 0.3; class 3
  // ties with the true class at 0.1).
  const Tensor y_pred = Tensor::of(
      {{0.1, 0.2, 0.3, 0.4}, {0.4, 0.3, 0.2, 0.1}, {0.25, 0.25, 0.25, 0.25}, {0.5, 0.1, 0.3, 0.1}});
  const Tensor y_true = Tensor::of({2, 3, 0, 1});
  const std::string loss = "sparse_categorical_crossentropy";
  EXPECT_DOUBLE_EQ(run("top_1_accuracy", loss, 4, y_true, y_pred), 1.0 / 4);  // only the tie
  EXPECT_DOUBLE_EQ(run("top_2_accuracy", loss, 4, y_true, y_pred), 2.0 / 4);
  EXPECT_DOUBLE_EQ(run("top_3_accuracy", loss, 4, y_true, y_pred), 3.0 / 4);
  EXPECT_DOUBLE_EQ(run("sparse_top_k_categorical_accuracy", "mse", 4, y_true, y_pred), 1.0);
  // Streaming: the two halves give the same as the whole.
  EXPECT_DOUBLE_EQ(
      run("sparse_top_2_categorical_accuracy", "mse", 4,
          {{rows(y_true, 0, 1), rows(y_pred, 0, 1)}, {rows(y_true, 1, 4), rows(y_pred, 1, 4)}}),
      2.0 / 4);
}

TEST(MetricsTopK, CategoricalUsesOneHotAndDefaultKIsFive) {
  // Six classes; the true class is ranked 1st, 5th and 6th.
  const Tensor y_pred = Tensor::of({{0.9, 0.1, 0.0, 0.0, 0.0, 0.0},
                                    {0.1, 0.2, 0.3, 0.4, 0.5, 0.6},
                                    {0.1, 0.2, 0.3, 0.4, 0.5, 0.6}});
  const Tensor y_true = Tensor::of({{1, 0, 0, 0, 0, 0}, {0, 1, 0, 0, 0, 0}, {1, 0, 0, 0, 0, 0}});
  EXPECT_DOUBLE_EQ(run("top_k_categorical_accuracy", "categorical_crossentropy", 6, y_true, y_pred),
                   2.0 / 3);
  // "top_2_accuracy" with a categorical loss reads one-hot y_true; labels are refused.
  EXPECT_DOUBLE_EQ(run("top_2_accuracy", "categorical_crossentropy", 6, y_true, y_pred), 1.0 / 3);
  EXPECT_THROW(run("top_2_accuracy", "categorical_crossentropy", 6, Tensor::of({0, 1, 0}), y_pred),
               ShapeError);
  EXPECT_THROW(make_metric("top_0_accuracy", "mse", 3), ValueError);
}

TEST(MetricsBinary, PrecisionRecallF1ByHand) {
  const std::string loss = "binary_crossentropy";
  EXPECT_DOUBLE_EQ(run("precision", loss, 1, kBinaryTrue, kBinaryProb), 0.5);
  EXPECT_DOUBLE_EQ(run("recall", loss, 1, kBinaryTrue, kBinaryProb), 2.0 / 3);
  EXPECT_DOUBLE_EQ(run("f1", loss, 1, kBinaryTrue, kBinaryProb), 4.0 / 7);
  // A (N, 1) sigmoid output and an mse loss with one unit are binary too.
  EXPECT_DOUBLE_EQ(run("f1", "mse", 1, kBinaryTrue, reshape(kBinaryProb, {6, 1})), 4.0 / 7);
  EXPECT_DOUBLE_EQ(run("binary_recall", "mse", 0, kBinaryTrue, kBinaryProb), 2.0 / 3);
}

TEST(MetricsBinary, StreamingOverTwoBatchesEqualsOneBatch) {
  for (const std::string name : {"precision", "recall", "f1"}) {
    const double whole = run(name, "binary_crossentropy", 1, kBinaryTrue, kBinaryProb);
    // Uneven halves: a mean of per-batch ratios would differ (batch 1 alone has precision 1/2,
    // recall 1/2; batch 2 has 1/2 and 1).
    const double split = run(name, "binary_crossentropy", 1,
                             {{rows(kBinaryTrue, 0, 3), rows(kBinaryProb, 0, 3)},
                              {rows(kBinaryTrue, 3, 6), rows(kBinaryProb, 3, 6)}});
    EXPECT_DOUBLE_EQ(split, whole) << name;
  }
}

TEST(MetricsBinary, ZeroDenominatorsGiveZeroAndResetForgets) {
  const Tensor y_true = Tensor::of({1, 0, 1});
  const Tensor nothing_predicted = Tensor::of({0.1, 0.2, 0.3});
  EXPECT_EQ(run("precision", "binary_crossentropy", 1, y_true, nothing_predicted), 0.0);
  EXPECT_EQ(run("f1", "binary_crossentropy", 1, y_true, nothing_predicted), 0.0);
  EXPECT_EQ(run("recall", "binary_crossentropy", 1, Tensor::of({0, 0}), Tensor::of({0.9, 0.1})),
            0.0);
  auto metric = make_metric("precision", "binary_crossentropy", 1);
  EXPECT_EQ(metric->result(), 0.0);  // before any update
  metric->update(kBinaryTrue, kBinaryProb);
  metric->reset();
  metric->update(y_true, Tensor::of({0.9, 0.1, 0.9}));
  EXPECT_EQ(metric->result(), 1.0);
}

TEST(MetricsMacro, ThreeClassesByHand) {
  const std::string loss = "sparse_categorical_crossentropy";
  EXPECT_DOUBLE_EQ(run("macro_precision", loss, 3, kThreeTrue, kThreeScores), 13.0 / 18);
  EXPECT_DOUBLE_EQ(run("macro_recall", loss, 3, kThreeTrue, kThreeScores), 13.0 / 18);
  EXPECT_DOUBLE_EQ(run("macro_f1", loss, 3, kThreeTrue, kThreeScores), 0.7);
  // Without a binary loss or a single unit the plain names are the macro versions.
  EXPECT_DOUBLE_EQ(run("f1", loss, 3, kThreeTrue, kThreeScores), 0.7);
  EXPECT_DOUBLE_EQ(run("precision", loss, 0, kThreeTrue, kThreeScores), 13.0 / 18);
  // One-hot y_true gives the same.
  EXPECT_DOUBLE_EQ(run("f1", "categorical_crossentropy", 3, kThreeOneHot, kThreeScores), 0.7);
}

TEST(MetricsMacro, StreamingOverTwoBatchesEqualsOneBatch) {
  const double split = run("macro_f1", "", 3,
                           {{rows(kThreeTrue, 0, 2), rows(kThreeScores, 0, 2)},
                            {rows(kThreeTrue, 2, 7), rows(kThreeScores, 2, 7)}});
  EXPECT_DOUBLE_EQ(split, 0.7);
}

TEST(MetricsMacro, BadLabelsAndShapesAreNamed) {
  auto metric = make_metric("macro_f1", "", 3);
  try {
    metric->update(Tensor::of({0, 3}), rows(kThreeScores, 0, 2));
    FAIL() << "label 3 of 3 classes accepted";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("label 3"), std::string::npos) << e.what();
  }
  EXPECT_THROW(metric->update(Tensor::of({0, 1, 2}), rows(kThreeScores, 0, 2)), ShapeError);
  metric->update(rows(kThreeTrue, 0, 2), rows(kThreeScores, 0, 2));
  // The class count may not change between batches.
  EXPECT_THROW(metric->update(Tensor::of({0}), Tensor::of({{0.5, 0.5}})), ShapeError);
}

TEST(MetricsAuc, PerfectInvertedAndUninformative) {
  const Tensor labels = Tensor::of({0, 0, 1, 1});
  EXPECT_DOUBLE_EQ(run("auc", "binary_crossentropy", 1, labels, Tensor::of({0.1, 0.2, 0.8, 0.9})),
                   1.0);
  EXPECT_DOUBLE_EQ(run("auc", "binary_crossentropy", 1, labels, Tensor::of({0.9, 0.8, 0.2, 0.1})),
                   0.0);
  // All scores tied: every pair counts half.
  EXPECT_DOUBLE_EQ(run("auc", "binary_crossentropy", 1, labels, Tensor::of({0.5, 0.5, 0.5, 0.5})),
                   0.5);
}

TEST(MetricsAuc, TiesCountHalf) {
  // Ranks 1, 2.5, 2.5, 4; positives' rank sum 6.5; U = 6.5 - 2*3/2 = 3.5 of 2*2 pairs = 0.875.
  // By pairs: 0.4 beats 0.1 and ties 0.4 (1.5), 0.8 beats both (2).
  const Tensor labels = Tensor::of({0, 0, 1, 1});
  const Tensor scores = Tensor::of({0.1, 0.4, 0.4, 0.8});
  EXPECT_DOUBLE_EQ(run("auc", "binary_crossentropy", 1, labels, scores), 0.875);
  // (N, 1) scores and streaming over two batches give the same.
  EXPECT_DOUBLE_EQ(run("auc", "binary_crossentropy", 1,
                       {{rows(labels, 0, 3), reshape(rows(scores, 0, 3), {3, 1})},
                        {rows(labels, 3, 4), reshape(rows(scores, 3, 4), {1, 1})}}),
                   0.875);
}

TEST(MetricsAuc, OneClassOnlyGivesZero) {
  EXPECT_EQ(run("auc", "binary_crossentropy", 1, Tensor::of({1, 1}), Tensor::of({0.2, 0.7})), 0.0);
}

TEST(MetricsAuc, MulticlassMacroOneVsRest) {
  // Class 0 column [.5 .4 .2 .3], positives .5 .3: pairs (.5>.4, .5>.2, .3<.4, .3>.2) -> 3/4.
  // Class 1 column [.3 .4 .5 .3], positive .4 against .3 .5 .3 -> 2/3.
  // Class 2 column [.2 .2 .3 .4], positive .3 against .2 .2 .4 -> 2/3. Mean: 25/36.
  const Tensor y_pred =
      Tensor::of({{0.5, 0.3, 0.2}, {0.4, 0.4, 0.2}, {0.2, 0.5, 0.3}, {0.3, 0.3, 0.4}});
  const Tensor labels = Tensor::of({0, 1, 2, 0});
  const Tensor one_hot = Tensor::of({{1, 0, 0}, {0, 1, 0}, {0, 0, 1}, {1, 0, 0}});
  EXPECT_DOUBLE_EQ(run("auc", "sparse_categorical_crossentropy", 3, labels, y_pred), 25.0 / 36);
  EXPECT_DOUBLE_EQ(run("auc", "categorical_crossentropy", 3, one_hot, y_pred), 25.0 / 36);
}

TEST(MetricsNames, UnknownNameListsKnownOnesAndNamesAreKept) {
  try {
    make_metric("nope", "mse", 1);
    FAIL() << "unknown metric accepted";
  } catch (const ValueError& e) {
    const std::string message = e.what();
    for (const char* known :
         {"'nope'", "accuracy", "top_k_categorical_accuracy", "precision", "macro_f1", "auc"}) {
      EXPECT_NE(message.find(known), std::string::npos) << known << " missing from: " << message;
    }
  }
  EXPECT_THROW(make_metric("top_x_accuracy", "mse", 3), ValueError);
  for (const std::string name : {"acc", "f1", "auc", "top_3_accuracy", "macro_recall"}) {
    EXPECT_EQ(make_metric(name, "binary_crossentropy", 1)->name(), name);
  }
}

TEST(MetricsSequential, FitAndEvaluateReportMetricsUnderTheirNames) {
  manual_seed(7);
  const Tensor x = Tensor::normal({20, 2});
  const Tensor y = Tensor::of({0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1});
  Sequential model({nn::Dense(3, "softmax", {.input_shape = {2}})});
  model.compile("adam", "sparse_categorical_crossentropy", {"f1", "auc", "top_2_accuracy"});
  const History history = model.fit(x, y, {.epochs = 2, .batch_size = 8, .verbose = 0});
  EXPECT_EQ(history.history.at("auc").size(), 2u);
  const Scores scores = model.evaluate(x, y, {.batch_size = 7, .verbose = 0});
  // Batched evaluation equals the metrics of the whole prediction at once.
  const Tensor y_pred = model.predict(x);
  for (const std::string name : {"f1", "auc", "top_2_accuracy"}) {
    EXPECT_NEAR(scores[name], run(name, "sparse_categorical_crossentropy", 3, y, y_pred), 1e-12)
        << name;
  }
}

// Snippet for the constants below (scikit-learn 1.2.1):
//   from sklearn.metrics import classification_report, confusion_matrix
//   y_true = [0, 0, 1, 1, 2, 2, 2, 1, 0, 2]
//   y_pred = [0, 1, 1, 1, 2, 0, 2, 2, 0, 1]
//   confusion_matrix(y_true, y_pred).tolist()
//   classification_report(y_true, y_pred, target_names=['cat', 'dog', 'bird'])
//   classification_report(y_true, y_pred, target_names=['cat', 'dog', 'bird'], output_dict=True)
namespace {
const Tensor kReportTrue = Tensor::of({0, 0, 1, 1, 2, 2, 2, 1, 0, 2});
// Scores whose argmax is [0, 1, 1, 1, 2, 0, 2, 2, 0, 1].
const Tensor kReportScores = Tensor::of({{0.7, 0.2, 0.1},
                                         {0.3, 0.6, 0.1},
                                         {0.1, 0.8, 0.1},
                                         {0.2, 0.5, 0.3},
                                         {0.1, 0.1, 0.8},
                                         {0.5, 0.2, 0.3},
                                         {0.3, 0.3, 0.4},
                                         {0.2, 0.3, 0.5},
                                         {0.9, 0.0, 0.1},
                                         {0.1, 0.6, 0.3}});
}  // namespace

TEST(ReportConfusion, MatchesScikitLearn) {
  const ConfusionMatrix expected = {{2, 1, 0}, {0, 2, 1}, {1, 1, 2}};
  EXPECT_EQ(confusion_matrix(kReportTrue, kReportScores, 3), expected);
  // Predicted labels instead of scores, and one-hot y_true, give the same.
  const Tensor predicted = Tensor::of({0, 1, 1, 1, 2, 0, 2, 2, 0, 1});
  EXPECT_EQ(confusion_matrix(kReportTrue, predicted, 3), expected);
  const Tensor one_hot = Tensor::of({{1, 0, 0},
                                     {1, 0, 0},
                                     {0, 1, 0},
                                     {0, 1, 0},
                                     {0, 0, 1},
                                     {0, 0, 1},
                                     {0, 0, 1},
                                     {0, 1, 0},
                                     {1, 0, 0},
                                     {0, 0, 1}});
  EXPECT_EQ(confusion_matrix(one_hot, kReportScores, 3), expected);
}

TEST(ReportConfusion, ErrorsNameSizesAndLabels) {
  try {
    confusion_matrix(Tensor::of({0, 1}), kReportScores, 3);
    FAIL() << "2 labels for 10 predictions accepted";
  } catch (const ShapeError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("(2,)"), std::string::npos) << message;
    EXPECT_NE(message.find("10"), std::string::npos) << message;
  }
  try {
    confusion_matrix(Tensor::of({0, 7}), rows(kReportScores, 0, 2), 3);
    FAIL() << "label 7 accepted";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("label 7"), std::string::npos) << e.what();
  }
  EXPECT_THROW(confusion_matrix(Tensor::of({0, 0.5}), rows(kReportScores, 0, 2), 3), ValueError);
  EXPECT_THROW(confusion_matrix(kReportTrue, kReportScores, 4), ShapeError);
  EXPECT_THROW(classification_report(kReportTrue, kReportScores, {"a", "b"}), ValueError);
}

TEST(ReportClassification, MatchesScikitLearn) {
  const Report report = classification_report(kReportTrue, kReportScores, {"cat", "dog", "bird"});
  ASSERT_EQ(report.classes.size(), 3u);
  // output_dict=True: cat 0.667 0.667 0.667 (3), dog 0.5 0.667 0.5714285714285715 (3),
  // bird 0.667 0.5 0.5714285714285715 (4).
  const std::vector<ClassReport> expected = {{"cat", 2.0 / 3, 2.0 / 3, 2.0 / 3, 3},
                                             {"dog", 0.5, 2.0 / 3, 0.5714285714285715, 3},
                                             {"bird", 2.0 / 3, 0.5, 0.5714285714285715, 4}};
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(report.classes[i].name, expected[i].name);
    EXPECT_NEAR(report.classes[i].precision, expected[i].precision, 1e-12) << i;
    EXPECT_NEAR(report.classes[i].recall, expected[i].recall, 1e-12) << i;
    EXPECT_NEAR(report.classes[i].f1, expected[i].f1, 1e-12) << i;
    EXPECT_EQ(report.classes[i].support, expected[i].support) << i;
  }
  EXPECT_NEAR(report.accuracy, 0.6, 1e-12);
  // 'macro avg': 0.611111111111111 0.611111111111111 0.6031746031746033 (10);
  // 'weighted avg': 0.6166666666666666 0.6 0.6 (10).
  EXPECT_NEAR(report.macro_avg.precision, 0.611111111111111, 1e-12);
  EXPECT_NEAR(report.macro_avg.recall, 0.611111111111111, 1e-12);
  EXPECT_NEAR(report.macro_avg.f1, 0.6031746031746033, 1e-12);
  EXPECT_EQ(report.macro_avg.support, 10);
  EXPECT_NEAR(report.weighted_avg.precision, 0.6166666666666666, 1e-12);
  EXPECT_NEAR(report.weighted_avg.recall, 0.6, 1e-12);
  EXPECT_NEAR(report.weighted_avg.f1, 0.6, 1e-12);
  EXPECT_EQ(report.weighted_avg.support, 10);
  EXPECT_EQ(report.confusion, (ConfusionMatrix{{2, 1, 0}, {0, 2, 1}, {1, 1, 2}}));
}

TEST(ReportClassification, FormatIsScikitLearnsText) {
  const Report report = classification_report(kReportTrue, kReportScores, {"cat", "dog", "bird"});
  // repr() of classification_report(..., target_names=['cat', 'dog', 'bird']).
  const std::string expected =
      "              precision    recall  f1-score   support\n\n"
      "         cat       0.67      0.67      0.67         3\n"
      "         dog       0.50      0.67      0.57         3\n"
      "        bird       0.67      0.50      0.57         4\n\n"
      "    accuracy                           0.60        10\n"
      "   macro avg       0.61      0.61      0.60        10\n"
      "weighted avg       0.62      0.60      0.60        10\n";
  const std::string text = format_report(report);
  EXPECT_EQ(text, expected);
  for (const char* part : {"cat", "dog", "bird", "weighted avg"}) {
    EXPECT_NE(text.find(part), std::string::npos) << part;
  }
}

TEST(ReportClassification, BinaryProbabilitiesMatchScikitLearn) {
  // repr(classification_report([1, 0, 1, 1, 0, 0], [1, 1, 0, 1, 0, 1])), the predictions being
  // kBinaryProb > 0.5.
  const std::string expected =
      "              precision    recall  f1-score   support\n\n"
      "           0       0.50      0.33      0.40         3\n"
      "           1       0.50      0.67      0.57         3\n\n"
      "    accuracy                           0.50         6\n"
      "   macro avg       0.50      0.50      0.49         6\n"
      "weighted avg       0.50      0.50      0.49         6\n";
  EXPECT_EQ(format_report(classification_report(kBinaryTrue, kBinaryProb)), expected);
  EXPECT_EQ(format_report(classification_report(kBinaryTrue, reshape(kBinaryProb, {6, 1}))),
            expected);
}

TEST(ReportClassification, JsonHoldsEveryField) {
  const Report report = classification_report(kReportTrue, kReportScores, {"cat", "dog", "bird"});
  const std::string json = report_json(report);
  for (const char* part :
       {"\"classes\"", "\"name\":\"bird\"", "\"accuracy\":0.6", "\"macro_avg\"", "\"weighted_avg\"",
        "\"support\":10", "\"confusion\":[[2,1,0],[0,2,1],[1,1,2]]"}) {
    EXPECT_NE(json.find(part), std::string::npos) << part << " missing from " << json;
  }
}

TEST(ReportClassification, ClassWithoutSamplesScoresZero) {
  // Class 2 is neither present nor predicted: precision, recall and F1 are 0 (zero_division=0),
  // and it still counts in the macro average.
  const Report report =
      classification_report(Tensor::of({0, 1}), Tensor::of({{0.9, 0.1, 0.0}, {0.1, 0.9, 0.0}}));
  EXPECT_EQ(report.classes[2].precision, 0.0);
  EXPECT_EQ(report.classes[2].f1, 0.0);
  EXPECT_EQ(report.classes[2].support, 0);
  EXPECT_DOUBLE_EQ(report.macro_avg.f1, 2.0 / 3);
  EXPECT_EQ(report.weighted_avg.f1, 1.0);
  EXPECT_EQ(report.accuracy, 1.0);
}
