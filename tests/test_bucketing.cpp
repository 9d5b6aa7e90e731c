// Bucketing by length (DataLoaderOptions::bucket_by_length, FitOptions::bucket_by_length): every
// sample once per epoch, length-homogeneous batches trimmed to their longest sample, a padding
// bound, determinism, exact mid-epoch and checkpoint resume, errors, the config key, and that
// trimming a masked Embedding-LSTM's batch changes none of its outputs.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "neutrino/cli/config.h"
#include "neutrino/data/loader.h"
#include "neutrino/data/preprocess.h"
#include "neutrino/neutrino.h"
#include "test_util.h"

using namespace neutrino;
using namespace neutrino::nn;
using neutrino::data::DataLoader;
using neutrino::data::DataLoaderOptions;
using neutrino::testing::expect_error;
using train::Sequential;
namespace fs = std::filesystem;

namespace {
using neutrino::testing::flat_weights;
constexpr int64_t kSteps = 64;

struct Texts {
  Tensor x, y;  // ids (n, steps), padded with 0 at the end; y the row index (or a label)
  std::vector<int64_t> lengths;
};

// Lengths skewed short, as in real text (length 1 + 63 u^3: mean about 17 of 64, a few full),
// ids 1..vocab-1. y is the row index, so that a batch says which samples it holds.
Texts skewed_texts(int64_t n, uint64_t seed, int64_t steps = kSteps, int64_t vocab = 20) {
  Generator gen(seed);
  std::vector<int64_t> ids(static_cast<size_t>(n * steps), 0), rows, lengths;
  for (int64_t i = 0; i < n; ++i) {
    const double u = gen.uniform();
    const auto length = 1 + static_cast<int64_t>(u * u * u * static_cast<double>(steps - 1));
    for (int64_t t = 0; t < length; ++t) {
      ids[static_cast<size_t>(i * steps + t)] = 1 + static_cast<int64_t>(gen.below(vocab - 1));
    }
    lengths.push_back(length);
    rows.push_back(i);
  }
  return {Tensor::from_vector(ids, {n, steps}), Tensor::from_vector(rows, {n}), lengths};
}

struct Seen {
  std::vector<int64_t> rows;  // from y
  Tensor x;
};

std::vector<Seen> drain(DataLoader& loader) {
  std::vector<Seen> out;
  while (auto batch = loader.next()) out.push_back({batch->y.to_vector<int64_t>(), batch->x});
  return out;
}

void expect_same_batches(const std::vector<Seen>& a, const std::vector<Seen>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].rows, b[i].rows) << "batch " << i;
    EXPECT_EQ(a[i].x.shape(), b[i].x.shape()) << "batch " << i;
    EXPECT_EQ(a[i].x.to_vector<int64_t>(), b[i].x.to_vector<int64_t>()) << "batch " << i;
  }
}

int64_t longest(const std::vector<int64_t>& rows, const std::vector<int64_t>& lengths) {
  int64_t out = 1;
  for (int64_t r : rows) out = std::max(out, lengths[static_cast<size_t>(r)]);
  return out;
}

// Padding cells of batches `width` wide (width(batch) columns each).
template <class Width>
std::pair<int64_t, int64_t> padding(const std::vector<Seen>& batches,
                                    const std::vector<int64_t>& lengths, Width width) {
  int64_t padded = 0, cells = 0;
  for (const Seen& b : batches) {
    const int64_t w = width(b);
    for (int64_t r : b.rows) padded += w - lengths[static_cast<size_t>(r)];
    cells += w * static_cast<int64_t>(b.rows.size());
  }
  return {padded, cells};
}

DataLoaderOptions bucketed(int64_t batch_size, uint64_t seed, bool background = false) {
  return {.batch_size = batch_size, .background = background, .seed = seed,
          .bucket_by_length = true};
}

void write(const fs::path& path, const std::string& text) { std::ofstream(path) << text; }
}  // namespace

TEST(Bucketing, SequenceLengthsEndAtTheLastNonZeroId) {
  const Tensor ids = Tensor::from_vector(std::vector<int64_t>{3, 0, 5, 0, 0, 0, 0, 0, 0, 0,
                                                              1, 1, 1, 1, 1},
                                         {3, 5});
  EXPECT_EQ(data::sequence_lengths(ids), (std::vector<int64_t>{3, 1, 5}));
}

TEST(Bucketing, EverySampleOncePerEpochAndExactSteps) {
  const Texts t = skewed_texts(2003, 1);  // 2003 = 125 * 16 + 3: one short batch
  for (bool background : {false, true}) {
    DataLoader loader(t.x, t.y, bucketed(16, 9, background));
    EXPECT_EQ(loader.steps_per_epoch(), 126);
    loader.start(3);
    const auto batches = drain(loader);
    ASSERT_EQ(batches.size(), 126u);
    std::multiset<int64_t> seen;
    int short_batches = 0;
    for (const Seen& b : batches) {
      seen.insert(b.rows.begin(), b.rows.end());
      if (b.rows.size() != 16) {
        ++short_batches;
        EXPECT_EQ(b.rows.size(), 3u);
      }
    }
    EXPECT_EQ(short_batches, 1);
    ASSERT_EQ(seen.size(), 2003u);
    EXPECT_EQ(std::set<int64_t>(seen.begin(), seen.end()).size(), 2003u);
  }
}

TEST(Bucketing, DropLastDropsTheSamplesAnUnbucketedLoaderDrops) {
  const Texts t = skewed_texts(2003, 2);
  DataLoaderOptions options = bucketed(16, 4);
  options.drop_last = true;
  DataLoader loader(t.x, t.y, options);
  DataLoader plain(t.x, t.y, {.batch_size = 16, .drop_last = true, .background = false, .seed = 4});
  EXPECT_EQ(loader.steps_per_epoch(), 125);
  loader.start(1);
  plain.start(1);
  std::set<int64_t> bucketed_rows, plain_rows;
  for (const Seen& b : drain(loader)) {
    EXPECT_EQ(b.rows.size(), 16u);
    bucketed_rows.insert(b.rows.begin(), b.rows.end());
  }
  for (const Seen& b : drain(plain)) plain_rows.insert(b.rows.begin(), b.rows.end());
  EXPECT_EQ(bucketed_rows.size(), 2000u);
  EXPECT_EQ(bucketed_rows, plain_rows);
}

TEST(Bucketing, BatchesAreTrimmedAndWasteLittlePadding) {
  const int64_t n = 2000, batch = 16;
  const Texts t = skewed_texts(n, 3);
  DataLoader loader(t.x, t.y, bucketed(batch, 5));
  DataLoader plain(t.x, t.y, {.batch_size = batch, .background = false, .seed = 5});
  loader.start(0);
  plain.start(0);
  const auto batches = drain(loader), plain_batches = drain(plain);
  for (const Seen& b : batches) {
    // Trimmed to the longest sample rounded up to the width step, and the kept columns are the
    // samples' own ids.
    const int64_t step = data::kBucketWidthStep;
    const int64_t w = std::min<int64_t>(kSteps, (longest(b.rows, t.lengths) + step - 1) / step * step);
    ASSERT_EQ(b.x.shape(), (Shape{static_cast<int64_t>(b.rows.size()), w}));
    const Tensor full = data::take_rows(t.x, b.rows);
    EXPECT_EQ(b.x.to_vector<int64_t>(), densify(slice(full, 1, 0, w)).to_vector<int64_t>());
  }
  const auto [padded, cells] = padding(batches, t.lengths, [](const Seen& b) { return b.x.size(1); });
  const auto [plain_padded, plain_cells] = padding(plain_batches, t.lengths, [](const Seen& b) { return b.x.size(1); });
  const auto [trim_padded, trim_cells] = padding(plain_batches, t.lengths, [&](const Seen& b) { return longest(b.rows, t.lengths); });
  const double share = static_cast<double>(padded) / static_cast<double>(cells);
  const double plain_share = static_cast<double>(plain_padded) / static_cast<double>(plain_cells);
  const double trim_share = static_cast<double>(trim_padded) / static_cast<double>(trim_cells);
  // Within a length-sorted pool each row pads by at most its batch's length range, and the
  // batches' ranges do not overlap, so a pool pads at most batch * (steps - 1) cells; rounding
  // the width up adds at most kBucketWidthStep - 1 cells per row.
  const int64_t pools = (n + batch * data::kBucketPoolBatches - 1) / (batch * data::kBucketPoolBatches);
  EXPECT_LE(padded, pools * batch * (kSteps - 1) + n * (data::kBucketWidthStep - 1));
  EXPECT_LT(share, 0.25);
  EXPECT_GT(plain_share, 0.65);  // full width: about 1 - 17/64
  EXPECT_GT(trim_share, 0.5);    // trimming random batches alone saves little
  EXPECT_LT(share, plain_share / 3);
  std::printf("padding share: bucketed %.4f, full width %.4f, random batches trimmed %.4f\n",
              share, plain_share, trim_share);
}

TEST(Bucketing, DeterministicForASeedAndReshuffledPerEpoch) {
  const Texts t = skewed_texts(1500, 4);
  DataLoader a(t.x, t.y, bucketed(16, 21)), b(t.x, t.y, bucketed(16, 21, true));
  DataLoader other_seed(t.x, t.y, bucketed(16, 22));
  a.start(2);
  b.start(2);
  other_seed.start(2);
  const auto epoch2 = drain(a);
  expect_same_batches(epoch2, drain(b));  // on demand or in the background: the same batches
  EXPECT_NE(drain(other_seed)[0].rows, epoch2[0].rows);
  a.start(3);
  EXPECT_NE(drain(a)[0].rows, epoch2[0].rows);
  // The batch order is shuffled: widths do not rise through a pool as they were sorted.
  std::vector<int64_t> widths;
  for (size_t i = 0; i < 50; ++i) widths.push_back(epoch2[i].x.size(1));
  EXPECT_FALSE(std::is_sorted(widths.begin(), widths.end()));
  a.start(2);
  const auto again = drain(a);
  expect_same_batches(again, epoch2);
}

TEST(Bucketing, ResumeMidEpochGivesTheSameRemainingBatches) {
  const Texts t = skewed_texts(1000, 5);
  for (bool background : {false, true}) {
    DataLoader loader(t.x, t.y, bucketed(8, 13, background));
    loader.start(4);
    const auto whole = drain(loader);
    loader.start(4, 37);
    const std::vector<Seen> rest(whole.begin() + 37, whole.end());
    expect_same_batches(drain(loader), rest);
  }
}

TEST(Bucketing, WithoutShuffleBatchesKeepPoolOrder) {
  const int64_t n = 2000, batch = 16, pool = batch * data::kBucketPoolBatches;
  const Texts t = skewed_texts(n, 6);
  DataLoaderOptions options = bucketed(batch, 1);
  options.shuffle = false;
  DataLoader loader(t.x, t.y, options);
  loader.start(0);
  const auto batches = drain(loader);
  loader.start(7);
  expect_same_batches(drain(loader), batches);  // no shuffle: every epoch alike
  ASSERT_EQ(batches.size(), 125u);
  for (size_t i = 0; i < batches.size(); ++i) {
    const int64_t p = static_cast<int64_t>(i) / data::kBucketPoolBatches;
    for (int64_t r : batches[i].rows) EXPECT_EQ(r / pool, p) << "batch " << i;
    if (i > 0 && (static_cast<int64_t>(i) % data::kBucketPoolBatches) != 0) {
      // Sorted within the pool: no row shorter than the previous batch's longest.
      const int64_t before = longest(batches[i - 1].rows, t.lengths);
      for (int64_t r : batches[i].rows) EXPECT_GE(t.lengths[static_cast<size_t>(r)], before);
    }
  }
}

TEST(Bucketing, RefusesWhatItCannotBucket) {
  const Texts t = skewed_texts(40, 7);
  expect_error<ValueError>([&] { DataLoader(cast(t.x, DType::kFloat32), t.y, bucketed(8, 0)); },
                           {"bucket_by_length", "int64", "float32"});
  expect_error<ValueError>([&] { DataLoader(reshape(t.x, {40, 8, 8}), t.y, bucketed(8, 0)); },
                           {"bucket_by_length", "(40, 8, 8)"});
  expect_error<ValueError>(
      [&] { DataLoader(std::vector<Tensor>{t.x, t.x}, t.y, bucketed(8, 0)); },
      {"bucket_by_length", "single input"});
  Sequential model({Dense(3, "relu", {.input_shape = {kSteps}})});
  model.compile("adam", "sparse_categorical_crossentropy");
  const Tensor labels = Tensor::zeros({40}, DType::kInt64);
  expect_error<ValueError>(
      [&] {
        model.fit(cast(t.x, DType::kFloat32), labels, {.bucket_by_length = true, .verbose = 0});
      },
      {"bucket_by_length", "int64"});
}

namespace {
// The label is the last real id mod 3: the LSTM's final state must be that of the last real
// step, so masked padding (kept state) is what makes the task learnable.
std::pair<Tensor, Tensor> last_id_task(int64_t n, uint64_t seed) {
  const Texts t = skewed_texts(n, seed, 16, 12);
  const std::vector<int64_t> ids = t.x.to_vector<int64_t>();
  std::vector<int64_t> labels;
  for (int64_t i = 0; i < n; ++i) {
    labels.push_back(ids[static_cast<size_t>(i * 16 + t.lengths[static_cast<size_t>(i)] - 1)] % 3);
  }
  return {t.x, Tensor::from_vector(labels, {n})};
}

Sequential text_model(int64_t vocab, int64_t steps) {
  Sequential model({Embedding(vocab, 8, {.input_shape = {steps}, .mask_zero = true}), LSTM(8),
                    Dense(3)});
  model.compile(optim::Adam({.learning_rate = 0.02}),
                Loss("sparse_categorical_crossentropy", true), {"accuracy"});
  return model;
}

}  // namespace

TEST(Bucketing, FitTrainsAMaskedLstmAndItsLossFalls) {
  const auto [x, y] = last_id_task(256, 8);
  manual_seed(3);
  Sequential model = text_model(12, 16);
  const train::History h = model.fit(
      x, y, {.epochs = 8, .batch_size = 16, .bucket_by_length = true, .validation_split = 0.25,
             .verbose = 0, .seed = 5});
  const auto& loss = h.history.at("loss");
  EXPECT_LT(loss.back(), loss.front() * 0.6) << loss.front() << " -> " << loss.back();
  EXPECT_EQ(h.history.at("val_loss").size(), 8u);  // validation runs at full width
}

TEST(Bucketing, TrimmingABatchLeavesAMaskedModelsOutputsAlone) {
  const Texts t = skewed_texts(300, 9, 16, 12);
  manual_seed(4);
  Sequential model = text_model(12, 16);
  DataLoader loader(t.x, t.y, bucketed(32, 2));
  loader.start(0);
  int trimmed = 0;
  while (auto batch = loader.next()) {
    const std::vector<int64_t> rows = batch->y.to_vector<int64_t>();
    if (batch->x.size(1) == 16) continue;
    ++trimmed;
    const Tensor full = model.predict(data::take_rows(t.x, rows));
    const Tensor cut = model.predict(batch->x);
    EXPECT_LT(neutrino::testing::max_rel_diff(cut, full), 1e-5) << "width " << batch->x.size(1);
  }
  EXPECT_GE(trimmed, 5);
}

TEST(Bucketing, CheckpointResumeIsBitIdentical) {
  const fs::path dir = neutrino::testing::fresh_temp_dir("bucketing_resume");
  const auto [x, y] = last_id_task(192, 10);
  auto run = [&](int epochs, const std::string& checkpoint, const std::string& resume) {
    manual_seed(12);
    Sequential model = text_model(12, 16);
    model.fit(x, y, {.epochs = epochs, .batch_size = 16, .bucket_by_length = true,
                     .verbose = 0, .checkpoint_path = checkpoint, .resume_from = resume});
    return model;
  };
  const Sequential straight = run(2, "", "");
  const std::string ckpt = (dir / "ckpt.safetensors").string();
  run(1, ckpt, "");
  const Sequential resumed = run(2, "", ckpt);
  EXPECT_EQ(flat_weights(straight), flat_weights(resumed));
  fs::remove_all(dir);
}

TEST(Bucketing, ConfigKey) {
  const fs::path dir = neutrino::testing::fresh_temp_dir("bucketing_config");
  const std::string base =
      "data:\n  train: iris\nmodel:\n  input_shape: [4]\n  layers:\n    - Dense: {units: 3}\n";
  write(dir / "off.yaml", base);
  EXPECT_FALSE(cli::load_experiment((dir / "off.yaml").string()).bucket_by_length);
  write(dir / "on.yaml", base + "fit:\n  bucket_by_length: true\n");
  EXPECT_TRUE(cli::load_experiment((dir / "on.yaml").string()).bucket_by_length);
  write(dir / "bad.yaml", base + "fit:\n  bucket_by_length: 3\n");
  expect_error<ValueError>([&] { cli::load_experiment((dir / "bad.yaml").string()); },
                           {"fit.bucket_by_length"});
  fs::remove_all(dir);
}
