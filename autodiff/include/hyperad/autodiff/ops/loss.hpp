#pragma once
/// \file ops/loss.hpp
/// Fused, numerically stable ops of classification and regression.
#include <cstdint>
#include <vector>

#include "hyperad/autodiff/tensor.hpp"

namespace hyperad {

/// How a loss reduces its per-example values.
enum class Reduction { mean, sum, none };

/// exp(x - logsumexp(x)) along `axis`.
Tensor softmax(const Tensor& x, int axis = -1);
/// x - logsumexp(x) along `axis`.
Tensor log_softmax(const Tensor& x, int axis = -1);
/// Cross-entropy of logits [n, C] against integer labels (n of them, each in [0, C)):
/// -log softmax(logits)[i, labels[i]], reduced. Throws ValueError for a label out of range.
Tensor cross_entropy(const Tensor& logits, const std::vector<std::int64_t>& labels,
                     Reduction reduction = Reduction::mean);
/// Binary logistic loss log(1 + exp(-y·z)) of scores z and labels y ∈ {-1, +1} (same
/// shape; y is differentiated too if it requires gradients), reduced.
Tensor logistic_loss(const Tensor& z, const Tensor& y, Reduction reduction = Reduction::mean);
/// (pred - target)², reduced.
Tensor mse_loss(const Tensor& pred, const Tensor& target, Reduction reduction = Reduction::mean);

/// The same losses of a temporary: given `matmul(X, w)` of a matrix X [n, d] (4096 elements
/// or more) and a vector w directly, as in `logistic_loss(matmul(X, w), y)`, they compute
/// linear_model_loss(X, w, y, LinearLoss::logistic or squared, reduction) — equal to the
/// composition up to rounding, with its derivatives — which reads X once per gradient and
/// per Hessian-vector product where the composition reads it two or three times
/// (ops/linear_model.hpp). Anything else (a named z, a product with a bias added, labels
/// of another shape, finite checks on) is the plain loss of z.
Tensor logistic_loss(Tensor&& z, const Tensor& y, Reduction reduction = Reduction::mean);
Tensor mse_loss(Tensor&& pred, const Tensor& target, Reduction reduction = Reduction::mean);

}  // namespace hyperad
