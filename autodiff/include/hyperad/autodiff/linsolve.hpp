#pragma once
/// \file linsolve.hpp
/// Matrix-free linear solvers for A x = b, where x and b are tuples of tensors
/// (`std::vector<Tensor>`, e.g. one block per parameter tensor) and A is a callback.
///
/// They solve the adjoint equations of implicit differentiation: `fixed_point`'s backward
/// solves (I − ∂_wΦᵀ) u = ū with them, and hypergradient methods solve H v = g. Nothing
/// here records on the tape: the vectors are plain values, the callback may run reverse
/// sweeps of its own.
///
/// - `richardson`: fixed-point iteration x ← x + ω (b − A x). For A = I − M and ω = 1 it is
///   x ← b + M x, the Neumann series; converges when the spectral radius of I − ωA is < 1.
/// - `cg`: conjugate gradient. Only for symmetric positive definite A (e.g. a Hessian, or
///   I − ∂_wΦ for a gradient step Φ(w) = w − η∇f(w) with η small enough). On a
///   non-symmetric A it may stop early or return a wrong answer without noticing; it does
///   detect pᵀAp ≤ 0 (an indefinite A) and stops there, not converged.
/// - `gmres`: restarted GMRES(m) (Arnoldi by modified Gram–Schmidt, least squares by Givens
///   rotations) for any non-singular A.
///
/// Stopping rule (all three): ‖b − A x‖ ≤ max(atol, rtol · ‖b‖), norms over the whole tuple.
/// A zero tolerance runs to the iteration cap unless the residual becomes exactly 0; no
/// division by zero happens after exact convergence. The returned x is always the iterate
/// whose residual was reported.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "hyperad/autodiff/tensor.hpp"

namespace hyperad::linsolve {

/// A vector of the solvers: a tuple of tensors (any shapes, float32 or float64).
using Vec = TensorList;
/// The operator x ↦ A x. It must return tensors of x's shapes and dtypes.
using LinearOp = std::function<Vec(const Vec&)>;

// ---- vector helpers (plain computations, never recorded) ----------------------------------
/// Σᵢ ⟨aᵢ, bᵢ⟩ accumulated in double. Throws ShapeError if the tuples do not match.
double dot(const Vec& a, const Vec& b);
/// √dot(a, a).
double norm(const Vec& a);
/// y ← y + alpha · x, in place (y's storage is written: pass a tuple the caller owns).
void axpy(double alpha, const Vec& x, Vec& y);
/// x ← alpha · x, in place.
void scale(Vec& x, double alpha);
/// Copies of the data (no gradient identity).
Vec clone(const Vec& x);
/// Zeros of x's shapes and dtypes.
Vec zeros_like(const Vec& x);
/// True when every element of every tensor is finite.
bool all_finite(const Vec& x);

/// Which solver.
enum class Method { fixed_point, cg, gmres };
/// "fixed_point", "cg", "gmres".
const char* method_name(Method m);

struct Options {
  double rtol = 1e-10;  ///< relative tolerance on ‖b − A x‖ / ‖b‖
  double atol = 0.0;    ///< absolute tolerance on ‖b − A x‖
  int max_iter = 1000;  ///< cap on iterations (each applies A once)
  int restart = 30;     ///< GMRES: Krylov dimension before a restart
  double omega = 1.0;   ///< Richardson step ω
  /// Richardson: stop as diverged when the residual exceeds this factor times the
  /// smallest residual seen (or is not finite).
  double divergence_factor = 1e8;
};

struct Result {
  Vec x;                 ///< the solution estimate
  int iterations = 0;    ///< solver iterations (Richardson/CG steps, GMRES Arnoldi steps)
  int matvecs = 0;       ///< applications of A (iterations plus initial/restart residuals)
  double residual = 0;   ///< ‖b − A x‖ of the returned x (CG: its recursively updated residual)
  double tolerance = 0;  ///< max(atol, rtol · ‖b‖), the target it was compared with
  bool converged = false;
  bool diverged = false;  ///< non-finite or exploding residual (x is then not usable)
  std::string reason;     ///< why it stopped, with the numbers (for messages)
};

/// Fixed-point (Richardson) iteration from x0 (empty: zeros).
Result richardson(const LinearOp& A, const Vec& b, const Vec& x0 = {}, const Options& opts = {});
/// Conjugate gradient from x0 (empty: zeros); A must be symmetric positive definite.
Result cg(const LinearOp& A, const Vec& b, const Vec& x0 = {}, const Options& opts = {});
/// Restarted GMRES(opts.restart) from x0 (empty: zeros). `residual` is recomputed as
/// ‖b − A x‖ at the end of every cycle, so it is the true residual.
Result gmres(const LinearOp& A, const Vec& b, const Vec& x0 = {}, const Options& opts = {});
/// Dispatches to one of the above.
Result solve(Method method, const LinearOp& A, const Vec& b, const Vec& x0 = {}, const Options& opts = {});

}  // namespace hyperad::linsolve
