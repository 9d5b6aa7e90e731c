#include "neutrino/train/model.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "neutrino/autograd/autograd.h"
#include "neutrino/core/random.h"
#include "neutrino/data/loader.h"
#include "neutrino/train/fit_callbacks.h"
#include "neutrino/train/model_file.h"


namespace neutrino::train {

namespace {
// Sets the thread's precision to the model's bf16 policy for one call. A kFloat32 policy installs
// no guard, so a caller's own PrecisionGuard keeps working around a default model.
void apply_policy(Precision policy, std::optional<PrecisionGuard>& guard) {
  if (policy == Precision::kBFloat16) guard.emplace(Precision::kBFloat16);
}

}  // namespace

double Scores::operator[](const std::string& name) const {
  for (size_t i = 0; i < names_.size(); ++i) {
    if (names_[i] == name) return values_[i];
  }
  throw ValueError(fmt::format("evaluate: no result named '{}'", name));
}

// ---- Inputs ---------------------------------------------------------------------------------

int64_t Inputs::samples(const char* what) const {
  NEUTRINO_CHECK_VALUE(!tensors_.empty(), "{}: no inputs", what);
  for (const Tensor& t : tensors_) {
    NEUTRINO_CHECK_SHAPE(t.defined() && t.dim() >= 1 && t.size(0) == tensors_.front().size(0),
                         "{}: inputs {} have different numbers of samples", what, shapes_string());
  }
  return tensors_.front().size(0);
}

std::vector<Tensor> Inputs::slice_rows(int64_t begin, int64_t end) const {
  std::vector<Tensor> out;
  for (const Tensor& t : tensors_) out.push_back(slice(t.detach(), 0, begin, end));
  return out;
}

std::string Inputs::shapes_string() const {
  std::string out;
  for (const Tensor& t : tensors_) out += (out.empty() ? "" : ", ") + (t.defined() ? t.shape_string() : "undefined");
  return tensors_.size() == 1 ? out : "[" + out + "]";
}

// ---- Model ----------------------------------------------------------------------------------

Model::Model(std::string name) : graph_(std::make_shared<nn::Graph>()), name_(std::move(name)) {
  graph_->add_input("input");
  graph_->set_outputs({0});
  module_ = graph_;
  register_module("", module_);
}

Model::Model(std::shared_ptr<nn::Graph> graph, std::string name)
    : graph_(std::move(graph)), name_(std::move(name)) {
  NEUTRINO_CHECK_VALUE(graph_ != nullptr, "Model: null graph");
  module_ = graph_;
  register_module("", module_);
}

Model::Model(const nn::SymbolicTensor& input, const nn::SymbolicTensor& output, std::string name)
    : Model(std::vector<nn::SymbolicTensor>{input}, std::vector<nn::SymbolicTensor>{output},
            std::move(name)) {}

Model::Model(const std::vector<nn::SymbolicTensor>& inputs,
             const std::vector<nn::SymbolicTensor>& outputs, std::string name)
    : Model(std::make_shared<nn::Graph>(inputs, outputs), std::move(name)) {}

Model::Model(std::shared_ptr<nn::Module> module, std::string name)
    : graph_(std::dynamic_pointer_cast<nn::Graph>(module)), name_(std::move(name)),
      module_(std::move(module)) {
  NEUTRINO_CHECK_VALUE(module_ != nullptr, "Model: null module");
  register_module("", module_);
}

const std::vector<nn::LayerPtr>& Model::layers() const {
  static const std::vector<nn::LayerPtr> none;
  return graph_ ? graph_->layers() : none;
}

void Model::build_inputs(const std::vector<Shape>& input_shapes) {
  NEUTRINO_CHECK_VALUE(graph_ != nullptr, "Model '{}': a subclassed model builds on its first "
                       "batch", name_);
  graph_->build(input_shapes);
}

bool Model::built() const { return graph_ ? graph_->built() : !module_input_shapes_.empty(); }

std::vector<Shape> Model::input_shapes() const {
  return graph_ ? graph_->input_shapes() : module_input_shapes_;
}

std::map<std::string, Shape> Model::planned_state(const std::vector<Shape>& input_shapes) const {
  NEUTRINO_CHECK_VALUE(graph_ != nullptr, "Model '{}': a subclassed model has no plan", name_);
  return graph_->planned_state(input_shapes);
}

Shape Model::output_shape() const {
  if (!graph_ || !graph_->built() || graph_->output_nodes().size() != 1) return {};
  return graph_->node_shapes()[static_cast<size_t>(graph_->output_nodes().front())];
}

Tensor Model::forward(const Tensor& x) { return forward(std::vector<Tensor>{x}); }

Tensor Model::forward(const std::vector<Tensor>& inputs) {
  if (!graph_) {
    if (module_input_shapes_.empty()) {
      for (const Tensor& x : inputs) {
        NEUTRINO_CHECK_SHAPE(x.dim() >= 1, "Model '{}': inputs need a batch dim", name_);
        module_input_shapes_.emplace_back(x.shape().begin() + 1, x.shape().end());
      }
    }
    return inputs.size() == 1 ? module_->forward(inputs.front()) : module_->forward(inputs);
  }
  // Inference runs a large batch through the network in micro-batches small enough for each
  // one's activations to stay in cache instead of streaming through memory between layers (the
  // Fashion-MNIST CNN at batch 256: about 21k -> 29k images/s here). Every layer treats samples
  // independently in evaluation mode, so the result is the same. Training, and any call that
  // records a graph, runs the batch whole (BatchNormalization needs the batch statistics).
  if (!grad_enabled() && !is_training() && built() && !inputs.empty() && inputs.front().dim() >= 1) {
    const int64_t chunk = inference_chunk();
    const Inputs all(inputs);
    const int64_t n = all.samples("predict");
    if (n > 2 * chunk) {
      std::vector<Tensor> parts;
      for (int64_t begin = 0; begin < n; begin += chunk) {
        parts.push_back(graph_->forward(all.slice_rows(begin, std::min(n, begin + chunk))));
      }
      return concat(parts, 0);
    }
  }
  return graph_->forward(inputs);
}

int64_t Model::inference_chunk() const {
  // About 3 MB of the largest activation per micro-batch (float32), at least 32 samples so each
  // kernel still has enough work for both cores. Measured on the benchmark CNN (100 KB per
  // sample): 32 samples 29-30k images/s, 16: 18-20k, 64: 23-27k, the whole 256: 21k.
  constexpr int64_t kCacheBytes = 3 << 20;
  int64_t largest = 1;
  for (const Shape& shape : graph_->node_shapes()) largest = std::max(largest, shape_numel(shape));
  return std::max<int64_t>(32, kCacheBytes / std::max<int64_t>(1, 4 * largest));
}

Tensor Model::forward_profiled(const std::vector<Tensor>& inputs, ProfileRecorder& recorder) {
  if (!graph_) return recorder.forward_layer(0, [&] { return forward(inputs); });
  // Profile rows are the layer nodes, in order.
  std::vector<size_t> row(graph_->nodes().size(), 0);
  for (size_t i = 0, next = 0; i < row.size(); ++i) {
    if (graph_->nodes()[i].layer) row[i] = next++;
  }
  auto outputs = graph_->forward_all(inputs, [&](size_t node, const std::function<Tensor()>& run) {
    return recorder.forward_layer(row[node], run);
  });
  NEUTRINO_CHECK_VALUE(outputs.size() == 1, "Model '{}': fit needs one output, the graph has {}",
                       name_, outputs.size());
  return outputs.front();
}

namespace {
std::string batch_shape_str(const Shape& shape) {
  std::string shown = "(None";
  for (int64_t d : shape) shown += fmt::format(", {}", d);
  return shown + ")";
}
}  // namespace

std::vector<ProfileRow> Model::profile_rows() const {
  std::vector<ProfileRow> rows;
  if (!graph_) {
    rows.push_back({.name = name_, .type = "Module", .output_shape = "multiple"});
    return rows;
  }
  for (size_t i = 0; i < graph_->nodes().size(); ++i) {
    const auto& node = graph_->nodes()[i];
    if (!node.layer) continue;
    rows.push_back({.name = node.name, .type = node.layer->type_name(),
                    .output_shape = batch_shape_str(graph_->node_shapes()[i])});
  }
  return rows;
}

void Model::compile(OptimizerSpec optimizer, nn::Loss loss, std::vector<std::string> metrics) {
  optimizer_ = optimizer.get();
  loss_ = std::move(loss);
  // Validate metric names now, so a typo fails at compile() rather than mid-training.
  for (const auto& metric : metrics) make_metric(metric, loss_->name(), 0);
  metric_names_ = std::move(metrics);
  if (optimizer_ && built()) optimizer_->attach(parameters());
}

Precision Model::mixed_precision() const {
  return mixed_precision_ == Precision::kBFloat16 && bf16_supported() ? Precision::kBFloat16
                                                                       : Precision::kFloat32;
}

void Model::check_compiled(const char* what, bool needs_optimizer) const {
  NEUTRINO_CHECK_VALUE(loss_.has_value(), "{}: call compile() first", what);
  NEUTRINO_CHECK_VALUE(optimizer_ != nullptr || !needs_optimizer,
                       "{}: the model was compiled without an optimizer", what);
}

optim::Optimizer& Model::optimizer() const {
  check_compiled("optimizer");
  return *optimizer_;
}

const nn::Loss& Model::loss() const {
  check_compiled("loss", false);
  return *loss_;
}

std::vector<std::unique_ptr<Metric>> Model::new_metrics() const {
  const Shape shape = output_shape();
  const int64_t units = built() && graph_ ? (shape.empty() ? int64_t{1} : shape.back()) : 0;
  std::vector<std::unique_ptr<Metric>> out;
  for (const auto& name : metric_names_) out.push_back(make_metric(name, loss_->name(), units));
  return out;
}

double Model::train_on_batch(const Inputs& x, const Tensor& y) {
  check_compiled("train_on_batch");
  NEUTRINO_CHECK_SHAPE(y.dim() >= 1 && x.samples("train_on_batch") == y.size(0),
                       "train_on_batch: x {} and y {} have different numbers of samples",
                       x.shapes_string(), y.shape_string());
  std::optional<PrecisionGuard> precision;
  apply_policy(mixed_precision_, precision);
  train(true);
  const Tensor y_pred = forward(x.tensors());
  if (optimizer_->parameters().empty()) optimizer_->attach(parameters());
  const Tensor loss = (*loss_)(y, y_pred);
  optimizer_->zero_grad();
  backward(loss);
  optimizer_->step();
  return loss.item();
}

void Model::prepare_to_train(const Inputs& x) {
  if (graph_ && !built()) {
    std::vector<Shape> shapes;
    for (const Tensor& t : x.tensors()) shapes.emplace_back(t.shape().begin() + 1, t.shape().end());
    build_inputs(shapes);
  }
  if (!built()) {
    // A subclassed model's layers build on their first call: one sample, without a graph.
    NoGradGuard no_grad;
    const nn::EvalModeGuard eval_mode;
    forward(x.slice_rows(0, 1));
  }
  if (optimizer_->parameters().empty()) optimizer_->attach(parameters());
}

bool Model::train_epoch(data::DataLoader& loader, const std::vector<CallbackPtr>& callbacks,
                        std::vector<std::unique_ptr<Metric>>& metrics, ProfileRecorder* profiler,
                        FitState& state, Logs& logs) {
  double loss_total = 0;
  int64_t seen = 0;
  if (profiler) profiler->begin_step();
  while (auto batch = loader.next()) {
    train(true);
    const std::vector<Tensor> inputs = batch->inputs();
    const Tensor y_pred = profiler ? forward_profiled(inputs, *profiler) : forward(inputs);
    const auto compute_loss = [&] {
      return class_weight_.defined() ? loss_->weighted(batch->y, y_pred, class_weight_)
                                     : (*loss_)(batch->y, y_pred);
    };
    const Tensor loss = profiler ? profiler->loss(compute_loss) : compute_loss();
    const double loss_value = loss.item();
    bool go_on = true;
    for (const auto& cb : callbacks) go_on = cb->on_loss(*this, batch->step, loss_value) && go_on;
    if (!go_on) return false;  // the update is dropped
    if (profiler) {
      profiler->optimizer([&] { optimizer_->zero_grad(); });
      profiler->backward([&] { backward(loss); });
      profiler->optimizer([&] { optimizer_->step(); });
    } else {
      optimizer_->zero_grad();
      backward(loss);
      optimizer_->step();
    }
    const auto rows = static_cast<double>(batch->y.size(0));
    loss_total += loss_value * rows;
    seen += batch->y.size(0);
    state.running_loss = loss_total / static_cast<double>(seen);
    for (auto& m : metrics) m->update(batch->y, y_pred.detach());
    for (const auto& cb : callbacks) go_on = cb->on_batch_end(*this, batch->step, loss_value) && go_on;
    if (profiler) {
      profiler->end_step();
      if (profiler->done()) stop_requested_ = true;
    }
    if (!go_on || stop_requested_) break;
  }
  logs = {{"loss", loss_total / static_cast<double>(std::max<int64_t>(seen, 1))}};
  state.log_names = {"loss"};
  for (auto& m : metrics) {
    logs[m->name()] = m->result();
    state.log_names.push_back(m->name());
  }
  return true;
}

namespace {
// The callbacks one fit() runs: the NaN stop, the progress display, the caller's, and last the
// checkpoint writer.
std::vector<CallbackPtr> fit_callbacks(const FitOptions& options) {
  std::vector<CallbackPtr> out;
  const bool has_nan_stop = std::any_of(options.callbacks.begin(), options.callbacks.end(), [](const auto& cb) {
    return dynamic_cast<const TerminateOnNaN*>(cb.get()) != nullptr;
  });
  if (!has_nan_stop) out.push_back(std::make_shared<TerminateOnNaN>());
  if (options.verbose > 0) out.push_back(std::make_shared<ProgbarLogger>(options.verbose));
  out.insert(out.end(), options.callbacks.begin(), options.callbacks.end());
  if (!options.checkpoint_path.empty() || !options.resume_from.empty()) {
    out.push_back(std::make_shared<BackupAndRestore>(options.checkpoint_path, options.resume_from,
                                                     options.verbose > 0));
  }
  return out;
}

// Clears Model::fit_state() when fit() returns or throws.
class FitStateScope {
 public:
  FitStateScope(FitState*& slot, FitState* state) : slot_(slot) { slot_ = state; }
  ~FitStateScope() { slot_ = nullptr; }
  FitStateScope(const FitStateScope&) = delete;
  FitStateScope& operator=(const FitStateScope&) = delete;

 private:
  FitState*& slot_;
};
}  // namespace

namespace {
// FitOptions::class_weight as the tensor the training loss reads, for one fit() call.
class ClassWeightScope {
 public:
  ClassWeightScope(Tensor& slot, const std::vector<double>& weights) : slot_(slot) {
    for (double w : weights) {
      NEUTRINO_CHECK_VALUE(std::isfinite(w) && w >= 0, "fit: class_weight values must be finite "
                           "and >= 0, got {}", w);
    }
    if (!weights.empty()) {
      slot_ = Tensor::from_vector(weights, {static_cast<int64_t>(weights.size())});
    }
  }
  ~ClassWeightScope() { slot_ = Tensor(); }
  ClassWeightScope(const ClassWeightScope&) = delete;
  ClassWeightScope& operator=(const ClassWeightScope&) = delete;

 private:
  Tensor& slot_;
};
}  // namespace

History Model::fit(const Inputs& x, const Tensor& y, const FitOptions& options) {
  check_compiled("fit");
  NEUTRINO_CHECK_SHAPE(y.dim() >= 1 && x.samples("fit") == y.size(0),
                       "fit: x {} and y {} have different numbers of samples", x.shapes_string(),
                       y.shape_string());
  NEUTRINO_CHECK_VALUE(options.epochs >= 0 && options.batch_size > 0,
                       "fit: epochs must be >= 0 and batch_size > 0");
  NEUTRINO_CHECK_VALUE(options.validation_split >= 0 && options.validation_split < 1,
                       "fit: validation_split must be in [0, 1), got {}", options.validation_split);
  // Validation data: given, or Keras's validation_split taken from the end before shuffling.
  const int64_t n_all = y.size(0);
  const int64_t n_train =
      options.validation_split > 0
          ? static_cast<int64_t>(static_cast<double>(n_all) * (1.0 - options.validation_split))
          : n_all;
  NEUTRINO_CHECK_VALUE(n_train > 0, "fit: no training samples (x has {} rows)", n_all);
  std::optional<std::pair<Inputs, Tensor>> validation = options.validation_data;
  if (n_train < n_all) validation.emplace(x.slice_rows(n_train, n_all), slice(y.detach(), 0, n_train, n_all));
  prepare_to_train(x);
  // Covers the validation pass and the callbacks too, as one policy for the whole run.
  std::optional<PrecisionGuard> precision;
  apply_policy(mixed_precision_, precision);
  if (options.verbose > 0 && mixed_precision_ != mixed_precision()) {
    fmt::print("mixed_precision: bf16 not supported on this CPU, training in fp32\n");
  }

  std::optional<GeneratorGuard> generator;
  if (options.generator != nullptr) generator.emplace(*options.generator);
  History history;
  FitState state{.epochs = options.epochs, .shuffle_seed = options.seed.value_or(0),
                 .history = &history, .callbacks = &options.callbacks,
                 .profiling = options.profile != nullptr, .model_info = options.model_info};
  const FitStateScope scope(fit_state_, &state);
  const ClassWeightScope weights(class_weight_, options.class_weight);
  const std::vector<CallbackPtr> callbacks = fit_callbacks(options);
  stop_requested_ = false;
  for (const auto& cb : callbacks) cb->on_train_begin(*this);
  if (!state.resumed && !options.seed) state.shuffle_seed = global_generator().next_u64();
  std::vector<Tensor> x_train = x.slice_rows(0, n_train);
  // A background thread pays off when batches take real work to make: augmentation, or data
  // large enough that copying a batch is not trivial.
  const Tensor& first = x_train.front();
  const bool background = options.augment != nullptr ||
                          first.numel() * static_cast<int64_t>(dtype_size(first.dtype())) > (64 << 20);
  data::DataLoader loader(std::move(x_train), slice(y.detach(), 0, 0, n_train),
                          {.batch_size = options.batch_size, .shuffle = options.shuffle,
                           .background = background, .seed = state.shuffle_seed,
                           .augment = options.augment,
                           .bucket_by_length = options.bucket_by_length});
  state.steps_per_epoch = loader.steps_per_epoch();
  std::optional<ProfileRecorder> profiler;
  if (options.profile != nullptr) profiler.emplace(*options.profile, profile_rows());
  for (int epoch = state.first_epoch; epoch < options.epochs && !stop_requested_; ++epoch) {
    state.epoch = epoch;
    for (const auto& cb : callbacks) cb->on_epoch_begin(*this, epoch);
    auto metrics = new_metrics();
    loader.start(epoch);
    Logs logs;
    if (!train_epoch(loader, callbacks, metrics, profiler ? &*profiler : nullptr, state, logs)) break;
    if (validation) {
      const Scores val = evaluate(validation->first, validation->second,
                                  {.batch_size = options.batch_size, .verbose = 0});
      for (size_t i = 0; i < val.names().size(); ++i) {
        logs["val_" + val.names()[i]] = val[i];
        state.log_names.push_back("val_" + val.names()[i]);
      }
    }
    for (const auto& name : state.log_names) history.history[name].push_back(logs.at(name));
    history.epochs = epoch + 1;
    for (const auto& cb : callbacks) cb->on_epoch_end(*this, epoch, logs);
  }
  for (const auto& cb : callbacks) cb->on_train_end(*this);
  if (profiler) profiler->finish(loss_->name(), optimizer_->name());
  train(false);
  return history;
}

Scores Model::evaluate(const Inputs& x, const Tensor& y, const EvaluateOptions& options) {
  check_compiled("evaluate", false);
  NEUTRINO_CHECK_SHAPE(y.dim() >= 1 && x.samples("evaluate") == y.size(0),
                       "evaluate: x {} and y {} have different numbers of samples",
                       x.shapes_string(), y.shape_string());
  NEUTRINO_CHECK_VALUE(options.batch_size > 0, "evaluate: batch_size must be > 0");
  NEUTRINO_CHECK_VALUE(y.size(0) > 0, "evaluate: no samples");
  const auto start = std::chrono::steady_clock::now();
  std::optional<PrecisionGuard> precision;
  apply_policy(mixed_precision_, precision);
  NoGradGuard no_grad;
  const nn::EvalModeGuard eval_mode;
  auto metrics = new_metrics();
  const int64_t n = y.size(0);
  double loss_total = 0;
  int64_t steps = 0;
  for (int64_t begin = 0; begin < n; begin += options.batch_size, ++steps) {
    const int64_t end = std::min(n, begin + options.batch_size);
    const Tensor yb = slice(y.detach(), 0, begin, end);
    const Tensor y_pred = forward(x.slice_rows(begin, end));
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

Tensor Model::predict(const Inputs& x, int64_t batch_size) {
  NEUTRINO_CHECK_VALUE(batch_size > 0, "predict: batch_size must be > 0");
  const int64_t n = x.samples("predict");
  NEUTRINO_CHECK_SHAPE(n > 0, "predict: x {} has no samples", x.shapes_string());
  std::optional<PrecisionGuard> precision;
  apply_policy(mixed_precision_, precision);
  NoGradGuard no_grad;
  const nn::EvalModeGuard eval_mode;
  std::vector<Tensor> parts;
  for (int64_t begin = 0; begin < n; begin += batch_size) {
    parts.push_back(forward(x.slice_rows(begin, std::min(n, begin + batch_size))));
  }
  return parts.size() == 1 ? parts.front() : concat(parts, 0);
}

namespace {
struct SummaryRow {
  std::string layer, shape, params, connected;
};

// Keras's table, each column as wide as its longest entry (at least Keras's width).
std::string summary_table(const std::string& name, const std::vector<SummaryRow>& rows,
                          bool connected, int64_t trainable, int64_t fixed,
                          const std::string& footer) {
  size_t w_layer = 28, w_shape = 25, w_params = 10, w_conn = 20;
  for (const auto& r : rows) {
    w_layer = std::max(w_layer, r.layer.size() + 1);
    w_shape = std::max(w_shape, r.shape.size() + 1);
    w_params = std::max(w_params, r.params.size() + 1);
    w_conn = std::max(w_conn, r.connected.size());
  }
  const size_t width = 1 + w_layer + 1 + w_shape + 1 + w_params + (connected ? 1 + w_conn : 0);
  const std::string rule(std::max<size_t>(65, width), '_');
  const std::string double_rule(rule.size(), '=');
  auto line = [&](const std::string& a, const std::string& b, const std::string& c,
                  const std::string& d) {
    std::string out = fmt::format(" {:<{}} {:<{}} {:<{}}", a, w_layer, b, w_shape, c, w_params);
    if (connected) out += fmt::format(" {}", d);
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out + "\n";
  };
  std::string out = fmt::format("Model: \"{}\"\n{}\n", name, rule);
  out += line("Layer (type)", "Output Shape", "Param #", "Connected to") + double_rule + "\n";
  for (size_t i = 0; i < rows.size(); ++i) {
    out += line(rows[i].layer, rows[i].shape, rows[i].params, rows[i].connected);
    if (connected && i + 1 < rows.size()) out += "\n";
  }
  out += fmt::format("{}\nTotal params: {}\nTrainable params: {}\nNon-trainable params: {}\n",
                     double_rule, trainable + fixed, trainable, fixed);
  return out + footer + rule + "\n";
}
}  // namespace

std::string Model::summary() const {
  NEUTRINO_CHECK_VALUE(built(),
                       "summary: the model '{}' is not built yet; give the first layer an "
                       "input_shape or call build()",
                       name_);
  std::vector<SummaryRow> rows;
  int64_t trainable = 0, fixed = 0;
  for (const auto& [n, t] : named_parameters()) trainable += t.numel();
  for (const auto& [n, t] : named_buffers()) fixed += t.numel();
  const bool chain = graph_ && graph_->is_chain();
  if (graph_) {
    const auto& nodes = graph_->nodes();
    for (size_t i = 0; i < nodes.size(); ++i) {
      const auto& node = nodes[i];
      if (!node.layer && chain) continue;  // Keras's Sequential table has no input row
      SummaryRow row{.layer = fmt::format("{} ({})", node.name, node.layer ? node.layer->type_name() : "InputLayer"),
                     .shape = batch_shape_str(graph_->node_shapes()[i]),
                     .params = std::to_string(node.layer ? node.layer->count_params() : 0),
                     .connected = ""};
      for (int in : node.inputs) {
        row.connected += (row.connected.empty() ? "" : ", ") + fmt::format("{}[0][0]", nodes[static_cast<size_t>(in)].name);
      }
      if (!chain) row.connected = "[" + row.connected + "]";
      rows.push_back(std::move(row));
    }
  } else {
    for (const auto& [child_name, child] : module_->children()) {
      const auto* layer = dynamic_cast<const nn::Layer*>(child.get());
      int64_t count = 0;
      for (const auto& [n, t] : child->state_dict()) count += t.numel();
      rows.push_back({.layer = fmt::format("{} ({})", child_name, layer ? layer->type_name() : "Module"),
                      .shape = "multiple", .params = std::to_string(count), .connected = ""});
    }
  }
  // Only a bf16 policy is shown, so the default table stays Keras's.
  std::string footer;
  if (mixed_precision_ == Precision::kBFloat16) {
    footer = mixed_precision() == Precision::kBFloat16
                 ? "Mixed precision: bf16 compute, fp32 weights\n"
                 : "Mixed precision: bf16 requested, fp32 used (not supported on this CPU)\n";
  }
  return summary_table(name_, rows, graph_ && !chain, trainable, fixed, footer);
}

}  // namespace neutrino::train
