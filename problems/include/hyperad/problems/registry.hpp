#pragma once
/// \file registry.hpp
/// The bilevel problems hyperad ships, on real data: hyperparameter optimization,
/// meta-learning, data poisoning and equilibrium models. Each is built by name from a
/// ProblemConfig into an Instance that holds everything a driver (the `hyperad` tool, the
/// tests, the benchmarks) needs: the bilevel Problem (inner problem on training data,
/// outer objective on validation data), the starting λ, its projections, whether to
/// maximize, a stochastic version for SID when one makes sense, suggested method settings,
/// and a final evaluation (e.g. test accuracy after retraining at λ).
///
///     auto inst = hyperad::problems::make_problem("logreg", {.dataset = "breast_cancer"});
///     hyperad::bilevel::AID aid({.inner_steps = 200, .linear_steps = 50});
///     auto h = aid.hypergradient(inst.problem, inst.lambda0);
///
/// Problem-specific settings are string key=value pairs in ProblemConfig::options; each
/// problem declares the keys it accepts (ProblemInfo::options), and make_problem rejects
/// an unknown key or a malformed value with a ValueError naming the problem and the key.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "hyperad/bilevel/episodic.hpp"
#include "hyperad/bilevel/outer.hpp"
#include "hyperad/bilevel/problem.hpp"
#include "hyperad/bilevel/projection.hpp"
#include "hyperad/bilevel/shards.hpp"
#include "hyperad/bilevel/stochastic.hpp"

namespace hyperad::problems {

/// What the caller chooses about a problem.
struct ProblemConfig {
  std::string dataset{};   ///< empty: the problem's default (ProblemInfo::datasets[0])
  std::string data_dir{};  ///< Fashion-MNIST directory; empty: fashion_mnist_dir()
  std::uint64_t seed = 0;  ///< data splits, initialization, task sampling
  /// Tiny sizes (a few dozen weights and outer variables) so that finite differences and
  /// the exact dense hypergradient are cheap: tests and `hyperad check` use it.
  bool small = false;
  std::map<std::string, std::string> options{};  ///< problem-specific, e.g. {"train_size", "2000"}
  /// Spreads the examples over processes (data parallelism, bilevel/shards.hpp; over MPI:
  /// hyperad::mpi::data_parallel): the instance's objectives (fixed and stochastic) become
  /// collective, and give the same bits on any number of processes for the same chunk
  /// count. Accepted only by problems with ProblemInfo::data_parallel. Null: one process.
  std::shared_ptr<const bilevel::ExampleShards> shards{};
};

/// The settings a problem suggests for the outer loop and the methods (a driver's defaults
/// when the user gives none).
struct Defaults {
  std::string method = "aid-cg";  ///< a name of methods.hpp
  int inner_steps = 100;          ///< t
  int linear_steps = 50;          ///< K
  int outer_steps = 50;
  double outer_step_size = 0.1;   ///< α
  bilevel::OuterUpdate update = bilevel::OuterUpdate::adam;
  std::int64_t batch_size = 0;    ///< SID's inner/linear batches (0: full)
};

/// A named scalar reported by Instance::evaluate, e.g. {"test_accuracy", 0.93}.
using Metrics = std::vector<std::pair<std::string, double>>;

/// The episodic version of a problem (bilevel/episodic.hpp): each outer step draws a fresh
/// meta-batch of units — few-shot tasks, training examples — and averages their
/// hypergradients (the setting of the JMLR 2023 experiments).
struct EpisodicVersion {
  bilevel::EpisodicProblem problem;
  /// V(λ) of episodic runs (w is empty), e.g. the accuracy of heads fitted on validation
  /// tasks; may be empty.
  bilevel::ValidationFn validation{};
  std::string validation_name{};
  std::int64_t validation_every = 1;  ///< V costs a solve: every this many steps
  /// Settings of episodic runs: method, t, K, outer steps, α, update, and SID's batch
  /// size within a unit (0: all of the unit's examples).
  Defaults defaults{};
  std::int64_t meta_batch = 1;  ///< B, units per step
  /// `hyperad run` runs the episodic version unless told otherwise (--meta-batch 0).
  bool preferred = false;
};

/// A problem built and ready to optimize.
struct Instance {
  std::string name{};     ///< the registry name
  std::string dataset{};  ///< the dataset it was built on (the problem's default when none was asked for)
  std::string summary{};  ///< one line: data sizes, what w and λ are
  bilevel::Problem problem;                    ///< full batch: inner on training, E on validation
  TensorList lambda0{};                  ///< the starting outer variable (feasible)
  std::vector<bilevel::Projection> projections{};  ///< empty, or one per tensor of λ
  bool maximize = false;                       ///< the attacker of poisoning maximizes E
  /// The same problem over index batches, for SID; empty when SID does not apply.
  std::optional<bilevel::StochasticProblem> stochastic{};
  /// The episodic version; empty when the problem has none.
  std::optional<EpisodicVersion> episodic{};
  /// Examples read by the fixed problem's Φ and E, for the sample accounting of
  /// deterministic methods (FullBatchCounted); 0: the stochastic version's sizes, if any.
  std::int64_t inner_examples = 0, outer_examples = 0;
  /// An extra per-step number for the log (e.g. validation accuracy); may be empty.
  bilevel::ValidationFn validation{};
  std::string validation_name{};              ///< what `validation` returns, e.g. "val_acc"
  /// Final metrics at λ (re-solving the inner problem, retraining, testing as the problem
  /// defines them), e.g. test loss and accuracy. Never empty.
  std::function<Metrics(const TensorList& lambda)> evaluate{};
  Defaults defaults{};
};

/// One problem-specific option: key, default value (as text) and a one-line help.
struct OptionInfo {
  std::string key, default_value, help;
};

/// A registry entry.
struct ProblemInfo {
  std::string name;                    ///< e.g. "logreg"
  std::string family;                  ///< "hyperparameters", "meta-learning", "poisoning", "equilibrium"
  std::string summary;                 ///< one line for `hyperad list`
  std::vector<std::string> datasets;   ///< accepted dataset names; the first is the default
  std::vector<OptionInfo> options;     ///< accepted keys of ProblemConfig::options
  std::function<Instance(const ProblemConfig&)> make;
  /// Accepts ProblemConfig::shards (its objectives can be spread over processes).
  bool data_parallel = false;
  /// What `hyperad run` warm-starts by default (a WarmStart name for the fixed problem, an
  /// EpisodeWarmStart name when the episodic version is preferred), and why.
  std::string warm_start = "inner+linear";
  std::string warm_start_why = "each outer step re-solves the same inner problem at a nearby λ: the last solution "
                               "(and v) is the best start";
};

/// Every problem, in the order `hyperad list` shows them.
const std::vector<ProblemInfo>& all_problems();
/// The entry named `name`; ValueError listing the valid names otherwise.
const ProblemInfo& find_problem(const std::string& name);
/// Checks `config` against the entry (dataset among ProblemInfo::datasets, option keys
/// among ProblemInfo::options, shards only where ProblemInfo::data_parallel; ValueError
/// naming the problem and listing the valid ones) and builds the instance.
Instance make_problem(const std::string& name, const ProblemConfig& config = {});

/// The outer loop the instance suggests: defaults.outer_steps steps of defaults.update with
/// the constant step size defaults.outer_step_size, maximizing when the instance does, and
/// the instance's validation metric in the log. `episodic`: the same from the episodic
/// version's defaults and validation (ValueError when there is none). Adjust the fields
/// before use.
bilevel::OuterOptions outer_options(const Instance& inst, bool episodic = false);

// ---- option values (for the problem implementations) ---------------------------------

/// The value of `key` in config.options, or `fallback` when absent. ValueError naming the
/// problem, the key and the text when it does not parse as a whole number / number /
/// boolean (true/false/1/0/yes/no), or lies outside [lo, hi].
std::int64_t option_int(const ProblemConfig& config, const std::string& problem, const std::string& key,
                        std::int64_t fallback, std::int64_t lo, std::int64_t hi);
double option_double(const ProblemConfig& config, const std::string& problem, const std::string& key,
                     double fallback, double lo, double hi);
bool option_bool(const ProblemConfig& config, const std::string& problem, const std::string& key, bool fallback);
std::string option_string(const ProblemConfig& config, const std::string& key, const std::string& fallback);

}  // namespace hyperad::problems
