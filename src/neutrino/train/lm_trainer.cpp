#include "neutrino/train/lm_trainer.h"

#include <fnmatch.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <limits>
#include <set>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "neutrino/autograd/autograd.h"
#include "neutrino/backend/thread_budget.h"
#include "neutrino/core/error.h"
#include "neutrino/core/random.h"
#include "neutrino/ops/ops.h"
#include "neutrino/optim/optimizer.h"
#include "neutrino/train/callbacks.h"

namespace neutrino::train {

namespace {

using Clock = std::chrono::steady_clock;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// The validation windows' seed, apart from the training windows' so the two streams differ even
// when train and validation are the same shard.
constexpr uint64_t kValidationSeedOffset = 0x9e3779b97f4a7c15ULL;

void check_options(const LmTrainOptions& o, const LanguageModelSpec& spec) {
  NEUTRINO_CHECK_VALUE(o.max_steps >= 0, "train.max_steps: must be >= 0, got {}", o.max_steps);
  NEUTRINO_CHECK_VALUE(o.batch_size >= 1, "train.batch_size: must be >= 1, got {}", o.batch_size);
  NEUTRINO_CHECK_VALUE(o.context >= 0 && o.context <= spec.context,
                       "train.context: must be from 1 to the model's context {} (0: the model's), "
                       "got {}", spec.context, o.context);
  NEUTRINO_CHECK_VALUE(o.grad_accumulation >= 1, "train.grad_accumulation: must be >= 1, got {}",
                       o.grad_accumulation);
  NEUTRINO_CHECK_VALUE(o.eval_interval >= 1, "train.eval_interval: must be >= 1, got {}",
                       o.eval_interval);
  NEUTRINO_CHECK_VALUE(o.eval_steps >= 1, "train.eval_steps: must be >= 1, got {}", o.eval_steps);
  NEUTRINO_CHECK_VALUE(o.learning_rate >= 0, "train.learning_rate: must be >= 0, got {}",
                       o.learning_rate);
  NEUTRINO_CHECK_VALUE(o.min_lr >= 0 && o.min_lr <= o.learning_rate,
                       "train.min_lr: must be from 0 to learning_rate ({}), got {}",
                       o.learning_rate, o.min_lr);
  NEUTRINO_CHECK_VALUE(o.warmup_steps >= 0, "train.warmup_steps: must be >= 0, got {}",
                       o.warmup_steps);
  NEUTRINO_CHECK_VALUE(o.lr_decay_steps == 0 || o.lr_decay_steps >= o.warmup_steps,
                       "train.lr_decay_steps: must be 0 (max_steps) or >= warmup_steps ({}), got {}",
                       o.warmup_steps, o.lr_decay_steps);
  NEUTRINO_CHECK_VALUE(o.weight_decay >= 0, "train.weight_decay: must be >= 0, got {}",
                       o.weight_decay);
  NEUTRINO_CHECK_VALUE(o.grad_clip >= 0, "train.grad_clip: must be >= 0, got {}", o.grad_clip);
  NEUTRINO_CHECK_VALUE(o.log_interval >= 0, "train.log_interval: must be >= 0, got {}",
                       o.log_interval);
}

// The trained parameters and their decay flags; frozen ones stop collecting gradients.
struct Trainable {
  std::vector<Tensor> params;
  std::vector<bool> decay;
  int64_t count = 0;  // trained elements
  int64_t total = 0;  // every parameter's elements
};

Trainable trainable_parameters(nn::Module& model, const LanguageModelSpec& spec,
                               const std::vector<std::string>& freeze) {
  const std::set<std::string> decayed(spec.decayed.begin(), spec.decayed.end());
  const std::set<std::string> kept(spec.frozen.begin(), spec.frozen.end());
  std::vector<bool> pattern_used(freeze.size(), false);
  Trainable out;
  for (auto& [name, p] : model.named_parameters()) {
    out.total += p.numel();
    bool frozen = kept.count(name) > 0;
    for (size_t i = 0; i < freeze.size(); ++i) {
      if (matches_any(name, {freeze[i]})) frozen = pattern_used[i] = true;
    }
    Tensor param = p;
    param.set_requires_grad(!frozen);
    if (frozen) continue;
    out.count += p.numel();
    out.params.push_back(param);
    out.decay.push_back(decayed.count(name) > 0);
  }
  for (size_t i = 0; i < freeze.size(); ++i) {
    // A pattern that freezes nothing is a typo, not a no-op to pass over.
    NEUTRINO_CHECK_VALUE(pattern_used[i], "train.freeze[{}]: '{}' matches no parameter name", i,
                         freeze[i]);
  }
  NEUTRINO_CHECK_VALUE(!out.params.empty(), "train.freeze: every parameter is frozen");
  return out;
}

// One training run's moving parts.
class LmRun {
 public:
  LmRun(nn::Module& model, const LanguageModelSpec& spec, const data::TokenShard& train,
        const data::TokenShard* val, const LmTrainOptions& o, const io::ModelInfo& info)
      : model_(model), spec_(spec), val_(val), o_(o), info_(info),
        context_(o.context > 0 ? o.context : spec.context),
        optimizer_({.learning_rate = o.learning_rate, .beta_1 = o.beta_1, .beta_2 = o.beta_2,
                    .epsilon = o.epsilon, .weight_decay = o.weight_decay,
                    .global_clipnorm = o.grad_clip}),
        generator_(o.seed), windows_(train, context_, o.seed) {
    Trainable t = trainable_parameters(model, spec, o.freeze);
    trainable_count_ = t.count;
    total_count_ = t.total;
    optimizer_.attach(std::move(t.params), std::move(t.decay));
    optimizer_.set_schedule(warmup_cosine_decay(
        o.learning_rate, o.min_lr, std::min(o.warmup_steps, decay_steps()), decay_steps()));
  }

  LmTrainResult run();

 private:
  int64_t decay_steps() const { return o_.lr_decay_steps > 0 ? o_.lr_decay_steps : o_.max_steps; }
  double train_step();
  double evaluate();
  Tensor loss_of(const Tensor& windows);
  void resume(const std::string& path);
  void write_checkpoint() const;
  void log_point(const LmEvalPoint& point, double seconds) const;
  double tokens_per_second() const;

  nn::Module& model_;
  const LanguageModelSpec& spec_;
  const data::TokenShard* val_;
  const LmTrainOptions& o_;
  const io::ModelInfo& info_;
  int64_t context_;
  optim::AdamW optimizer_;
  Generator generator_;  // dropout's draws, under a GeneratorGuard while training
  data::TokenWindows windows_;
  int64_t step_ = 0;
  std::vector<LmEvalPoint> history_;
  double window_loss_ = 0;  // summed training losses since the last evaluation
  int64_t window_steps_ = 0;
  double train_seconds_ = 0;  // this process's training time, evaluations excluded
  int64_t trained_tokens_ = 0;
  int64_t trainable_count_ = 0, total_count_ = 0;
};

// Mean next-token cross-entropy over every position of windows (B, T + 1).
Tensor LmRun::loss_of(const Tensor& windows) {
  const int64_t b = windows.size(0);
  const Tensor x = contiguous(slice(windows, 1, 0, context_));
  const Tensor y = contiguous(slice(windows, 1, 1, context_ + 1));
  PrecisionGuard precision(o_.mixed_precision);
  const Tensor logits = model_.forward(x);
  NEUTRINO_CHECK_SHAPE(logits.dim() == 3 && logits.size(0) == b && logits.size(1) == context_,
                       "language model: logits must be (B, T, vocab) = ({}, {}, V), got {}", b,
                       context_, logits.shape_string());
  return softmax_cross_entropy(reshape(logits, {b * context_, logits.size(2)}),
                               reshape(y, {b * context_}));
}

// One optimizer step over grad_accumulation micro-batches; returns the step's mean loss (NaN:
// no update made).
double LmRun::train_step() {
  optimizer_.zero_grad();
  double total = 0;
  const double scale = 1.0 / static_cast<double>(o_.grad_accumulation);
  for (int64_t micro = 0; micro < o_.grad_accumulation; ++micro) {
    const Tensor loss = loss_of(windows_.next_batch(o_.batch_size));
    const double value = loss.item();
    if (!std::isfinite(value)) return kNaN;
    backward(mul(loss, scale));
    total += value * scale;
  }
  optimizer_.step();
  return total;
}

// The mean loss over eval_steps batches of validation windows, the same windows every time.
double LmRun::evaluate() {
  if (val_ == nullptr) return kNaN;
  nn::EvalModeGuard eval_mode;
  NoGradGuard no_grad;
  data::TokenWindows windows(*val_, context_, o_.seed + kValidationSeedOffset);
  double total = 0;
  for (int64_t i = 0; i < o_.eval_steps; ++i) total += loss_of(windows.next_batch(o_.batch_size)).item();
  return total / static_cast<double>(o_.eval_steps);
}

double LmRun::tokens_per_second() const {
  return train_seconds_ > 0 ? static_cast<double>(trained_tokens_) / train_seconds_ : 0;
}

void LmRun::log_point(const LmEvalPoint& p, double seconds) const {
  if (o_.verbose <= 0) return;
  const double tps = tokens_per_second();
  std::string line = fmt::format("step {}: train loss {:.4f}", p.step, p.train_loss);
  if (!std::isnan(p.val_loss)) {
    line += fmt::format(", val loss {:.4f}, perplexity {:.2f}", p.val_loss, std::exp(p.val_loss));
  }
  line += fmt::format(", lr {:.3e}, {:.0f} tokens/s", optimizer_.learning_rate(), tps);
  if (spec_.flops_per_token) {
    const double mfu = spec_.flops_per_token(context_) * tps / cpu_peak_flops().flops_per_second;
    line += fmt::format(", MFU {:.2f}%", 100.0 * mfu);
  }
  fmt::print("{}, {:.1f} s\n", line, seconds);
  std::fflush(stdout);
}

LmTrainResult LmRun::run() {
  if (!o_.resume_from.empty()) resume(o_.resume_from);
  GeneratorGuard generator_guard(generator_);
  model_.train();
  const auto start = Clock::now();
  const int64_t tokens_per_step = o_.batch_size * o_.grad_accumulation * context_;
  LmTrainResult result;
  result.trainable_parameters = trainable_count_;
  result.total_parameters = total_count_;
  if (o_.verbose > 0) {
    // PEFT's print_trainable_parameters line.
    fmt::print("trainable params: {} || all params: {} || trainable%: {:.4f}\n", trainable_count_,
               total_count_, 100.0 * static_cast<double>(trainable_count_) /
                                 static_cast<double>(std::max<int64_t>(1, total_count_)));
    std::fflush(stdout);
  }
  while (step_ < o_.max_steps) {
    const auto t0 = Clock::now();
    const double loss = train_step();
    train_seconds_ += std::chrono::duration<double>(Clock::now() - t0).count();
    if (std::isnan(loss)) {
      result.stopped_on_nan = true;
      break;
    }
    ++step_;
    trained_tokens_ += tokens_per_step;
    window_loss_ += loss;
    ++window_steps_;
    if (o_.verbose > 0 && o_.log_interval > 0 && step_ % o_.log_interval == 0) {
      fmt::print("step {}: loss {:.4f}, lr {:.3e}\n", step_, loss, optimizer_.learning_rate());
    }
    if (step_ % o_.eval_interval != 0 && step_ != o_.max_steps) continue;
    LmEvalPoint point{.step = step_, .train_loss = window_loss_ / static_cast<double>(window_steps_),
                      .val_loss = evaluate()};
    history_.push_back(point);
    window_loss_ = 0;
    window_steps_ = 0;
    log_point(point, std::chrono::duration<double>(Clock::now() - start).count());
    // The last step's checkpoint too: a resume of a finished run then trains no further.
    if (!o_.checkpoint_path.empty()) write_checkpoint();
  }
  model_.eval();
  result.steps = step_;
  result.history = history_;
  if (!history_.empty()) {
    result.train_loss = history_.back().train_loss;
    result.val_loss = history_.back().val_loss;
  } else {
    result.val_loss = kNaN;
  }
  result.perplexity = std::exp(result.val_loss);
  result.tokens_per_second = tokens_per_second();
  if (spec_.flops_per_token) {
    result.mfu = spec_.flops_per_token(context_) * result.tokens_per_second /
                 cpu_peak_flops().flops_per_second;
  }
  return result;
}

std::map<std::string, std::vector<double>> history_columns(const std::vector<LmEvalPoint>& h) {
  std::map<std::string, std::vector<double>> out{{"step", {}}, {"train_loss", {}}, {"val_loss", {}}};
  for (const LmEvalPoint& p : h) {
    out["step"].push_back(static_cast<double>(p.step));
    out["train_loss"].push_back(p.train_loss);
    out["val_loss"].push_back(p.val_loss);
  }
  return out;
}

void LmRun::write_checkpoint() const {
  io::ModelFile file{.architecture = spec_.architecture,
                     .mixed_precision = o_.mixed_precision,
                     .info = info_,
                     .weights = model_.state_dict()};
  file.training.rng_state = generator_.state();
  file.training.history = history_columns(history_);
  file.training.optimizer = optimizer_.name();
  file.training.steps_done = step_;
  file.training.data_position = windows_.position();
  file.optimizer_state = optimizer_.state();
  std::string path = o_.checkpoint_path;
  if (const size_t at = path.find("{step}"); at != std::string::npos) {
    path.replace(at, 6, std::to_string(step_));
  }
  io::write_model_file(path, file, io::ModelFileKind::kCheckpoint);
}

void LmRun::resume(const std::string& path) {
  io::ModelFile file = io::read_model_file(path, io::ModelFileKind::kCheckpoint);
  NEUTRINO_CHECK_IO(file.architecture == spec_.architecture,
                    "{}: the checkpoint holds another model than the config's (architecture {} "
                    "against {})", path, file.architecture, spec_.architecture);
  NEUTRINO_CHECK_IO(file.training.optimizer == optimizer_.name(),
                    "{}: saved with optimizer {}, but language models train with {}", path,
                    file.training.optimizer, optimizer_.name());
  const auto& h = file.training.history;
  const bool columns = h.count("step") && h.count("train_loss") && h.count("val_loss") &&
                       h.at("step").size() == h.at("train_loss").size() &&
                       h.at("step").size() == h.at("val_loss").size();
  NEUTRINO_CHECK_IO(columns, "{}: training_state.history: expected step, train_loss and val_loss "
                    "columns of one length", path);
  try {
    model_.load_state_dict(file.weights);
    optimizer_.load_state(file.optimizer_state);
    generator_.set_state(file.training.rng_state);
    windows_.seek(file.training.data_position);
  } catch (const IOError&) {
    throw;
  } catch (const Error& e) {
    throw IOError(fmt::format("{}: {}", path, e.what()));
  }
  NEUTRINO_CHECK_IO(optimizer_.iterations() == file.training.steps_done,
                    "{}: training_state.steps_done ({}) differs from the optimizer's iterations ({})",
                    path, file.training.steps_done, optimizer_.iterations());
  step_ = file.training.steps_done;
  history_.clear();
  for (size_t i = 0; i < h.at("step").size(); ++i) {
    history_.push_back({static_cast<int64_t>(h.at("step")[i]), h.at("train_loss")[i], h.at("val_loss")[i]});
  }
}

// This CPU's clock in GHz from /proc/cpuinfo's first "cpu MHz" line; 0 when there is none.
double cpu_ghz() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (!line.starts_with("cpu MHz")) continue;
    const size_t colon = line.find(':');
    if (colon == std::string::npos) break;
    try {
      return std::stod(line.substr(colon + 1)) / 1000.0;
    } catch (const std::exception&) {
      break;
    }
  }
  return 0;
}

}  // namespace

bool matches_any(const std::string& name, const std::vector<std::string>& patterns) {
  for (const std::string& p : patterns) {
    if (fnmatch(p.c_str(), name.c_str(), 0) == 0) return true;
  }
  return false;
}

std::string history_json(const std::vector<LmEvalPoint>& history) {
  nlohmann::json out = nlohmann::json::array();
  for (const LmEvalPoint& p : history) {
    out.push_back({{"step", p.step},
                   {"train_loss", p.train_loss},
                   {"val_loss", std::isfinite(p.val_loss) ? nlohmann::json(p.val_loss) : nullptr}});
  }
  return out.dump();
}

// The one place the MFU assumption lives: every core the thread budget gives us runs two
// AVX-512 FMA pipes of 16 float32 lanes each, 2 FLOPs per lane per cycle (64 FLOPs/cycle/core),
// at the clock /proc/cpuinfo reports (2.5 GHz when it reports none). Zen 4 runs AVX-512 on
// 256-bit pipes, so there the true peak is half this and MFU reads low by 2x; SMT siblings
// counted as cores overstate the peak the same way.
// FP32 FLOPs per cycle per core: two FMA pipes of 16 lanes on Intel's AVX-512 cores; AMD's Zen 4
// runs AVX-512 on two 256-bit pipes (8 lanes each), as AVX2-only cores do.
static std::pair<double, const char*> flops_per_cycle() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && !__builtin_cpu_is("amd")) {
    return {2 * 16 * 2, "2 AVX-512 FMA pipes"};
  }
  return {2 * 8 * 2, "2 256-bit FMA pipes"};
}

PeakFlops cpu_peak_flops() {
  const auto [per_cycle, pipes] = flops_per_cycle();
  const double measured = cpu_ghz();
  const double ghz = measured > 0 ? measured : 2.5;
  const int cores = std::max(1, kernels::follow_load());
  return {.flops_per_second = cores * ghz * 1e9 * per_cycle,
          .assumption = fmt::format("{} cores x {:.2f} GHz x {} FLOPs/cycle ({})", cores, ghz,
                                    per_cycle, pipes)};
}

LmTrainResult train_language_model(nn::Module& model, const LanguageModelSpec& spec,
                                   const data::TokenShard& train, const data::TokenShard* val,
                                   const LmTrainOptions& options, const io::ModelInfo& info) {
  check_options(options, spec);
  LmRun run(model, spec, train, val, options, info);
  return run.run();
}

}  // namespace neutrino::train
