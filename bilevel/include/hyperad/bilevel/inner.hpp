#pragma once
/// \file inner.hpp
/// Solving the inner problem w = Φ(w, λ) by fixed-point iteration, and estimating the
/// contraction constant of Φ.
#include "hyperad/bilevel/problem.hpp"

namespace hyperad::bilevel {

/// Options of the inner solve.
struct InnerOptions {
  /// At most this many applications of Φ (t in the formulas).
  int max_steps = 100;
  /// Stop early when ‖w_{k+1} − w_k‖ ≤ tolerance (Euclidean norm over all state tensors,
  /// absolute). 0 runs exactly max_steps steps.
  double tolerance = 0.0;
  /// Divergence: a step norm that is non-finite or exceeds this factor times the first
  /// step norm throws ConvergenceError.
  double divergence_factor = 1e6;
};

/// Outcome of an inner solve.
struct InnerResult {
  Tensors state;              ///< the last iterate w_t (detached)
  int steps = 0;              ///< applications of Φ performed
  double last_step_norm = 0;  ///< ‖w_t − w_{t−1}‖
  bool converged = false;     ///< tolerance met (always false when tolerance is 0)
};

/// Iterates w ← Φ(w, λ) from `start` without recording (each step in its own tape scope,
/// so memory does not grow with the number of steps). λ is used as a constant.
InnerResult solve_inner(const Problem& problem, const Tensors& lambda, const Tensors& start,
                        const InnerOptions& options = {});

/// Estimate of the spectral radius of ∂_wΦ(w, λ) (the contraction constant q when
/// ∂_wΦ is symmetric; a lower bound on ‖∂_wΦ‖₂ otherwise) by power iteration on the
/// pullback v ↦ ∂_wΦᵀ v. Deterministic for a given seed.
double estimate_contraction(const Problem& problem, const Tensors& state, const Tensors& lambda, int iterations = 50,
                            std::uint64_t seed = 17);

}  // namespace hyperad::bilevel
