// The op table (tests/op_table.json), as the C++ tests see it: every case names its op, how to make
// its inputs, its attributes and which checks apply. tests/golden/generate_golden.py reads the same
// file for the PyTorch side, so names, shapes and input domains have one source.
//
// The checks: "grad" (float64 central differences, test_gradcheck.cpp), "golden" (outputs and input
// gradients against PyTorch in float64 and float32, test_golden.cpp), "fast" (float32, where the
// fast kernels run, against float64, where the reference kernels run, with and without a graph;
// test_fast_ops.cpp). A case without "checks" gets its op's, or "grad" and "golden".
//
// Adding an op: its row in op_table.json (cases, the PyTorch expression) and its runner in
// op_table.cpp (how to call it from the inputs and attrs); OpTable.EveryOpHasARunner and
// OpTable.EveryGoldenCaseHasItsFile say when one side is missing.
#pragma once

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "neutrino/tensor/tensor.h"

namespace neutrino::testing {

struct InputSpec {
  Shape shape;
  DType dtype = DType::kFloat64;  // kFloat64 stands for "the dtype under test"
  std::string fill = "randn";     // randn, uniform, signed, spaced (see op_table.cpp)
  double mean = 0, stddev = 1, low = 0, high = 1, phase = 0.5, p = 0.5;
  std::vector<double> values;  // explicit values, when given
  bool grad = true;            // float inputs only: differentiated (false: targets, statistics)
};

struct OpCase {
  std::string name, op;
  nlohmann::json attrs;
  std::vector<InputSpec> inputs;
  std::set<std::string> checks;
  bool has(const std::string& check) const { return checks.count(check) > 0; }
};

// Every case of the table, loaded once.
const std::vector<OpCase>& op_cases();
// The cases with `check`, for INSTANTIATE_TEST_SUITE_P.
std::vector<OpCase> op_cases_with(const std::string& check);
// The ops that have a runner.
std::vector<std::string> op_runner_names();

// The case's inputs, float ones in `float_dtype`, drawn from the global generator (seeded by the
// caller). Not marked as requiring grad.
std::vector<Tensor> make_inputs(const OpCase& c, DType float_dtype);
// Runs the case's op. `float_dtype` is the dtype under test (ops without inputs, such as arange,
// need it).
std::vector<Tensor> run_op(const OpCase& c, const std::vector<Tensor>& inputs, DType float_dtype);

// A seed from the case's name, so each case draws the same inputs whatever runs before it.
uint64_t case_seed(const std::string& name);

// For gtest parameter names.
struct CaseName {
  std::string operator()(const ::testing::TestParamInfo<OpCase>& info) const {
    return info.param.name;
  }
};

// So that gtest prints a case as its name.
inline void PrintTo(const OpCase& c, std::ostream* os) { *os << c.name; }

}  // namespace neutrino::testing
