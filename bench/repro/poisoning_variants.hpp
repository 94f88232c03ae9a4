#pragma once
// The data-poisoning comparison of JMLR 2023 (Grazzi, Pontil, Salzo): the attacker moves 20 %
// of the training points (each within an ℓ2 ball of radius 5, pixels in [0, 1]) to maximize
// the validation loss of the model trained on them, with each variant of the paper's
// comparison — SID without warm start, the same with decreasing steps, warm-started,
// stocBiO-like, ALSET-like, and the deterministic method (problems::variants()) — tuned by
// random search at one equal budget of sample-gradients, then run with its best settings
// over several seeds; the attack is judged by the test accuracy of the model retrained on
// the poisoned training set (Instance::evaluate: test_acc_poisoned), against the
// sample-gradients spent.
//
// Tuning is `hyperad tune`'s: per variant, `trials` settings drawn by problems::random_search
// (outer α log-uniform in [α₀/10, 10α₀]; t, K, J log-uniform integers in [1, max_count],
// tied as the variant says; SID's η₀ in [0.05, 1], γ in [1, 1000]); each trial runs the
// outer loop (the problem's update rule, momentum) until the budget is spent and is scored by
// f at its final λ, the attacker's objective (validation cross-entropy) of the model
// retrained on the poisoned set (Instance::evaluate's val_loss_poisoned: heavy ball to a step
// of 1e-8, 0.4 s on Fashion-MNIST, where the plain inner iteration of `hyperad tune`'s score
// takes 5 s to 1e-10 at ℓ2 = 0.003). A trial that throws (a diverging iteration, a failed
// check) scores as failed. Each seed
// builds the instance anew with that seed (data split, poisoned subset, λ0) and seeds SID's
// samplers with it.
//
// Shared by bench/repro/repro_poisoning.cpp and the suite's
// tests/problems/test_repro_poisoning.cpp (a small form).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "hyperad/autodiff/errors.hpp"
#include "hyperad/bilevel/outer.hpp"
#include "hyperad/problems/methods.hpp"
#include "hyperad/problems/protocol.hpp"
#include "hyperad/problems/registry.hpp"
#include "hyperad/problems/svg_plot.hpp"
#include "repro/common.hpp"

namespace hyperad::repro {

struct PoisoningComparisonConfig {
  problems::ProblemConfig problem{.dataset = "fashion_mnist"};  ///< its seed is replaced per seed
  std::vector<std::string> variants{"no-warm", "decreasing", "warm", "stocbio", "alset", "deterministic"};
  int trials = 20;                         ///< random-search trials per variant
  int max_count = 100;                     ///< t, K, J drawn in [1, max_count]
  std::int64_t batch = 90;                 ///< SID's minibatch (the paper's)
  std::int64_t budget = 2'000'000;         ///< sample-gradients per run (the paper's)
  int seeds = 5;
  std::uint64_t tune_seed = 0;             ///< the instance tuned on, and the trials' draws
  /// Fractions of the budget after which a run is evaluated (the last must be 1).
  std::vector<double> checkpoints{1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0 / 2, 1.0};
};

struct TrialScore {
  problems::Trial trial;
  double score = NAN;  ///< f at the final λ (higher is better); NaN: failed
  std::int64_t samples = 0;
  std::string failure{};
};

/// One evaluation along a run with the best settings.
struct Checkpoint {
  std::int64_t samples = 0;   ///< sample-gradients spent when evaluated
  double test_accuracy = NAN; ///< test_acc_poisoned: the model retrained on the poisoned set
  double attacker = NAN;      ///< val_loss_poisoned: the attacker's objective, retrained
};

struct VariantComparison {
  std::string variant{};
  std::vector<TrialScore> trials{};
  int best = -1;  ///< index of the best trial (−1: all failed)
  std::vector<std::vector<Checkpoint>> runs{};  ///< per seed, one per checkpoint (empty: the run failed)
  std::vector<std::string> failures{};          ///< per seed: why its run failed (empty: it did not)
};

struct PoisoningComparison {
  std::string summary;
  double initial_objective = NAN;      ///< f at λ0 of the tuning instance (no poisoning)
  std::vector<double> clean_accuracy;  ///< per seed: the model trained on the clean set
  /// per seed: after a random attack of the same size as the first variant's final λ (each
  /// row moved as far in a random direction); NaN when that run failed
  std::vector<double> random_accuracy;
  std::vector<VariantComparison> variants;
};

/// Runs variant `v` with the settings of `trial` on `inst` until `budget` sample-gradients
/// are spent, calling `at(samples, λ)` once the spent samples reach each of `marks`
/// (ascending); returns the samples spent. Throws what the method throws.
inline std::int64_t run_poisoning(const problems::Instance& inst, const problems::Trial& trial, std::int64_t batch,
                                  std::uint64_t seed, std::int64_t budget, const std::vector<std::int64_t>& marks,
                                  const std::function<void(std::int64_t, const TensorList&)>& at) {
  problems::MethodConfig m = trial.method;
  if (m.name == "sid") m.batch_size = batch;
  m.seed = seed;
  const auto method = problems::make_method(m, inst);
  bilevel::OuterOptions o = problems::outer_options(inst);
  o.warm_start = m.warm_start;
  o.step_size = bilevel::StepSizeSchedule::constant(trial.step_size);
  o.budget_samples = budget;
  o.outer_steps = std::numeric_limits<std::int64_t>::max();
  bilevel::OuterOptimizer opt(inst.problem, *method, inst.lambda0, o, inst.projections);
  return step_to_budget(opt, marks, [&](const bilevel::OuterOptimizer& x) { at(x.total_samples(), x.lambda()); });
}

inline PoisoningComparison run_poisoning_comparison(const PoisoningComparisonConfig& c) {
  if (c.checkpoints.empty() || c.checkpoints.back() != 1.0 || !(c.checkpoints.front() > 0) ||
      !std::is_sorted(c.checkpoints.begin(), c.checkpoints.end(), std::less_equal<>()))
    throw std::invalid_argument("run_poisoning_comparison: checkpoints strictly ascending in (0, 1], the last 1");
  if (c.budget < 1 || c.seeds < 1 || c.batch < 1 || c.trials < 1 || c.variants.empty())
    throw std::invalid_argument("run_poisoning_comparison: budget, seeds, batch and trials >= 1, some variants");
  if (c.tune_seed >= 1 && c.tune_seed <= std::uint64_t(c.seeds))
    throw std::invalid_argument("run_poisoning_comparison: the tuning instance's seed is one of the compared seeds 1..seeds");
  auto instance = [&](std::uint64_t seed) {
    problems::ProblemConfig p = c.problem;
    p.seed = seed;
    return problems::make_problem("poisoning", p);
  };
  std::vector<std::int64_t> marks;
  for (double f : c.checkpoints) marks.push_back(static_cast<std::int64_t>(std::ceil(f * double(c.budget))));

  PoisoningComparison out;
  const problems::Instance tuned_on = instance(c.tune_seed);
  out.summary = tuned_on.summary;
  out.initial_objective = metric(tuned_on.evaluate(tuned_on.lambda0), "val_loss_poisoned");
  for (const std::string& name : c.variants) {
    const problems::Variant& v = problems::find_variant(name);
    VariantComparison vc{name};
    for (const problems::Trial& trial :
         problems::random_search(v, {.step_size = tuned_on.defaults.outer_step_size, .max_count = c.max_count},
                                 c.trials, mix_seed(c.tune_seed, 0x7475, 0x6e65))) {
      TrialScore s{trial};
      try {
        TensorList last;
        s.samples = run_poisoning(tuned_on, trial, c.batch, c.tune_seed, c.budget, {c.budget},
                                  [&](std::int64_t, const TensorList& lambda) { last = lambda; });
        s.score = metric(tuned_on.evaluate(last), "val_loss_poisoned");
      } catch (const Error& e) {
        s.failure = e.what();
      }
      vc.trials.push_back(std::move(s));
    }
    for (std::size_t k = 0; k < vc.trials.size(); ++k)
      if (std::isfinite(vc.trials[k].score) && (vc.best < 0 || vc.trials[k].score > vc.trials[vc.best].score))
        vc.best = static_cast<int>(k);
    out.variants.push_back(std::move(vc));
  }
  for (int seed = 0; seed < c.seeds; ++seed) {
    const problems::Instance inst = instance(std::uint64_t(seed) + 1);
    const problems::Metrics at_start = inst.evaluate(inst.lambda0);
    out.clean_accuracy.push_back(metric(at_start, "test_acc_clean"));
    double random = NAN;  // from the first variant's run only (NaN if it failed)
    for (VariantComparison& vc : out.variants) {
      const bool first = &vc == &out.variants.front();
      std::vector<Checkpoint> run;
      std::string failure;
      if (vc.best >= 0) {
        try {
          run_poisoning(inst, vc.trials[vc.best].trial, c.batch, std::uint64_t(seed) + 1, c.budget, marks,
                        [&](std::int64_t samples, const TensorList& lambda) {
                          const problems::Metrics m = inst.evaluate(lambda);
                          run.push_back({samples, metric(m, "test_acc_poisoned"), metric(m, "val_loss_poisoned")});
                          if (first && samples >= c.budget) random = metric(m, "test_acc_random");
                        });
        } catch (const Error& e) {
          run.clear();
          failure = e.what();
        }
      } else {
        failure = "no trial of the random search succeeded";
      }
      vc.runs.push_back(std::move(run));
      vc.failures.push_back(std::move(failure));
    }
    out.random_accuracy.push_back(random);
  }
  return out;
}

/// Rows of bench/results/poisoning_variants_trials.csv: variant, trial, settings, score,
/// samples, failure (its first line).
inline void append_trial_rows(std::vector<std::vector<std::string>>& rows, const PoisoningComparison& r) {
  for (const VariantComparison& v : r.variants)
    for (std::size_t k = 0; k < v.trials.size(); ++k) {
      const TrialScore& t = v.trials[k];
      rows.push_back({v.variant, std::to_string(k), t.trial.describe(), fmt::format("{:.17g}", t.score),
                      std::to_string(t.samples),
                      t.failure.substr(0, t.failure.find('\n'))});
    }
}

/// Rows of bench/results/poisoning_variants.csv: variant, seed, samples, test_acc_poisoned,
/// val_loss_poisoned (one per checkpoint of each seed's run).
inline void append_run_rows(std::vector<std::vector<std::string>>& rows, const PoisoningComparison& r) {
  for (const VariantComparison& v : r.variants)
    for (std::size_t s = 0; s < v.runs.size(); ++s)
      for (const Checkpoint& p : v.runs[s])
        rows.push_back({v.variant, std::to_string(s + 1), std::to_string(p.samples), g4(p.test_accuracy), g4(p.attacker)});
}

/// The median over seeds of the test accuracy at checkpoint k of variant v (NaN if no run).
inline double median_accuracy(const VariantComparison& v, std::size_t k) {
  std::vector<double> a;
  for (const auto& run : v.runs)
    if (k < run.size()) a.push_back(run[k].test_accuracy);
  return a.empty() ? NAN : problems::quartiles(a).median;
}

/// Test accuracy after retraining (median over seeds) against the sample-gradients spent,
/// one line per variant, the clean model's accuracy dashed.
inline problems::LinePlot plot_poisoning(const PoisoningComparison& r, const PoisoningComparisonConfig& c) {
  problems::LinePlot plot({.title = "Poisoning: test accuracy of the retrained model (median over seeds)",
                           .x_label = "sample-gradients (millions)",
                           .y_label = "test accuracy (lower: stronger attack)"});
  for (const VariantComparison& v : r.variants) {
    problems::PlotSeries line{.label = v.variant, .markers = true};
    for (std::size_t k = 0; k < c.checkpoints.size(); ++k) {
      line.x.push_back(c.checkpoints[k] * double(c.budget) / 1e6);
      line.y.push_back(median_accuracy(v, k));
    }
    plot.add(line);
  }
  problems::PlotSeries clean{.label = "clean training set", .dashed = true};
  const double acc = problems::quartiles(r.clean_accuracy).median;
  clean.x = {0.0, double(c.budget) / 1e6};
  clean.y = {acc, acc};
  return std::move(plot.add(clean));
}

}  // namespace hyperad::repro
