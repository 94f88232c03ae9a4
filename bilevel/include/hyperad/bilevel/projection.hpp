#pragma once
/// \file projection.hpp
/// Euclidean projections onto closed convex sets, P(y) = argmin_{x ∈ C} ‖x − y‖, for
/// constrained outer variables (λ ← P(λ − α h), outer.hpp).
///
/// Every projection is a plain computation on detached data (nothing is recorded, the
/// result never requires gradients), for float32 and float64 (computed in double and
/// rounded back to the input's dtype). All are exact — closed forms or finite algorithms
/// that end at the KKT point — except for floating-point rounding:
///
/// | set                                   | function                 | algorithm                     |
/// |---------------------------------------|--------------------------|-------------------------------|
/// | box [lo, hi]                          | project_box              | clamp                         |
/// | nonnegative orthant                   | project_nonnegative      | max(x, 0)                     |
/// | ℓ2 ball ‖x − c‖ ≤ r                   | project_l2_ball          | radial scaling                |
/// | per-row ℓ∞ / ℓ2 / ℓ1 ball ∩ box       | project_rows             | clamp / breakpoint search (KKT)|
/// | simplex {x ≥ 0, Σx = z}               | project_simplex          | sort, threshold               |
/// | spectral-norm ball ‖W‖₂ ≤ r           | project_spectral_ball    | one-sided Jacobi SVD          |
///
/// Per-row balls with a valid range (poisoning budgets: x_i within ε of the clean row c_i
/// and inside [lo, hi]): the set is the intersection B(c_i, ε) ∩ [lo, hi]. Its projection is
/// NOT the composition clamp(ball(·)) or ball(clamp(·)) in general; project_rows solves the
/// intersection exactly from the KKT conditions instead of alternating projections:
/// - ℓ∞: the intersection is the box [max(c − ε, lo), min(c + ε, hi)] — a clamp.
/// - ℓ2: x(θ) = clamp(c + θ (y − c), lo, hi), θ ∈ [0, 1]; ‖x(θ) − c‖ is increasing and
///   piecewise of the form √(C + θ² S) between the θ at which coordinates reach a bound.
///   Sorting those breakpoints gives the θ with ‖x(θ) − c‖ = ε in closed form.
/// - ℓ1: x_j = c_j + sign(d_j) min(max(|d_j| − μ, 0), room_j), d = y − c; Σ|x_j − c_j| is
///   piecewise linear and decreasing in μ; a sweep over the sorted breakpoints finds μ.
/// The clean row must lie in [lo, hi] (ValueError otherwise: the intersection could be empty).
///
/// The simplex uses the sort-based algorithm (Held–Wolfe–Crowder; Duchi et al. 2008).
/// The spectral-norm ball clips the singular values at r: P(W) = U min(Σ, r) Vᵀ, with the
/// SVD from one-sided (Hestenes) Jacobi rotations of the columns of W (or Wᵀ, whichever
/// has fewer), which are Jacobi's method on WᵀW without forming it — singular values to
/// high relative accuracy. A matrix already inside the ball is returned unchanged.
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "hyperad/autodiff/tensor.hpp"

namespace hyperad::bilevel {

/// Clamps every element to [lo, hi] (lo ≤ hi; either may be infinite).
Tensor project_box(const Tensor& x, double lo, double hi);
/// Elementwise bounds of x's shape (broadcast is not applied: same shapes).
Tensor project_box(const Tensor& x, const Tensor& lo, const Tensor& hi);
/// max(x, 0).
Tensor project_nonnegative(const Tensor& x);
/// Onto {‖x − c‖ ≤ r} over all elements (c undefined: 0; else x's shape).
Tensor project_l2_ball(const Tensor& x, double radius, const Tensor& center = {});

/// Which norm bounds each row.
enum class RowNorm { l1, l2, linf };
/// "l1", "l2", "linf".
const char* row_norm_name(RowNorm n);

/// Per-row budget: row i (x[i, ...], all elements after the first axis) must satisfy
/// ‖x_i − c_i‖ ≤ radius and lo ≤ x_i ≤ hi elementwise.
struct RowBall {
  RowNorm norm = RowNorm::l2;
  double radius = 1.0;
  Tensor center;  ///< the clean data, of x's shape; undefined: 0
  double lo = -std::numeric_limits<double>::infinity();  ///< valid range, e.g. pixels [0, 1]
  double hi = std::numeric_limits<double>::infinity();
};
/// Projects each row of x (rank ≥ 1) onto its ball ∩ [lo, hi] (exact; see the file comment).
Tensor project_rows(const Tensor& x, const RowBall& ball);

/// Onto {x ≥ 0, Σ x = total} over all elements (total > 0).
Tensor project_simplex(const Tensor& x, double total = 1.0);

/// Onto {‖W‖₂ ≤ radius} for a matrix W (rank 2): singular values clipped at the radius.
Tensor project_spectral_ball(const Tensor& w, double radius);
/// Singular values of a matrix (rank 2), descending, by one-sided Jacobi.
std::vector<double> singular_values(const Tensor& w);

/// A projection as a value: a name (logs, state files) and the map. The default one is the
/// identity (an unconstrained variable). Calling it detaches and checks the result's shape.
class Projection {
 public:
  using Fn = std::function<Tensor(const Tensor&)>;
  Projection() = default;
  Projection(std::string name, Fn fn) : name_(std::move(name)), fn_(std::move(fn)) {}

  Tensor operator()(const Tensor& x) const;
  const std::string& name() const { return name_; }
  bool is_identity() const { return !fn_; }

  static Projection identity() { return {}; }
  static Projection box(double lo, double hi);
  static Projection nonnegative();
  static Projection l2_ball(double radius, Tensor center = {});
  static Projection rows(RowBall ball);
  static Projection simplex(double total = 1.0);
  static Projection spectral_ball(double radius);

 private:
  std::string name_ = "none";
  Fn fn_;
};

}  // namespace hyperad::bilevel
