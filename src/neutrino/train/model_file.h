// A Model and its files: the architecture as a config (Keras-like layer configs as JSON) and the
// weights under their PyTorch names, in io/model_file.h's container, with the metadata that goes
// with them (io::ModelInfo: preprocessing, class names, training config) beside the model.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "neutrino/io/model_file.h"
#include "neutrino/train/sequential.h"

namespace neutrino::train {

using TrainingState = io::TrainingState;

// {"class_name": "Sequential", "name": ..., "input_shape": [...], "layers": [{"Dense": {...}}]}
std::string model_to_json(const Model& model);
// Builds (and, with an input shape, initializes) a model from model_to_json's format. Errors
// name `path` and the field. At most Sequential::kMaxLayers layers, each within the size limits
// of nn::kMaxLayerElements, checked before any weight is allocated; with `stored_shapes` (the
// tensors of a model file), every weight's shape must also be the stored one.
Model model_from_json(const std::string& text, const std::string& path = "model",
                      const std::map<std::string, Shape>* stored_shapes = nullptr);
// Every check model_from_json makes, shapes through the graph included, without allocating a
// weight: configs are checked when read, and the model is built once, after seeding.
void check_model_json(const std::string& text, const std::string& path = "model");

// Writes atomically (temporary file, fsync, rename); the previous file survives any failure.
void save_model(const std::string& path, const Model& model, const ModelInfo& info = {});
// A model file's model (built, in evaluation mode, with the saved mixed precision policy) and
// the metadata saved with it.
struct LoadedModel {
  Model model;
  ModelInfo info;
};
LoadedModel load_model(const std::string& path);
// Keras's save_weights/load_weights, for any model, subclassed ones included (whose C++ class is
// the architecture): the weights go into `model`, which must have the saved names and shapes.
void save_weights(const std::string& path, const Model& model);
void load_weights(const std::string& path, Model& model);

// Training checkpoints: the model file plus optimizer state and where training stands
// (state.optimizer is taken from the model).
void save_checkpoint(const std::string& path, const Model& model, const TrainingState& state,
                     const ModelInfo& info = {});
struct LoadedCheckpoint {
  TrainingState state;
  ModelInfo info;
};
// Loads weights and optimizer state into `model` (built and compiled like the saved one). Every
// field is checked: a malformed or incomplete training_state, NaN or infinite tensors, or
// optimizer state that does not fit (Optimizer::load_state) is an IOError naming the file.
LoadedCheckpoint load_checkpoint(const std::string& path, Model& model);

}  // namespace neutrino::train
