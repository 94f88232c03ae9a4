#pragma once
// The synthetic problem of the hypergradient benchmarks: logistic regression with one ℓ2
// strength e^{λ_j} per feature, gradient-descent inner map, validation logistic loss as the
// outer objective. Each benchmark picks its own scales; the data depend only on (n, d, seed,
// scales), so a benchmark's committed results stay reproducible.
#include <cmath>
#include <cstdint>
#include <vector>

#include "hyperad/bilevel/problem.hpp"
#include "hyperad/hyperad.hpp"

namespace hyperad::bench {

/// How the synthetic data are drawn: X = features · N(0, 1), the true weights
/// w* = weights · N(0, 1), labels sign(X w* + noise · N(0, 1)).
struct LogisticScales {
  double features = 1.0, weights = 1.0, noise = 1.0;
};

/// n training and n validation points with d features.
struct Logistic {
  Tensor X, y, Xv, yv;

  Logistic(std::int64_t n, std::int64_t d, std::uint64_t seed, const LogisticScales& s) {
    // The draw order (w*, X, Xv, noise of y, noise of yv) is part of the results: keep it.
    Generator g(seed);
    Tensor w = randn({d}, g) * s.weights;
    X = randn({n, d}, g) * s.features;
    Xv = randn({n, d}, g) * s.features;
    y = sign(matmul(X, w) + s.noise * randn({n}, g));
    yv = sign(matmul(Xv, w) + s.noise * randn({n}, g));
  }

  /// Inner step 1/L with L = ‖X‖²_F/(4n) + 1 ≥ the training loss's smoothness for λ ≤ 0.
  double step() const {
    return 1.0 / (squared_norm(X).item() / (4.0 * static_cast<double>(X.size(0))) + 1.0);
  }

  /// L(w; λ) = mean logistic loss on (X, y) + ½ Σ_j e^{λ_j} w_j², E(w) = the same loss on
  /// (Xv, yv) without the penalty, from w = 0. Written with logistic_loss(matmul(X, w), y),
  /// or (fused) with linear_model_loss, which reads X once per gradient and per
  /// Hessian-vector product. Captures the tensors (shared), not `this`.
  bilevel::Problem problem(bool fused = false) const {
    const auto loss = [fused](const Tensor& A, const Tensor& w, const Tensor& b) {
      return fused ? linear_model_loss(A, w, b, LinearLoss::logistic) : logistic_loss(matmul(A, w), b);
    };
    return bilevel::Problem::gradient_descent(
        [X = X, y = y, loss](const TensorList& w, const TensorList& l) {
          return loss(X, w[0], y) + 0.5 * sum(exp(l[0]) * square(w[0]));
        },
        step(), [Xv = Xv, yv = yv, loss](const TensorList& w, const TensorList&) { return loss(Xv, w[0], yv); },
        {zeros({X.size(1)})});
  }
};

}  // namespace hyperad::bench
