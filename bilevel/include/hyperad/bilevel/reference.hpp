#pragma once
/// \file reference.hpp
/// Reference hypergradients for validation and benchmarks:
/// - `exact_hypergradient`: the inner problem solved by its iteration, then corrected by
///   Newton's method to rounding level (the iteration's stop on a step norm leaves an error
///   of step/(1 − q), 1e-10 for q = 0.999), then `implicit_vjp` with the dense LU solver
///   (small problems). Diagnostics::inner_error estimates ‖w − w*‖;
/// - `finite_difference_hypergradient`: central differences of f(λ) = E(w(λ), λ), each
///   evaluation a full inner solve (4·dim λ solves: steps h and 2h, whose disagreement
///   is the error estimate it reports).
#include "hyperad/bilevel/hypergradient.hpp"
#include "hyperad/bilevel/inner.hpp"

namespace hyperad::bilevel {

struct ExactOptions {
  /// The inner solve: run until the step norm is below the tolerance (ConvergenceError
  /// if the cap is reached first).
  InnerOptions inner{.max_iterations = 200000, .tolerance = Tolerance::absolute(1e-13), .divergence_factor = 1e6};
  /// Refuse problems whose inner state has more elements than this (O(n³) work).
  std::int64_t max_state_elements = 4000;
};

/// The exact hypergradient (to rounding, up to the conditioning of I − ∂_wΦ), with the LU
/// solve's report in Diagnostics::linear. ConvergenceError when I − ∂_wΦᵀ is singular.
Hypergradient exact_hypergradient(const Problem& problem, const TensorList& lambda, const ExactOptions& options = {});

struct FiniteDifferenceOptions {
  /// Step for coordinate i: h = step · max(1, |λ_i|). Central differences have error
  /// O(h²) plus O(δ/h), δ the error of each f(λ ± h) — not the inner tolerance: the solve
  /// stops on a step norm τ, which leaves ‖w − w*‖ ≈ τ/(1 − q). With τ = 1e-12 and h = 1e-5,
  /// expect ~1e-10 from h² and ~1e-7/(1 − q) (times ‖∇_wE‖) from δ: about 1e-6 relative on
  /// well-conditioned problems, worse as q → 1. Use exact_hypergradient when the state is small.
  /// Each coordinate is also differenced with step 2h. Diagnostics::error_estimate adds,
  /// per coordinate, |d_h − d_2h|/3 (the 2-point formula's O(h²) term and rounding noise)
  /// and the inner solves' share (e₊ + e₋)/(2h), e = ‖∇_wE‖·s·q/(1 − q) for a solve that
  /// stopped on step s, q from contraction_estimate (common to h and 2h, so their
  /// disagreement alone would not show it); the norm over coordinates is reported.
  double step = 1e-5;
  /// Return the 4-point Richardson combination (4d_h − d_2h)/3 (error O(h⁴) plus noise)
  /// instead of the 2-point d_h; the estimate is then an upper bound. Same cost.
  bool richardson = false;
  /// Each evaluation of f solves the inner problem with these options (to a tolerance).
  InnerOptions inner{.max_iterations = 200000, .tolerance = Tolerance::absolute(1e-12), .divergence_factor = 1e6};
  /// Spread the coordinates over OpenMP threads.
  bool parallel = true;
};

/// ∇f(λ) by central differences of f(λ) = E(w(λ), λ).
Hypergradient finite_difference_hypergradient(const Problem& problem, const TensorList& lambda,
                                              const FiniteDifferenceOptions& options = {});

/// The outer objective f(λ) = E(w(λ), λ) with the inner problem solved by `inner` from
/// `start` (the problem's w0 when empty).
double outer_value(const Problem& problem, const TensorList& lambda, const InnerOptions& inner, const TensorList& start = {});

}  // namespace hyperad::bilevel
