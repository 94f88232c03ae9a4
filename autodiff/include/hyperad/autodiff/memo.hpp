#pragma once
/// \file memo.hpp
/// A tensor computed once from some inputs and reused while they stay the same.
///
/// An inner loss evaluated at every inner step often contains a part that depends on λ
/// alone: the features of a learned representation, a kernel matrix of learned widths. An
/// inner solve would compute it at every step, and a recorded run of t steps (ITD) would
/// also record it t times and differentiate it t times in its reverse sweep. Computed
/// through a Memo it is computed, and recorded, once; the cotangents of all the steps meet
/// at its one variable before a single sweep through it:
///
///     auto memo = std::make_shared<Memo>();
///     auto inner = [=](const TensorList& w, const TensorList& lam) {
///       const Tensor z = memo->get(lam, [&] { return features(X, lam); });
///       return loss(z, w[0]);
///     };
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "hyperad/autodiff/tensor.hpp"

namespace hyperad {

/// Reuses `compute()`'s result while the inputs are the same tensors.
///
/// "The same" means: the same storages, not written in place since (their versions), the
/// same shapes and dtypes and, when an input requires gradients, the same tape variable.
/// So a new leaf over λ's storage, a λ stepped in place, or a scope that rewound λ's
/// variable, all compute the result again.
///
/// Three kinds of results are kept apart, and each serves only calls of its kind:
/// - recorded (recording on, some input requiring gradients): kept per thread, and reused
///   only while its variable is live on that thread's tape (a rewound TapeScope forgets it);
/// - computed with recording on but no input requiring gradients: shared by every thread;
/// - computed with recording off (NoGradGuard): shared by every thread, returned detached.
///
/// `compute` must depend on the inputs alone (and on constants). Where recording shows it,
/// a compute that reads a recorded tensor not among the inputs is refused with ValueError
/// (its result's derivatives would be wrong the next time it is reused): `get` checks the
/// records compute made, and the result itself. Under NoGradGuard nothing is recorded, so
/// nothing can be checked there. A checkpointed reverse sweep (checkpoint.hpp) re-records
/// each step from fresh leaves, so it computes the result again at every step.
///
/// Results are shared: treat them as read-only. A result written in place is not handed
/// out again (the next call computes it), but every holder sees the write.
///
/// Thread-safe; `compute` runs outside the lock (two threads may both compute a missing
/// result, one of them is kept). The Memo holds its inputs' storages and one result of each
/// kind (one recorded result per live thread: a thread's entry goes with its tape) until
/// `clear()` or a newer result replaces it.
class Memo {
 public:
  Memo();
  ~Memo();
  Memo(const Memo&) = delete;
  Memo& operator=(const Memo&) = delete;

  Tensor get(const TensorList& inputs, const std::function<Tensor()>& compute);
  /// Forgets every kept result (and releases the inputs' storages).
  void clear();

  /// Calls of `get` that computed (a miss) and that returned a kept result (a hit).
  std::int64_t misses() const;
  std::int64_t hits() const;

 private:
  struct Entry;
  mutable std::mutex mutex_;
  std::vector<Entry> entries_;  // one unrecorded entry, and one recorded per tape
  std::int64_t misses_ = 0, hits_ = 0;
};

}  // namespace hyperad
