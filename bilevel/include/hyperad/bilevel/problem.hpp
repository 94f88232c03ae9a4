#pragma once
/// \file problem.hpp
/// A bilevel problem:  min_λ f(λ) = E(w(λ), λ)  where  w(λ) = Φ(w(λ), λ).
///
/// The inner state w and the outer variable λ are each a list of tensors (e.g. a model's
/// weights and biases; per-feature regularization and a kernel width). Φ is given directly
/// (any contraction, e.g. an equilibrium layer), or built from an inner loss L and a step
/// size η as the gradient-descent map Φ = w − η∇_w L (whose Jacobian I − η∇²L is
/// symmetric), or as the heavy-ball map on the state (w, w_prev). An outer variable may
/// appear in E only, in Φ only, or in both. The step size and the momentum may themselves
/// be functions of λ (`ScalarParameter`), which ITD then learns.
///
/// The inner problem is solved by iterating Φ unless the problem says otherwise
/// (`solved_by`): solve with heavy ball and differentiate the gradient-descent map, say,
/// or with a solver of your own.
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "hyperad/autodiff/linsolve.hpp"
#include "hyperad/autodiff/tensor_list.hpp"
#include "hyperad/autodiff/tolerance.hpp"

namespace hyperad::bilevel {

/// The inner map Φ(w, λ) → next w (same count and shapes as w).
using InnerMap = std::function<TensorList(const TensorList& w, const TensorList& lambda)>;
/// A scalar function of (w, λ): an inner loss L or the outer objective E.
using ScalarFn = std::function<Tensor(const TensorList& w, const TensorList& lambda)>;

/// How Φ was built, which decides what the linear solvers may assume.
enum class MapKind {
  general,        ///< given directly; ∂_wΦ may be non-symmetric
  gradient_step,  ///< w − η∇L: ∂_wΦ symmetric
  heavy_ball,     ///< momentum on (w, w_prev): ∂_wΦ non-symmetric
};

/// A scalar parameter of an inner map — its step size or momentum: a constant, or a
/// differentiable function of λ (e.g. η = e^{λ_k}), which ITD then differentiates. AID
/// gives such a parameter a zero hypergradient: the fixed point of w − η∇L does not depend
/// on η (∇L(w*) = 0 there), only the path to it does (docs/hypergradients.md).
class ScalarParameter {
 public:
  /// A constant.
  ScalarParameter(double value);  // NOLINT: a plain number is the common case
  /// η(λ): must return a one-element tensor, positive where it is used as a step size.
  ScalarParameter(std::function<Tensor(const TensorList& lambda)> fn);  // NOLINT
  bool is_constant() const { return !fn_; }
  /// The constant's value (NaN for a function of λ).
  double value() const { return value_; }
  /// Its value at λ as a one-element tensor (recorded when fn depends on λ).
  Tensor at(const TensorList& lambda) const;
  /// "0.1" or "a function of λ".
  std::string describe() const;

 private:
  double value_;
  std::function<Tensor(const TensorList&)> fn_;
};

/// Options of an inner solve.
struct InnerOptions {
  /// At most this many applications of the solver's map (t in the formulas).
  int max_iterations = 100;
  /// Stop early when ‖w_{k+1} − w_k‖ ≤ max(atol, rtol · ‖w_{k+1}‖) (norms over all state
  /// tensors). The zero tolerance runs exactly max_iterations steps.
  Tolerance tolerance{};
  /// Divergence: a step norm that is non-finite or exceeds this factor times the first
  /// step norm throws ConvergenceError.
  double divergence_factor = 1e6;
};

/// Outcome of an inner solve.
struct InnerResult {
  TensorList state;           ///< the last iterate w_t (detached)
  int steps = 0;              ///< applications of the map performed
  double last_step_norm = 0;  ///< ‖w_t − w_{t−1}‖
  bool converged = false;     ///< tolerance met (always false for the zero tolerance)
  /// The contraction check: the largest step norm of the last min(10, steps/2) steps over
  /// the largest of the ones before; ≥ 1 means the iteration is not contracting. NaN when
  /// not measured (fewer than 6 steps, steps at rounding level, a user's InnerSolver).
  double step_growth = std::numeric_limits<double>::quiet_NaN();
  int growth_window = 0;      ///< the window of step_growth
};

/// A solver of the inner problem: from `start` (a state of the problem), approximately
/// solves w = Φ(w, λ). Nothing it does is differentiated.
using InnerSolver =
    std::function<InnerResult(const TensorList& lambda, const TensorList& start, const InnerOptions& options)>;

class Problem {
 public:
  /// Φ given directly. Declare ∂_wΦ's symmetry if known: symmetric enables CG.
  static Problem from_map(InnerMap phi, ScalarFn outer, TensorList w0,
                          linsolve::Symmetry symmetry = linsolve::Symmetry::unknown);
  /// Φ(w, λ) = w − η ∇_w L(w, λ) (a contraction when L is μ-strongly convex and
  /// L-smooth in w and 0 < η < 2/L).
  static Problem gradient_descent(ScalarFn inner_loss, ScalarParameter step_size, ScalarFn outer, TensorList w0);
  /// Heavy ball on the state (w, w_prev):
  /// w⁺ = w − η∇_w L(w, λ) + μ (w − w_prev),  w_prev⁺ = w;  E reads the w half.
  static Problem heavy_ball(ScalarFn inner_loss, ScalarParameter step_size, ScalarParameter momentum, ScalarFn outer,
                            TensorList w0);

  /// The same Φ and E, with inner solves done by `solver` instead of iterating Φ.
  Problem solved_by(InnerSolver solver) const;
  /// The same Φ and E, with inner solves done by iterating `other`'s map (e.g. heavy ball
  /// while this problem's Φ is the gradient step): from a start w it iterates other's map
  /// from other.state_of(w) and returns the weights of other's final state, as this
  /// problem's state. The weights of both must have the same shapes (ShapeError).
  Problem solved_by(const Problem& other) const;

  /// One application of Φ to a state. Throws ShapeError if Φ returns the wrong number
  /// or shapes of tensors.
  TensorList phi(const TensorList& state, const TensorList& lambda) const;
  /// E at a state (for heavy ball, at its w half).
  Tensor outer(const TensorList& state, const TensorList& lambda) const;
  /// The initial state: w0, or (w0, w0) for heavy ball.
  const TensorList& initial_state() const { return state0_; }
  /// The model weights inside a state (the state itself, or the w half for heavy ball).
  TensorList weights(const TensorList& state) const;
  /// The state holding weights w: w itself, or (w, w) for heavy ball.
  TensorList state_of(const TensorList& weights) const;
  /// The problem's inner solver, or null when the inner problem is solved by iterating Φ.
  const InnerSolver* inner_solver() const { return solver_ ? &solver_ : nullptr; }

  MapKind kind() const { return kind_; }
  /// What is known of ∂_wΦ's symmetry (symmetric for gradient maps, nonsymmetric for
  /// heavy ball, as declared otherwise).
  linsolve::Symmetry symmetry() const { return symmetry_; }
  bool symmetric_jacobian() const { return symmetry_ == linsolve::Symmetry::symmetric; }
  /// η of gradient and heavy-ball maps (0 for a general map).
  const ScalarParameter& step_size() const { return step_; }
  std::string describe() const;

 private:
  InnerMap phi_;
  ScalarFn outer_;
  TensorList state0_;
  MapKind kind_ = MapKind::general;
  linsolve::Symmetry symmetry_ = linsolve::Symmetry::unknown;
  ScalarParameter step_ = 0.0;
  std::size_t n_weights_ = 0;
  InnerSolver solver_;
};

}  // namespace hyperad::bilevel
