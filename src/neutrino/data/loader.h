// DataLoader: batches of (x, y) rows, reshuffled each epoch from (seed, epoch) so that a resumed
// run sees exactly the batches an uninterrupted one would, prepared by a background thread while
// the current batch trains.
//
// With bucket_by_length, batches of token ids (padded with 0 at the end) are made of samples of
// similar length and cut to their longest sample, so that recurrent layers run fewer steps and
// waste little work on padding (Keras's bucket_by_sequence_length, torchtext's BucketIterator).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "neutrino/core/random.h"
#include "neutrino/tensor/tensor.h"

namespace neutrino::data {

struct Batch {
  Tensor x, y;
  int64_t epoch = 0, step = 0;
  // The rows of the further inputs of a model with several (a mask beside the tokens).
  std::vector<Tensor> more_x = {};
  // x, then more_x.
  std::vector<Tensor> inputs() const;
};

struct DataLoaderOptions {
  int64_t batch_size = 32;
  bool shuffle = true;
  bool drop_last = false;
  int64_t prefetch = 2;  // batches prepared ahead
  // Prepare batches on a background thread. Off, batches are made on demand in next(): cheaper
  // for small data, where a thread hand-off costs more than the copy it hides.
  bool background = true;
  uint64_t seed = 0;
  // Applied to each batch's x in the worker, with a generator seeded from (seed, epoch, step).
  std::function<Tensor(const Tensor&, Generator&)> augment = nullptr;
  // x must be int64 token ids (N, steps) padded with 0 at the end. Each epoch's shuffled order is
  // cut into pools of batch_size * kBucketPoolBatches samples; each pool is sorted by length
  // (stable), cut into batches, and the batches' order shuffled by the epoch's generator (kept
  // in pool order without shuffle). A batch's x is trimmed to its longest sample (rounded up to
  // a multiple of kBucketWidthStep, at most the full width). drop_last drops
  // the same samples as without bucketing (the tail of the shuffled order) before pooling, so
  // every batch is full; otherwise the one short batch (the final pool's longest samples) may
  // come anywhere in the epoch. Takes a single input: a second one would need trimming too.
  bool bucket_by_length = false;
};

// Batches per length-sorting pool under bucket_by_length: wide enough that batches are close in
// length, narrow enough that the shuffle still mixes lengths across the epoch.
inline constexpr int64_t kBucketPoolBatches = 50;
// A bucketed batch's width: its longest sample, rounded up to a multiple of this.
inline constexpr int64_t kBucketWidthStep = 8;

// Each row's length: the index of its last non-zero id + 1, at least 1 (ids: int64 (N, steps)).
std::vector<int64_t> sequence_lengths(const Tensor& ids);

class DataLoader {
 public:
  DataLoader(Tensor x, Tensor y, DataLoaderOptions options = {});
  // Several inputs with the same rows (augment applies to the first).
  DataLoader(std::vector<Tensor> inputs, Tensor y, DataLoaderOptions options = {});
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  int64_t size() const { return x_.size(0); }
  int64_t steps_per_epoch() const;
  // Starts iterating `epoch`, skipping its first `step` batches (to resume mid-epoch).
  void start(int64_t epoch, int64_t step = 0);
  // The next batch of the started epoch, or nullopt after its last; rethrows worker errors.
  std::optional<Batch> next();

 private:
  void stop();
  void produce(int64_t epoch, int64_t first_step);
  // The rows of each batch of `epoch`, in order.
  std::vector<std::vector<int64_t>> epoch_batches(int64_t epoch) const;
  std::vector<std::vector<int64_t>> bucket(std::vector<int64_t> order, Generator& gen) const;
  Batch make_batch(const std::vector<int64_t>& rows, int64_t epoch, int64_t step) const;

  Tensor x_, y_;
  std::vector<Tensor> more_x_;
  DataLoaderOptions options_;
  std::thread worker_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Batch> ready_;
  bool done_ = true;   // the worker has produced every batch of the epoch
  bool stop_ = false;  // the consumer asks the worker to quit
  std::exception_ptr error_;
  std::vector<int64_t> lengths_;  // per sample, under bucket_by_length
  // On-demand mode (no background thread).
  std::vector<std::vector<int64_t>> batches_;
  int64_t epoch_ = 0, next_step_ = 0;
};

}  // namespace neutrino::data
