#pragma once
/// \file inner.hpp
/// Solving the inner problem w = Φ(w, λ), and estimating the contraction constant of Φ.
#include <cstdint>

#include "hyperad/bilevel/problem.hpp"

namespace hyperad::bilevel {

/// Solves the inner problem from `start` without recording: with the problem's own inner
/// solver when it has one (`Problem::solved_by`), else by iterating w ← Φ(w, λ), each step
/// in its own tape scope (memory does not grow with the number of steps). λ is used as a
/// constant. Throws ConvergenceError when the step norm is non-finite or grows past
/// divergence_factor times the first one.
InnerResult solve_inner(const Problem& problem, const TensorList& lambda, const TensorList& start,
                        const InnerOptions& options = {});

/// Estimate of the spectral radius of ∂_wΦ(w, λ) (the contraction constant q when
/// ∂_wΦ is symmetric; a lower bound on ‖∂_wΦ‖₂ otherwise) by power iteration on the
/// pullback v ↦ ∂_wΦᵀ v. Deterministic for a given seed.
double estimate_contraction(const Problem& problem, const TensorList& state, const TensorList& lambda, int iterations = 50,
                            std::uint64_t seed = 17);

/// estimate_contraction's value with what the power iteration knows of its own accuracy.
/// Power iteration approaches from below, slowly when q is near the next eigenvalue: a
/// q that still moves is an underestimate, and 1/(1 − q) (the steps a solve needs) more so.
struct ContractionEstimate {
  double q = 0;          ///< the last value ‖∂_wΦᵀu‖ with ‖u‖ = 1
  double change = 0;     ///< |q_k − q_{k−m}| / q_k over the last m = max(1, k/10) iterations
  int iterations = 0;
  /// The last iterations moved q by at most 1e-4 relative (else: raise `iterations`).
  bool settled() const { return change <= 1e-4; }
};
ContractionEstimate contraction_estimate(const Problem& problem, const TensorList& state, const TensorList& lambda,
                                         int iterations = 50, std::uint64_t seed = 17);

}  // namespace hyperad::bilevel
