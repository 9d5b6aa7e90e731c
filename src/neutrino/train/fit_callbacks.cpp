#include "neutrino/train/fit_callbacks.h"

#include <unistd.h>

#include <cstdio>

#include "neutrino/core/random.h"
#include "neutrino/train/model.h"
#include "neutrino/train/model_file.h"

namespace neutrino::train {

std::string progress_line(int64_t reached, int64_t steps, int64_t ran, double seconds,
                          const std::vector<std::pair<std::string, double>>& values, bool bar) {
  const double per_step_ms = ran > 0 ? seconds * 1000.0 / static_cast<double>(ran) : 0.0;
  std::string line = bar ? fmt::format("{}/{} [==============================] - {:.0f}s {:.0f}ms/step",
                                       reached, steps, seconds, per_step_ms)
                         : fmt::format("{}/{} - {:.0f}s - {:.0f}ms/step", reached, steps, seconds,
                                       per_step_ms);
  for (const auto& [name, value] : values) line += fmt::format(" - {}: {:.4f}", name, value);
  return line;
}

// ---- ProgbarLogger ----------------------------------------------------------------------------

void ProgbarLogger::on_epoch_begin(Model& model, int epoch) {
  start_ = std::chrono::steady_clock::now();
  reached_ = ran_ = 0;
  const FitState* state = model.fit_state();
  fmt::print("Epoch {}/{}\n", epoch + 1, state ? state->epochs : epoch + 1);
}

bool ProgbarLogger::on_batch_end(Model& model, int64_t step, double /*loss*/) {
  reached_ = step + 1;
  ++ran_;
  const FitState* state = model.fit_state();
  if (verbose_ == 1 && state != nullptr && isatty(fileno(stdout))) {
    fmt::print("\r{}/{} - loss: {:.4f}", step + 1, state->steps_per_epoch, state->running_loss);
    std::fflush(stdout);
  }
  return true;
}

void ProgbarLogger::on_epoch_end(Model& model, int /*epoch*/, const Logs& logs) {
  const FitState* state = model.fit_state();
  std::vector<std::pair<std::string, double>> shown;
  for (const auto& name : state ? state->log_names : std::vector<std::string>{}) {
    shown.emplace_back(name, logs.at(name));
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  if (verbose_ == 1 && isatty(fileno(stdout))) fmt::print("\r");
  fmt::print("{}\n", progress_line(reached_, state ? state->steps_per_epoch : reached_, ran_, seconds,
                                   shown, verbose_ == 1));
  std::fflush(stdout);
}

// ---- BackupAndRestore -------------------------------------------------------------------------

namespace {
// Gives each callback its state from a checkpoint; malformed state is an IOError naming the file
// and the callback.
void restore_callbacks(const std::vector<CallbackPtr>& callbacks, const TrainingState& state,
                       const std::string& path) {
  for (size_t i = 0; i < callbacks.size(); ++i) {
    const std::string key = fmt::format("{}:{}", i, callbacks[i]->name());
    try {
      if (auto it = state.callback_states.find(key); it != state.callback_states.end()) {
        callbacks[i]->load_state(it->second);
      }
      if (auto it = state.callback_tensors.find(key); it != state.callback_tensors.end()) {
        callbacks[i]->load_state_tensors(it->second);
      }
    } catch (const ValueError& e) {
      throw IOError(fmt::format("{}: training_state.callbacks.{}: {}", path, key, e.what()));
    }
  }
}
}  // namespace

void BackupAndRestore::on_train_begin(Model& model) {
  FitState* state = model.fit_state();
  if (resume_from_.empty() || state == nullptr) return;
  const TrainingState saved = load_checkpoint(resume_from_, model).state;
  state->first_epoch = saved.epochs_done;
  state->shuffle_seed = saved.shuffle_seed;
  state->resumed = true;
  *state->history = History{.history = saved.history, .epochs = saved.epochs_done};
  global_generator().set_state(saved.rng_state);
  restore_callbacks(*state->callbacks, saved, resume_from_);
  if (saved.stopped) {
    // The run had already stopped (EarlyStopping): training further would overwrite its result.
    if (verbose_) {
      fmt::print("{}: training had already stopped after epoch {}; nothing more to train\n",
                 resume_from_, saved.epochs_done);
    }
    model.stop_training();
  }
}

void BackupAndRestore::on_epoch_end(Model& model, int epoch, const Logs& /*logs*/) {
  const FitState* state = model.fit_state();
  if (path_.empty() || state == nullptr) return;
  TrainingState saved{.epochs_done = epoch + 1, .shuffle_seed = state->shuffle_seed,
                      .rng_state = global_generator().state(), .history = state->history->history};
  const std::vector<CallbackPtr>& callbacks = *state->callbacks;
  for (size_t i = 0; i < callbacks.size(); ++i) {
    const std::string key = fmt::format("{}:{}", i, callbacks[i]->name());
    saved.callback_states[key] = callbacks[i]->state();
    if (auto tensors = callbacks[i]->state_tensors(); !tensors.empty()) {
      saved.callback_tensors[key] = std::move(tensors);
    }
  }
  // Stopped by a callback (not by --profile-steps, which cuts a run short for timing only).
  saved.stopped = model.stop_requested() && !state->profiling;
  save_checkpoint(path_, model, saved, state->model_info);
}

}  // namespace neutrino::train
