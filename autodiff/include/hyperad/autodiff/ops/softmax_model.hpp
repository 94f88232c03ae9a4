#pragma once
/// \file ops/softmax_model.hpp
/// Multinomial logistic regression — the softmax cross-entropy of a linear model — with its
/// gradient and Hessian-vector product as ops of their own, as linear_model.hpp does for
/// binary losses. For X [n, d] (dense or CSR), W [d, C] and labels y_i ∈ [0, C):
///
///     L(W)     = s Σ_i ℓ_i,  ℓ_i = logsumexp(z_i) − z_i[y_i],  z_i = x_iᵀW   (s = 1/n or 1)
///     ∇L(W)    = s Xᵀ(P − Y)                       P = softmax rows of XW, Y one-hot
///     ∇²L(W)·V = s Xᵀ(P ⊙ A − P ⊙ rowsum(P ⊙ A))   A = XV
///
/// Equal to cross_entropy(matmul(X, W), y) and its derivatives up to rounding. The ops are
/// tied by their backward rules (d/dW loss = grad, d/dW ⟨grad, U⟩ = hvp(U)), so autodiff
/// through a gradient step W − η∇L records two ops where the composition records a dozen
/// [n, C] intermediates. Every derivative exists to any order in X (dense, or a CSR
/// matrix's values when they require gradients) and W; labels are constants. With grad
/// enabled and W requiring gradients, the loss keeps its gradient and P from its forward
/// pass. Each op reads X twice (X·W, then Xᵀ·coefficients; a Hessian-vector product with
/// no kept P three times, X·W, X·V, Xᵀ·H): for dense X matrix products, for CSR its rows
/// and its cached transpose. For an intercept, append a column of ones to X.
#include <cstdint>
#include <vector>

#include "hyperad/autodiff/csr.hpp"
#include "hyperad/autodiff/ops/loss.hpp"
#include "hyperad/autodiff/tensor.hpp"

namespace hyperad {

/// s Σ_i −log softmax(x_iᵀW)[y_i] reduced by `reduction` (none: the n per-example losses).
/// ShapeError names the shapes that disagree (X's rows, W [d, C], one label per row),
/// ValueError a label outside [0, C).
Tensor softmax_model_loss(const Tensor& X, const Tensor& W, const std::vector<std::int64_t>& labels,
                          Reduction reduction = Reduction::mean);
Tensor softmax_model_loss(const CsrMatrix& X, const Tensor& W, const std::vector<std::int64_t>& labels,
                          Reduction reduction = Reduction::mean);

/// ∇_W of softmax_model_loss, [d, C]. A reduction of none: ValueError.
Tensor softmax_model_grad(const Tensor& X, const Tensor& W, const std::vector<std::int64_t>& labels,
                          Reduction reduction = Reduction::mean);
Tensor softmax_model_grad(const CsrMatrix& X, const Tensor& W, const std::vector<std::int64_t>& labels,
                          Reduction reduction = Reduction::mean);

/// ∇²_W softmax_model_loss · V for V [d, C], [d, C].
Tensor softmax_model_hvp(const Tensor& X, const Tensor& W, const std::vector<std::int64_t>& labels, const Tensor& V,
                         Reduction reduction = Reduction::mean);
Tensor softmax_model_hvp(const CsrMatrix& X, const Tensor& W, const std::vector<std::int64_t>& labels, const Tensor& V,
                         Reduction reduction = Reduction::mean);

}  // namespace hyperad
