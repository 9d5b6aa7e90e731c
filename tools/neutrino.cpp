// The neutrino command-line tool: train, eval, predict, summary, tokenize. Errors in the input (a bad
// config, a corrupt file, a wrong shape) print one line naming the file and field and exit 1;
// usage errors exit 2 (CLI11's codes for parse errors are mapped there too).
#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <csignal>
#include <limits>
#include <string>
#include <vector>

#include "neutrino/cli/commands.h"
#include "neutrino/cli/config.h"
#include "neutrino/core/error.h"

namespace {

// A numeric option with a lower bound whose refusal reads "--top-k must be at least 1, got 0"
// (CLI11's own range check prints the bound as 0.000000 to 1.79769e+308). The error is thrown
// from the option's callback, which CLI11 passes on unchanged: a usage error, exit 2.
template <class T>
CLI::Option* add_bounded(CLI::App* app, const std::string& flags, const std::string& name, T& target,
                         T min, T max, const std::string& help) {
  auto* option = app->add_option_function<T>(
      flags,
      [&target, name, min, max](const T& value) {
        if (value < min || value > max) {
          throw CLI::ValidationError(
              max == std::numeric_limits<T>::max()
                  ? fmt::format("{} must be at least {}, got {}", name, min, value)
                  : fmt::format("{} must be from {} to {}, got {}", name, min, max, value));
        }
        target = value;
      },
      help);
  return option->type_name(max == std::numeric_limits<T>::max()
                               ? fmt::format("INT>={}", min)
                               : fmt::format("INT in [{}, {}]", min, max));
}

template <class T>
CLI::Option* add_at_least(CLI::App* app, const std::string& name, T& target, T min,
                          const std::string& help) {
  return add_bounded(app, name, name, target, min, std::numeric_limits<T>::max(), help);
}

}  // namespace

int main(int argc, char** argv) {
  // Past `ulimit -f` a write then fails with EFBIG, which the writers report naming the file
  // (and they remove their temporary file), instead of SIGXFSZ killing us without a word.
  std::signal(SIGXFSZ, SIG_IGN);
  using namespace neutrino::cli;
  CLI::App app{"neutrino: train, evaluate and use deep learning models"};
  app.require_subcommand(1);

  // Checked here, so a bad value is a usage error (exit 2) naming the flag.
  const std::vector<std::string> precisions{"bf16", "fp32", "bfloat16", "float32"};
  const char* precision_help =
      "bf16: matmul and convolution in bfloat16 with fp32 weights (fp32 where the CPU lacks bf16)";

  TrainArgs train;
  int epochs = 0;
  uint64_t seed = 0;
  int verbose = 1;
  auto* t = app.add_subcommand("train", "Train a model from a YAML config, save it, evaluate on data.test");
  t->add_option("config", train.config, "YAML config (see configs/)")->required()->check(CLI::ExistingFile);
  t->add_option("-o,--output", train.output, "model file to write (default: <config name>.safetensors)");
  auto* epochs_opt = add_at_least(t, "--epochs", epochs, 0, "override fit.epochs");
  int64_t max_steps = 0;
  auto* max_steps_opt = add_at_least(t, "--max-steps", max_steps, int64_t{0},
                                     "language-model configs: override train.max_steps");
  auto* seed_opt = t->add_option("--seed", seed, "override the config's seed");
  auto* verbose_opt = add_bounded(t, "--verbose", "--verbose", verbose, 0, 2,
                                  "0 silent, 1 progress bar, 2 one line per epoch");
  t->add_option("--checkpoint", train.checkpoint,
                "training checkpoint written after every epoch (default: <output>.ckpt.safetensors)");
  t->add_option("--resume", train.resume, "continue from a training checkpoint")->check(CLI::ExistingFile);
  t->add_flag("--json", train.json, "print the test results as one JSON object");
  t->add_flag("--merge", train.merge, "LoRA configs: fold the adapters into the weights and save a "
                                      "full model (default: the adapters alone, a small file)");
  t->add_flag("--profile", train.profile,
              "time each layer's forward and backward per training step and print the means");
  add_at_least(t, "--profile-steps", train.profile_steps, int64_t{1},
               "as --profile, and stop after N profiled steps (after 3 warm-up steps); the model "
               "is saved but not tested");
  t->add_option("--mixed-precision", train.mixed_precision,
                std::string(precision_help) + "; overrides the config's mixed_precision")
      ->check(CLI::IsMember(precisions));

  EvalArgs eval;
  auto* e = app.add_subcommand("eval", "Evaluate a saved model on a dataset");
  e->add_option("model", eval.model, "model file (.safetensors)")->required()->check(CLI::ExistingFile);
  e->add_option("--data", eval.data, "data spec: fashion_mnist:test, breast_cancer, data.csv, data.npz")->required();
  e->add_flag("--json", eval.json, "print one JSON object");
  e->add_flag("--report", eval.report, "per-class precision, recall, F1 and the confusion matrix");
  add_at_least(e, "--batch-size", eval.batch_size, int64_t{1}, "batch size (default 256)");
  e->add_option("--mixed-precision", eval.mixed_precision,
                std::string(precision_help) + " (default: as the model was trained)")
      ->check(CLI::IsMember(precisions));

  PredictArgs predict;
  auto* p = app.add_subcommand("predict", "Run a saved model on inputs");
  p->add_option("model", predict.model, "model file (.safetensors)")->required()->check(CLI::ExistingFile);
  auto* input_opt = p->add_option("--input", predict.input,
                                  "inputs: .npy, .csv (features), .png/.jpg, IDX images; a text "
                                  "model: a text file, one input per line");
  auto* text_opt = p->add_option("--text", predict.text, "one text to classify (a text model)");
  input_opt->excludes(text_opt);
  p->callback([input_opt, text_opt] {
    if (input_opt->count() == 0 && text_opt->count() == 0) {
      throw CLI::RequiredError("--input or --text");
    }
  });
  p->add_option("--output", predict.output, "write the outputs to .npy or .csv instead of printing");
  auto* header_opt = p->add_flag_callback(
      "--header", [&predict] { predict.csv_header = true; },
      "a .csv input's first row is a header (default: a header unless it is all numbers)");
  p->add_flag_callback(
       "--no-header", [&predict] { predict.csv_header = false; },
       "a .csv input's first row is data")
      ->excludes(header_opt);
  add_at_least(p, "--top-k", predict.top_k, int64_t{1}, "classes to print per input (default 1)");
  add_at_least(p, "--batch-size", predict.batch_size, int64_t{1}, "batch size (default 256)");
  p->add_option("--mixed-precision", predict.mixed_precision,
                std::string(precision_help) + " (default: as the model was trained)")
      ->check(CLI::IsMember(precisions));

  DataArgs data_args;
  auto* d = app.add_subcommand("data", "Write a dataset's samples (the records and split training "
                                       "sees) as JSON lines");
  d->add_option("spec", data_args.spec, "data spec or YAML map: \"{fortunes: [love, food], split: test}\"")
      ->required();
  d->add_option("-o,--output", data_args.output, "a .jsonl file (default: stdout)");

  std::string summary_path;
  auto* s = app.add_subcommand("summary", "Print a model's layers, output shapes and parameter counts");
  s->add_option("model", summary_path, "model file or YAML config")->required()->check(CLI::ExistingFile);

  TokenizeArgs tokenize;
  int64_t vocab_size = 0;
  auto* k = app.add_subcommand("tokenize", "Train a tokenizer on text files and write it; optionally "
                                           "write the corpus as a token shard");
  k->add_option("files", tokenize.files, "fortune files (records between % lines) or text files (one "
                                         "record per line)")->required();
  k->add_option("--kind", tokenize.kind, "char, bpe or unigram (default bpe)")
      ->check(CLI::IsMember({"char", "bpe", "unigram"}));
  auto* vocab_opt = add_bounded(k, "--vocab-size", "--vocab-size", vocab_size, int64_t{5},
                                int64_t{1} << 21, "ids in all, the 4 special tokens included (bpe/unigram "
                                "default 8000; char: keep the most frequent characters)");
  k->add_option("-o,--output", tokenize.output, "tokenizer file to write")->required();
  k->add_option("--shards", tokenize.shards, "also write the corpus, <eos> between records, as a token "
                                             "shard");
  k->add_option("--format", tokenize.format, "auto (.txt: lines; a file with % lines: fortune), fortune "
                                             "or lines")->check(CLI::IsMember({"auto", "fortune", "lines"}));
  k->add_option("--character-coverage", tokenize.character_coverage,
                "bpe/unigram: share of the characters that get a piece (default 0.9995)")
      ->check(CLI::Range(0.98, 1.0));
  add_bounded(k, "--max-sentence-length", "--max-sentence-length", tokenize.max_sentence_length,
              int64_t{1}, int64_t{65535}, "bpe/unigram: longest record in bytes (default 16384)");
  k->add_option("--seed", tokenize.seed, "bpe/unigram: SentencePiece's random seed (default 0)");

  GenerateArgs gen;
  auto* g = app.add_subcommand("generate", "Generate text from a language model (a GPT model file)");
  g->add_option("model", gen.model, "language-model file")->required()->check(CLI::ExistingFile);
  g->add_option("--adapter", gen.adapter, "a LoRA adapter file (neutrino train with a lora "
                                         "section) to apply to the model, its base")
      ->check(CLI::ExistingFile);
  g->add_option("--prompt", gen.prompts, "prompt text; repeat for several prompts in one batch")
      ->required();
  // Ranges are checked by generate() itself, so a bad value is a one-line error with exit 1.
  g->add_option("--max-tokens", gen.max_tokens, "new tokens per prompt (default 100)");
  g->add_option("--temperature", gen.temperature, "sampling temperature; 0 is greedy (default 1)");
  g->add_option("--top-k", gen.top_k, "sample among the k most likely tokens; 0: all (default 0)");
  g->add_option("--top-p", gen.top_p, "nucleus sampling: the smallest set of tokens with this "
                                      "probability (default 1: off)");
  g->add_option("--seed", gen.seed, "random seed (default 0)");
  g->add_option("--stop", gen.stop, "stop a prompt's generation at this text (repeatable)");
  g->add_flag("--stream", gen.stream, "print the text as it is generated (one prompt)");
  g->add_flag("--json", gen.json, "print one JSON object with every completion and the timings");
  g->add_flag("--truncate", gen.truncate, "cut a prompt too long for the context from the left "
                                          "instead of refusing it");
  g->add_flag("--no-cache", gen.no_cache, "recompute the whole sequence at every step (no KV cache)");

  ImportWeightsArgs import_args;
  auto* w = app.add_subcommand("import-weights", "Turn a PyTorch nanoGPT/GPT-2 state dict "
                                                 "(.safetensors) and a config into a model file");
  w->add_option("weights", import_args.weights, ".safetensors state dict")->required()->check(CLI::ExistingFile);
  w->add_option("--config", import_args.config, "YAML: GPT options, or a config with model: {GPT: ...}")
      ->required()->check(CLI::ExistingFile);
  w->add_option("--tokenizer", import_args.tokenizer, "tokenizer file (neutrino tokenize) to store "
                                                      "with the model")->check(CLI::ExistingFile);
  w->add_option("-o,--output", import_args.output, "model file to write")->required();

  auto* o = app.add_subcommand("options", "List every layer, optimizer and callback option a config "
                                          "takes, with its default");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    const int code = app.exit(error);
    return code == 0 ? 0 : 2;
  }
  try {
    if (*t) {
      if (*epochs_opt) train.epochs = epochs;
      if (*max_steps_opt) train.max_steps = max_steps;
      if (*seed_opt) train.seed = seed;
      if (*verbose_opt) train.verbose = verbose;
      return run_train(train);
    }
    if (*e) return run_eval(eval);
    if (*p) return run_predict(predict);
    if (*k) {
      if (*vocab_opt) tokenize.vocab_size = vocab_size;
      return run_tokenize(tokenize);
    }
    if (*d) return run_data(data_args);
    if (*g) return run_generate(gen);
    if (*w) return run_import_weights(import_args);
    if (*o) {
      fmt::print("{}", neutrino::cli::describe_config_options());
      return 0;
    }
    return run_summary(summary_path);
  } catch (const neutrino::InternalError& error) {
    fmt::print(stderr, "neutrino: internal error (please report): {}\n", error.what());
    return 70;
  } catch (const neutrino::Error& error) {
    fmt::print(stderr, "neutrino: error: {}\n", error.what());
    return 1;
  } catch (const std::bad_alloc&) {
    fmt::print(stderr, "neutrino: error: out of memory\n");
    return 1;
  } catch (const std::exception& error) {
    // Anything else that escaped is still one line and exit 1, never an abort.
    fmt::print(stderr, "neutrino: error: {}\n", error.what());
    return 1;
  } catch (...) {
    fmt::print(stderr, "neutrino: error: unknown exception\n");
    return 1;
  }
}
