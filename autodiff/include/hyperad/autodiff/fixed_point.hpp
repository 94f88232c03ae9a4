#pragma once
/// \file fixed_point.hpp
/// `fixed_point`: the solution w* = Φ(w*, params) of an iterated map as ONE tape record,
/// differentiated implicitly (Christianson's two-phase method), so the tape does not grow
/// with the number of iterations.
///
/// Forward: w_{k+1} = Φ(w_k, params) from w0, nothing recorded, until
/// ‖w_{k+1} − w_k‖ ≤ max(atol, rtol · ‖w_{k+1}‖) (norms over the whole state tuple) or
/// max_iterations iterations; only the last iterate is kept. It is returned (detached from the
/// iterations) and recorded as one op whose inputs are w0 and params.
///
/// Backward, given the cotangent ū of w*: `implicit_vjp` (implicit.hpp) — Φ recorded once
/// at (w*, params), the adjoint equation u = ū + ∂_wΦ(w*)ᵀ u solved with the solver, tolerance
/// and cap of `FixedPointOptions::adjoint`, then ∂_paramsΦ(w*)ᵀ u added to the params'
/// gradients. Exact when w* is an exact fixed point; otherwise the error is of the order of
/// the forward residual.
///
/// - w0's gradient is ZERO: a converged fixed point does not depend on where the
///   iteration started (w0 is still an input, so asking for its gradient is allowed).
/// - Only `params` are differentiated: tensors Φ captures by closure are constants.
/// - Second order (a sweep with create_graph, hvp, ...) through fixed_point is NOT
///   supported: its backward throws TapeError, because the adjoint solve is not recorded.
/// - Φ (and whatever it captures) must stay alive until the last backward through the
///   record; w*, params must not be modified in place before it (TapeError otherwise).
/// - Divergence (a non-finite step, or a step norm `divergence_factor` times larger than
///   the smallest one so far) and non-convergence, forward or in the adjoint solve, either
///   throw ConvergenceError with the numbers or, with `on_failure = warn`, print one line to
///   stderr, are recorded in the report and return the last (finite) iterate.
#include <memory>
#include <string>
#include <vector>

#include "hyperad/autodiff/implicit.hpp"
#include "hyperad/autodiff/tensor.hpp"
#include "hyperad/autodiff/tolerance.hpp"

namespace hyperad {

/// What to do when an iteration diverges or misses its tolerance.
enum class OnFailure {
  throw_error,  ///< throw ConvergenceError
  warn,         ///< one line on stderr, recorded in the report; go on with the last iterate
  quiet,        ///< recorded in the report only (e.g. a deliberately fixed iteration count)
};

struct FixedPointOptions {
  /// Forward stop: ‖w_{k+1} − w_k‖ ≤ max(atol, rtol · ‖w_{k+1}‖) (float32 states need
  /// rtol ≳ 1e-6).
  Tolerance tolerance{.rtol = 1e-10, .atol = 1e-12};
  int max_iterations = 1000;  ///< forward iterations at most
  /// Diverging when the step norm exceeds this factor times its smallest value so far.
  double divergence_factor = 1e4;
  OnFailure on_failure = OnFailure::throw_error;
  /// The adjoint solve of the backward pass (solver, tolerance, cap, symmetry of ∂_wΦ).
  /// Its `start` is ignored: see adjoint_start.
  ImplicitOptions adjoint{};
  /// If set, every backward pass starts its adjoint solve from *adjoint_start (when its
  /// shapes match ū's) and leaves its solution there: pass the same pointer to the
  /// fixed_point calls of an outer loop to warm-start each solve from the previous one.
  std::shared_ptr<TensorList> adjoint_start{};
};

/// Diagnostics of one fixed_point call: the forward fields are set when it returns, the
/// adjoint fields by each backward pass through its record (the last one wins).
struct FixedPointReport {
  int forward_iterations = 0;     ///< applications of Φ in the forward pass
  double forward_step = 0.0;      ///< last ‖w_{k+1} − w_k‖
  double forward_tolerance = 0.0;
  bool forward_converged = false;
  bool forward_diverged = false;
  int backward_calls = 0;
  linsolve::Report adjoint;  ///< the last backward pass's adjoint solve
  std::vector<std::string> warnings;  ///< messages of failures under warn / quiet
};
/// A live view of a call's report (it keeps changing while backward passes run).
using FixedPointStats = std::shared_ptr<const FixedPointReport>;

/// The fixed point of Φ(·, params) from w0; see the file comment. `stats`, if given,
/// receives the live report.
TensorList fixed_point(const FixedPointMap& phi, const TensorList& w0, const TensorList& params,
                       const FixedPointOptions& options = {}, FixedPointStats* stats = nullptr);

/// Single-tensor state form.
Tensor fixed_point(const std::function<Tensor(const Tensor& w, const TensorList& params)>& phi, const Tensor& w0,
                   const TensorList& params, const FixedPointOptions& options = {},
                   FixedPointStats* stats = nullptr);

}  // namespace hyperad
