// libFuzzer target for model files: the safetensors container and, inside it, the metadata a
// model is rebuilt from (format, checksum, architecture, preprocessing, class names, mixed
// precision). Any input must either be refused with a neutrino::Error or load into a built
// model whose summary prints and which runs one all-zero sample; a crash, a sanitizer report,
// an InternalError (a broken invariant), any other exception or a huge allocation is a bug.
// load_model reads a path, so each input goes through a memfd (no disk).
//
//   build: CXX=clang++-14 scripts/build.sh build-fuzz -DNEUTRINO_BUILD_FUZZERS=ON ...
//   run:   build-fuzz/bin/fuzz_model fuzz/corpus/fuzz_model -max_total_time=60
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "neutrino/autograd/autograd.h"
#include "neutrino/core/error.h"
#include "neutrino/train/model_file.h"

namespace {

// One memfd for the whole run, rewritten for each input.
const std::string& input_path(const uint8_t* data, size_t size) {
  static const int fd = memfd_create("fuzz_model", MFD_CLOEXEC);
  static const std::string path = "/proc/self/fd/" + std::to_string(fd);
  if (fd < 0 || ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != static_cast<ssize_t>(size)) {
    std::abort();
  }
  return path;
}

// A forward pass costs time in proportion to the model; fuzzed ones stay small or are skipped.
constexpr int64_t kMaxRunElements = int64_t{1} << 16;

void exercise(neutrino::train::Model& model) {
  (void)model.summary();
  int64_t params = 0;
  for (const neutrino::Tensor& p : model.parameters()) params += p.numel();
  if (params > 16 * kMaxRunElements) return;
  std::vector<neutrino::Tensor> inputs;  // one sample for each of the model's inputs
  for (neutrino::Shape shape : model.input_shapes()) {
    if (neutrino::shape_numel(shape) > kMaxRunElements) return;
    shape.insert(shape.begin(), 1);
    inputs.push_back(neutrino::Tensor::zeros(shape));
  }
  neutrino::NoGradGuard no_grad;
  (void)model.predict(inputs, 1);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = input_path(data, size);
  try {
    neutrino::train::Model model = neutrino::train::load_model(path).model;
    exercise(model);
  } catch (const neutrino::InternalError&) {
    std::abort();  // our own invariant broke: a bug, whatever the input
  } catch (const neutrino::Error&) {
    return 0;  // refusing the input is the expected outcome for most fuzzed files
  }
  return 0;
}
