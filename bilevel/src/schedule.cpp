#include "hyperad/bilevel/schedule.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "hyperad/autodiff/errors.hpp"

namespace hyperad::bilevel {

int IterationSchedule::at(std::int64_t s) const {
  const double steps = static_cast<double>(std::max<std::int64_t>(s, 0));
  const double g = growth == Growth::constant ? 0.0 : growth == Growth::linear ? steps : std::sqrt(steps);
  // Computed in double and capped before converting, so a long run cannot overflow int.
  const double n = static_cast<double>(base) + std::floor(rate * g);
  return static_cast<int>(std::min(n, static_cast<double>(cap)));
}

void IterationSchedule::validate(const char* who) const {
  if (base < 0) throw ValueError(fmt::format("{}: the schedule's base must be >= 0, got {}", who, base));
  if (!(rate >= 0.0) || !std::isfinite(rate))
    throw ValueError(fmt::format("{}: the schedule's rate must be finite and >= 0, got {}", who, rate));
  if (cap < base) throw ValueError(fmt::format("{}: the schedule's cap {} is below its base {}", who, cap, base));
}

std::string IterationSchedule::describe() const {
  std::string s = growth == Growth::constant ? fmt::format("{}", base)
                  : growth == Growth::linear ? fmt::format("{} + {}·s", base, rate)
                                             : fmt::format("{} + {}·√s", base, rate);
  if (growth != Growth::constant && cap != std::numeric_limits<int>::max()) s += fmt::format(" (cap {})", cap);
  return s;
}

double StepSizeSchedule::at(std::int64_t s) const {
  const double steps = static_cast<double>(std::max<std::int64_t>(s, 0));
  switch (rule) {
    case Rule::constant: return alpha0;
    case Rule::inverse: return alpha0 * gamma / (gamma + steps);
    case Rule::inverse_sqrt: return alpha0 * std::sqrt(gamma / (gamma + steps));
  }
  return alpha0;
}

void StepSizeSchedule::validate(const char* who) const {
  if (!(alpha0 >= 0.0) || !std::isfinite(alpha0))
    throw ValueError(fmt::format("{}: the step size must be finite and >= 0, got {}", who, alpha0));
  if (rule != Rule::constant && !(gamma > 0.0 && std::isfinite(gamma)))
    throw ValueError(fmt::format("{}: γ of a decreasing step size must be finite and > 0, got {}", who, gamma));
}

std::string StepSizeSchedule::describe() const {
  switch (rule) {
    case Rule::constant: return fmt::format("{}", alpha0);
    case Rule::inverse: return fmt::format("{}·{}/({} + s)", alpha0, gamma, gamma);
    case Rule::inverse_sqrt: return fmt::format("{}·√({}/({} + s))", alpha0, gamma, gamma);
  }
  return "?";
}

}  // namespace hyperad::bilevel
