// GEMM peers of the neutrino benchmark: fp32 row-major n x n sgemm through oneDNN (dnnl_sgemm)
// and OpenBLAS (cblas_sgemm), n = 256, 512, 1024, 2048, 2 threads. Prints one JSON object per line
// on stdout and nothing else:
// {"system", "workload", "value", "unit", "rss_mb", "loss", "accuracy", "max_abs_diff"}
//
//   gemm_peers [OPENBLAS_SYSTEM] [--skip-onednn] [--skip-openblas]
//
// OPENBLAS_SYSTEM names the OpenBLAS rows (default "openblas"; pass "openblas-tuned" when
// OPENBLAS_CORETYPE is set). oneDNN runs its OpenMP build on all cores (2 here); OpenBLAS is set
// to 2 threads. --skip-onednn avoids repeating the oneDNN rows in the tuned run.
// Build: g++ -O2 -std=c++20 bench/gemm_peers.cpp -ldnnl -lopenblas -o gemm_peers
#include <cblas.h>
#include <oneapi/dnnl/dnnl.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

extern "C" void openblas_set_num_threads(int num_threads);  // also in OpenBLAS's cblas.h

namespace {

using Clock = std::chrono::steady_clock;

double peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // KiB on Linux
}

void emit(const std::string& system, const std::string& workload, double value) {
  std::printf(
      "{\"system\": \"%s\", \"workload\": \"%s\", \"value\": %.6g, \"unit\": \"GFLOP/s\", "
      "\"rss_mb\": %.1f, \"loss\": null, \"accuracy\": null, \"max_abs_diff\": null}\n",
      system.c_str(), workload.c_str(), value, peak_rss_mb());
  std::fflush(stdout);
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Median seconds per call, after 3 warm-up calls, repeating until at least min_calls and
// min_seconds.
double time_call(const std::function<void()>& call, int min_calls, double min_seconds) {
  for (int i = 0; i < 3; ++i) call();
  std::vector<double> times;
  const auto start = Clock::now();
  while (static_cast<int>(times.size()) < min_calls || seconds_since(start) < min_seconds) {
    const auto t0 = Clock::now();
    call();
    times.push_back(seconds_since(t0));
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

// Largest |c - ref| relative to the largest |ref|, over a few sampled entries of C = A B.
double spot_check(const std::vector<float>& a, const std::vector<float>& b,
                  const std::vector<float>& c, int n) {
  double worst = 0;
  for (int k = 0; k < 16; ++k) {
    const int i = (k * 7919) % n, j = (k * 104729 + 3) % n;
    double ref = 0;
    for (int p = 0; p < n; ++p) ref += static_cast<double>(a[static_cast<size_t>(i) * n + p]) *
                                       b[static_cast<size_t>(p) * n + j];
    worst = std::max(worst, std::abs(ref - c[static_cast<size_t>(i) * n + j]) /
                                std::max(1.0, std::abs(ref)));
  }
  return worst;
}

}  // namespace

int main(int argc, char** argv) {
  std::string openblas_system = "openblas";
  bool run_onednn = true, run_openblas = true;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--skip-onednn") == 0) {
      run_onednn = false;
    } else if (std::strcmp(argv[i], "--skip-openblas") == 0) {
      run_openblas = false;
    } else if (argv[i][0] == '-') {
      std::fprintf(stderr, "usage: gemm_peers [OPENBLAS_SYSTEM] [--skip-onednn] [--skip-openblas]\n");
      return 2;
    } else {
      openblas_system = argv[i];
    }
  }
  openblas_set_num_threads(2);

  // All oneDNN sizes first, then all OpenBLAS sizes: oneDNN's OpenMP threads may still spin for a
  // moment after its last call, so the two libraries are not interleaved.
  for (const bool onednn : {true, false}) {
    if (onednn ? !run_onednn : !run_openblas) continue;
    const std::string system = onednn ? "onednn" : openblas_system;
    std::mt19937 rng(1);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (const int n : {256, 512, 1024, 2048}) {
      const size_t size = static_cast<size_t>(n) * n;
      std::vector<float> a(size), b(size), c(size);
      for (float& v : a) v = normal(rng);
      for (float& v : b) v = normal(rng);
      dnnl_status_t status = dnnl_success;
      const double t = time_call(
          [&] {
            if (onednn) {
              status = dnnl_sgemm('N', 'N', n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f,
                                  c.data(), n);
            } else {
              cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a.data(), n,
                          b.data(), n, 0.0f, c.data(), n);
            }
          },
          5, 0.5);
      if (status != dnnl_success) {
        std::fprintf(stderr, "gemm_peers: dnnl_sgemm failed (status %d)\n", static_cast<int>(status));
        return 1;
      }
      const double err = spot_check(a, b, c, n);
      std::fprintf(stderr, "gemm_peers: %s n=%d relative error %.2g\n", system.c_str(), n, err);
      if (err > 1e-3) {
        std::fprintf(stderr, "gemm_peers: %s gives a wrong product\n", system.c_str());
        return 1;
      }
      emit(system, "matmul_" + std::to_string(n), 2.0 * n * static_cast<double>(n) * n / t / 1e9);
    }
  }
  return 0;
}
