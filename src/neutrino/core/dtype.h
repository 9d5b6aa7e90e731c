// Element types. New types (bf16, int8) are new enum values plus a line in each switch below; kernels
// dispatch on the enum through dispatch_float() and friends, so adding one never rewrites an op.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "neutrino/core/error.h"

namespace neutrino {

enum class DType : uint8_t {
  kFloat32,
  kFloat64,
  kInt64,
  kBool,  // one byte per element, 0 or 1
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
  }
  return "?";
}

constexpr bool is_floating(DType dtype) {
  return dtype == DType::kFloat32 || dtype == DType::kFloat64;
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

// Calls fn.template operator()<T>() with T the C++ type of a floating dtype; `op` names the caller in
// the error for any other dtype.
template <class Fn>
decltype(auto) dispatch_float(DType dtype, const char* op, Fn&& fn) {
  switch (dtype) {
    case DType::kFloat32:
      return fn.template operator()<float>();
    case DType::kFloat64:
      return fn.template operator()<double>();
    default:
      throw ValueError(fmt::format("{}: expected a floating tensor, got {}", op, dtype_name(dtype)));
  }
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
  }
  throw InternalError("dispatch_all: unknown dtype");
}

}  // namespace neutrino
