// Element types. New types (bf16, int8) are new enum values plus a line in each switch below; kernels
// dispatch on the enum through dispatch_float() and friends, so adding one never rewrites an op.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "neutrino/core/bfloat16.h"
#include "neutrino/core/error.h"

namespace neutrino {

enum class DType : uint8_t {
  kFloat32,
  kFloat64,
  kInt64,
  kBool,      // one byte per element, 0 or 1
  kBFloat16,  // storage for mixed-precision activations; ops that lack a kernel say so
};

constexpr size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return 4;
    case DType::kFloat64:
    case DType::kInt64:
      return 8;
    case DType::kBool:
      return 1;
    case DType::kBFloat16:
      return 2;
  }
  return 0;
}

constexpr const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return "float32";
    case DType::kFloat64:
      return "float64";
    case DType::kInt64:
      return "int64";
    case DType::kBool:
      return "bool";
    case DType::kBFloat16:
      return "bfloat16";
  }
  return "?";
}

constexpr bool is_floating(DType dtype) {
  return dtype == DType::kFloat32 || dtype == DType::kFloat64 || dtype == DType::kBFloat16;
}

template <class T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() {
  return DType::kFloat32;
}
template <>
constexpr DType dtype_of<double>() {
  return DType::kFloat64;
}
template <>
constexpr DType dtype_of<int64_t>() {
  return DType::kInt64;
}
template <>
constexpr DType dtype_of<bool>() {
  return DType::kBool;
}
template <>
constexpr DType dtype_of<bfloat16>() {
  return DType::kBFloat16;
}

// Calls fn.template operator()<T>() with T float or double; `op` names the caller in the error for
// any other dtype. bfloat16 has kernels only where mixed precision needs them (convolution,
// pooling, relu, copies); elsewhere the error asks for a cast.
template <class Fn>
decltype(auto) dispatch_float(DType dtype, const char* op, Fn&& fn) {
  switch (dtype) {
    case DType::kFloat32:
      return fn.template operator()<float>();
    case DType::kFloat64:
      return fn.template operator()<double>();
    case DType::kBFloat16:
      throw ValueError(fmt::format("{}: no bfloat16 kernel; cast the tensor with .to(float32) first",
                                   op));
    default:
      throw ValueError(fmt::format("{}: expected a floating tensor, got {}", op, dtype_name(dtype)));
  }
}

// Like dispatch_float, with bfloat16 as a third type: for ops that have bf16 kernels.
template <class Fn>
decltype(auto) dispatch_float_bf16(DType dtype, const char* op, Fn&& fn) {
  if (dtype == DType::kBFloat16) return fn.template operator()<bfloat16>();
  return dispatch_float(dtype, op, std::forward<Fn>(fn));
}

// Like dispatch_float, over every dtype.
template <class Fn>
decltype(auto) dispatch_all(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::kFloat32:
      return fn.template operator()<float>();
    case DType::kFloat64:
      return fn.template operator()<double>();
    case DType::kInt64:
      return fn.template operator()<int64_t>();
    case DType::kBool:
      return fn.template operator()<bool>();
    case DType::kBFloat16:
      return fn.template operator()<bfloat16>();
  }
  throw InternalError("dispatch_all: unknown dtype");
}

}  // namespace neutrino
