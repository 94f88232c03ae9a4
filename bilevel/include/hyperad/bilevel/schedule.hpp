#pragma once
/// \file schedule.hpp
/// Schedules over the outer step s = 0, 1, 2, …: iteration counts (t inner steps, K
/// linear-system steps, J cross-term batches) that stay constant or grow linearly or as √s,
/// and outer step sizes α_s that stay constant or decrease.
#include <cstdint>
#include <limits>
#include <string>

namespace hyperad::bilevel {

/// How an iteration count grows with the outer step s.
enum class Growth { constant, linear, sqrt };

/// n(s) = min(cap, base + ⌊rate · g(s)⌋) with g(s) = 0, s or √s.
struct IterationSchedule {
  Growth growth = Growth::constant;
  int base = 1;       ///< n(0) (≥ 0)
  double rate = 0.0;  ///< growth per unit of g(s) (≥ 0)
  int cap = std::numeric_limits<int>::max();  ///< upper bound (≥ base)

  static IterationSchedule constant(int value) { return {Growth::constant, value, 0.0, value}; }
  static IterationSchedule linear(int base, double rate, int cap = std::numeric_limits<int>::max()) {
    return {Growth::linear, base, rate, cap};
  }
  static IterationSchedule sqrt(int base, double rate, int cap = std::numeric_limits<int>::max()) {
    return {Growth::sqrt, base, rate, cap};
  }
  /// n(s) for s ≥ 0.
  int at(std::int64_t s) const;
  /// Throws ValueError naming `who` for base < 0, rate < 0 or non-finite, or cap < base.
  void validate(const char* who) const;
  /// e.g. "10 + 2·s (cap 100)".
  std::string describe() const;
};

/// A step size over a step counter s: constant α₀, α₀·γ/(γ + s) (the classical O(1/s)
/// rule), or α₀·√(γ/(γ + s)) (O(1/√s), for noisy hypergradients). The outer loop's α_s
/// (s counts outer steps) and the damping η_s of stochastic iterations (s counts the steps
/// of one solve; stochastic.hpp) are both this type.
struct StepSizeSchedule {
  enum class Rule { constant, inverse, inverse_sqrt };
  Rule rule = Rule::constant;
  double alpha0 = 0.1;
  double gamma = 1.0;  ///< decreasing rules only (> 0)

  static StepSizeSchedule constant(double alpha) { return {Rule::constant, alpha, 1.0}; }
  static StepSizeSchedule inverse(double alpha0, double gamma) { return {Rule::inverse, alpha0, gamma}; }
  static StepSizeSchedule inverse_sqrt(double alpha0, double gamma) { return {Rule::inverse_sqrt, alpha0, gamma}; }
  /// α_s for s ≥ 0.
  double at(std::int64_t s) const;
  /// Throws ValueError naming `who` unless α₀ ≥ 0 is finite and (decreasing rules) γ > 0.
  void validate(const char* who) const;
  std::string describe() const;
};

}  // namespace hyperad::bilevel
