#pragma once
/// \file format.hpp
/// Printing tensors with fmt: `fmt::format("{}", t)` gives
/// `Tensor(shape=[2, 3], dtype=float64, values=[[1, 2, 3], [4, 5, 6]])`, with at most
/// three leading and three trailing entries per axis when an axis has more than eight.
#include <string>

#include <fmt/format.h>

#include "hyperad/autodiff/tensor.hpp"

namespace hyperad {
/// The text fmt prints for `t`.
std::string to_string(const Tensor& t);
}  // namespace hyperad

template <>
struct fmt::formatter<hyperad::Tensor> : fmt::formatter<std::string> {
  template <class Ctx>
  auto format(const hyperad::Tensor& t, Ctx& ctx) const {
    return fmt::formatter<std::string>::format(hyperad::to_string(t), ctx);
  }
};
