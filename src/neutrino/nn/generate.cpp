// generate(): autoregressive decoding from a GPT, with a KV cache (each step feeds only the new
// token) or without (each step runs the whole sequence: the reference the cache is tested
// against). Both draw the same random numbers in the same order, so with one seed they give the
// same tokens.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include "neutrino/autograd/autograd.h"
#include "neutrino/core/error.h"
#include "neutrino/core/random.h"
#include "neutrino/nn/gpt.h"
#include "neutrino/ops/ops.h"

namespace neutrino::nn {

namespace {

void check_generate_options(const GPTOptions& model, const GenerateOptions& o) {
  NEUTRINO_CHECK_VALUE(o.max_tokens >= 1, "generate: max_tokens must be at least 1, got {}",
                       o.max_tokens);
  NEUTRINO_CHECK_VALUE(std::isfinite(o.temperature) && o.temperature >= 0,
                       "generate: temperature must be a finite number >= 0, got {}", o.temperature);
  NEUTRINO_CHECK_VALUE(std::isfinite(o.top_p) && o.top_p > 0 && o.top_p <= 1,
                       "generate: top_p must be in (0, 1], got {}", o.top_p);
  NEUTRINO_CHECK_VALUE(o.top_k >= 0, "generate: top_k must be >= 0, got {}", o.top_k);
  for (const auto& s : o.stop) {
    NEUTRINO_CHECK_VALUE(!s.empty(), "generate: a stop sequence is empty");
  }
  NEUTRINO_CHECK_VALUE(o.max_tokens < model.context,
                       "generate: max_tokens {} leaves no room for a prompt in the context of {}",
                       o.max_tokens, model.context);
}

// The prompts as checked, truncated if asked, rows of one length after left padding.
std::vector<std::vector<int64_t>> prepare_prompts(const GPTOptions& model, const GenerateOptions& o,
                                                  std::vector<std::vector<int64_t>> prompts) {
  NEUTRINO_CHECK_VALUE(!prompts.empty(), "generate: no prompts");
  const int64_t room = model.context - o.max_tokens;
  for (size_t r = 0; r < prompts.size(); ++r) {
    auto& p = prompts[r];
    NEUTRINO_CHECK_VALUE(!p.empty(), "generate: prompt {} is empty", r);
    for (int64_t t : p) {
      NEUTRINO_CHECK_VALUE(t >= 0 && t < model.vocab_size,
                           "generate: prompt {} holds token {}, outside the vocabulary of {}", r, t,
                           model.vocab_size);
    }
    const auto len = static_cast<int64_t>(p.size());
    if (len <= room) continue;
    NEUTRINO_CHECK_VALUE(o.truncate_prompt,
                         "generate: prompt {} has {} tokens; with max_tokens {} it exceeds the "
                         "context of {} (truncate the prompt or ask for fewer tokens)",
                         r, len, o.max_tokens, model.context);
    p.erase(p.begin(), p.end() - room);
  }
  return prompts;
}

// One token from a row of logits: argmax at temperature 0, else a draw from the tempered
// distribution cut to the top k and to the top_p nucleus. Exactly one uniform per sampled row.
int64_t sample_token(const float* logits, int64_t vocab, const GenerateOptions& o, Generator& gen) {
  if (o.temperature == 0) {
    return static_cast<int64_t>(std::max_element(logits, logits + vocab) - logits);
  }
  std::vector<int64_t> order(static_cast<size_t>(vocab));
  std::iota(order.begin(), order.end(), 0);
  auto by_logit = [&](int64_t a, int64_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  int64_t keep = vocab;
  if (o.top_k > 0 && o.top_k < vocab) keep = o.top_k;
  std::partial_sort(order.begin(), order.begin() + keep, order.end(), by_logit);
  order.resize(static_cast<size_t>(keep));
  std::vector<double> prob(order.size());
  const double top = logits[order[0]];
  double total = 0;
  for (size_t i = 0; i < order.size(); ++i) {
    prob[i] = std::exp((logits[order[i]] - top) / o.temperature);
    total += prob[i];
  }
  if (o.top_p < 1) {
    double cum = 0;
    size_t n = 0;
    while (n < prob.size() && cum < o.top_p * total) cum += prob[n++];
    prob.resize(std::max<size_t>(n, 1));
    total = std::accumulate(prob.begin(), prob.end(), 0.0);
  }
  double u = gen.uniform() * total;
  for (size_t i = 0; i < prob.size(); ++i) {
    u -= prob[i];
    if (u < 0) return order[i];
  }
  return order[prob.size() - 1];
}

// The stop sequence that `generated` ends with, or nullptr.
const std::vector<int64_t>* ends_with_stop(const std::vector<int64_t>& generated,
                                           const std::vector<std::vector<int64_t>>& stops) {
  for (const auto& s : stops) {
    if (s.size() <= generated.size() && std::equal(s.rbegin(), s.rend(), generated.rbegin())) {
      return &s;
    }
  }
  return nullptr;
}

}  // namespace

GenerateResult generate(GPT& model, const std::vector<std::vector<int64_t>>& prompts_in,
                        const GenerateOptions& o, const TokenCallback& on_token) {
  const GPTOptions& mo = model.options();
  check_generate_options(mo, o);
  const auto prompts = prepare_prompts(mo, o, prompts_in);
  const auto rows = static_cast<int64_t>(prompts.size());
  size_t longest = 0;
  for (const auto& p : prompts) longest = std::max(longest, p.size());
  const auto width = static_cast<int64_t>(longest);
  std::vector<int64_t> pads(prompts.size()), flat;
  bool padded = false;
  for (size_t r = 0; r < prompts.size(); ++r) {
    pads[r] = width - static_cast<int64_t>(prompts[r].size());
    padded = padded || pads[r] > 0;
    flat.insert(flat.end(), static_cast<size_t>(pads[r]), 0);
    flat.insert(flat.end(), prompts[r].begin(), prompts[r].end());
  }
  if (!padded) pads.clear();

  GenerateResult result;
  result.tokens.resize(prompts.size());
  result.finish_reason.assign(prompts.size(), "length");
  result.prompt_tokens = 0;
  for (const auto& p : prompts) result.prompt_tokens += static_cast<int64_t>(p.size());
  const auto begin = std::chrono::steady_clock::now();

  EvalModeGuard eval;
  NoGradGuard no_grad;
  Generator gen(o.seed);
  KVCache cache;
  Tensor sequence = Tensor::from_vector(flat, {rows, width});
  Tensor logits;
  if (o.use_cache) {
    cache = model.new_cache(rows, width + o.max_tokens);
    cache.left_padding = pads;
    logits = model.forward_cached(sequence, cache);
  } else {
    logits = model.forward_padded(sequence, pads);
  }
  std::vector<bool> done(prompts.size(), false);
  const int64_t vocab = mo.vocab_size;
  for (int64_t step = 0; step < o.max_tokens; ++step) {
    const Tensor last = contiguous(slice(logits, 1, logits.size(1) - 1, logits.size(1)));
    const float* rows_logits = last.data<float>();
    std::vector<int64_t> next(prompts.size(), -1), feed(prompts.size(), 0);
    bool running = false;
    for (size_t r = 0; r < prompts.size(); ++r) {
      if (done[r]) continue;
      next[r] = feed[r] = sample_token(rows_logits + static_cast<int64_t>(r) * vocab, vocab, o, gen);
      auto& out = result.tokens[r];
      out.push_back(next[r]);
      if (const auto* s = ends_with_stop(out, o.stop)) {
        out.resize(out.size() - s->size());
        result.finish_reason[r] = "stop";
        done[r] = true;
      }
      running = running || !done[r];
    }
    if (on_token && !on_token(next)) break;
    if (!running || step + 1 == o.max_tokens) break;
    const Tensor fed = Tensor::from_vector(feed, {rows, 1});
    if (o.use_cache) {
      logits = model.forward_cached(fed, cache);
    } else {
      sequence = concat({sequence, fed}, 1);
      logits = model.forward_padded(sequence, pads);
    }
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  return result;
}

}  // namespace neutrino::nn
