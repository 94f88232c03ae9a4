#pragma once
/// \file outer.hpp
/// The projected inexact hypergradient method
///
///     λ_{s+1} = P_Λ(λ_s − α_s d_s),   d_s = ±h_s (− to maximize),
///
/// with h_s from any HypergradientMethod (ITD, AID, SID, ...) on a fixed Problem, or from an
/// EpisodicHypergradient (a fresh meta-batch of tasks or examples each step, episodic.hpp),
/// P_Λ one Projection per
/// tensor of λ (projection.hpp), α_s a StepSizeSchedule, and optionally heavy-ball momentum
/// (m ← β m + d, step along m) or Adam (bias-corrected moments, step along m̂/(√v̂ + ε))
/// in place of d. The projection is applied after every update, so every iterate — λ0
/// included, which is projected at construction — is feasible.
///
/// The loop controls the method before each call:
/// - schedules: t, K, J from IterationSchedules of s, passed by `set_iterations` (a method
///   that does not take one of them throws; unset schedules leave the method's own counts);
/// - warm start (`WarmStart`, passed to the method by `set_warm_start` at construction,
///   overriding its own option): none → every outer step starts from w0 and v = 0; inner →
///   the inner solve starts from the last w_t, the linear system from 0; linear → the
///   reverse; inner_and_linear → both. (The method still keeps its last w_t, for the
///   validation objective and the state file.)
///
/// Each step appends an OuterRecord to `history()` and a row to the CSV file (if set):
/// the objective E(w_t, λ_s) the method reported, the validation objective V(w_t, λ_s) (if a
/// ValidationFn is set), ‖h_s‖, α_s, inner steps and linear iterations done, the imposed
/// t/K/J, samples consumed (Diagnostics::samples, and the running total), wall time, and
/// the stationarity measure when asked for.
///
/// Protocols (the comparisons of the thesis): `run()` stops early on a budget of
/// sample-gradients or of seconds; every `stationarity_every` steps the gradient-mapping
/// norm ‖λ_s − P_Λ(λ_s − α∇f(λ_s))‖/α is logged, with ∇f from a converged reference
/// (`reference_gradient`) — its cost is counted in neither the seconds nor the samples.
///
/// Save/resume (state_file.hpp): `save(path)` writes λ, the optimizer's moments, the
/// method's warm state and random state, the step counter, the sample and time totals and
/// the configuration, atomically. With `state_path` set, `step()` saves every `save_every`
/// steps and `run()` at its end; `run()` with `resume` first loads `state_path` if it
/// exists. A resumed run repeats exactly what the uninterrupted run would have done (same
/// λ bits, given the same thread count and options). `load` rejects, with StateFileError
/// naming the file and the field, a file whose configuration (method, update rule and its
/// constants, objective sense, warm-start mode, projections, step-size and t/K/J schedules,
/// and the caller's `run_identity`) or tensor shapes differ from this run, or whose step is
/// past `outer_steps`. On resume the CSV keeps its complete rows of the steps before the
/// saved step and drops later ones (those are recomputed), so it reads as one uninterrupted
/// run; it is replaced atomically (files.hpp), so a kill during a resume cannot cut it.
/// Every CSV write is checked: a full disk throws IOError instead of losing rows.
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "hyperad/bilevel/episodic.hpp"
#include "hyperad/bilevel/files.hpp"
#include "hyperad/bilevel/hypergradient.hpp"
#include "hyperad/bilevel/projection.hpp"
#include "hyperad/bilevel/schedule.hpp"
#include "hyperad/bilevel/state_file.hpp"

namespace hyperad::bilevel {

enum class OuterUpdate { gradient, momentum, adam };
inline constexpr std::array<Named<OuterUpdate>, 3> kOuterUpdateNames{
    {{OuterUpdate::gradient, "gradient"}, {OuterUpdate::momentum, "momentum"}, {OuterUpdate::adam, "adam"}}};
/// "gradient", "momentum", "adam".
inline const char* outer_update_name(OuterUpdate u) { return name_of(kOuterUpdateNames, u); }

/// V(w, λ): the outer objective on held-out (validation) data, evaluated at the method's
/// inner solution w_t (the weights part, Problem::weights) and the λ_s of the step. w is
/// empty for a method that does not expose its warm state, and for episodic problems
/// (there, V is a function of λ: e.g. the accuracy of heads fitted on validation tasks).
using ValidationFn = std::function<double(const TensorList& w, const TensorList& lambda)>;

/// ∇f(λ) from a converged reference, for the stationarity measure.
using ReferenceGradient = std::function<TensorList(const TensorList& lambda)>;

/// The gradient mapping's norm ‖λ − P_Λ(λ − α d)‖/α with d = ∇f (−∇f when maximizing):
/// 0 exactly at the stationary points of f on Λ, ‖∇f‖ where no constraint is active.
/// `projections`: empty (unconstrained) or one per tensor. ValueError for α ≤ 0 or a
/// count mismatch; ShapeError when d is not shaped like λ.
double gradient_mapping_norm(const TensorList& lambda, const TensorList& gradient, double alpha,
                             const std::vector<Projection>& projections, bool maximize = false);

struct OuterOptions {
  std::int64_t outer_steps = 100;  ///< run(): total outer steps (saved steps of a resumed run count)
  StepSizeSchedule step_size = StepSizeSchedule::constant(0.1);  ///< α_s
  bool maximize = false;  ///< ascend: d = −h
  OuterUpdate update = OuterUpdate::gradient;
  double momentum = 0.9;  ///< β of OuterUpdate::momentum, in [0, 1)
  double beta1 = 0.9, beta2 = 0.999, adam_epsilon = 1e-8;  ///< OuterUpdate::adam
  /// t, K, J per outer step; unset: the method's own options.
  std::optional<IterationSchedule> inner_steps{}, linear_steps{}, cross_batches{};
  WarmStart warm_start = WarmStart::none;
  ValidationFn validation{};  ///< empty: the validation column is NaN
  std::int64_t validation_every = 1;  ///< V every this many steps (the others log NaN); ≥ 1
  std::string csv_path{};    ///< one row per step; empty: no CSV
  std::string state_path{};  ///< where step()/run() save; empty: no saving
  std::int64_t save_every = 0;  ///< save after every N-th step (0: only at the end of run())
  bool resume = false;          ///< run(): continue from state_path if the file exists
  /// What else determines this run's numbers — the problem, its data and options, the
  /// seed, the method's settings — as (name, value) pairs the caller chooses. Saved in the
  /// state file; `load` refuses a file whose pairs differ (e.g. another dataset or seed).
  std::vector<std::pair<std::string, std::string>> run_identity{};
  /// run() stops once the run has consumed this many sample-gradients (0: no budget) ...
  std::int64_t budget_samples = 0;
  /// ... or spent this many seconds in its steps (0: no budget). Whichever comes first;
  /// outer_steps still caps the steps. Budgets are not part of the state's identity: a
  /// resumed run may be given a larger one.
  double budget_seconds = 0;
  /// With stationarity_every = N > 0, every N-th step (s = 0, N, 2N, …) logs the gradient
  /// mapping's norm at λ_s (gradient_mapping_norm) with ∇f from `reference_gradient`.
  ReferenceGradient reference_gradient{};
  std::int64_t stationarity_every = 0;
  /// α of the gradient mapping (0: α_s, the step size of the step).
  double stationarity_step = 0;
};

/// One outer step, as logged.
struct OuterRecord {
  std::int64_t step = 0;          ///< s (λ_s is the point the hypergradient was taken at)
  double objective = 0;           ///< E(w_t, λ_s) as reported by the method
  double validation = 0;          ///< V(w_t, λ_s); NaN without a ValidationFn
  double grad_norm = 0;           ///< ‖h_s‖
  double step_size = 0;           ///< α_s
  int inner_steps = 0;            ///< Diagnostics::inner_steps
  int linear_iterations = 0;      ///< Diagnostics::linear.iterations
  std::optional<int> t{}, K{}, J{};  ///< imposed by the schedules (unset: not scheduled; −1 in the CSV)
  std::int64_t samples = 0;       ///< Diagnostics::samples of this step
  std::int64_t total_samples = 0; ///< since the start of the run (across resumes)
  double seconds = 0;             ///< wall time of this step (hypergradient, validation, update)
  double total_seconds = 0;       ///< since the start of the run (across resumes)
  /// The gradient-mapping norm at λ_s (NaN when not measured at this step).
  double stationarity = std::numeric_limits<double>::quiet_NaN();
  std::string warnings;           ///< the method's warnings, joined by " | "
};

/// The CSV header, matching OuterRecord field by field.
inline constexpr const char* kOuterCsvHeader =
    "step,objective,validation,grad_norm,step_size,inner_steps,linear_iterations,t,K,J,samples,total_samples,"
    "seconds,total_seconds,stationarity,warnings";

class OuterOptimizer {
 public:
  /// `projections`: empty (unconstrained) or one per tensor of λ (Projection::identity()
  /// for a free one). The method is used by reference and must outlive the optimizer.
  /// Throws ValueError for invalid options or a projection count that does not match λ.
  OuterOptimizer(Problem problem, HypergradientMethod& method, TensorList lambda0, OuterOptions options = {},
                 std::vector<Projection> projections = {});
  /// An episodic problem: every step draws a meta-batch from `episodic` (used by reference,
  /// it must outlive the optimizer). Its own warm start applies: options.warm_start must be
  /// none (ValueError otherwise). Saved states hold its buffers and sampler.
  OuterOptimizer(EpisodicHypergradient& episodic, TensorList lambda0, OuterOptions options = {},
                 std::vector<Projection> projections = {});

  /// One outer step; returns its record (also appended to history()).
  const OuterRecord& step();
  /// Steps until `options.outer_steps` steps are done or a budget is spent (after resuming,
  /// if asked), then saves if `state_path` is set. Returns history().
  const std::vector<OuterRecord>& run();

  /// Writes the current state to `path` atomically.
  void save(const std::string& path) const;
  /// Continues from a saved state. Throws StateFileError when the file is unreadable,
  /// corrupted, or from a run with another configuration or shapes.
  void load(const std::string& path);
  /// The state save() writes.
  OuterState state() const;

  const TensorList& lambda() const { return lambda_; }
  /// Outer steps done (the next step's s).
  std::int64_t steps_done() const { return step_; }
  std::int64_t total_samples() const { return samples_; }
  /// Seconds spent in the steps so far (across resumes; stationarity measurements excluded).
  double total_seconds() const { return seconds_; }
  /// True once a budget of options() is spent.
  bool budget_spent() const;
  /// The gradient-mapping norm at the current λ (needs options().reference_gradient).
  double stationarity() const;
  /// The method's name (the episodic driver's for an episodic problem).
  std::string method_name() const;
  /// Records of the steps run by this object (a resumed run starts empty; the CSV has all).
  const std::vector<OuterRecord>& history() const { return history_; }
  const OuterOptions& options() const { return options_; }

 private:
  void init(TensorList lambda0);
  std::vector<std::pair<std::string, std::string>> config() const;
  void prepare_csv();
  void append_csv(const OuterRecord& r) const;
  double stationarity_at(double alpha) const;
  WarmState warm_state() const;
  std::vector<std::uint64_t> random_state() const;

  std::optional<Problem> problem_;                 // a fixed problem, with method_
  HypergradientMethod* method_ = nullptr;
  EpisodicHypergradient* episodic_ = nullptr;      // or an episodic one
  OuterOptions options_;
  std::vector<Projection> projections_;
  TensorList lambda_;
  TensorList m1_, m2_;  // momentum buffer / Adam moments
  std::int64_t step_ = 0, samples_ = 0;
  double seconds_ = 0;
  std::vector<OuterRecord> history_;
  bool csv_ready_ = false;
};

}  // namespace hyperad::bilevel
