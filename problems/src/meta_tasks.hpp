#pragma once
// Shared parts of the meta-learning problems (meta_biased.cpp, meta_hyperrep.cpp) beyond
// the public task sampling (hyperad/problems/meta_tasks.hpp): the options' fallbacks and
// table, the per-task linear heads (softmax or one-vs-rest ridge) with their Lipschitz
// bound, the batched bilevel problem of a task set (an episode), the problem's instance
// (fixed tasks, episodic version, validation and meta-test), and fitting heads on fixed
// features for the meta-test evaluation.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "hyperad/autodiff/tensor.hpp"
#include "hyperad/bilevel/episodic.hpp"
#include "hyperad/bilevel/problem.hpp"
#include "hyperad/problems/data.hpp"
#include "hyperad/problems/meta_tasks.hpp"
#include "hyperad/problems/registry.hpp"

namespace hyperad::problems::meta {

/// The fallbacks shared by the meta problems for `dataset`: Fashion-MNIST's 28×28 images
/// pooled to 7×7; with config.small, 2-way 2-shot tasks with 3 queries per class, 2 fixed
/// tasks, 20 meta-test and 4 validation tasks, on 16 features (4×4 images).
MetaOptions meta_base_options(const ProblemConfig& config, const std::string& dataset);
/// The OptionInfo entries of MetaOptions, with `base` as the defaults shown.
std::vector<OptionInfo> meta_option_infos(const MetaOptions& base, const std::string& default_meta_test);

/// x ↦ [x, 1] along the last axis (the heads' intercept).
Tensor with_intercept(const Tensor& z);

/// Σ over tasks of the mean head loss of task i: softmax cross-entropy of Z_i W_iᵀ, or
/// ½‖Z_i W_iᵀ − onehot‖² per example. Z [T, n, q], W [T, N, q], labels T·n.
Tensor head_loss(Head head, const Tensor& z, const Tensor& w, const std::vector<std::int64_t>& labels);
/// Fraction of rows whose largest score Z_i W_iᵀ is at the label.
double head_accuracy(const Tensor& z, const Tensor& w, const std::vector<std::int64_t>& labels);
/// The largest mean squared singular value max_i λ_max(Z_iᵀ Z_i)/n over the tasks of Z
/// [T, n, q], by power iteration (an estimate from below; see head_lipschitz).
double max_gram_eigenvalue(const Tensor& z);
/// The Lipschitz constant of ∇ of one task's inner loss, head_loss + (ρ/2)‖W − B‖², when
/// max_i λ_max(Z_iᵀZ_i)/n = s: s/2 + ρ for softmax (the softmax Hessian is ⪯ ½ I),
/// s + ρ for ridge. The inner step is its inverse, which stays stable (η < 2/L) even when
/// s is underestimated by up to half.
double head_lipschitz(Head head, double s, double rho);

/// What distinguishes the meta problems: the heads' features [T, n, q] of inputs x
/// [T, n, d] at λ (the intercept included), and whether the heads are pulled toward λ[0].
struct HeadModel {
  Head head = Head::softmax;
  double rho = 1.0;
  double step = 0;                ///< the inner step 1/ℓ̂, the same for every task
  std::int64_t ways = 0, q = 0;   ///< heads [N, q]
  /// Features that do not depend on λ are computed once per task set.
  bool fixed_features = false;
  std::function<Tensor(const Tensor& x, const TensorList& lambda)> features{};
  bool biased = false;  ///< the ℓ2 term is (ρ/2)‖W − λ[0]‖² (else (ρ/2)‖W‖²)
};

/// The batched bilevel problem of a task set: W [T, N, q] from 0,
///   inner Σ_i head_loss_i(W_i) + (ρ/2)‖W_i − center‖²   (the tasks decoupled),
///   outer (1/T) Σ_i query loss_i(W_i),
/// N·K inner and N·Q outer examples per task, and SID over support/query positions.
bilevel::Episode head_episode(const HeadModel& model, std::shared_ptr<const TaskSet> tasks);

/// Heads fitted on fixed features: inner Σ_i head_loss_i(W_i) + (ρ/2)‖W_i − B‖² solved
/// from W_i = B to a tight tolerance, then the query accuracy (mean over tasks, with the
/// half-width 1.96·sd/√T of its 95 % interval) and the mean query loss.
struct HeadFit {
  double accuracy = 0, ci95 = 0, loss = 0;
};
HeadFit fit_heads(Head head, double rho, const Tensor& support, const Tensor& query, const TaskSet& tasks,
                  const Tensor& bias);

/// What a meta problem supplies to `make_meta_instance`.
struct MetaSpec {
  std::string name{};     ///< the registry name
  std::string dataset{};
  MetaOptions options{};  ///< as parsed, and given to load_meta_pools
  HeadModel model{};      ///< step left 0: make_meta_instance calibrates it with `calibrate`
  /// s of head_lipschitz for the inputs x [T, n, d] of a calibration task set.
  std::function<double(const Tensor& x)> calibrate{};
  TensorList lambda0{};
  std::vector<bilevel::Projection> projections{};
  std::string what{};     ///< "λ: …" for the summary line
  /// Meta-test baselines as named metrics (computed once): `fit` fits heads on the meta-test
  /// tasks `test` with the problem's features at a given λ.
  std::function<Metrics(const std::function<HeadFit(const TensorList& lambda)>& fit, const TaskSet& test)> baselines{};
  Defaults defaults{};
};

/// The convolutional feature map of meta_hyperrep (map=cnn): `blocks` blocks of 3×3
/// convolution (padding 1, no bias: batch normalization removes it), batch normalization
/// with each task's own statistics, ReLU and 2×2 max-pooling, on side × side one-channel
/// images; then the mean over the remaining positions and rows scaled to unit norm (so
/// ‖[h, 1]‖² = 2 bounds the heads' step for every λ). λ: per block the weight
/// [channels, in, 3, 3], γ and β [channels].
struct CnnMap {
  std::int32_t side, channels, blocks;  // small: a functor holding it fits std::function's own storage
  /// He-initialized convolutions, γ = 1, β = 0.
  TensorList lambda0(Generator& gen) const;
  /// x [T, n, side²] → [T, n, channels].
  Tensor features(const Tensor& x, const TensorList& lam) const;
  /// Halvings of a side before it reaches 1: the most blocks a side × side image allows.
  static std::int64_t halvings(std::int64_t side);
};

/// Builds the instance: meta-train tasks from the train stream of the meta-train pool (the
/// fixed problem holds tasks 0 … T−1; the episodic version draws ids from the same stream,
/// a population of `task_pool` or fresh ones), `validation` the query accuracy of the fixed
/// tasks (episodic runs: of heads fitted on the validation tasks), and `evaluate` the
/// meta-test accuracy with its 95 % interval over the meta-test tasks, which never share a
/// class with a meta-train task when meta-testing on held-out classes (checked).
Instance make_meta_instance(const ProblemConfig& config, std::shared_ptr<const MetaPools> pools, MetaSpec spec);

}  // namespace hyperad::problems::meta
