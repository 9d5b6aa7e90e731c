#include "neutrino/train/callbacks.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <numbers>

#include <nlohmann/json.hpp>

#include "neutrino/io/config_reader.h"
#include "neutrino/train/model_file.h"
#include "neutrino/train/model.h"

namespace neutrino::train {

using nlohmann::json;

namespace {
double logged(const Logs& logs, const std::string& key, const std::string& who) {
  auto it = logs.find(key);
  if (it != logs.end()) return it->second;
  std::string known;
  for (const auto& [name, value] : logs) known += (known.empty() ? "" : ", ") + name;
  throw ValueError(fmt::format("{}: monitored value '{}' is not in the logs (available: {})", who,
                               key, known));
}

// The best value so far, left out while it is still the starting infinity (JSON has none).
void add_best(json& state, double best) {
  if (std::isfinite(best)) state["best"] = best;
}

Monitor make_monitor(const std::string& key, const std::string& mode, double min_delta,
                     const char* who) {
  NEUTRINO_CHECK_VALUE(mode == "auto" || mode == "min" || mode == "max",
                       "{}: mode must be auto, min or max, got '{}'", who, mode);
  return {key, mode, std::abs(min_delta)};
}
}  // namespace

bool Monitor::improved(double value, double best) const {
  const bool maximize = mode == "max" || (mode == "auto" && (key.find("acc") != std::string::npos ||
                                                             key.find("auc") != std::string::npos ||
                                                             key.find("f1") != std::string::npos ||
                                                             key.find("precision") != std::string::npos ||
                                                             key.find("recall") != std::string::npos));
  return maximize ? value > best + min_delta : value < best - min_delta;
}

double Monitor::worst() const {
  return improved(1.0, 0.0) ? -std::numeric_limits<double>::infinity()
                            : std::numeric_limits<double>::infinity();
}

// ---- EarlyStopping -------------------------------------------------------------------------

EarlyStopping::EarlyStopping(EarlyStoppingOptions options)
    : options_(std::move(options)),
      monitor_(make_monitor(options_.monitor, options_.mode, options_.min_delta, "EarlyStopping")) {
  NEUTRINO_CHECK_VALUE(options_.patience >= 0, "EarlyStopping: patience must be >= 0");
}

void EarlyStopping::on_train_begin(Model& /*model*/) {
  best_ = monitor_.worst();
  wait_ = 0;
  best_epoch_ = -1;
  stopped_epoch_ = -1;
  best_weights_.clear();
}

void EarlyStopping::on_epoch_end(Model& model, int epoch, const Logs& logs) {
  const double value = logged(logs, options_.monitor, "EarlyStopping");
  if (monitor_.improved(value, best_)) {
    best_ = value;
    best_epoch_ = epoch;
    wait_ = 0;
    if (options_.restore_best_weights) {
      best_weights_.clear();
      for (const auto& [name, t] : model.state_dict()) best_weights_[name] = clone(t.detach());
    }
    return;
  }
  if (++wait_ > options_.patience) {
    stopped_epoch_ = epoch;
    model.stop_training();
  }
}

void EarlyStopping::on_train_end(Model& model) {
  if (options_.restore_best_weights && stopped_epoch_ >= 0 && !best_weights_.empty()) {
    model.load_state_dict(best_weights_);
  }
}

std::string EarlyStopping::state() const {
  json s{{"wait", wait_}, {"best_epoch", best_epoch_}, {"stopped_epoch", stopped_epoch_}};
  add_best(s, best_);
  return s.dump();
}

void EarlyStopping::load_state(const std::string& json_text) {
  io::ConfigReader s(io::parse_json(json_text, "state"), "");
  best_ = s.get_double("best", monitor_.worst());
  wait_ = static_cast<int>(s.require_int("wait", 0, INT32_MAX));
  best_epoch_ = static_cast<int>(s.require_int("best_epoch", -1, INT32_MAX));
  stopped_epoch_ = static_cast<int>(s.get_int("stopped_epoch", -1, -1, INT32_MAX));
  s.finish();
}

void EarlyStopping::load_state_tensors(const std::map<std::string, Tensor>& tensors) {
  best_weights_.clear();
  for (const auto& [name, t] : tensors) best_weights_[name] = clone(t.detach());
}

// ---- ModelCheckpoint -----------------------------------------------------------------------

ModelCheckpoint::ModelCheckpoint(std::string filepath, ModelCheckpointOptions options)
    : filepath_(std::move(filepath)),
      options_(std::move(options)),
      monitor_(make_monitor(options_.monitor, options_.mode, 0.0, "ModelCheckpoint")) {
  NEUTRINO_CHECK_VALUE(!filepath_.empty(), "ModelCheckpoint: empty filepath");
}

void ModelCheckpoint::on_train_begin(Model& /*model*/) {
  has_best_ = false;
  best_ = monitor_.worst();
}

void ModelCheckpoint::on_epoch_end(Model& model, int epoch, const Logs& logs) {
  if (options_.save_best_only) {
    const double value = logged(logs, options_.monitor, "ModelCheckpoint");
    if (has_best_ && !monitor_.improved(value, best_)) return;
    best_ = value;
    has_best_ = true;
  }
  std::string path = filepath_;
  if (const size_t at = path.find("{epoch}"); at != std::string::npos) {
    path.replace(at, 7, std::to_string(epoch + 1));
  }
  const FitState* state = model.fit_state();
  save_model(path, model, state != nullptr ? state->model_info : ModelInfo{});
}

std::string ModelCheckpoint::state() const {
  json s{{"has_best", has_best_}};
  add_best(s, best_);
  return s.dump();
}

void ModelCheckpoint::load_state(const std::string& json_text) {
  io::ConfigReader s(io::parse_json(json_text, "state"), "");
  has_best_ = s.require_bool("has_best");
  best_ = has_best_ ? s.require_double("best") : s.get_double("best", monitor_.worst());
  s.finish();
}

// ---- CSVLogger -----------------------------------------------------------------------------

CSVLogger::CSVLogger(std::string filename, char separator, bool append)
    : filename_(std::move(filename)), separator_(separator), append_(append) {}

void CSVLogger::on_train_begin(Model& /*model*/) {
  // Asked of the file system, not by opening it: opening a FIFO for reading would block.
  std::error_code ec;
  header_written_ = append_ && std::filesystem::is_regular_file(filename_, ec);
  if (!append_) {
    std::ofstream out(filename_, std::ios::trunc);
    NEUTRINO_CHECK_IO(out.good(), "CSVLogger: cannot write {}", filename_);
  }
}

void CSVLogger::on_epoch_end(Model& /*model*/, int epoch, const Logs& logs) {
  std::ofstream out(filename_, std::ios::app);
  NEUTRINO_CHECK_IO(out.good(), "CSVLogger: cannot write {}", filename_);
  if (!header_written_) {
    out << "epoch";
    for (const auto& [name, value] : logs) out << separator_ << name;
    out << '\n';
    header_written_ = true;
  }
  out << epoch;
  for (const auto& [name, value] : logs) out << separator_ << fmt::format("{}", value);
  out << '\n';
}

// ---- TerminateOnNaN, LearningRateScheduler, ReduceLROnPlateau -------------------------------

bool TerminateOnNaN::on_loss(Model& model, int64_t step, double loss) {
  if (std::isfinite(loss)) return true;
  // Keeping this step would write NaN into every weight: stop before the update.
  const FitState* state = model.fit_state();
  fmt::print(stderr, "Epoch {}, batch {}: the loss is {}; training stopped before this update\n",
             state ? state->epoch + 1 : 0, step + 1, loss);
  if (state != nullptr && state->history != nullptr) state->history->stopped_on_nan = true;
  model.stop_training();
  return false;
}

LearningRateScheduler::LearningRateScheduler(std::function<double(int, double)> schedule,
                                             int verbose)
    : schedule_(std::move(schedule)), verbose_(verbose) {
  NEUTRINO_CHECK_VALUE(schedule_ != nullptr, "LearningRateScheduler: no schedule");
}

void LearningRateScheduler::on_epoch_begin(Model& model, int epoch) {
  const double lr = schedule_(epoch, model.optimizer().learning_rate());
  NEUTRINO_CHECK_VALUE(std::isfinite(lr) && lr >= 0,
                       "LearningRateScheduler: schedule returned {} for epoch {}", lr, epoch);
  model.optimizer().set_learning_rate(lr);
  if (verbose_ > 0) fmt::print("Epoch {}: LearningRateScheduler setting learning rate to {}.\n", epoch + 1, lr);
}

ReduceLROnPlateau::ReduceLROnPlateau(ReduceLROnPlateauOptions options)
    : options_(std::move(options)),
      monitor_(make_monitor(options_.monitor, options_.mode, options_.min_delta, "ReduceLROnPlateau")) {
  NEUTRINO_CHECK_VALUE(options_.factor > 0 && options_.factor < 1,
                       "ReduceLROnPlateau: factor must be in (0, 1), got {}", options_.factor);
}

void ReduceLROnPlateau::on_train_begin(Model& /*model*/) {
  best_ = monitor_.worst();
  wait_ = 0;
  cooldown_left_ = 0;
}

void ReduceLROnPlateau::on_epoch_end(Model& model, int /*epoch*/, const Logs& logs) {
  const double value = logged(logs, options_.monitor, "ReduceLROnPlateau");
  if (cooldown_left_ > 0) {
    --cooldown_left_;
    wait_ = 0;
  }
  if (monitor_.improved(value, best_)) {
    best_ = value;
    wait_ = 0;
  } else if (cooldown_left_ == 0 && ++wait_ >= options_.patience) {
    optim::Optimizer& opt = model.optimizer();
    opt.set_learning_rate(std::max(opt.learning_rate() * options_.factor, options_.min_lr));
    cooldown_left_ = options_.cooldown;
    wait_ = 0;
  }
}

std::string ReduceLROnPlateau::state() const {
  json s{{"wait", wait_}, {"cooldown", cooldown_left_}};
  add_best(s, best_);
  return s.dump();
}

void ReduceLROnPlateau::load_state(const std::string& json_text) {
  io::ConfigReader s(io::parse_json(json_text, "state"), "");
  best_ = s.get_double("best", monitor_.worst());
  wait_ = static_cast<int>(s.require_int("wait", 0, INT32_MAX));
  cooldown_left_ = static_cast<int>(s.require_int("cooldown", 0, INT32_MAX));
  s.finish();
}

// ---- schedules -----------------------------------------------------------------------------

std::function<double(int64_t)> step_decay(double initial, double drop, int64_t steps_per_drop) {
  NEUTRINO_CHECK_VALUE(initial >= 0 && drop > 0 && steps_per_drop > 0,
                       "step_decay: need initial >= 0, drop > 0, steps_per_drop > 0");
  return [=](int64_t step) {
    return initial * std::pow(drop, static_cast<double>(step / steps_per_drop));
  };
}

std::function<double(int64_t)> cosine_decay(double initial, int64_t decay_steps, double alpha,
                                            int64_t warmup_steps) {
  NEUTRINO_CHECK_VALUE(initial >= 0 && decay_steps > 0 && alpha >= 0 && alpha <= 1 && warmup_steps >= 0,
                       "cosine_decay: need initial >= 0, decay_steps > 0, alpha in [0, 1], "
                       "warmup_steps >= 0");
  return [=](int64_t step) {
    if (step < warmup_steps) {
      return initial * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
    }
    const double t = std::min<double>(static_cast<double>(step - warmup_steps), static_cast<double>(decay_steps));
    const double cosine = 0.5 * (1 + std::cos(std::numbers::pi * t / static_cast<double>(decay_steps)));
    return initial * ((1 - alpha) * cosine + alpha);
  };
}

std::function<double(int64_t)> warmup_cosine_decay(double max_lr, double min_lr,
                                                   int64_t warmup_steps, int64_t decay_steps) {
  NEUTRINO_CHECK_VALUE(max_lr >= 0 && min_lr >= 0 && min_lr <= max_lr,
                       "warmup_cosine_decay: need 0 <= min_lr ({}) <= max_lr ({})", min_lr, max_lr);
  NEUTRINO_CHECK_VALUE(warmup_steps >= 0 && decay_steps >= warmup_steps,
                       "warmup_cosine_decay: need 0 <= warmup_steps ({}) <= decay_steps ({})",
                       warmup_steps, decay_steps);
  return [=](int64_t step) {
    if (step < warmup_steps) {
      return max_lr * static_cast<double>(step + 1) / static_cast<double>(warmup_steps + 1);
    }
    if (step >= decay_steps) return min_lr;  // also decay_steps == warmup_steps: no cosine part
    const double ratio = static_cast<double>(step - warmup_steps) /
                         static_cast<double>(decay_steps - warmup_steps);
    const double coefficient = 0.5 * (1.0 + std::cos(std::numbers::pi * ratio));
    return min_lr + coefficient * (max_lr - min_lr);
  };
}

}  // namespace neutrino::train
