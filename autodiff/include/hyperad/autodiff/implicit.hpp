#pragma once
/// \file implicit.hpp
/// Implicit differentiation of a fixed point. When w = Φ(w, p) and Φ(·, p) is a contraction
/// near w, the derivative of a function g(w(p), p) is
///
///     ∇_p g = ḡ_p + ∂_pΦ(w, p)ᵀ v,   where   (I − ∂_wΦ(w, p)ᵀ) v = ḡ_w,
///
/// given the partial cotangents ḡ_w = ∂g/∂w and ḡ_p = ∂g/∂p. `implicit_vjp` computes it:
/// it records Φ once at (w, p), solves the adjoint system with the chosen linear solver —
/// each iteration one reverse sweep through w alone, none of p's work — and then pulls the
/// solution back through w and p together once, which gives ∂_pΦᵀv and, from ∂_wΦᵀv, the
/// true residual of the solve.
///
/// It is the one place that solves the adjoint system: the backward pass of `fixed_point`
/// is this function, and a bilevel method's implicit hypergradient (AID) is "solve the inner
/// problem, then this" with g the outer objective. At an inexact w (a truncated inner
/// solve) the result is the implicit formula evaluated there, not the derivative of the
/// truncated solve.
#include <functional>

#include "hyperad/autodiff/linsolve.hpp"
#include "hyperad/autodiff/tensor_list.hpp"

namespace hyperad {

/// The map Φ(w, params) → w', returning tensors of w's shapes and dtypes.
using FixedPointMap = std::function<TensorList(const TensorList& w, const TensorList& params)>;

struct ImplicitOptions {
  /// Solver of (I − ∂_wΦᵀ) v = ḡ_w: richardson (the default, any contraction), neumann,
  /// gmres, bicgstab, normal_cg (any), cg (∂_wΦ symmetric only), dense_lu (small w) or one
  /// of your own.
  linsolve::Solver solver = linsolve::richardson();
  /// Its tolerance, iteration cap, ridge, ...; `verify_residual` is not needed (the final
  /// pullback gives the residual) and is ignored.
  linsolve::Options linear{};
  /// v's initial guess (empty: zeros), e.g. the previous solution in an outer loop.
  TensorList start{};
  /// What is known of ∂_wΦ's symmetry: symmetric for a gradient step w − η∇L, nonsymmetric
  /// for a momentum map, unknown otherwise (see Options::probe_symmetry).
  linsolve::Symmetry symmetry = linsolve::Symmetry::unknown;
};

struct ImplicitResult {
  TensorList grad;  ///< ḡ_p + ∂_pΦᵀ v, one tensor per parameter
  TensorList v;     ///< the adjoint solution
  /// The solve's report; its residual is ‖(I − ∂_wΦᵀ)v − ḡ_w‖ at the returned v, recomputed
  /// from the final pullback.
  linsolve::Report report;
};

/// ḡ_p + ∂_pΦ(w, p)ᵀ v with (I − ∂_wΦ(w, p)ᵀ) v = ḡ_w; see the file comment. `params_cotangent`
/// may be empty (zeros). Nothing is left on the tape. Throws ValueError / ShapeError for
/// lists that do not match (the cotangent against w, Φ's value against w, the start
/// against w) and whatever the solver refuses (CG on a map declared non-symmetric);
/// a failed solve is not thrown: it is in the report, with the solution reached.
ImplicitResult implicit_vjp(const FixedPointMap& phi, const TensorList& w, const TensorList& params,
                            const TensorList& w_cotangent, const TensorList& params_cotangent = {},
                            const ImplicitOptions& options = {});

}  // namespace hyperad
