// Keras-style training callbacks and learning-rate schedules.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "neutrino/io/model_file.h"
#include "neutrino/tensor/tensor.h"

namespace neutrino::train {

class Model;
struct History;
using Logs = std::map<std::string, double>;
class Callback;
using CallbackPtr = std::shared_ptr<Callback>;

// Where a fit() stands, for callbacks that need more than the logs (the progress bar, the
// checkpoint writer): Model::fit_state() during fit.
struct FitState {
  int epochs = 0;               // as asked
  int first_epoch = 0;          // after a resume, the first epoch this call runs
  int epoch = 0;                // the current one (0-based)
  int64_t steps_per_epoch = 0;
  uint64_t shuffle_seed = 0;    // the data order's seed
  bool resumed = false;
  double running_loss = 0;      // the epoch's mean loss so far
  // This epoch's logs in display order (loss, metrics, val_).
  std::vector<std::string> log_names = {};
  History* history = nullptr;
  // The caller's callbacks (FitOptions::callbacks), whose states checkpoints hold by position.
  const std::vector<CallbackPtr>* callbacks = nullptr;
  bool profiling = false;
  // FitOptions::model_info, for the model files callbacks write.
  io::ModelInfo model_info = {};
};

class Callback {
 public:
  virtual ~Callback() = default;
  virtual void on_train_begin(Model& /*model*/) {}
  virtual void on_epoch_begin(Model& /*model*/, int /*epoch*/) {}
  // Before each optimizer step, with the batch's loss: returning false drops this step's update
  // and stops training (TerminateOnNaN).
  virtual bool on_loss(Model& /*model*/, int64_t /*step*/, double /*loss*/) { return true; }
  // After each optimizer step; returning false stops training at once.
  virtual bool on_batch_end(Model& /*model*/, int64_t /*step*/, double /*loss*/) { return true; }
  virtual void on_epoch_end(Model& /*model*/, int /*epoch*/, const Logs& /*logs*/) {}
  virtual void on_train_end(Model& /*model*/) {}
  // Internal state as JSON text, saved in training checkpoints so a resumed run continues exactly.
  // load_state checks every field: malformed or incomplete state is a ValueError naming the field.
  virtual std::string state() const { return "{}"; }
  virtual void load_state(const std::string& /*json_text*/) {}
  // Tensors of the state (EarlyStopping's best weights), saved in checkpoints beside the model's.
  virtual std::map<std::string, Tensor> state_tensors() const { return {}; }
  virtual void load_state_tensors(const std::map<std::string, Tensor>& /*tensors*/) {}
  virtual std::string name() const = 0;
};

// Whether a monitored value improved: "min" for losses, "max" for accuracies; "auto" picks by name.
struct Monitor {
  std::string key = "val_loss";
  std::string mode = "auto";
  double min_delta = 0.0;
  bool improved(double value, double best) const;
  double worst() const;
};

struct EarlyStoppingOptions {
  std::string monitor = "val_loss";
  double min_delta = 0.0;
  int patience = 0;
  std::string mode = "auto";
  bool restore_best_weights = false;
};
// Stops when `monitor` has not improved for `patience` epochs; optionally restores the best
// weights seen.
class EarlyStopping : public Callback {
 public:
  explicit EarlyStopping(EarlyStoppingOptions options = {});
  void on_train_begin(Model& model) override;
  void on_epoch_end(Model& model, int epoch, const Logs& logs) override;
  void on_train_end(Model& model) override;
  std::string state() const override;
  void load_state(const std::string& json_text) override;
  std::map<std::string, Tensor> state_tensors() const override { return best_weights_; }
  void load_state_tensors(const std::map<std::string, Tensor>& tensors) override;
  std::string name() const override { return "EarlyStopping"; }
  int stopped_epoch() const { return stopped_epoch_; }

 private:
  EarlyStoppingOptions options_;
  Monitor monitor_;
  double best_ = 0;
  int wait_ = 0;
  int best_epoch_ = -1;
  int stopped_epoch_ = -1;
  std::map<std::string, Tensor> best_weights_;
};

struct ModelCheckpointOptions {
  std::string monitor = "val_loss";
  bool save_best_only = false;
  std::string mode = "auto";
};
// Saves the model file after each epoch (or only when `monitor` improves), with fit()'s
// FitOptions::model_info. `{epoch}` in the path is replaced by the 1-based epoch number.
class ModelCheckpoint : public Callback {
 public:
  ModelCheckpoint(std::string filepath, ModelCheckpointOptions options = {});
  void on_train_begin(Model& model) override;
  void on_epoch_end(Model& model, int epoch, const Logs& logs) override;
  std::string state() const override;
  void load_state(const std::string& json_text) override;
  std::string name() const override { return "ModelCheckpoint"; }

 private:
  std::string filepath_;
  ModelCheckpointOptions options_;
  Monitor monitor_;
  double best_ = 0;
  bool has_best_ = false;
};

// Appends one CSV row per epoch: epoch, then every log value in name order.
class CSVLogger : public Callback {
 public:
  explicit CSVLogger(std::string filename, char separator = ',', bool append = false);
  void on_train_begin(Model& model) override;
  void on_epoch_end(Model& model, int epoch, const Logs& logs) override;
  std::string name() const override { return "CSVLogger"; }

 private:
  std::string filename_;
  char separator_;
  bool append_;
  bool header_written_ = false;
};

// Stops training at the first batch whose loss is NaN or infinite, before its update is kept
// (History::stopped_on_nan). fit() adds one unless its callbacks have one.
class TerminateOnNaN : public Callback {
 public:
  bool on_loss(Model& model, int64_t step, double loss) override;
  std::string name() const override { return "TerminateOnNaN"; }
};

// Sets the learning rate at the start of each epoch from schedule(epoch, current_lr).
class LearningRateScheduler : public Callback {
 public:
  explicit LearningRateScheduler(std::function<double(int, double)> schedule, int verbose = 0);
  void on_epoch_begin(Model& model, int epoch) override;
  std::string name() const override { return "LearningRateScheduler"; }

 private:
  std::function<double(int, double)> schedule_;
  int verbose_;
};

struct ReduceLROnPlateauOptions {
  std::string monitor = "val_loss";
  double factor = 0.1;
  int patience = 10;
  std::string mode = "auto";
  double min_delta = 1e-4;
  int cooldown = 0;
  double min_lr = 0.0;
};
// Multiplies the learning rate by `factor` after `patience` epochs without improvement.
class ReduceLROnPlateau : public Callback {
 public:
  explicit ReduceLROnPlateau(ReduceLROnPlateauOptions options = {});
  void on_train_begin(Model& model) override;
  void on_epoch_end(Model& model, int epoch, const Logs& logs) override;
  std::string state() const override;
  void load_state(const std::string& json_text) override;
  std::string name() const override { return "ReduceLROnPlateau"; }

 private:
  ReduceLROnPlateauOptions options_;
  Monitor monitor_;
  double best_ = 0;
  int wait_ = 0;
  int cooldown_left_ = 0;
};

// Per-step schedules (Keras's LearningRateSchedule): the learning rate at optimizer step t.
// lr = initial * drop^floor(t / steps_per_drop)
std::function<double(int64_t)> step_decay(double initial, double drop, int64_t steps_per_drop);
// Linear warmup from 0 to `initial` over warmup_steps, then cosine decay to initial * alpha
// over decay_steps.
std::function<double(int64_t)> cosine_decay(double initial, int64_t decay_steps, double alpha = 0.0,
                                            int64_t warmup_steps = 0);
// nanoGPT's get_lr: linear warmup to max_lr, lr(t) = max_lr * (t + 1) / (warmup_steps + 1) for
// t < warmup_steps, then cosine decay from max_lr to min_lr until step decay_steps (counted from
// 0, warmup included, nanoGPT's lr_decay_iters), and min_lr after it.
std::function<double(int64_t)> warmup_cosine_decay(double max_lr, double min_lr,
                                                   int64_t warmup_steps, int64_t decay_steps);

}  // namespace neutrino::train
