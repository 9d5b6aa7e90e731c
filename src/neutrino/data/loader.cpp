#include "neutrino/data/loader.h"

#include <algorithm>
#include <numeric>

#include "neutrino/backend/runtime.h"
#include "neutrino/data/preprocess.h"
#include "neutrino/ops/ops.h"

namespace neutrino::data {

namespace {
// Distinct, reproducible streams per (seed, epoch[, step]).
uint64_t mix(uint64_t seed, uint64_t a, uint64_t b = 0) {
  return seed ^ (0x9e3779b97f4a7c15ULL * (a + 1)) ^ (0xc2b2ae3d27d4eb4fULL * (b + 1));
}

// Appends order[begin, end) cut into batches of `size` (the last may be shorter).
void cut_batches(const std::vector<int64_t>& order, size_t begin, size_t end, int64_t size,
                 std::vector<std::vector<int64_t>>& out) {
  for (size_t i = begin; i < end; i += static_cast<size_t>(size)) {
    const size_t stop = std::min(end, i + static_cast<size_t>(size));
    out.emplace_back(order.begin() + static_cast<std::ptrdiff_t>(i),
                     order.begin() + static_cast<std::ptrdiff_t>(stop));
  }
}
}  // namespace

std::vector<int64_t> sequence_lengths(const Tensor& ids) {
  NEUTRINO_CHECK_VALUE(ids.defined() && ids.dtype() == DType::kInt64 && ids.dim() == 2,
                       "sequence_lengths: expected int64 token ids (N, steps), got {} {}",
                       ids.defined() ? dtype_name(ids.dtype()) : "undefined",
                       ids.defined() ? ids.shape_string() : "");
  const Tensor dense = densify(ids);
  const int64_t rows = dense.size(0), steps = dense.size(1);
  const int64_t* data = dense.data<int64_t>();
  std::vector<int64_t> out(static_cast<size_t>(rows), 1);
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t* row = data + r * steps;
    for (int64_t t = steps; t > 1; --t) {
      if (row[t - 1] != 0) {
        out[static_cast<size_t>(r)] = t;
        break;
      }
    }
  }
  return out;
}

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
  if (options_.bucket_by_length) {
    NEUTRINO_CHECK_VALUE(x_.dtype() == DType::kInt64 && x_.dim() == 2,
                         "DataLoader: bucket_by_length needs x of int64 token ids (N, steps) "
                         "padded with 0 at the end, got {} {}",
                         dtype_name(x_.dtype()), x_.shape_string());
    lengths_ = sequence_lengths(x_);
  }
}

DataLoader::DataLoader(std::vector<Tensor> inputs, Tensor y, DataLoaderOptions options)
    : DataLoader(inputs.empty() ? Tensor() : inputs.front(), std::move(y), std::move(options)) {
  NEUTRINO_CHECK_VALUE(!options_.bucket_by_length || inputs.size() <= 1,
                       "DataLoader: bucket_by_length takes a single input (token ids), got {}",
                       inputs.size());
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
    batches_ = epoch_batches(epoch);
    epoch_ = epoch;
    next_step_ = step;
    return;
  }
  worker_ = std::thread([this, epoch, step] { produce(epoch, step); });
}

std::vector<std::vector<int64_t>> DataLoader::epoch_batches(int64_t epoch) const {
  const int64_t n = x_.size(0);
  // One generator per epoch: the shuffle, then (bucketing) the order of the batches.
  Generator gen(mix(options_.seed, static_cast<uint64_t>(epoch)));
  std::vector<int64_t> order;
  if (options_.shuffle) {
    order = permutation(n, gen);
  } else {
    order.resize(static_cast<size_t>(n));
    std::iota(order.begin(), order.end(), int64_t{0});
  }
  if (options_.drop_last) order.resize(static_cast<size_t>(n - n % options_.batch_size));
  if (options_.bucket_by_length) return bucket(std::move(order), gen);
  std::vector<std::vector<int64_t>> batches;
  cut_batches(order, 0, order.size(), options_.batch_size, batches);
  return batches;
}

std::vector<std::vector<int64_t>> DataLoader::bucket(std::vector<int64_t> order,
                                                     Generator& gen) const {
  const size_t pool = static_cast<size_t>(options_.batch_size * kBucketPoolBatches);
  std::vector<std::vector<int64_t>> batches;
  for (size_t begin = 0; begin < order.size(); begin += pool) {
    const size_t end = std::min(order.size(), begin + pool);
    std::stable_sort(order.begin() + static_cast<std::ptrdiff_t>(begin),
                     order.begin() + static_cast<std::ptrdiff_t>(end), [&](int64_t a, int64_t b) {
                       return lengths_[static_cast<size_t>(a)] < lengths_[static_cast<size_t>(b)];
                     });
    cut_batches(order, begin, end, options_.batch_size, batches);
  }
  if (!options_.shuffle) return batches;
  // Sorted pools alone would run short batches first in every pool: shuffle the batches too.
  std::vector<std::vector<int64_t>> shuffled;
  shuffled.reserve(batches.size());
  for (int64_t i : permutation(static_cast<int64_t>(batches.size()), gen)) {
    shuffled.push_back(std::move(batches[static_cast<size_t>(i)]));
  }
  return shuffled;
}

Batch DataLoader::make_batch(const std::vector<int64_t>& rows, int64_t epoch, int64_t step) const {
  Batch batch{take_rows(x_, rows), y_.defined() ? take_rows(y_, rows) : Tensor(), epoch, step};
  if (options_.bucket_by_length) {
    // Only trailing padding goes: every row of the batch is at most `longest` long. The width
    // is rounded up to a multiple of kBucketWidthStep, so that an epoch has a few batch shapes,
    // not one per length: every new shape leaves its own buffers in the allocator's cache.
    int64_t longest = 1;
    for (int64_t r : rows) longest = std::max(longest, lengths_[static_cast<size_t>(r)]);
    const int64_t width = (longest + kBucketWidthStep - 1) / kBucketWidthStep * kBucketWidthStep;
    if (width < batch.x.size(1)) batch.x = densify(slice(batch.x, 1, 0, width));
  }
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
    const std::vector<std::vector<int64_t>> batches = epoch_batches(epoch);
    for (int64_t step = first_step, steps = steps_per_epoch(); step < steps; ++step) {
      Batch batch = make_batch(batches[static_cast<size_t>(step)], epoch, step);
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
    const int64_t step = next_step_++;
    return make_batch(batches_[static_cast<size_t>(step)], epoch_, step);
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
