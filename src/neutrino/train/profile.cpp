#include "neutrino/train/profile.h"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "neutrino/core/error.h"

namespace neutrino::train {

namespace {
constexpr double kNsPerMs = 1e6;

// A row of means from nanosecond sums over `steps` steps.
void set_row(ProfileRow& row, int64_t forward_ns, int64_t backward_ns, int64_t total_ns,
             int64_t step_ns, int64_t steps) {
  const double per_step = steps > 0 ? 1.0 / static_cast<double>(steps) : 0.0;
  row.forward_ms = static_cast<double>(forward_ns) * per_step / kNsPerMs;
  row.backward_ms = static_cast<double>(backward_ns) * per_step / kNsPerMs;
  row.total_ms = static_cast<double>(total_ns) * per_step / kNsPerMs;
  row.percent =
      step_ns > 0 ? 100.0 * static_cast<double>(total_ns) / static_cast<double>(step_ns) : 0.0;
}

nlohmann::json row_json(const ProfileRow& row) {
  nlohmann::json out{{"name", row.name},
                     {"type", row.type},
                     {"forward_ms", row.forward_ms},
                     {"backward_ms", row.backward_ms},
                     {"total_ms", row.total_ms},
                     {"percent", row.percent}};
  if (!row.output_shape.empty()) out["output_shape"] = row.output_shape;
  return out;
}
}  // namespace

ProfileRecorder::ProfileRecorder(Profile& out, std::vector<ProfileRow> layers)
    : out_(out), rows_(std::move(layers)) {
  NEUTRINO_CHECK_VALUE(out.warmup_steps >= 0 && out.max_steps >= 0,
                       "profile: warmup_steps and max_steps must be >= 0, got {} and {}",
                       out.warmup_steps, out.max_steps);
  out_.steps = 0;
  reset(current_);
  reset(sum_);
  step_start_ = Clock::now();
}

void ProfileRecorder::reset(Times& times) const {
  times.layer_forward.assign(rows_.size(), 0);
  times.loss_forward = 0;
  times.backward = BackwardProfile{};
  times.optimizer = 0;
  times.step = 0;
}

void ProfileRecorder::end_step() {
  const Clock::time_point now = Clock::now();
  current_.step = std::chrono::duration_cast<std::chrono::nanoseconds>(now - step_start_).count();
  step_start_ = now;
  if (seen_steps_++ >= out_.warmup_steps) {
    for (size_t i = 0; i < rows_.size(); ++i) sum_.layer_forward[i] += current_.layer_forward[i];
    sum_.loss_forward += current_.loss_forward;
    for (size_t i = 0; i < current_.backward.scope_ns.size(); ++i) {
      sum_.backward.add(static_cast<int>(i), current_.backward.scope_ns[i]);
    }
    sum_.backward.unscoped_ns += current_.backward.unscoped_ns;
    sum_.optimizer += current_.optimizer;
    sum_.step += current_.step;
    ++out_.steps;
  }
  reset(current_);
}

void ProfileRecorder::finish(const std::string& loss_name, const std::string& optimizer_name) {
  const int64_t steps = out_.steps;
  const int64_t step_ns = sum_.step;
  int64_t forward_sum = 0, backward_sum = 0;
  out_.layers = rows_;
  for (size_t i = 0; i < rows_.size(); ++i) {
    const int64_t forward = sum_.layer_forward[i];
    const int64_t backward = i < sum_.backward.scope_ns.size() ? sum_.backward.scope_ns[i] : 0;
    set_row(out_.layers[i], forward, backward, forward + backward, step_ns, steps);
    forward_sum += forward;
    backward_sum += backward;
  }
  out_.loss = ProfileRow{.name = "loss", .type = loss_name};
  set_row(out_.loss, sum_.loss_forward, sum_.backward.unscoped_ns,
          sum_.loss_forward + sum_.backward.unscoped_ns, step_ns, steps);
  forward_sum += sum_.loss_forward;
  backward_sum += sum_.backward.unscoped_ns;
  out_.optimizer = ProfileRow{.name = "optimizer", .type = optimizer_name};
  set_row(out_.optimizer, 0, 0, sum_.optimizer, step_ns, steps);
  // Timers nest inside the step, so the remainder is never negative; the clamp guards against a
  // clock that is not monotonic after all.
  const int64_t other = std::max<int64_t>(0, step_ns - forward_sum - backward_sum - sum_.optimizer);
  out_.other = ProfileRow{.name = "other", .type = "data, metrics, autograd"};
  set_row(out_.other, 0, 0, other, step_ns, steps);
  out_.total = ProfileRow{.name = "total", .type = "step"};
  set_row(out_.total, forward_sum, backward_sum, step_ns, step_ns, steps);
}

std::string format_profile(const Profile& profile) {
  if (profile.steps == 0) {
    return fmt::format("Profile: no steps profiled (training ran no steps past the {} warm-up)\n",
                       profile.warmup_steps);
  }
  std::vector<const ProfileRow*> rows;
  for (const ProfileRow& row : profile.layers) rows.push_back(&row);
  size_t name_width = 10, type_width = 10, shape_width = 12;
  for (const ProfileRow* row :
       {&profile.loss, &profile.optimizer, &profile.other, &profile.total}) {
    name_width = std::max(name_width, row->name.size());
    type_width = std::max(type_width, row->type.size());
  }
  for (const ProfileRow* row : rows) {
    name_width = std::max(name_width, row->name.size());
    type_width = std::max(type_width, row->type.size());
    shape_width = std::max(shape_width, row->output_shape.size());
  }
  const auto ms = [](double value, bool shown) {
    return shown ? fmt::format("{:>10.3f}", value) : fmt::format("{:>10}", "-");
  };
  const auto line = [&](const ProfileRow& row, bool split) {
    return fmt::format(" {:<{}}  {:<{}}  {:<{}}  {}  {}  {}  {:>6.1f}%\n", row.name, name_width,
                       row.type, type_width, row.output_shape, shape_width,
                       ms(row.forward_ms, split), ms(row.backward_ms, split),
                       ms(row.total_ms, true), row.percent);
  };
  const std::string header = fmt::format(" {:<{}}  {:<{}}  {:<{}}  {:>10}  {:>10}  {:>10}  {:>7}\n",
                                         "Layer", name_width, "Type", type_width, "Output Shape",
                                         shape_width, "Fwd ms", "Bwd ms", "Total ms", "%");
  const std::string rule(header.size() - 1, '-');
  std::string out = fmt::format("Profile: mean per training step over {} steps\n", profile.steps);
  out += header + rule + "\n";
  for (const ProfileRow* row : rows) out += line(*row, true);
  out += rule + "\n";
  out += line(profile.loss, true);
  out += line(profile.optimizer, false);
  out += line(profile.other, false);
  out += rule + "\n";
  out += line(profile.total, true);
  return out;
}

std::string profile_json(const Profile& profile) {
  nlohmann::json layers = nlohmann::json::array();
  for (const ProfileRow& row : profile.layers) layers.push_back(row_json(row));
  const nlohmann::json out{{"steps", profile.steps},
                           {"warmup_steps", profile.warmup_steps},
                           {"layers", layers},
                           {"loss", row_json(profile.loss)},
                           {"optimizer", row_json(profile.optimizer)},
                           {"other", row_json(profile.other)},
                           {"total", row_json(profile.total)}};
  return out.dump();
}

}  // namespace neutrino::train
