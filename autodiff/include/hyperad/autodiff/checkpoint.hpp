#pragma once
/// \file checkpoint.hpp
/// `checkpointed_loop`: w_n = step^n(w0) as ONE tape record whose backward is the exact
/// reverse of the unrolled loop (as if every step had been recorded) while storing only
/// some of the states w_i and recomputing the others.
///
/// The forward pass runs the n steps without recording and keeps the states the policy
/// asks for. The backward pass walks the steps from last to first: it re-runs the steps
/// it needs from the nearest stored state, records step i alone on a nested tape scope
/// (`vjp`), pulls the cotangent of w_{i+1} back to w_i and the params, rewinds, and goes
/// on. Parameter gradients are summed over the steps. The tape therefore never holds more
/// than one step; memory is the stored states.
///
/// Policies:
/// - `store_all()`: every state w_0 … w_{n−1}; no recomputation.
/// - `every_k(k)`: w_0, w_k, w_2k, … plus every state of the last segment; each earlier
///   segment is recomputed once (k − 1 steps) into a buffer of k states, so about
///   ⌈n/k⌉ + k − 1 states are held at the peak.
/// - `binomial(s)`: Griewank's binomial checkpointing ("revolve"): s snapshots (w0 is the
///   first) placed by the optimal schedule, plus the final state w_{n−1}. The number of
///   untaped step evaluations, forward and backward together, is the minimum p(n, s) of
///   `binomial_checkpoint_cost` plus one (the forward pass also computes w_n).
///
/// Stored states are released while the backward pass walks down (so memory falls as it
/// goes). A second backward through the same record first replays the forward pass from
/// w0 to restore them (counted as recomputation).
///
/// Second order (create_graph) through checkpointed_loop is not supported: its backward
/// throws TapeError. `step` and what it captures must stay alive until the last backward;
/// w0 and params must not be modified in place before it (TapeError otherwise). Only w0
/// and params are differentiated; tensors `step` captures are constants.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "hyperad/autodiff/tensor.hpp"

namespace hyperad {

/// One step of the loop: (w, params) → w', tensors of w's shapes and dtypes.
using StepFn = std::function<TensorList(const TensorList& w, const TensorList& params)>;

/// Which states the forward pass stores.
struct CheckpointPolicy {
  enum class Kind { store_all, every_k, binomial };
  Kind kind = Kind::store_all;
  std::int64_t value = 1;  ///< k of every_k, s of binomial

  static CheckpointPolicy store_all() { return {Kind::store_all, 1}; }
  static CheckpointPolicy every_k(std::int64_t k) { return {Kind::every_k, k}; }
  static CheckpointPolicy binomial(std::int64_t snapshots) { return {Kind::binomial, snapshots}; }
  /// "store_all", "every_k(10)", "binomial(7)".
  std::string str() const;
};

/// Counters of one checkpointed_loop call. Forward fields are set when it returns; the
/// backward ones by each backward pass through its record (the last one wins).
struct CheckpointReport {
  std::int64_t n_steps = 0;
  std::int64_t forward_steps = 0;     ///< step evaluations of the forward pass (n_steps)
  std::int64_t recomputed_steps = 0;  ///< untaped step evaluations in the last backward
  std::int64_t taped_steps = 0;       ///< steps recorded (and pulled back) in the last backward
  std::int64_t peak_stored_states = 0;  ///< most state tuples held at once (w0 counted)
  std::size_t peak_stored_bytes = 0;    ///< their bytes
  int backward_calls = 0;
};
/// A live view of a call's report.
using CheckpointStats = std::shared_ptr<const CheckpointReport>;

/// w_n = step^n_steps(w0) with the given checkpointing policy (see the file comment).
/// n_steps = 0 returns w0. `stats`, if given, receives the live report.
TensorList checkpointed_loop(const StepFn& step, const TensorList& w0, const TensorList& params,
                             std::int64_t n_steps, const CheckpointPolicy& policy = CheckpointPolicy::store_all(),
                             CheckpointStats* stats = nullptr);

/// Griewank's optimum p(n, s): the fewest step evaluations without taping (the first
/// forward sweep included) needed to reverse n steps from w0 with s snapshots, when each
/// step is also evaluated once with taping. With t the integer such that
/// C(s+t−1, s) < n ≤ C(s+t, s): p(n, s) = t·n − C(s+t, t−1). (p(n, 1) = n(n−1)/2;
/// p(n, s) = n − 1 when s ≥ n − 1.) Saturates at INT64_MAX/2 for absurd inputs.
std::int64_t binomial_checkpoint_cost(std::int64_t n_steps, std::int64_t snapshots);

}  // namespace hyperad
