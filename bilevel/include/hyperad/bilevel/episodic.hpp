#pragma once
/// \file episodic.hpp
/// Episodic bilevel problems: the outer objective is an expectation over *units* — few-shot
/// tasks, or training examples whose inner states are independent —
///
///     f(λ) = E_u [ E_u(w_u(λ), λ) ],    w_u(λ) = Φ_u(w_u(λ), λ)   for each unit u,
///
/// and every outer step draws a fresh meta-batch of B units, solves each unit's inner
/// problem (with any HypergradientMethod: ITD, truncated ITD, AID with any solver, SID
/// inside the unit), and averages the B hypergradients — an unbiased estimate of ∇f when the
/// per-unit hypergradients are exact. This is the setting of the stochastic results of
/// Grazzi, Pontil & Salzo (JMLR 2023): meta-learning with a fresh meta-batch of tasks per
/// step, equilibrium models trained on minibatches of examples.
///
/// An `EpisodicProblem` builds the bilevel problem of any set of units as one *batched*
/// `Problem` (an `Episode`): every tensor of its inner state has the units along its leading
/// axis, Φ acts on each unit's rows independently, and E is the mean over the units. The
/// same builder therefore serves three executions (`Execution`), which `EpisodicHypergradient`
/// runs:
///
/// - batched: one episode of all B units — a leading task axis through the batched ops, the
///   way vmap works in JAX (few large ops instead of B times as many small ones);
/// - sequential: B episodes of one unit each, in order;
/// - threaded: the same B one-unit episodes spread over OpenMP threads (each thread its own
///   tape); the results are summed in unit order after the loop, so they are bit-identical
///   to sequential's on any thread count.
///
/// Batched equals sequential to rounding when the method's iterations act on each unit
/// separately: fixed counts of inner steps (ITD, AID, SID), the FP/Neumann linear solvers,
/// SID's linear iteration. Krylov solvers (CG, GMRES, BiCGStab, normal-CG) share their
/// scalars across the batch: batched they solve the block-diagonal system of the whole
/// meta-batch (the same solution, reached along another path), so batched and sequential
/// agree to the solver's tolerance, not to rounding; so do inner solves stopped by a
/// tolerance (the batch stops on its joint step norm).
///
/// Warm start (`EpisodeWarmStart`): each unit's solve starts from
/// - none: the problem's w0 (and v = 0) — the setting of the JMLR 2023 result;
/// - naive: the solution of the unit at the same position of the previous meta-batch (a
///   different unit: a biased but free start);
/// - full: the unit's own last solution, from a buffer with one slot per unit id (needs a
///   bounded population; saved in the outer loop's state file).
/// The linear-system solution v is warm-started alongside w for methods that have one
/// (AID, SID); ITD has only w.
///
/// Sample accounting (stochastic.hpp's unit): an episode's deterministic method consumes
/// `full_batch_samples` with the episode's examples (per-unit sizes × units); SID inside an
/// episode counts positions shared by its units (`Episode::stochastic`), so its count is
/// multiplied by the number of units. The counts of a meta-batch are summed.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "hyperad/bilevel/hypergradient.hpp"
#include "hyperad/bilevel/sampling.hpp"
#include "hyperad/bilevel/sid.hpp"
#include "hyperad/bilevel/stochastic.hpp"

namespace hyperad::bilevel {

/// The bilevel problem of a set of units, batched.
struct Episode {
  /// Φ and E of the units: every tensor of the inner state has one row per unit along its
  /// leading axis (in the order the units were given), Φ maps each unit's rows from that
  /// unit's rows alone, and E is the mean over the units of their outer objectives.
  Problem problem;
  /// Examples one unit's inner problem (its Φ) and outer objective read: one pass over the
  /// unit's inner data costs `inner_examples` sample-gradients.
  std::int64_t inner_examples = 1, outer_examples = 1;
  /// The same problem over minibatches of *positions* within a unit (position j selects the
  /// j-th inner example of every unit of the episode; n_inner = inner_examples), for SID
  /// inside an episode. Empty: SID does not apply.
  std::optional<StochasticProblem> stochastic{};
};

/// A distribution over units with the batched problem of any set of them.
class EpisodicProblem {
 public:
  /// Builds the episode of `units`. It must depend on the ids alone (the same ids give the
  /// same problem) and may be called from several threads at once.
  using Builder = std::function<Episode(const Batch& units)>;

  /// `population`: the number of units, ids 0 … population − 1 (a finite set of tasks, the
  /// training examples); 0 for an unbounded population, where every draw is a unit never
  /// seen before (ids 0, 1, 2, … in the order drawn). `unit` names a unit in messages
  /// ("task", "example"). Builds the episode of unit 0 to check the builder: ValueError for
  /// a negative population, ShapeError when a state tensor's leading axis is not the number
  /// of units.
  EpisodicProblem(std::int64_t population, Builder build, std::string unit = "unit", std::string description = {});

  /// The episode of `units` (ids in [0, population) when bounded, ≥ 0 otherwise), checked
  /// as above. ValueError for an empty list or an id out of range.
  Episode episode(const Batch& units) const;

  std::int64_t population() const { return population_; }
  bool bounded() const { return population_ > 0; }
  const std::string& unit() const { return unit_; }
  const std::string& description() const { return description_; }
  /// The initial state of unit 0's episode ([1, row…] per tensor): the row shapes and dtypes
  /// every unit's state has.
  const TensorList& unit_state() const { return unit_state_; }

 private:
  std::int64_t population_ = 0;
  std::shared_ptr<const Builder> build_;
  std::string unit_, description_;
  TensorList unit_state_;
};

/// Where each unit's solve starts (see the file comment).
enum class EpisodeWarmStart { none, naive, full };
inline constexpr std::array<Named<EpisodeWarmStart>, 3> kEpisodeWarmStartNames{
    {{EpisodeWarmStart::none, "none"}, {EpisodeWarmStart::naive, "naive"}, {EpisodeWarmStart::full, "full"}}};
/// "none", "naive", "full".
inline const char* episode_warm_start_name(EpisodeWarmStart w) { return name_of(kEpisodeWarmStartNames, w); }

/// How a meta-batch is computed (see the file comment).
enum class Execution { batched, sequential, threaded };
inline constexpr std::array<Named<Execution>, 3> kExecutionNames{
    {{Execution::batched, "batched"}, {Execution::sequential, "sequential"}, {Execution::threaded, "threaded"}}};
/// "batched", "sequential", "threaded".
inline const char* execution_name(Execution e) { return name_of(kExecutionNames, e); }

/// Spreads each meta-batch over processes (task parallelism): every process computes the
/// episodes of its share of the meta-batch's positions, then an exchange hands every
/// process every episode's outcome (hypergradient, diagnostics, final state, failure), so
/// that all aggregate the same values in unit order and keep the same warm-start buffers.
/// With sequential or threaded execution the results are therefore bit-identical to one
/// process's, on any number of processes. Batched execution batches each process's share:
/// equal to one process's batch to rounding only where batching is (ITD, AID-FP/Neumann
/// with fixed counts); Krylov solvers, tolerance stops and SID (sampled per episode) take
/// another path. hyperad::mpi::task_parallel(comm) is the MPI implementation; the interface
/// lets the bilevel layer stay free of MPI.
class UnitExchange {
 public:
  virtual ~UnitExchange() = default;
  /// The positions [first, second) of a meta-batch of `count` units this process computes:
  /// contiguous shares, in process order, covering [0, count) together.
  virtual std::pair<std::int64_t, std::int64_t> share(std::int64_t count) const = 0;
  /// Collective: every process's bytes, in process order (each passes its own).
  virtual std::vector<std::string> all_gather(const std::string& mine) const = 0;
  /// e.g. "4 MPI ranks" (for names and messages).
  virtual std::string describe() const = 0;
};

struct EpisodicOptions {
  std::int64_t meta_batch = 1;  ///< B: units per outer step (≤ the population when bounded)
  EpisodeWarmStart warm_start = EpisodeWarmStart::none;
  Execution execution = Execution::batched;
  /// How a bounded population is drawn: without replacement, every unit once per epoch (the
  /// last meta-batch of an epoch may be short); with replacement, B independent uniform ids.
  Sampling sampling = Sampling::without_replacement;
  std::uint64_t seed = 0;  ///< the unit sampler, and the seeds handed to each episode's method
  /// Spreads each meta-batch over processes (see UnitExchange); null: this process computes
  /// every unit.
  std::shared_ptr<const UnitExchange> exchange{};
};

/// Makes the method that differentiates one episode: a fresh object per episode and call
/// (so episodes can run on several threads). `seed` is distinct for every episode of a run
/// (from EpisodicOptions::seed, the meta-batch's index and the episode's position in it), for
/// methods that sample (SID).
using EpisodeMethodFactory =
    std::function<std::unique_ptr<HypergradientMethod>(const Episode& episode, std::uint64_t seed)>;

/// A factory that copies `prototype` (AID, ITD, FullBatchCounted, ... any copyable method)
/// for each episode; its warm state is cleared first.
/// Not FullBatchCounted: its copies would share one method, and the driver counts samples itself.
template <class Method>
EpisodeMethodFactory copies_of(Method prototype) {
  static_assert(!std::is_same_v<Method, FullBatchCounted>, "give the plain method: the episodic driver counts samples");
  prototype.reset();
  return [p = std::move(prototype)](const Episode&, std::uint64_t) { return std::make_unique<Method>(p); };
}

/// A factory of SID on each episode's stochastic version (Episode::stochastic; ValueError
/// when an episode has none) with `options` and the episode's seed; its warm start is left to
/// the episodic driver.
EpisodeMethodFactory sid_per_episode(SIDOptions options);

/// The episodic hypergradient: draws meta-batches, solves and differentiates their units,
/// averages, and keeps the warm-start buffers. OuterOptimizer runs it like a fixed problem's
/// method (outer.hpp), saving its buffers and sampler in the state file.
class EpisodicHypergradient {
 public:
  /// Builds a probe method for unit 0 to name the method and check that it takes the
  /// problem. ValueError for invalid options: B < 1, B above a bounded population, a full
  /// warm start or sampling with replacement of an unbounded population.
  EpisodicHypergradient(EpisodicProblem problem, EpisodeMethodFactory method, EpisodicOptions options = {});

  /// Draws the next meta-batch and returns the mean of its units' hypergradients (the
  /// objective is the mean of their E). The diagnostics sum the samples, seconds and
  /// iterations-per-unit are the largest of the episodes (the linear report is the worst
  /// episode's, by relative residual), and every episode's concerns are kept, prefixed with
  /// its units. In strict mode an untrusted meta-batch throws UntrustedError listing every
  /// concern, before anything is kept (the meta-batch drawn is consumed).
  Hypergradient hypergradient(const TensorList& lambda);
  /// The same for the units given (no draw; the warm starts still apply and are updated).
  Hypergradient hypergradient(const Batch& units, const TensorList& lambda);

  /// The units of the last meta-batch (empty before the first).
  const Batch& last_units() const { return last_units_; }
  /// Meta-batches drawn so far.
  std::int64_t draws() const { return draws_; }

  /// e.g. "AID-CG over tasks (meta-batch 4, warm start none, batched)".
  std::string name() const;
  /// The name of the method used for each episode, e.g. "AID-CG".
  const std::string& method_name() const { return method_name_; }
  /// The settings that determine the run's numbers, as (key, value) pairs (for state files).
  std::vector<std::pair<std::string, std::string>> config() const;

  const EpisodicProblem& problem() const { return problem_; }
  const EpisodicOptions& options() const { return options_; }
  /// Changes how meta-batches are computed (the results do not depend on it beyond what the
  /// file comment says).
  void set_execution(Execution e) { options_.execution = e; }

  /// t, K, J passed to every episode's method (set_iterations; unset fields: the method's own).
  void set_iterations(const IterationCounts& counts);
  void set_strict(bool strict) { strict_ = strict; }
  bool strict() const { return strict_; }

  /// A copy of the warm-start buffers, one tensor per inner-state tensor: full,
  /// [population, row…] (a unit never solved holds zeros); naive, the last meta-batch's
  /// [B, row…]; none, empty. `linear` likewise for v, each row the unit's own v (an
  /// episode of c units, whose E is their mean, solves for 1/c of it; empty when the method
  /// has no linear system; a unit whose method fell back to v = 0 holds zeros).
  WarmState warm_state() const;
  /// Restores (a copy of) what warm_state returned; until import_random_state says which
  /// units they hold, all of them are taken as held. ValueError when the shapes do not fit
  /// this problem and warm start.
  void set_warm_state(const WarmState& s);
  /// The sampler, the meta-batch counter and which units the full buffer holds, as integers.
  std::vector<std::uint64_t> export_random_state() const;
  /// Restores export_random_state's words (ValueError when they do not fit).
  void import_random_state(const std::vector<std::uint64_t>& words);
  /// set_warm_state and import_random_state together, all or nothing: on a ValueError the
  /// driver is left as it was (what OuterOptimizer::load uses).
  void restore(const WarmState& s, const std::vector<std::uint64_t>& words);
  /// Forgets the warm-start buffers (the sampler goes on).
  void reset();

 private:
  struct Result;
  struct Part;  // the units of one episode and the position of the first in the meta-batch
  Batch draw();
  // With an exchange: replaces this process's parts and results by every process's, in
  // position order (checked to cover the meta-batch's positions once, with its units).
  void exchange_outcomes(const Batch& units, std::vector<Part>& parts, std::vector<Result>& results) const;
  // Runs the episode of `units` at `positions` of the meta-batch; fills `out`.
  void run_episode(const Batch& units, std::int64_t first_position, const TensorList& lambda, Result& out) const;
  TensorList start_rows(const Batch& units, std::int64_t first_position, bool linear, const TensorList& w0) const;
  void keep(const Batch& units, std::int64_t first_position, const TensorList& w, const TensorList& v);

  EpisodicProblem problem_;
  EpisodeMethodFactory factory_;
  EpisodicOptions options_;
  std::string method_name_;
  IterationCounts counts_{};
  bool strict_ = false;
  std::optional<BatchSampler> sampler_;  // bounded populations
  std::int64_t next_id_ = 0;             // unbounded populations: the next fresh id
  std::int64_t draws_ = 0;    // meta-batches drawn by the sampler
  std::int64_t batches_ = 0;  // meta-batches computed (drawn or given): seeds the episodes' methods
  Batch last_units_;
  // Warm-start buffers: full, [population, row…] with `held_` marking the units solved;
  // naive, the last meta-batch's states.
  TensorList buffer_w_, buffer_v_;
  std::vector<bool> held_;
  std::int64_t buffered_units_ = 0;  // naive: rows in the buffers
};

}  // namespace hyperad::bilevel
