// Option structs are described once (io/option_fields.h): the same table reads configs, writes
// model files and lists the defaults for `neutrino options`.
#include <gtest/gtest.h>

#include "neutrino/cli/config.h"
#include "neutrino/nn/layer_config.h"
#include "test_util.h"

using namespace neutrino;
using neutrino::testing::expect_error;
using neutrino::testing::run_cli;

TEST(OptionFields, DefaultsComeFromTheStructs) {
  const std::string doc = cli::describe_config_options();
  // AdamW's weight decay is its own struct's default, not Adam's.
  EXPECT_NE(doc.find("adamw: learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-07, "
                     "amsgrad=false, weight_decay=0.004"), std::string::npos) << doc;
  EXPECT_NE(doc.find("adam: learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-07, "
                     "amsgrad=false, weight_decay=0.0,"), std::string::npos) << doc;
  EXPECT_NE(doc.find("BatchNormalization: momentum=0.99, epsilon=0.001"), std::string::npos) << doc;
  const auto listed = run_cli("options");
  ASSERT_EQ(listed.code, 0) << listed.output;
  EXPECT_EQ(listed.output, doc);
}

TEST(OptionFields, ReadingChecksRangesAndUnknownKeys) {
  EXPECT_NE(cli::make_optimizer_from(R"({"adamw": {"learning_rate": 0.01}})", "compile.optimizer"), nullptr);
  expect_error<ValueError>([] { cli::make_optimizer_from(R"({"sgd": {"momentum": 2}})", "compile.optimizer"); },
                           {"compile.optimizer.sgd.momentum"});
  expect_error<ValueError>([] { cli::make_optimizer_from(R"({"adam": {"beta1": 0.5}})", "compile.optimizer"); },
                           {"compile.optimizer.adam", "beta1"});
  expect_error<ValueError>(
      [] { cli::make_callbacks_from(R"([{"EarlyStopping": {"patience": -1}}])", "fit.callbacks"); },
      {"fit.callbacks[0].EarlyStopping.patience"});
}

TEST(OptionFields, LayerConfigsRoundTripThroughTheTable) {
  const std::string text =
      R"({"Conv2D": {"filters": 4, "kernel_size": [3, 5], "strides": 2, "padding": "same", "use_bias": false}})";
  const nn::LayerPtr layer = nn::layer_from_config(text, "layer");
  const std::string written = nn::layer_to_config(*layer);
  EXPECT_NE(written.find(R"("strides":[2,2])"), std::string::npos) << written;
  EXPECT_NE(written.find(R"("use_bias":false)"), std::string::npos) << written;
  EXPECT_NE(written.find(R"("activation":"linear")"), std::string::npos) << written;
  EXPECT_EQ(nn::layer_to_config(*nn::layer_from_config(written, "again")), written);
}
