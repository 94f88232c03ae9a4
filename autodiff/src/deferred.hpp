#pragma once
// Deferred results: an op may leave its result's data to be computed when they are first
// needed, so that the next op can compute them inside its own pass instead. The one user:
// matmul(X, w) of a matrix and a vector defers X·w; logistic_loss and mse_loss given that
// product as a temporary run the fused linear-model loss, which reads X once per gradient
// where the composition reads it twice (ops/linear_model.hpp).
//
// Why no one sees wrong data:
// - reads: a thread has at most one deferred result (detail::t_deferred), and any access
//   to any tensor's data on that thread computes it first (Tensor::sync); another thread
//   reading the result computes it under the result's lock;
// - writes: each operand's storage counts the pending results that read it, and a write
//   to it, on any thread, computes them first (Tensor::sync_readers, through a registry
//   of pending results). Only a raw pointer obtained before the product was made and
//   written through afterwards escapes this, as it escapes version counters.
#include <atomic>
#include <memory>
#include <mutex>

#include "hyperad/autodiff/ops/linear_model.hpp"
#include "hyperad/autodiff/ops/loss.hpp"
#include "hyperad/autodiff/tape.hpp"
#include "hyperad/autodiff/tensor.hpp"

namespace hyperad::detail {

/// What a deferred result is, for the ops that may take it over.
enum class DeferredKind { matrix_vector };

/// A position on a thread's tape.
struct TapeMark {
  const Tape* tape = nullptr;
  std::size_t records = 0, variables = 0;
};

struct Deferred {
  using Fill = void (*)(const Tensor& a, const Tensor& b, void* out);
  std::mutex mutex;
  Tensor a, b;                                ///< the operands, released once the data are computed
  const Storage* reads[2] = {nullptr, nullptr};  ///< their storages (fixed: the registry matches on them)
  Fill fill = nullptr;
  DeferredKind kind = DeferredKind::matrix_vector;
  TapeMark before, after;  ///< the tape around the deferring op's records
  bool readers_released = false;
  /// Set once the result is computed, filled or freed: the registry then forgets it
  /// without taking a reference to the result (which would change its use count).
  std::atomic<bool> done{false};
};

struct Deferral;

/// The exclusive right to fill a deferred result instead of its own computation: holds the
/// result's lock (another thread reading it waits). Empty when the result was not this
/// thread's deferred result of the wanted kind, held by the caller's handle alone, and
/// still pending. Dropped without filled(), the result stays pending and this thread's.
class DeferredClaim {
 public:
  DeferredClaim() = default;
  DeferredClaim(DeferredClaim&&) = delete;
  ~DeferredClaim();
  explicit operator bool() const { return s_ != nullptr; }
  const Tensor& a() const { return s_->deferred->a; }
  const Tensor& b() const { return s_->deferred->b; }
  /// The result's buffer, for the claimant to write every element of.
  void* data() const { return s_->data; }
  /// Rewinds the records the deferring op made if they are still the last on this thread's
  /// tape and no TapeScope opened since: the claimant records their replacement (a claimed
  /// result has no other reader, so they would never be swept). Its variable is then stale.
  void drop_records() const;
  /// The data are written: the result is no longer pending.
  void filled();

 private:
  friend struct Deferral;
  std::shared_ptr<Storage> s_;
  std::unique_lock<std::mutex> lock_;
};

struct Deferral {
  using Fill = Deferred::Fill;
  using Kind = DeferredKind;
  /// The current tape's position.
  static TapeMark mark();
  /// Leaves out's data to fill(a, b, data), computed at the next data access on this thread,
  /// the first access to out's data on any thread, or the first write to a or b. out must
  /// be fresh (no reader yet); `before`: the tape's position before the op recorded out.
  static void defer(Tensor& out, Tensor a, Tensor b, Fill fill, Kind kind, TapeMark before);
  /// Claims t (see DeferredClaim); `claim` is empty when t cannot be claimed.
  static void claim(const Tensor& t, Kind kind, DeferredClaim& claim);
};

/// linear_model_loss(X, w, y, loss, reduction) when z is this thread's deferred product X·w
/// held by z alone and y has z's shape and dtype, with X·w written into z; undefined
/// otherwise (the caller `op` computes the loss of z, and reports bad input in its words).
/// For logistic_loss and mse_loss of a temporary (ops/linear_model.cpp).
Tensor loss_of_deferred_product(const Tensor& z, const Tensor& y, LinearLoss loss, Reduction reduction,
                                const char* op);

}  // namespace hyperad::detail
