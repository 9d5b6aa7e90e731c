#include "neutrino/cli/lm_config.h"

#include <filesystem>

#include <nlohmann/json.hpp>

#include "neutrino/cli/config.h"
#include "neutrino/io/config_reader.h"

namespace neutrino::cli {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// A data spec's relative text file paths are read from the config's folder when the file is
// there, as the other configs' data files are.
std::string data_spec(io::ConfigReader& data, const std::string& key, const fs::path& base) {
  if (!data.has(key)) return "";
  json spec = data.get_raw(key);
  if (spec.is_object() && spec.contains("text_files") && spec["text_files"].is_array()) {
    for (json& file : spec["text_files"]) {
      if (!file.is_string()) continue;
      const fs::path p = file.get<std::string>();
      if (p.is_relative() && fs::exists(base / p)) file = (base / p).string();
    }
  }
  return spec.dump();
}

LmTokenizerSpec read_tokenizer(const json& value) {
  io::ConfigReader r(value, "data.tokenizer");
  LmTokenizerSpec spec;
  spec.kind = r.get_string("kind", spec.kind);
  NEUTRINO_CHECK_VALUE(spec.kind == "char" || spec.kind == "bpe" || spec.kind == "unigram",
                       "data.tokenizer.kind: expected char, bpe or unigram, got '{}'", spec.kind);
  if (r.has("vocab_size")) spec.vocab_size = r.require_int("vocab_size", 5, INT32_MAX);
  r.finish();
  return spec;
}

void read_data(io::ConfigReader& top, const fs::path& base, LmExperiment& ex) {
  NEUTRINO_CHECK_VALUE(top.has("data"), "data: missing required section");
  io::ConfigReader data(top.get_raw("data"), "data");
  NEUTRINO_CHECK_VALUE(data.has("train"), "data.train: missing required field");
  ex.train_data = data_spec(data, "train", base);
  ex.validation_data = data_spec(data, "validation", base);
  if (data.has("tokenizer")) ex.tokenizer = read_tokenizer(data.get_raw("tokenizer"));
  data.finish();
}

// model: {GPT: {...}}, checked now with a stand-in vocabulary (the tokenizer's comes later).
nn::GPTOptions read_model(const json& value) {
  NEUTRINO_CHECK_VALUE(value.is_object() && value.size() == 1 && value.contains("GPT"),
                       "model: expected {{GPT: {{context: ..., layers: ..., ...}}}}, got {}",
                       io::describe(value));
  json options = value.at("GPT");
  if (options.is_null()) options = json::object();
  NEUTRINO_CHECK_VALUE(options.is_object(), "model.GPT: expected a map of options, got {}",
                       io::describe(options));
  NEUTRINO_CHECK_VALUE(!options.contains("vocab_size"),
                       "model.GPT.vocab_size: comes from the tokenizer; leave it out");
  nn::GPTOptions gpt = nn::gpt_options_from_json(options.dump(), "model.GPT");
  gpt.vocab_size = 256;
  nn::check_gpt_options(gpt);
  return gpt;
}

void read_train(const json& value, LmExperiment& ex) {
  io::ConfigReader r(value, "train");
  train::LmTrainOptions& o = ex.train;  // its initializers are the defaults
  constexpr int64_t kMaxCount = INT32_MAX;
  o.max_steps = r.get_int("max_steps", o.max_steps, 0, kMaxCount);
  o.batch_size = r.get_int("batch_size", o.batch_size, 1, kMaxCount);
  o.context = r.get_int("context", o.context, 0, kMaxCount);
  o.grad_accumulation = r.get_int("grad_accumulation", o.grad_accumulation, 1, kMaxCount);
  o.eval_interval = r.get_int("eval_interval", o.eval_interval, 1, kMaxCount);
  o.eval_steps = r.get_int("eval_steps", o.eval_steps, 1, kMaxCount);
  o.learning_rate = r.get_double("learning_rate", o.learning_rate, 0, 1e6);
  o.min_lr = r.get_double("min_lr", o.min_lr, 0, o.learning_rate);
  o.warmup_steps = r.get_int("warmup_steps", o.warmup_steps, 0, kMaxCount);
  o.lr_decay_steps = r.get_int("lr_decay_steps", o.lr_decay_steps, 0, kMaxCount);
  o.weight_decay = r.get_double("weight_decay", o.weight_decay, 0, 1e6);
  if (r.has("betas")) {
    const std::vector<double> betas = r.require_doubles("betas");
    NEUTRINO_CHECK_VALUE(betas.size() == 2 && betas[0] >= 0 && betas[0] < 1 && betas[1] >= 0 &&
                             betas[1] < 1,
                         "train.betas: expected two numbers in [0, 1), as [0.9, 0.95]");
    o.beta_1 = betas[0];
    o.beta_2 = betas[1];
  }
  o.epsilon = r.get_double("epsilon", o.epsilon, 0, 1);
  o.grad_clip = r.get_double("grad_clip", o.grad_clip, 0, 1e30);
  o.log_interval = r.get_int("log_interval", o.log_interval, 0, kMaxCount);
  o.verbose = static_cast<int>(r.get_int("verbose", o.verbose, 0, 2));
  o.freeze = r.get_strings("freeze", o.freeze);
  ex.init_from = r.get_string("init_from", "");
  r.finish();
}

// lora: {rank, alpha, dropout, targets, merge}; nn::lora_options_from_json names the fields.
void read_lora(const json& value, LmExperiment& ex) {
  NEUTRINO_CHECK_VALUE(value.is_object(), "lora: expected a map (rank, alpha, dropout, targets, "
                       "merge), got {}", io::describe(value));
  json options = value;
  if (options.contains("merge")) {
    NEUTRINO_CHECK_VALUE(options["merge"].is_boolean(), "lora.merge: expected true or false, got {}",
                         io::describe(options["merge"]));
    ex.lora_merge = options["merge"].get<bool>();
    options.erase("merge");
  }
  ex.lora = nn::lora_options_from_json(options.dump(), "lora");
}

// What the sections say together: a model to build or one to start from, and one tokenizer.
void check_together(LmExperiment& ex, const fs::path& base) {
  NEUTRINO_CHECK_VALUE(!ex.lora || !ex.init_from.empty(),
                       "lora: LoRA fine-tunes a pre-trained model: set train.init_from");
  if (ex.init_from.empty()) {
    NEUTRINO_CHECK_VALUE(ex.model.has_value(), "model: missing required section (or "
                         "train.init_from, a language model to start from)");
    NEUTRINO_CHECK_VALUE(ex.tokenizer.has_value(), "data.tokenizer: missing required field "
                         "({{kind: char}} or {{kind: bpe, vocab_size: N}})");
    NEUTRINO_CHECK_VALUE(ex.train.context <= ex.model->context,
                         "train.context: {} is longer than model.GPT.context {}", ex.train.context,
                         ex.model->context);
    return;
  }
  NEUTRINO_CHECK_VALUE(!ex.tokenizer.has_value(), "data.tokenizer: train.init_from reuses the "
                       "pre-trained model's tokenizer; leave data.tokenizer out");
  NEUTRINO_CHECK_VALUE(!ex.model.has_value(), "model: train.init_from takes the pre-trained "
                       "model's architecture; leave the model section out");
  const fs::path p = ex.init_from;
  if (p.is_relative() && fs::exists(base / p)) ex.init_from = (base / p).string();
}

}  // namespace

bool is_language_model_config(const std::string& yaml_path) {
  const json root = json::parse(read_config_json(yaml_path));
  if (!root.is_object()) return false;
  const json model = root.value("model", json());
  if (model.is_object() && model.contains("GPT")) return true;
  const json train = root.value("train", json());
  return train.is_object() && train.contains("init_from");
}

LmExperiment load_lm_experiment(const std::string& yaml_path) {
  const json root = json::parse(read_config_json(yaml_path));
  try {
    LmExperiment ex;
    ex.source = yaml_path;
    ex.text = read_config_text(yaml_path);
    io::ConfigReader top(root, "config");
    ex.seed = static_cast<uint64_t>(top.get_int("seed", static_cast<int64_t>(ex.seed), 0));
    ex.train.seed = ex.seed;
    const fs::path base = fs::path(yaml_path).parent_path();
    read_data(top, base, ex);
    if (top.has("model")) ex.model = read_model(top.get_raw("model"));
    if (top.has("train")) read_train(top.get_raw("train"), ex);
    if (top.has("lora")) read_lora(top.get_raw("lora"), ex);
    if (top.has("mixed_precision")) {
      const json& value = top.get_raw("mixed_precision");
      NEUTRINO_CHECK_VALUE(value.is_string(), "mixed_precision: expected 'bf16' or 'fp32', got {}",
                           value.dump());
      ex.train.mixed_precision = parse_precision(value.get<std::string>());
    }
    top.finish();
    check_together(ex, base);
    return ex;
  } catch (const ValueError& e) {
    throw ValueError(fmt::format("{}: {}", yaml_path, e.what()));
  }
}

}  // namespace neutrino::cli
