// neutrino train on a language-model config (cli/lm_config.h): tokenizer, token shards, GPT,
// train::train_language_model, and the model file with its tokenizer and history.
#include <unistd.h>

#include <atomic>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "neutrino/cli/commands.h"
#include "neutrino/cli/lm_config.h"
#include "neutrino/core/random.h"
#include "neutrino/data/datasets.h"
#include "neutrino/data/token_shards.h"
#include "neutrino/data/tokenizer.h"
#include "neutrino/io/base64.h"
#include "neutrino/io/file_io.h"
#include "neutrino/io/model_file.h"
#include "neutrino/train/language_model.h"
#include "neutrino/train/lora_adapter.h"

namespace neutrino::cli {

namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// A folder for the run's token shards (TokenShard maps files), removed however the run ends.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() /
            fmt::format("neutrino_lm_{}_{}", getpid(), counter.fetch_add(1));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

std::unique_ptr<data::Tokenizer> train_tokenizer(const LmTokenizerSpec& spec,
                                                 const std::vector<std::string>& texts) {
  if (spec.kind == "char") {
    data::CharTokenizerOptions options;
    if (spec.vocab_size) options.max_vocab = *spec.vocab_size;
    return data::train_char_tokenizer(texts, options);
  }
  data::SentencePieceOptions options;
  options.model_type = spec.kind;
  if (spec.vocab_size) options.vocab_size = *spec.vocab_size;
  return data::train_sentencepiece(texts, options);
}

std::vector<std::string> texts_of(const std::string& spec, const std::string& what) {
  data::Dataset d = data::load_dataset_config(spec, what);
  NEUTRINO_CHECK_VALUE(!d.texts.empty(), "{}: a language model trains on text, but this data "
                       "is not text", what);
  return std::move(d.texts);
}

std::string default_output(const std::string& config) {
  return fs::path(config).stem().string() + ".safetensors";
}

// The flags over the config.
void apply_overrides(const TrainArgs& args, LmExperiment& ex) {
  NEUTRINO_CHECK_VALUE(!args.epochs, "--epochs: {} is a language-model config, which counts "
                       "steps: use --max-steps", args.config);
  NEUTRINO_CHECK_VALUE(!args.profile && args.profile_steps == 0,
                       "--profile: not available for language-model configs");
  if (args.max_steps) ex.train.max_steps = *args.max_steps;
  if (args.seed) ex.seed = ex.train.seed = *args.seed;
  if (args.verbose) {
    ex.train.verbose = *args.verbose;
  } else if (args.json) {
    ex.train.verbose = 0;  // stdout holds the one JSON object
  }
  if (!args.mixed_precision.empty()) ex.train.mixed_precision = parse_precision(args.mixed_precision);
  NEUTRINO_CHECK_VALUE(!args.merge || ex.lora.has_value(), "--merge: {} has no lora section "
                       "(--merge folds LoRA adapters into the model)", args.config);
  if (args.merge) ex.lora_merge = true;
}

// LoRA adapters on the pre-trained model, their initial values drawn from the seed.
void enable_lora(const LmExperiment& ex, nn::GPT& model) {
  constexpr uint64_t kLoraSeedOffset = 0x4c6f5241;  // "LoRA": apart from the training stream
  Generator generator(ex.seed + kLoraSeedOffset);
  GeneratorGuard guard(generator);
  try {
    model.enable_lora(*ex.lora);
  } catch (const ValueError& e) {
    throw ValueError(fmt::format("{}: {}", ex.source, e.what()));
  }
}

// Saves the trained model as the config asks: an ordinary model file, or with LoRA the adapters
// alone (without the tokenizer: the base model has it) or merged into the weights. Returns what
// --json reports about it.
json save_output(const LmExperiment& ex, const std::string& output, nn::GPT& model,
                 io::ModelInfo info, bool quiet) {
  json out{{"output", output}};
  const bool adapter = ex.lora && !ex.lora_merge;
  if (adapter) {
    info.extra.erase("tokenizer");
    info.extra["base_model"] = ex.init_from;
    train::save_lora_adapter(output, model, info);
  } else {
    if (ex.lora) model.merge_lora();
    train::save_language_model(output, model, info);
  }
  const auto bytes = static_cast<int64_t>(fs::file_size(output));
  out["output_bytes"] = bytes;
  if (ex.lora) out["merged"] = !adapter;
  if (adapter) out["adapter_bytes"] = bytes;
  if (quiet) return out;
  if (adapter) {
    fmt::print("saved LoRA adapter {} ({} bytes; the base model {} is {} bytes)\n", output, bytes,
               ex.init_from, fs::file_size(ex.init_from));
  } else if (ex.lora) {
    fmt::print("saved {} (LoRA adapters merged into the weights, {} bytes)\n", output, bytes);
  } else {
    fmt::print("saved {}\n", output);
  }
  return out;
}

// The model to train and its tokenizer: pre-trained (init_from), or built for a tokenizer taken
// from the checkpoint being resumed or fit on the training text.
struct Start {
  std::shared_ptr<nn::GPT> model;
  std::unique_ptr<data::Tokenizer> tokenizer;
};

Start start_model(const LmExperiment& ex, const std::string& resume,
                  const std::vector<std::string>& train_texts) {
  Start s;
  if (!ex.init_from.empty()) {
    train::LoadedLanguageModel loaded = train::load_language_model(ex.init_from);
    s.model = loaded.model;
    s.tokenizer = data::tokenizer_of_model_info(loaded.info.extra, ex.init_from);
    return s;
  }
  // A resumed run keeps the tokenizer it started with, whatever retraining would give.
  s.tokenizer = !resume.empty()
                    ? data::tokenizer_of_model_info(io::read_model_file(resume, io::ModelFileKind::kCheckpoint).info.extra, resume)
                    : train_tokenizer(*ex.tokenizer, train_texts);
  nn::GPTOptions options = *ex.model;
  options.vocab_size = s.tokenizer->vocab_size();
  Generator generator(ex.seed);  // the initial weights depend on the seed alone
  GeneratorGuard guard(generator);
  s.model = std::make_shared<nn::GPT>(options);
  return s;
}

// A shard the trainer can draw windows of context + 1 tokens from; the error names the section.
void write_shard(const std::string& path, const std::vector<int64_t>& tokens, int64_t vocab,
                 int64_t context, const std::string& what) {
  NEUTRINO_CHECK_VALUE(static_cast<int64_t>(tokens.size()) > context,
                       "{}: {} tokens, fewer than a window of context + 1 = {}", what,
                       tokens.size(), context + 1);
  data::write_token_shard(path, tokens, vocab);
}

json number_or_null(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

}  // namespace

int run_train_language_model(const TrainArgs& args) {
  LmExperiment ex = load_lm_experiment(args.config);
  apply_overrides(args, ex);
  const std::string output = args.output.empty() ? default_output(args.config) : args.output;
  const std::string checkpoint =
      !args.checkpoint.empty()
          ? args.checkpoint
          : (fs::path(output).parent_path() / (fs::path(output).stem().string() + ".ckpt.safetensors"))
                .string();
  io::check_can_write(output);
  io::check_can_write(checkpoint);

  const std::vector<std::string> train_texts = texts_of(ex.train_data, args.config + ": data.train");
  Start start = start_model(ex, args.resume, train_texts);
  if (ex.lora) enable_lora(ex, *start.model);
  const data::Tokenizer& tokenizer = *start.tokenizer;
  const int64_t context = ex.train.context > 0 ? ex.train.context : start.model->options().context;
  TempDir shards;
  write_shard(shards.file("train.shard"), data::encode_records(tokenizer, train_texts),
              tokenizer.vocab_size(), context, args.config + ": data.train");
  const data::TokenShard train_shard(shards.file("train.shard"));
  std::unique_ptr<data::TokenShard> val_shard;
  if (!ex.validation_data.empty()) {
    const std::string what = args.config + ": data.validation";
    write_shard(shards.file("val.shard"),
                data::encode_records(tokenizer, texts_of(ex.validation_data, what)),
                tokenizer.vocab_size(), context, what);
    val_shard = std::make_unique<data::TokenShard>(shards.file("val.shard"));
  }

  io::ModelInfo info;
  info.extra["tokenizer"] = io::base64_encode(tokenizer.serialize());
  info.extra["training_config"] = ex.text;
  if (!ex.init_from.empty()) info.extra["init_from"] = ex.init_from;
  ex.train.checkpoint_path = checkpoint;
  ex.train.resume_from = args.resume;
  train::LmTrainResult r;
  try {
    r = train::train_language_model(*start.model, train_shard, val_shard.get(), ex.train, info);
  } catch (const ValueError& e) {
    throw ValueError(fmt::format("{}: {}", args.config, e.what()));
  }
  if (r.stopped_on_nan) {
    fmt::print(stderr, "neutrino train: stopped on a NaN loss at step {}; no model written (the "
                       "last good checkpoint is {})\n", r.steps + 1, checkpoint);
    return 3;
  }
  info.extra["history"] = train::history_json(r.history);
  if (ex.lora) info.extra["lora"] = nn::lora_options_to_json(*ex.lora);
  json out = save_output(ex, output, *start.model, info, args.json);
  if (!args.json) return 0;
  out.update({{"train_loss", number_or_null(r.train_loss)}, {"val_loss", number_or_null(r.val_loss)},
              {"perplexity", number_or_null(r.perplexity)},
              {"tokens_per_second", r.tokens_per_second}, {"mfu", r.mfu}, {"steps", r.steps},
              {"trainable_parameters", r.trainable_parameters},
              {"total_parameters", r.total_parameters},
              {"history", json::parse(train::history_json(r.history))}});
  fmt::print("{}\n", out.dump());
  return 0;
}

}  // namespace neutrino::cli
