// Language-model training (nanoGPT's train.py as a library call): random windows of a token
// shard, next-token cross-entropy, gradient accumulation, AdamW with weight decay on the 2-D
// weights only, global-norm clipping, warmup + cosine learning rate, periodic evaluation on a
// fixed set of validation windows, and checkpoints from which a resumed run ends bit-identical to
// an uninterrupted one.
//
//   data::TokenShard train("train.shard"), val("val.shard");
//   nn::GPT gpt({.vocab_size = train.vocab_size(), .context = 128, .layers = 4, .heads = 4,
//                .d_model = 128});
//   LmTrainResult r = train_language_model(gpt, train, &val, {.max_steps = 2000});
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "neutrino/core/precision.h"
#include "neutrino/data/token_shards.h"
#include "neutrino/io/model_file.h"
#include "neutrino/nn/module.h"

namespace neutrino::nn {
class GPT;
}

namespace neutrino::train {

// Defaults follow nanoGPT's train.py where it has one (betas 0.9/0.95, weight decay 0.1, clip 1).
// Errors name the field as "train.<field>", the config section that sets it.
struct LmTrainOptions {
  int64_t max_steps = 1000;       // optimizer steps in all (a resumed run counts the earlier ones)
  int64_t batch_size = 32;        // windows per micro-batch
  int64_t context = 0;            // tokens per window; 0: the model's context (and never above it)
  int64_t grad_accumulation = 1;  // micro-batches per optimizer step
  int64_t eval_interval = 250;    // evaluate, log and checkpoint every this many steps (and at the end)
  int64_t eval_steps = 20;        // validation batches per evaluation
  double learning_rate = 1e-3;    // the peak, after warmup
  double min_lr = 1e-4;           // where the cosine decay ends
  int64_t warmup_steps = 100;
  int64_t lr_decay_steps = 0;     // the step the cosine reaches min_lr (warmup included); 0: max_steps
  double weight_decay = 0.1;      // on the decayed parameters only
  double beta_1 = 0.9;
  double beta_2 = 0.95;
  double epsilon = 1e-8;          // PyTorch's AdamW default (Keras's 1e-7 would differ from nanoGPT)
  double grad_clip = 1.0;         // global gradient norm; 0: no clipping
  Precision mixed_precision = Precision::kFloat32;  // kBFloat16: forward/backward under autocast
  uint64_t seed = 1337;           // training windows and dropout; validation windows derive from it
  int64_t log_interval = 0;       // > 0: also a short line (step, loss, lr) every this many steps
  // Written at every evaluation; "{step}" in it becomes the step number (one file per
  // evaluation, else each replaces the last). Empty: no checkpoints.
  std::string checkpoint_path = {};
  std::string resume_from = {};      // a checkpoint of the same model and data to continue
  int verbose = 1;                // 0: silent; 1: a line per evaluation
  // Parameter name patterns (* and ? as in shell globs: "transformer.h.0.*") that are not trained:
  // they get no gradient and are not given to the optimizer.
  std::vector<std::string> freeze = {};
};

// What the trainer needs of a model beyond nn::Module: forward(tokens (B, T) int64) must give
// logits (B, T, vocab).
struct LanguageModelSpec {
  std::string architecture;                // the checkpoints' architecture JSON
  int64_t context = 0;                     // the longest window the model takes
  std::vector<std::string> decayed;        // parameter names weight decay applies to
  std::vector<std::string> frozen = {};    // names the model keeps out of training (LoRA's base)
  std::function<double(int64_t)> flops_per_token;  // training FLOPs per token at length T; may be empty
};

struct LmEvalPoint {
  int64_t step = 0;
  double train_loss = 0;  // mean training loss over the steps since the previous point
  double val_loss = 0;    // NaN without validation data
};

struct LmTrainResult {
  double train_loss = 0;  // the last logged average
  double val_loss = 0;    // the last evaluation's (NaN without validation data)
  double perplexity = 0;  // exp(val_loss)
  double tokens_per_second = 0;  // training tokens over training time (evaluations excluded)
  double mfu = 0;                // model FLOPs utilization, a fraction of cpu_peak_flops()
  int64_t steps = 0;             // steps taken in all, a resumed run's earlier ones included
  bool stopped_on_nan = false;   // a non-finite loss: that step's update was not applied
  int64_t trainable_parameters = 0;  // the elements the optimizer updates
  int64_t total_parameters = 0;      // every parameter's elements, frozen ones included
  std::vector<LmEvalPoint> history;
};

// The history as JSON text: [{"step": 250, "train_loss": ..., "val_loss": ...}, ...] (null for
// a missing validation loss), for a model file's info.extra["history"].
std::string history_json(const std::vector<LmEvalPoint>& history);

// A peak-FLOPs estimate of this CPU for the MFU figure, and the assumption behind it in words.
struct PeakFlops {
  double flops_per_second = 0;
  std::string assumption;
};
PeakFlops cpu_peak_flops();

// Trains `model` in place. `info` goes into every checkpoint (the tokenizer, the config).
LmTrainResult train_language_model(nn::Module& model, const LanguageModelSpec& spec,
                                   const data::TokenShard& train, const data::TokenShard* val,
                                   const LmTrainOptions& options, const io::ModelInfo& info = {});
// A GPT: its architecture, context, decayed_parameter_names() and training_flops_per_token().
// Implemented in lm_trainer_gpt.cpp.
LanguageModelSpec language_model_spec(const nn::GPT& model);
LmTrainResult train_language_model(nn::GPT& model, const data::TokenShard& train,
                                   const data::TokenShard* val, const LmTrainOptions& options,
                                   const io::ModelInfo& info = {});

// Whether `name` matches a freeze pattern (* any run of characters, ? one character).
bool matches_any(const std::string& name, const std::vector<std::string>& patterns);

}  // namespace neutrino::train
