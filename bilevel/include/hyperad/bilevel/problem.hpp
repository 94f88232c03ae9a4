#pragma once
/// \file problem.hpp
/// A bilevel problem:  min_λ f(λ) = E(w(λ), λ)  where  w(λ) = Φ(w(λ), λ).
///
/// The inner state w and the outer variable λ are each a list of tensors (e.g. a model's
/// weights and biases; per-feature regularization and a kernel width). Φ is given directly
/// (any contraction, e.g. an equilibrium layer), or built from an inner loss L and a step
/// size η as the gradient-descent map Φ = w − η∇_w L (whose Jacobian I − η∇²L is
/// symmetric), or as the heavy-ball map on the state (w, w_prev). An outer variable may
/// appear in E only, in Φ only, or in both.
#include <functional>
#include <string>
#include <vector>

#include "hyperad/autodiff/tensor.hpp"

namespace hyperad::bilevel {

/// A list of tensors: an inner state, an outer variable, or a gradient of either.
using Tensors = TensorList;
/// The inner map Φ(w, λ) → next w (same count and shapes as w).
using InnerMap = std::function<Tensors(const Tensors& w, const Tensors& lambda)>;
/// A scalar function of (w, λ): an inner loss L or the outer objective E.
using ScalarFn = std::function<Tensor(const Tensors& w, const Tensors& lambda)>;

/// How Φ was built, which decides what the linear solvers may assume.
enum class MapKind {
  general,        ///< given directly; ∂_wΦ may be non-symmetric
  gradient_step,  ///< w − η∇L: ∂_wΦ symmetric
  heavy_ball,     ///< momentum on (w, w_prev): ∂_wΦ non-symmetric
};

class Problem {
 public:
  /// Φ given directly. Declare `symmetric_jacobian` only if ∂_wΦ is symmetric (enables CG).
  static Problem from_map(InnerMap phi, ScalarFn outer, Tensors w0, bool symmetric_jacobian = false);
  /// Φ(w, λ) = w − η ∇_w L(w, λ) (a contraction when L is μ-strongly convex and
  /// L-smooth in w and 0 < η < 2/L).
  static Problem gradient_descent(ScalarFn inner_loss, double step_size, ScalarFn outer, Tensors w0);
  /// Heavy ball on the state (w, w_prev):
  /// w⁺ = w − η∇_w L(w, λ) + μ (w − w_prev),  w_prev⁺ = w;  E reads the w half.
  static Problem heavy_ball(ScalarFn inner_loss, double step_size, double momentum, ScalarFn outer, Tensors w0);

  /// One application of Φ to a state. Throws ShapeError if Φ returns the wrong number
  /// or shapes of tensors.
  Tensors phi(const Tensors& state, const Tensors& lambda) const;
  /// E at a state (for heavy ball, at its w half).
  Tensor outer(const Tensors& state, const Tensors& lambda) const;
  /// The initial state: w0, or (w0, w0) for heavy ball.
  const Tensors& initial_state() const { return state0_; }
  /// The model weights inside a state (the state itself, or the w half for heavy ball).
  Tensors weights(const Tensors& state) const;

  MapKind kind() const { return kind_; }
  /// True when ∂_wΦ is known to be symmetric (gradient-descent maps, or declared).
  bool symmetric_jacobian() const { return symmetric_; }
  /// η for gradient and heavy-ball maps, 0 otherwise.
  double step_size() const { return step_; }
  std::string describe() const;

 private:
  InnerMap phi_;
  ScalarFn outer_;
  Tensors state0_;
  MapKind kind_ = MapKind::general;
  bool symmetric_ = false;
  double step_ = 0.0;
  std::size_t n_weights_ = 0;
};

// ---- small helpers over lists of tensors (used by every method) -----------------------

/// ‖a − b‖ over all tensors (norms of tensor lists are linsolve::norm).
double distance(const Tensors& a, const Tensors& b);
/// Concatenates every element into one float64 vector, and the inverse.
std::vector<double> flatten_all(const Tensors& xs);
Tensors unflatten_like(const std::vector<double>& v, const Tensors& like);
/// ‖a − ref‖ / ‖ref‖ (2-norms over all entries; ‖a − ref‖ when ref is 0): how far a
/// hypergradient is from a reference one. ShapeError when the sizes differ.
double relative_error(const std::vector<double>& a, const std::vector<double>& ref);
double relative_error(const Tensors& a, const Tensors& ref);

}  // namespace hyperad::bilevel
