#include "neutrino/nn/lora.h"

#include <fnmatch.h>

#include <cmath>

#include "neutrino/autograd/autograd.h"
#include "neutrino/core/error.h"
#include "neutrino/io/config_reader.h"
#include "neutrino/ops/ops.h"

namespace neutrino::nn {

using nlohmann::json;

namespace {

constexpr int64_t kMaxRank = int64_t{1} << 16;

}  // namespace

void check_lora_options(const LoraOptions& o) {
  NEUTRINO_CHECK_VALUE(o.rank >= 1 && o.rank <= kMaxRank, "lora.rank: must be from 1 to {}, got {}",
                       kMaxRank, o.rank);
  NEUTRINO_CHECK_VALUE(std::isfinite(o.alpha) && o.alpha > 0,
                       "lora.alpha: must be a number > 0, got {}", o.alpha);
  NEUTRINO_CHECK_VALUE(o.dropout >= 0 && o.dropout < 1, "lora.dropout: must be in [0, 1), got {}",
                       o.dropout);
  NEUTRINO_CHECK_VALUE(!o.targets.empty(),
                       "lora.targets: empty; name the Linears to adapt, as [c_attn, c_proj]");
  for (size_t i = 0; i < o.targets.size(); ++i) {
    NEUTRINO_CHECK_VALUE(!o.targets[i].empty(), "lora.targets[{}]: an empty name", i);
  }
}

std::string lora_options_to_json(const LoraOptions& o) {
  return json{{"rank", o.rank}, {"alpha", o.alpha}, {"dropout", o.dropout}, {"targets", o.targets}}
      .dump();
}

LoraOptions lora_options_from_json(const std::string& text, const std::string& path) {
  const json j = io::parse_json(text, path);
  NEUTRINO_CHECK_VALUE(j.is_object() || j.is_null(),
                       "{}: expected a map (rank, alpha, dropout, targets), got {}", path,
                       io::describe(j));
  io::ConfigReader r(j, path);
  LoraOptions o;
  // Ranges beyond the reader's are check_lora_options's, whose messages say "lora.<field>".
  o.rank = r.get_int("rank", o.rank);
  o.alpha = r.get_double("alpha", o.alpha);
  o.dropout = r.get_double("dropout", o.dropout);
  o.targets = r.get_strings("targets", o.targets);
  r.finish();
  check_lora_options(o);
  return o;
}

bool lora_target_matches(const std::string& module_name, const std::string& target) {
  if (target.find_first_of("*?[") != std::string::npos) {
    return fnmatch(target.c_str(), module_name.c_str(), 0) == 0;
  }
  return module_name == target || module_name.ends_with("." + target);
}

LoraAdapter make_lora_adapter(int64_t out, int64_t in, const LoraOptions& options) {
  // PEFT: kaiming_uniform_(A, a=sqrt(5)), whose bound is gain * sqrt(3 / fan_in) with gain
  // sqrt(2 / (1 + 5)), i.e. 1 / sqrt(in); B zeros.
  const double bound = 1.0 / std::sqrt(static_cast<double>(in));
  LoraAdapter adapter;
  adapter.a = Tensor::uniform({options.rank, in}, -bound, bound).set_requires_grad();
  adapter.b = Tensor::zeros({out, options.rank}).set_requires_grad();
  adapter.scaling = options.scaling();
  adapter.dropout = options.dropout;
  return adapter;
}

Tensor lora_linear(const Tensor& x, const Tensor& weight, const Tensor& bias,
                   const LoraAdapter& adapter, bool training) {
  const Tensor base = linear(x, weight, bias);
  if (!adapter.active()) return base;
  const bool drop = training && adapter.dropout > 0;
  const Tensor input = drop ? dropout(x, adapter.dropout, true) : x;
  const Tensor update = linear(linear(input, adapter.a, Tensor()), adapter.b, Tensor());
  return add(base, mul(update, adapter.scaling));
}

void merge_lora_into(const Tensor& weight, const LoraAdapter& adapter) {
  if (!adapter.active()) return;
  NoGradGuard no_grad;
  weight.copy_(add(weight, mul(matmul(adapter.b, adapter.a), adapter.scaling)));
}

}  // namespace neutrino::nn
