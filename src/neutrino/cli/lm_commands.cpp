// The language-model verbs: generate, import-weights, and predict on token ids.
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include <fmt/core.h>

#include "neutrino/cli/commands.h"
#include "neutrino/cli/config.h"
#include "neutrino/core/error.h"
#include "neutrino/data/npy.h"
#include "neutrino/data/tokenizer.h"
#include "neutrino/data/utf8.h"
#include "neutrino/io/base64.h"
#include "neutrino/io/config_reader.h"
#include "neutrino/io/file_io.h"
#include "neutrino/io/tensor_file.h"
#include "neutrino/nn/module.h"
#include "neutrino/ops/ops.h"
#include "neutrino/train/language_model.h"
#include "neutrino/train/lora_adapter.h"

namespace neutrino::cli {

using nlohmann::json;

namespace {

// A prompt's ids; a char model refuses characters it has never seen instead of guessing <unk>.
std::vector<int64_t> encode_prompt(const data::Tokenizer& tok, const std::string& prompt) {
  std::vector<int64_t> ids = tok.encode(prompt);
  if (tok.kind() == "char") {
    std::string unknown;
    const std::vector<char32_t> chars = data::decode_utf8(prompt, "--prompt");
    for (size_t i = 0; i < ids.size() && i < chars.size(); ++i) {
      std::string c;
      data::append_utf8(chars[i], c);
      if (ids[i] == data::Tokenizer::kUnk && unknown.find(c) == std::string::npos) unknown += c;
    }
    NEUTRINO_CHECK_VALUE(unknown.empty(),
                         "--prompt: characters the model's vocabulary does not have: \"{}\"", unknown);
  }
  NEUTRINO_CHECK_VALUE(!ids.empty(), "--prompt: empty prompt");
  return ids;
}

// Where the stop text starts in `text`, or npos.
size_t stop_position(const std::string& text, const std::vector<std::string>& stops) {
  size_t best = std::string::npos;
  for (const auto& s : stops) best = std::min(best, text.find(s));
  return best;
}

// The longest prefix of text[0, n) that does not end inside a UTF-8 sequence.
size_t complete_utf8_prefix(const std::string& text, size_t n) {
  while (n > 0 && n < text.size() && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
  return n;
}

// How much of a streamed row can be printed: complete UTF-8 that no stop text can still start in.
size_t printable_prefix(const std::string& text, bool stopped, const std::vector<std::string>& stops) {
  size_t safe = text.size();
  if (stopped) return safe;
  for (const auto& s : stops) safe = std::min(safe, text.size() >= s.size() - 1 ? text.size() - (s.size() - 1) : 0);
  return complete_utf8_prefix(text, safe);
}

}  // namespace

int run_generate(const GenerateArgs& args) {
  auto [model, info] = train::load_language_model(args.model);
  if (!args.adapter.empty()) {
    // The adapters run beside the base weights (unmerged), as PEFT's PeftModel.from_pretrained.
    const train::LoraAdapterFile adapter = train::read_lora_adapter(args.adapter);
    if (train::apply_lora_adapter(*model, adapter, args.adapter) == train::BaseCheck::kOtherWeights) {
      fmt::print(stderr, "note: {} was trained on other base weights than {} (same architecture)\n",
                 args.adapter, args.model);
    }
    model->eval();
  }
  const auto tok = data::tokenizer_of_model_info(info.extra, args.model);
  NEUTRINO_CHECK_VALUE(!args.prompts.empty(), "--prompt: at least one prompt is needed");
  for (const auto& s : args.stop) NEUTRINO_CHECK_VALUE(!s.empty(), "--stop: an empty stop text");
  std::vector<std::vector<int64_t>> prompts;
  for (const auto& p : args.prompts) prompts.push_back(encode_prompt(*tok, p));
  nn::GenerateOptions options{.max_tokens = args.max_tokens,
                              .temperature = args.temperature,
                              .top_k = args.top_k,
                              .top_p = args.top_p,
                              .seed = args.seed,
                              .use_cache = !args.no_cache,
                              .truncate_prompt = args.truncate};
  // Stop texts are matched on the decoded text of each row (a token sequence may spell the
  // same text in several ways), after every step.
  std::vector<std::vector<int64_t>> generated(prompts.size());
  std::vector<std::string> texts(prompts.size());
  std::vector<bool> stopped(prompts.size(), false);
  const bool single = prompts.size() == 1;
  size_t printed = 0;
  auto on_token = [&](const std::vector<int64_t>& next) {
    bool running = false;
    for (size_t r = 0; r < next.size(); ++r) {
      if (next[r] < 0 || stopped[r]) continue;
      generated[r].push_back(next[r]);
      texts[r] = tok->decode(generated[r]);
      const size_t at = stop_position(texts[r], args.stop);
      if (at != std::string::npos) {
        texts[r].resize(at);
        stopped[r] = true;
      }
      running = running || !stopped[r];
    }
    if (args.stream && single && !args.json) {
      const size_t safe = printable_prefix(texts[0], stopped[0], args.stop);
      if (safe > printed) {
        fmt::print("{}", texts[0].substr(printed, safe - printed));
        std::fflush(stdout);
        printed = safe;
      }
    }
    return running;
  };
  const nn::GenerateResult result = nn::generate(*model, prompts, options, on_token);
  int64_t new_tokens = 0;
  for (const auto& g : generated) new_tokens += static_cast<int64_t>(g.size());
  const double tps = result.seconds > 0 ? static_cast<double>(new_tokens) / result.seconds : 0.0;
  if (args.json) {
    json rows = json::array();
    for (size_t r = 0; r < prompts.size(); ++r) {
      rows.push_back({{"prompt", args.prompts[r]},
                      {"text", texts[r]},
                      {"tokens", generated[r].size()},
                      {"finish_reason", stopped[r] ? "stop" : "length"}});
    }
    fmt::print("{}\n", json{{"completions", rows},
                            {"prompt_tokens", result.prompt_tokens},
                            {"completion_tokens", new_tokens},
                            {"seconds", result.seconds},
                            {"tokens_per_second", tps}}
                           .dump());
    return 0;
  }
  if (args.stream && single) {
    fmt::print("{}\n", texts[0].substr(std::min(printed, texts[0].size())));
  } else {
    for (size_t r = 0; r < prompts.size(); ++r) {
      if (!single) fmt::print("--- {} ---\n", r);
      fmt::print("{}{}\n", args.prompts[r], texts[r]);
    }
  }
  fmt::print(stderr, "{} tokens in {:.3f} s ({:.1f} tokens/s)\n", new_tokens, result.seconds, tps);
  return 0;
}

int run_import_weights(const ImportWeightsArgs& args) {
  const json root = io::parse_json(read_config_json(args.config), args.config);
  NEUTRINO_CHECK_VALUE(root.is_object(), "{}: expected a map", args.config);
  // A training config (model: {GPT: {...}}) or a bare map of GPT options.
  json options = root;
  if (root.contains("model")) {
    io::ConfigReader model(root["model"], "model");
    NEUTRINO_CHECK_VALUE(model.has("GPT"), "{}: model: expected a GPT: {{...}} section", args.config);
    options = model.get_raw("GPT");
  }
  std::unique_ptr<data::Tokenizer> tok;
  if (!args.tokenizer.empty()) {
    const std::vector<uint8_t> bytes = io::read_file(args.tokenizer);
    tok = data::load_tokenizer(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()),
                               args.tokenizer);
    if (!options.contains("vocab_size")) options["vocab_size"] = tok->vocab_size();
  }
  const nn::GPTOptions o =
      nn::gpt_options_from_json(options.dump(), args.config + ": GPT");
  NEUTRINO_CHECK_VALUE(!tok || tok->vocab_size() <= o.vocab_size,
                       "{}: the tokenizer has {} ids, more than vocab_size {}", args.tokenizer,
                       tok ? tok->vocab_size() : 0, o.vocab_size);
  io::TensorFile file = io::load_tensors(args.weights);
  nn::GPT model(o);
  try {
    model.load_state_dict(train::adapt_imported_state(o, std::move(file.tensors), args.weights));
  } catch (const Error& e) {
    throw ValueError(fmt::format("{}: {}", args.weights, e.what()));
  }
  io::ModelInfo info;
  if (tok) info.extra["tokenizer"] = io::base64_encode(tok->serialize());
  info.extra["imported_from"] = std::filesystem::path(args.weights).filename().string();
  train::save_language_model(args.output, model, info);
  fmt::print("imported {} tensors ({} parameters) into {}\n", model.state_dict().size(),
             model.parameter_count(), args.output);
  return 0;
}

int predict_language_model(const PredictArgs& args) {
  NEUTRINO_CHECK_VALUE(args.text.empty() && args.input.ends_with(".npy"),
                       "predict: a language model takes token ids: --input IDS.npy (int64 [batch, "
                       "steps])");
  NEUTRINO_CHECK_VALUE(args.output.ends_with(".npy"),
                       "predict: a language model writes logits: --output LOGITS.npy");
  auto [model, info] = train::load_language_model(args.model);
  const Tensor ids = data::read_npy(args.input);
  NEUTRINO_CHECK_VALUE(ids.dtype() == DType::kInt64 && ids.dim() == 2,
                       "{}: expected int64 token ids [batch, steps], got {} {}", args.input,
                       dtype_name(ids.dtype()), ids.shape_string());
  for (int64_t v : ids.to_vector<int64_t>()) {
    NEUTRINO_CHECK_VALUE(v >= 0 && v < model->options().vocab_size,
                         "{}: token {} is outside the vocabulary of {}", args.input, v,
                         model->options().vocab_size);
  }
  nn::EvalModeGuard eval;
  NoGradGuard no_grad;
  const Tensor logits = model->forward(ids);
  data::write_npy(args.output, logits);
  fmt::print("wrote logits {} to {}\n", logits.shape_string(), args.output);
  return 0;
}

}  // namespace neutrino::cli
