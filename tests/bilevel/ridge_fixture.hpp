#pragma once
// Ridge regression with one ℓ2 hyperparameter per feature, parametrized as e^λ:
//   L(w, λ) = ½ mean((Xw − y)²) + ½ Σ_j e^{λ_j} w_j²,   E(w) = ½ mean((X_v w − y_v)²),
// whose hypergradient has the closed form (H = XᵀX/n + diag(e^λ), g = ∇E(w*)):
//   w* = H⁻¹ Xᵀy / n,   ∂f/∂λ_j = −e^{λ_j} w*_j [H⁻¹ g]_j.
#include <cmath>
#include <vector>

#include "hyperad/autodiff/dense_lu.hpp"
#include "hyperad/bilevel/problem.hpp"
#include "hyperad/hyperad.hpp"

namespace hyperad::testing {

struct Ridge {
  Tensor X, y, Xv, yv;
  std::int64_t n, d;

  Ridge(std::int64_t n_, std::int64_t d_, std::uint64_t seed) : n(n_), d(d_) {
    Generator g(seed);
    Tensor w_true = randn({d}, g);
    X = randn({n, d}, g);
    y = matmul(X, w_true) + 0.1 * randn({n}, g);
    Xv = randn({n, d}, g);
    yv = matmul(Xv, w_true) + 0.1 * randn({n}, g);
  }

  Tensor inner_loss(const TensorList& w, const TensorList& lam) const {
    return 0.5 * mean(square(matmul(X, w[0]) - y)) + 0.5 * sum(exp(lam[0]) * square(w[0]));
  }
  Tensor outer(const TensorList& w, const TensorList&) const {
    return 0.5 * mean(square(matmul(Xv, w[0]) - yv));
  }
  // The largest eigenvalue of H bounds a safe step 1/L.
  double smoothness(const Tensor& lam) const {
    double l = 0;
    for (double e : exp(lam).to_vector()) l = std::max(l, e);
    return squared_norm(X).item() / static_cast<double>(n) + l;
  }
  bilevel::Problem problem(const Tensor& lam) const {
    return bilevel::Problem::gradient_descent(
        [this](const TensorList& w, const TensorList& l) { return inner_loss(w, l); },
        1.0 / smoothness(lam), [this](const TensorList& w, const TensorList& l) { return outer(w, l); },
        {zeros({d})});
  }

  // H as a dense row-major matrix.
  std::vector<double> hessian(const Tensor& lam) const {
    std::vector<double> x = X.to_vector(), el = exp(lam).to_vector(), h(static_cast<std::size_t>(d * d), 0.0);
    for (std::int64_t i = 0; i < d; ++i)
      for (std::int64_t j = 0; j < d; ++j) {
        double s = 0;
        for (std::int64_t k = 0; k < n; ++k) s += x[k * d + i] * x[k * d + j];
        h[i * d + j] = s / static_cast<double>(n) + (i == j ? el[i] : 0.0);
      }
    return h;
  }
  std::vector<double> w_star(const Tensor& lam) const {
    std::vector<double> b = (matmul(transpose(X), y) / static_cast<double>(n)).to_vector();
    return linsolve::DenseLU(hessian(lam), static_cast<std::size_t>(d)).solve(b);
  }
  std::vector<double> hypergradient(const Tensor& lam) const {
    std::vector<double> w = w_star(lam);
    Tensor wt = tensor(w, Shape{d});
    std::vector<double> g = (matmul(transpose(Xv), matmul(Xv, wt) - yv) / static_cast<double>(n)).to_vector();
    std::vector<double> v = linsolve::DenseLU(hessian(lam), static_cast<std::size_t>(d)).solve(g);
    std::vector<double> el = exp(lam).to_vector(), out(static_cast<std::size_t>(d));
    for (std::int64_t j = 0; j < d; ++j) out[j] = -el[j] * w[j] * v[j];
    return out;
  }
};

}  // namespace hyperad::testing
