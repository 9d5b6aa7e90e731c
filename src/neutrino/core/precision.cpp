// The compute precision; the CPU check asks oneDNN which instruction set it dispatches to.
#include "neutrino/core/precision.h"

#include <dnnl.hpp>

#include "neutrino/core/error.h"

namespace neutrino {

namespace {
thread_local Precision current = Precision::kFloat32;
}

Precision compute_precision() { return current; }

bool bf16_supported() {
  static const bool supported = [] {
    // ISA values are bit sets: every ISA at or above AVX512-BF16 (AMX included) holds its bits.
    const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
    const auto bf16 = static_cast<unsigned>(dnnl_cpu_isa_avx512_core_bf16);
    return (isa & bf16) == bf16;
  }();
  return supported;
}

Precision parse_precision(const std::string& name) {
  if (name == "float32" || name == "fp32" || name == "none" || name.empty()) {
    return Precision::kFloat32;
  }
  if (name == "bfloat16" || name == "bf16") return Precision::kBFloat16;
  throw ValueError(fmt::format("mixed_precision: expected 'bf16' or 'fp32', got '{}'", name));
}

const char* precision_name(Precision p) { return p == Precision::kBFloat16 ? "bf16" : "fp32"; }

PrecisionGuard::PrecisionGuard(Precision p) : previous_(current) {
  current = p == Precision::kBFloat16 && !bf16_supported() ? Precision::kFloat32 : p;
}

PrecisionGuard::~PrecisionGuard() { current = previous_; }

}  // namespace neutrino
