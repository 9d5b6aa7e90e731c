#include "neutrino/core/random.h"

#include <cmath>
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

Generator& global_generator() {
  static Generator generator(42);
  return generator;
}

void manual_seed(uint64_t seed) { global_generator().seed_with(seed); }

}  // namespace neutrino
