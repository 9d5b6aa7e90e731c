// The sequence layers (nn/recurrent.h, nn/sequence.h) against PyTorch 1.13 (the unit tests are in
// test_sequence_layer_units.cpp).
//
// Golden tests: tests/golden/generate_golden.py writes seq_<case>.safetensors (float64) from
// nn.LSTM / nn.GRU / nn.RNN / nn.Conv1d / max_pool1d and the masked poolings, with the module's
// weights under its state-dict names; here the same weights go into neutrino's layers through
// load_state_dict, and the outputs, the final states (h_n, c_n, from Recurrent::scan) and the
// gradients of sum(out * r) for the input and every weight must match: to 1e-9 in float64, and
// in float32 (the same weights and inputs cast down, against the float64 PyTorch values) to 1e-5.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>

#include "neutrino/neutrino.h"
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
using train::Sequential;

namespace {

const std::string kGoldenDir = NEUTRINO_GOLDEN_DIR;
constexpr DType kF64 = DType::kFloat64;
constexpr DType kF32 = DType::kFloat32;

// The tolerances, absolute (the golden values are O(1), the largest gradients a few units).
// float32 carries float rounding (6e-8 relative) and the kernels' fast exp (2e-7 relative)
// through up to 64 steps and sums over N*T rows: the worst measured error is 1.5e-6 (lstm_long,
// 64 steps), so 1e-5 holds with room; float64's worst is 4e-15. Each case prints its own.
double tolerance(DType dtype) { return dtype == kF64 ? 1e-9 : 1e-5; }

GoldenFile load_golden(const std::string& name) {
  return load_golden_file(name, "seq_" + name + ".safetensors");
}

// The state at time index t of a scan (N, T, S*H): columns [offset, offset + width).
Tensor state_at(const Tensor& states, int64_t t, int64_t offset, int64_t width) {
  const Tensor step = reshape(slice(states, 1, t, t + 1), {states.size(0), states.size(2)});
  return slice(step, 1, offset, offset + width);
}

// Row k of PyTorch's (layers * directions, N, H) h_n / c_n.
Tensor torch_state(const Tensor& s, int64_t k) {
  return reshape(slice(s, 0, k, k + 1), {s.size(1), s.size(2)});
}

// A fresh, built copy of `layer` (same type and options) with the given weights.
std::shared_ptr<Recurrent> recurrent_with(const Recurrent& layer, const Shape& input_shape,
                                          const std::map<std::string, Tensor>& weights,
                                          DType dtype) {
  auto copy =
      std::dynamic_pointer_cast<Recurrent>(layer_from_config(layer_to_config(layer), "copy"));
  copy->build(input_shape);
  set_dtype(*copy, dtype);
  copy->load_state_dict(weights);
  return copy;
}

// PyTorch's weights of layer `l` (direction "" or "_reverse") under the names of one neutrino
// direction ("weight_ih_l0", ...).
std::map<std::string, Tensor> torch_weights(const GoldenFile& g, int64_t l,
                                            const std::string& dir) {
  std::map<std::string, Tensor> out;
  for (const char* base : {"weight_ih", "weight_hh", "bias_ih", "bias_hh"}) {
    out[fmt::format("{}_l0", base)] = g.at(fmt::format("{}_l{}{}", base, l, dir));
  }
  return out;
}

// The PyTorch name of a neutrino parameter of stacked layer `l` ("l1.weight_ih_l0_reverse" ->
// "weight_ih_l1_reverse").
std::string torch_name(const std::string& name) {
  const size_t dot = name.find('.');
  const std::string layer = name.substr(1, dot - 1), rest = name.substr(dot + 1);
  const size_t at = rest.find("_l0");
  return rest.substr(0, at) + "_l" + layer + rest.substr(at + 3);
}

// Stacked recurrent layers named l0, l1, ... against a torch module of as many layers: the
// output, h_n (and c_n) of every layer and direction, and the gradients of x and every weight.
void check_stack(const std::string& case_name, const std::vector<LayerPtr>& layers, DType dtype) {
  SCOPED_TRACE(fmt::format("{} in {}", case_name, dtype_name(dtype)));
  const GoldenFile g = load_golden(case_name);
  ErrorLog log{fmt::format("{} ({})", case_name, dtype_name(dtype)), "seq golden"};
  const double tol = tolerance(dtype);
  std::vector<AnyLayer> chain(layers.begin(), layers.end());
  Sequential model(chain);
  ASSERT_TRUE(model.built());
  set_dtype(model, dtype);
  std::map<std::string, Tensor> state;
  for (const auto& [name, t] : model.state_dict()) state[name] = g.at(torch_name(name));
  model.load_state_dict(state);

  const Tensor x = g.leaf("x", dtype);
  const Tensor out = model(x);
  ASSERT_EQ(out.dtype(), dtype);
  log.add(expect_close(out, g.at("out"), tol, "output"));
  backward(sum(mul(out, cast(g.at("r"), dtype))));
  log.add(expect_close(x.grad(), g.at("grad.x"), tol, "grad of x"));
  for (const auto& [name, p] : model.named_parameters()) {
    ASSERT_TRUE(p.grad().defined()) << name;
    log.add(expect_close(p.grad(), g.at("grad." + torch_name(name)), tol, "grad of " + name));
  }

  // Final states: each layer's directions scanned again over that layer's input.
  NoGradGuard no_grad;
  log.add(expect_close(model(x.detach()), g.at("out"), tol, "output without a graph"));
  Tensor input = x.detach();
  int64_t k = 0;
  for (size_t l = 0; l < layers.size(); ++l) {
    const auto* bi = dynamic_cast<const Bidirectional*>(layers[l].get());
    const Recurrent& fwd = bi ? bi->layer() : dynamic_cast<const Recurrent&>(*layers[l]);
    const int64_t h = fwd.units(), steps = input.size(1);
    const bool lstm = fwd.cell() == RnnCell::kLstm;
    const Tensor fwd_states = fwd.scan(input, Tensor(), false);
    std::vector<Tensor> scans;
    scans.push_back(state_at(fwd_states, steps - 1, 0, fwd_states.size(2)));
    if (bi) {
      const Shape in_shape(input.shape().begin() + 1, input.shape().end());
      auto bwd = recurrent_with(fwd, in_shape,
                                torch_weights(g, static_cast<int64_t>(l), "_reverse"), dtype);
      const Tensor bwd_states = bwd->scan(input, Tensor(), true);
      scans.push_back(state_at(bwd_states, 0, 0, bwd_states.size(2)));
    }
    for (const Tensor& s : scans) {
      const std::string where = fmt::format("layer {} direction {}", l, k % 2);
      log.add(expect_close(slice(s, 1, 0, h), torch_state(g.at("h_n"), k), tol, "h_n of " + where));
      if (lstm) {
        log.add(expect_close(slice(s, 1, h, 2 * h), torch_state(g.at("c_n"), k), tol,
                             "c_n of " + where));
      }
      ++k;
    }
    input = layers[l]->forward(input);
  }
  EXPECT_EQ(k, g.at("h_n").size(0));
}

// A single recurrent layer: its output against `out`, its final state (scanned in the layer's
// direction) against h_n / c_n, and the gradients.
void check_single(const std::string& case_name, const LayerPtr& layer, DType dtype) {
  SCOPED_TRACE(fmt::format("{} in {}", case_name, dtype_name(dtype)));
  const GoldenFile g = load_golden(case_name);
  ErrorLog log{fmt::format("{} ({})", case_name, dtype_name(dtype)), "seq golden"};
  const double tol = tolerance(dtype);
  auto& rec = dynamic_cast<Recurrent&>(*layer);
  rec.build(Shape(g.at("x").shape().begin() + 1, g.at("x").shape().end()));
  set_dtype(rec, dtype);
  rec.load_state_dict(torch_weights(g, 0, ""));
  const Tensor x = g.leaf("x", dtype);
  const Tensor out = rec(x);
  log.add(expect_close(out, g.at("out"), tol, "output"));
  backward(sum(mul(out, cast(g.at("r"), dtype))));
  log.add(expect_close(x.grad(), g.at("grad.x"), tol, "grad of x"));
  for (const auto& [name, p] : rec.named_parameters()) {
    log.add(
        expect_close(p.grad(), g.at("grad." + torch_name("l0." + name)), tol, "grad of " + name));
  }
  NoGradGuard no_grad;
  log.add(expect_close(rec(x.detach()), g.at("out"), tol, "output without a graph"));
  const bool back = rec.options().go_backwards;
  const int64_t h = rec.units();
  const Tensor states = rec.scan(x.detach(), Tensor(), back);
  const Tensor s = state_at(states, back ? 0 : x.size(1) - 1, 0, states.size(2));
  log.add(expect_close(slice(s, 1, 0, h), torch_state(g.at("h_n"), 0), tol, "h_n"));
  if (rec.cell() == RnnCell::kLstm) {
    log.add(expect_close(slice(s, 1, h, 2 * h), torch_state(g.at("c_n"), 0), tol, "c_n"));
  }
}

const std::vector<DType> kDTypes = {kF64, kF32};

}  // namespace

// ---- recurrent layers against PyTorch -----------------------------------------------------

// nn.LSTM(num_layers=2, bidirectional=True) against two Bidirectional(LSTM(return_sequences)):
// PyTorch's weight_*_l1* are the second layer's *_l0*.
TEST(SequenceGolden, TwoLayerBidirectionalLstm) {
  for (DType dtype : kDTypes) {
    const RecurrentOptions seq{.return_sequences = true};
    check_stack("lstm_bi2",
                {std::make_shared<Bidirectional>(
                     LSTM(5, seq), BidirectionalOptions{.input_shape = {9, 4}, .name = "l0"}),
                 std::make_shared<Bidirectional>(LSTM(5, seq), BidirectionalOptions{.name = "l1"})},
                dtype);
  }
}

TEST(SequenceGolden, BidirectionalGru) {
  for (DType dtype : kDTypes) {
    check_stack("gru_bi",
                {std::make_shared<Bidirectional>(
                    GRU(5, {.return_sequences = true}),
                    BidirectionalOptions{.input_shape = {7, 4}, .name = "l0"})},
                dtype);
  }
}

// nn.RNN(num_layers=2), tanh, against two SimpleRNN(return_sequences).
TEST(SequenceGolden, TwoLayerSimpleRnn) {
  for (DType dtype : kDTypes) {
    check_stack(
        "rnn_tanh2",
        {std::make_shared<SimpleRNN>(
             5, RecurrentOptions{.input_shape = {7, 4}, .name = "l0", .return_sequences = true}),
         std::make_shared<SimpleRNN>(5, RecurrentOptions{.name = "l1", .return_sequences = true})},
        dtype);
  }
}

// return_sequences=false: the last step's h, PyTorch's output[:, -1].
TEST(SequenceGolden, LstmLastStep) {
  for (DType dtype : kDTypes) check_single("lstm_last", std::make_shared<LSTM>(5), dtype);
}

// 64 steps: float32 still within 1e-5 of PyTorch's float64.
TEST(SequenceGolden, LstmLongSequence) {
  for (DType dtype : kDTypes) {
    check_single("lstm_long", std::make_shared<LSTM>(6, RecurrentOptions{.return_sequences = true}),
                 dtype);
  }
}

// go_backwards (Keras): the sequence read from its end and returned in reading order, which is
// PyTorch's LSTM on the time-flipped input; without return_sequences, that run's h_n.
TEST(SequenceGolden, LstmGoBackwardsIsPyTorchOnTheFlippedInput) {
  for (DType dtype : kDTypes) {
    check_single(
        "lstm_backwards",
        std::make_shared<LSTM>(4, RecurrentOptions{.return_sequences = true, .go_backwards = true}),
        dtype);
    const GoldenFile g = load_golden("lstm_backwards");
    LSTM last(4, {.go_backwards = true});
    last.build({6, 3});
    set_dtype(last, dtype);
    last.load_state_dict(torch_weights(g, 0, ""));
    NoGradGuard no_grad;
    expect_close(last(cast(g.at("x"), dtype)), torch_state(g.at("h_n"), 0), tolerance(dtype),
                 "go_backwards without return_sequences");
  }
}

// ---- Conv1D and MaxPooling1D against nn.Conv1d / max_pool1d --------------------------------

class SequenceGoldenConv1D : public ::testing::TestWithParam<std::string> {};

// x is (N, T, C) on both sides; PyTorch's runs permuted to (N, C, T). 'same' pads as Keras (the
// odd step at the end), 'causal' pads (kernel - 1) * dilation steps in front.
TEST_P(SequenceGoldenConv1D, MatchesPyTorch) {
  const GoldenFile g = load_golden(GetParam());
  const json a = json::parse(g.file.metadata.at("attrs"));
  for (DType dtype : kDTypes) {
    SCOPED_TRACE(dtype_name(dtype));
    ErrorLog log{fmt::format("{} ({})", GetParam(), dtype_name(dtype)), "seq golden"};
    const double tol = tolerance(dtype);
    const Tensor& x0 = g.at("x");
    Conv1D conv(a["filters"].get<int64_t>(), a["kernel_size"].get<int64_t>(),
                {.strides = a["strides"].get<int64_t>(),
                 .padding = a["padding"].get<std::string>(),
                 .dilation_rate = a["dilation_rate"].get<int64_t>(),
                 .activation = a["activation"].get<std::string>()});
    conv.build({x0.size(1), x0.size(2)});
    set_dtype(conv, dtype);
    conv.load_state_dict({{"weight", g.at("weight")}, {"bias", g.at("bias")}});
    const Tensor x = g.leaf("x", dtype);
    const Tensor out = conv(x);
    EXPECT_EQ(Shape(out.shape().begin() + 1, out.shape().end()),
              conv.output_shape({x0.size(1), x0.size(2)}));
    log.add(expect_close(out, g.at("out"), tol, "output"));
    backward(sum(mul(out, cast(g.at("r"), dtype))));
    log.add(expect_close(x.grad(), g.at("grad.x"), tol, "grad of x"));
    for (const auto& [name, p] : conv.named_parameters()) {
      log.add(expect_close(p.grad(), g.at("grad." + name), tol, "grad of " + name));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(SequenceGolden, SequenceGoldenConv1D,
                         ::testing::Values("conv1d_valid", "conv1d_same",
                                           "conv1d_same_even_stride2", "conv1d_causal",
                                           "conv1d_causal_dilation2", "conv1d_stride2",
                                           "conv1d_dilation2"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

// 'same' (Keras: ceil(steps / strides) windows, the extra padding at the end) against torch's
// max_pool1d over the input padded with -inf.
TEST(SequenceGolden, MaxPooling1D) {
  for (const std::string case_name : {"max_pool1d", "max_pool1d_same"}) {
    const GoldenFile g = load_golden(case_name);
    const json a = json::parse(g.file.metadata.at("attrs"));
    for (DType dtype : kDTypes) {
      SCOPED_TRACE(fmt::format("{} in {}", case_name, dtype_name(dtype)));
      MaxPooling1D pool(
          a["pool_size"].get<int64_t>(),
          {.strides = a["strides"].get<int64_t>(), .padding = a["padding"].get<std::string>()});
      const Tensor x = g.leaf("x", dtype);
      const Tensor out = pool(x);
      expect_close(out, g.at("out"), tolerance(dtype), "output");
      backward(sum(mul(out, cast(g.at("r"), dtype))));
      expect_close(x.grad(), g.at("grad.x"), tolerance(dtype), "grad of x");
    }
  }
}

// ---- masks ---------------------------------------------------------------------------------

// The global poolings with a mask (one sample with every step masked: zeros) against the plain
// torch computation over the kept steps.
TEST(SequenceGolden, MaskedGlobalPooling) {
  const GoldenFile g = load_golden("masked_pool");
  const Tensor mask = cast(g.at("mask"), DType::kBool);
  for (DType dtype : kDTypes) {
    SCOPED_TRACE(dtype_name(dtype));
    ErrorLog log{fmt::format("masked_pool ({})", dtype_name(dtype)), "seq golden"};
    for (const std::string kind : {"avg", "max"}) {
      std::shared_ptr<Layer> pool = kind == "avg" ? std::make_shared<GlobalAveragePooling1D>()
                                                  : std::make_shared<GlobalMaxPooling1D>();
      const Tensor x = g.leaf("x", dtype);
      const Tensor out = pool->forward(x, mask);
      log.add(expect_close(out, g.at("out_" + kind), tolerance(dtype), kind + " output"));
      backward(sum(mul(out, cast(g.at("r_" + kind), dtype))));
      log.add(expect_close(x.grad(), g.at("grad_" + kind + ".x"), tolerance(dtype),
                           kind + " grad of x"));
    }
  }
}

// Embedding(mask_zero) -> LSTM / Bidirectional(GRU) in a Sequential over ids padded with
// trailing zeros: each sample's output is PyTorch's final state of the sample run alone on its
// unpadded ids, and the gradients (the embedding's and every weight's) match too.
void check_embedding_model(const std::string& case_name, AnyLayer rnn_layer, DType dtype) {
  SCOPED_TRACE(fmt::format("{} in {}", case_name, dtype_name(dtype)));
  const GoldenFile g = load_golden(case_name);
  ErrorLog log{fmt::format("{} ({})", case_name, dtype_name(dtype)), "seq golden"};
  const Tensor& ids = g.at("ids");
  const Tensor& table = g.at("embedding.weight");
  Sequential model(
      {Embedding(table.size(0), table.size(1),
                 {.input_shape = {ids.size(1)}, .name = "embedding", .mask_zero = true}),
       rnn_layer});
  set_dtype(model, dtype);
  std::map<std::string, Tensor> state;
  for (const auto& [name, t] : model.state_dict()) state[name] = g.at(name);
  model.load_state_dict(state);
  const Tensor out = model(ids);
  log.add(expect_close(out, g.at("out"), tolerance(dtype), "output"));
  backward(sum(mul(out, cast(g.at("r"), dtype))));
  for (const auto& [name, p] : model.named_parameters()) {
    log.add(expect_close(p.grad(), g.at("grad." + name), tolerance(dtype), "grad of " + name));
  }
  {
    NoGradGuard no_grad;
    log.add(expect_close(model(ids), g.at("out"), tolerance(dtype), "output without a graph"));
  }
  // The padding id's row gets no gradient: masked steps read nothing.
  for (double v :
       slice(model.named_parameters().front().second.grad(), 0, 0, 1).to_vector<double>()) {
    EXPECT_EQ(v, 0);
  }
}

TEST(SequenceGolden, EmbeddingMaskZeroLstmEqualsUnpaddedRuns) {
  for (DType dtype : kDTypes)
    check_embedding_model("embedding_lstm", LSTM(4, {.name = "rnn"}), dtype);
}

TEST(SequenceGolden, EmbeddingMaskZeroBidirectionalGruEqualsUnpaddedRuns) {
  for (DType dtype : kDTypes) {
    check_embedding_model("embedding_bigru", Bidirectional(GRU(4), {.name = "rnn"}), dtype);
  }
}

// Every seq_* file has a test above, and every test its file.
TEST(SequenceGolden, OneTestPerFile) {
  const std::set<std::string> want = {"lstm_bi2",
                                      "gru_bi",
                                      "rnn_tanh2",
                                      "lstm_last",
                                      "lstm_long",
                                      "lstm_backwards",
                                      "conv1d_valid",
                                      "conv1d_same",
                                      "conv1d_same_even_stride2",
                                      "conv1d_causal",
                                      "conv1d_causal_dilation2",
                                      "conv1d_stride2",
                                      "conv1d_dilation2",
                                      "max_pool1d",
                                      "max_pool1d_same",
                                      "masked_pool",
                                      "embedding_lstm",
                                      "embedding_bigru"};
  std::set<std::string> have;
  for (const auto& entry : std::filesystem::directory_iterator(kGoldenDir)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with("seq_") && name.ends_with(".safetensors")) {
      have.insert(name.substr(4, name.size() - 4 - 12));
    }
  }
  EXPECT_EQ(have, want) << "run tests/golden/generate_golden.py, or add the case's test";
}
