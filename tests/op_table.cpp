// The op table: loading tests/op_table.json, making each case's inputs, and the runners that call
// each op from a case's inputs and attributes.
#include "op_table.h"

#include <fstream>
#include <functional>
#include <map>
#include <stdexcept>

#include "neutrino/core/random.h"
#include "neutrino/nn/losses.h"
#include "neutrino/ops/ops.h"

namespace neutrino::testing {

using json = nlohmann::json;
using Inputs = std::vector<Tensor>;

namespace {

const std::set<std::string> kDefaultChecks = {"grad", "golden"};
const std::set<std::string> kKnownChecks = {"grad", "golden", "fast"};

InputSpec parse_input(const json& j, const std::string& where) {
  InputSpec s;
  s.shape = j.at("shape").get<Shape>();
  const std::string dtype = j.value("dtype", "float");
  if (dtype == "int64") {
    s.dtype = DType::kInt64;
  } else if (dtype == "bool") {
    s.dtype = DType::kBool;
  } else if (dtype != "float") {
    throw std::runtime_error(where + ": unknown dtype " + dtype);
  }
  s.fill = j.value("fill", "randn");
  s.mean = j.value("mean", 0.0);
  s.stddev = j.value("std", 1.0);
  if (j.contains("range")) {
    s.low = j["range"].at(0).get<double>();
    s.high = j["range"].at(1).get<double>();
  }
  s.phase = j.value("phase", 0.5);
  s.p = j.value("p", 0.5);
  if (j.contains("values")) {
    s.values = j["values"].get<std::vector<double>>();
    if (static_cast<int64_t>(s.values.size()) != shape_numel(s.shape)) {
      throw std::runtime_error(where + ": values do not fill the shape");
    }
  }
  s.grad = j.value("grad", true);
  return s;
}

std::vector<OpCase> load_table() {
  const std::string path = std::string(NEUTRINO_SOURCE_DIR) + "/tests/op_table.json";
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  const json table = json::parse(in);
  std::vector<OpCase> cases;
  std::set<std::string> names;
  for (const json& entry : table.at("ops")) {
    const std::string op = entry.at("op");
    const std::set<std::string> op_checks =
        entry.contains("checks") ? entry["checks"].get<std::set<std::string>>() : kDefaultChecks;
    for (const json& c : entry.at("cases")) {
      OpCase oc;
      oc.name = c.at("name");
      oc.op = op;
      oc.attrs = c.value("attrs", json::object());
      oc.checks = c.contains("checks") ? c["checks"].get<std::set<std::string>>() : op_checks;
      for (const std::string& check : oc.checks) {
        if (!kKnownChecks.count(check))
          throw std::runtime_error(oc.name + ": unknown check " + check);
      }
      for (const json& i : c.at("inputs")) oc.inputs.push_back(parse_input(i, oc.name));
      if (!names.insert(oc.name).second) throw std::runtime_error("duplicate case " + oc.name);
      cases.push_back(std::move(oc));
    }
  }
  return cases;
}

// ---- attributes ------------------------------------------------------------------------------

int64_t int_attr(const OpCase& c, const char* key, int64_t fallback) {
  return c.attrs.value(key, fallback);
}
double double_attr(const OpCase& c, const char* key) { return c.attrs.at(key).get<double>(); }
bool bool_attr(const OpCase& c, const char* key, bool fallback) {
  return c.attrs.value(key, fallback);
}
std::vector<int64_t> ints_attr(const OpCase& c, const char* key,
                               std::vector<int64_t> fallback = {}) {
  return c.attrs.contains(key) ? c.attrs[key].get<std::vector<int64_t>>() : fallback;
}
Epilogue epilogue_attr(const OpCase& c) {
  return c.attrs.value("epilogue", "none") == "relu" ? Epilogue::kRelu : Epilogue::kNone;
}
Tensor optional(const Inputs& in, size_t i) { return i < in.size() ? in[i] : Tensor(); }

// Padding is [top, left, bottom, right] in the table.
Conv2dParams conv_attrs(const OpCase& c) {
  const auto s = ints_attr(c, "stride", {1, 1}), p = ints_attr(c, "padding", {0, 0, 0, 0});
  const auto d = ints_attr(c, "dilation", {1, 1});
  return {.stride_h = s[0],
          .stride_w = s[1],
          .pad_top = p[0],
          .pad_left = p[1],
          .pad_bottom = p[2],
          .pad_right = p[3],
          .dilation_h = d[0],
          .dilation_w = d[1],
          .groups = int_attr(c, "groups", 1)};
}

Pool2dParams pool_attrs(const OpCase& c) {
  const auto k = ints_attr(c, "kernel", {2, 2}), s = ints_attr(c, "stride", {2, 2});
  const auto p = ints_attr(c, "padding", {0, 0, 0, 0});
  return {.kernel_h = k[0],
          .kernel_w = k[1],
          .stride_h = s[0],
          .stride_w = s[1],
          .pad_top = p[0],
          .pad_left = p[1],
          .pad_bottom = p[2],
          .pad_right = p[3],
          .count_include_pad = bool_attr(c, "count_include_pad", true)};
}

AttentionOptions attention_attrs(const OpCase& c) {
  return {.causal = bool_attr(c, "causal", false), .scale = c.attrs.value("scale", 0.0)};
}

// ---- the runners: one line (or a few) per op -------------------------------------------------

using Runner = std::function<Inputs(const OpCase&, const Inputs&, DType)>;
// Most ops return one tensor.
template <class F>
Runner one(F f) {
  return [f](const OpCase& c, const Inputs& in, DType) { return Inputs{f(c, in)}; };
}
template <class F>
Runner unary(F f) {
  return one([f](const OpCase&, const Inputs& in) { return f(in[0]); });
}

const std::map<std::string, Runner>& runners() {
  using C = const OpCase&;
  using I = const Inputs&;
  static const std::map<std::string, Runner> table = {
      // elementwise
      {"add", one([](C, I in) { return add(in[0], in[1]); })},
      {"sub", one([](C, I in) { return sub(in[0], in[1]); })},
      {"mul", one([](C, I in) { return mul(in[0], in[1]); })},
      {"div", one([](C, I in) { return div(in[0], in[1]); })},
      {"maximum", one([](C, I in) { return maximum(in[0], in[1]); })},
      {"add_scalar", one([](C c, I in) { return add(in[0], double_attr(c, "value")); })},
      {"mul_scalar", one([](C c, I in) { return mul(in[0], double_attr(c, "value")); })},
      {"rsub", one([](C c, I in) { return rsub(double_attr(c, "value"), in[0]); })},
      {"neg", unary([](const Tensor& x) { return neg(x); })},
      {"exp", unary([](const Tensor& x) { return exp(x); })},
      {"log", unary([](const Tensor& x) { return log(x); })},
      {"sqrt", unary([](const Tensor& x) { return sqrt(x); })},
      {"abs", unary([](const Tensor& x) { return abs(x); })},
      {"relu", unary([](const Tensor& x) { return relu(x); })},
      {"sigmoid", unary([](const Tensor& x) { return sigmoid(x); })},
      {"tanh", unary([](const Tensor& x) { return tanh(x); })},
      {"softplus", unary([](const Tensor& x) { return softplus(x); })},
      {"erf", unary([](const Tensor& x) { return erf(x); })},
      {"silu", unary([](const Tensor& x) { return silu(x); })},
      {"pow", one([](C c, I in) { return pow(in[0], double_attr(c, "exponent")); })},
      {"clamp", one([](C c, I in) {
         return clamp(in[0], double_attr(c, "min"), double_attr(c, "max"));
       })},
      {"leaky_relu", one([](C c, I in) { return leaky_relu(in[0], double_attr(c, "negative_slope")); })},
      {"gelu", one([](C c, I in) { return gelu(in[0], c.attrs.at("approximate")); })},
      {"greater", one([](C, I in) { return greater(in[0], in[1]); })},
      {"greater_equal", one([](C, I in) { return greater_equal(in[0], in[1]); })},
      {"equal", one([](C, I in) { return equal(in[0], in[1]); })},
      {"less", one([](C, I in) { return less(in[0], in[1]); })},
      {"less_equal", one([](C, I in) { return less_equal(in[0], in[1]); })},
      {"not_equal", one([](C, I in) { return not_equal(in[0], in[1]); })},
      {"where", one([](C, I in) { return where(in[0], in[1], in[2]); })},
      {"masked_fill", one([](C c, I in) { return masked_fill(in[0], in[1], double_attr(c, "value")); })},
      // reductions
      {"sum", one([](C c, I in) { return sum(in[0], ints_attr(c, "dims"), bool_attr(c, "keepdim", false)); })},
      {"mean", one([](C c, I in) { return mean(in[0], ints_attr(c, "dims"), bool_attr(c, "keepdim", false)); })},
      {"max", one([](C c, I in) { return max(in[0], ints_attr(c, "dims"), bool_attr(c, "keepdim", false)); })},
      {"sum_to", one([](C c, I in) { return sum_to(in[0], ints_attr(c, "shape")); })},
      // linear algebra
      {"matmul", one([](C, I in) { return matmul(in[0], in[1]); })},
      {"linear", one([](C c, I in) { return linear(in[0], in[1], optional(in, 2), epilogue_attr(c)); })},
      // shape and indexing
      {"reshape", one([](C c, I in) { return reshape(in[0], ints_attr(c, "shape")); })},
      {"flatten", one([](C c, I in) { return flatten(in[0], int_attr(c, "start_dim", 1)); })},
      {"permute", one([](C c, I in) { return permute(in[0], ints_attr(c, "dims")); })},
      {"transpose", one([](C c, I in) {
         return transpose(in[0], int_attr(c, "dim0", 0), int_attr(c, "dim1", 1));
       })},
      {"slice", one([](C c, I in) {
         return slice(in[0], int_attr(c, "dim", 0), int_attr(c, "start", 0), int_attr(c, "end", 0),
                      int_attr(c, "step", 1));
       })},
      {"expand", one([](C c, I in) { return expand(in[0], ints_attr(c, "shape")); })},
      {"concat", one([](C c, I in) { return concat(in, int_attr(c, "dim", 0)); })},
      {"index_select", one([](C c, I in) { return index_select(in[0], int_attr(c, "dim", 0), in[1]); })},
      {"index_add", one([](C c, I in) {
         return index_add(ints_attr(c, "shape"), int_attr(c, "dim", 0), in[0], in[1]);
       })},
      {"embedding", one([](C, I in) { return embedding(in[0], in[1]); })},
      {"split", [](C c, I in, DType) {
         return c.attrs.contains("sizes") ? split(in[0], ints_attr(c, "sizes"), int_attr(c, "dim", 0))
                                          : split(in[0], int_attr(c, "size", 1), int_attr(c, "dim", 0));
       }},
      {"chunk", [](C c, I in, DType) { return chunk(in[0], int_attr(c, "chunks", 1), int_attr(c, "dim", 0)); }},
      {"stack", one([](C c, I in) { return stack(in, int_attr(c, "dim", 0)); })},
      {"tril", one([](C c, I in) { return tril(in[0], int_attr(c, "k", 0)); })},
      {"triu", one([](C c, I in) { return triu(in[0], int_attr(c, "k", 0)); })},
      {"cumsum", one([](C c, I in) { return cumsum(in[0], int_attr(c, "dim", 0)); })},
      {"arange", [](C c, I, DType float_dtype) {
         const DType dtype = c.attrs.value("dtype", "float") == "int64" ? DType::kInt64 : float_dtype;
         return Inputs{arange(double_attr(c, "start"), double_attr(c, "end"), double_attr(c, "step"), dtype)};
       }},
      // neural-network ops
      {"softmax", one([](C c, I in) { return softmax(in[0], int_attr(c, "dim", -1)); })},
      {"log_softmax", one([](C c, I in) { return log_softmax(in[0], int_attr(c, "dim", -1)); })},
      {"softmax_cross_entropy", one([](C, I in) { return softmax_cross_entropy(in[0], in[1]); })},
      {"conv2d", one([](C c, I in) {
         return conv2d(in[0], in[1], optional(in, 2), conv_attrs(c), epilogue_attr(c));
       })},
      // The pool is 2x2 (the fused kernel's only one); the attrs are the convolution's.
      {"conv2d_relu_max_pool2d", one([](C c, I in) {
         return conv2d_relu_max_pool2d(in[0], in[1], optional(in, 2), conv_attrs(c), Pool2dParams{});
       })},
      {"max_pool2d", one([](C c, I in) { return max_pool2d(in[0], pool_attrs(c)); })},
      {"avg_pool2d", one([](C c, I in) { return avg_pool2d(in[0], pool_attrs(c)); })},
      {"batch_norm", one([](C c, I in) {
         return batch_norm(in[0], optional(in, 1), optional(in, 2), optional(in, 3), optional(in, 4),
                           bool_attr(c, "training", true), 0.1, 1e-5);
       })},
      {"layer_norm", one([](C c, I in) {
         return layer_norm(in[0], ints_attr(c, "normalized_shape"), optional(in, 1), optional(in, 2), 1e-5);
       })},
      {"rms_norm", one([](C, I in) { return rms_norm(in[0], optional(in, 1), 1e-6); })},
      // attention: inputs q, k, v and an optional bool mask
      {"scaled_dot_product_attention", one([](C c, I in) {
         return scaled_dot_product_attention(in[0], in[1], in[2], optional(in, 3), attention_attrs(c));
       })},
      {"scaled_dot_product_attention_composite", one([](C c, I in) {
         return scaled_dot_product_attention_composite(in[0], in[1], in[2], optional(in, 3),
                                                       attention_attrs(c));
       })},
      {"rotary_embedding", one([](C c, I in) { return rotary_embedding(in[0], int_attr(c, "offset", 0)); })},
      // recurrent: inputs x, w_ih, w_hh, then b_ih, b_hh (unless "bias": false), then h0 and the
      // mask when the attrs say so; outputs the h sequence and the final state (h, an LSTM's c).
      {"rnn", [](C c, I in, DType) {
         const std::string kind = c.attrs.at("cell");
         const RnnCell cell = kind == "lstm" ? RnnCell::kLstm : kind == "gru" ? RnnCell::kGru
                              : kind == "relu" ? RnnCell::kRelu : RnnCell::kTanh;
         const bool bias = bool_attr(c, "bias", true), reverse = bool_attr(c, "reverse", false);
         size_t k = bias ? 5 : 3;
         const Tensor h0 = bool_attr(c, "h0", false) ? in[k++] : Tensor();
         const Tensor mask = bool_attr(c, "mask", false) ? in[k++] : Tensor();
         const Tensor out = rnn(cell, in[0], h0, in[1], in[2], bias ? in[3] : Tensor(),
                                bias ? in[4] : Tensor(), mask, reverse);
         const int64_t hidden = in[2].size(1), last = reverse ? 0 : in[0].size(1) - 1;
         const Tensor final_state = reshape(slice(out, 1, last, last + 1), {out.size(0), out.size(2)});
         Inputs r{slice(out, 2, 0, hidden), slice(final_state, 1, 0, hidden)};
         if (cell == RnnCell::kLstm) r.push_back(slice(final_state, 1, hidden, 2 * hidden));
         return r;
       }},
      // losses: inputs (y_pred, y_true), as PyTorch orders them
      {"mean_squared_error", one([](C, I in) { return nn::mean_squared_error(in[1], in[0]); })},
      {"binary_crossentropy", one([](C c, I in) {
         return nn::binary_crossentropy(in[1], in[0], bool_attr(c, "from_logits", false));
       })},
      {"categorical_crossentropy", one([](C c, I in) {
         return nn::categorical_crossentropy(in[1], in[0], bool_attr(c, "from_logits", false));
       })},
      {"sparse_categorical_crossentropy", one([](C c, I in) {
         return nn::sparse_categorical_crossentropy(in[1], in[0], bool_attr(c, "from_logits", false));
       })},
      {"nll_loss", one([](C, I in) { return nn::nll_loss(in[0], in[1]); })},
  };
  return table;
}

// Distinct values, one per step of (high - low) / n, at `phase` of the step with a jitter of
// +-0.1 step, in random order: no ties (max, max_pool2d, maximum), and no value near a step
// boundary (for a symmetric range and an even count, none near 0).
Tensor spaced(const InputSpec& s, Generator& gen) {
  const int64_t n = shape_numel(s.shape);
  std::vector<double> v(static_cast<size_t>(n));
  const double step = (s.high - s.low) / static_cast<double>(n);
  for (int64_t i = 0; i < n; ++i) {
    v[i] = s.low + (static_cast<double>(i) + s.phase + 0.2 * (gen.uniform() - 0.5)) * step;
  }
  for (int64_t i = n - 1; i > 0; --i) std::swap(v[i], v[gen.below(static_cast<uint64_t>(i + 1))]);
  return Tensor::from_vector(v, s.shape);
}

Tensor make_input(const InputSpec& s, DType float_dtype) {
  Generator& gen = global_generator();
  const int64_t n = shape_numel(s.shape);
  Tensor t;
  if (!s.values.empty() || n == 0) {
    t = Tensor::from_vector(s.values, s.shape);
  } else if (s.dtype == DType::kInt64) {
    std::vector<int64_t> v(static_cast<size_t>(n));
    for (auto& x : v)
      x = static_cast<int64_t>(s.low) +
          static_cast<int64_t>(gen.below(static_cast<uint64_t>(s.high - s.low)));
    return Tensor::from_vector(v, s.shape);
  } else if (s.dtype == DType::kBool) {
    std::vector<double> v(static_cast<size_t>(n));
    for (auto& x : v) x = gen.uniform() < s.p ? 1 : 0;
    t = Tensor::from_vector(v, s.shape);
  } else if (s.fill == "randn") {
    t = Tensor::normal(s.shape, s.mean, s.stddev, DType::kFloat64);
  } else if (s.fill == "uniform") {
    t = Tensor::uniform(s.shape, s.low, s.high, DType::kFloat64);
  } else if (s.fill == "signed") {
    std::vector<double> v(static_cast<size_t>(n));
    for (auto& x : v) {
      x = s.low + gen.uniform() * (s.high - s.low);
      if (gen.uniform() < 0.5) x = -x;
    }
    t = Tensor::from_vector(v, s.shape);
  } else if (s.fill == "spaced") {
    t = spaced(s, gen);
  } else {
    throw std::runtime_error("unknown fill " + s.fill);
  }
  const DType want = s.dtype == DType::kFloat64 ? float_dtype : s.dtype;
  return cast(t, want).detach();
}

}  // namespace

const std::vector<OpCase>& op_cases() {
  static const std::vector<OpCase> cases = load_table();
  return cases;
}

std::vector<OpCase> op_cases_with(const std::string& check) {
  std::vector<OpCase> out;
  for (const OpCase& c : op_cases()) {
    if (c.has(check)) out.push_back(c);
  }
  return out;
}

std::vector<std::string> op_runner_names() {
  std::vector<std::string> names;
  for (const auto& [name, runner] : runners()) names.push_back(name);
  return names;
}

std::vector<Tensor> make_inputs(const OpCase& c, DType float_dtype) {
  std::vector<Tensor> out;
  for (const InputSpec& s : c.inputs) out.push_back(make_input(s, float_dtype));
  return out;
}

std::vector<Tensor> run_op(const OpCase& c, const std::vector<Tensor>& inputs, DType float_dtype) {
  const auto it = runners().find(c.op);
  if (it == runners().end()) throw std::runtime_error("op table: no runner for op " + c.op);
  return it->second(c, inputs, float_dtype);
}

uint64_t case_seed(const std::string& name) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char ch : name) h = (h ^ ch) * 1099511628211ull;
  return h;
}

}  // namespace neutrino::testing
