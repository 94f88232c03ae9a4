#pragma once
/// \file tolerance.hpp
/// One stopping tolerance for every iterative solve (linear solvers, fixed points, inner
/// solves): a quantity q — a residual, a step norm — of something of size s (‖b‖, ‖w‖) is
/// small enough when q ≤ max(atol, rtol · s).
#include <algorithm>
#include <string_view>

namespace hyperad {

struct Tolerance {
  double rtol = 0.0;  ///< relative to the scale s
  double atol = 0.0;  ///< absolute floor

  static constexpr Tolerance relative(double rtol) { return {rtol, 0.0}; }
  static constexpr Tolerance absolute(double atol) { return {0.0, atol}; }
  /// max(atol, rtol · scale).
  double bound(double scale) const { return std::max(atol, rtol * scale); }
  /// False for the zero tolerance, which never stops an iteration early.
  bool any() const { return rtol > 0.0 || atol > 0.0; }
  /// Throws ValueError naming `who` unless rtol and atol are finite and ≥ 0.
  void validate(std::string_view who) const;
};

}  // namespace hyperad
