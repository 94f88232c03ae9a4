// multinomial: softmax regression with ℓ2 strengths e^λ per feature (λ ∈ ℝ^d, row j of W
// shares e^{λ_j}) or per class (λ ∈ ℝ^C, column k of W shares e^{λ_k}).
//   inner  L(W, b; λ) = mean_i CE(x_iᵀW + b, y_i) + ½ Σ_jk e^{λ} W_jk²   (training)
//   outer  E(W, b)    = mean_i CE(x_iᵀW + b, y_i)                       (validation)
// The softmax is unchanged when the same constant is added to every logit, so an
// unregularized bias b ∈ ℝ^C would make ∇²L singular (no unique inner solution, no implicit
// function): b has C − 1 entries and the last class's bias is 0.
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

const char* const kName = "multinomial";

// x W + (b, 0).
Tensor logits(const Tensor& x, const TensorList& w) { return matmul(x, w[0]) + pad(w[1], 0, 0, 1); }

hpo::Parts load(const ProblemConfig& c, const std::string& dataset) {
  Dataset ds = load_builtin(dataset);
  if (dataset == "digits") {
    if (c.small) ds = select_classes(ds, {0, 1, 2});
    // small: the central 4×4 pixels of the 8×8 images, 90 images of 0, 1, 2.
    std::vector<std::int64_t> centre;
    for (std::int64_t r = 2; r < 6; ++r)
      for (std::int64_t col = 2; col < 6; ++col) centre.push_back(r * 8 + col);
    return hpo::prepare(ds, {0.6, 0.2, 0.2}, c.seed, c.small, {.features = centre, .rows = 90});
  }
  // wine; small: 6 of the 13 features, 60 examples.
  return hpo::prepare(ds, {0.6, 0.2, 0.2}, c.seed, c.small, {.features = {0, 1, 2, 3, 4, 5}, .rows = 60});
}

Instance make(const ProblemConfig& c) {
  const std::string dataset = c.dataset.empty() ? "digits" : c.dataset;
  const std::string reg = option_string(c, "reg", "per-feature");
  if (reg != "per-feature" && reg != "per-class")
    hpo::reject_option(kName, "reg", fmt::format("='{}' is not one of: per-feature, per-class", reg));
  const bool per_feature = reg == "per-feature";
  const double lambda0 = option_double(c, kName, "lambda0", -3.0, kLogRegMin, kLogRegMax);
  const hpo::Parts parts = load(c, dataset);

  const Tensor X = parts.train.features, Xv = parts.validation.features, Xt = parts.test.features;
  const std::vector<std::int64_t> y = parts.train.labels, yv = parts.validation.labels, yt = parts.test.labels;
  const std::int64_t d = X.size(1), k = parts.train.num_classes;

  // The softmax cross-entropy's Hessian in the logits is ⪯ ½ I, so
  // ∇²L ⪯ ½ [X 1]ᵀ[X 1]/n ⊗ I + e^{max λ} I.
  const double step = 1.0 / (0.5 * hpo::gram_max_eigenvalue(X, true) + std::exp(kLogRegMax));

  auto inner = [X, y, per_feature](const TensorList& w, const TensorList& lam, const Batch& xi) {
    const Tensor strength = per_feature ? unsqueeze(exp(lam[0]), 1) : exp(lam[0]);  // [d, 1] or [C]
    return cross_entropy(logits(rows(X, xi), w), pick(y, xi)) + 0.5 * sum(strength * square(w[0]));
  };
  auto outer = [Xv, yv](const TensorList& w, const TensorList&, const Batch& zeta) {
    return cross_entropy(logits(rows(Xv, zeta), w), pick(yv, zeta));
  };
  StochasticProblem sp =
      StochasticProblem::gradient_descent(inner, step, X.size(0), outer, Xv.size(0), {zeros({d, k}), zeros({k - 1})});

  const std::int64_t m = per_feature ? d : k;
  Instance inst{.problem = sp.full_batch()};
  inst.summary = fmt::format(
      "{}: {} train / {} validation / {} test examples, {} features, {} classes; w: {}×{} weights + {} biases; "
      "λ: {} {} log ℓ2 strengths in [{}, {}]; inner step {:.3g}",
      dataset, X.size(0), Xv.size(0), Xt.size(0), d, k, d, k, k - 1, m, reg, kLogRegMin, kLogRegMax, step);
  inst.lambda0 = {full({m}, lambda0)};
  inst.projections = {Projection::box(kLogRegMin, kLogRegMax)};
  inst.stochastic = sp;
  auto scorer = [](const Tensor& x, const std::vector<std::int64_t>& labels) -> hpo::Scorer {
    return [x, labels](const TensorList& w) {
      const Tensor z = logits(x, w);
      return hpo::Score{cross_entropy(z, labels).item(), multiclass_accuracy(z, labels)};
    };
  };
  hpo::set_classification_metrics(inst, scorer(Xv, yv), scorer(Xt, yt));
  inst.defaults = {.method = "aid-cg",
                   .inner_steps = 200,
                   .linear_steps = 30,
                   .outer_steps = 30,
                   .outer_step_size = 0.2,
                   .update = OuterUpdate::adam,
                   .batch_size = std::min<std::int64_t>(128, X.size(0))};
  return inst;
}

}  // namespace

ProblemInfo multinomial_problem() {
  return {.name = kName,
          .family = "hyperparameters",
          .summary = "multinomial logistic regression, ℓ2 strengths e^λ per feature or per class",
          .datasets = {"digits", "wine"},
          .options = {{"reg", "per-feature", "per-feature (λ has one entry per feature) or per-class (one per class)"},
                      {"lambda0", "-3", "initial log ℓ2 strength, in [-8, 2]"}},
          .make = make};
}

}  // namespace hyperad::problems::detail
