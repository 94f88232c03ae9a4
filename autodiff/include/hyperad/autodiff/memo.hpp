#pragma once
/// \file memo.hpp
/// A tensor computed once from some inputs and reused while they stay the same.
///
/// An inner loss evaluated at every inner step often contains a part that depends on λ
/// alone: the features of a learned representation, a kernel matrix of learned widths. A
/// recorded run (ITD, a Hessian-vector product's graph) would compute and record that
/// part at every step, and its reverse sweep would differentiate it at every step too.
/// Computed through a Memo it is recorded once, and the cotangents of all the steps meet
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
/// same shapes and, when an input requires gradients, the same tape variable. So a new
/// leaf over λ's storage, a λ stepped in place, or a scope that rewound λ's variable, all
/// compute the result again.
///
/// A result that is recorded (recording on, some input requiring gradients) is reused
/// only on the thread whose tape holds it and only while its variable is live there: once
/// a TapeScope rewinds it away, the next call computes and records it again. A result
/// computed with nothing recorded is reused by every thread, and also when recording is
/// on but no input requires gradients.
///
/// `compute` must depend on the inputs alone (and on constants): a result that requires
/// gradients although no input does shows that it read another recorded tensor, and
/// `get` throws ValueError rather than return a value whose derivatives would be wrong
/// the next time. A result written in place after it was returned is computed again.
///
/// Thread-safe; `compute` runs outside the lock (two threads may both compute a missing
/// result, one of them is kept). The Memo keeps its inputs' storages alive while it holds
/// their result.
class Memo {
 public:
  Memo();
  ~Memo();
  Memo(const Memo&) = delete;
  Memo& operator=(const Memo&) = delete;

  Tensor get(const TensorList& inputs, const std::function<Tensor()>& compute);

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
