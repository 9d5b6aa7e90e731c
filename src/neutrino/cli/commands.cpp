#include "neutrino/cli/commands.h"

#include <algorithm>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "neutrino/autograd/autograd.h"
#include "neutrino/cli/config.h"
#include "neutrino/cli/lm_config.h"
#include "neutrino/core/precision.h"
#include "neutrino/core/random.h"
#include "neutrino/data/csv.h"
#include "neutrino/data/datasets.h"
#include "neutrino/data/idx.h"
#include "neutrino/data/image.h"
#include "neutrino/data/npy.h"
#include "neutrino/data/pipeline.h"
#include "neutrino/data/text_datasets.h"
#include "neutrino/data/tokenizer.h"
#include "neutrino/io/config_reader.h"
#include "neutrino/io/file_io.h"
#include "neutrino/nn/gpt_backbone.h"
#include "neutrino/ops/ops.h"
#include "neutrino/train/language_model.h"
#include "neutrino/train/model_file.h"
#include "neutrino/train/profile.h"
#include "neutrino/train/report.h"

namespace neutrino::cli {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

int64_t count_classes(const data::Dataset& d) {
  if (!d.class_names.empty()) return static_cast<int64_t>(d.class_names.size());
  if (!d.y.defined() || d.y.dtype() != DType::kInt64 || d.y.numel() == 0) return 0;
  const auto labels = d.y.to_vector<int64_t>();
  return *std::max_element(labels.begin(), labels.end()) + 1;
}

// Reshapes samples to the model's per-sample input shape when only the layout differs (for
// example flat 784-vectors for a (1, 28, 28) input), and refuses real mismatches.
// The one per-sample input shape of a model the CLI can feed (it reads one x per sample).
Shape cli_input_shape(const train::Model& model, const std::string& what) {
  const std::vector<Shape> shapes = model.input_shapes();
  NEUTRINO_CHECK_VALUE(shapes.size() == 1, "{}: the model takes {} inputs; the command line feeds "
                       "models with one input", what, shapes.size());
  return shapes.front();
}

Tensor fit_to_model(const Tensor& x, const train::Model& model, const std::string& what) {
  const Shape want = cli_input_shape(model, what);
  const Shape have(x.shape().begin() + 1, x.shape().end());
  if (have == want) return x;
  NEUTRINO_CHECK_SHAPE(shape_numel(have) == shape_numel(want),
                       "{}: samples of shape {} do not fit the model's input shape {}", what,
                       shape_str(have), shape_str(want));
  Shape full = want;
  full.insert(full.begin(), x.size(0));
  return reshape(x, full);
}

// The preprocessing applied to samples from `what` (a file or data spec), whose name its errors
// carry ("x.npy: standardize: fitted on samples of shape ...").
Tensor preprocess_x(const data::Pipeline& pre, const Tensor& x, const std::string& what) {
  try {
    return pre.apply_x(x);
  } catch (const ShapeError& e) {
    throw ShapeError(fmt::format("{}: {}", what, e.what()));
  } catch (const ValueError& e) {
    throw ValueError(fmt::format("{}: {}", what, e.what()));
  }
}

// A dataset's samples as the model's input: text through the tokenize step, everything else
// through the numeric steps. `what` names the data in errors.
Tensor features_of(const data::Pipeline& pre, const data::Dataset& d, const std::string& what) {
  if (pre.takes_text()) {
    NEUTRINO_CHECK_VALUE(!d.texts.empty(), "{}: the model takes text (its preprocessing starts "
                         "with a tokenize step), but the data is not text", what);
    return pre.apply_text(d.texts, what);
  }
  NEUTRINO_CHECK_VALUE(d.texts.empty(), "{}: the data is text, but the preprocessing has no "
                       "tokenize step (add `- tokenize: {{kind: char, max_length: 128}}` first in "
                       "data.preprocess)", what);
  return preprocess_x(pre, d.x, what);
}

// An Embedding that reads token ids must have a row for every id the tokenizer makes.
void check_vocabulary_fits(const train::Model& model, const data::Pipeline& pre,
                           const std::string& what) {
  if (pre.tokenizer() == nullptr) return;
  const int64_t vocab = pre.tokenizer()->vocab_size();
  for (const nn::LayerPtr& layer : model.layers()) {
    if (const auto* g = dynamic_cast<const nn::GPTBackbone*>(layer.get())) {
      NEUTRINO_CHECK_VALUE(g->gpt_options().vocab_size >= vocab, "{}: GPTBackbone '{}' has a "
                           "vocabulary of {}, but the tokenizer has {} ids (tokenize: from_model "
                           "reuses the language model's tokenizer)", what, g->name(),
                           g->gpt_options().vocab_size, vocab);
      return;
    }
    const auto* e = dynamic_cast<const nn::Embedding*>(layer.get());
    if (e == nullptr) continue;
    NEUTRINO_CHECK_VALUE(e->input_dim() >= vocab, "{}: Embedding '{}' has input_dim {}, but the "
                         "tokenizer has {} ids: set input_dim to at least {}", what, e->name(),
                         e->input_dim(), vocab, vocab);
    return;  // the first Embedding reads the ids
  }
}

// fit.class_weight as FitOptions wants it: "balanced" from the training labels.
std::vector<double> class_weights(const Experiment& ex, const Tensor& y, int64_t classes,
                                  const std::string& config) {
  if (ex.class_weight_mode != "balanced") return ex.class_weight;
  NEUTRINO_CHECK_VALUE(y.dtype() == DType::kInt64 && classes > 0, "{}: fit.class_weight: "
                       "balanced needs class labels", config);
  std::vector<double> counts(static_cast<size_t>(classes), 0);
  for (int64_t label : y.to_vector<int64_t>()) {
    NEUTRINO_CHECK_VALUE(label >= 0 && label < classes, "{}: fit.class_weight: balanced needs "
                         "labels in [0, {}), got {}", config, classes, label);
    counts[static_cast<size_t>(label)] += 1;
  }
  std::vector<double> weights;
  for (double c : counts) {
    weights.push_back(c > 0 ? static_cast<double>(y.numel()) / (static_cast<double>(classes) * c) : 0);
  }
  return weights;
}

// Compiles a loaded model for evaluation with the loss and metrics it was trained with.
void compile_for_eval(train::Model& model, const train::ModelInfo& info, const std::string& source) {
  auto it = info.extra.find("compile");
  NEUTRINO_CHECK_IO(it != info.extra.end(), "{}: the model file does not say which loss it was trained with",
                    source);
  const std::string where = source + ": compile";
  try {
    io::ConfigReader c(io::parse_json(it->second, where), where);
    const nn::Loss loss = make_loss_from(c.require_raw("loss").dump(), c.path_of("loss"));
    const std::vector<std::string> metrics = c.get_strings("metrics", {});
    c.finish();
    for (size_t i = 0; i < metrics.size(); ++i) {
      try {
        train::make_metric(metrics[i], loss.name(), 0);
      } catch (const ValueError& e) {
        throw ValueError(fmt::format("{}.metrics[{}]: {}", where, i, e.what()));
      }
    }
    model.compile(nullptr, loss, metrics);  // evaluation needs no optimizer
  } catch (const ValueError& e) {
    throw IOError(e.what());
  }
}

json scores_json(const train::Scores& scores, int64_t samples) {
  json out = json::object();
  for (size_t i = 0; i < scores.names().size(); ++i) out[scores.names()[i]] = scores[i];
  out["samples"] = samples;
  return out;
}

void print_scores(const train::Scores& scores, int64_t samples, bool as_json, const std::string& label) {
  if (as_json) {
    fmt::print("{}\n", scores_json(scores, samples).dump());
    return;
  }
  std::string line = label;
  for (size_t i = 0; i < scores.names().size(); ++i) {
    line += fmt::format("{}{}: {:.4f}", i == 0 ? "" : " - ", scores.names()[i], scores[i]);
  }
  fmt::print("{} ({} samples)\n", line, samples);
}

// --mixed-precision, when given, replaces the config's or the model file's policy.
void apply_mixed_precision(train::Model& model, const std::string& flag) {
  if (!flag.empty()) model.set_mixed_precision(parse_precision(flag));
}

std::string default_output(const std::string& config) {
  return fs::path(config).stem().string() + ".safetensors";
}

std::string ends_with_any(const std::string& path, std::initializer_list<const char*> suffixes) {
  for (const char* s : suffixes) {
    if (path.ends_with(s)) return s;
  }
  return "";
}
}  // namespace

int run_train(const TrainArgs& args) {
  if (is_language_model_config(args.config)) return run_train_language_model(args);
  NEUTRINO_CHECK_VALUE(!args.max_steps, "--max-steps: {} trains by epochs (fit.epochs); "
                       "--max-steps is for language-model configs", args.config);
  NEUTRINO_CHECK_VALUE(!args.merge, "--merge: {} has no lora section (--merge folds LoRA adapters "
                       "into a language model)", args.config);
  Experiment ex = load_experiment(args.config);
  if (args.epochs) ex.epochs = *args.epochs;
  if (args.seed) ex.seed = *args.seed;
  if (args.verbose) ex.verbose = *args.verbose;
  if (!args.mixed_precision.empty()) ex.mixed_precision = parse_precision(args.mixed_precision);
  const std::string output = args.output.empty() ? default_output(args.config) : args.output;
  const std::string checkpoint = !args.checkpoint.empty()
                                     ? args.checkpoint
                                     : (fs::path(output).parent_path() /
                                        (fs::path(output).stem().string() + ".ckpt.safetensors"))
                                           .string();
  // Before the data and the epochs: an unwritable -o must not be found only at the end.
  io::check_can_write(output);
  io::check_can_write(checkpoint);
  manual_seed(ex.seed);

  data::Dataset train_set = data::load_dataset_config(ex.train_data, args.config + ": data.train");
  NEUTRINO_CHECK_VALUE(train_set.y.defined(), "{}: data.train has no labels", args.config);
  data::Pipeline pre = ex.preprocess;
  if (pre.takes_text() && !train_set.texts.empty()) {
    pre.fit_text(train_set.texts);
  } else if (train_set.x.defined()) {
    pre.fit(train_set.x);
  }
  const int64_t classes = count_classes(train_set);
  train::Model model = train::model_from_json(ex.model, args.config + ": model");
  Tensor x = features_of(pre, train_set, args.config + ": data.train");
  check_vocabulary_fits(model, pre, args.config + ": model");
  if (!model.built()) model.build(Shape(x.shape().begin() + 1, x.shape().end()));
  x = fit_to_model(x, model, args.config + ": data.train");
  const Tensor y = pre.apply_y(train_set.y, classes);
  model.compile(ex.optimizer, ex.loss, ex.metrics);
  model.set_mixed_precision(ex.mixed_precision);
  const train::ModelInfo info{.preprocessing = pre.to_saved(),
                              .class_names = train_set.class_names,
                              .extra = {{"compile", compile_json(ex)}, {"trained_on", train_set.source}}};

  train::FitOptions fit{.epochs = ex.epochs,
                        .batch_size = ex.batch_size,
                        .shuffle = ex.shuffle,
                        .bucket_by_length = ex.bucket_by_length,
                        .class_weight = class_weights(ex, train_set.y, classes, args.config),
                        .validation_split = ex.validation_split,
                        .verbose = ex.verbose,
                        .callbacks = ex.callbacks,
                        .seed = ex.seed,
                        .augment = pre.augmenter(),
                        .model_info = info};
  if (!ex.validation_data.empty()) {
    const data::Dataset v = data::load_dataset_config(ex.validation_data, args.config + ": data.validation");
    fit.validation_data = std::make_pair(fit_to_model(features_of(pre, v, args.config + ": data.validation"), model,
                                                      args.config + ": data.validation"),
                                         pre.apply_y(v.y, classes));
    fit.validation_split = 0;
  }
  fit.checkpoint_path = checkpoint;
  fit.resume_from = args.resume;
  NEUTRINO_CHECK_VALUE(args.profile_steps >= 0, "--profile-steps must be >= 0, got {}",
                       args.profile_steps);
  const bool profiling = args.profile || args.profile_steps > 0;
  train::Profile profile{.max_steps = args.profile_steps};
  if (profiling) fit.profile = &profile;
  const train::History history = model.fit(x, y, fit);
  if (history.stopped_on_nan) {
    fmt::print(stderr, "neutrino train: stopped on a NaN loss; no model written (the last good "
                       "checkpoint is {})\n", fit.checkpoint_path);
    return 3;
  }
  train::save_model(output, model, info);
  if (!args.json) fmt::print("saved {}\n", output);
  // --profile-steps cuts training short: the model is saved, but testing it would only add time.
  json results = json::object();
  if (!ex.test_data.empty() && args.profile_steps == 0) {
    const data::Dataset test = data::load_dataset_config(ex.test_data, args.config + ": data.test");
    const Tensor xt = fit_to_model(features_of(pre, test, args.config + ": data.test"), model,
                                   args.config + ": data.test");
    const train::Scores scores = model.evaluate(xt, pre.apply_y(test.y, classes),
                                                {.batch_size = 256, .verbose = 0});
    if (args.json && profiling) {
      results = scores_json(scores, xt.size(0));
    } else {
      print_scores(scores, xt.size(0), args.json, "test: ");
    }
  }
  if (profiling) {
    if (args.json) {
      // One JSON object still: the test results, if any, with the profile beside them.
      results["profile"] = json::parse(train::profile_json(profile));
      fmt::print("{}\n", results.dump());
    } else {
      fmt::print("\n{}", train::format_profile(profile));
    }
  }
  return 0;
}

int run_eval(const EvalArgs& args) {
  auto [model, info] = train::load_model(args.model);
  apply_mixed_precision(model, args.mixed_precision);
  compile_for_eval(model, info, args.model);
  const data::Pipeline pre = data::Pipeline::from_saved(info.preprocessing, args.model);
  const data::Dataset d = data::load_dataset_config(data_spec_json(args.data, "--data"), "--data");
  NEUTRINO_CHECK_VALUE(d.y.defined(), "{}: the data has no labels to evaluate against", args.data);
  const Tensor x = fit_to_model(features_of(pre, d, args.data), model, args.data);
  const int64_t classes = info.class_names.empty() ? count_classes(d)
                                                   : static_cast<int64_t>(info.class_names.size());
  const Tensor y = pre.apply_y(d.y, classes);
  const train::Scores scores = model.evaluate(x, y, {.batch_size = args.batch_size, .verbose = 0});
  // Class labels: --json gives the macro-averaged F1 beside the scores, the figure to compare
  // classifiers by when the classes are unbalanced.
  const bool classifier = d.y.dtype() == DType::kInt64;
  if (!args.report && !(args.json && classifier)) {
    print_scores(scores, x.size(0), args.json, "");
    return 0;
  }
  const train::Report report =
      train::classification_report(d.y, model.predict(x, args.batch_size), info.class_names);
  if (args.json) {
    json out = args.report ? json::parse(train::report_json(report))
                           : scores_json(scores, x.size(0));
    for (size_t i = 0; i < scores.names().size(); ++i) out[scores.names()[i]] = scores[i];
    out["macro_f1"] = report.macro_avg.f1;
    fmt::print("{}\n", out.dump());
  } else {
    print_scores(scores, x.size(0), false, "");
    fmt::print("\n{}", train::format_report(report));
  }
  return 0;
}

namespace {
// An image must be the size and channel count the model takes (see data/image.h for the two
// conversions); a model taking flat vectors gets the image flattened, and is told so.
Tensor load_image_input(const std::string& path, const train::Model& model) {
  const Shape want = cli_input_shape(model, path);
  data::ImageRequest request;
  if (want.size() == 3 || want.size() == 2) {
    const int64_t channels = want.size() == 3 ? want[0] : 1;
    NEUTRINO_CHECK_IO(channels >= 1 && channels <= 4,
                      "{}: the model takes {} channels, an image has 1 to 4", path, channels);
    request.channels = static_cast<int>(channels);
    request.height = want[want.size() - 2];
    request.width = want[want.size() - 1];
  }
  data::Image image = data::load_image(path, request);
  const Shape& got = image.pixels.shape();
  if (want.size() == 1 && shape_numel(want) == image.pixels.numel()) {
    image.notes.push_back(fmt::format(
        "{}: the {}x{} image with {} channel(s) is flattened (channel, row, column) into the "
        "model's {} inputs", path, got[3], got[2], got[1], want[0]));
  }
  for (const std::string& note : image.notes) fmt::print(stderr, "note: {}\n", note);
  return image.pixels;
}

Tensor load_inputs(const PredictArgs& args, const train::Model& model) {
  const std::string& path = args.input;
  NEUTRINO_CHECK_IO(fs::exists(path), "{}: no such file", path);
  if (path.ends_with(".npy")) return data::read_npy(path);
  if (path.ends_with(".csv")) {
    const data::CsvOptions options{.header = args.csv_header.value_or(true),
                                   .detect_header = !args.csv_header.has_value()};
    return data::read_csv(path, options).features;
  }
  if (!ends_with_any(path, {".png", ".jpg", ".jpeg", ".bmp"}).empty()) {
    return load_image_input(path, model);
  }
  if (path.find("idx") != std::string::npos || path.find("ubyte") != std::string::npos) {
    Tensor t = cast(data::read_idx(path), DType::kFloat32);
    if (t.dim() == 3) t = reshape(t, {t.size(0), 1, t.size(1), t.size(2)});
    return t;
  }
  throw IOError(fmt::format("{}: unknown input type (expected .npy, .csv, .png/.jpg/.bmp or an IDX file)", path));
}

std::string text_source(const PredictArgs& args) { return args.text.empty() ? args.input : "--text"; }

// A text model's inputs: --text, or the non-empty lines of --input.
std::vector<std::string> load_texts(const PredictArgs& args, const data::Pipeline& pre) {
  NEUTRINO_CHECK_VALUE(pre.takes_text(), "--text: {} is not a text model (its preprocessing has "
                       "no tokenize step); give --input", args.model);
  NEUTRINO_CHECK_VALUE(args.text.empty() || args.input.empty(), "give --text or --input, not both");
  if (!args.text.empty()) return {args.text};
  NEUTRINO_CHECK_VALUE(!args.input.empty(), "give --text \"...\" or --input lines.txt");
  std::vector<std::string> lines = data::read_text_lines(args.input);
  NEUTRINO_CHECK_VALUE(!lines.empty(), "{}: no text (an empty file?)", args.input);
  return lines;
}

void write_outputs(const std::string& path, const Tensor& outputs) {
  if (path.ends_with(".npy")) {
    data::write_npy(path, outputs);
    return;
  }
  NEUTRINO_CHECK_VALUE(path.ends_with(".csv"), "{}: the output must end in .npy or .csv", path);
  const int64_t cols = outputs.numel() / std::max<int64_t>(outputs.size(0), 1);
  const auto values = outputs.to_vector<float>();
  std::string text;
  for (int64_t r = 0; r < outputs.size(0); ++r) {
    for (int64_t c = 0; c < cols; ++c) text += fmt::format("{}{}", c ? "," : "", values[r * cols + c]);
    text += '\n';
  }
  io::write_file_atomically(path, std::vector<uint8_t>(text.begin(), text.end()));
}
}  // namespace

int run_predict(const PredictArgs& args) {
  NEUTRINO_CHECK_VALUE(args.top_k >= 1, "--top-k must be at least 1");
  if (train::is_language_model_file(args.model)) return predict_language_model(args);
  auto [model, info] = train::load_model(args.model);
  apply_mixed_precision(model, args.mixed_precision);
  const data::Pipeline pre = data::Pipeline::from_saved(info.preprocessing, args.model);
  const Tensor x = pre.takes_text() || !args.text.empty()
                       ? fit_to_model(pre.apply_text(load_texts(args, pre), text_source(args)), model,
                                      text_source(args))
                       : fit_to_model(preprocess_x(pre, load_inputs(args, model), args.input), model,
                                      args.input);
  const Tensor outputs = model.predict(x, args.batch_size);
  if (!args.output.empty()) {
    write_outputs(args.output, outputs);
    fmt::print("wrote {} predictions to {}\n", outputs.size(0), args.output);
    return 0;
  }
  const int64_t cols = outputs.numel() / outputs.size(0);
  const auto values = outputs.to_vector<float>();
  const auto& names = info.class_names;
  for (int64_t r = 0; r < outputs.size(0); ++r) {
    std::vector<int64_t> order(cols);
    for (int64_t c = 0; c < cols; ++c) order[c] = c;
    const int64_t k = std::min(args.top_k, cols);
    std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int64_t a, int64_t b) {
      return values[r * cols + a] > values[r * cols + b];
    });
    std::string line = fmt::format("{}:", r);
    for (int64_t i = 0; i < k; ++i) {
      const int64_t c = order[i];
      const std::string label = c < static_cast<int64_t>(names.size()) ? names[c] : std::to_string(c);
      line += fmt::format(" {} ({:.4f})", label, values[r * cols + c]);
    }
    fmt::print("{}\n", line);
  }
  return 0;
}

int run_data(const DataArgs& args) {
  if (!args.output.empty()) io::check_can_write(args.output);
  const data::Dataset d = data::load_dataset_config(data_spec_json(args.spec, "spec"), "spec");
  const int64_t n = d.texts.empty() ? d.x.size(0) : static_cast<int64_t>(d.texts.size());
  const std::vector<int64_t> labels =
      d.y.defined() && d.y.dtype() == DType::kInt64 ? d.y.to_vector<int64_t>() : std::vector<int64_t>{};
  const Tensor rows = d.texts.empty() ? reshape(d.x, {n, -1}) : Tensor();
  const int64_t width = rows.defined() ? rows.size(1) : 0;
  const std::vector<float> values = rows.defined() ? rows.to_vector<float>() : std::vector<float>{};
  std::string out;
  for (int64_t i = 0; i < n; ++i) {
    json line = json::object();
    if (!d.texts.empty()) {
      line["text"] = d.texts[static_cast<size_t>(i)];
    } else {
      line["x"] = std::vector<float>(values.begin() + i * width, values.begin() + (i + 1) * width);
    }
    if (!labels.empty()) {
      const int64_t label = labels[static_cast<size_t>(i)];
      line["label"] = label;
      if (label >= 0 && label < static_cast<int64_t>(d.class_names.size())) {
        line["class"] = d.class_names[static_cast<size_t>(label)];
      }
    }
    out += line.dump() + "\n";
  }
  if (args.output.empty()) {
    fmt::print("{}", out);
  } else {
    io::write_file_atomically(args.output, std::vector<uint8_t>(out.begin(), out.end()));
    fmt::print(stderr, "wrote {} samples of {} to {}\n", n, d.source, args.output);
  }
  return 0;
}

int run_summary(const std::string& path) {
  if (path.ends_with(".yaml") || path.ends_with(".yml")) {
    const Experiment ex = load_experiment(path);
    train::Model model = train::model_from_json(ex.model, path + ": model");
    NEUTRINO_CHECK_VALUE(model.built(), "{}: model.input_shape is needed to show a summary", path);
    model.set_mixed_precision(ex.mixed_precision);
    fmt::print("{}", model.summary());
    return 0;
  }
  fmt::print("{}", train::load_model(path).model.summary());
  return 0;
}

}  // namespace neutrino::cli
