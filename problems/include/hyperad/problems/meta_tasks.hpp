#pragma once
// Few-shot task sampling for the meta-learning problems (docs/problems/meta-learning.md):
// their options, the class split of a dataset into meta-train and meta-test pools, and
// seeded N-way K-shot task sets. Public so that a user's own meta-learning program (or a
// test) draws exactly the tasks the built-in problems do.
#include <cstdint>
#include <string>
#include <vector>

#include "hyperad/autodiff/tensor.hpp"
#include "hyperad/problems/data.hpp"
#include "hyperad/problems/registry.hpp"

namespace hyperad::problems::meta {

/// The loss of a task's linear head on its features.
enum class Head { softmax, ridge };

/// Options common to the meta-learning problems (docs/problems/meta-learning.md).
struct MetaOptions {
  std::int64_t ways = 5, shots = 5, queries = 15;  ///< N, K, and query examples per class
  std::int64_t tasks = 20;                         ///< T: tasks of the fixed problem (meta-train tasks 0 … T−1)
  std::int64_t test_tasks = 600;                   ///< meta-test tasks (evaluate; its 95 % interval)
  std::int64_t val_tasks = 20;                     ///< validation tasks (meta-train classes) of episodic runs
  std::int64_t task_pool = 0;                      ///< episodic runs: tasks drawn from ids [0, M); 0: fresh tasks
  std::int64_t train_classes = 5;  ///< classes [0, k) are meta-train, [k, C) meta-test
  double rho = 1.0;                ///< ρ of the heads' ℓ2 term
  Head head = Head::softmax;
  bool standardize = true;         ///< per-feature, statistics of the meta-train pool
  std::int64_t pool = 1;           ///< average-pooling factor of the images (side / pool pixels)
  std::int64_t examples = 6000;    ///< Fashion-MNIST: training images read
  bool test_on_classes = true;     ///< meta-test on held-out classes (else held-out examples)
};

/// The options of `config` with the fallbacks the problem chooses (`base`, already adjusted
/// for config.small); ValueError naming the problem and option for bad values.
MetaOptions parse_meta_options(const ProblemConfig& config, const std::string& problem, MetaOptions base);

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

/// Tasks named by ids: task u is drawn as by sample_tasks, from its own generator
/// Generator(bilevel::mix_seed(seed, u)). Any grouping of ids gives the same tasks (the
/// tasks {3, 8} together are tasks 3 and 8 drawn alone), which an episodic problem needs.
/// The meta problems draw their tasks this way: meta-train tasks from the stream
/// `task_stream(config.seed, TaskStream::train)` of the meta-train pool (the fixed
/// problem holds tasks 0 … T−1; an episodic run draws ids from the same stream), and so on.
TaskSet sample_tasks_by_id(const Dataset& pool, const std::vector<std::int64_t>& classes,
                           const std::vector<std::int64_t>& ids, std::uint64_t seed, std::int64_t ways,
                           std::int64_t shots, std::int64_t queries);

/// The meta problems' task streams: meta-train tasks, validation tasks (meta-train classes,
/// another stream), meta-test tasks (the meta-test pool), and the tasks that calibrate the
/// inner step size.
enum class TaskStream : std::uint64_t { train = 1, validation = 2, test = 3, calibration = 4 };
/// The seed of a stream for a problem built with `seed`.
std::uint64_t task_stream(std::uint64_t seed, TaskStream stream);

}  // namespace hyperad::problems::meta
