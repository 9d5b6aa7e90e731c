// Preprocessing and the DataLoader: statistics, splits, augmentation, epoch order and resume.
#include <gtest/gtest.h>

#include <set>

#include "neutrino/data/loader.h"
#include "neutrino/data/preprocess.h"
#include "neutrino/ops/ops.h"

using namespace neutrino;
using namespace neutrino::data;

namespace {
Tensor rows_0_to(int64_t n) { return reshape(Tensor::arange(n), {n, 1}); }

std::vector<std::vector<float>> drain(DataLoader& loader) {
  std::vector<std::vector<float>> out;
  while (auto batch = loader.next()) out.push_back(batch->x.to_vector<float>());
  return out;
}
}  // namespace

TEST(DataPreprocess, RescaleAndStandardize) {
  const Tensor x = Tensor::of({{0, 10}, {255, 20}, {51, 30}});
  EXPECT_FLOAT_EQ(rescale(x, 1.0 / 255).at({1, 0}), 1.0f);
  const Standardizer s = Standardizer::fit(x);
  const Tensor z = s.apply(x);
  for (int64_t c = 0; c < 2; ++c) {
    EXPECT_NEAR(mean(slice(z, 1, c, c + 1)).item(), 0.0, 1e-6);
    EXPECT_NEAR(mean(pow(slice(z, 1, c, c + 1), 2)).item(), 1.0, 1e-5);
  }
  // Statistics come from the fitted data only: new data is mapped, not re-fitted.
  EXPECT_NEAR(s.apply(Tensor::of({{0, 20}})).at({0, 1}), 0.0, 1e-6);
  // A constant column is centred, not divided by zero.
  const Tensor constant = Standardizer::fit(Tensor::of({{1, 5}, {2, 5}})).apply(Tensor::of({{1, 5}}));
  EXPECT_EQ(constant.at({0, 1}), 0.0);
  EXPECT_THROW(s.apply(Tensor::zeros({2, 3})), ShapeError);
}

TEST(DataPreprocess, SplitIsSeededAndDisjoint) {
  const Tensor x = rows_0_to(10), y = Tensor::arange(10);
  const Split a = train_test_split(x, y, 0.3, 7), b = train_test_split(x, y, 0.3, 7);
  EXPECT_EQ(a.x_test.size(0), 3);
  EXPECT_EQ(a.x_train.size(0), 7);
  EXPECT_EQ(a.x_test.to_vector<float>(), b.x_test.to_vector<float>());
  std::set<float> seen;
  for (float v : a.x_train.to_vector<float>()) seen.insert(v);
  for (float v : a.x_test.to_vector<float>()) seen.insert(v);
  EXPECT_EQ(seen.size(), 10u);
  EXPECT_EQ(a.x_train.to_vector<float>(), a.y_train.to_vector<float>());  // rows stay paired
  EXPECT_THROW(train_test_split(x, Tensor::arange(9), 0.3, 7), ShapeError);
}

TEST(DataAugment, FlipAndCrop) {
  const Tensor img = reshape(Tensor::arange(6), {1, 1, 2, 3});
  Generator gen(1);
  int flipped = 0;
  for (int i = 0; i < 40; ++i) {
    const Tensor out = random_flip(img, gen);
    if (out.at({0, 0, 0, 0}) == 2.0) {
      ++flipped;
      EXPECT_EQ(out.to_vector<float>(), (std::vector<float>{2, 1, 0, 5, 4, 3}));
    }
  }
  EXPECT_GT(flipped, 5);
  EXPECT_LT(flipped, 35);
  EXPECT_EQ(random_crop(img, 0, gen).to_vector<float>(), img.to_vector<float>());
  const Tensor cropped = random_crop(img, 1, gen);
  EXPECT_EQ(cropped.shape(), img.shape());
  EXPECT_THROW(random_flip(Tensor::zeros({2, 3}), gen), ShapeError);
}

TEST(DataLoader, EachEpochCoversEveryRowOnceInASeededOrder) {
  DataLoader loader(rows_0_to(10), Tensor::arange(10), {.batch_size = 4, .seed = 3});
  EXPECT_EQ(loader.steps_per_epoch(), 3);
  loader.start(0);
  const auto epoch0 = drain(loader);
  ASSERT_EQ(epoch0.size(), 3u);
  EXPECT_EQ(epoch0.back().size(), 2u);
  std::multiset<float> seen;
  for (const auto& b : epoch0) seen.insert(b.begin(), b.end());
  EXPECT_EQ(seen, (std::multiset<float>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  loader.start(0);
  EXPECT_EQ(drain(loader), epoch0);  // same seed and epoch, same order
  loader.start(1);
  EXPECT_NE(drain(loader), epoch0);  // a new epoch reshuffles
}

TEST(DataLoader, ResumeMidEpochGivesTheSameRemainingBatches) {
  auto flip_half = [](const Tensor& x, Generator& gen) { return mul(x, gen.uniform() < 0.5 ? -1.0 : 1.0); };
  DataLoader loader(rows_0_to(20), Tensor(), {.batch_size = 3, .seed = 11, .augment = flip_half});
  loader.start(2);
  const auto whole = drain(loader);
  loader.start(2, 4);
  const auto resumed = drain(loader);
  ASSERT_EQ(resumed.size(), whole.size() - 4);
  for (size_t i = 0; i < resumed.size(); ++i) EXPECT_EQ(resumed[i], whole[i + 4]);
}

TEST(DataLoader, DropLastNoShuffleAndErrors) {
  DataLoader loader(rows_0_to(10), Tensor::arange(10),
                    {.batch_size = 4, .shuffle = false, .drop_last = true});
  loader.start(0);
  const auto batches = drain(loader);
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_EQ(batches[1], (std::vector<float>{4, 5, 6, 7}));
  EXPECT_THROW(DataLoader(rows_0_to(3), Tensor::arange(4)), ShapeError);
  EXPECT_THROW(loader.start(0, 5), ValueError);
  auto failing = [](const Tensor&, Generator&) -> Tensor { throw ValueError("augment failed"); };
  DataLoader broken(rows_0_to(4), Tensor(), {.batch_size = 2, .augment = failing});
  broken.start(0);
  EXPECT_THROW(drain(broken), ValueError);
  // Abandoning an epoch part-way and destroying the loader must not hang.
  DataLoader abandoned(rows_0_to(100), Tensor(), {.batch_size = 1, .prefetch = 1});
  abandoned.start(0);
  EXPECT_TRUE(abandoned.next().has_value());
}

TEST(DataLoader, OnDemandModeGivesTheSameBatchesAsTheBackgroundThread) {
  auto noise = [](const Tensor& x, Generator& gen) { return add(x, gen.uniform()); };
  DataLoader threaded(rows_0_to(23), Tensor::arange(23), {.batch_size = 5, .seed = 9, .augment = noise});
  DataLoader inline_(rows_0_to(23), Tensor::arange(23),
                     {.batch_size = 5, .background = false, .seed = 9, .augment = noise});
  for (int64_t epoch : {0, 3}) {
    threaded.start(epoch);
    inline_.start(epoch);
    EXPECT_EQ(drain(threaded), drain(inline_));
  }
  inline_.start(1, 2);
  threaded.start(1, 2);
  EXPECT_EQ(drain(threaded), drain(inline_));
}
