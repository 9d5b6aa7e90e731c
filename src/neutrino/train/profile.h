// Per-layer timing of training steps, like `caffe time`: `neutrino train --profile`, or
// FitOptions::profile in the library.
//
//   train::Profile profile{.max_steps = 20};
//   model.fit(x, y, {.epochs = 1, .profile = &profile});
//   fmt::print("{}", train::format_profile(profile));
//
// Forward time is measured around each layer's call; backward time is the autograd nodes each
// layer's ops made (autograd/ProfileScope), so a layer's row holds its whole share of the step.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "neutrino/autograd/autograd.h"

namespace neutrino::train {

struct ProfileRow {
  std::string name = "";          // the layer's name, or loss, optimizer, other, total
  std::string type = "";          // the layer's type ("Dense"), the loss or optimizer name
  std::string output_shape = "";  // "(None, 128)"; empty for the rows that are not layers
  // Means per profiled step, in milliseconds.
  double forward_ms = 0;
  double backward_ms = 0;
  double total_ms = 0;  // forward + backward, or the row's whole time (optimizer, other)
  double percent = 0;   // of the mean step
};

struct Profile {
  // Settings, read by fit(). The first steps are slower (allocation, caches, lazy builds), so
  // they are run but not counted.
  int64_t warmup_steps = 3;
  // When > 0, fit() stops after this many profiled steps, as if stop_training() were called.
  int64_t max_steps = 0;

  // Results, written when fit() returns.
  int64_t steps = 0;  // the profiled steps the means are over
  std::vector<ProfileRow> layers = {};
  ProfileRow loss = {};       // forward: the loss function; backward: its nodes
  ProfileRow optimizer = {};  // zero_grad and step
  // The step time not in the rows above: loading the batch, metrics, callbacks, autograd's own
  // bookkeeping (graph walk, accumulating parameter gradients).
  ProfileRow other = {};
  ProfileRow total = {};  // the whole step; the rows above add up to it
};

// An aligned table: name, type, output shape, forward ms, backward ms, total ms, percentage.
std::string format_profile(const Profile& profile);
// The same as one JSON object: {"steps": N, "layers": [...], "loss": {...}, ...}.
std::string profile_json(const Profile& profile);

// Accumulates one fit()'s timings into a Profile. Model::fit drives it; the nanosecond sums stay
// integers so that the rows add up to the total exactly.
class ProfileRecorder {
 public:
  using Clock = std::chrono::steady_clock;
  // `layers` carries each layer's name, type and output shape; the times are filled in.
  ProfileRecorder(Profile& out, std::vector<ProfileRow> layers);

  // Marks the start of a step (after the data loader has started an epoch).
  void begin_step() { step_start_ = Clock::now(); }
  // Runs layer `index`'s forward under its autograd scope and times it.
  template <class F>
  auto forward_layer(size_t index, F&& forward) {
    const ProfileScope scope(static_cast<int>(index));
    const Clock::time_point start = Clock::now();
    auto result = forward();
    current_.layer_forward[index] += elapsed_ns(start);
    return result;
  }
  template <class F>
  auto loss(F&& loss_fn) {
    const Clock::time_point start = Clock::now();
    auto result = loss_fn();
    current_.loss_forward += elapsed_ns(start);
    return result;
  }
  // Runs a backward pass with the per-scope sink installed.
  template <class F>
  void backward(F&& backward_fn) {
    const BackwardProfileGuard guard(&current_.backward);
    backward_fn();
  }
  template <class F>
  void optimizer(F&& step_fn) {
    const Clock::time_point start = Clock::now();
    step_fn();
    current_.optimizer += elapsed_ns(start);
  }
  // Ends the step begun at the last begin_step()/end_step(); counts it once past the warm-up.
  void end_step();
  // True once max_steps steps have been profiled.
  bool done() const { return out_.max_steps > 0 && out_.steps >= out_.max_steps; }
  // Writes the means into the Profile, with the loss and optimizer names for their rows.
  void finish(const std::string& loss_name, const std::string& optimizer_name);

 private:
  struct Times {
    std::vector<int64_t> layer_forward;
    int64_t loss_forward = 0;
    BackwardProfile backward;
    int64_t optimizer = 0;
    int64_t step = 0;
  };
  static int64_t elapsed_ns(Clock::time_point start) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count();
  }
  void reset(Times& times) const;

  Profile& out_;
  std::vector<ProfileRow> rows_;
  Clock::time_point step_start_;
  int64_t seen_steps_ = 0;  // warm-up included
  Times current_;           // the step in progress
  Times sum_;               // the profiled steps
};

}  // namespace neutrino::train
