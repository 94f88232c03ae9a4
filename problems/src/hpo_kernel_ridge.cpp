// kernel_ridge: kernel ridge regression with an RBF kernel; λ = (log width, log regularization).
//   K(λ)_ij = exp(−‖x_i − x_j‖² / (2 σ²)),  σ = e^{λ_w},  γ = e^{λ_r}
//   inner  L(α; λ) = ½ αᵀ (K + γ I) α − yᵀα      (minimizer α = (K + γI)⁻¹ y; training)
//   outer  E(α; λ) = ½ mean_v (K_{val,train} α − y_val)²   (validation)
// Both kernels are built in the DSL from λ_w, so ∂E/∂λ_w has the direct term (through
// K_val) and the implicit one (through α). The target is standardized on the training part.
#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "families.hpp"
#include "hpo_common.hpp"
#include "hyperad/autodiff/dense_lu.hpp"

namespace hyperad::problems::detail {

namespace {

using namespace hyperad::bilevel;

const char* const kName = "kernel_ridge";
constexpr double kLogGammaMin = -6.0, kLogGammaMax = 2.0;

// ‖a_i − b_j‖² for rows of a [n, d] and b [m, d] (a constant: no gradient).
Tensor squared_distances(const Tensor& a, const Tensor& b) {
  NoGradGuard off;
  const Tensor aa = sum(square(a), {1}, true), bb = unsqueeze(sum(square(b), {1}), 0);
  return clamp(aa + bb - 2.0 * matmul_t(a, b, false, true), 0.0, std::numeric_limits<double>::infinity());
}

// The RBF kernel from squared distances and λ_w ([1]): exp(−D e^{−2λ_w} / 2).
Tensor rbf(const Tensor& sqdist, const Tensor& log_width) { return exp(sqdist * (-0.5 * exp(-2.0 * log_width))); }

// log of the median heuristic σ = √(median_{i<j} ‖x_i − x_j‖² / 2).
double median_log_width(const Tensor& sqdist) {
  const std::int64_t n = sqdist.size(0);
  const std::vector<double> all = sqdist.to_vector();
  std::vector<double> upper;
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = i + 1; j < n; ++j) upper.push_back(all[static_cast<std::size_t>(i * n + j)]);
  auto mid = upper.begin() + static_cast<std::ptrdiff_t>(upper.size() / 2);
  std::nth_element(upper.begin(), mid, upper.end());
  return 0.5 * std::log(std::max(*mid, 1e-12) / 2.0);
}

Instance make(const ProblemConfig& c) {
  const std::string dataset = c.dataset.empty() ? "diabetes" : c.dataset;
  // small: 40 examples (24 for training), all 10 features.
  const hpo::Parts parts = hpo::prepare(load_builtin(dataset), {0.6, 0.2, 0.2}, c.seed, c.small, {.rows = 40});
  const hpo::StandardTargets targets = hpo::standardize_targets(parts);
  const double sd = targets.sd;
  const Tensor y = targets.train, yv = targets.validation, yt = targets.test;
  const Tensor D = squared_distances(parts.train.features, parts.train.features);
  const Tensor Dv = squared_distances(parts.validation.features, parts.train.features);
  const Tensor Dt = squared_distances(parts.test.features, parts.train.features);
  const std::int64_t n = D.size(0);

  // The width box is centred on the median heuristic (a data-dependent scale).
  const double median = median_log_width(D);
  const double width_lo = median - 3.0, width_hi = median + 1.0;
  const double width0 = option_double(c, kName, "log_width0", median, width_lo, width_hi);
  const double gamma0 = option_double(c, kName, "log_reg0", 0.0, kLogGammaMin, kLogGammaMax);

  // ∇²L = K + γI. K's entries grow with the width, and so does its Perron root (a
  // nonnegative matrix), so λmax(K(σ_max)) + γ_max bounds the curvature over the whole box.
  const double kmax = hpo::max_eigenvalue(rbf(D, tensor({width_hi})));
  const double step = 1.0 / (kmax + std::exp(kLogGammaMax));

  auto inner = [D, y](const TensorList& a, const TensorList& lam) {
    const Tensor& alpha = a[0];
    return 0.5 * dot(alpha, matmul(rbf(D, lam[0]), alpha)) + 0.5 * sum(exp(lam[1]) * squared_norm(alpha)) -
           dot(y, alpha);
  };
  auto outer = [Dv, yv](const TensorList& a, const TensorList& lam) {
    return 0.5 * mean(square(matmul(rbf(Dv, lam[0]), a[0]) - yv));
  };

  Instance inst{.problem = Problem::gradient_descent(inner, step, outer, {zeros({n})})};
  inst.inner_examples = n, inst.outer_examples = yv.size(0);
  inst.summary = fmt::format(
      "{}: {} train / {} validation / {} test examples, {} features, standardized target; w: {} dual "
      "coefficients; λ: log RBF width in [{:.2f}, {:.2f}] (median heuristic {:.2f}) and log regularization in "
      "[{}, {}]; inner step {:.3g}",
      dataset, n, Dv.size(0), Dt.size(0), parts.train.num_features(), n, width_lo, width_hi, median, kLogGammaMin,
      kLogGammaMax, step);
  inst.lambda0 = {tensor({width0}), tensor({gamma0})};
  inst.projections = {Projection::box(width_lo, width_hi), Projection::box(kLogGammaMin, kLogGammaMax)};
  inst.validation_name = "val_mse";
  inst.validation = [Dv, yv, sd](const TensorList& a, const TensorList& lam) {
    if (a.empty()) return std::numeric_limits<double>::quiet_NaN();
    NoGradGuard off;
    return mse_loss(matmul(rbf(Dv, lam[0].detach()), a[0]), yv).item() * sd * sd;
  };
  // Retraining solves (K + γI) α = y exactly (LU): gradient descent is slow when γ ≪ λmax(K).
  inst.evaluate = [D, Dv, Dt, y, yv, yt, sd](const TensorList& lambda) {
    NoGradGuard off;
    const Tensor lw = lambda[0].detach();
    const std::int64_t m = D.size(0);
    const Tensor A = rbf(D, lw) + std::exp(lambda[1].item()) * eye(m);
    const Tensor alpha = tensor(linsolve::DenseLU(A.to_vector(), static_cast<std::size_t>(m)).solve(y.to_vector()), {m});
    const Tensor pt = matmul(rbf(Dt, lw), alpha), pv = matmul(rbf(Dv, lw), alpha);
    return Metrics{{"test_mse", mse_loss(pt, yt).item() * sd * sd},
                   {"test_r2", hpo::r2(pt, yt)},
                   {"val_mse", mse_loss(pv, yv).item() * sd * sd}};
  };
  inst.defaults = {.method = "aid-cg",
                   .inner_steps = 500,
                   .linear_steps = 50,
                   .outer_steps = 30,
                   .outer_step_size = 0.1,
                   .update = OuterUpdate::adam};
  return inst;
}

}  // namespace

ProblemInfo kernel_ridge_problem() {
  return {.name = kName,
          .family = "hyperparameters",
          .summary = "RBF kernel ridge regression, log kernel width and log regularization tuned on validation error",
          .datasets = {"diabetes"},
          .options = {{"log_width0", "median", "initial log RBF width (default: the median heuristic; box ±[-3, +1])"},
                      {"log_reg0", "0", "initial log regularization γ, in [-6, 2]"}},
          .make = make};
}

}  // namespace hyperad::problems::detail
