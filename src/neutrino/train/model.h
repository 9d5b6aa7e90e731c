// Model: Keras's model API (compile, fit, evaluate, predict, summary) for any graph of layers or
// any module.
//
//   auto in = nn::Input({2});                                   // functional, Keras-style
//   auto y = nn::Dense(1, "sigmoid")(nn::Dense(3, "sigmoid")(in));
//   train::Model model(in, y);
//   train::Model net(std::make_shared<MyModule>());             // subclassing, PyTorch-style
//   model.compile("adam", "binary_crossentropy", {"accuracy"});
//   model.fit(x, y, {.epochs = 1000, .verbose = 0});             // fit({x, mask}, y) for two inputs
//   auto scores = model.evaluate(x, y, {.verbose = 0});         // scores["loss"], scores[1]
//   model.set_mixed_precision(Precision::kBFloat16);            // Keras's mixed_bfloat16 policy
//
// Sequential (sequential.h) is the Model that holds a chain.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "neutrino/io/model_file.h"
#include "neutrino/nn/graph.h"
#include "neutrino/nn/losses.h"
#include "neutrino/core/precision.h"
#include "neutrino/core/random.h"
#include "neutrino/optim/optimizer.h"
#include "neutrino/train/callbacks.h"
#include "neutrino/train/metrics.h"
#include "neutrino/train/profile.h"

namespace neutrino::data {
class DataLoader;
}

namespace neutrino::train {

// The metadata a model file carries beside the weights (preprocessing, class names, ...).
using ModelInfo = io::ModelInfo;

// An optimizer by Keras name ("adam") or as an object (Adam({.learning_rate = 0.1})).
class OptimizerSpec {
 public:
  OptimizerSpec(const char* name) : ptr_(optim::make_optimizer(name)) {}  // NOLINT
  OptimizerSpec(const std::string& name) : ptr_(optim::make_optimizer(name)) {}  // NOLINT
  OptimizerSpec(std::shared_ptr<optim::Optimizer> ptr) : ptr_(std::move(ptr)) {}  // NOLINT
  // No optimizer: a model compiled so can evaluate and predict but not train.
  OptimizerSpec(std::nullptr_t) {}  // NOLINT
  template <class O>
    requires std::derived_from<std::decay_t<O>, optim::Optimizer>
  OptimizerSpec(O&& optimizer)  // NOLINT
      : ptr_(std::make_shared<std::decay_t<O>>(std::forward<O>(optimizer))) {}
  const std::shared_ptr<optim::Optimizer>& get() const { return ptr_; }

 private:
  std::shared_ptr<optim::Optimizer> ptr_;
};

// A model's inputs: one tensor, or several in the order of the model's inputs ({x, mask}).
class Inputs {
 public:
  Inputs(const Tensor& x) : tensors_{x} {}                             // NOLINT: implicit on purpose
  Inputs(std::vector<Tensor> xs) : tensors_(std::move(xs)) {}          // NOLINT
  Inputs(std::initializer_list<Tensor> xs) : tensors_(xs) {}           // NOLINT
  const std::vector<Tensor>& tensors() const { return tensors_; }
  size_t size() const { return tensors_.size(); }
  const Tensor& operator[](size_t i) const { return tensors_.at(i); }
  // The common number of samples (dim 0); a ShapeError names `what` and the shapes otherwise.
  int64_t samples(const char* what) const;
  // Rows [begin, end) of every input.
  std::vector<Tensor> slice_rows(int64_t begin, int64_t end) const;
  std::string shapes_string() const;

 private:
  std::vector<Tensor> tensors_;
};

struct FitOptions {
  int epochs = 1;
  int64_t batch_size = 32;
  bool shuffle = true;
  // Training batches of samples of similar length, each cut to its longest sample, for token ids
  // padded with 0 at the end (x int64 (N, steps), one input); see data::DataLoaderOptions.
  // Validation, evaluate and predict keep the full width.
  bool bucket_by_length = false;
  // Keras's class_weight: a weight per class for the training loss (empty: all 1); validation and
  // evaluation stay unweighted. See nn::Loss::weighted.
  std::vector<double> class_weight = {};
  // Held-out data evaluated after each epoch (val_loss, val_<metric>).
  std::optional<std::pair<Inputs, Tensor>> validation_data = std::nullopt;
  // Fraction of the samples, taken from the end before shuffling (as Keras), used for validation.
  double validation_split = 0.0;
  int verbose = 1;  // 0 silent, 1 progress bar, 2 one line per epoch
  std::vector<CallbackPtr> callbacks = {};
  // Seeds the per-epoch shuffle; by default drawn from the generator.
  std::optional<uint64_t> seed = std::nullopt;
  // The generator of dropout and the shuffle seed for this fit (and what checkpoints save);
  // null: the global one (see GeneratorGuard).
  Generator* generator = nullptr;
  // Applied to each training batch's x (augmentation), with a generator seeded per batch.
  std::function<Tensor(const Tensor&, Generator&)> augment = nullptr;
  // After every epoch, a full training checkpoint (weights, optimizer state, epoch, RNG, shuffle
  // seed, history, callback state) is written here atomically.
  std::string checkpoint_path = "";
  // Continues from such a checkpoint: the result is bit-identical to an uninterrupted run.
  std::string resume_from = "";
  // When set, each training step is timed per layer (forward and backward), loss and optimizer,
  // and the means are written here when fit() returns; see profile.h.
  Profile* profile = nullptr;
  // What the files fit() writes (the checkpoint, ModelCheckpoint's) carry beside the weights.
  ModelInfo model_info = {};
};

struct EvaluateOptions {
  int64_t batch_size = 32;
  int verbose = 1;
};

// Per-epoch values by name: loss, the metrics, val_loss, val_<metric>.
struct History {
  std::map<std::string, std::vector<double>> history;
  int epochs = 0;
  // Set when training stopped on a NaN or infinite loss (that step's update is not kept).
  bool stopped_on_nan = false;
};

// evaluate()'s results: the loss first, then each metric, by position or name.
class Scores {
 public:
  void add(std::string name, double value) {
    names_.push_back(std::move(name));
    values_.push_back(value);
  }
  double operator[](size_t i) const { return values_.at(i); }
  double operator[](const std::string& name) const;
  const std::vector<std::string>& names() const { return names_; }
  const std::vector<double>& values() const { return values_; }

 private:
  std::vector<std::string> names_;
  std::vector<double> values_;
};

class Model : public nn::Module {
 public:
  // The functional API: every layer call from `inputs` to `outputs` (nn/graph.h).
  Model(const nn::SymbolicTensor& input, const nn::SymbolicTensor& output, std::string name = "model");
  Model(const std::vector<nn::SymbolicTensor>& inputs, const std::vector<nn::SymbolicTensor>& outputs,
        std::string name = "model");
  explicit Model(std::shared_ptr<nn::Graph> graph, std::string name = "model");
  // Subclassing: any module with its own forward (one input, or several). Its layers build on the
  // first batch; the state_dict holds the module's own names.
  explicit Model(std::shared_ptr<nn::Module> module, std::string name = "model");

  // The most layers a model may have (a model file or config with more is refused).
  static constexpr size_t kMaxLayers = nn::Graph::kMaxNodes;

  // The graph of layers; null for a subclassed model.
  nn::Graph* graph() const { return graph_.get(); }
  // The graph's distinct layers (none for a subclassed model).
  const std::vector<nn::LayerPtr>& layers() const;
  // Builds every layer for these per-sample input shapes (without the batch dim).
  void build(const Shape& input_shape) { build_inputs({input_shape}); }
  // One shape per input, for a model with several.
  void build_inputs(const std::vector<Shape>& input_shapes);
  // A graph with every layer built, or a subclassed model after its first batch.
  bool built() const;
  // The per-sample input shapes (built graphs; a subclassed model: those of its first batch).
  std::vector<Shape> input_shapes() const;
  // The state_dict's names and shapes that build(input_shapes) would create, with every layer
  // checked against the size limits (nn::kMaxLayerElements); allocates nothing. Graphs only.
  std::map<std::string, Shape> planned_state(const std::vector<Shape>& input_shapes) const;
  std::map<std::string, Shape> planned_state(const Shape& input_shape) const {
    return planned_state(std::vector<Shape>{input_shape});
  }
  // Inference (no graph, evaluation mode) runs large batches in cache-sized micro-batches.
  Tensor forward(const Tensor& x) override;
  Tensor forward(const std::vector<Tensor>& inputs) override;

  // The loss and metrics go by the model's one output.
  void compile(OptimizerSpec optimizer, nn::Loss loss, std::vector<std::string> metrics = {});
  History fit(const Inputs& x, const Tensor& y, const FitOptions& options = {});
  // Needs no optimizer: compile(loss) without one is enough, or the loss here.
  Scores evaluate(const Inputs& x, const Tensor& y, const EvaluateOptions& options = {});
  // Runs in evaluation mode for this thread only: a model shared with a training thread keeps
  // its training flag.
  Tensor predict(const Inputs& x, int64_t batch_size = 32);
  // One optimizer step on one batch; returns the loss before the step.
  double train_on_batch(const Inputs& x, const Tensor& y);

  // Keras's summary table: layer (type), output shape, parameter count, totals; graphs that are
  // not a chain add the "Connected to" column.
  std::string summary() const;
  const std::string& name() const { return name_; }
  optim::Optimizer& optimizer() const;
  const nn::Loss& loss() const;
  bool compiled() const { return optimizer_ != nullptr && loss_.has_value(); }

  // Asks fit() to stop after the current batch or epoch (Keras's model.stop_training = True).
  void stop_training() { stop_requested_ = true; }
  bool stop_requested() const { return stop_requested_; }
  // Where the running fit() stands (for callbacks); null outside fit.
  FitState* fit_state() const { return fit_state_; }

  // Mixed precision policy (Keras's mixed_precision "mixed_bfloat16", torch.autocast): under
  // kBFloat16, fit, evaluate, predict and train_on_batch run matmul and convolution in bfloat16
  // with float32 accumulation, while weights, optimizer state and other ops stay float32. The
  // default kFloat32 leaves the thread's precision as it is, so an outer PrecisionGuard still
  // applies. Saved in model files.
  void set_mixed_precision(Precision precision) { mixed_precision_ = precision; }
  // The precision the model actually computes in: kFloat32 when bf16 was asked for on a CPU
  // without bf16 support (fit with verbose > 0 says so).
  Precision mixed_precision() const;
  // The policy as set, whether or not this CPU can honour it.
  Precision mixed_precision_policy() const { return mixed_precision_; }

 protected:
  // An empty chain, for Sequential.
  explicit Model(std::string name);
  std::shared_ptr<nn::Graph> graph_;

 private:
  // Samples per inference micro-batch (see forward()).
  int64_t inference_chunk() const;
  // compile() was called; with `needs_optimizer`, with an optimizer too.
  void check_compiled(const char* what, bool needs_optimizer = true) const;
  std::vector<std::unique_ptr<Metric>> new_metrics() const;
  // forward() with each layer timed and under its autograd profile scope.
  Tensor forward_profiled(const std::vector<Tensor>& inputs, ProfileRecorder& recorder);
  // The profile's layer rows: names, types, output shapes "(None, ...)".
  std::vector<ProfileRow> profile_rows() const;
  // The model's output shape per sample (built graphs), for the metrics.
  Shape output_shape() const;
  // fit()'s parts: builds the layers and attaches the optimizer for these inputs; runs one epoch
  // of training steps (false when training stopped within it).
  void prepare_to_train(const Inputs& x);
  bool train_epoch(data::DataLoader& loader, const std::vector<CallbackPtr>& callbacks,
                   std::vector<std::unique_ptr<Metric>>& metrics, ProfileRecorder* profiler,
                   FitState& state, Logs& logs);

  std::string name_;
  std::shared_ptr<nn::Module> module_;  // the graph, or the subclassed module
  std::vector<Shape> module_input_shapes_;  // a subclassed model's, from its first batch
  std::shared_ptr<optim::Optimizer> optimizer_;
  std::optional<nn::Loss> loss_;
  std::vector<std::string> metric_names_;
  bool stop_requested_ = false;
  FitState* fit_state_ = nullptr;
  Tensor class_weight_;  // FitOptions::class_weight during fit(), else undefined
  Precision mixed_precision_ = Precision::kFloat32;
};

}  // namespace neutrino::train
