// neutrino's side of the benchmark (bench/run runs it beside PyTorch, ONNX Runtime, oneDNN and
// OpenBLAS). Prints one JSON object per line:
// {"system", "workload", "value", "unit", "rss_mb", "loss", "accuracy", "max_abs_diff"}.
//
//   neutrino_bench mlp_train|cnn_train     Fashion-MNIST, Adam, batch 128 (BENCH_EPOCHS, default 1)
//   neutrino_bench mlp_train_bf16|cnn_train_bf16   the same under the bf16 mixed precision policy
//   neutrino_bench mlp_infer|cnn_infer DIR batch-1 latency and batch-256 throughput on the weights
//                                          and inputs that bench/torch_bench.py exported to DIR
//   neutrino_bench lstm_train DIR          one epoch of the fortune-topic LSTM (Embedding(64) -
//                                          LSTM(128) - Dense(6), Adam, batch 64, 128 steps) on the
//                                          ids, order and weights torch_bench.py lstm_export wrote
//   neutrino_bench gpt_train DIR [bf16]    a char GPT (4 layers, 4 heads, d 128, context 128) on
//                                          the fortune ids and initial weights torch_bench.py
//                                          gpt_export wrote: train_language_model, AdamW 3e-4,
//                                          batch 32, BENCH_GPT_STEPS steps (300); tokens/s and
//                                          the validation loss
//   neutrino_bench gpt_generate DIR        greedy decoding on gpt_export's model (8-token prompts,
//                                          120 new tokens, batch 1 and 8): tokens/s with the KV
//                                          cache and without it
//   neutrino_bench matmul                  fp32 GFLOP/s at 256, 512, 1024, 2048
//   neutrino_bench xor                     the XOR program: microseconds per training epoch
//   neutrino_bench overhead                a chain of 1000 tiny ops; allocations per training step
//   neutrino_bench attention               fused vs composite scaled_dot_product_attention: ms per
//                                          causal forward+backward at B=32, H=4, T=128, D=32, and
//                                          per decode step (Tq=1 against 128 keys)
//   neutrino_bench attention_memory        peak RSS growth of one causal forward+backward at
//                                          B=1, H=1, T=4096, D=64, fused and composite, each in
//                                          its own child process
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "neutrino/data/datasets.h"
#include "neutrino/data/npy.h"
#include "neutrino/data/preprocess.h"
#include "neutrino/data/token_shards.h"
#include "neutrino/nn/gpt.h"
#include "neutrino/train/language_model.h"
#include "neutrino/train/lm_trainer.h"
#include "neutrino/neutrino.h"

using namespace neutrino;
using namespace neutrino::nn;
using namespace neutrino::train;
using Clock = std::chrono::steady_clock;

namespace {

double peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

std::string number(double v) { return std::isfinite(v) ? fmt::format("{}", v) : "null"; }

void emit(const std::string& workload, double value, const std::string& unit, double loss = NAN,
          double accuracy = NAN, double max_abs_diff = NAN) {
  fmt::print(
      "{{\"system\": \"neutrino\", \"workload\": \"{}\", \"value\": {}, \"unit\": \"{}\", "
      "\"rss_mb\": {:.1f}, \"loss\": {}, \"accuracy\": {}, \"max_abs_diff\": {}}}\n",
      workload, number(value), unit, peak_rss_mb(), number(loss), number(accuracy),
      number(max_abs_diff));
  std::fflush(stdout);
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Median seconds per call, repeating until at least `min_seconds` or `min_calls`.
double time_call(const std::function<void()>& call, int min_calls, double min_seconds) {
  for (int i = 0; i < 3; ++i) call();  // warm-up
  std::vector<double> times;
  const auto start = Clock::now();
  while (static_cast<int>(times.size()) < min_calls || seconds_since(start) < min_seconds) {
    const auto t0 = Clock::now();
    call();
    times.push_back(seconds_since(t0));
  }
  return median(times);
}

Sequential mlp() {
  return Sequential({Dense(256, "relu", {.input_shape = {784}, .name = "fc1"}),
                     Dense(128, "relu", {.name = "fc2"}), Dense(10, {.name = "fc3"})});
}

Sequential cnn() {
  return Sequential(
      {Conv2D(32, 3, {.input_shape = {1, 28, 28}, .name = "conv1", .padding = "same", .activation = "relu"}),
       MaxPooling2D(2),
       Conv2D(64, 3, {.name = "conv2", .padding = "same", .activation = "relu"}),
       MaxPooling2D(2), Flatten(), Dense(128, "relu", {.name = "fc1"}), Dense(10, {.name = "fc2"})});
}

int epochs_from_env() {
  const char* e = std::getenv("BENCH_EPOCHS");
  return e != nullptr ? std::max(1, std::atoi(e)) : 1;
}

void train_workload(const std::string& name, bool conv, Precision precision) {
  manual_seed(0);
  const data::Dataset train_set = data::load_dataset("fashion_mnist:train");
  const data::Dataset test_set = data::load_dataset("fashion_mnist:test");
  auto prepare = [&](const Tensor& x) {
    const Tensor scaled = data::rescale(x, 1.0 / 255.0);
    return conv ? scaled : reshape(scaled, {x.size(0), 784});
  };
  const Tensor x = prepare(train_set.x), xt = prepare(test_set.x);
  Sequential model = conv ? cnn() : mlp();
  model.set_mixed_precision(precision);
  // A bf16 figure measured in fp32 would mislead: say so beside the JSON line.
  if (precision != model.mixed_precision()) {
    fmt::print(stderr, "neutrino_bench: bf16 not supported on this CPU, {} runs in fp32\n", name);
  }
  model.compile(optim::Adam({.learning_rate = 1e-3}), Loss("sparse_categorical_crossentropy", true),
                {"accuracy"});
  const int epochs = epochs_from_env();
  const auto start = Clock::now();
  model.fit(x, train_set.y, {.epochs = epochs, .batch_size = 128, .verbose = 0, .seed = 0});
  const double elapsed = seconds_since(start);
  const Scores scores = model.evaluate(xt, test_set.y, {.batch_size = 256, .verbose = 0});
  emit(name, static_cast<double>(x.size(0)) * epochs / elapsed, "samples/s", scores["loss"],
       scores["accuracy"]);
}

void infer_workload(const std::string& prefix, const std::string& dir) {
  const bool conv = prefix == "cnn";
  Sequential model = conv ? cnn() : mlp();
  model.load_state_dict(io::load_tensors(dir + "/" + prefix + ".safetensors").tensors);
  model.eval();
  const Tensor x = data::read_npy(dir + "/infer_" + prefix + "_x.npy");
  const Tensor expected = data::read_npy(dir + "/infer_" + prefix + "_y.npy");
  NoGradGuard no_grad;
  const Tensor out = model.predict(x, 256);
  double diff = 0;
  const auto a = out.to_vector<float>(), b = expected.to_vector<float>();
  for (size_t i = 0; i < a.size(); ++i) diff = std::max(diff, static_cast<double>(std::abs(a[i] - b[i])));
  const Tensor one = contiguous(slice(x, 0, 0, 1));
  const double b1 = time_call([&] { model.forward(one); }, conv ? 500 : 2000, 0.5);
  emit(prefix + "_infer_b1", b1 * 1e6, "us", NAN, NAN, diff);
  const double b256 = time_call([&] { model.forward(x); }, 50, 0.5);
  emit(prefix + "_infer_b256", 256.0 / b256, "images/s", NAN, NAN, diff);
}

// The same model, data order and initial weights as torch_bench.py's TopicLSTM, so that the
// losses after the epoch agree; training tokens per second (padding included, as PyTorch's).
void lstm_workload(const std::string& dir) {
  const Tensor x = data::read_npy(dir + "/lstm_x.npy"), y = data::read_npy(dir + "/lstm_y.npy");
  const auto weights = io::load_tensors(dir + "/lstm.safetensors").tensors;
  const int64_t vocab = weights.at("embedding.weight").size(0), steps = x.size(1);
  Sequential model({Embedding(vocab, 64, {.input_shape = {steps}, .name = "embedding"}),
                    LSTM(128, {.name = "lstm"}), Dense(6, {.name = "fc"})});
  model.build({steps});
  model.load_state_dict(weights);
  model.compile(optim::Adam({.learning_rate = 1e-3, .epsilon = 1e-7}),
                Loss("sparse_categorical_crossentropy", true), {"accuracy"});
  const auto start = Clock::now();
  model.fit(x, y, {.epochs = 1, .batch_size = 64, .shuffle = false, .verbose = 0, .seed = 0});
  const double elapsed = seconds_since(start);
  const Scores scores = model.evaluate(x, y, {.batch_size = 256, .verbose = 0});
  emit("lstm_train", static_cast<double>(x.numel()) / elapsed, "tokens/s", scores["loss"],
       scores["accuracy"]);
}

// The same model, weights and windows as torch_bench.py's gpt_train (TokenWindows's stream is
// what that script rebuilds), so that the validation losses after the run agree.
void gpt_workload(const std::string& dir, Precision precision) {
  const Tensor train_ids = data::read_npy(dir + "/gpt_train.npy");
  const Tensor val_ids = data::read_npy(dir + "/gpt_val.npy");
  auto weights = io::load_tensors(dir + "/gpt.safetensors").tensors;
  const int64_t vocab = weights.at("transformer.wte.weight").size(0);
  data::write_token_shard(dir + "/gpt_train.shard", train_ids.to_vector<int64_t>(), vocab);
  data::write_token_shard(dir + "/gpt_val.shard", val_ids.to_vector<int64_t>(), vocab);
  const data::TokenShard train(dir + "/gpt_train.shard"), val(dir + "/gpt_val.shard");
  const nn::GPTOptions options{.vocab_size = vocab, .context = 128, .layers = 4, .heads = 4,
                               .d_model = 128};
  nn::GPT model(options);
  model.load_state_dict(train::adapt_imported_state(options, std::move(weights), dir));
  const char* steps_env = std::getenv("BENCH_GPT_STEPS");
  const int64_t steps = steps_env != nullptr ? std::max(1, std::atoi(steps_env)) : 300;
  if (precision == Precision::kBFloat16 && !bf16_supported()) {
    fmt::print(stderr, "neutrino_bench: bf16 not supported on this CPU, gpt_train_bf16 runs in fp32\n");
  }
  const LmTrainResult r = train_language_model(
      model, train, &val,
      {.max_steps = steps, .batch_size = 32, .eval_interval = steps, .eval_steps = 20,
       .learning_rate = 3e-4, .min_lr = 3e-5, .warmup_steps = 30, .weight_decay = 0.1,
       .beta_1 = 0.9, .beta_2 = 0.95, .grad_clip = 1.0, .mixed_precision = precision,
       .seed = 1337, .verbose = 0});
  emit(precision == Precision::kBFloat16 ? "gpt_train_bf16" : "gpt_train", r.tokens_per_second,
       "tokens/s", r.val_loss);
}

// Greedy decoding with the KV cache (and, for the speed-up, without it) on gpt_export's model:
// the same 8-token prompts from the validation ids and 120 new tokens as torch_bench.py's
// gpt_generate, at batch 1 and 8.
void gpt_generate_workload(const std::string& dir) {
  const std::vector<int64_t> val = data::read_npy(dir + "/gpt_val.npy").to_vector<int64_t>();
  auto weights = io::load_tensors(dir + "/gpt.safetensors").tensors;
  const nn::GPTOptions options{.vocab_size = weights.at("transformer.wte.weight").size(0),
                               .context = 128, .layers = 4, .heads = 4, .d_model = 128};
  nn::GPT model(options);
  model.load_state_dict(train::adapt_imported_state(options, std::move(weights), dir));
  model.eval();
  constexpr int64_t kPrompt = 8, kNew = 120;
  for (int64_t batch : {1, 8}) {
    std::vector<std::vector<int64_t>> prompts;
    for (int64_t b = 0; b < batch; ++b) {
      prompts.emplace_back(val.begin() + b * kPrompt, val.begin() + (b + 1) * kPrompt);
    }
    for (bool cache : {true, false}) {
      const nn::GenerateOptions o{.max_tokens = kNew, .temperature = 0, .use_cache = cache};
      nn::generate(model, prompts, o);  // warm-up
      std::vector<double> rates;
      for (int run = 0; run < (cache ? 5 : 1); ++run) {
        const nn::GenerateResult r = nn::generate(model, prompts, o);
        rates.push_back(static_cast<double>(batch * kNew) / r.seconds);
      }
      std::sort(rates.begin(), rates.end());
      emit(fmt::format("gpt_generate_b{}{}", batch, cache ? "" : "_nocache"), rates[rates.size() / 2],
           "tokens/s");
    }
  }
}

void matmul_workload() {
  manual_seed(1);
  for (int64_t n : {256, 512, 1024, 2048}) {
    const Tensor a = Tensor::normal({n, n}), b = Tensor::normal({n, n});
    NoGradGuard no_grad;
    const double t = time_call([&] { matmul(a, b); }, 5, 0.5);
    emit(fmt::format("matmul_{}", n), 2.0 * static_cast<double>(n * n * n) / t / 1e9, "GFLOP/s");
  }
}

void xor_workload() {
  manual_seed(42);
  const Tensor x = Tensor::of({{0, 0}, {0, 1}, {1, 0}, {1, 1}});
  const Tensor y = Tensor::of({0, 1, 1, 0});
  Sequential model({Dense(3, "sigmoid", {.input_shape = {2}}), Dense(1, "sigmoid")});
  model.compile("adam", "binary_crossentropy", {"accuracy"});
  const auto start = Clock::now();
  model.fit(x, y, {.epochs = 1000, .verbose = 0});
  const double per_epoch = seconds_since(start) / 1000.0;
  const Scores scores = model.evaluate(x, y, {.verbose = 0});
  emit("xor", per_epoch * 1e6, "us/epoch", scores["loss"], scores["accuracy"]);
}

void overhead_workload() {
  Tensor t = Tensor::ones({1});
  {
    NoGradGuard no_grad;
    const double chain = time_call([&] {
      Tensor h = t;
      for (int i = 0; i < 1000; ++i) h = add(h, t);
    }, 20, 0.5);
    emit("op_overhead", chain / 1000.0 * 1e9, "ns/op");
  }
  // Storage allocations per training step of the MLP, in steady state.
  manual_seed(0);
  Sequential model = mlp();
  model.compile("adam", Loss("sparse_categorical_crossentropy", true));
  const Tensor x = Tensor::normal({128, 784});
  const Tensor y = Tensor::zeros({128}, DType::kInt64);
  for (int i = 0; i < 3; ++i) model.train_on_batch(x, y);
  const uint64_t before = Storage::allocations();
  for (int i = 0; i < 10; ++i) model.train_on_batch(x, y);
  emit("allocations_per_step", static_cast<double>(Storage::allocations() - before) / 10.0, "allocs");
}

using AttentionFn = Tensor (*)(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                               const AttentionOptions&);

// One causal forward+backward of sum(attention(q, k, v)).
void attention_step(AttentionFn fn, const Tensor& q0, const Tensor& k0, const Tensor& v0) {
  Tensor q = q0.detach().set_requires_grad(), k = k0.detach().set_requires_grad();
  Tensor v = v0.detach().set_requires_grad();
  backward(sum(fn(q, k, v, Tensor(), {.causal = true})));
}

void attention_workload() {
  manual_seed(2);
  const struct {
    const char* name;
    AttentionFn fn;
  } systems[] = {{"fused", &scaled_dot_product_attention},
                 {"composite", &scaled_dot_product_attention_composite}};
  const Tensor q = Tensor::normal({32, 4, 128, 32}), k = Tensor::normal({32, 4, 128, 32});
  const Tensor v = Tensor::normal({32, 4, 128, 32}), q1 = Tensor::normal({32, 4, 1, 32});
  for (const auto& s : systems) {
    const double train = time_call([&] { attention_step(s.fn, q, k, v); }, 10, 1.0);
    emit(fmt::format("attention_train_{}", s.name), train * 1e3, "ms");
    NoGradGuard no_grad;
    const double decode = time_call([&] { s.fn(q1, k, v, Tensor(), {.causal = true}); }, 20, 0.5);
    emit(fmt::format("attention_decode_{}", s.name), decode * 1e6, "us");
  }
}

// Each variant in a child forked before any tensor exists, so its peak RSS is its own; the
// figure is the growth over the child's RSS at its start.
void attention_memory_workload() {
  const struct {
    const char* name;
    AttentionFn fn;
  } systems[] = {{"fused", &scaled_dot_product_attention},
                 {"composite", &scaled_dot_product_attention_composite}};
  for (const auto& s : systems) {
    std::fflush(stdout);
    const pid_t pid = fork();
    if (pid == 0) {
      const double start = peak_rss_mb();
      manual_seed(3);
      const Tensor q = Tensor::normal({1, 1, 4096, 64}), k = Tensor::normal({1, 1, 4096, 64});
      const Tensor v = Tensor::normal({1, 1, 4096, 64});
      attention_step(s.fn, q, k, v);
      emit(fmt::format("attention_memory_{}", s.name), peak_rss_mb() - start, "MB");
      std::fflush(stdout);
      _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      throw ValueError(fmt::format("attention_memory: the {} child failed", s.name));
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::string workload = argc > 1 ? argv[1] : "";
  try {
    if (workload == "mlp_train" || workload == "mlp_train_bf16" || workload == "cnn_train" ||
        workload == "cnn_train_bf16") {
      train_workload(workload, workload.starts_with("cnn"),
                     workload.ends_with("_bf16") ? Precision::kBFloat16 : Precision::kFloat32);
    } else if ((workload == "mlp_infer" || workload == "cnn_infer") && argc > 2) {
      infer_workload(workload.substr(0, 3), argv[2]);
    } else if (workload == "lstm_train" && argc > 2) {
      lstm_workload(argv[2]);
    } else if (workload == "gpt_generate" && argc > 2) {
      gpt_generate_workload(argv[2]);
    } else if (workload == "gpt_train" && argc > 2) {
      gpt_workload(argv[2], argc > 3 && std::string(argv[3]) == "bf16" ? Precision::kBFloat16
                                                                        : Precision::kFloat32);
    } else if (workload == "matmul") {
      matmul_workload();
    } else if (workload == "xor") {
      xor_workload();
    } else if (workload == "overhead") {
      overhead_workload();
    } else if (workload == "attention") {
      attention_workload();
    } else if (workload == "attention_memory") {
      attention_memory_workload();
    } else {
      fmt::print(stderr,
                 "usage: neutrino_bench mlp_train|cnn_train|mlp_train_bf16|cnn_train_bf16|"
                 "mlp_infer DIR|cnn_infer DIR|lstm_train DIR|gpt_train DIR [bf16]|gpt_generate DIR|matmul|xor|overhead|"
                 "attention|attention_memory\n");
      return 2;
    }
  } catch (const Error& e) {
    fmt::print(stderr, "neutrino_bench: {}\n", e.what());
    return 1;
  }
  return 0;
}
