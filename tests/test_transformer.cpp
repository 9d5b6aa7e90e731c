// The Transformer layers (nn/transformer.h) and nn::GPT against PyTorch 1.13, and their unit tests.
//
// Golden tests: tests/golden/generate_golden.py writes tf_<case>.safetensors (float64) from
// nn.MultiheadAttention, nn.TransformerEncoderLayer(norm_first=True, gelu), nn.TransformerEncoder,
// an RMSNorm and a SwiGLU block written in torch, and a nanoGPT-style model with gpt.h's names;
// here the same weights go into neutrino's layers through load_state_dict, and the outputs and
// the gradients of sum(out * r) (the GPT: of its cross-entropy) for the input and every
// parameter must match: to 1e-9 in float64, and to 1e-5 in float32 (the weights and inputs cast
// down, against the float64 PyTorch values). Ten AdamW steps of the GPT in float32 must give
// PyTorch's ten losses within 1e-4 and its final parameters within 1e-5.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "neutrino/cli/config.h"
#include "neutrino/neutrino.h"
#include "neutrino/nn/gpt.h"
#include "neutrino/nn/layer_config.h"
#include "golden_util.h"
#include "test_util.h"

using namespace neutrino;
using namespace neutrino::nn;
using neutrino::testing::ErrorLog;
using neutrino::testing::expect_close;
using neutrino::testing::expect_error;
using neutrino::testing::GoldenFile;
using neutrino::testing::load_golden_file;
using neutrino::testing::set_dtype;
using json = nlohmann::json;

namespace {

const std::string kGoldenDir = NEUTRINO_GOLDEN_DIR;
constexpr DType kF64 = DType::kFloat64;
constexpr DType kF32 = DType::kFloat32;

double tolerance(DType dtype) { return dtype == kF64 ? 1e-9 : 1e-5; }

// A tf_ file: its tensors, the layer's options (attrs) and PyTorch's named_parameters() in order.
struct TfGolden : GoldenFile {
  json attrs;
  std::vector<std::string> params;
  // The parameters under their names, in `dtype`.
  std::map<std::string, Tensor> state(DType dtype) const {
    std::map<std::string, Tensor> out;
    for (const std::string& p : params) out[p] = cast(at(p), dtype);
    return out;
  }
};

TfGolden load_golden(const std::string& name) {
  TfGolden g{load_golden_file(name, "tf_" + name + ".safetensors"), {}, {}};
  g.attrs = json::parse(g.file.metadata.at("attrs"));
  if (g.file.metadata.count("params")) {
    g.params = json::parse(g.file.metadata.at("params")).get<std::vector<std::string>>();
  }
  return g;
}

std::vector<std::string> parameter_names(const Module& m) {
  std::vector<std::string> names;
  for (const auto& [name, p] : m.named_parameters()) names.push_back(name);
  return names;
}

// The layer a case's attrs describe.
LayerPtr layer_for(const TfGolden& g) {
  const json& a = g.attrs;
  if (g.name.starts_with("mha")) {
    return std::make_shared<MultiHeadAttention>(
        a["num_heads"].get<int64_t>(),
        MultiHeadAttentionOptions{.use_bias = a["use_bias"].get<bool>(), .causal = a["causal"].get<bool>(),
                                  .cross_attention = a["cross_attention"].get<bool>()});
  }
  if (g.name == "rms_norm") return std::make_shared<RMSNorm>(RMSNormOptions{.epsilon = a["epsilon"]});
  const int64_t heads = a["num_heads"], layers = a["num_layers"];
  if (layers > 0) {
    return std::make_shared<TransformerEncoder>(
        layers, heads, TransformerEncoderOptions{.dim_feedforward = a["dim_feedforward"], .mlp = a["mlp"],
                                                 .norm = a["norm"], .causal = a["causal"]});
  }
  return std::make_shared<TransformerBlock>(
      heads, TransformerBlockOptions{.dim_feedforward = a["dim_feedforward"], .mlp = a["mlp"],
                                     .norm = a["norm"], .causal = a["causal"]});
}

// Runs a layer case in `dtype`: PyTorch's parameter names (and order), the output and the
// gradient of sum(out * r) for x (and the value input xk) and every parameter.
void check_layer_case(const std::string& name, DType dtype) {
  SCOPED_TRACE(name + " in " + dtype_name(dtype));
  const TfGolden g = load_golden(name);
  const double tol = tolerance(dtype);
  ErrorLog log{fmt::format("{} ({})", name, dtype_name(dtype)), "tf golden"};
  LayerPtr layer = layer_for(g);
  const Tensor x = g.leaf("x", dtype);
  std::vector<Tensor> inputs = {x};
  std::vector<Shape> shapes = {Shape(x.shape().begin() + 1, x.shape().end())};
  if (g.has("xk")) {
    inputs.push_back(g.leaf("xk", dtype));
    shapes.push_back(Shape(inputs[1].shape().begin() + 1, inputs[1].shape().end()));
  }
  layer->build_for(shapes);
  EXPECT_EQ(parameter_names(*layer), g.params);
  set_dtype(*layer, dtype);
  layer->load_state_dict(g.state(dtype));
  const Tensor mask = g.has("mask") ? cast(g.at("mask"), DType::kBool) : Tensor();
  const Tensor out = inputs.size() == 2 ? layer->forward(inputs)
                                        : layer->forward(x, mask);
  EXPECT_EQ(out.dtype(), dtype);
  log.add(expect_close(out, g.at("out"), tol, "out"));
  backward(sum(mul(out, cast(g.at("r"), dtype))));
  log.add(expect_close(x.grad(), g.at("grad.x"), tol, "grad of x"));
  if (inputs.size() == 2) log.add(expect_close(inputs[1].grad(), g.at("grad.xk"), tol, "grad of xk"));
  for (const auto& [pname, p] : layer->named_parameters()) {
    ASSERT_TRUE(p.grad().defined()) << pname;
    log.add(expect_close(p.grad(), g.at("grad." + pname), tol, "grad of " + pname));
  }
}

void check_layer_case(const std::string& name) {
  check_layer_case(name, kF64);
  check_layer_case(name, kF32);
}

GPTOptions gpt_options(const json& a) {
  return {.vocab_size = a["vocab_size"], .context = a["context"], .layers = a["layers"],
          .heads = a["heads"], .d_model = a["d_model"]};
}

// Mean cross-entropy of logits (B, T, V) against targets (B, T).
Tensor lm_loss(const Tensor& logits, const Tensor& targets) {
  const int64_t rows = logits.size(0) * logits.size(1);
  return softmax_cross_entropy(reshape(logits, {rows, logits.size(2)}), reshape(targets, {rows}));
}

}  // namespace

// ---- golden ------------------------------------------------------------------------------------

TEST(TransformerGolden, MultiHeadAttention) { check_layer_case("mha"); }
TEST(TransformerGolden, MultiHeadAttentionCausal) { check_layer_case("mha_causal"); }
TEST(TransformerGolden, MultiHeadAttentionKeyPaddingMask) { check_layer_case("mha_padded"); }
TEST(TransformerGolden, MultiHeadAttentionCross) { check_layer_case("mha_cross"); }
TEST(TransformerGolden, MultiHeadAttentionNoBiasCausal) { check_layer_case("mha_no_bias_causal"); }
TEST(TransformerGolden, RMSNorm) { check_layer_case("rms_norm"); }
TEST(TransformerGolden, TransformerBlock) { check_layer_case("block"); }
TEST(TransformerGolden, TransformerBlockCausal) { check_layer_case("block_causal"); }
TEST(TransformerGolden, TransformerBlockSwiGLURMSNorm) { check_layer_case("block_swiglu_rms"); }
TEST(TransformerGolden, TransformerEncoderPadded) { check_layer_case("encoder_padded"); }

TEST(TransformerGolden, GPTLogitsAndEveryGradient) {
  const TfGolden g = load_golden("gpt");
  for (DType dtype : {kF64, kF32}) {
    SCOPED_TRACE(dtype_name(dtype));
    ErrorLog log{fmt::format("gpt ({})", dtype_name(dtype)), "tf golden"};
    GPT gpt(gpt_options(g.attrs));
    EXPECT_EQ(parameter_names(gpt), g.params);
    set_dtype(gpt, dtype);
    gpt.load_state_dict(g.state(dtype));
    const Tensor logits = gpt.forward(g.at("x"));
    log.add(expect_close(logits, g.at("logits"), tolerance(dtype), "logits"));
    const Tensor loss = lm_loss(logits, g.at("y"));
    log.add(expect_close(reshape(loss, {1}), g.at("loss"), tolerance(dtype), "loss"));
    backward(loss);
    for (const auto& [name, p] : gpt.named_parameters()) {
      ASSERT_TRUE(p.grad().defined()) << name;
      log.add(expect_close(p.grad(), g.at("grad." + name), tolerance(dtype), "grad of " + name));
    }
  }
}

TEST(TransformerGolden, GPTTenAdamWStepsMatchTorch) {
  const TfGolden g = load_golden("gpt_adamw");
  const json& a = g.attrs;
  GPT gpt(gpt_options(json::parse(g.file.metadata.at("gpt"))));
  std::map<std::string, Tensor> initial;
  for (const auto& [name, p] : gpt.named_parameters()) initial[name] = cast(g.at(name), kF32);
  gpt.load_state_dict(initial);
  // The decay mask as train/lm_trainer.cpp builds it: GPT::decayed_parameter_names (2-D weights).
  const std::vector<std::string> decayed_list = gpt.decayed_parameter_names();
  const std::set<std::string> decayed(decayed_list.begin(), decayed_list.end());
  std::vector<Tensor> params;
  std::vector<bool> decay;
  for (const auto& [name, p] : gpt.named_parameters()) {
    params.push_back(p);
    decay.push_back(decayed.count(name) > 0);
  }
  optim::AdamW opt({.learning_rate = a["lr"], .beta_1 = a["betas"][0], .beta_2 = a["betas"][1],
                    .epsilon = a["eps"], .weight_decay = a["weight_decay"]});
  opt.attach(params, decay);
  const std::vector<double> want = g.at("losses").to_vector<double>();
  ErrorLog loss_log{"gpt_adamw losses (float32)", "tf golden"};
  for (int64_t step = 0; step < a["steps"].get<int64_t>(); ++step) {
    opt.zero_grad();
    const Tensor loss = lm_loss(gpt.forward(g.at(fmt::format("x{}", step))), g.at(fmt::format("y{}", step)));
    const double got = loss.item();
    EXPECT_NEAR(got, want[static_cast<size_t>(step)], 1e-4) << "step " << step;
    loss_log.add(std::abs(got - want[static_cast<size_t>(step)]));
    backward(loss);
    opt.step();
  }
  // The final parameters, but for the key bias (c_attn.bias[d:2d]): it adds q . b_k to every
  // score of a query, which softmax ignores, so its true gradient is 0 and both sides hold only
  // rounding noise (1e-17 against 1e-9), which Adam's normalized step turns into updates of
  // either sign: those entries differ by up to lr * steps, and the losses do not see them.
  ErrorLog param_log{"gpt_adamw final parameters (float32)", "tf golden"};
  const int64_t d = gpt.options().d_model;
  for (const auto& [name, p] : gpt.named_parameters()) {
    const Tensor& want_p = g.at("final." + name);
    if (name.ends_with("attn.c_attn.bias")) {
      for (int64_t part : {0, 2}) {
        param_log.add(expect_close(slice(p, 0, part * d, (part + 1) * d),
                                   slice(want_p, 0, part * d, (part + 1) * d), 1e-5, "final " + name));
      }
      continue;
    }
    param_log.add(expect_close(p, want_p, 1e-5, "final " + name));
  }
}

TEST(TransformerGolden, EveryFileHasATest) {
  const std::set<std::string> want = {"mha", "mha_causal", "mha_padded", "mha_cross",
                                      "mha_no_bias_causal", "rms_norm", "block", "block_causal",
                                      "block_swiglu_rms", "encoder_padded", "gpt", "gpt_adamw"};
  std::set<std::string> have;
  for (const auto& entry : std::filesystem::directory_iterator(kGoldenDir)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with("tf_") && name.ends_with(".safetensors")) {
      have.insert(name.substr(3, name.size() - 3 - 12));
    }
  }
  EXPECT_EQ(have, want) << "run tests/golden/generate_golden.py, or add the case's test";
}

// ---- units -------------------------------------------------------------------------------------

TEST(TransformerLayers, ParameterNamesAndShapesArePyTorchs) {
  TransformerBlock block(2, {.input_shape = {5, 8}, .dim_feedforward = 16});
  block.build({5, 8});
  std::map<std::string, Shape> got;
  for (const auto& [name, p] : block.named_parameters()) got[name] = p.shape();
  const std::map<std::string, Shape> want = {
      {"self_attn.in_proj_weight", {24, 8}}, {"self_attn.in_proj_bias", {24}},
      {"self_attn.out_proj.weight", {8, 8}}, {"self_attn.out_proj.bias", {8}},
      {"linear1.weight", {16, 8}},           {"linear1.bias", {16}},
      {"linear2.weight", {8, 16}},           {"linear2.bias", {8}},
      {"norm1.weight", {8}},                 {"norm1.bias", {8}},
      {"norm2.weight", {8}},                 {"norm2.bias", {8}}};
  EXPECT_EQ(got, want);
  // weight_shapes (what a model file is checked against before anything is allocated) agrees.
  std::map<std::string, Shape> planned;
  for (const auto& [name, shape] : block.weight_shapes({5, 8})) planned[name] = shape;
  EXPECT_EQ(planned, want);

  TransformerEncoder enc(2, 2, {.mlp = "swiglu", .norm = "rmsnorm", .use_bias = false});
  enc.build({5, 8});
  std::vector<std::string> names = parameter_names(enc);
  std::vector<std::string> planned_names;
  for (const auto& [name, shape] : enc.weight_shapes({5, 8})) planned_names.push_back(name);
  EXPECT_EQ(names, planned_names);
  EXPECT_EQ(names.front(), "layers.0.self_attn.in_proj_weight");
  EXPECT_EQ(names.back(), "norm.weight");
  EXPECT_NE(std::find(names.begin(), names.end(), "layers.1.linear_gate.weight"), names.end());
  EXPECT_EQ(enc.count_params(), 2 * (4 * 64 + 3 * 32 * 8 + 2 * 8) + 8);  // dim_feedforward 32
}

TEST(TransformerLayers, ShapeErrorsNameTheLayerAndShapes) {
  expect_error<ShapeError>([] { MultiHeadAttention(3, {.name = "att"}).build({5, 8}); },
                           {"MultiHeadAttention 'att'", "num_heads (3)", "(5, 8)"});
  expect_error<ShapeError>([] { MultiHeadAttention(2, {.name = "att", .embed_dim = 6}).build({5, 8}); },
                           {"'att'", "embed_dim is 6", "(5, 8)"});
  expect_error<ShapeError>([] { TransformerBlock(2, {.name = "blk"}).build({8}); },
                           {"TransformerBlock 'blk'", "(8,)"});
  expect_error<ShapeError>([] { TransformerEncoder(2, 3, {.name = "enc"}).build({4, 8}); },
                           {"TransformerEncoder 'enc'", "(4, 8)"});
  // A built layer refuses another width, in the graph and when called.
  auto in = Input({5, 8});
  auto mha = std::make_shared<MultiHeadAttention>(2, MultiHeadAttentionOptions{.name = "att"});
  (*mha)(in);
  expect_error<ShapeError>([&] { (*mha)(Input({5, 4})); }, {"'att'", "(5, 4)"});
  expect_error<ShapeError>([&] { mha->forward(Tensor::zeros({2, 5, 4})); }, {"'att'", "(5, 4)"});
  auto cross = std::make_shared<MultiHeadAttention>(2, MultiHeadAttentionOptions{.name = "x", .cross_attention = true});
  expect_error<ShapeError>([&] { (*cross)({Input({5, 8}), Input({7, 6})}); },
                           {"'x'", "(5, 8)", "(7, 6)"});
  expect_error<ValueError>([&] { (*cross)(Input({5, 8})); }, {"takes 2 inputs, got 1"});
  expect_error<ValueError>([] { TransformerBlock(2, {.mlp = "tanh"}); }, {"mlp", "tanh"});
  expect_error<ValueError>([] { TransformerEncoder(0, 2); }, {"num_layers"});
}

TEST(TransformerLayers, LayerNormalizationNormalizesTheLastAxisOfSequences) {
  manual_seed(3);
  LayerNormalization ln({.epsilon = 1e-5});
  const Tensor x = add(mul(Tensor::normal({2, 3, 8}, 0.0, 1.0), 3.0), 1.0);
  const Tensor y = ln.forward(x);
  ASSERT_EQ(y.shape(), x.shape());
  const std::vector<double> v = y.to_vector<double>();
  for (size_t row = 0; row < 6; ++row) {
    double mean = 0, sq = 0;
    for (size_t i = 0; i < 8; ++i) mean += v[row * 8 + i] / 8;
    for (size_t i = 0; i < 8; ++i) sq += (v[row * 8 + i] - mean) * (v[row * 8 + i] - mean) / 8;
    EXPECT_NEAR(mean, 0, 1e-5);
    EXPECT_NEAR(sq, 1, 1e-3);
  }
}

TEST(TransformerLayers, MaskedStepsDoNotChangeTheRealOnes) {
  manual_seed(5);
  TransformerEncoder enc(2, 2, {.input_shape = {6, 8}});
  enc.build({6, 8});
  enc.eval();
  const Tensor x = Tensor::normal({2, 6, 8}, 0.0, 1.0);
  std::vector<uint8_t> keep = {1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0};
  const Tensor mask = cast(Tensor::from_vector(std::vector<int64_t>(keep.begin(), keep.end()), {2, 6}), DType::kBool);
  Tensor changed = clone(x);
  slice(slice(changed, 0, 1, 2), 1, 3, 6).copy_(Tensor::full({1, 3, 8}, 7.0));
  const Tensor a = enc.forward(x, mask), b = enc.forward(changed, mask);
  EXPECT_EQ(slice(slice(a, 0, 1, 2), 1, 0, 3).to_vector<float>(),
            slice(slice(b, 0, 1, 2), 1, 0, 3).to_vector<float>());
  EXPECT_EQ(slice(a, 0, 0, 1).to_vector<float>(), slice(b, 0, 0, 1).to_vector<float>());
  EXPECT_NE(a.to_vector<float>(), enc.forward(changed).to_vector<float>());  // without the mask
}

TEST(TransformerLayers, DropoutActsInTrainingOnly) {
  manual_seed(4);
  const Tensor x = Tensor::normal({2, 5, 8}, 0.0, 1.0);
  MultiHeadAttention mha(2, {.dropout = 0.5});
  TransformerEncoder enc(2, 2, {.dropout = 0.3});
  for (Layer* layer : std::vector<Layer*>{&mha, &enc}) {
    SCOPED_TRACE(layer->type_name());
    layer->build({5, 8});
    EXPECT_NE(layer->forward(x).to_vector<float>(), layer->forward(x).to_vector<float>());
    layer->eval();
    EXPECT_EQ(layer->forward(x).to_vector<float>(), layer->forward(x).to_vector<float>());
  }
}

TEST(TransformerLayers, GraphModelSavesAndLoadsWithIdenticalOutputs) {
  const auto dir = neutrino::testing::fresh_temp_dir("transformer_save");
  manual_seed(7);
  auto tokens = Input({6}, "tokens");
  auto memory = Input({4, 16}, "memory");
  auto h = Embedding(20, 16, {.mask_zero = true})(tokens);
  h = TransformerEncoder(2, 4, {.dim_feedforward = 32, .causal = true})(h);
  h = TransformerBlock(2, {.mlp = "swiglu", .norm = "rmsnorm"})(h);
  h = MultiHeadAttention(4, {.cross_attention = true})({h, memory});
  h = RMSNorm()(h);
  auto y = Dense(3, "softmax")(GlobalAveragePooling1D()(h));
  train::Model model({tokens, memory}, {y});
  const std::string summary = model.summary();
  EXPECT_NE(summary.find("TransformerEncoder"), std::string::npos) << summary;
  const Tensor ids = Tensor::from_vector(std::vector<int64_t>{1, 2, 3, 0, 0, 0, 4, 5, 6, 7, 8, 9}, {2, 6});
  const Tensor mem = Tensor::normal({2, 4, 16}, 0.0, 1.0);
  const Tensor before = model.predict({ids, mem});
  const std::string path = (dir / "tf.safetensors").string();
  train::save_model(path, model);
  train::Model loaded = train::load_model(path).model;
  EXPECT_EQ(loaded.predict({ids, mem}).to_vector<float>(), before.to_vector<float>());
  EXPECT_EQ(loaded.state_dict().size(), model.state_dict().size());
  std::filesystem::remove_all(dir);
}

TEST(TransformerLayers, SequentialAndConfigRoundTrip) {
  manual_seed(9);
  train::Sequential seq({TransformerBlock(2, {.input_shape = {5, 8}, .causal = true}),
                         TransformerEncoder(1, 2, {.final_norm = false}), GlobalAveragePooling1D(),
                         Dense(2)});
  const Tensor x = Tensor::normal({3, 5, 8}, 0.0, 1.0);
  const Tensor out = seq.predict(x);
  EXPECT_EQ(out.shape(), (Shape{3, 2}));
  for (const LayerPtr& layer : seq.layers()) {
    const LayerPtr copy = layer_from_config(layer_to_config(*layer), "copy");
    EXPECT_EQ(layer_to_config(*copy), layer_to_config(*layer));
  }
  const std::string text = layer_to_config(*seq.layers()[0]);
  EXPECT_NE(text.find("\"causal\":true"), std::string::npos) << text;
  EXPECT_NE(describe_layer_options().find("TransformerEncoder(num_layers, num_heads)"), std::string::npos);
}

TEST(TransformerLayers, BuildsFromAYamlConfig) {
  const auto dir = neutrino::testing::fresh_temp_dir("transformer_yaml");
  const std::string yaml =
      "data:\n  train: iris\nmodel:\n  input_shape: [10]\n  layers:\n"
      "    - Embedding: {input_dim: 50, output_dim: 16, mask_zero: true}\n"
      "    - TransformerEncoder: {num_layers: 2, num_heads: 4, dim_feedforward: 32, dropout: 0.1}\n"
      "    - MultiHeadAttention: {num_heads: 2, causal: true}\n"
      "    - RMSNorm: {epsilon: 1.0e-5}\n"
      "    - TransformerBlock: {num_heads: 2, mlp: swiglu, norm: rmsnorm}\n"
      "    - GlobalAveragePooling1D\n"
      "    - Dense: {units: 4, activation: softmax}\n";
  {
    std::ofstream(dir / "tf.yaml") << yaml;
  }
  const cli::Experiment ex = cli::load_experiment((dir / "tf.yaml").string());
  manual_seed(1);
  train::Model model = train::model_from_json(ex.model);
  const Tensor ids = Tensor::from_vector(std::vector<int64_t>(20, 3), {2, 10});
  EXPECT_EQ(model.predict(ids).shape(), (Shape{2, 4}));
  const auto state = model.state_dict();
  EXPECT_TRUE(state.count("transformer_encoder.layers.1.self_attn.in_proj_weight"));
  EXPECT_TRUE(state.count("transformer_block.linear_gate.weight"));
  EXPECT_TRUE(state.count("multi_head_attention.out_proj.bias"));
  EXPECT_TRUE(state.count("rms_norm.weight"));

  std::ofstream(dir / "bad.yaml") << "data:\n  train: iris\nmodel:\n  input_shape: [10, 8]\n  layers:\n"
                                     "    - TransformerBlock: {num_heads: 2, mlp: tanh}\n";
  expect_error<ValueError>([&] { cli::load_experiment((dir / "bad.yaml").string()); },
                           {"TransformerBlock", "mlp"});
  std::filesystem::remove_all(dir);
}

TEST(TransformerLayers, ATransformerClassifierTrains) {
  // Whether token 7 occurs in a row of 6 tokens: attention over the sequence, then pooling.
  manual_seed(21);
  const int64_t n = 128, t = 6;
  std::vector<int64_t> ids(static_cast<size_t>(n * t)), labels(static_cast<size_t>(n));
  const std::vector<double> draws = Tensor::uniform({n * t}, 0.0, 1.0).to_vector<double>();
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < t; ++j) {
      const auto k = static_cast<size_t>(i * t + j);
      ids[k] = 1 + static_cast<int64_t>(draws[k] * 8.999);
      labels[static_cast<size_t>(i)] |= ids[k] == 7 ? 1 : 0;
    }
  }
  auto in = Input({t});
  auto h = Embedding(10, 16)(in);
  h = TransformerEncoder(1, 2, {.dim_feedforward = 32, .dropout = 0.1})(h);
  auto y = Dense(2, "softmax")(GlobalAveragePooling1D()(h));
  train::Model model(in, y);
  model.compile(optim::Adam({.learning_rate = 0.01}), "sparse_categorical_crossentropy", {"accuracy"});
  const auto history = model.fit(Tensor::from_vector(ids, {n, t}), Tensor::from_vector(labels, {n}),
                                 {.epochs = 25, .batch_size = 16, .verbose = 0});
  const std::vector<double>& loss = history.history.at("loss");
  EXPECT_LT(loss.back(), 0.5 * loss.front()) << loss.front() << " -> " << loss.back();
}
