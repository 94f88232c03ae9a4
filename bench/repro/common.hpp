#pragma once
// Helpers shared by the reproduction drivers (bench/repro/*.hpp) and their tests: log-log
// slopes, Student quantiles, seeds for independent streams, an outer loop evaluated along
// its budget, number formatting for CSV cells.
#include <cmath>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "hyperad/bilevel/outer.hpp"

namespace hyperad::repro {

/// Least-squares slope of log y against log x (x, y > 0, at least two distinct x).
inline double log_slope(const std::vector<double>& x, const std::vector<double>& y) {
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  const double n = double(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double a = std::log(x[i]), b = std::log(y[i]);
    sx += a, sy += b, sxx += a * a, sxy += a * b;
  }
  return (n * sxy - sx * sy) / (n * sxx - sx * sx);
}

/// A seed for (base, a, b) with no overlap between neighbouring bases or parts (splitmix64
/// steps): series and points seeded this way draw unrelated batch streams. Not
/// bilevel::mix_seed (another mixing): the published results of the drivers were drawn with
/// this one, and switching would change every figure.
inline std::uint64_t mix_seed(std::uint64_t base, std::uint64_t a, std::uint64_t b) {
  auto step = [](std::uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
  };
  return step(step(step(base) ^ a) ^ b);
}

/// 97.5 % quantile of Student's t with `df` degrees of freedom (a table to 30, then normal).
inline double student_975(int df) {
  static const double q[] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
                             2.201,  2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
                             2.080,  2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042};
  return df < 1 ? NAN : df <= 30 ? q[df - 1] : 1.96;
}

/// Steps `opt` until its budget of samples (OuterOptions::budget_samples, which must be
/// set) is spent or its outer_steps are done, calling `at(opt)` once the samples spent reach
/// each of `marks` (ascending; a step that passes several calls once per mark). Returns the
/// samples spent. std::invalid_argument without a budget; std::runtime_error for a step
/// that spends no samples (the budget would never be reached).
inline std::int64_t step_to_budget(bilevel::OuterOptimizer& opt, const std::vector<std::int64_t>& marks,
                                   const std::function<void(const bilevel::OuterOptimizer&)>& at) {
  if (opt.options().budget_samples <= 0)
    throw std::invalid_argument("step_to_budget: the optimizer has no budget of samples");
  std::size_t next = 0;
  while (opt.steps_done() < opt.options().outer_steps && !opt.budget_spent()) {
    const std::int64_t before = opt.total_samples();
    opt.step();
    if (opt.total_samples() == before)
      throw std::runtime_error(fmt::format("step_to_budget: outer step {} spent no samples", opt.steps_done()));
    for (; next < marks.size() && opt.total_samples() >= marks[next]; ++next) at(opt);
  }
  return opt.total_samples();
}

/// The value of `name` among (name, value) pairs, e.g. Instance::evaluate's metrics
/// (std::logic_error when absent).
inline double metric(const std::vector<std::pair<std::string, double>>& metrics, const std::string& name) {
  for (const auto& [k, v] : metrics)
    if (k == name) return v;
  throw std::logic_error("metric: no " + name);
}

/// Four significant digits; empty for NaN (a missing CSV cell).
inline std::string g4(double v) { return std::isnan(v) ? std::string() : fmt::format("{:.4g}", v); }

}  // namespace hyperad::repro
