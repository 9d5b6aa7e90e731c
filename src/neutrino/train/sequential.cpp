#include "neutrino/train/sequential.h"

#include <chrono>
#include <cmath>
#include <cstdio>

#include "neutrino/autograd/autograd.h"
#include "neutrino/core/random.h"
#include "neutrino/data/loader.h"
#include "neutrino/train/model_file.h"

#include <unistd.h>

namespace neutrino::train {

namespace {
std::string snake_case(const std::string& type) {
  std::string out;
  for (size_t i = 0; i < type.size(); ++i) {
    const char c = type[i];
    const bool upper = c >= 'A' && c <= 'Z';
    // A capital starts a word unless it follows a capital or digit and precedes one ("Conv2D").
    if (upper && i > 0) {
      const char prev = type[i - 1];
      const bool prev_lower = prev >= 'a' && prev <= 'z';
      const bool next_lower = i + 1 < type.size() && type[i + 1] >= 'a' && type[i + 1] <= 'z';
      if (prev_lower || (next_lower && !(prev >= '0' && prev <= '9'))) out += '_';
    }
    out += upper ? static_cast<char>(c - 'A' + 'a') : c;
  }
  return out;
}

// Keras's progress line: "469/469 [==============================] - 3s 6ms/step - loss: 0.4213"
// (verbose 1), or without the bar (verbose 2).
// `reached` is the last step of the epoch that ran (short of `steps` when training stopped
// early); `ran` is how many steps this call timed (fewer after a mid-epoch resume).
std::string progress_line(int64_t reached, int64_t steps, int64_t ran, double seconds,
                          const std::vector<std::pair<std::string, double>>& values, bool bar = true) {
  const double per_step_ms = ran > 0 ? seconds * 1000.0 / static_cast<double>(ran) : 0.0;
  std::string line = bar ? fmt::format("{}/{} [==============================] - {:.0f}s {:.0f}ms/step",
                                       reached, steps, seconds, per_step_ms)
                         : fmt::format("{}/{} - {:.0f}s - {:.0f}ms/step", reached, steps, seconds,
                                       per_step_ms);
  for (const auto& [name, value] : values) line += fmt::format(" - {}: {:.4f}", name, value);
  return line;
}

// Under bf16 compute precision, activations stay bfloat16 across runs of layers with bf16 kernels
// (the start of a convolutional stack): half the bytes through memory for every conv, pool and
// relu. This casts `h` for `layer`: to bf16 before a layer that computes in it, back to float32
// before one that has no bf16 kernels (a Dense reads bf16 itself and returns float32).
Tensor cast_for_layer(const nn::Layer& layer, Tensor h) {
  using Use = nn::Layer::Bf16Use;
  const Use use = layer.bf16_use();
  if (h.dtype() == DType::kBFloat16 && use == Use::kNo) return h.to(DType::kFloat32);
  if (h.dtype() == DType::kFloat32 && use == Use::kComputes &&
      compute_precision() == Precision::kBFloat16) {
    return h.to(DType::kBFloat16);
  }
  return h;
}

Tensor as_float32(const Tensor& h) {
  return h.dtype() == DType::kBFloat16 ? h.to(DType::kFloat32) : h;
}

// Sets the thread's precision to the model's bf16 policy for one call. A kFloat32 policy installs
// no guard, so a caller's own PrecisionGuard keeps working around a default model.
void apply_policy(Precision policy, std::optional<PrecisionGuard>& guard) {
  if (policy == Precision::kBFloat16) guard.emplace(Precision::kBFloat16);
}

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

double Scores::operator[](const std::string& name) const {
  for (size_t i = 0; i < names_.size(); ++i) {
    if (names_[i] == name) return values_[i];
  }
  throw ValueError(fmt::format("evaluate: no result named '{}'", name));
}

Sequential::Sequential(std::vector<nn::AnyLayer> layers, std::string name) : name_(std::move(name)) {
  for (auto& layer : layers) add(layer);
}

void Sequential::add(nn::AnyLayer any, bool build_now) {
  const nn::LayerPtr& layer = any.get();
  NEUTRINO_CHECK_VALUE(layer != nullptr, "Sequential.add: null layer");
  NEUTRINO_CHECK_VALUE(layers_.size() < kMaxLayers, "Sequential.add: more than {} layers",
                       kMaxLayers);
  if (layer->name().empty()) {
    // Keras-style: "dense", then "dense_1", "dense_2", ... skipping names already in use. Names
    // are never removed, so the first free suffix only grows: each base resumes where it stopped.
    const std::string base = snake_case(layer->type_name());
    int64_t& suffix = next_suffix_[base];
    std::string name = suffix == 0 ? base : fmt::format("{}_{}", base, suffix);
    while (names_.count(name) > 0) name = fmt::format("{}_{}", base, ++suffix);
    layer->set_name(name);
  }
  NEUTRINO_CHECK_VALUE(names_.count(layer->name()) == 0, "Sequential.add: two layers are named '{}'",
                       layer->name());
  NEUTRINO_CHECK_VALUE(layer->name().find('.') == std::string::npos,
                       "Sequential.add: layer name '{}' must not contain '.'", layer->name());
  layers_.push_back(layer);
  names_.insert(layer->name());
  register_module(layer->name(), layer);
  if (!build_now) return;
  if (layers_.size() == 1 && !layer->declared_input_shape().empty()) {
    build(layer->declared_input_shape());
  } else if (layers_.size() > 1 && layers_[layers_.size() - 2]->built()) {
    layer->build(next_input_);
    next_input_ = layer->output_shape(next_input_);
  }
}

void Sequential::build(const Shape& input_shape) {
  Shape shape = input_shape;
  for (const auto& layer : layers_) {
    layer->build(shape);
    shape = layer->output_shape(shape);
  }
  next_input_ = shape;
}

std::map<std::string, Shape> Sequential::planned_state(const Shape& input_shape) const {
  std::map<std::string, Shape> out;
  Shape shape = input_shape;
  for (const auto& layer : layers_) {
    const Shape next = layer->plan(shape);
    for (auto& [name, weight] : layer->weight_shapes(shape)) out[layer->name() + "." + name] = weight;
    shape = next;
  }
  return out;
}

bool Sequential::built() const { return !layers_.empty() && layers_.back()->built(); }

Tensor Sequential::forward(const Tensor& x) {
  NEUTRINO_CHECK_VALUE(!layers_.empty(), "Sequential '{}': no layers", name_);
  // Inference runs a large batch through the network in micro-batches small enough for each
  // one's activations to stay in cache instead of streaming through memory between layers (the
  // Fashion-MNIST CNN at batch 256: about 21k -> 29k images/s here). Every layer treats samples
  // independently in evaluation mode, so the result is the same. Training, and any call that
  // records a graph, runs the batch whole (BatchNormalization needs the batch statistics).
  // A Conv2D(relu) + MaxPooling2D pair runs as one op (conv2d_relu_max_pool2d).
  auto run_layers = [this](Tensor h) {
    for (size_t i = 0; i < layers_.size(); ++i) {
      h = cast_for_layer(*layers_[i], std::move(h));
      if (i + 1 < layers_.size()) {
        if (auto fused = nn::fused_conv_relu_max_pool(*layers_[i], *layers_[i + 1], h)) {
          h = std::move(*fused);
          ++i;
          continue;
        }
      }
      h = layers_[i]->forward(h);
    }
    return as_float32(h);
  };
  if (!grad_enabled() && !is_training() && x.dim() >= 1 && built()) {
    const int64_t chunk = inference_chunk();
    if (x.size(0) > 2 * chunk) {
      std::vector<Tensor> parts;
      for (int64_t begin = 0; begin < x.size(0); begin += chunk) {
        parts.push_back(run_layers(slice(x, 0, begin, std::min(x.size(0), begin + chunk))));
      }
      return concat(parts, 0);
    }
  }
  return run_layers(x);
}

int64_t Sequential::inference_chunk() const {
  // About 3 MB of the largest activation per micro-batch (float32), at least 32 samples so each
  // kernel still has enough work for both cores. Measured on the benchmark CNN (100 KB per
  // sample): 32 samples 29-30k images/s, 16: 18-20k, 64: 23-27k, the whole 256: 21k.
  constexpr int64_t kCacheBytes = 3 << 20;
  Shape shape = layers_.front()->built_input_shape();
  int64_t largest = shape_numel(shape);
  for (const auto& layer : layers_) {
    shape = layer->output_shape(shape);
    largest = std::max(largest, shape_numel(shape));
  }
  return std::max<int64_t>(32, kCacheBytes / std::max<int64_t>(1, 4 * largest));
}

Tensor Sequential::forward_profiled(const Tensor& x, ProfileRecorder& recorder) {
  NEUTRINO_CHECK_VALUE(!layers_.empty(), "Sequential '{}': no layers", name_);
  Tensor h = x;
  for (size_t i = 0; i < layers_.size(); ++i) {
    h = recorder.forward_layer(i, [&] { return layers_[i]->forward(cast_for_layer(*layers_[i], h)); });
  }
  return as_float32(h);
}

std::vector<ProfileRow> Sequential::profile_rows() const {
  std::vector<ProfileRow> rows;
  Shape shape = layers_.front()->built_input_shape();
  for (const auto& layer : layers_) {
    shape = layer->output_shape(shape);
    std::string shown = "(None";
    for (int64_t d : shape) shown += fmt::format(", {}", d);
    rows.push_back({.name = layer->name(), .type = layer->type_name(), .output_shape = shown + ")"});
  }
  return rows;
}

void Sequential::compile(OptimizerSpec optimizer, nn::Loss loss, std::vector<std::string> metrics) {
  NEUTRINO_CHECK_VALUE(optimizer.get() != nullptr, "compile: no optimizer");
  optimizer_ = optimizer.get();
  loss_ = std::move(loss);
  // Validate metric names now, so a typo fails at compile() rather than mid-training.
  for (const auto& metric : metrics) make_metric(metric, loss_->name(), 0);
  metric_names_ = std::move(metrics);
  if (built()) optimizer_->attach(parameters());
}

Precision Sequential::mixed_precision() const {
  return mixed_precision_ == Precision::kBFloat16 && bf16_supported() ? Precision::kBFloat16
                                                                       : Precision::kFloat32;
}

void Sequential::check_compiled(const char* what) const {
  NEUTRINO_CHECK_VALUE(optimizer_ != nullptr && loss_.has_value(),
                       "{}: call compile() first", what);
}

optim::Optimizer& Sequential::optimizer() const {
  check_compiled("optimizer");
  return *optimizer_;
}

const nn::Loss& Sequential::loss() const {
  check_compiled("loss");
  return *loss_;
}

std::vector<std::unique_ptr<Metric>> Sequential::new_metrics() const {
  const int64_t units = built() ? [&] {
    Shape shape = layers_.front()->built_input_shape();
    for (const auto& layer : layers_) shape = layer->output_shape(shape);
    return shape.empty() ? int64_t{1} : shape.back();
  }() : 0;
  std::vector<std::unique_ptr<Metric>> out;
  for (const auto& name : metric_names_) out.push_back(make_metric(name, loss_->name(), units));
  return out;
}

double Sequential::train_on_batch(const Tensor& x, const Tensor& y) {
  check_compiled("train_on_batch");
  NEUTRINO_CHECK_SHAPE(x.dim() >= 1 && y.dim() >= 1 && x.size(0) == y.size(0),
                       "train_on_batch: x {} and y {} have different numbers of samples",
                       x.shape_string(), y.shape_string());
  std::optional<PrecisionGuard> precision;
  apply_policy(mixed_precision_, precision);
  train(true);
  const Tensor y_pred = forward(x);
  if (optimizer_->parameters().empty()) optimizer_->attach(parameters());
  const Tensor loss = (*loss_)(y, y_pred);
  optimizer_->zero_grad();
  loss.backward();
  optimizer_->step();
  return loss.item();
}

History Sequential::fit(const Tensor& x, const Tensor& y, const FitOptions& options) {
  check_compiled("fit");
  NEUTRINO_CHECK_SHAPE(x.dim() >= 1 && y.dim() >= 1 && x.size(0) == y.size(0),
                       "fit: x {} and y {} have different numbers of samples", x.shape_string(),
                       y.shape_string());
  NEUTRINO_CHECK_VALUE(options.epochs >= 0 && options.batch_size > 0,
                       "fit: epochs must be >= 0 and batch_size > 0");
  NEUTRINO_CHECK_VALUE(options.validation_split >= 0 && options.validation_split < 1,
                       "fit: validation_split must be in [0, 1), got {}", options.validation_split);
  const int64_t n_all = x.size(0);
  const int64_t n_train =
      options.validation_split > 0
          ? static_cast<int64_t>(static_cast<double>(n_all) * (1.0 - options.validation_split))
          : n_all;
  NEUTRINO_CHECK_VALUE(n_train > 0, "fit: no training samples (x has {} rows)", n_all);
  Tensor x_train = x.detach(), y_train = y.detach();
  std::optional<std::pair<Tensor, Tensor>> validation = options.validation_data;
  if (n_train < n_all) {
    x_train = slice(x.detach(), 0, 0, n_train);
    y_train = slice(y.detach(), 0, 0, n_train);
    validation = std::make_pair(slice(x.detach(), 0, n_train, n_all),
                                slice(y.detach(), 0, n_train, n_all));
  }
  if (!built()) build(Shape(x.shape().begin() + 1, x.shape().end()));
  if (optimizer_->parameters().empty()) optimizer_->attach(parameters());
  // Covers the validation pass and the callbacks too, as one policy for the whole run.
  std::optional<PrecisionGuard> precision;
  apply_policy(mixed_precision_, precision);
  if (options.verbose > 0 && mixed_precision_ != mixed_precision()) {
    fmt::print("mixed_precision: bf16 not supported on this CPU, training in fp32\n");
  }

  stop_requested_ = false;
  for (const auto& cb : options.callbacks) cb->on_train_begin(*this);
  History history;
  int first_epoch = 0;
  uint64_t seed = options.seed ? *options.seed : 0;
  if (!options.resume_from.empty()) {
    const TrainingState state = load_checkpoint(options.resume_from, *this);
    first_epoch = state.epochs_done;
    seed = state.shuffle_seed;
    history = state.history;
    global_generator().set_state(state.rng_state);
    restore_callbacks(options.callbacks, state, options.resume_from);
    if (state.stopped) {
      // The run had already stopped (EarlyStopping): training further would overwrite its result.
      if (options.verbose > 0) {
        fmt::print("{}: training had already stopped after epoch {}; nothing more to train\n",
                   options.resume_from, first_epoch);
      }
      stop_requested_ = true;
    }
  } else if (!options.seed) {
    seed = global_generator().next_u64();
  }
  // A background thread pays off when batches take real work to make: augmentation, or data
  // large enough that copying a batch is not trivial.
  const bool background = options.augment != nullptr ||
                          x_train.numel() * static_cast<int64_t>(dtype_size(x_train.dtype())) > (64 << 20);
  data::DataLoader loader(x_train, y_train,
                          {.batch_size = options.batch_size, .shuffle = options.shuffle,
                           .background = background, .seed = seed, .augment = options.augment});
  const int64_t steps = loader.steps_per_epoch();
  std::optional<ProfileRecorder> profiler;
  if (options.profile != nullptr) profiler.emplace(*options.profile, profile_rows());
  for (int epoch = first_epoch; epoch < options.epochs && !stop_requested_; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    for (const auto& cb : options.callbacks) cb->on_epoch_begin(*this, epoch);
    if (options.verbose > 0) fmt::print("Epoch {}/{}\n", epoch + 1, options.epochs);
    auto metrics = new_metrics();
    double loss_total = 0;
    int64_t seen = 0;
    int64_t reached = 0, ran = 0;  // for the progress line
    loader.start(epoch);
    if (profiler) profiler->begin_step();
    while (auto batch = loader.next()) {
      train(true);
      const Tensor y_pred = profiler ? forward_profiled(batch->x, *profiler) : forward(batch->x);
      const Tensor loss = profiler ? profiler->loss([&] { return (*loss_)(batch->y, y_pred); })
                                   : (*loss_)(batch->y, y_pred);
      const double loss_value = loss.item();
      if (!std::isfinite(loss_value)) {
        // Keeping this step would write NaN into every weight: stop before the update.
        fmt::print(stderr, "Epoch {}, batch {}: the loss is {}; training stopped before this update\n",
                   epoch + 1, batch->step + 1, loss_value);
        history.stopped_on_nan = true;
        stop_requested_ = true;
        break;
      }
      if (profiler) {
        profiler->optimizer([&] { optimizer_->zero_grad(); });
        profiler->backward([&] { loss.backward(); });
        profiler->optimizer([&] { optimizer_->step(); });
      } else {
        optimizer_->zero_grad();
        loss.backward();
        optimizer_->step();
      }
      reached = batch->step + 1;
      ++ran;
      const int64_t rows = batch->x.size(0);
      loss_total += loss_value * static_cast<double>(rows);
      seen += rows;
      for (auto& m : metrics) m->update(batch->y, y_pred.detach());
      bool go_on = true;
      for (const auto& cb : options.callbacks) go_on = cb->on_batch_end(*this, batch->step, loss_value) && go_on;
      if (!go_on) break;
      if (options.verbose == 1 && isatty(fileno(stdout))) {
        fmt::print("\r{}/{} - loss: {:.4f}", batch->step + 1, steps, loss_total / static_cast<double>(seen));
        std::fflush(stdout);
      }
      if (profiler) {
        profiler->end_step();
        if (profiler->done()) {
          stop_requested_ = true;
          break;
        }
      }
    }
    if (history.stopped_on_nan) break;
    Logs logs{{"loss", loss_total / static_cast<double>(std::max<int64_t>(seen, 1))}};
    for (auto& m : metrics) logs[m->name()] = m->result();
    std::vector<std::pair<std::string, double>> shown{{"loss", logs["loss"]}};
    for (auto& m : metrics) shown.emplace_back(m->name(), m->result());
    if (validation) {
      const Scores val = evaluate(validation->first, validation->second,
                                  {.batch_size = options.batch_size, .verbose = 0});
      for (size_t i = 0; i < val.names().size(); ++i) {
        logs["val_" + val.names()[i]] = val[i];
        shown.emplace_back("val_" + val.names()[i], val[i]);
      }
    }
    for (const auto& [name, value] : shown) history.history[name].push_back(value);
    history.epochs = epoch + 1;
    if (options.verbose > 0) {
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (options.verbose == 1 && isatty(fileno(stdout))) fmt::print("\r");
      fmt::print("{}\n", progress_line(reached, steps, ran, seconds, shown, options.verbose == 1));
      std::fflush(stdout);
    }
    for (const auto& cb : options.callbacks) cb->on_epoch_end(*this, epoch, logs);
    if (!options.checkpoint_path.empty()) {
      TrainingState state{.epochs_done = epoch + 1, .shuffle_seed = seed,
                          .rng_state = global_generator().state(), .history = history};
      for (size_t i = 0; i < options.callbacks.size(); ++i) {
        const std::string key = fmt::format("{}:{}", i, options.callbacks[i]->name());
        state.callback_states[key] = options.callbacks[i]->state();
        if (auto tensors = options.callbacks[i]->state_tensors(); !tensors.empty()) {
          state.callback_tensors[key] = std::move(tensors);
        }
      }
      // Stopped by a callback (not by --profile-steps, which cuts a run short for timing only).
      state.stopped = stop_requested_ && !profiler;
      save_checkpoint(options.checkpoint_path, *this, state);
    }
  }
  for (const auto& cb : options.callbacks) cb->on_train_end(*this);
  if (profiler) profiler->finish(loss_->name(), optimizer_->name());
  train(false);
  return history;
}

Scores Sequential::evaluate(const Tensor& x, const Tensor& y, const EvaluateOptions& options) {
  check_compiled("evaluate");
  NEUTRINO_CHECK_SHAPE(x.dim() >= 1 && y.dim() >= 1 && x.size(0) == y.size(0),
                       "evaluate: x {} and y {} have different numbers of samples",
                       x.shape_string(), y.shape_string());
  NEUTRINO_CHECK_VALUE(options.batch_size > 0, "evaluate: batch_size must be > 0");
  NEUTRINO_CHECK_VALUE(x.size(0) > 0, "evaluate: no samples");
  const auto start = std::chrono::steady_clock::now();
  std::optional<PrecisionGuard> precision;
  apply_policy(mixed_precision_, precision);
  NoGradGuard no_grad;
  eval();
  auto metrics = new_metrics();
  const int64_t n = x.size(0);
  double loss_total = 0;
  int64_t steps = 0;
  for (int64_t begin = 0; begin < n; begin += options.batch_size, ++steps) {
    const int64_t end = std::min(n, begin + options.batch_size);
    const Tensor xb = slice(x.detach(), 0, begin, end);
    const Tensor yb = slice(y.detach(), 0, begin, end);
    const Tensor y_pred = forward(xb);
    loss_total += (*loss_)(yb, y_pred).item() * static_cast<double>(end - begin);
    for (auto& m : metrics) m->update(yb, y_pred);
  }
  Scores scores;
  scores.add("loss", loss_total / static_cast<double>(n));
  for (auto& m : metrics) scores.add(m->name(), m->result());
  if (options.verbose > 0) {
    std::vector<std::pair<std::string, double>> values;
    for (size_t i = 0; i < scores.names().size(); ++i) values.emplace_back(scores.names()[i], scores[i]);
    fmt::print("{}\n", progress_line(steps, steps, steps, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), values));
  }
  return scores;
}

Tensor Sequential::predict(const Tensor& x, int64_t batch_size) {
  NEUTRINO_CHECK_VALUE(batch_size > 0, "predict: batch_size must be > 0");
  NEUTRINO_CHECK_SHAPE(x.dim() >= 1 && x.size(0) > 0, "predict: x {} has no samples",
                       x.shape_string());
  std::optional<PrecisionGuard> precision;
  apply_policy(mixed_precision_, precision);
  NoGradGuard no_grad;
  eval();
  std::vector<Tensor> parts;
  for (int64_t begin = 0; begin < x.size(0); begin += batch_size) {
    parts.push_back(forward(slice(x.detach(), 0, begin, std::min(x.size(0), begin + batch_size))));
  }
  return parts.size() == 1 ? parts.front() : concat(parts, 0);
}

std::string Sequential::summary() const {
  NEUTRINO_CHECK_VALUE(built(),
                       "summary: the model '{}' is not built yet; give the first layer an "
                       "input_shape or call build()",
                       name_);
  const std::string rule(65, '_');
  const std::string double_rule(65, '=');
  std::string out = fmt::format("Model: \"{}\"\n{}\n", name_, rule);
  out += fmt::format(" {:<28} {:<25} {:<10}\n{}\n", "Layer (type)", "Output Shape", "Param #",
                     double_rule);
  Shape shape = layers_.front()->built_input_shape();
  int64_t trainable = 0, fixed = 0;
  for (const auto& layer : layers_) {
    shape = layer->output_shape(shape);
    Shape with_batch = shape;
    std::string shown = "(None";
    for (int64_t d : with_batch) shown += fmt::format(", {}", d);
    shown += ")";
    out += fmt::format(" {:<28} {:<25} {:<10}\n", fmt::format("{} ({})", layer->name(), layer->type_name()),
                       shown, layer->count_params());
    for (const auto& [n, t] : layer->named_parameters()) trainable += t.numel();
    for (const auto& [n, t] : layer->named_buffers()) fixed += t.numel();
  }
  out += fmt::format("{}\nTotal params: {}\nTrainable params: {}\nNon-trainable params: {}\n",
                     double_rule, trainable + fixed, trainable, fixed);
  // Only a bf16 policy is shown, so the default table stays Keras's.
  if (mixed_precision_ == Precision::kBFloat16) {
    out += mixed_precision() == Precision::kBFloat16
               ? "Mixed precision: bf16 compute, fp32 weights\n"
               : "Mixed precision: bf16 requested, fp32 used (not supported on this CPU)\n";
  }
  out += rule + "\n";
  return out;
}

}  // namespace neutrino::train
