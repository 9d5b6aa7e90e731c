// Seedable random streams. Same seed and thread count give bit-identical results: every draw
// goes through a generator on the calling thread, and our own distributions (not <random>'s,
// whose output differs between standard libraries) turn its bits into numbers.
#pragma once

#include <cstdint>
#include <string>

namespace neutrino {

class Generator {
 public:
  explicit Generator(uint64_t seed = 5489) { seed_with(seed); }
  void seed_with(uint64_t seed);
  uint64_t next_u64();                      // xoshiro256** step
  double uniform();                         // [0, 1), 53 random bits
  double normal();                          // standard normal (Box-Muller)
  uint64_t below(uint64_t n);               // uniform integer in [0, n), unbiased
  // The whole state as text, so a checkpoint can restore the stream exactly.
  std::string state() const;
  void set_state(const std::string& text);

 private:
  uint64_t s_[4] = {};
  bool has_spare_ = false;
  double spare_ = 0;
};

// The default generator of initializers, dropout and shuffling: one stream per thread, so it is
// safe to use from several threads at once. A lock per draw would be the other way, but dropout
// and initializers draw once per element (a mutex there costs more than the whole draw), and the
// callers hold the returned reference across their loops.
//
// manual_seed(s) reseeds every thread's stream. The first thread that draws after it continues
// exactly Generator(s), so a program that draws from one thread (any one) gets the same numbers
// as before; each further thread gets its own stream, seeded from s and the order in which the
// threads first drew. state() and set_state() (checkpoints) are the calling thread's stream.
//
// Under a GeneratorGuard, global_generator() is the guard's generator instead (on that thread).
Generator& global_generator();

// Makes `generator` the one that initializers, dropout and fit's shuffling draw from on this
// thread, for the guard's lifetime (PyTorch's generator= argument, for a whole block): a model
// built, or a fit run (FitOptions::generator), under it depends on that generator alone, not on
// the global seed or on what other code drew. Guards nest.
class GeneratorGuard {
 public:
  explicit GeneratorGuard(Generator& generator);
  ~GeneratorGuard();
  GeneratorGuard(const GeneratorGuard&) = delete;
  GeneratorGuard& operator=(const GeneratorGuard&) = delete;

 private:
  Generator* previous_;
};

// Seeds the global generator (Keras's tf.random.set_seed, PyTorch's torch.manual_seed).
void manual_seed(uint64_t seed);

}  // namespace neutrino
