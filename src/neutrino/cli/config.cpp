#include "neutrino/cli/config.h"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <set>

#include <nlohmann/json.hpp>

#include "neutrino/io/config_reader.h"
#include "neutrino/io/option_fields.h"
#include "neutrino/io/file_io.h"
#include "neutrino/nn/layer_config.h"
#include "neutrino/train/model_file.h"

// ---- option tables: each field once; the structs' initializers are the defaults -----------------

namespace neutrino::optim {
constexpr double kAnyRate = 1e6;  // learning rates and decays: finite, non-negative

template <class Self, class F>
  requires std::same_as<std::remove_const_t<Self>, SGDOptions>
void option_fields(Self& o, F&& f) {
  f("learning_rate", o.learning_rate, 0.0, kAnyRate);
  f("momentum", o.momentum, 0.0, 1.0);
  f("nesterov", o.nesterov);
  f("weight_decay", o.weight_decay, 0.0, kAnyRate);
  f("global_clipnorm", o.global_clipnorm, 0.0, 1e30);
}

// Adam and AdamW have the same fields (AdamW's weight_decay default differs).
template <class Self, class F>
  requires std::same_as<std::remove_const_t<Self>, AdamOptions> ||
           std::same_as<std::remove_const_t<Self>, AdamWOptions>
void option_fields(Self& o, F&& f) {
  f("learning_rate", o.learning_rate, 0.0, kAnyRate);
  f("beta_1", o.beta_1, 0.0, 1.0);
  f("beta_2", o.beta_2, 0.0, 1.0);
  f("epsilon", o.epsilon, 0.0, 1.0);
  f("amsgrad", o.amsgrad);
  f("weight_decay", o.weight_decay, 0.0, kAnyRate);
  f("global_clipnorm", o.global_clipnorm, 0.0, 1e30);
}

template <class Self, class F>
  requires std::same_as<std::remove_const_t<Self>, RMSpropOptions>
void option_fields(Self& o, F&& f) {
  f("learning_rate", o.learning_rate, 0.0, kAnyRate);
  f("rho", o.rho, 0.0, 1.0);
  f("momentum", o.momentum, 0.0, 1.0);
  f("epsilon", o.epsilon, 0.0, 1.0);
  f("centered", o.centered);
  f("weight_decay", o.weight_decay, 0.0, kAnyRate);
  f("global_clipnorm", o.global_clipnorm, 0.0, 1e30);
}
}  // namespace neutrino::optim

namespace neutrino::train {
template <class Self, class F>
  requires std::same_as<std::remove_const_t<Self>, EarlyStoppingOptions>
void option_fields(Self& o, F&& f) {
  f("monitor", o.monitor);
  f("min_delta", o.min_delta, 0.0, 1e30);
  f("patience", o.patience);
  f("mode", o.mode);
  f("restore_best_weights", o.restore_best_weights);
}

template <class Self, class F>
  requires std::same_as<std::remove_const_t<Self>, ModelCheckpointOptions>
void option_fields(Self& o, F&& f) {
  f("monitor", o.monitor);
  f("save_best_only", o.save_best_only);
  f("mode", o.mode);
}

template <class Self, class F>
  requires std::same_as<std::remove_const_t<Self>, ReduceLROnPlateauOptions>
void option_fields(Self& o, F&& f) {
  f("monitor", o.monitor);
  f("factor", o.factor, 0.0, 1.0);
  f("patience", o.patience);
  f("mode", o.mode);
  f("min_delta", o.min_delta, 0.0, 1e30);
  f("cooldown", o.cooldown);
  f("min_lr", o.min_lr, 0.0, 1e6);
}
}  // namespace neutrino::train

namespace neutrino::cli {

using nlohmann::json;

namespace {
// Limits on a config file, so that a small hostile file cannot take gigabytes: its size, and the
// values it holds once YAML aliases are expanded (a "billion laughs" of a few hundred bytes
// expands to billions). Nesting is bounded by io::kMaxJsonDepth.
constexpr size_t kMaxConfigBytes = size_t{1} << 20;
constexpr int64_t kMaxConfigValues = 100000;

// YAML's special floats (.nan, .inf, -.inf in any of the spec's spellings), or nullopt.
std::optional<double> special_float(const std::string& text) {
  static const std::set<std::string> nan{".nan", ".NaN", ".NAN"};
  static const std::set<std::string> inf{".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"};
  static const std::set<std::string> minus_inf{"-.inf", "-.Inf", "-.INF"};
  if (nan.count(text)) return std::numeric_limits<double>::quiet_NaN();
  if (inf.count(text)) return std::numeric_limits<double>::infinity();
  if (minus_inf.count(text)) return -std::numeric_limits<double>::infinity();
  return std::nullopt;
}

json scalar_to_json(const YAML::Node& node, const std::string& path);

// YAML scalars become JSON numbers, booleans or strings by their plain text; quoted text stays a
// string. `values` counts every value made, aliases expanded, against kMaxConfigValues; `path`
// names the value in errors ("fit.epochs").
json to_json(const YAML::Node& node, const std::string& path, int depth, int64_t& values) {
  NEUTRINO_CHECK_VALUE(++values <= kMaxConfigValues,
                       "more than {} values once aliases are expanded", kMaxConfigValues);
  NEUTRINO_CHECK_VALUE(depth <= io::kMaxJsonDepth, "line {}: nested deeper than {} levels",
                       node.Mark().line + 1, io::kMaxJsonDepth);
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nullptr;
    case YAML::NodeType::Sequence: {
      json out = json::array();
      for (const auto& item : node) {
        out.push_back(to_json(item, fmt::format("{}[{}]", path, out.size()), depth + 1, values));
      }
      return out;
    }
    case YAML::NodeType::Map: {
      json out = json::object();
      for (const auto& item : node) {
        NEUTRINO_CHECK_VALUE(item.first.IsScalar(), "line {}: a key must be a plain name",
                             item.first.Mark().line + 1);
        const std::string key = item.first.Scalar();
        if (out.contains(key)) {
          throw ValueError(fmt::format("line {}: duplicate key '{}'", item.first.Mark().line + 1, key));
        }
        out[key] = to_json(item.second, path.empty() ? key : path + "." + key, depth + 1, values);
      }
      return out;
    }
    case YAML::NodeType::Scalar:
      return scalar_to_json(node, path);
  }
  return nullptr;
}

// Numbers must be finite: nothing in a config takes NaN or infinity, and JSON (which carries the
// config inside neutrino and into model files) has neither.
json scalar_to_json(const YAML::Node& node, const std::string& path) {
  const std::string text = node.Scalar();
  if (node.Tag() == "!") return text;  // quoted
  if (text == "true" || text == "True") return true;
  if (text == "false" || text == "False") return false;
  if (text == "null" || text == "~") return nullptr;
  NEUTRINO_CHECK_VALUE(!special_float(text).has_value(), "{}: expected a finite number, got {}",
                       path, text);
  try {
    size_t used = 0;
    const long long i = std::stoll(text, &used);
    if (used == text.size()) return i;
  } catch (const std::exception&) {
  }
  try {
    size_t used = 0;
    const double d = std::stod(text, &used);
    if (used == text.size()) {
      NEUTRINO_CHECK_VALUE(std::isfinite(d), "{}: expected a finite number, got {}", path, text);
      return d;
    }
  } catch (const std::out_of_range&) {
    throw ValueError(fmt::format("{}: the number {} is out of the range of a double", path, text));
  } catch (const std::invalid_argument&) {
  }
  return text;
}

// Relative data paths are read from the config's folder when the file is there, so a config
// works from any working directory.
void resolve_paths(nlohmann::json& spec, const std::filesystem::path& base) {
  auto fix = [&](nlohmann::json& value) {
    if (!value.is_string()) return;
    const std::filesystem::path p = value.get<std::string>();
    if (p.is_relative() && std::filesystem::exists(base / p)) value = (base / p).string();
  };
  if (spec.is_string()) {
    fix(spec);
    return;
  }
  if (!spec.is_object()) return;
  for (const char* key : {"csv", "npz", "npy"}) {
    if (spec.contains(key)) fix(spec[key]);
  }
  if (spec.contains("idx") && spec["idx"].is_object()) {
    for (const char* key : {"images", "labels"}) {
      if (spec["idx"].contains(key)) fix(spec["idx"][key]);
    }
  }
}

// The same for every `from_model` path (a GPTBackbone layer's, a tokenize step's), at any depth.
void resolve_model_paths(nlohmann::json& value, const std::filesystem::path& base, int depth = 0) {
  if (depth > 64 || !(value.is_object() || value.is_array())) return;
  for (auto it = value.begin(); it != value.end(); ++it) {
    if (value.is_object() && it.key() == "from_model" && it->is_string()) {
      const std::filesystem::path p = it->get<std::string>();
      if (p.is_relative() && std::filesystem::exists(base / p)) *it = (base / p).string();
    } else {
      resolve_model_paths(*it, base, depth + 1);
    }
  }
}

std::string data_spec(io::ConfigReader& r, const std::string& key, const std::filesystem::path& base) {
  if (!r.has(key)) return "";
  nlohmann::json spec = r.get_raw(key);
  resolve_paths(spec, base);
  return spec.dump();
}

}  // namespace

// The config's text, refused past kMaxConfigBytes without reading further.
std::string read_config_text(const std::string& path) {
  uint64_t size = 0;
  const io::FilePtr file = io::open_regular_file(path, size);  // a regular file, never a FIFO
  NEUTRINO_CHECK_IO(size <= kMaxConfigBytes,
                    "{}: the config file is larger than the limit of {} bytes", path,
                    kMaxConfigBytes);
  const std::vector<uint8_t> bytes = io::read_file(path);
  NEUTRINO_CHECK_IO(bytes.size() <= kMaxConfigBytes,
                    "{}: the config file is larger than the limit of {} bytes", path,
                    kMaxConfigBytes);
  return std::string(bytes.begin(), bytes.end());
}

namespace {
void read_compile(io::ConfigReader& top, Experiment& ex) {
  std::string optimizer = "\"adam\"";
  if (top.has("compile")) {
    io::ConfigReader compile(top.get_raw("compile"), "compile");
    if (compile.has("optimizer")) optimizer = compile.get_raw("optimizer").dump();
    if (compile.has("loss")) ex.loss = make_loss_from(compile.get_raw("loss").dump(), "compile.loss");
    if (compile.has("metrics")) {
      const json& metrics = compile.get_raw("metrics");
      NEUTRINO_CHECK_VALUE(metrics.is_array(), "compile.metrics: expected a list of names");
      for (size_t i = 0; i < metrics.size(); ++i) {
        NEUTRINO_CHECK_VALUE(metrics[i].is_string(), "compile.metrics[{}]: expected a name", i);
        ex.metrics.push_back(metrics[i].get<std::string>());
      }
    }
    compile.finish();
  }
  ex.optimizer = make_optimizer_from(optimizer, "compile.optimizer");
  for (size_t i = 0; i < ex.metrics.size(); ++i) {
    try {
      train::make_metric(ex.metrics[i], ex.loss.name(), 0);
    } catch (const ValueError& e) {
      throw ValueError(fmt::format("compile.metrics[{}]: {}", i, e.what()));
    }
  }
}

void read_fit(io::ConfigReader& top, Experiment& ex) {
  if (!top.has("fit")) return;
  io::ConfigReader fit(top.get_raw("fit"), "fit");
  ex.epochs = static_cast<int>(fit.get_int("epochs", 1, 0, INT32_MAX));
  ex.batch_size = fit.get_int("batch_size", 32, 1, INT32_MAX);
  ex.shuffle = fit.get_bool("shuffle", true);
  ex.bucket_by_length = fit.get_bool("bucket_by_length", false);
  if (fit.has("class_weight")) {
    const json& w = fit.get_raw("class_weight");
    if (w.is_string()) {
      ex.class_weight_mode = w.get<std::string>();
      NEUTRINO_CHECK_VALUE(ex.class_weight_mode == "balanced", "{}: expected \"balanced\" or a "
                           "list of weights, one per class, got \"{}\"", fit.path_of("class_weight"),
                           ex.class_weight_mode);
    } else {
      ex.class_weight = fit.require_doubles("class_weight");
      for (double v : ex.class_weight) {
        NEUTRINO_CHECK_VALUE(v >= 0, "{}: weights must be >= 0, got {}", fit.path_of("class_weight"), v);
      }
      NEUTRINO_CHECK_VALUE(!ex.class_weight.empty(), "{}: an empty list", fit.path_of("class_weight"));
    }
  }
  ex.verbose = static_cast<int>(fit.get_int("verbose", 1, 0, 2));
  if (fit.has("callbacks")) ex.callbacks = make_callbacks_from(fit.get_raw("callbacks").dump(), "fit.callbacks");
  fit.finish();
}
}  // namespace

std::string data_spec_json(const std::string& spec, const std::string& what) {
  if (!spec.starts_with("{")) return json(spec).dump();
  NEUTRINO_CHECK_VALUE(spec.size() <= kMaxConfigBytes, "{}: longer than {} bytes", what, kMaxConfigBytes);
  try {
    int64_t values = 0;
    return to_json(YAML::Load(spec), "", 0, values).dump();
  } catch (const YAML::Exception& e) {
    throw ValueError(fmt::format("{}: invalid YAML at column {}: {}", what, e.mark.column + 1, e.msg));
  } catch (const ValueError& e) {
    throw ValueError(fmt::format("{}: {}", what, e.what()));
  }
}

namespace {
json read_config_root(const std::string& yaml_path) {
  try {
    int64_t values = 0;
    return to_json(YAML::Load(read_config_text(yaml_path)), "", 0, values);
  } catch (const YAML::Exception& e) {
    throw ValueError(fmt::format("{}:{}:{}: invalid YAML: {}", yaml_path, e.mark.line + 1,
                                 e.mark.column + 1, e.msg));
  } catch (const ValueError& e) {
    throw ValueError(fmt::format("{}: {}", yaml_path, e.what()));
  }
}
}  // namespace

std::string read_config_json(const std::string& yaml_path) {
  return read_config_root(yaml_path).dump();
}

Experiment load_experiment(const std::string& yaml_path) {
  const json root = read_config_root(yaml_path);
  try {
    Experiment ex;
    ex.source = yaml_path;
    io::ConfigReader top(root, "config");
    ex.seed = static_cast<uint64_t>(top.get_int("seed", 42, 0));

    NEUTRINO_CHECK_VALUE(top.has("data"), "data: missing required section");
    io::ConfigReader data(top.get_raw("data"), "data");
    NEUTRINO_CHECK_VALUE(data.has("train"), "data.train: missing required field");
    const std::filesystem::path base = std::filesystem::path(yaml_path).parent_path();
    ex.train_data = data_spec(data, "train", base);
    ex.test_data = data_spec(data, "test", base);
    ex.validation_data = data_spec(data, "validation", base);
    ex.validation_split = data.get_double("validation_split", 0.0);
    NEUTRINO_CHECK_VALUE(ex.validation_split >= 0 && ex.validation_split < 1,
                         "data.validation_split: must be in [0, 1), got {}", ex.validation_split);
    if (data.has("preprocess")) {
      json preprocess = data.get_raw("preprocess");
      resolve_model_paths(preprocess, base);
      ex.preprocess = data::Pipeline::from_config(preprocess.dump(), "data.preprocess");
    }
    data.finish();

    NEUTRINO_CHECK_VALUE(top.has("model"), "model: missing required section");
    json model = top.get_raw("model");
    NEUTRINO_CHECK_VALUE(model.is_object(), "model: expected a map with layers");
    resolve_model_paths(model, base);
    if (model.contains("input_shape")) {
      json& shape = model["input_shape"];
      NEUTRINO_CHECK_VALUE(shape.is_array(), "model.input_shape: expected a list of integers");
      if (shape.size() == 3) shape = json::array({shape[2], shape[0], shape[1]});  // HWC -> CHW
    }
    // Checked now, so errors point at the config before any data is loaded; built by the command.
    ex.model = model.dump();
    train::check_model_json(ex.model, "model");

    read_compile(top, ex);
    read_fit(top, ex);
    if (top.has("mixed_precision")) {
      const json& value = top.get_raw("mixed_precision");
      // parse_precision's error names the key: "mixed_precision: expected 'bf16' or 'fp32', ...".
      NEUTRINO_CHECK_VALUE(value.is_string(), "mixed_precision: expected 'bf16' or 'fp32', got {}",
                           value.dump());
      ex.mixed_precision = parse_precision(value.get<std::string>());
    }
    top.finish();
    return ex;
  } catch (const ValueError& e) {
    throw ValueError(fmt::format("{}: {}", yaml_path, e.what()));
  }
}

namespace {
// The constructors' own checks name only the class ("ReduceLROnPlateau: factor must be in (0, 1)"):
// errors get the config path in front unless they already start with it.
[[noreturn]] void rethrow_with_path(const ValueError& e, const std::string& path) {
  const std::string what = e.what();
  if (what.starts_with(path)) throw e;
  throw ValueError(fmt::format("{}: {}", path, what));
}

train::CallbackPtr callback_from(const json& entry, const std::string& where);
std::shared_ptr<optim::Optimizer> optimizer_from(const std::string& json_text,
                                                 const std::string& path);
}  // namespace

std::shared_ptr<optim::Optimizer> make_optimizer_from(const std::string& json_text,
                                                      const std::string& path) {
  try {
    return optimizer_from(json_text, path);
  } catch (const ValueError& e) {
    rethrow_with_path(e, path);
  }
}

namespace {
template <class Options>
std::shared_ptr<optim::Optimizer> read_optimizer(io::ConfigReader& r) {
  Options options;
  io::read_fields(r, options);
  if constexpr (std::is_same_v<Options, optim::SGDOptions>) return std::make_shared<optim::SGD>(options);
  if constexpr (std::is_same_v<Options, optim::AdamOptions>) return std::make_shared<optim::Adam>(options);
  if constexpr (std::is_same_v<Options, optim::AdamWOptions>) return std::make_shared<optim::AdamW>(options);
  if constexpr (std::is_same_v<Options, optim::RMSpropOptions>) {
    return std::make_shared<optim::RMSprop>(options);
  }
}

std::shared_ptr<optim::Optimizer> optimizer_from(const std::string& json_text,
                                                 const std::string& path) {
  const auto [name, options] = io::named_entry(io::parse_json(json_text, path), path);
  io::ConfigReader r(options, path + "." + name);
  std::shared_ptr<optim::Optimizer> out;
  if (name == "sgd") {
    out = read_optimizer<optim::SGDOptions>(r);
  } else if (name == "adam") {
    out = read_optimizer<optim::AdamOptions>(r);
  } else if (name == "adamw") {
    out = read_optimizer<optim::AdamWOptions>(r);
  } else if (name == "rmsprop") {
    out = read_optimizer<optim::RMSpropOptions>(r);
  } else {
    throw ValueError(fmt::format("{}: unknown optimizer '{}' (known: sgd, adam, adamw, rmsprop)",
                                 path, name));
  }
  r.finish();
  return out;
}
}  // namespace

nn::Loss make_loss_from(const std::string& json_text, const std::string& path) {
  const auto [name, options] = io::named_entry(io::parse_json(json_text, path), path);
  io::ConfigReader r(options, path + "." + name);
  const bool from_logits = r.get_bool("from_logits", false);
  r.finish();
  try {
    return nn::Loss(name, from_logits);
  } catch (const ValueError& e) {
    throw ValueError(fmt::format("{}: {}", path, e.what()));
  }
}

std::vector<train::CallbackPtr> make_callbacks_from(const std::string& json_text,
                                                    const std::string& path) {
  const json list = io::parse_json(json_text, path);
  NEUTRINO_CHECK_VALUE(list.is_array(), "{}: expected a list of callbacks", path);
  std::vector<train::CallbackPtr> out;
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string where = fmt::format("{}[{}]", path, i);
    try {
      out.push_back(callback_from(list[i], where));
    } catch (const ValueError& e) {
      rethrow_with_path(e, where);
    }
  }
  return out;
}

namespace {
train::CallbackPtr callback_from(const json& entry, const std::string& where) {
  std::vector<train::CallbackPtr> out;  // the one callback made below
  const auto [name, options] = io::named_entry(entry, where);
  io::ConfigReader r(options, where + "." + name);
  if (name == "EarlyStopping") {
    train::EarlyStoppingOptions o;
    io::read_fields(r, o);
    out.push_back(std::make_shared<train::EarlyStopping>(o));
  } else if (name == "ModelCheckpoint") {
    NEUTRINO_CHECK_VALUE(r.has("filepath"), "{}.filepath: missing required field", r.path());
    const std::string filepath = r.get_string("filepath", "");
    train::ModelCheckpointOptions o;
    io::read_fields(r, o);
    out.push_back(std::make_shared<train::ModelCheckpoint>(filepath, o));
  } else if (name == "CSVLogger") {
    NEUTRINO_CHECK_VALUE(r.has("filename"), "{}.filename: missing required field", r.path());
    const std::string filename = r.get_string("filename", "");
    out.push_back(std::make_shared<train::CSVLogger>(filename, ',', r.get_bool("append", false)));
  } else if (name == "TerminateOnNaN") {
    out.push_back(std::make_shared<train::TerminateOnNaN>());
  } else if (name == "ReduceLROnPlateau") {
    train::ReduceLROnPlateauOptions o;
    io::read_fields(r, o);
    out.push_back(std::make_shared<train::ReduceLROnPlateau>(o));
  } else if (name == "LearningRateScheduler") {
    // A schedule by name: step_decay {drop, epochs_drop} or cosine_decay {epochs, alpha,
    // warmup_epochs}, evaluated per epoch from the starting learning rate.
    const std::string kind = r.get_string("schedule", "step_decay");
    const double drop = r.get_double("drop", 0.5, 1e-300);
    const int64_t every = r.get_int("epochs_drop", 10, 1, INT32_MAX);
    const int64_t total = r.get_int("epochs", 10, 1, INT32_MAX);
    const double alpha = r.get_double("alpha", 0.0, 0.0, 1.0);
    const int64_t warmup = r.get_int("warmup_epochs", 0, 0, INT32_MAX);
    NEUTRINO_CHECK_VALUE(kind == "step_decay" || kind == "cosine_decay",
                         "{}.schedule: expected step_decay or cosine_decay, got '{}'", r.path(), kind);
    auto initial = std::make_shared<double>(-1);
    out.push_back(std::make_shared<train::LearningRateScheduler>(
        [=](int epoch, double lr) {
          if (*initial < 0) *initial = lr;
          return kind == "step_decay" ? train::step_decay(*initial, drop, every)(epoch)
                                      : train::cosine_decay(*initial, total, alpha, warmup)(epoch);
        }));
  } else {
    throw ValueError(fmt::format(
        "{}: unknown callback '{}' (known: EarlyStopping, ModelCheckpoint, CSVLogger, "
        "TerminateOnNaN, ReduceLROnPlateau, LearningRateScheduler)",
        where, name));
  }
  r.finish();
  return out.front();
}
}  // namespace


std::string compile_json(const Experiment& ex) {
  const json loss{{ex.loss.name(), {{"from_logits", ex.loss.from_logits()}}}};
  return json{{"loss", loss}, {"metrics", ex.metrics}}.dump();
}

std::string describe_config_options() {
  std::string out = nn::describe_layer_options();
  out += "optimizers (compile.optimizer):\n";
  out += io::describe_line<optim::SGDOptions>("sgd");
  out += io::describe_line<optim::AdamOptions>("adam");
  out += io::describe_line<optim::AdamWOptions>("adamw");
  out += io::describe_line<optim::RMSpropOptions>("rmsprop");
  out += "callbacks (fit.callbacks):\n";
  out += io::describe_line<train::EarlyStoppingOptions>("EarlyStopping");
  out += io::describe_line<train::ModelCheckpointOptions>("ModelCheckpoint(filepath)");
  out += io::describe_line<train::ReduceLROnPlateauOptions>("ReduceLROnPlateau");
  out += "  CSVLogger(filename): append=false\n  TerminateOnNaN\n";
  out += "  LearningRateScheduler: schedule=\"step_decay\" (drop=0.5, epochs_drop=10) or "
         "\"cosine_decay\" (epochs=10, alpha=0.0, warmup_epochs=0)\n";
  const data::TokenizeOptions tokenize;
  out += "preprocessing (data.preprocess, in order):\n  rescale: FACTOR, standardize, one_hot, "
         "random_flip, random_crop: padding=4\n";
  out += fmt::format("  tokenize (text, first): kind=\"{}\" (char, bpe or unigram), max_length={}, "
                     "vocab_size={} (bpe, unigram), truncate={}\n", tokenize.kind,
                     tokenize.max_length, tokenize.vocab_size, tokenize.truncate);
  const Experiment fit;
  out += fmt::format("fit: epochs={}, batch_size={}, shuffle={}, verbose={}, bucket_by_length={}, "
                     "class_weight (\"balanced\" or one weight per class), callbacks\n",
                     fit.epochs, fit.batch_size, fit.shuffle, fit.verbose, fit.bucket_by_length);
  return out;
}

}  // namespace neutrino::cli
