// Optimizers with Keras's names and default hyperparameters. Updates follow PyTorch's formulas
// (equal to Keras's for a constant learning rate), so a run can be checked step by step against
// torch.optim. weight_decay is decoupled (p -= lr * wd * p, as in Keras 3 and AdamW);
// global_clipnorm rescales all gradients together when their joint L2 norm exceeds it.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "neutrino/tensor/tensor.h"

namespace neutrino::optim {

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  virtual std::string name() const = 0;

  // Takes the parameters to update; resets the state. `decay` (one flag per parameter; empty:
  // all true) says which parameters weight_decay applies to: language models decay their 2-D
  // weights only (nanoGPT's configure_optimizers), not biases or norm gains.
  void attach(std::vector<Tensor> parameters, std::vector<bool> decay = {});
  const std::vector<Tensor>& parameters() const { return params_; }
  bool decays(size_t index) const { return decay_.empty() || decay_[index]; }
  // One update from the parameters' .grad (parameters without a gradient are skipped).
  void step();
  void zero_grad();

  double learning_rate() const { return learning_rate_; }
  void set_learning_rate(double lr) { learning_rate_ = lr; }
  // A per-step schedule (Keras's LearningRateSchedule): before each step, the learning rate
  // becomes schedule(number of steps taken so far).
  void set_schedule(std::function<double(int64_t)> schedule) { schedule_ = std::move(schedule); }
  int64_t iterations() const { return iterations_; }

  // Slot tensors (moments, velocities) by "<slot>.<parameter index>", plus "iterations" and, when
  // some parameter is not decayed, "decay_mask" (int64 0/1 per parameter), so a checkpoint can
  // restore the optimizer exactly. load_state refuses a mask other than the attached one (a
  // checkpoint of another parameter grouping would resume as a different run).
  std::map<std::string, Tensor> state() const;
  void load_state(const std::map<std::string, Tensor>& state);

 protected:
  Optimizer(double learning_rate, double weight_decay, double global_clipnorm);
  // Updates parameter i in place from its gradient (same dtype, contiguous).
  virtual void update(size_t index, const Tensor& param, const Tensor& grad) = 0;
  // The slot tensor `slot` of parameter i, created as zeros on first use.
  Tensor& slot(const std::string& slot, size_t index);

 private:
  std::vector<Tensor> params_;
  std::vector<bool> decay_;  // empty: every parameter decays
  std::map<std::string, Tensor> slots_;
  double learning_rate_;
  std::function<double(int64_t)> schedule_;
  double weight_decay_;
  double global_clipnorm_;
  int64_t iterations_ = 0;
};

struct SGDOptions {
  double learning_rate = 0.01;
  double momentum = 0.0;
  bool nesterov = false;
  double weight_decay = 0.0;
  double global_clipnorm = 0.0;  // 0: no clipping
};
class SGD : public Optimizer {
 public:
  explicit SGD(SGDOptions options = {});
  std::string name() const override { return "sgd"; }

 protected:
  void update(size_t index, const Tensor& param, const Tensor& grad) override;

 private:
  SGDOptions options_;
};

struct AdamOptions {
  double learning_rate = 0.001;
  double beta_1 = 0.9;
  double beta_2 = 0.999;
  double epsilon = 1e-7;
  bool amsgrad = false;
  double weight_decay = 0.0;
  double global_clipnorm = 0.0;
};
class Adam : public Optimizer {
 public:
  explicit Adam(AdamOptions options = {});
  std::string name() const override { return "adam"; }

 protected:
  void update(size_t index, const Tensor& param, const Tensor& grad) override;

 private:
  AdamOptions options_;
};

struct AdamWOptions {
  double learning_rate = 0.001;
  double beta_1 = 0.9;
  double beta_2 = 0.999;
  double epsilon = 1e-7;
  bool amsgrad = false;
  double weight_decay = 0.004;  // Keras's AdamW default
  double global_clipnorm = 0.0;
};
class AdamW : public Adam {
 public:
  explicit AdamW(AdamWOptions options = {});
  std::string name() const override { return "adamw"; }
};

struct RMSpropOptions {
  double learning_rate = 0.001;
  double rho = 0.9;
  double momentum = 0.0;
  double epsilon = 1e-7;
  bool centered = false;
  double weight_decay = 0.0;
  double global_clipnorm = 0.0;
};
class RMSprop : public Optimizer {
 public:
  explicit RMSprop(RMSpropOptions options = {});
  std::string name() const override { return "rmsprop"; }

 protected:
  void update(size_t index, const Tensor& param, const Tensor& grad) override;

 private:
  RMSpropOptions options_;
};

// An optimizer with default settings by Keras name: sgd, adam, adamw, rmsprop.
std::shared_ptr<Optimizer> make_optimizer(const std::string& name, double learning_rate = -1);

}  // namespace neutrino::optim
