#pragma once
/// \file dtype.hpp
/// Element types of tensors and compile-time dispatch over them.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "hyperad/autodiff/errors.hpp"

namespace hyperad {

/// Element type of a tensor. Every floating op supports both.
enum class Dtype : std::uint8_t { f32, f64 };

/// "float32" or "float64".
constexpr std::string_view dtype_name(Dtype d) { return d == Dtype::f32 ? "float32" : "float64"; }

/// Bytes per element.
constexpr std::size_t dtype_size(Dtype d) { return d == Dtype::f32 ? 4 : 8; }

/// The Dtype of a C++ element type (float or double).
template <class T>
constexpr Dtype dtype_of() {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "hyperad tensors hold float or double");
  return std::is_same_v<T, float> ? Dtype::f32 : Dtype::f64;
}

/// Calls `fn.template operator()<T>()` with T the C++ type of `d`:
/// `dispatch(d, [&]<class T>() { ... })`.
template <class Fn>
decltype(auto) dispatch(Dtype d, Fn&& fn) {
  if (d == Dtype::f32) return fn.template operator()<float>();
  return fn.template operator()<double>();
}

}  // namespace hyperad
