#include "neutrino/optim/optimizer.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "neutrino/autograd/autograd.h"
#include "neutrino/backend/kernels.h"
#include "neutrino/ops/ops.h"

namespace neutrino::optim {

namespace {
// Runs f(param, grad, slots...) elementwise as T over contiguous buffers.
template <class F>
void elementwise(const Tensor& param, F f) {
  dispatch_float(param.dtype(), "optimizer", [&]<class T>() { f.template operator()<T>(); });
}

}  // namespace

Optimizer::Optimizer(double learning_rate, double weight_decay, double global_clipnorm)
    : learning_rate_(learning_rate), weight_decay_(weight_decay), global_clipnorm_(global_clipnorm) {
  NEUTRINO_CHECK_VALUE(learning_rate >= 0, "optimizer: learning_rate must be >= 0, got {}",
                       learning_rate);
  NEUTRINO_CHECK_VALUE(weight_decay >= 0, "optimizer: weight_decay must be >= 0, got {}",
                       weight_decay);
  NEUTRINO_CHECK_VALUE(global_clipnorm >= 0, "optimizer: global_clipnorm must be >= 0, got {}",
                       global_clipnorm);
}

void Optimizer::attach(std::vector<Tensor> parameters, std::vector<bool> decay) {
  for (const Tensor& p : parameters) {
    NEUTRINO_CHECK_VALUE(p.is_contiguous() && is_floating(p.dtype()),
                         "optimizer: parameters must be contiguous floating tensors");
  }
  NEUTRINO_CHECK_VALUE(decay.empty() || decay.size() == parameters.size(),
                       "optimizer: {} decay flags for {} parameters", decay.size(),
                       parameters.size());
  // All true is the same as none, and keeps state() as it was before masks existed.
  if (std::all_of(decay.begin(), decay.end(), [](bool d) { return d; })) decay.clear();
  params_ = std::move(parameters);
  decay_ = std::move(decay);
  slots_.clear();
  iterations_ = 0;
}

void Optimizer::zero_grad() {
  for (Tensor& p : params_) p.zero_grad();
}

Tensor& Optimizer::slot(const std::string& slot, size_t index) {
  Tensor& t = slots_[fmt::format("{}.{}", slot, index)];
  if (!t.defined()) t = Tensor::zeros(params_[index].shape(), params_[index].dtype());
  return t;
}

void Optimizer::step() {
  NoGradGuard no_grad;
  if (schedule_) learning_rate_ = schedule_(iterations_);
  ++iterations_;
  double clip_scale = 1.0;
  if (global_clipnorm_ > 0) {
    double total = 0;
    for (const Tensor& p : params_) {
      if (!p.grad().defined()) continue;
      Tensor g = contiguous(p.grad());
      if (!is_floating(g.dtype()) || g.dtype() == DType::kBFloat16) g = cast(g, DType::kFloat64);
      elementwise(g, [&]<class T>() { total += kernels::sum_of_squares(g.data<T>(), g.numel()); });
    }
    const double norm = std::sqrt(total);
    if (norm > global_clipnorm_) clip_scale = global_clipnorm_ / norm;
  }
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    Tensor grad = p.grad();
    if (!grad.defined()) continue;
    NEUTRINO_CHECK_SHAPE(grad.shape() == p.shape(), "optimizer: gradient {} does not match parameter {}",
                         grad.shape_string(), p.shape_string());
    grad = contiguous(cast(grad, p.dtype()));
    if (clip_scale != 1.0) grad = mul(grad, clip_scale);
    if (weight_decay_ > 0 && decays(i)) {
      const double shrink = 1.0 - learning_rate_ * weight_decay_;
      elementwise(p, [&]<class T>() { kernels::scale_in_place(p.data<T>(), p.numel(), shrink); });
    }
    update(i, p, grad);
  }
}

namespace {
Tensor decay_mask_tensor(const std::vector<bool>& decay);
}  // namespace

std::map<std::string, Tensor> Optimizer::state() const {
  std::map<std::string, Tensor> out = slots_;
  out["iterations"] = Tensor::from_vector(std::vector<int64_t>{iterations_}, {1});
  if (!decay_.empty()) out["decay_mask"] = decay_mask_tensor(decay_);
  return out;
}

namespace {
// "decay_mask" as the state and the attached flags compare it: int64 0/1 per parameter.
Tensor decay_mask_tensor(const std::vector<bool>& decay) {
  std::vector<int64_t> flags(decay.begin(), decay.end());
  return Tensor::from_vector(flags, {static_cast<int64_t>(flags.size())});
}

// "iterations": one non-negative int64.
int64_t load_iterations(const Tensor& value) {
  NEUTRINO_CHECK_VALUE(value.dtype() == DType::kInt64 && value.numel() == 1,
                       "optimizer state: 'iterations' must be one int64, got {} {}",
                       dtype_name(value.dtype()), value.shape_string());
  const int64_t n = value.to_vector<int64_t>().front();
  NEUTRINO_CHECK_VALUE(n >= 0, "optimizer state: 'iterations' must be >= 0, got {}", n);
  return n;
}

// "<slot>.<index>" -> the parameter index, for the slots the optimizers keep.
size_t slot_index(const std::string& key, size_t parameters) {
  const size_t dot = key.rfind('.');
  const std::string slot = dot == std::string::npos ? "" : key.substr(0, dot);
  NEUTRINO_CHECK_VALUE(slot == "momentum" || slot == "m" || slot == "v" || slot == "vhat" ||
                           slot == "mean",
                       "optimizer state: unknown entry '{}'", key);
  const std::string digits = key.substr(dot + 1);
  size_t index = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), index);
  NEUTRINO_CHECK_VALUE(!digits.empty() && ec == std::errc() && end == digits.data() + digits.size() &&
                           index < parameters,
                       "optimizer state: '{}' names no parameter of the model ({} parameters)", key,
                       parameters);
  return index;
}

// Every value finite; second moments (v, vhat: running means of squared gradients) >= 0.
void check_slot_values(const std::string& key, const Tensor& value) {
  NEUTRINO_CHECK_VALUE(is_floating(value.dtype()), "optimizer state: '{}' must be floating, got {}",
                       key, dtype_name(value.dtype()));
  const bool second_moment = key.starts_with("v.") || key.starts_with("vhat.");
  for (double x : value.to_vector<double>()) {
    NEUTRINO_CHECK_VALUE(std::isfinite(x), "optimizer state: '{}' holds NaN or infinite values", key);
    NEUTRINO_CHECK_VALUE(!second_moment || x >= 0,
                         "optimizer state: '{}' holds negative values ({}); second moments are "
                         "never negative", key, x);
  }
}
}  // namespace

void Optimizer::load_state(const std::map<std::string, Tensor>& state) {
  // Checked in full before anything changes, so a refused state leaves the optimizer as it was.
  std::map<std::string, Tensor> slots;
  int64_t iterations = 0;
  const std::vector<int64_t> attached = decay_mask_tensor(
      decay_.empty() ? std::vector<bool>(params_.size(), true) : decay_).to_vector<int64_t>();
  std::vector<int64_t> saved(params_.size(), 1);  // no mask saved: every parameter decayed
  for (const auto& [key, value] : state) {
    if (key == "iterations") {
      iterations = load_iterations(value);
      continue;
    }
    if (key == "decay_mask") {
      NEUTRINO_CHECK_VALUE(value.dtype() == DType::kInt64 && value.dim() == 1,
                           "optimizer state: 'decay_mask' must be int64 of one dimension, got {} {}",
                           dtype_name(value.dtype()), value.shape_string());
      saved = value.to_vector<int64_t>();
      continue;
    }
    const size_t index = slot_index(key, params_.size());
    NEUTRINO_CHECK_VALUE(value.shape() == params_[index].shape(),
                         "optimizer state: '{}' has shape {}, but parameter {} has {}", key,
                         value.shape_string(), index, params_[index].shape_string());
    check_slot_values(key, value);
    slots[key] = clone(cast(value, params_[index].dtype()));
  }
  NEUTRINO_CHECK_VALUE(saved == attached,
                       "optimizer state: 'decay_mask' says which of {} parameters weight decay "
                       "applies to, and differs from the attached parameters' ({} parameters)",
                       saved.size(), attached.size());
  slots_ = std::move(slots);
  iterations_ = iterations;
}

// ---- SGD: b = momentum * b + g; p -= lr * (nesterov ? g + momentum * b : b) -----------------

SGD::SGD(SGDOptions options)
    : Optimizer(options.learning_rate, options.weight_decay, options.global_clipnorm),
      options_(options) {
  NEUTRINO_CHECK_VALUE(options.momentum >= 0, "SGD: momentum must be >= 0");
}

void SGD::update(size_t index, const Tensor& param, const Tensor& grad) {
  const double lr = learning_rate();
  const double momentum = options_.momentum;
  Tensor velocity = momentum > 0 ? slot("momentum", index) : Tensor();
  elementwise(param, [&]<class T>() {
    kernels::sgd_step(param.data<T>(), grad.data<T>(),
                      velocity.defined() ? velocity.data<T>() : nullptr, param.numel(), lr,
                      momentum, options_.nesterov);
  });
}

// ---- Adam: m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
//      p -= lr / (1 - b1^t) * m / (sqrt(v / (1 - b2^t)) + eps) -------------------------------

Adam::Adam(AdamOptions options)
    : Optimizer(options.learning_rate, options.weight_decay, options.global_clipnorm),
      options_(options) {
  NEUTRINO_CHECK_VALUE(options.beta_1 >= 0 && options.beta_1 < 1 && options.beta_2 >= 0 &&
                           options.beta_2 < 1 && options.epsilon >= 0,
                       "Adam: betas must be in [0, 1) and epsilon >= 0");
}

void Adam::update(size_t index, const Tensor& param, const Tensor& grad) {
  const double t = static_cast<double>(iterations());
  const double b1 = options_.beta_1, b2 = options_.beta_2;
  const double step_size = learning_rate() / (1.0 - std::pow(b1, t));
  const double bias2_sqrt = std::sqrt(1.0 - std::pow(b2, t));
  Tensor m_t = slot("m", index);
  Tensor v_t = slot("v", index);
  Tensor vmax_t = options_.amsgrad ? slot("vhat", index) : Tensor();
  const double eps = options_.epsilon;
  elementwise(param, [&]<class T>() {
    T* w = param.data<T>();
    const T* g = grad.data<T>();
    T* m = m_t.data<T>();
    T* v = v_t.data<T>();
    T* vmax = vmax_t.defined() ? vmax_t.data<T>() : nullptr;
    kernels::adam_step(w, g, m, v, vmax, param.numel(), b1, b2, step_size, bias2_sqrt, eps);
  });
}

AdamW::AdamW(AdamWOptions o)
    : Adam(AdamOptions{.learning_rate = o.learning_rate,
                       .beta_1 = o.beta_1,
                       .beta_2 = o.beta_2,
                       .epsilon = o.epsilon,
                       .amsgrad = o.amsgrad,
                       .weight_decay = o.weight_decay,
                       .global_clipnorm = o.global_clipnorm}) {}

// ---- RMSprop: v = rho v + (1 - rho) g^2 (centered: minus the squared mean gradient);
//      step = lr g / (sqrt(v) + eps), with optional momentum on the step -----------------------

RMSprop::RMSprop(RMSpropOptions options)
    : Optimizer(options.learning_rate, options.weight_decay, options.global_clipnorm),
      options_(options) {
  NEUTRINO_CHECK_VALUE(options.rho >= 0 && options.rho < 1 && options.momentum >= 0,
                       "RMSprop: rho must be in [0, 1) and momentum >= 0");
}

void RMSprop::update(size_t index, const Tensor& param, const Tensor& grad) {
  const double lr = learning_rate(), rho = options_.rho, momentum = options_.momentum;
  Tensor v_t = slot("v", index);
  Tensor mean_t = options_.centered ? slot("mean", index) : Tensor();
  Tensor buf_t = momentum > 0 ? slot("momentum", index) : Tensor();
  elementwise(param, [&]<class T>() {
    T* w = param.data<T>();
    const T* g = grad.data<T>();
    T* v = v_t.data<T>();
    T* avg = options_.centered ? mean_t.data<T>() : nullptr;
    T* buf = momentum > 0 ? buf_t.data<T>() : nullptr;
    kernels::rmsprop_step(w, g, v, avg, buf, param.numel(), lr, rho, momentum, options_.epsilon);
  });
}

namespace {
template <class O, class Options>
std::shared_ptr<Optimizer> with_defaults(double learning_rate) {
  Options options;
  if (learning_rate >= 0) options.learning_rate = learning_rate;
  return std::make_shared<O>(options);
}
}  // namespace

std::shared_ptr<Optimizer> make_optimizer(const std::string& name, double learning_rate) {
  if (name == "sgd") return with_defaults<SGD, SGDOptions>(learning_rate);
  if (name == "adam") return with_defaults<Adam, AdamOptions>(learning_rate);
  if (name == "adamw") return with_defaults<AdamW, AdamWOptions>(learning_rate);
  if (name == "rmsprop") return with_defaults<RMSprop, RMSpropOptions>(learning_rate);
  throw ValueError(fmt::format("unknown optimizer '{}' (known: sgd, adam, adamw, rmsprop)", name));
}

}  // namespace neutrino::optim
