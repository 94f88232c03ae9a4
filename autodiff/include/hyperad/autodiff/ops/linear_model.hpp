#pragma once
/// \file ops/linear_model.hpp
/// Losses of linear models, L(w) = Σ_i ℓ(x_iᵀw, y_i) (or the mean), with their gradient
/// and Hessian-vector product as ops of their own. Each reads the data matrix X once:
/// `logistic_loss(matmul(X, w), y)` and its derivatives read X twice per gradient and
/// twice per Hessian-vector product, which dominates when X does not fit in cache.
/// Inner problems of bilevel optimization are often of this form, and their
/// hypergradients are hundreds of such gradients and products.
///
/// The three ops are tied by their backward rules, so autodiff composes them and the
/// fused forms are what it uses:
///
///     d/dw linear_model_loss      = linear_model_grad
///     d/dw linear_model_grad · u  = linear_model_hvp(…, u)
///
/// The composition users write is recognized when the product is passed as a temporary:
/// `logistic_loss(matmul(X, w), y)` and `mse_loss(matmul(X, w), y)` run these ops (matmul
/// of a matrix and a vector leaves its result to be computed by the next op; ops/loss.hpp).
/// fused_linear_losses() counts them.
///
/// Every derivative exists, to any order, w.r.t. X, w and y (the remaining ones in plain
/// DSL ops). With grad enabled and w requiring gradients, linear_model_loss computes its
/// gradient in the same pass over X and keeps it for the backward pass. Inside gradient_of
/// it computes its value only if it is read: Φ = w − η∇L reads only the gradient, and the
/// value costs a log1p per example (grad.hpp; linear_loss_values()).
///
/// Each op also takes X as a CSR matrix (csr.hpp): the same values up to rounding, time and
/// memory in the non-zeros, derivatives w.r.t. the matrix's values (when they require
/// gradients) instead of a dense X. A CSR pass reads the non-zeros twice, by rows for X·w
/// and by columns (the cached transpose) for Xᵀ·c; one thread sums each value, so the
/// result is the same on any thread count.
#include <cstdint>

#include "hyperad/autodiff/csr.hpp"
#include "hyperad/autodiff/ops/loss.hpp"
#include "hyperad/autodiff/tensor.hpp"

namespace hyperad {

/// The per-example loss ℓ(z, y) of a linear model with score z = xᵀw.
enum class LinearLoss {
  logistic,  ///< log(1 + exp(−y z)), labels y ∈ {−1, +1}: as logistic_loss
  squared,   ///< (z − y)²: as mse_loss
};

/// Σ_i ℓ(x_iᵀw, y_i) reduced by `reduction` (mean, sum, or none: the n per-example losses),
/// for X [n, d], w [d], y [n] of one dtype. Equal to logistic_loss(matmul(X, w), y) or
/// mse_loss(matmul(X, w), y) up to rounding. ShapeError naming the shapes otherwise. For
/// an intercept, append a column of ones to X (and leave its weight out of any penalty).
Tensor linear_model_loss(const Tensor& X, const Tensor& w, const Tensor& y, LinearLoss loss,
                         Reduction reduction = Reduction::mean);

/// ∇_w of linear_model_loss: s·Xᵀ ℓ'(Xw, y), s = 1/n (mean) or 1 (sum); shape [d]. A
/// reduction of none has no single gradient: ValueError.
Tensor linear_model_grad(const Tensor& X, const Tensor& w, const Tensor& y, LinearLoss loss,
                         Reduction reduction = Reduction::mean);

/// ∇²_w linear_model_loss · v = s·Xᵀ (ℓ''(Xw, y) ⊙ Xv), v [d]; shape [d].
Tensor linear_model_hvp(const Tensor& X, const Tensor& w, const Tensor& y, const Tensor& v, LinearLoss loss,
                        Reduction reduction = Reduction::mean);

/// How many losses of a temporary matmul(X, w) this thread has computed with
/// linear_model_loss so far (logistic_loss and mse_loss of `matmul(X, w)`, see
/// ops/loss.hpp): whether a model written as the composition takes the fused path.
std::uint64_t fused_linear_losses();

/// How many values of linear_model_loss this thread has computed so far. Inside
/// gradient_of a value is computed only when read (grad.hpp): a gradient map that skips it
/// leaves this count unchanged.
std::uint64_t linear_loss_values();

/// The same three ops with X a CSR matrix [n, d].
Tensor linear_model_loss(const CsrMatrix& X, const Tensor& w, const Tensor& y, LinearLoss loss,
                         Reduction reduction = Reduction::mean);
Tensor linear_model_grad(const CsrMatrix& X, const Tensor& w, const Tensor& y, LinearLoss loss,
                         Reduction reduction = Reduction::mean);
Tensor linear_model_hvp(const CsrMatrix& X, const Tensor& w, const Tensor& y, const Tensor& v, LinearLoss loss,
                        Reduction reduction = Reduction::mean);

/// "logistic" or "squared".
const char* linear_loss_name(LinearLoss loss);

}  // namespace hyperad
