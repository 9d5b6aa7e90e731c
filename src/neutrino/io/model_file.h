// The model file container: one .safetensors holding named tensors and, in __metadata__, text
// fields: "format" (the kind of file and its version), "architecture" (JSON text, the model's
// config: train/model_file.h reads and writes it), "preprocessing", "class_names",
// "mixed_precision" ("bf16" or "fp32"; files without it load as fp32), the fields of
// ModelInfo::extra, and "checksum", over every tensor byte, so a damaged file is refused rather
// than half-loaded. A training checkpoint adds "training_state" and the tensors
// "optimizer/<key>" and "callback/<position>:<name>/<tensor>".
//
// This layer knows the container only; train/model_file.h turns its contents into a Model.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "neutrino/core/precision.h"
#include "neutrino/tensor/tensor.h"

namespace neutrino::io {

// A file of one kind is refused where the other is expected ("not a neutrino.model/1 file").
enum class ModelFileKind { kModel, kCheckpoint };

// What a model file carries beside the architecture and the weights. Values are JSON text.
struct ModelInfo {
  std::string preprocessing = "[]";  // fitted preprocessing steps (data/pipeline.h)
  std::vector<std::string> class_names = {};
  std::map<std::string, std::string> extra = {};  // further metadata (training config, ...)
};

// Where training stands, as a checkpoint's "training_state" holds it.
struct TrainingState {
  int epochs_done = 0;
  uint64_t shuffle_seed = 0;
  std::string rng_state = {};  // the global generator after epochs_done epochs
  // Per-epoch values by name (loss, metrics, val_...); NaN where a value was not finite.
  std::map<std::string, std::vector<double>> history = {};
  std::map<std::string, std::string> callback_states = {};  // by callback position and name
  // Callback tensors (EarlyStopping's best weights), by callback position and name.
  std::map<std::string, std::map<std::string, Tensor>> callback_tensors = {};
  std::string optimizer = {};  // the optimizer's name, checked on load against the model's
  // A callback had stopped training (EarlyStopping): a resumed run trains no further.
  bool stopped = false;
  // Step-based training (language models, train/lm_trainer.h): optimizer steps taken, and the
  // windows drawn so far from the training data (data::TokenWindows::position). 0 in epoch-based
  // checkpoints and in files from before them.
  int64_t steps_done = 0;
  int64_t data_position = 0;
};

struct ModelFile {
  std::string architecture = {};  // JSON text
  // The policy as set, not the effective one, so a bf16 model trained on a CPU without bf16
  // still runs in bf16 where the reader can.
  Precision mixed_precision = Precision::kFloat32;
  ModelInfo info = {};
  std::map<std::string, Tensor> weights = {};  // the model's state_dict
  // Checkpoints only.
  TrainingState training = {};
  std::map<std::string, Tensor> optimizer_state = {};
};

// Writes atomically (temporary file, fsync, rename); the previous file survives any failure.
void write_model_file(const std::string& path, const ModelFile& file, ModelFileKind kind);
// Reads a file of `kind` and checks its format, its checksum, every metadata field and that no
// tensor holds NaN or infinity: anything wrong is an IOError naming `path` and the field or the
// tensor.
ModelFile read_model_file(const std::string& path, ModelFileKind kind);

// Checksums over named tensors (sorted by name, covering names, dtypes, shapes and bytes).
std::string tensors_checksum(const std::map<std::string, Tensor>& tensors);

}  // namespace neutrino::io
