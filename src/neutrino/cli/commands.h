// The neutrino command-line verbs as library functions (the executable in tools/ parses
// arguments and maps exceptions to exit codes): train, eval, predict, summary, tokenize.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace neutrino::cli {

struct TrainArgs {
  std::string config;
  std::string output;      // default: <config stem>.safetensors in the working directory
  std::string checkpoint;  // default: <output stem>.ckpt.safetensors, written after every epoch
  std::string resume;      // a checkpoint to continue from
  std::optional<int> epochs;
  std::optional<int64_t> max_steps;  // language-model configs: overrides train.max_steps
  std::optional<uint64_t> seed;
  std::optional<int> verbose;
  bool json = false;       // print the final test results as one JSON object
  // Time every training step per layer and print the means (`caffe time`), after the results.
  bool profile = false;
  int64_t profile_steps = 0;  // > 0: stop after this many profiled steps (implies profile)
  // "bf16" or "fp32": overrides the config's mixed_precision (and so the saved model's).
  std::string mixed_precision;
  // LoRA configs: fold the adapters into the weights and save a full model (as lora.merge: true)
  // instead of the adapters alone.
  bool merge = false;
};
// Trains, saves the model, and evaluates on data.test when the config has it. Returns the exit
// code (non-zero when training stopped on a NaN loss). A language-model config (cli/lm_config.h)
// goes to run_train_language_model.
int run_train(const TrainArgs& args);
// Fits the tokenizer (or takes init_from's), encodes the text into token shards, trains the GPT
// (train/lm_trainer.h) and saves it with its tokenizer, config and history; --json prints one
// object (train_loss, val_loss, perplexity, tokens_per_second, mfu, steps, history,
// trainable_parameters, total_parameters, output, output_bytes; with lora also adapter_bytes when
// the adapters are saved alone, and merged).
// Implemented in lm_train_command.cpp.
int run_train_language_model(const TrainArgs& args);

struct EvalArgs {
  std::string model;
  std::string data;         // a data spec: fashion_mnist:test, breast_cancer, a file path, or a
                            // YAML map as in a config ("{fortunes: [love, food], split: test}")
  bool json = false;
  bool report = false;      // per-class precision/recall/F1 and the confusion matrix
  int64_t batch_size = 256;
  std::string mixed_precision;  // "bf16" or "fp32"; empty: the policy saved in the model file
};
int run_eval(const EvalArgs& args);

struct PredictArgs {
  std::string model;
  std::string input;        // .npy, .csv (features only), .idx/.gz images, .png; for a text
                            // model, a text file of one input per line
  std::string text;         // one text, for a text model
  std::string output;       // .npy or .csv of the model's outputs; empty: print to stdout
  int64_t top_k = 1;
  int64_t batch_size = 256;
  std::string mixed_precision;  // "bf16" or "fp32"; empty: the policy saved in the model file
  // A .csv input's first row: true a header, false data; unset: data when it is all numbers.
  std::optional<bool> csv_header;
};
// Prints one line per input sample ("ROW: CLASS (SCORE) ..."), numbered from 0 in file order
// (for a CSV, the data rows, the header not counted), or writes them all to `output`.
int run_predict(const PredictArgs& args);

struct DataArgs {
  std::string spec;    // a data spec or a YAML map, as eval's --data
  std::string output;  // a .jsonl file; empty: stdout
};
// Writes a dataset's samples as JSON lines: {"text", "label", "class"} for text data (so that
// other tools see exactly the records and split neutrino trains on), {"x": [...], "label"} for
// the others.
int run_data(const DataArgs& args);

// Prints the Keras-style summary of a model file or a config.
int run_summary(const std::string& path);

struct TokenizeArgs {
  std::vector<std::string> files;  // fortune files or text files (data/text_records.h)
  std::string format = "auto";     // auto, fortune or lines
  std::string kind = "bpe";        // char, bpe or unigram
  std::optional<int64_t> vocab_size;  // bpe/unigram: default 8000; char: the most ids kept
  std::string output;              // the tokenizer's serialize() bytes
  std::string shards;              // optional: the whole corpus as a token shard
  double character_coverage = 0.9995;
  int64_t max_sentence_length = 1 << 14;
  uint64_t seed = 0;
};
// Trains a tokenizer on the files' records, writes it, and with `shards` the corpus (records
// joined with <eos> between them) as a token shard (data/token_shards.h). Prints the vocab size,
// the number of records and of tokens. Implemented in tokenize_command.cpp.
int run_tokenize(const TokenizeArgs& args);

struct GenerateArgs {
  std::string model;                 // a language-model file (train::save_language_model)
  std::string adapter;               // a LoRA adapter file trained on `model` (optional)
  std::vector<std::string> prompts;  // one or more; several run as one batch
  int64_t max_tokens = 100;
  double temperature = 1.0;          // 0: greedy
  int64_t top_k = 0;
  double top_p = 1.0;
  uint64_t seed = 0;
  std::vector<std::string> stop;     // generation of a row ends at the first of these texts
  bool stream = false;               // print tokens as they come (one prompt)
  bool json = false;
  bool truncate = false;             // cut prompts too long for the context from the left
  bool no_cache = false;             // recompute the whole sequence every step (the reference)
};
// Implemented in lm_commands.cpp, with import-weights and predict on token ids.
int run_generate(const GenerateArgs& args);

struct ImportWeightsArgs {
  std::string weights;    // a PyTorch state dict as .safetensors (nanoGPT / GPT-2 names)
  std::string config;     // YAML: GPT options, or a training config with model: {GPT: ...}
  std::string tokenizer;  // optional: a tokenizer file (neutrino tokenize) stored with the model
  std::string output;
};
int run_import_weights(const ImportWeightsArgs& args);

// predict for a language model: --input ids.npy (int64 [B, T]) -> --output logits.npy.
int predict_language_model(const PredictArgs& args);

}  // namespace neutrino::cli
