// logreg: binary logistic regression with one ℓ2 strength e^{λ_j} per feature.
//   inner  L(w, b; λ) = mean_i log(1 + e^{−y_i (x_iᵀw + b)}) + ½ Σ_j e^{λ_j} w_j²   (training)
//   outer  E(w, b)    = mean_i log(1 + e^{−y_i (x_iᵀw + b)})                        (validation)
// The bias is not regularized. λ ∈ [kLogRegMin, kLogRegMax]^d.
#include <cmath>

#include <fmt/format.h>

#include "families.hpp"
#include "hpo_common.hpp"
#include "metrics.hpp"

namespace hyperad::problems::detail {

namespace {

using namespace hyperad::bilevel;
using hpo::kLogRegMax;
using hpo::kLogRegMin;

const char* const kName = "logreg";

// n examples, d standard normal features, labels from a sparse true weight vector (a
// quarter of the features matter) with a fraction `noise` of labels flipped.
Dataset synthetic_dataset(std::int64_t n, std::int64_t d, double noise, std::uint64_t seed) {
  Generator gen(seed * 7919 + 11);
  std::vector<double> w(static_cast<std::size_t>(d), 0.0);
  const std::int64_t relevant = std::max<std::int64_t>(1, d / 4);
  for (std::int64_t j = 0; j < relevant; ++j) w[static_cast<std::size_t>(j)] = (gen.uniform() < 0.5 ? -1 : 1) * (1 + gen.uniform());
  Dataset ds;
  ds.features = randn({n, d}, gen);
  const std::vector<double> x = ds.features.to_vector();
  std::vector<double> targets;
  for (std::int64_t i = 0; i < n; ++i) {
    double z = 0;
    for (std::int64_t j = 0; j < d; ++j) z += x[static_cast<std::size_t>(i * d + j)] * w[static_cast<std::size_t>(j)];
    bool positive = z > 0;
    if (gen.uniform() < noise) positive = !positive;
    ds.labels.push_back(positive ? 1 : 0);
    targets.push_back(positive ? 1.0 : 0.0);
  }
  ds.targets = tensor(targets, {n});
  for (std::int64_t j = 0; j < d; ++j) ds.feature_names.push_back(fmt::format("x{}", j));
  ds.target_name = "label";
  ds.class_names = {"negative", "positive"};
  ds.num_classes = 2;
  ds.source = "synthetic";
  ds.validate();
  return ds;
}

hpo::Parts load(const ProblemConfig& c, const std::string& dataset) {
  const bool synthetic = dataset == "synthetic";
  for (const char* key : {"n", "d", "noise"})
    if (!synthetic && c.options.count(key))
      hpo::reject_option(kName, key, fmt::format(" applies to dataset synthetic only, not {}", dataset));
  if (synthetic) {
    const std::int64_t n = option_int(c, kName, "n", c.small ? 80 : 600, 20, 10'000'000);
    const std::int64_t d = option_int(c, kName, "d", c.small ? 8 : 40, 1, 100'000);
    const double noise = option_double(c, kName, "noise", 0.1, 0.0, 0.5);
    return hpo::prepare(synthetic_dataset(n, d, noise, c.seed), {0.5, 0.25, 0.25}, c.seed, false, {});
  }
  // small: 10 of the 30 features (the "mean_*" ones), 100 examples.
  return hpo::prepare(load_builtin(dataset), {0.6, 0.2, 0.2}, c.seed, c.small,
                      {.features = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, .rows = 100});
}

Instance make(const ProblemConfig& c) {
  const std::string dataset = c.dataset.empty() ? "breast_cancer" : c.dataset;
  const double lambda0 = option_double(c, kName, "lambda0", -2.0, kLogRegMin, kLogRegMax);
  const hpo::Parts parts = load(c, dataset);

  const Tensor X = parts.train.features, y = binary_signs(parts.train);
  const Tensor Xv = parts.validation.features, yv = binary_signs(parts.validation);
  const Tensor Xt = parts.test.features, yt = binary_signs(parts.test);
  const std::int64_t d = X.size(1);

  // ∇²L ⪯ ¼ [X 1]ᵀ[X 1]/n + e^{max λ} I, so η = 1/that is stable for every λ in the box.
  const double step = 1.0 / (0.25 * hpo::gram_max_eigenvalue(X, true) + std::exp(kLogRegMax));

  auto inner = [X, y](const TensorList& w, const TensorList& lam, const Batch& xi) {
    return logistic_loss(matmul(rows(X, xi), w[0]) + w[1], rows(y, xi)) + 0.5 * sum(exp(lam[0]) * square(w[0]));
  };
  auto outer = [Xv, yv](const TensorList& w, const TensorList&, const Batch& zeta) {
    return logistic_loss(matmul(rows(Xv, zeta), w[0]) + w[1], rows(yv, zeta));
  };
  StochasticProblem sp =
      StochasticProblem::gradient_descent(inner, step, X.size(0), outer, Xv.size(0), {zeros({d}), zeros({1})});

  Instance inst{.problem = sp.full_batch()};
  inst.summary = fmt::format(
      "{}: {} train / {} validation / {} test examples, {} features; w: {} weights + bias; "
      "λ: {} per-feature log ℓ2 strengths in [{}, {}]; inner step {:.3g}",
      dataset, X.size(0), Xv.size(0), Xt.size(0), d, d, d, kLogRegMin, kLogRegMax, step);
  inst.lambda0 = {full({d}, lambda0)};
  inst.projections = {Projection::box(kLogRegMin, kLogRegMax)};
  inst.stochastic = sp;
  auto scorer = [](const Tensor& x, const Tensor& signs) -> hpo::Scorer {
    return [x, signs](const TensorList& w) {
      const Tensor z = matmul(x, w[0]) + w[1];
      return hpo::Score{logistic_loss(z, signs).item(), binary_accuracy(z, signs)};
    };
  };
  hpo::set_classification_metrics(inst, scorer(Xv, yv), scorer(Xt, yt));
  inst.defaults = {.method = "aid-cg",
                   .inner_steps = 200,
                   .linear_steps = 30,
                   .outer_steps = 50,
                   .outer_step_size = 0.2,
                   .update = OuterUpdate::adam,
                   .batch_size = std::min<std::int64_t>(64, X.size(0))};
  return inst;
}

}  // namespace

ProblemInfo logreg_problem() {
  return {.name = kName,
          .family = "hyperparameters",
          .summary = "binary logistic regression, one ℓ2 strength e^λ per feature, tuned on validation loss",
          .datasets = {"breast_cancer", "synthetic"},
          .options = {{"lambda0", "-2", "initial log ℓ2 strength of every feature, in [-8, 2]"},
                      {"n", "600", "synthetic: number of examples (split 50/25/25)"},
                      {"d", "40", "synthetic: number of features (a quarter of them relevant)"},
                      {"noise", "0.1", "synthetic: fraction of flipped labels, in [0, 0.5]"}},
          .make = make};
}

}  // namespace hyperad::problems::detail
