#pragma once
// Shared parts of the meta-learning problems (meta_biased.cpp, meta_hyperrep.cpp) beyond
// the public task sampling (hyperad/problems/meta_tasks.hpp): the options' fallbacks and
// table, the problem's task sets, the per-task linear heads (softmax or one-vs-rest ridge)
// with their Lipschitz bound, and fitting heads on fixed features for the meta-test
// evaluation.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "hyperad/autodiff/tensor.hpp"
#include "hyperad/bilevel/problem.hpp"
#include "hyperad/problems/data.hpp"
#include "hyperad/problems/meta_tasks.hpp"
#include "hyperad/problems/registry.hpp"

namespace hyperad::problems::meta {

/// The fallbacks shared by the meta problems for `dataset`: Fashion-MNIST's 28×28 images
/// pooled to 7×7; with config.small, 2-way 2-shot tasks with 3 queries per class, 2
/// meta-train and 20 meta-test tasks, on 16 features (4×4 images).
MetaOptions meta_base_options(const ProblemConfig& config, const std::string& dataset);
/// The OptionInfo entries of MetaOptions, with `base` as the defaults shown.
std::vector<OptionInfo> meta_option_infos(const MetaOptions& base, const std::string& default_meta_test);

/// A meta problem's data: the pools, then o.tasks meta-train tasks and o.test_tasks meta-test
/// tasks (N ways, K shots, Q queries), drawn in that order from `gen`. The task sets are
/// shared by the problem's closures.
struct MetaData {
  MetaPools pools;
  std::shared_ptr<const TaskSet> train, test;
};
MetaData load_meta_data(const ProblemConfig& config, const std::string& problem, const std::string& dataset,
                        const MetaOptions& o, Generator& gen);

/// x ↦ [x, 1] along the last axis (the heads' intercept).
Tensor with_intercept(const Tensor& z);

/// Σ over tasks of the mean head loss of task i: softmax cross-entropy of Z_i W_iᵀ, or
/// ½‖Z_i W_iᵀ − onehot‖² per example. Z [T, n, q], W [T, N, q], labels T·n.
Tensor head_loss(Head head, const Tensor& z, const Tensor& w, const std::vector<std::int64_t>& labels);
/// Fraction of rows whose largest score Z_i W_iᵀ is at the label.
double head_accuracy(const Tensor& z, const Tensor& w, const std::vector<std::int64_t>& labels);
/// The largest mean squared singular value max_i λ_max(Z_iᵀ Z_i)/n over the tasks of Z
/// [T, n, q], by power iteration (an estimate from below; see head_step_size).
double max_gram_eigenvalue(const Tensor& z);
/// The Lipschitz constant of ∇ of one task's inner loss, head_loss + (ρ/2)‖W − B‖², when
/// max_i λ_max(Z_iᵀZ_i)/n = s: s/2 + ρ for softmax (the softmax Hessian is ⪯ ½ I),
/// s + ρ for ridge. The inner step is its inverse, which stays stable (η < 2/L) even when
/// s is underestimated by up to half.
double head_lipschitz(Head head, double s, double rho);

/// Heads fitted on fixed features: inner Σ_i head_loss_i(W_i) + (ρ/2)‖W_i − B‖² solved
/// from W_i = B to a tight tolerance, then query accuracy and mean query loss.
struct HeadFit {
  double accuracy = 0, loss = 0;
};
HeadFit fit_heads(Head head, double rho, const Tensor& support, const Tensor& query, const TaskSet& tasks,
                  const Tensor& bias);

/// The per-task heads W_i [N, q] stacked into [T, N, q].
Tensor stack_heads(const TensorList& w);

}  // namespace hyperad::problems::meta
