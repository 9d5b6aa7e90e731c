// Mixed precision: which number format the heavy kernels (matmul, convolution) compute in.
// Parameters stay float32 (master weights); under kBFloat16 the kernels round their inputs to
// bfloat16 and accumulate in float32, the way PyTorch's CPU autocast treats matmul and conv, and
// Sequential keeps a convolutional stack's activations in bfloat16 tensors (DType::kBFloat16)
// between layers with bf16 kernels. The setting is per thread, so a serving thread and a training
// thread can differ.
#pragma once

#include <string>

namespace neutrino {

enum class Precision { kFloat32, kBFloat16 };

// The precision kernels on this thread compute in (kFloat32 unless a guard says otherwise).
Precision compute_precision();
// Whether this CPU runs bfloat16 kernels natively (AVX512-BF16 or AMX). Elsewhere a bf16 request
// falls back to float32, so code asking for bf16 still runs, just without the speed-up.
bool bf16_supported();
// "float32"/"fp32" or "bfloat16"/"bf16"; a ValueError names anything else.
Precision parse_precision(const std::string& name);
const char* precision_name(Precision p);

// Sets this thread's compute precision for the guard's lifetime (kBFloat16 falls back to
// kFloat32 where bf16_supported() is false).
class PrecisionGuard {
 public:
  explicit PrecisionGuard(Precision p);
  ~PrecisionGuard();
  PrecisionGuard(const PrecisionGuard&) = delete;
  PrecisionGuard& operator=(const PrecisionGuard&) = delete;

 private:
  Precision previous_;
};

}  // namespace neutrino
