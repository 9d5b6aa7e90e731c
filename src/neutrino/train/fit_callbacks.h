// The callbacks fit() installs itself: the progress display and the training checkpoint that a
// run resumes from. (TerminateOnNaN, in callbacks.h, is the third.)
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "neutrino/train/callbacks.h"

namespace neutrino::train {

// Keras's progress line: "469/469 [==============================] - 3s 6ms/step - loss: 0.4213"
// (with the bar), or "469/469 - 3s - 6ms/step - loss: 0.4213". `reached` is the last step of the
// epoch that ran (short of `steps` when training stopped early); `ran` is how many steps were
// timed (fewer after a mid-epoch resume).
std::string progress_line(int64_t reached, int64_t steps, int64_t ran, double seconds,
                          const std::vector<std::pair<std::string, double>>& values, bool bar = true);

// Keras's ProgbarLogger: "Epoch 3/10" and one progress line per epoch (verbose 1: with the bar,
// and a live step counter on a terminal; verbose 2: one plain line).
class ProgbarLogger : public Callback {
 public:
  explicit ProgbarLogger(int verbose = 1) : verbose_(verbose) {}
  void on_epoch_begin(Model& model, int epoch) override;
  bool on_batch_end(Model& model, int64_t step, double loss) override;
  void on_epoch_end(Model& model, int epoch, const Logs& logs) override;
  std::string name() const override { return "ProgbarLogger"; }

 private:
  int verbose_;
  std::chrono::steady_clock::time_point start_;
  int64_t reached_ = 0, ran_ = 0;
};

// Keras's BackupAndRestore: after every epoch, a full training checkpoint (weights, optimizer
// state, epoch, generator, data order, history, the callbacks' states) is written atomically to
// `path`; with `resume_from`, training continues from such a checkpoint, bit-identical to an
// uninterrupted run. fit() installs it last (FitOptions::checkpoint_path, resume_from), so that
// it restores the other callbacks after their on_train_begin and saves them after their
// on_epoch_end.
class BackupAndRestore : public Callback {
 public:
  BackupAndRestore(std::string path, std::string resume_from, bool verbose)
      : path_(std::move(path)), resume_from_(std::move(resume_from)), verbose_(verbose) {}
  void on_train_begin(Model& model) override;
  void on_epoch_end(Model& model, int epoch, const Logs& logs) override;
  std::string name() const override { return "BackupAndRestore"; }

 private:
  std::string path_, resume_from_;
  bool verbose_;
};

}  // namespace neutrino::train
