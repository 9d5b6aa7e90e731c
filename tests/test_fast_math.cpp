// The vectorizable float exp, erf and tanh of backend/fast_exp.h against the C library's, over
// a dense grid that covers their clamped ends, and GELU's fused backward against the composite.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "neutrino/backend/fast_exp.h"
#include "neutrino/backend/kernels.h"

namespace neutrino {
namespace {

std::vector<float> grid(float lo, float hi, int n) {
  std::vector<float> xs;
  for (int i = 0; i <= n; ++i) xs.push_back(lo + (hi - lo) * static_cast<float>(i) / static_cast<float>(n));
  return xs;
}

TEST(FastMath, ExpIsWithinFloatRounding) {
  for (const float x : grid(-80.0f, 80.0f, 200000)) {
    const double want = std::exp(static_cast<double>(x));
    ASSERT_NEAR(kernels::fast_exp(x), want, 4e-7 * want) << x;
  }
  EXPECT_EQ(kernels::fast_exp_nonpositive(-100.0f), 0.0f);
}

TEST(FastMath, ErfIsWithinHalfAMillionth) {
  for (const float x : grid(-6.0f, 6.0f, 240000)) {
    const double want = std::erf(static_cast<double>(x));
    ASSERT_NEAR(kernels::fast_erf(x), want, 5e-7) << x;
    if (std::abs(x) < 0.5f && x != 0.0f) {
      ASSERT_NEAR(kernels::fast_erf(x) / want, 1.0, 3e-7) << x;
    }
  }
  EXPECT_EQ(kernels::fast_erf(0.0f), 0.0f);
  EXPECT_EQ(kernels::fast_erf(-50.0f), -kernels::fast_erf(50.0f));
}

TEST(FastMath, TanhIsWithinFloatRounding) {
  for (const float x : grid(-20.0f, 20.0f, 200000)) {
    ASSERT_NEAR(kernels::fast_tanh(x), std::tanh(static_cast<double>(x)), 3e-7) << x;
  }
}

// The one-pass backward equals g times the derivative kernel, for both GELU forms, in float
// (vectorized) and double (std::erf), across the threads' chunk boundaries.
TEST(FastMath, GeluBackwardIsGradientTimesDerivative) {
  const int64_t n = 3 * (int64_t{1} << 15) + 17;
  std::vector<double> x(n), g(n), dx(n), d(n);
  for (int64_t i = 0; i < n; ++i) {
    x[i] = -6.0 + 12.0 * static_cast<double>(i) / static_cast<double>(n);
    g[i] = std::cos(static_cast<double>(i));
  }
  for (const bool exact : {true, false}) {
    kernels::gelu_backward(exact, x.data(), g.data(), dx.data(), n);
    kernels::unary(exact ? kernels::Unary::kGeluErfGrad : kernels::Unary::kGeluTanhGrad, x.data(),
                   d.data(), n);
    std::vector<float> xf(x.begin(), x.end()), gf(g.begin(), g.end()), dxf(n);
    kernels::gelu_backward(exact, xf.data(), gf.data(), dxf.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_DOUBLE_EQ(dx[i], g[i] * d[i]) << i;
      ASSERT_NEAR(dxf[i], dx[i], 2e-6) << i;
    }
  }
}

}  // namespace
}  // namespace neutrino
