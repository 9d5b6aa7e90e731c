// Training configs: YAML with Keras names (see configs/). Every named thing (layer, optimizer,
// loss, metric, callback, preprocessing step, dataset) is a bare name or a one-key map from the
// name to its options. Errors name the file and the field's path
// ("configs/x.yaml: model.layers[3].Dense.units: expected an integer, got \"ten\"").
//
// Images are channels-first inside neutrino; a config's 3-D model.input_shape is read the Keras
// way, (height, width, channels), and turned around.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "neutrino/data/pipeline.h"
#include "neutrino/optim/optimizer.h"
#include "neutrino/train/callbacks.h"
#include "neutrino/train/sequential.h"

namespace neutrino::cli {

// A config read once: each section becomes the typed objects it configures (the optimizer, the
// loss, the callbacks), made and checked while reading, so errors name the config before any data
// is loaded and nothing is re-parsed later.
struct Experiment {
  std::string source;  // the config file
  uint64_t seed = 42;
  // Data specs as JSON text (bare strings or maps); empty when absent.
  std::string train_data, test_data, validation_data;
  double validation_split = 0.0;
  data::Pipeline preprocess;  // data.preprocess, not fitted yet
  std::string model;  // model_to_json's format, input_shape channels-first; may lack input_shape
  std::shared_ptr<optim::Optimizer> optimizer;  // compile.optimizer (default adam)
  nn::Loss loss{"sparse_categorical_crossentropy"};
  std::vector<std::string> metrics;  // checked against the loss
  int epochs = 1;
  int64_t batch_size = 32;
  bool shuffle = true;
  // fit.class_weight: "balanced" (n / (classes * count), as scikit-learn) or a list, one per
  // class; empty: none.
  std::string class_weight_mode;
  std::vector<double> class_weight;
  bool bucket_by_length = false;  // fit.bucket_by_length: train::FitOptions::bucket_by_length
  int verbose = 1;
  std::vector<train::CallbackPtr> callbacks;
  // Top-level `mixed_precision: bf16|fp32` (default fp32): Model::set_mixed_precision.
  Precision mixed_precision = Precision::kFloat32;
};

// A data spec from the command line as the JSON text load_dataset_config reads: a YAML map
// ("{fortunes: [love, food], split: test}") as written in a config, anything else as a string.
std::string data_spec_json(const std::string& spec, const std::string& what);

// Reads and validates a YAML config (unknown keys and wrong types are errors).
Experiment load_experiment(const std::string& yaml_path);
// A YAML config file as JSON text (the form every section reader takes), within the size and
// value limits; errors name the file, and the line or the field.
std::string read_config_json(const std::string& yaml_path);
// The config file's text as written (for a model file's info.extra["training_config"]).
std::string read_config_text(const std::string& yaml_path);

// One section each, from its JSON text (a name or a one-key map from the name to its options);
// errors name `path` and the field.
std::shared_ptr<optim::Optimizer> make_optimizer_from(const std::string& json_text,
                                                      const std::string& path);
nn::Loss make_loss_from(const std::string& json_text, const std::string& path);
std::vector<train::CallbackPtr> make_callbacks_from(const std::string& json_text,
                                                    const std::string& path);
// {"loss": {name: {"from_logits": ...}}, "metrics": [...]}: what a model file keeps of `compile`
// (evaluation needs the loss and the metrics, not the optimizer).
std::string compile_json(const Experiment& ex);

// `neutrino options`: every layer, optimizer and callback option with its default, from the
// same field tables that read configs.
std::string describe_config_options();

}  // namespace neutrino::cli
