// ridge: least squares with one ℓ2 strength e^{λ_j} per feature, on a standardized target.
//   inner  L(w, b; λ) = ½ mean_i (x_iᵀw + b − y_i)² + ½ Σ_j e^{λ_j} w_j²   (training)
//   outer  E(w, b)    = ½ mean_i (x_iᵀw + b − y_i)²                        (validation)
// The target is standardized with the training mean and deviation, so e^λ is on the scale of
// the (standardized) features; evaluate reports the test error in the target's own units.
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "families.hpp"
#include "hpo_common.hpp"

namespace hyperad::problems::detail {

namespace {

using namespace hyperad::bilevel;
using hpo::kLogRegMax;
using hpo::kLogRegMin;

const char* const kName = "ridge";

Instance make(const ProblemConfig& c) {
  const std::string dataset = c.dataset.empty() ? "diabetes" : c.dataset;
  const double lambda0 = option_double(c, kName, "lambda0", 0.0, kLogRegMin, kLogRegMax);
  // small: 6 of the 10 features, 60 examples.
  const hpo::Parts parts = hpo::prepare(load_builtin(dataset), {0.6, 0.2, 0.2}, c.seed, c.small,
                                        {.features = {0, 1, 2, 3, 4, 5}, .rows = 60});

  const hpo::StandardTargets targets = hpo::standardize_targets(parts);
  const double sd = targets.sd;
  const Tensor X = parts.train.features, y = targets.train;
  const Tensor Xv = parts.validation.features, yv = targets.validation;
  const Tensor Xt = parts.test.features, yt = targets.test;
  const std::int64_t d = X.size(1);

  // ∇²L = [X 1]ᵀ[X 1]/n + diag(e^λ, 0): η = 1/(its bound at the top of the box).
  const double step = 1.0 / (hpo::gram_max_eigenvalue(X, true) + std::exp(kLogRegMax));
  auto inner = [X, y](const TensorList& w, const TensorList& lam) {
    return 0.5 * mean(square(matmul(X, w[0]) + w[1] - y)) + 0.5 * sum(exp(lam[0]) * square(w[0]));
  };
  auto outer = [Xv, yv](const TensorList& w, const TensorList&) { return 0.5 * mean(square(matmul(Xv, w[0]) + w[1] - yv)); };

  Instance inst{.problem = Problem::gradient_descent(inner, step, outer, {zeros({d}), zeros({1})})};
  inst.summary = fmt::format(
      "{}: {} train / {} validation / {} test examples, {} features, standardized target; w: {} weights + bias; "
      "λ: {} per-feature log ℓ2 strengths in [{}, {}]; inner step {:.3g}",
      dataset, X.size(0), Xv.size(0), Xt.size(0), d, d, d, kLogRegMin, kLogRegMax, step);
  inst.lambda0 = {full({d}, lambda0)};
  inst.inner_examples = X.size(0), inst.outer_examples = Xv.size(0);
  inst.projections = {Projection::box(kLogRegMin, kLogRegMax)};
  inst.validation_name = "val_r2";
  inst.validation = [Xv, yv](const TensorList& w, const TensorList&) {
    if (w.empty()) return std::numeric_limits<double>::quiet_NaN();
    NoGradGuard off;
    return hpo::r2(matmul(Xv, w[0]) + w[1], yv);
  };
  inst.evaluate = [problem = inst.problem, Xv, yv, Xt, yt, sd](const TensorList& lambda) {
    const hpo::Retrained r = hpo::retrain(problem, lambda);
    NoGradGuard off;
    const Tensor pt = matmul(Xt, r.w[0]) + r.w[1], pv = matmul(Xv, r.w[0]) + r.w[1];
    return Metrics{{"test_mse", mse_loss(pt, yt).item() * sd * sd},
                   {"test_r2", hpo::r2(pt, yt)},
                   {"val_mse", mse_loss(pv, yv).item() * sd * sd},
                   {"val_r2", hpo::r2(pv, yv)},
                   {"retrain_steps", static_cast<double>(r.steps)}};
  };
  inst.defaults = {.method = "aid-cg",
                   .inner_steps = 200,
                   .linear_steps = 20,
                   .outer_steps = 50,
                   .outer_step_size = 0.2,
                   .update = OuterUpdate::adam};
  return inst;
}

}  // namespace

ProblemInfo ridge_problem() {
  return {.name = kName,
          .family = "hyperparameters",
          .summary = "ridge regression, one ℓ2 strength e^λ per feature, tuned on validation error",
          .datasets = {"diabetes"},
          .options = {{"lambda0", "0", "initial log ℓ2 strength of every feature, in [-8, 2]"}},
          .make = make};
}

}  // namespace hyperad::problems::detail
