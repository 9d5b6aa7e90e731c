#include "neutrino/data/loader.h"

#include "neutrino/backend/runtime.h"
#include "neutrino/data/preprocess.h"

namespace neutrino::data {

namespace {
// Distinct, reproducible streams per (seed, epoch[, step]).
uint64_t mix(uint64_t seed, uint64_t a, uint64_t b = 0) {
  return seed ^ (0x9e3779b97f4a7c15ULL * (a + 1)) ^ (0xc2b2ae3d27d4eb4fULL * (b + 1));
}
}  // namespace

DataLoader::DataLoader(Tensor x, Tensor y, DataLoaderOptions options)
    : x_(std::move(x)), y_(std::move(y)), options_(std::move(options)) {
  NEUTRINO_CHECK_SHAPE(x_.defined() && x_.dim() >= 1 && x_.size(0) > 0,
                       "DataLoader: x must hold at least one sample");
  NEUTRINO_CHECK_SHAPE(!y_.defined() || (y_.dim() >= 1 && y_.size(0) == x_.size(0)),
                       "DataLoader: x {} and y {} have different numbers of samples",
                       x_.shape_string(), y_.shape_string());
  NEUTRINO_CHECK_VALUE(options_.batch_size > 0 && options_.prefetch > 0,
                       "DataLoader: batch_size and prefetch must be positive");
  NEUTRINO_CHECK_VALUE(!options_.drop_last || x_.size(0) >= options_.batch_size,
                       "DataLoader: drop_last with {} samples and batch size {} leaves no batch",
                       x_.size(0), options_.batch_size);
}

DataLoader::DataLoader(std::vector<Tensor> inputs, Tensor y, DataLoaderOptions options)
    : DataLoader(inputs.empty() ? Tensor() : inputs.front(), std::move(y), std::move(options)) {
  for (size_t i = 1; i < inputs.size(); ++i) {
    NEUTRINO_CHECK_SHAPE(inputs[i].dim() >= 1 && inputs[i].size(0) == x_.size(0),
                         "DataLoader: input {} has shape {}, but input 0 has {} samples", i,
                         inputs[i].shape_string(), x_.size(0));
    more_x_.push_back(std::move(inputs[i]));
  }
}

DataLoader::~DataLoader() { stop(); }

std::vector<Tensor> Batch::inputs() const {
  std::vector<Tensor> out{x};
  out.insert(out.end(), more_x.begin(), more_x.end());
  return out;
}

int64_t DataLoader::steps_per_epoch() const {
  const int64_t n = x_.size(0), b = options_.batch_size;
  return options_.drop_last ? n / b : (n + b - 1) / b;
}

void DataLoader::stop() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  if (worker_.joinable()) worker_.join();
}

void DataLoader::start(int64_t epoch, int64_t step) {
  NEUTRINO_CHECK_VALUE(epoch >= 0 && step >= 0 && step <= steps_per_epoch(),
                       "DataLoader: cannot start epoch {} at step {} ({} steps per epoch)", epoch,
                       step, steps_per_epoch());
  stop();
  {
    std::lock_guard lock(mutex_);
    ready_.clear();
    stop_ = false;
    done_ = false;
    error_ = nullptr;
  }
  if (!options_.background) {
    order_ = epoch_order(epoch);
    epoch_ = epoch;
    next_step_ = step;
    return;
  }
  worker_ = std::thread([this, epoch, step] { produce(epoch, step); });
}

std::vector<int64_t> DataLoader::epoch_order(int64_t epoch) const {
  std::vector<int64_t> order;
  if (options_.shuffle) {
    Generator gen(mix(options_.seed, static_cast<uint64_t>(epoch)));
    order = permutation(x_.size(0), gen);
  } else {
    for (int64_t i = 0; i < x_.size(0); ++i) order.push_back(i);
  }
  return order;
}

Batch DataLoader::make_batch(const std::vector<int64_t>& order, int64_t epoch, int64_t step) const {
  const int64_t begin = step * options_.batch_size;
  const int64_t end =
      std::min<int64_t>(begin + options_.batch_size, static_cast<int64_t>(order.size()));
  const std::vector<int64_t> rows(order.begin() + begin, order.begin() + end);
  Batch batch{take_rows(x_, rows), y_.defined() ? take_rows(y_, rows) : Tensor(), epoch, step};
  for (const Tensor& more : more_x_) batch.more_x.push_back(take_rows(more, rows));
  if (options_.augment) {
    Generator gen(
        mix(options_.seed, static_cast<uint64_t>(epoch), static_cast<uint64_t>(step) + 1));
    batch.x = options_.augment(batch.x, gen);
  }
  return batch;
}

void DataLoader::produce(int64_t epoch, int64_t first_step) {
  // The training thread's kernels have the cores; this thread's copies and augmentation stay
  // serial (see runtime::ThreadLimit).
  const runtime::ThreadLimit serial(1);
  try {
    const std::vector<int64_t> order = epoch_order(epoch);
    for (int64_t step = first_step, steps = steps_per_epoch(); step < steps; ++step) {
      Batch batch = make_batch(order, epoch, step);
      std::unique_lock lock(mutex_);
      changed_.wait(
          lock, [&] { return stop_ || static_cast<int64_t>(ready_.size()) < options_.prefetch; });
      if (stop_) return;
      ready_.push_back(std::move(batch));
      changed_.notify_all();
    }
  } catch (...) {
    std::lock_guard lock(mutex_);
    error_ = std::current_exception();
  }
  std::lock_guard lock(mutex_);
  done_ = true;
  changed_.notify_all();
}

std::optional<Batch> DataLoader::next() {
  if (!options_.background) {
    if (done_ || next_step_ >= steps_per_epoch()) {
      done_ = true;
      return std::nullopt;
    }
    return make_batch(order_, epoch_, next_step_++);
  }
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return !ready_.empty() || done_; });
  if (!ready_.empty()) {
    Batch batch = std::move(ready_.front());
    ready_.pop_front();
    changed_.notify_all();
    return batch;
  }
  if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
  return std::nullopt;
}

}  // namespace neutrino::data
