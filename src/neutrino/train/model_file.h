// Model files: one .safetensors holding the weights (PyTorch names) and, in __metadata__, the
// architecture (Keras-like layer configs as JSON), the preprocessing, the class names, the mixed
// precision policy ("mixed_precision": "bf16" or "fp32"; files without it load as fp32), and a
// checksum of every tensor byte so a damaged file is refused rather than half-loaded.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "neutrino/train/sequential.h"

namespace neutrino::train {

// {"class_name": "Sequential", "name": ..., "input_shape": [...], "layers": [{"Dense": {...}}]}
std::string model_to_json(const Model& model);
// Builds (and, with an input shape, initializes) a model from model_to_json's format. Errors
// name `path` and the field. At most Sequential::kMaxLayers layers, each within the size limits
// of nn::kMaxLayerElements, checked before any weight is allocated; with `stored_shapes` (the
// tensors of a model file), every weight's shape must also be the stored one.
Model model_from_json(const std::string& text, const std::string& path = "model",
                           const std::map<std::string, Shape>* stored_shapes = nullptr);

// Writes atomically (temporary file, fsync, rename); the previous file survives any failure.
// `info` defaults to model.info; load_model fills model.info from the file.
void save_model(const std::string& path, const Model& model);
void save_model(const std::string& path, const Model& model, const ModelInfo& info);
Model load_model(const std::string& path);
// Keras's save_weights/load_weights, for any model, subclassed ones included (whose C++ class is
// the architecture): the weights go into `model`, which must have the saved names and shapes.
void save_weights(const std::string& path, const Model& model);
void load_weights(const std::string& path, Model& model);

// Training checkpoints: the model file plus optimizer state and where training stands.
struct TrainingState {
  int epochs_done = 0;
  uint64_t shuffle_seed = 0;
  std::string rng_state;  // the global generator after epochs_done epochs
  History history;
  std::map<std::string, std::string> callback_states;  // by callback position and name
  // Callback tensors (EarlyStopping's best weights), by callback position and name.
  std::map<std::string, std::map<std::string, Tensor>> callback_tensors;
  std::string optimizer;  // the optimizer's name (load_checkpoint checks it against the model's)
  // A callback had stopped training (EarlyStopping): a resumed run trains no further.
  bool stopped = false;
};
void save_checkpoint(const std::string& path, const Model& model, const TrainingState& state);
// Loads weights and optimizer state into `model` (built and compiled like the saved one). Every
// field is checked: a malformed or incomplete training_state, NaN or infinite tensors, or
// optimizer state that does not fit (Optimizer::load_state) is an IOError naming the file.
TrainingState load_checkpoint(const std::string& path, Model& model);

// Checksums over named tensors (sorted by name, covering names, dtypes, shapes and bytes).
std::string tensors_checksum(const std::map<std::string, Tensor>& tensors);

}  // namespace neutrino::train
