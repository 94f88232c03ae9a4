#pragma once
// Shared parts of the meta-learning problems (meta_biased.cpp, meta_hyperrep.cpp): the
// options every meta problem takes, the class split of a dataset into meta-train and
// meta-test pools, seeded N-way K-shot task sampling, the per-task linear heads (softmax or
// one-vs-rest ridge) with their Lipschitz bound, and fitting heads on fixed features for
// the meta-test evaluation.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "hyperad/autodiff/tensor.hpp"
#include "hyperad/bilevel/problem.hpp"
#include "hyperad/problems/data.hpp"
#include "hyperad/problems/registry.hpp"

namespace hyperad::problems::meta {

/// The loss of a task's linear head on its features.
enum class Head { softmax, ridge };

/// Options common to the meta-learning problems (docs/problems/meta-learning.md).
struct MetaOptions {
  std::int64_t ways = 5, shots = 5, queries = 15;  ///< N, K, and query examples per class
  std::int64_t tasks = 20;                         ///< T meta-train tasks
  std::int64_t test_tasks = 100;                   ///< meta-test tasks
  std::int64_t train_classes = 5;  ///< classes [0, k) are meta-train, [k, C) meta-test
  double rho = 1.0;                ///< ρ of the heads' ℓ2 term
  Head head = Head::softmax;
  bool standardize = true;         ///< per-feature, statistics of the meta-train pool
  std::int64_t pool = 1;           ///< average-pooling factor of the images (side / pool pixels)
  std::int64_t examples = 6000;    ///< Fashion-MNIST: training images read
  bool test_on_classes = true;     ///< meta-test on held-out classes (else held-out examples)
};

/// The fallbacks shared by the meta problems for `dataset`: Fashion-MNIST's 28×28 images
/// pooled to 7×7; with config.small, 2-way 2-shot tasks with 3 queries per class, 2
/// meta-train and 20 meta-test tasks, on 16 features (4×4 images).
MetaOptions meta_base_options(const ProblemConfig& config, const std::string& dataset);
/// The options of `config` with the fallbacks the problem chooses (`base`, already adjusted
/// for config.small); ValueError naming the problem and option for bad values.
MetaOptions parse_meta_options(const ProblemConfig& config, const std::string& problem, MetaOptions base);
/// The OptionInfo entries of MetaOptions, with `base` as the defaults shown.
std::vector<OptionInfo> meta_option_infos(const MetaOptions& base, const std::string& default_meta_test);

/// Examples of a dataset divided into the meta-train pool and the meta-test pool. Labels
/// keep the dataset's class indices.
struct MetaPools {
  Dataset train;                             ///< meta-train examples
  Dataset test;                              ///< meta-test examples
  std::vector<std::int64_t> train_classes;   ///< classes tasks are drawn from for meta-training
  std::vector<std::int64_t> test_classes;    ///< ... for meta-testing
  std::string description;                   ///< for Instance::summary
};

/// Loads `dataset` ("digits" or "fashion_mnist"), pools the images, splits the classes
/// (and, for held-out examples, each meta-train class's examples in halves, seeded), and
/// standardizes with the meta-train pool's statistics. Checks that each side has N classes
/// with K + Q examples each (ValueError naming the problem otherwise). Appends no intercept.
MetaPools load_meta_pools(const ProblemConfig& config, const std::string& problem, const std::string& dataset,
                          const MetaOptions& o);

/// T tasks of N ways: inputs stacked task-major, labels 0..N−1 in ascending class order.
struct TaskSet {
  std::int64_t tasks = 0, ways = 0, shots = 0, queries = 0;
  Tensor support{};  ///< [T, N·K, d], class-major within a task (K rows of label 0, then label 1, ...)
  Tensor query{};    ///< [T, N·Q, d], likewise
  std::vector<std::int64_t> support_labels{}, query_labels{};  ///< T·N·K and T·N·Q labels in [0, N)
  std::vector<std::vector<std::int64_t>> classes{};        ///< per task, its N dataset classes (ascending)
  std::vector<std::vector<std::int64_t>> support_rows{}, query_rows{};  ///< per task, rows of the pool
};

/// Draws `tasks` tasks from `pool` restricted to `classes`: each picks N distinct classes
/// uniformly, then K + Q distinct examples of each (first K support, next Q query), from
/// `gen` only (the same seed gives the same tasks on every machine).
TaskSet sample_tasks(const Dataset& pool, const std::vector<std::int64_t>& classes, std::int64_t tasks,
                     std::int64_t ways, std::int64_t shots, std::int64_t queries, Generator& gen);

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
