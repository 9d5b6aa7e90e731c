// GPTBackbone: a GPT as a layer of a Keras-style model (the classifier head of issue 13). Pooling
// picks the last real token's or the mean of the real tokens' hidden states; trailing padding
// changes nothing; configs (GPT options or from_model, pretrained or not) and model files keep
// the weights; bad options name the field.
#include <gtest/gtest.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "neutrino/autograd/autograd.h"
#include "neutrino/core/error.h"
#include "neutrino/core/random.h"
#include "neutrino/nn/gpt_backbone.h"
#include "neutrino/nn/layer_config.h"
#include "neutrino/ops/ops.h"
#include "neutrino/train/language_model.h"
#include "test_util.h"

namespace neutrino {
namespace {

namespace fs = std::filesystem;

const nn::GPTOptions kTiny{.vocab_size = 16, .context = 12, .layers = 2, .heads = 2, .d_model = 8};

Tensor ids(const std::vector<int64_t>& values, int64_t batch) {
  return Tensor::from_vector(values, {batch, static_cast<int64_t>(values.size()) / batch});
}

TEST(GPTBackbone, PoolsTheRealTokensAndIgnoresTrailingPadding) {
  manual_seed(3);
  auto last = std::make_shared<nn::GPTBackbone>(kTiny, nn::GPTBackboneOptions{.pooling = "last"});
  last->build({6});
  last->eval();
  const Tensor x = ids({5, 6, 7, 0, 0, 0, 4, 9, 10, 11, 12, 13}, 2);
  const Tensor hidden = last->gpt().hidden_states(x);  // (2, 6, 8)
  const auto h = hidden.to_vector<float>();
  const auto pooled = last->forward(x).to_vector<float>();
  ASSERT_EQ(pooled.size(), 16u);
  for (int64_t k = 0; k < 8; ++k) {
    EXPECT_FLOAT_EQ(pooled[static_cast<size_t>(k)], h[static_cast<size_t>(2 * 8 + k)]);
    EXPECT_FLOAT_EQ(pooled[static_cast<size_t>(8 + k)], h[static_cast<size_t>(6 * 8 + 5 * 8 + k)]);
  }
  // The same text with less padding pools to the same vector.
  const auto shorter = last->forward(ids({5, 6, 7, 0}, 1)).to_vector<float>();
  for (size_t k = 0; k < 8; ++k) EXPECT_NEAR(shorter[k], pooled[k], 1e-6);

  nn::GPTBackbone mean(kTiny, {.pooling = "mean"});
  mean.build({6});
  mean.gpt().load_state_dict(last->gpt().state_dict());
  mean.eval();
  const auto averaged = mean.forward(x).to_vector<float>();
  for (int64_t k = 0; k < 8; ++k) {
    const double expected = (h[static_cast<size_t>(k)] + h[static_cast<size_t>(8 + k)] +
                             h[static_cast<size_t>(16 + k)]) / 3.0;
    EXPECT_NEAR(averaged[static_cast<size_t>(k)], expected, 1e-6);
  }
}

TEST(GPTBackbone, GradientsReachEveryGptWeight) {
  manual_seed(4);
  nn::GPTBackbone layer(kTiny, {.pooling = "mean"});
  layer.build({5});
  backward(sum(layer.forward(ids({1, 2, 3, 4, 0, 7, 8, 0, 0, 0}, 2))));
  for (const auto& [name, p] : layer.named_parameters()) {
    if (name.find("wpe") != std::string::npos) continue;  // unused positions get zeros
    ASSERT_TRUE(p.grad().defined()) << name;
  }
}

TEST(GPTBackbone, ConfigFromModelFileAndRoundTrip) {
  const fs::path dir = testing::fresh_temp_dir("gpt_backbone");
  manual_seed(5);
  nn::GPT gpt(kTiny);
  train::save_language_model((dir / "lm.safetensors").string(), gpt);
  const std::string spec = nlohmann::json{{"GPTBackbone", {{"from_model", (dir / "lm.safetensors").string()},
                                                           {"pooling", "mean"}}}}.dump();
  auto layer = nn::layer_from_config(spec, "model.layers[0]");
  auto* backbone = dynamic_cast<nn::GPTBackbone*>(layer.get());
  ASSERT_NE(backbone, nullptr);
  const auto want = gpt.state_dict();
  for (const auto& [name, t] : backbone->gpt().state_dict()) {
    EXPECT_EQ(t.to_vector<float>(), want.at(name).to_vector<float>()) << name;
  }
  // Saved as GPT options, so the config alone rebuilds the architecture.
  const auto saved = nlohmann::json::parse(nn::layer_to_config(*layer));
  EXPECT_EQ(saved["GPTBackbone"]["GPT"]["d_model"], 8);
  EXPECT_EQ(saved["GPTBackbone"]["pooling"], "mean");
  EXPECT_FALSE(saved["GPTBackbone"].contains("from_model"));
  auto rebuilt = nn::layer_from_config(saved.dump(), "architecture");
  EXPECT_EQ(dynamic_cast<nn::GPTBackbone*>(rebuilt.get())->gpt_options().layers, 2);

  // pretrained: false takes the architecture only.
  const std::string fresh = nlohmann::json{{"GPTBackbone", {{"from_model", (dir / "lm.safetensors").string()},
                                                            {"pretrained", false}}}}.dump();
  auto random = nn::layer_from_config(fresh, "model.layers[0]");
  EXPECT_NE(dynamic_cast<nn::GPTBackbone*>(random.get())->gpt().state_dict().at("transformer.wte.weight")
                .to_vector<float>(),
            want.at("transformer.wte.weight").to_vector<float>());
  fs::remove_all(dir);
}

TEST(GPTBackbone, BadOptionsNameTheField) {
  auto message = [](const std::string& spec) {
    try {
      nn::layer_from_config(spec, "model.layers[0]");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(R"({"GPTBackbone": {"pooling": "max", "GPT": {"vocab_size": 8, "context": 4,
            "layers": 1, "heads": 1, "d_model": 4}}})").find("pooling"), std::string::npos);
  EXPECT_NE(message(R"({"GPTBackbone": {}})").find("either GPT"), std::string::npos);
  EXPECT_NE(message(R"({"GPTBackbone": {"from_model": "/nonexistent/lm.safetensors"}})")
                .find("/nonexistent/lm.safetensors"), std::string::npos);
  nn::GPTBackbone layer(kTiny);
  EXPECT_THROW(layer.build({13}), ShapeError);  // beyond the context of 12
}

}  // namespace
}  // namespace neutrino
