#pragma once
// The cheap checks behind Diagnostics::concerns (hypergradient.hpp), shared by the methods.
// The contraction check on an inner iteration's step norms. Iterating a contraction, the
// steps ‖w_{k+1} − w_k‖ shrink like q^k; comparing the largest step of the last window with
// the largest of the window before it tolerates the oscillation of momentum maps, and steps
// at rounding level (stagnation after convergence) are ignored.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "hyperad/bilevel/hypergradient.hpp"

namespace hyperad::bilevel::detail {

class StepTrace {
 public:
  void add(double step) { steps_.push_back(step); }
  int size() const { return static_cast<int>(steps_.size()); }

  /// max(last window) / max(window before), windows of min(10, n/2) steps; NaN with fewer
  /// than 6 steps or when the last steps are at rounding level relative to `scale` (‖w‖).
  double growth(double scale) const {
    const auto n = steps_.size();
    if (n < 6) return std::numeric_limits<double>::quiet_NaN();
    const std::size_t w = std::min<std::size_t>(10, n / 2);
    if (std::any_of(steps_.end() - static_cast<long>(w), steps_.end(), [](double x) { return !std::isfinite(x); }))
      return std::numeric_limits<double>::infinity();
    const double recent = *std::max_element(steps_.end() - static_cast<long>(w), steps_.end());
    const double before = *std::max_element(steps_.end() - static_cast<long>(2 * w), steps_.end() - static_cast<long>(w));
    if (recent <= 1e-6 * std::max(scale, steps_.front())) return std::numeric_limits<double>::quiet_NaN();
    return before > 0 ? recent / before : std::numeric_limits<double>::infinity();
  }
  int window() const { return static_cast<int>(std::min<std::size_t>(10, steps_.size() / 2)); }

 private:
  std::vector<double> steps_;
};

/// Raises Doubt::inner_not_contracting on `d` when `growth` (StepTrace::growth) is ≥ 1.
inline void check_contraction(double growth, int steps, int window, Diagnostics& d) {
  if (!(growth >= 1.0)) return;  // NaN: too few steps, or converged to rounding level
  d.raise(Doubt::inner_not_contracting,
          fmt::format("the inner iteration is not contracting: its largest step norm over the last {} of {} steps is "
                      "{:.3g}× that of the {} before (a contraction's steps shrink); Φ may not be a contraction here "
                      "(step size too large? an inner problem that is not strongly convex?), so w_t is no fixed point",
                      window, steps, growth, window));
}

/// The checks on a linear solve's report (AID): a breakdown (including a "converged" whose true
/// residual drifted, see linsolve::record_true_residual), or a true relative residual above 1
/// (worse than v = 0) or not finite. A solve stopped by its cap is inexact, not untrusted.
inline void check_linear_solve(const linsolve::Report& r, Diagnostics& d) {
  if (r.status == linsolve::Status::breakdown)
    d.raise(Doubt::linear_breakdown, fmt::format("the linear solver ({}) broke down: {}", r.solver, r.reason));
  const double relative = r.rhs_norm > 0 ? r.residual / r.rhs_norm : 0.0;
  if (!(relative <= 1.0))
    d.raise(Doubt::linear_not_solved,
            fmt::format("the linear system is not solved: its true relative residual ‖(I − ∂_wΦᵀ)v − ∇_wE‖/‖∇_wE‖ = "
                        "{:.3g} after {} iterations of {} (v = 0 gives 1); the system may be singular, indefinite "
                        "or not contracting",
                        relative, r.iterations, r.solver));
}

/// Raises Doubt::non_finite when the hypergradient has a non-finite entry.
inline void check_finite(Hypergradient& h) {
  if (!list::all_finite(h.grad))
    h.diagnostics.raise(Doubt::non_finite, "the hypergradient has non-finite entries (an iteration or its reverse sweep overflowed)");
}

}  // namespace hyperad::bilevel::detail
