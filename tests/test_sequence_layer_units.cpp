// The sequence layers (nn/recurrent.h, nn/sequence.h) on their own: shapes, parameter counts and
// summaries, config round trips, the errors of bad configs and inputs, a float64 gradient check
// through time of stacked and masked models, go_backwards, and masks through Bidirectional and
// the global poolings. (The goldens against PyTorch are in test_sequence_layers.cpp.)
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>

#include "neutrino/neutrino.h"
#include "neutrino/nn/layer_config.h"
#include "test_util.h"

using namespace neutrino;
using namespace neutrino::nn;
using neutrino::testing::expect_error;
using neutrino::testing::set_dtype;
using json = nlohmann::json;
using train::Sequential;

namespace {

constexpr DType kF64 = DType::kFloat64;
constexpr DType kF32 = DType::kFloat32;

LayerPtr config_layer(const std::string& text, const std::string& path) {
  return layer_from_config(text, path);
}

int64_t count_params(const Module& m) {
  int64_t n = 0;
  for (const auto& [name, t] : m.state_dict()) n += t.numel();
  return n;
}

}  // namespace

// ---- shapes, parameter counts, summaries ---------------------------------------------------

TEST(SequenceLayers, OutputShapesAndParameterCounts) {
  const Shape in{7, 4};
  struct Row {
    LayerPtr layer;
    Shape out;
    int64_t params;
  };
  // PyTorch's two biases: G * units * (features + units + 2).
  const std::vector<Row> rows = {
      {std::make_shared<SimpleRNN>(5), {5}, 5 * (4 + 5 + 2)},
      {std::make_shared<SimpleRNN>(5, RecurrentOptions{.return_sequences = true}), {7, 5}, 55},
      {std::make_shared<LSTM>(5), {5}, 4 * 55},
      {std::make_shared<LSTM>(5, RecurrentOptions{.use_bias = false}), {5}, 4 * 5 * 9},
      {std::make_shared<GRU>(5, RecurrentOptions{.return_sequences = true}), {7, 5}, 3 * 55},
      {std::make_shared<Bidirectional>(LSTM(5)), {10}, 2 * 4 * 55},
      {std::make_shared<Bidirectional>(GRU(5, {.return_sequences = true})), {7, 10}, 2 * 3 * 55},
      {std::make_shared<Bidirectional>(SimpleRNN(5), BidirectionalOptions{.merge_mode = "sum"}),
       {5},
       110},
      {std::make_shared<Conv1D>(6, 3), {5, 6}, 6 * 4 * 3 + 6},
      {std::make_shared<Conv1D>(6, 3, Conv1DOptions{.padding = "same"}), {7, 6}, 78},
      {std::make_shared<Conv1D>(6, 3, Conv1DOptions{.strides = 2, .padding = "causal"}),
       {4, 6},
       78},
      {std::make_shared<Conv1D>(6, 3, Conv1DOptions{.dilation_rate = 2, .use_bias = false}),
       {3, 6},
       72},
      {std::make_shared<MaxPooling1D>(2), {3, 4}, 0},
      {std::make_shared<MaxPooling1D>(2, Pool1DOptions{.padding = "same"}), {4, 4}, 0},
      {std::make_shared<MaxPooling1D>(3, Pool1DOptions{.strides = 1}), {5, 4}, 0},
      {std::make_shared<GlobalAveragePooling1D>(), {4}, 0},
      {std::make_shared<GlobalMaxPooling1D>(), {4}, 0},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(layer_to_config(*row.layer));
    EXPECT_EQ(row.layer->output_shape(in), row.out);
    row.layer->build(in);
    EXPECT_EQ(row.layer->count_params(), row.params);
    NoGradGuard no_grad;
    const Tensor y = row.layer->forward(Tensor::normal({2, 7, 4}, 0, 1));
    Shape want{2};
    want.insert(want.end(), row.out.begin(), row.out.end());
    EXPECT_EQ(y.shape(), want);
  }
  // The weights carry PyTorch's names and layouts.
  Bidirectional bi(LSTM(5));
  bi.build({7, 4});
  std::set<std::string> names;
  for (const auto& [name, t] : bi.state_dict()) names.insert(name + shape_str(t.shape()));
  EXPECT_EQ(names,
            (std::set<std::string>{"weight_ih_l0(20, 4)", "weight_hh_l0(20, 5)", "bias_ih_l0(20,)",
                                   "bias_hh_l0(20,)", "weight_ih_l0_reverse(20, 4)",
                                   "weight_hh_l0_reverse(20, 5)", "bias_ih_l0_reverse(20,)",
                                   "bias_hh_l0_reverse(20,)"}));
  // Keras's unit_forget_bias: the forget gate's bias starts at 1 (on b_ih only; the two add).
  EXPECT_EQ(slice(bi.state_dict().at("bias_ih_l0"), 0, 5, 10).to_vector<double>(),
            std::vector<double>(5, 1.0));
  EXPECT_EQ(slice(bi.state_dict().at("bias_hh_l0"), 0, 5, 10).to_vector<double>(),
            std::vector<double>(5, 0.0));
  Conv1D conv(6, 3);
  conv.build({7, 4});
  EXPECT_EQ(conv.state_dict().at("weight").shape(), (Shape{6, 4, 3}));
}

TEST(SequenceLayers, SummaryOfATextModel) {
  Sequential model({Embedding(50, 8, {.input_shape = {12}, .mask_zero = true}),
                    Conv1D(16, 3, {.padding = "same", .activation = "relu"}), MaxPooling1D(2),
                    Bidirectional(LSTM(10, {.return_sequences = true})), GRU(6), Dense(3)});
  const std::string s = model.summary();
  for (const std::string part :
       {"embedding (Embedding)", "(None, 12, 8)", "conv1d (Conv1D)", "(None, 12, 16)",
        "max_pooling1d (MaxPooling1D)", "(None, 6, 16)", "bidirectional (Bidirectional)",
        "(None, 6, 20)", "gru (GRU)", "(None, 6)", "dense (Dense)", "(None, 3)"}) {
    EXPECT_NE(s.find(part), std::string::npos) << part << " not in\n" << s;
  }
  const int64_t total =
      50 * 8 + (16 * 8 * 3 + 16) + 2 * 4 * 10 * (16 + 10 + 2) + 3 * 6 * (20 + 6 + 2) + (6 * 3 + 3);
  EXPECT_EQ(count_params(model), total);
  EXPECT_NE(s.find(fmt::format("Total params: {}", total)), std::string::npos) << s;
}

// ---- configs ------------------------------------------------------------------------------

TEST(SequenceLayers, ConfigsRoundTrip) {
  const std::vector<LayerPtr> layers = {
      std::make_shared<SimpleRNN>(
          5, RecurrentOptions{.name = "s", .activation = "relu", .go_backwards = true}),
      std::make_shared<LSTM>(7, RecurrentOptions{.input_shape = {9, 3},
                                                 .use_bias = false,
                                                 .return_sequences = true,
                                                 .unit_forget_bias = false}),
      std::make_shared<GRU>(3, RecurrentOptions{.kernel_initializer = "he_normal"}),
      std::make_shared<Bidirectional>(
          LSTM(4, {.return_sequences = true, .recurrent_initializer = "glorot_uniform"}),
          BidirectionalOptions{.input_shape = {6, 2}, .name = "bi", .merge_mode = "ave"}),
      std::make_shared<Conv1D>(8, 5,
                               Conv1DOptions{.strides = 2,
                                             .padding = "causal",
                                             .dilation_rate = 3,
                                             .activation = "tanh",
                                             .use_bias = false}),
      std::make_shared<MaxPooling1D>(3, Pool1DOptions{.strides = 1, .padding = "same"}),
      std::make_shared<GlobalAveragePooling1D>(LayerOptions{.name = "gap"}),
      std::make_shared<GlobalMaxPooling1D>(),
  };
  for (const LayerPtr& layer : layers) {
    const std::string text = layer_to_config(*layer);
    SCOPED_TRACE(text);
    const LayerPtr back = layer_from_config(text, "layer");
    EXPECT_EQ(back->type_name(), layer->type_name());
    EXPECT_EQ(layer_to_config(*back), text);
  }
  // The nested layer keeps its options; the copy builds the same weights.
  const auto bi =
      std::dynamic_pointer_cast<Bidirectional>(layer_from_config(layer_to_config(*layers[3]), "x"));
  ASSERT_NE(bi, nullptr);
  EXPECT_EQ(bi->layer().type_name(), "LSTM");
  EXPECT_TRUE(bi->layer().options().return_sequences);
  EXPECT_EQ(bi->options().merge_mode, "ave");
  EXPECT_EQ(bi->name(), "bi");
  EXPECT_EQ(bi->declared_input_shape(), (Shape{6, 2}));
  EXPECT_EQ(bi->output_shape({6, 2}), (Shape{6, 4}));
  // A config as a user writes it.
  const LayerPtr from_yaml_like = config_layer(
      R"({"Bidirectional": {"layer": {"GRU": {"units": 3, "return_sequences": true}}, "merge_mode": "sum"}})",
      "model.layers[1]");
  EXPECT_EQ(from_yaml_like->output_shape({5, 2}), (Shape{5, 3}));
  EXPECT_EQ(config_layer(R"({"Conv1D": {"filters": 2, "kernel_size": 3, "padding": "same"}})", "c")
                ->output_shape({5, 2}),
            (Shape{5, 2}));
}

TEST(SequenceLayers, BadConfigsAndInputsGiveClearErrors) {
  // An LSTM's or GRU's activation is fixed.
  expect_error<ValueError>([] { LSTM(4, {.activation = "relu"}); }, {"LSTM", "activation", "relu"});
  expect_error<ValueError>([] { GRU(4, {.activation = "relu"}); }, {"GRU", "activation"});
  expect_error<ValueError>(
      [] { config_layer(R"({"LSTM": {"units": 4, "activation": "relu"}})", "model.layers[0]"); },
      {"LSTM", "activation", "relu"});
  expect_error<ValueError>([] { SimpleRNN(4, {.activation = "sigmoid"}); },
                           {"SimpleRNN", "sigmoid"});
  expect_error<ValueError>([] { LSTM(0); }, {"LSTM", "units"});
  expect_error<ValueError>([] { LSTM(4, {.kernel_initializer = "nope"}); },
                           {"LSTM", "initializer", "nope"});
  // Bidirectional wraps a recurrent layer.
  expect_error<ValueError>([] { Bidirectional(Dense(4)); }, {"Bidirectional", "Dense"});
  expect_error<ValueError>(
      [] {
        config_layer(R"({"Bidirectional": {"layer": {"Dense": {"units": 2}}}})", "model.layers[2]");
      },
      {"Bidirectional", "Dense"});
  expect_error<ValueError>([] { config_layer(R"({"Bidirectional": {}})", "model.layers[2]"); },
                           {"model.layers[2]", "layer"});
  expect_error<ValueError>([] { Bidirectional(LSTM(3), {.merge_mode = "max"}); },
                           {"merge_mode", "max"});
  // Conv1D and MaxPooling1D: windows longer than the input, and bad options.
  expect_error<ShapeError>(
      [] {
        Conv1D(2, 5, {.name = "c"}).output_shape({3, 2});
      },
      {"Conv1D 'c'", "(3, 2)", "too short"});
  expect_error<ShapeError>([] { Conv1D(2, 5).build({3, 2}); }, {"Conv1D", "(3, 2)"});
  expect_error<ShapeError>(
      [] {
        Conv1D(2, 3, {.name = "c", .dilation_rate = 3}).output_shape({6, 2});
      },
      {"Conv1D 'c'", "dilation_rate 3", "7"});
  expect_error<ValueError>([] { Conv1D(2, 3, {.padding = "full"}); },
                           {"Conv1D", "padding", "full"});
  expect_error<ValueError>([] { Conv1D(2, 0); }, {"Conv1D", "kernel_size"});
  expect_error<ValueError>(
      [] { config_layer(R"({"Conv1D": {"filters": 2, "kernel_size": 0}})", "model.layers[1]"); },
      {"model.layers[1].Conv1D.kernel_size"});
  expect_error<ShapeError>(
      [] {
        MaxPooling1D(4, {.name = "p"}).output_shape({3, 2});
      },
      {"MaxPooling1D 'p'", "(3, 2)"});
  // Inputs of the wrong rank name the layer and the shape.
  expect_error<ShapeError>([] { LSTM(3, {.name = "enc"}).output_shape({12}); },
                           {"LSTM 'enc'", "(steps, features)", "(12,)"});
  expect_error<ShapeError>(
      [] {
        GRU(3, {.name = "g"}).build({4, 5, 6});
      },
      {"GRU 'g'", "(4, 5, 6)"});
  expect_error<ShapeError>(
      [] {
        Bidirectional(SimpleRNN(3), {.name = "bi"}).output_shape({2, 3, 4});
      },
      {"(2, 3, 4)"});
  for (const auto& layer :
       std::vector<LayerPtr>{std::make_shared<Conv1D>(2, 3, Conv1DOptions{.name = "c1"}),
                             std::make_shared<MaxPooling1D>(2, Pool1DOptions{.name = "p1"}),
                             std::make_shared<GlobalAveragePooling1D>(LayerOptions{.name = "g1"}),
                             std::make_shared<GlobalMaxPooling1D>(LayerOptions{.name = "g2"})}) {
    expect_error<ShapeError>(
        [&] {
          layer->output_shape({3, 4, 5});
        },
        {layer->type_name(), "'" + layer->name() + "'", "(3, 4, 5)"});
  }
  // A built layer given other features per step.
  LSTM lstm(3, {.name = "enc"});
  lstm.build({5, 4});
  expect_error<ShapeError>(
      [&] {
        lstm(Tensor::zeros({2, 5, 6}));
      },
      {"LSTM 'enc'", "4 features", "(2, 5, 6)"});
  expect_error<ShapeError>([&] { lstm(Tensor::zeros({2, 5})); }, {"LSTM 'enc'", "(2, 5)"});
  Bidirectional bi(GRU(3), {.name = "bi"});
  bi.build({5, 4});
  expect_error<ShapeError>(
      [&] {
        bi(Tensor::zeros({2, 5, 6}));
      },
      {"Bidirectional 'bi'", "4 features", "(2, 5, 6)"});
  expect_error<ShapeError>([&] { bi(Tensor::zeros({2, 5})); }, {"Bidirectional 'bi'", "(2, 5)"});
  Conv1D conv(2, 3, {.name = "c2"});
  conv.build({9, 3});
  expect_error<ShapeError>(
      [&] {
        conv(Tensor::zeros({2, 9, 5}));
      },
      {"Conv1D 'c2'", "3 channels", "(2, 9, 5)"});
  expect_error<ShapeError>([&] { conv(Tensor::zeros({2, 9})); }, {"Conv1D 'c2'", "(2, 9)"});
  for (const auto& layer :
       std::vector<LayerPtr>{std::make_shared<GlobalAveragePooling1D>(LayerOptions{.name = "g1"}),
                             std::make_shared<GlobalMaxPooling1D>(LayerOptions{.name = "g2"}),
                             std::make_shared<MaxPooling1D>(2, Pool1DOptions{.name = "p1"})}) {
    layer->build({5, 4});
    expect_error<ShapeError>(
        [&] {
          layer->forward(Tensor::zeros({2, 4}));
        },
        {layer->type_name(), "'" + layer->name() + "'", "(2, 4)"});
  }
  // A mask of the wrong shape.
  expect_error<ShapeError>(
      [&] {
        lstm.forward(Tensor::zeros({2, 5, 4}), Tensor::zeros({2, 4}, DType::kBool));
      },
      {"LSTM 'enc'", "mask"});
}

// ---- gradients through time ---------------------------------------------------------------

namespace {

// Central differences of L = sum(f() * R) with respect to every element of `leaves` (float64,
// changed in place and restored), against backward(L): |analytic - numeric| <= 1e-6 max(1,
// |numeric|).
void check_gradients_through_time(const std::function<Tensor()>& f,
                                  const std::vector<Tensor>& leaves,
                                  const std::vector<std::string>& names) {
  const Tensor out = f();
  const Tensor r = Tensor::normal(out.shape(), 0, 1, kF64);
  for (Tensor t : leaves) t.zero_grad();
  backward(sum(mul(out, r)));
  NoGradGuard no_grad;
  const auto loss = [&] { return sum(mul(f(), r)).item(); };
  constexpr double h = 1e-6;
  double worst = 0;
  for (size_t k = 0; k < leaves.size(); ++k) {
    SCOPED_TRACE(names[k]);
    ASSERT_TRUE(leaves[k].grad().defined());
    const std::vector<double> analytic = leaves[k].grad().to_vector<double>();
    double* p = leaves[k].data<double>();
    ASSERT_TRUE(leaves[k].is_contiguous());
    for (int64_t i = 0; i < leaves[k].numel(); ++i) {
      const double saved = p[i];
      p[i] = saved + h;
      const double up = loss();
      p[i] = saved - h;
      const double down = loss();
      p[i] = saved;
      const double numeric = (up - down) / (2 * h);
      const double err = std::abs(analytic[i] - numeric) / std::max(1.0, std::abs(numeric));
      worst = std::max(worst, err);
      EXPECT_LE(err, 1e-6) << "element " << i << ": analytic " << analytic[i] << ", numeric "
                           << numeric;
    }
  }
  fmt::print("[ seq gradcheck ] worst relative error {:.3g}\n", worst);
}

std::vector<Tensor> params_of(const Module& m, std::vector<std::string>& names) {
  std::vector<Tensor> out;
  for (const auto& [name, p] : m.named_parameters()) out.push_back(p), names.push_back(name);
  return out;
}

}  // namespace

// Two stacked layers, the first bidirectional with sequences, the second read backwards, with an
// initial-state-free scan of 5 steps: every weight and the input.
TEST(SequenceGradcheck, StackedBidirectionalLstmThenGruBackwards) {
  manual_seed(7);
  Sequential model({Bidirectional(LSTM(3, {.return_sequences = true}), {.input_shape = {5, 2}}),
                    GRU(2, {.go_backwards = true})});
  set_dtype(model, kF64);
  std::vector<std::string> names{"x"};
  Tensor x = Tensor::normal({2, 5, 2}, 0, 1, kF64);
  x.set_requires_grad(true);
  std::vector<Tensor> leaves{x};
  for (const Tensor& p : params_of(model, names)) leaves.push_back(p);
  check_gradients_through_time([&] { return model(x); }, leaves, names);
}

// Masks through time: Embedding(mask_zero) -> SimpleRNN(sequences) -> Bidirectional(LSTM), ids
// with padding inside and at the end; every weight (the embedding's included).
TEST(SequenceGradcheck, MaskedEmbeddingRnnBidirectionalLstm) {
  manual_seed(8);
  Sequential model(
      {Embedding(
           5, 3,
           {.input_shape = {6}, .embeddings_initializer = "glorot_uniform", .mask_zero = true}),
       SimpleRNN(3, {.return_sequences = true}), Bidirectional(LSTM(2))});
  set_dtype(model, kF64);
  const Tensor ids = Tensor::from_vector(std::vector<int64_t>{1, 2, 3, 4, 1, 2,  //
                                                              3, 0, 4, 4, 0, 0,  //
                                                              0, 2, 1, 0, 0, 0},
                                         {3, 6});
  std::vector<std::string> names;
  const std::vector<Tensor> leaves = params_of(model, names);
  check_gradients_through_time([&] { return model(ids); }, leaves, names);
}

// ---- go_backwards and masks ---------------------------------------------------------------

namespace {
Tensor reversed_time(const Tensor& x) {
  return index_select(x, 1, arange(static_cast<double>(x.size(1) - 1), -1, -1, DType::kInt64));
}
}  // namespace

// Keras: go_backwards reads the sequence from its end and returns the outputs in reading order,
// so it is the forward layer on the reversed input.
TEST(SequenceLayers, GoBackwardsReturnsTheSequenceReversed) {
  manual_seed(3);
  for (const auto& [fwd, back] : std::vector<std::pair<LayerPtr, LayerPtr>>{
           {std::make_shared<LSTM>(
                4, RecurrentOptions{.input_shape = {6, 3}, .return_sequences = true}),
            std::make_shared<LSTM>(4, RecurrentOptions{.input_shape = {6, 3},
                                      .return_sequences = true,
                                      .go_backwards = true})},
           {std::make_shared<GRU>(4, RecurrentOptions{.input_shape = {6, 3}}),
            std::make_shared<GRU>(4,
                                  RecurrentOptions{.input_shape = {6, 3}, .go_backwards = true})},
           {std::make_shared<SimpleRNN>(
                4, RecurrentOptions{.input_shape = {6, 3}, .return_sequences = true}),
            std::make_shared<SimpleRNN>(
                4, RecurrentOptions{
                       .input_shape = {6, 3}, .return_sequences = true, .go_backwards = true})}}) {
    fwd->build({6, 3});
    back->build({6, 3});
    back->load_state_dict(fwd->state_dict());
    NoGradGuard no_grad;
    const Tensor x = Tensor::normal({2, 6, 3}, 0, 1);
    const Tensor want = fwd->forward(reversed_time(x));
    EXPECT_EQ(back->forward(x).to_vector<float>(), want.to_vector<float>()) << fwd->type_name();
    // Not the forward run's sequence reversed (that would be a Bidirectional's backward half).
    if (want.dim() == 3) {
      EXPECT_GT(neutrino::testing::max_rel_diff(back->forward(x), reversed_time(fwd->forward(x))),
                1e-3);
    }
  }
}

// Bidirectional with return_sequences and a mask: zeros at the masked steps in both halves, each
// half's other steps those of its direction's scan that skips the masked steps (the state carries
// over them), and the mask passed on.
TEST(SequenceLayers, BidirectionalMaskedSequencesAreZeroAtMaskedSteps) {
  manual_seed(4);
  Bidirectional bi(LSTM(3, {.return_sequences = true}));
  bi.build({5, 2});
  const Tensor x = Tensor::normal({2, 5, 2}, 0, 1);
  const std::vector<bool> keep = {true, false, true, true, false, true, true, true, false, false};
  std::vector<int64_t> bits(keep.begin(), keep.end());
  const Tensor mask = cast(Tensor::from_vector(bits, {2, 5}), DType::kBool);
  const Tensor y = bi.forward(x, mask);
  ASSERT_EQ(y.shape(), (Shape{2, 5, 6}));
  for (int64_t n = 0; n < 2; ++n) {
    for (int64_t t = 0; t < 5; ++t) {
      for (int64_t j = 0; j < 6; ++j) {
        const double v = y.at({n, t, j});
        if (keep[n * 5 + t]) {
          EXPECT_NE(v, 0) << n << "," << t << "," << j;
        } else {
          EXPECT_EQ(v, 0) << n << "," << t << "," << j;
        }
      }
    }
  }
  // Sample 1 (steps 0-2 kept) equals the layer on those three steps alone.
  const Tensor alone = bi(slice(slice(x, 0, 1, 2), 1, 0, 3));
  for (int64_t t = 0; t < 3; ++t) {
    for (int64_t j = 0; j < 6; ++j) EXPECT_NEAR(y.at({1, t, j}), alone.at({0, t, j}), 1e-6);
  }
  const Tensor passed = bi.compute_mask(x, mask);
  ASSERT_TRUE(passed.defined());
  EXPECT_EQ(passed.to_vector<double>(), cast(mask, kF32).to_vector<double>());
  // Without return_sequences the mask stops here.
  Bidirectional last(LSTM(3));
  EXPECT_FALSE(last.compute_mask(x, mask).defined());
}

// In a Sequential, Embedding(mask_zero)'s mask reaches the global pooling: the mean and max over
// the real tokens only.
TEST(SequenceLayers, EmbeddingMaskReachesGlobalPoolingInASequential) {
  manual_seed(5);
  for (const bool average : {true, false}) {
    Sequential model(
        {Embedding(6, 2, {.input_shape = {4}, .mask_zero = true}),
         average ? AnyLayer(GlobalAveragePooling1D()) : AnyLayer(GlobalMaxPooling1D())});
    const Tensor ids = Tensor::from_vector(std::vector<int64_t>{3, 5, 0, 0, 0, 0, 0, 0}, {2, 4});
    const Tensor table = model.state_dict().at("embedding.weight");
    NoGradGuard no_grad;
    const Tensor y = model(ids);
    for (int64_t j = 0; j < 2; ++j) {
      const double a = table.at({3, j}), b = table.at({5, j});
      EXPECT_NEAR(y.at({0, j}), average ? (a + b) / 2 : std::max(a, b), 1e-7);
      EXPECT_EQ(y.at({1, j}), 0);  // every step padding
    }
  }
}

// Keras's return_state / initial_state through Recurrent::run: the final state is the last
// step's, a given initial state changes the result, and gradients reach it (float64 central
// differences on one entry of h0 and of c0).
TEST(SequenceLayers, RunTakesAnInitialStateAndReturnsTheFinalOne) {
  manual_seed(3);
  LSTM lstm(3, {.return_sequences = true});
  const Tensor x = Tensor::normal({2, 5, 4});
  const RecurrentOutput zero = lstm.run(x);
  ASSERT_EQ(zero.states.size(), 2u);
  EXPECT_EQ(zero.output.shape(), (Shape{2, 5, 3}));
  EXPECT_EQ(slice(zero.output, 1, 4, 5).to_vector<float>(), zero.states[0].to_vector<float>());
  EXPECT_EQ(lstm.run(x, {Tensor::zeros({2, 3}), Tensor::zeros({2, 3})}).output.to_vector<float>(),
            zero.output.to_vector<float>());

  set_dtype(lstm, kF64);
  const Tensor x64 = cast(x, kF64).detach();
  Tensor h0 = Tensor::normal({2, 3}, 0, 1, kF64), c0 = Tensor::normal({2, 3}, 0, 1, kF64);
  h0.set_requires_grad(true);
  c0.set_requires_grad(true);
  const auto loss_of = [&](const Tensor& h, const Tensor& c) {
    const RecurrentOutput r = lstm.run(x64, {h, c});
    return sum(r.output) + sum(mul(r.states[1], r.states[1]));
  };
  backward(loss_of(h0, c0));
  for (const Tensor* s : {&h0, &c0}) {
    const double eps = 1e-6;
    const auto shifted = [&](double d) {
      NoGradGuard no_grad;
      Tensor h = h0.detach(), c = c0.detach();
      Tensor& t = s == &h0 ? h : c;
      t = clone(t);
      t.data<double>()[4] += d;
      return loss_of(h, c).item();
    };
    const double numeric = (shifted(eps) - shifted(-eps)) / (2 * eps);
    EXPECT_NEAR(s->grad().to_vector<double>()[4], numeric, 1e-7);
  }
  expect_error<ValueError>([&] { lstm.run(x64, {h0}); }, {"LSTM", "2 tensor(s) (h, c)", "got 1"});
  expect_error<ShapeError>([&] { lstm.run(x64, {Tensor::zeros({2, 4}, kF64), c0}); },
                           {"initial state", "(2, 3)", "(2, 4)"});
}
