#pragma once
/// \file finite_diff.hpp
/// Checking derivatives against finite differences — the public tool the tests use and
/// users should use on their own models.
///
/// - `check_gradient`: the full Jacobian by central differences against one reverse sweep
///   per output element, for small inputs; for large ones the random-projection check
///   wᵀ(J u) by differences against (wᵀJ) u by one sweep (PyTorch's "fast gradcheck").
/// - `check_second_order`: the same check applied to the gradient map
///   x ↦ ∇ₓ⟨w, f(x)⟩ recorded with create_graph, i.e. the Hessian of a random projection of
///   f by reverse-over-reverse against differences of first-order gradients.
/// - `check_hvp`: hvp(f, x, v) against (∇f(x + εv) − ∇f(x − εv)) / 2ε.
///
/// Central differences have error O(ε²) from truncation plus O(δ/ε) from rounding, δ the
/// unit roundoff; the default ε = 1e-6 in float64 gives about 1e-9 relative accuracy
/// for smooth functions of moderate curvature, so the default tolerance is 1e-6.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "hyperad/autodiff/tensor.hpp"

namespace hyperad {

/// A function of several tensors returning one tensor.
using TensorFn = std::function<Tensor(const TensorList&)>;

/// Options of the checks.
struct CheckOptions {
  double eps = 1e-6;   ///< finite-difference step
  double rtol = 1e-6;  ///< relative tolerance
  double atol = 1e-8;  ///< absolute tolerance: |ad − fd| ≤ atol + rtol·max(|ad|, |fd|)
  /// Inputs with at most this many elements (and outputs with at most this many) get the
  /// full Jacobian; larger ones the random-projection check.
  std::int64_t max_full_elements = 64;
  int probes = 3;             ///< random projections per check
  std::uint64_t seed = 1234;  ///< seed of the random directions
  /// Which inputs to differentiate (empty: all); the others are held constant.
  std::vector<bool> wrt;
};

/// Outcome of a check: `ok`, the worst errors, and a message naming the input and entry.
struct CheckReport {
  bool ok = true;
  double max_abs_error = 0.0;
  double max_rel_error = 0.0;
  std::string message;  ///< empty when ok
};

/// Jacobian of fn with respect to inputs[k] by central differences:
/// [fn(x).numel(), inputs[k].numel()], float64.
Tensor jacobian_fd(const TensorFn& fn, const TensorList& inputs, std::size_t k, double eps = 1e-6);
/// The same Jacobian by reverse mode (one sweep per output element).
Tensor jacobian(const TensorFn& fn, const TensorList& inputs, std::size_t k);

/// First-order check of fn at inputs (full Jacobian or random projections, by size).
CheckReport check_gradient(const TensorFn& fn, const TensorList& inputs, const CheckOptions& opts = {});
/// Second-order check of fn: the gradient of a random projection ⟨w, fn⟩, recorded with
/// create_graph, checked as a function of the inputs.
CheckReport check_second_order(const TensorFn& fn, const TensorList& inputs,
                               const CheckOptions& opts = {});
/// hvp(f, x, v) against central differences of the gradient along v (f scalar-valued).
CheckReport check_hvp(const TensorFn& f, const TensorList& inputs, const TensorList& directions,
                      const CheckOptions& opts = {});

}  // namespace hyperad
