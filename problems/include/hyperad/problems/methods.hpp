#pragma once
/// \file methods.hpp
/// Hypergradient methods by name, for drivers (the `hyperad` tool, tests, benchmarks) that
/// let a user pick one: a MethodConfig names the method and its counts, and make_method
/// builds it for a problem Instance (registry.hpp), refusing combinations that cannot work
/// (SID without a stochastic version, CG on a non-symmetric inner map) with a message that
/// says what to use instead.
///
///     auto inst = hyperad::problems::make_problem("logreg", {.small = true});
///     auto m = hyperad::problems::make_method({.name = "aid-cg", .inner_steps = 200}, inst);
///     hyperad::bilevel::Hypergradient h = m->hypergradient(inst.problem, inst.lambda0);
///
/// Counts left unset take the instance's Defaults (inner_steps, linear_steps, batch_size).
/// The AID names are "aid-" and a built-in linear solver's name in lower case
/// (linsolve::solver_table): aid-fp, aid-neumann, aid-cg, aid-gmres, aid-bicgstab,
/// aid-normal-cg, aid-lu.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hyperad/autodiff/checkpoint.hpp"
#include "hyperad/bilevel/episodic.hpp"
#include "hyperad/bilevel/hypergradient.hpp"
#include "hyperad/problems/registry.hpp"

namespace hyperad::problems {

/// What to build. An unset count means "the instance's default".
struct MethodConfig {
  std::string name{};              ///< one of method_names(); empty: Instance::defaults.method
  std::optional<int> inner_steps{};  ///< t (unset: Defaults::inner_steps)
  std::optional<int> linear_steps{}; ///< K of AID and SID (unset: Defaults::linear_steps)
  /// T of itd-truncated (steps reversed through; unset: ⌈t/4⌉) and of itd-checkpointed
  /// (unset: all t). Refused by the other methods.
  std::optional<int> reverse_steps{};
  /// itd-checkpointed's policy; empty: binomial with ⌈√T⌉ snapshots.
  std::optional<CheckpointPolicy> checkpoint{};
  /// What each call starts from: the previous call's w_t, its v, both or neither. ITD has
  /// no v and refuses `linear` warm starts.
  bilevel::WarmStart warm_start = bilevel::WarmStart::none;
  /// SID's inner, linear and cross batch size (0: full data; unset: Defaults::batch_size).
  /// Refused (> 0) by the deterministic methods.
  std::optional<std::int64_t> batch_size{};
  std::optional<int> cross_batches{};  ///< SID's J (unset: 1). Refused (> 1) by the deterministic methods.
  std::uint64_t seed = 0;     ///< SID's samplers
  double inner_step_size = 1.0;   ///< SID's η₀ of the inner iteration, in (0, 1]
  double linear_step_size = 1.0;  ///< SID's η₀ of the linear iteration, in (0, 1]
  /// SID: > 0 makes both step sizes decrease as η₀·γ/(γ + s) with this γ; 0: constant.
  double step_decay = 0.0;
  double inner_momentum = 0.0;    ///< SID's heavy-ball μ of the inner iteration, in [0, 1)
  /// AID: stop the linear solver at this residual (zero: run K iterations).
  Tolerance linear_tolerance{};
};

/// A method's name and a one-line description, for listings.
struct MethodInfo {
  std::string name, description;
};

/// True for the ITD names (itd, itd-truncated, itd-checkpointed): methods with no linear
/// system, hence no K and no warm start of v.
bool is_itd(const std::string& name);

/// Every method make_method knows, in the order listings show them: itd, itd-truncated,
/// itd-checkpointed, the AID names (one per built-in linear solver), sid.
const std::vector<MethodInfo>& method_names();

/// Empty when `name` can run on `instance`, otherwise why not (one line naming the
/// problem and what to use instead). ValueError listing the valid names for an unknown one.
/// `episodic`: on the instance's episodic version (its episodes' problems), B units per
/// batched episode.
std::string method_unavailable_reason(const std::string& name, const Instance& instance, bool episodic = false,
                                      std::int64_t meta_batch = 1);

/// Builds the method. Deterministic methods on an instance with a stochastic version are
/// wrapped in bilevel::FullBatchCounted so that their Diagnostics::samples are filled
/// (comparable with SID's). ValueError for an unknown name (listing the valid ones), a
/// method that cannot run on the instance (method_unavailable_reason), a setting the
/// method does not take, or a count out of range.
std::unique_ptr<bilevel::HypergradientMethod> make_method(const MethodConfig& config, const Instance& instance);

/// The episodic hypergradient on the instance's episodic version (Instance::episodic), with
/// the method of `config` on every episode (a fresh one each time: SID gets the episode's
/// seed). Unset counts take the episodic version's defaults; `config.warm_start` must be
/// none (the episodic warm start is `options.warm_start`); SID's batch size is within a unit
/// (0: all its examples). ValueError as make_method, and for an instance with no episodic
/// version.
std::unique_ptr<bilevel::EpisodicHypergradient> make_episodic(const MethodConfig& config, const Instance& instance,
                                                              const bilevel::EpisodicOptions& options);

}  // namespace hyperad::problems
