#pragma once
// Shared pieces of the hyperparameter-optimization problems (hpo_*.cpp): data preparation
// (seeded split, standardization on the training part, tiny versions for config.small),
// the step size of the inner gradient descent, and metrics.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "hyperad/bilevel.hpp"
#include "hyperad/problems/data.hpp"
#include "hyperad/problems/registry.hpp"

namespace hyperad::problems::hpo {


/// Every per-coordinate log-regularization λ lives in this box (Projection::box). The upper
/// end bounds e^λ, hence the curvature of the inner loss, hence a step size that is stable
/// over the whole box; the lower end (e^-8 ≈ 3e-4) is "almost unregularized".
inline constexpr double kLogRegMin = -8.0;
inline constexpr double kLogRegMax = 2.0;

/// Train / validation / test parts; features standardized with the training statistics.
struct Parts {
  Dataset train, validation, test;
};

/// How to shrink a dataset for config.small: keep these feature columns (empty: all) and
/// about `rows` examples (0: all), drawn with the split's seed (stratified when classifying).
struct SmallSpec {
  std::vector<std::int64_t> features{};
  std::int64_t rows = 0;
};

/// The columns `columns` of a dataset (names follow).
Dataset select_features(const Dataset& ds, const std::vector<std::int64_t>& columns);
/// Seeded split of `ds` (shrunk by `small` when `shrink`), then standardization fitted on
/// the training part. Classification datasets are split stratified.
Parts prepare(const Dataset& ds, const SplitFractions& fractions, std::uint64_t seed, bool shrink,
              const SmallSpec& small);

/// The regression targets of the three parts, standardized with the training part's mean
/// and (population) standard deviation `sd`; errors in the target's own units are the
/// standardized ones times sd (squared errors times sd²).
struct StandardTargets {
  Tensor train, validation, test;
  double sd = 1;
};
StandardTargets standardize_targets(const Parts& parts);

/// R² = 1 − Σ(pred − target)² / Σ(target − mean target)², without recording.
double r2(const Tensor& pred, const Tensor& target);

/// Largest eigenvalue of [X 1]ᵀ[X 1] / n (X [n, d]; with the column of ones when `bias`),
/// by power iteration, times a 5 % safety margin: the curvature bound of mean losses in a
/// linear model.
double gram_max_eigenvalue(const Tensor& x, bool bias);
/// Largest eigenvalue of a symmetric matrix by power iteration (+5 %).
double max_eigenvalue(const Tensor& a);


/// Restarted Nesterov acceleration of a problem's map Φ(y) = y − η∇L(y) (O'Donoghue &
/// Candès: the momentum is dropped whenever it points against the step), honouring the
/// options' step budget, tolerance and divergence check, all on ‖Φ(y) − y‖ at the
/// extrapolated point y (what InnerResult::last_step_norm then reports). About 1/√(ημ)
/// steps where iterating Φ needs 1/(ημ): for inner losses whose smallest e^λ is tiny.
bilevel::InnerResult accelerate(const bilevel::Problem& problem, const TensorList& lambda, const TensorList& start,
                                const bilevel::InnerOptions& options);
/// The same problem (Φ, E, what the methods differentiate) with inner solves by `accelerate`.
bilevel::Problem accelerated(const bilevel::Problem& problem);

/// The inner solution at λ to high accuracy (for Instance::evaluate): gradient descent from
/// w0 (by `accelerate`) until the step norm is below 1e-10, at most `max_steps` steps. Returns the weights and
/// the steps taken.
struct Retrained {
  TensorList w;
  int steps = 0;
};
Retrained retrain(const bilevel::Problem& problem, const TensorList& lambda, int max_steps = 20000,
                  double tolerance = 1e-10);

/// A classifier's loss and accuracy on one part of the data.
struct Score {
  double loss = 0, accuracy = 0;
};
/// The Score of weights w on a fixed part (validation or test); called without recording.
using Scorer = std::function<Score(const TensorList& w)>;
/// The classification problems' reporting: inst.validation ("val_acc", the validation
/// accuracy of the current weights) and inst.evaluate (retrain at λ, then test and validation
/// loss and accuracy, and the retraining steps).
/// `retrain_steps` and `retrain_tolerance` (on the step norm) bound the retraining, which
/// large problems cannot afford to run to 1e-10.
void set_classification_metrics(Instance& inst, Scorer validation, Scorer test, int retrain_steps = 20000,
                                double retrain_tolerance = 1e-10);

/// ValueError "problem 'P': option K" + `why` (e.g. "='x' is not one of: ...").
[[noreturn]] void reject_option(const std::string& problem, const std::string& key, const std::string& why);

}  // namespace hyperad::problems::hpo
