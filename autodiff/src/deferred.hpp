#pragma once
// Deferred results: an op may leave its result's data to be computed when they are first
// needed. Two uses:
// - fusion: matmul(X, w) of a matrix and a vector defers X·w; logistic_loss and mse_loss
//   given that product as a temporary run the fused linear-model loss, which reads X once
//   per gradient where the composition reads it twice (ops/linear_model.hpp);
// - values nobody reads: inside gradient_of (a GradientOnlyScope), the fused linear-model
//   loss leaves its value (a log1p per example) to be computed from the kept
//   scores when read, and one-element elementwise ops of such a value (`loss + penalty`)
//   defer theirs too. A gradient map Φ = w − η∇L reads only ∇L, so the values are never
//   computed.
//
// Why no one sees wrong data:
// - reads: a thread has at most one deferred product (detail::t_deferred), and any access
//   to any tensor's data on that thread computes it first (Tensor::sync); a lazy value is
//   computed at the first access to its own data, on any thread; another thread reading a
//   result computes it under the result's lock;
// - writes: each operand's storage counts the pending results that read it, and a write
//   to it, on any thread, computes them first (Tensor::sync_readers, through a registry
//   of pending results). Only a raw pointer obtained before the result was made and
//   written through afterwards escapes this, as it escapes version counters;
// - a lazy value saved by an op for its backward rule is computed when saved (record.cpp),
//   so saved tensors never hold what a lazy value keeps alive (the scores, the labels).
#include <algorithm>
#include <atomic>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>

#include "hyperad/autodiff/ops/linear_model.hpp"
#include "hyperad/autodiff/ops/loss.hpp"
#include "hyperad/autodiff/tape.hpp"
#include "hyperad/autodiff/tensor.hpp"

namespace hyperad::detail {

/// What a deferred result is, for the ops that may take it over.
enum class DeferredKind {
  matrix_vector,  ///< this thread's deferred product (t_deferred), claimable
  lazy,           ///< a value computed when read, never claimed
};

/// A position on a thread's tape.
struct TapeMark {
  const Tape* tape = nullptr;
  std::size_t records = 0, variables = 0;
};

struct Deferred {
  using Fill = std::function<void(const Tensor& a, const Tensor& b, void* out)>;
  std::mutex mutex;
  Tensor a, b;                                ///< the operands, released once the data are computed
  const Storage* reads[2] = {nullptr, nullptr};  ///< their storages (fixed: the registry matches on them)
  Fill fill = nullptr;
  DeferredKind kind = DeferredKind::matrix_vector;
  int depth = 0;  ///< a lazy value: 1 + the largest depth of its lazy operands
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

  /// A new tensor whose data fill(a, b, data) computes at the first access to them (on any
  /// thread), or before the first write to a or b; never if nobody reads them. fill must
  /// write every element and record nothing. `depth`: 1 + the largest lazy_depth of the
  /// operands.
  static Tensor lazy(const Shape& shape, Dtype dtype, Tensor a, Tensor b, Fill fill, int depth = 1);
  /// The depth of t's data if they are a lazy value still to be computed, otherwise 0.
  static int lazy_depth(const Tensor& t) {
    const Storage* s = t.storage_.get();
    if (!s || !s->pending.load(std::memory_order_acquire) || s->deferred->kind != DeferredKind::lazy) return 0;
    return s->deferred->depth;
  }
  /// Computes t's data now if they are pending.
  static void complete(const Tensor& t) { t.sync(); }
};

/// Marks the evaluation of a function only for its gradient (gradient_of): the caller
/// discards its value, and with `first_order` does not differentiate the gradient either.
/// While one is open on this thread, the fused linear-model loss leaves its value lazy
/// (Deferral::lazy), and with first_order does not keep ℓ'' for Hessian-vector products.
/// Nests; the innermost decides.
class GradientOnlyScope {
 public:
  explicit GradientOnlyScope(bool first_order) : outer_(state_) { state_ = {true, first_order}; }
  ~GradientOnlyScope() { state_ = outer_; }
  GradientOnlyScope(const GradientOnlyScope&) = delete;
  GradientOnlyScope& operator=(const GradientOnlyScope&) = delete;
  static bool open() { return state_.open; }
  static bool first_order() { return state_.first_order; }

 private:
  struct State {
    bool open = false, first_order = false;
  };
  State outer_;
  static constinit thread_local State state_;
};

/// The longest chain of lazy values an elementwise op extends; past it, it computes them.
/// Reading a chain recurses through it, and each link holds its inputs.
inline constexpr int kMaxLazyDepth = 8;

/// Inside a GradientOnlyScope, an elementwise op of one-element tensors a (and b), one of
/// them a lazy value, as a lazy value too: `eager(a, b)` computes the op's result once a
/// and b are computed. Undefined otherwise: the op then computes eagerly (reading a lazy
/// operand computes it). The op's functor must hold no reference to the caller's frame.
template <class Eager>
Tensor lazy_elementwise(const Tensor& a, const Tensor& b, Eager eager) {
  const int depth = std::max(Deferral::lazy_depth(a), b.defined() ? Deferral::lazy_depth(b) : 0);
  if (depth == 0 || depth >= kMaxLazyDepth || !GradientOnlyScope::open()) return {};
  if (a.numel() != 1 || (b.defined() && (b.numel() != 1 || b.dtype() != a.dtype()))) return {};
  const Tensor& big = b.defined() && b.rank() > a.rank() ? b : a;  // map_binary's output shape
  return Deferral::lazy(
      big.shape(), a.dtype(), a, b,
      [eager](const Tensor& x, const Tensor& y, void* out) {
        Deferral::complete(x);
        if (y.defined()) Deferral::complete(y);
        const Tensor r = eager(x, y);
        std::memcpy(out, r.raw(), r.nbytes());
      },
      depth + 1);
}

/// linear_model_loss(X, w, y, loss, reduction) when z is this thread's deferred product X·w
/// held by z alone and y has z's shape and dtype, with X·w written into z; undefined
/// otherwise (the caller `op` computes the loss of z, and reports bad input in its words).
/// For logistic_loss and mse_loss of a temporary (ops/linear_model.cpp).
Tensor loss_of_deferred_product(const Tensor& z, const Tensor& y, LinearLoss loss, Reduction reduction,
                                const char* op);

}  // namespace hyperad::detail
