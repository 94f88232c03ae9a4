// Shared pieces of the hyperparameter-optimization problems (see hpo_common.hpp).
#include "hpo_common.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

namespace hyperad::problems::hpo {

Dataset select_features(const Dataset& ds, const std::vector<std::int64_t>& columns) {
  Dataset out = ds;
  out.features = index_select(ds.features, 1, columns);
  out.feature_names.clear();
  for (std::int64_t c : columns) out.feature_names.push_back(ds.feature_names[static_cast<std::size_t>(c)]);
  return out;
}

Parts prepare(const Dataset& ds, const SplitFractions& fractions, std::uint64_t seed, bool shrink,
              const SmallSpec& small) {
  const bool stratified = ds.is_classification();
  Dataset data = ds;
  if (shrink) {
    if (!small.features.empty()) data = select_features(data, small.features);
    if (small.rows > 0 && small.rows < data.size()) {
      const double keep = static_cast<double>(small.rows) / static_cast<double>(data.size());
      data = split(data, {keep, 1.0 - keep, 0.0}, seed + 1, stratified).train;
    }
  }
  Splits s = split(data, fractions, seed, stratified);
  // Degenerate data runs to a meaningless "success" (one class: accuracy 1) or to a
  // misleading failure (one row: "the inner iteration diverged"): refuse it here, by cause.
  const std::string what = data.source.empty() ? std::string("the dataset") : "dataset '" + data.source + "'";
  if (s.train.size() < 2 || s.validation.size() < 1 || s.test.size() < 1)
    throw ValueError(fmt::format("{}: {} examples split into {} train / {} validation / {} test; the problem needs at "
                                 "least 2 training, 1 validation and 1 test example",
                                 what, data.size(), s.train.size(), s.validation.size(), s.test.size()));
  if (stratified) {
    const std::vector<std::int64_t> counts = s.train.class_counts();
    const auto present = std::count_if(counts.begin(), counts.end(), [](std::int64_t c) { return c > 0; });
    if (present < 2)
      throw ValueError(fmt::format("{}: the training examples hold {} class{}; classification needs at least 2", what,
                                   present, present == 1 ? "" : "es"));
  }
  // Squares of the values (variances, ‖X‖², the step sizes) must stay finite.
  {
    NoGradGuard off;
    if (!std::isfinite(squared_norm(data.features).item()))
      throw ValueError(fmt::format("{}: the features' squares overflow (values beyond ~1e154): standardizing, the "
                                   "step sizes and the losses would be inf or NaN; rescale the data",
                                   what));
  }
  standardize(s.train, s.validation, s.test);
  if (!list::all_finite({s.train.features, s.validation.features, s.test.features}))
    throw ValueError(fmt::format("{}: standardizing the features gave non-finite values: rescale the data", what));
  return {std::move(s.train), std::move(s.validation), std::move(s.test)};
}

StandardTargets standardize_targets(const Parts& parts) {
  const std::vector<double> ytrain = parts.train.targets.to_vector();
  double mu = 0, var = 0;
  for (double v : ytrain) mu += v / static_cast<double>(ytrain.size());
  for (double v : ytrain) var += (v - mu) * (v - mu) / static_cast<double>(ytrain.size());
  const double sd = std::sqrt(var);
  // Relative to the mean: a constant target leaves a variance of rounding noise, not 0.
  if (!(sd > 1e-12 * std::max(1.0, std::abs(mu))) || !std::isfinite(sd) || !std::isfinite(mu))
    throw ValueError(fmt::format("the training targets {} (mean {}, standard deviation {}): a regression needs a "
                                 "finite, non-constant target (R² is undefined otherwise)",
                                 !std::isfinite(sd) || !std::isfinite(mu) ? "overflow" : "are constant", mu, sd));
  return {(parts.train.targets - mu) / sd, (parts.validation.targets - mu) / sd, (parts.test.targets - mu) / sd, sd};
}

double r2(const Tensor& pred, const Tensor& target) {
  NoGradGuard off;
  const Tensor centered = target - mean(target);
  return 1.0 - squared_norm(pred - target).item() / squared_norm(centered).item();
}

double max_eigenvalue(const Tensor& a) {
  NoGradGuard off;
  const std::int64_t n = a.size(0);
  Generator gen(12345);
  Tensor v = randn({n}, gen);
  v = v / norm(v).item();
  double rayleigh = 0.0;
  // The Rayleigh quotient never exceeds λmax and converges at the rate (λ2/λ1)²; 300
  // iterations plus the margin suffice for the bounds used here (one-off cost).
  for (int k = 0; k < 300; ++k) {
    Tensor av = matmul(a, v);
    rayleigh = dot(v, av).item();
    const double nrm = norm(av).item();
    if (nrm == 0.0) break;
    v = av / nrm;
  }
  return 1.05 * rayleigh;
}

double gram_max_eigenvalue(const Tensor& x, bool bias) {
  NoGradGuard off;
  Tensor xa = bias ? concat({x, ones({x.size(0), 1})}, 1) : x;
  return max_eigenvalue(matmul_t(xa, xa, true, false) / static_cast<double>(x.size(0)));
}

bilevel::InnerResult accelerate(const bilevel::Problem& problem, const TensorList& lambda, const TensorList& start,
                                const bilevel::InnerOptions& options) {
  // Nesterov's accelerated gradient descent written with Φ(y) = y − η∇L(y) only, restarted
  // (O'Donoghue & Candès) whenever the momentum points against the gradient step: the inner
  // losses are ill-conditioned when some e^λ is tiny, and plain Φ iterations would need
  // 1/(ημ) steps where this needs about 1/√(ημ).
  const TensorList lam = list::detach(lambda);
  TensorList w = list::detach(start), y = w;
  bilevel::InnerResult out;
  double first = 0;
  int k = 0;
  while (out.steps < options.max_iterations) {
    TensorList next;
    {
      TapeScope scope;
      NoGradGuard off;
      next = list::detach(problem.phi(y, lam));
    }
    ++out.steps;
    const double residual = list::distance(next, y);
    if (out.steps == 1) first = residual;
    if (!std::isfinite(residual) || residual > options.divergence_factor * std::max(first, 1e-300))
      throw ConvergenceError(fmt::format("accelerated inner solve at λ diverged after {} steps (‖Φ(y) − y‖ = {:.3g}, "
                                         "the first was {:.3g})", out.steps, residual, first));
    NoGradGuard off;
    double agreement = 0.0;  // ⟨y − Φ(y), Φ(y) − w⟩
    for (std::size_t i = 0; i < w.size(); ++i) agreement += dot(flatten(y[i] - next[i]), flatten(next[i] - w[i])).item();
    const double beta = agreement > 0.0 ? 0.0 : static_cast<double>(k) / (k + 3.0);
    k = agreement > 0.0 ? 0 : k + 1;
    for (std::size_t i = 0; i < w.size(); ++i) {
      y[i] = next[i] + beta * (next[i] - w[i]);
      w[i] = next[i];
    }
    out.last_step_norm = residual;
    if (options.tolerance.any() && residual <= options.tolerance.bound(list::norm(next))) {
      out.converged = true;
      break;
    }
  }
  out.state = std::move(w);
  return out;
}

bilevel::Problem accelerated(const bilevel::Problem& problem) {
  return problem.solved_by([problem](const TensorList& lambda, const TensorList& start, const bilevel::InnerOptions& o) {
    return accelerate(problem, lambda, start, o);
  });
}

Retrained retrain(const bilevel::Problem& problem, const TensorList& lambda, int max_steps, double tolerance) {
  const bilevel::InnerResult r = accelerate(problem, lambda, problem.initial_state(),
                                            {.max_iterations = max_steps,
                                             .tolerance = Tolerance::absolute(tolerance),
                                             .divergence_factor = std::numeric_limits<double>::infinity()});
  return {problem.weights(r.state), r.steps};
}

void set_classification_metrics(Instance& inst, Scorer validation, Scorer test, int retrain_steps,
                                double retrain_tolerance) {
  inst.validation_name = "val_acc";
  inst.validation = [validation](const TensorList& w, const TensorList&) {
    if (w.empty()) return std::numeric_limits<double>::quiet_NaN();
    NoGradGuard off;
    return validation(w).accuracy;
  };
  inst.evaluate = [problem = inst.problem, validation, test, retrain_steps, retrain_tolerance](const TensorList& lambda) {
    const Retrained r = retrain(problem, lambda, retrain_steps, retrain_tolerance);
    NoGradGuard off;
    const Score t = test(r.w), v = validation(r.w);
    return Metrics{{"test_loss", t.loss},
                   {"test_accuracy", t.accuracy},
                   {"val_loss", v.loss},
                   {"val_accuracy", v.accuracy},
                   {"retrain_steps", static_cast<double>(r.steps)}};
  };
}

void reject_option(const std::string& problem, const std::string& key, const std::string& why) {
  throw ValueError(fmt::format("problem '{}': option {}{}", problem, key, why));
}

}  // namespace hyperad::problems::hpo
