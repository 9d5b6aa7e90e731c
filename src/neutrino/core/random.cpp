#include "neutrino/core/random.h"

#include <atomic>
#include <cmath>
#include <mutex>
#include <numbers>
#include <sstream>

#include "neutrino/core/error.h"

namespace neutrino {

namespace {
uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
}  // namespace

void Generator::seed_with(uint64_t seed) {
  for (auto& word : s_) word = splitmix64(seed);
  has_spare_ = false;
}

uint64_t Generator::next_u64() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double Generator::uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

double Generator::normal() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  double u1 = 0;
  while (u1 <= 0) u1 = uniform();
  const double u2 = uniform();
  const double radius = std::sqrt(-2.0 * std::log(u1));
  const double angle = 2.0 * std::numbers::pi * u2;
  spare_ = radius * std::sin(angle);
  has_spare_ = true;
  return radius * std::cos(angle);
}

uint64_t Generator::below(uint64_t n) {
  NEUTRINO_CHECK_VALUE(n > 0, "Generator::below: n must be positive");
  // Rejection keeps every value equally likely.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t x = next_u64();
  while (x >= limit) x = next_u64();
  return x % n;
}

std::string Generator::state() const {
  std::ostringstream out;
  out.precision(17);
  out << s_[0] << ' ' << s_[1] << ' ' << s_[2] << ' ' << s_[3] << ' ' << has_spare_ << ' '
      << std::hexfloat << spare_;
  return out.str();
}

void Generator::set_state(const std::string& text) {
  std::istringstream in(text);
  uint64_t s[4];
  bool has_spare = false;
  std::string spare_text;
  in >> s[0] >> s[1] >> s[2] >> s[3] >> has_spare >> spare_text;
  NEUTRINO_CHECK_VALUE(!in.fail(), "Generator: malformed state '{}'", text);
  for (int i = 0; i < 4; ++i) s_[i] = s[i];
  has_spare_ = has_spare;
  spare_ = std::strtod(spare_text.c_str(), nullptr);
}

namespace {
// The seed every thread's stream follows. `generation` changes at each manual_seed, so a thread
// notices with one atomic load per global_generator() call; the rest is read under the mutex,
// once per thread per seeding.
struct GlobalSeed {
  std::mutex mutex;
  uint64_t seed = 42;
  uint64_t next_ordinal = 0;  // threads that have drawn since the last seeding
  std::atomic<uint64_t> generation{1};
};
GlobalSeed& global_seed() {
  static GlobalSeed g;
  return g;
}
}  // namespace

namespace {
thread_local Generator* guarded = nullptr;  // the innermost GeneratorGuard's generator
}  // namespace

GeneratorGuard::GeneratorGuard(Generator& generator) : previous_(guarded) { guarded = &generator; }
GeneratorGuard::~GeneratorGuard() { guarded = previous_; }

Generator& global_generator() {
  if (guarded != nullptr) return *guarded;
  thread_local Generator generator;
  thread_local uint64_t generation = 0;
  GlobalSeed& g = global_seed();
  if (generation != g.generation.load(std::memory_order_acquire)) {
    std::lock_guard<std::mutex> lock(g.mutex);
    const uint64_t ordinal = g.next_ordinal++;
    uint64_t seed = g.seed;
    // Thread k > 0 of a seeding: a splitmix64 step away from the seed, its own stream.
    generator.seed_with(ordinal == 0 ? seed : splitmix64(seed) ^ ordinal);
    generation = g.generation.load(std::memory_order_relaxed);
  }
  return generator;
}

void manual_seed(uint64_t seed) {
  GlobalSeed& g = global_seed();
  std::lock_guard<std::mutex> lock(g.mutex);
  g.seed = seed;
  g.next_ordinal = 0;
  g.generation.fetch_add(1, std::memory_order_acq_rel);
}

}  // namespace neutrino
