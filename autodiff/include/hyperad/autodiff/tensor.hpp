#pragma once
/// \file tensor.hpp
/// `Tensor`: a cheap handle to dense, contiguous, row-major float32/float64 data.
///
/// Copying a Tensor copies the handle, not the data (storage is shared); `clone()` copies
/// the data. A tensor that requires gradients carries an identity on the tape of the
/// thread that created it (see tape.hpp); that identity belongs to the handle, so
/// `x.requires_grad_()` affects `x` and the copies made from it afterwards.
#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <vector>

#include "hyperad/autodiff/dtype.hpp"
#include "hyperad/autodiff/shape.hpp"

namespace hyperad {

class Tape;

namespace detail {
/// Owned, aligned element buffer with a version counter (bumped by every in-place write,
/// so the tape can tell that a tensor saved for backward was overwritten) and a serial
/// number, increasing along each thread's creations, so that the tape can tell the tensors
/// a computation created from those it was given (see Tape::owned_bytes).
struct Deferred;
struct Storage {
  void* data = nullptr;
  std::size_t bytes = 0;
  std::uint64_t version = 0;
  std::uint64_t serial = 0;
  /// True while `deferred` has still to compute the data (a deferred result: see
  /// src/deferred.hpp).
  std::atomic<bool> pending{false};
  /// Deferred results still to be computed that read this storage: a write to it computes
  /// them first, on whichever thread writes.
  std::atomic<std::uint32_t> pending_readers{0};
  std::shared_ptr<Deferred> deferred;  ///< shared with the registry of pending results
  /// A mark in the order of creation: every storage the calling thread creates from now on
  /// has a serial at least this.
  static std::uint64_t serial_mark();
  explicit Storage(std::size_t nbytes);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
};

/// A tensor's identity on a tape: variable `id`, valid while the tape still holds the
/// variable created with generation `gen`.
struct VarRef {
  Tape* tape = nullptr;
  std::uint64_t gen = 0;
  std::uint32_t id = 0;
};
struct TapeEngine;
struct Deferral;

/// The storage whose data this thread deferred last (an op's result computed only when
/// first needed, so that the next op can fuse it into its own pass), or null. Any access
/// to any tensor's data on this thread computes it first.
extern constinit thread_local Storage* t_deferred;
/// Computes t_deferred's data, then s's if they are still pending (deferred on another
/// thread). Called by the accessors only when there is something to compute.
void complete_deferred(Storage* s);
/// Computes every pending result that reads s (before s is written).
void complete_readers(Storage* s);
}  // namespace detail

class Tensor {
 public:
  /// An undefined tensor (no storage); `defined()` is false.
  Tensor() = default;
  /// Uninitialized storage of the given shape and dtype (use the factories below instead).
  Tensor(const Shape& shape, Dtype dtype);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int rank() const { return shape_.rank(); }
  std::int64_t numel() const { return shape_.numel(); }
  /// Extent of `axis` (negative counts from the end).
  std::int64_t size(int axis) const { return shape_[axis]; }
  Dtype dtype() const { return dtype_; }
  std::size_t nbytes() const { return static_cast<std::size_t>(numel()) * dtype_size(dtype_); }

  /// Read-only element pointer; throws DtypeError when T does not match dtype().
  template <class T>
  const T* data() const {
    check_access(dtype_of<T>());
    return static_cast<const T*>(storage_->data);
  }
  /// Writable element pointer; bumps the version counter (in-place write).
  template <class T>
  T* mutable_data() {
    check_access(dtype_of<T>());
    sync_readers();
    ++storage_->version;
    return static_cast<T*>(storage_->data);
  }
  /// Untyped pointers, for kernels that dispatch on dtype themselves.
  const void* raw() const {
    sync();
    return storage_ ? storage_->data : nullptr;
  }
  void* raw_mut() {
    sync();
    sync_readers();
    ++storage_->version;
    return storage_->data;
  }
  /// The identity of the storage (shared by handles and reshaped aliases), for tables
  /// keyed by storage; null for an undefined tensor. Unlike raw(), computes nothing.
  const void* storage_id() const { return storage_.get(); }

  /// The single value of a one-element tensor, as double; throws ValueError otherwise.
  double item() const;
  /// Bounds-checked element read; throws ValueError naming the index and the shape.
  double at(std::initializer_list<std::int64_t> index) const;
  /// Bounds-checked element write (an in-place write: bumps the version counter).
  void set(std::initializer_list<std::int64_t> index, double value);
  /// All elements in row-major order, as double.
  std::vector<double> to_vector() const;

  /// A copy of the data. Differentiable (the identity map) when *this requires gradients.
  Tensor clone() const;
  /// A handle to the same storage that does not require gradients.
  Tensor detach() const;
  /// The data converted to `dtype` (differentiable).
  Tensor to(Dtype dtype) const;

  /// True when this tensor has a live variable on the current thread's tape. Throws
  /// TapeError if its variable was rewound away or belongs to another thread's tape.
  bool requires_grad() const;
  /// Makes this handle a leaf variable on the current thread's tape (no-op if it already
  /// requires gradients). Returns *this.
  Tensor& requires_grad_();
  /// Version counter of the storage (number of in-place writes so far).
  std::uint64_t version() const { return storage_ ? storage_->version : 0; }
  /// True when both handles share storage.
  bool shares_storage(const Tensor& other) const { return storage_ == other.storage_; }
  /// Number of handles sharing this storage.
  long use_count() const { return storage_.use_count(); }

  /// A new handle over the same storage with another shape of equal numel (no checks,
  /// no recording; ops use it to implement reshape).
  Tensor alias_with_shape(const Shape& s) const {
    Tensor t;
    t.storage_ = storage_;
    t.shape_ = s;
    t.dtype_ = dtype_;
    return t;
  }

 private:
  friend struct detail::TapeEngine;  // the tape's engine reads and sets var_
  friend struct detail::Deferral;    // deferred results (tensor.cpp)
  void check_access(Dtype want) const;
  /// Computes deferred data before any access (see detail::t_deferred).
  void sync() const {
    if (detail::t_deferred || (storage_ && storage_->pending.load(std::memory_order_acquire))) [[unlikely]]
      detail::complete_deferred(storage_.get());
  }
  /// Computes the deferred results that read this storage before it is written.
  void sync_readers() {
    if (storage_ && storage_->pending_readers.load(std::memory_order_acquire) != 0) [[unlikely]]
      detail::complete_readers(storage_.get());
  }

  std::shared_ptr<detail::Storage> storage_;
  Shape shape_;
  Dtype dtype_ = Dtype::f64;
  detail::VarRef var_;
};

/// A tuple of tensors: a state, a set of parameters, or their gradients.
using TensorList = std::vector<Tensor>;

// ---- Creation ------------------------------------------------------------------------

/// Tensor of the given shape filled with 0 / 1 / `value`.
Tensor zeros(const Shape& shape, Dtype dtype = Dtype::f64);
Tensor ones(const Shape& shape, Dtype dtype = Dtype::f64);
Tensor full(const Shape& shape, double value, Dtype dtype = Dtype::f64);
/// Shape and dtype of `like`, no gradient identity.
Tensor zeros_like(const Tensor& like);
Tensor ones_like(const Tensor& like);
Tensor full_like(const Tensor& like, double value);
/// A rank-0 tensor holding `value`.
Tensor scalar(double value, Dtype dtype = Dtype::f64);
/// [start, start + step, ...) strictly below `stop` (step may be negative, not zero).
Tensor arange(double start, double stop, double step = 1.0, Dtype dtype = Dtype::f64);
/// 0, 1, ..., n - 1.
Tensor arange(std::int64_t n, Dtype dtype = Dtype::f64);
/// n × n identity.
Tensor eye(std::int64_t n, Dtype dtype = Dtype::f64);
/// A tensor holding `values` (row-major) with `shape`; throws ShapeError when the counts differ.
Tensor tensor(const std::vector<double>& values, const Shape& shape, Dtype dtype = Dtype::f64);
/// A 1-D tensor holding `values`.
Tensor tensor(std::initializer_list<double> values, Dtype dtype = Dtype::f64);

/// Seedable random generator whose streams are identical on every machine
/// (xoshiro256** seeded by splitmix64; normals by the Box–Muller transform).
class Generator {
 public:
  explicit Generator(std::uint64_t seed = 0x5eed) { seed_with(seed); }
  void seed_with(std::uint64_t seed);
  /// Next 64 random bits.
  std::uint64_t next_u64();
  /// Uniform on [0, 1) with 53 random bits.
  double uniform();
  /// Standard normal.
  double normal();
  /// Uniform integer in [0, n).
  std::uint64_t below(std::uint64_t n);
  /// Full state, for save/resume.
  std::array<std::uint64_t, 4> state() const { return s_; }
  void set_state(const std::array<std::uint64_t, 4>& s) { s_ = s; cached_normal_ = false; }

 private:
  std::array<std::uint64_t, 4> s_{};
  bool cached_normal_ = false;
  double cached_ = 0.0;
};

/// Standard normal / uniform [0, 1) samples drawn from `gen`.
Tensor randn(const Shape& shape, Generator& gen, Dtype dtype = Dtype::f64);
Tensor rand(const Shape& shape, Generator& gen, Dtype dtype = Dtype::f64);

}  // namespace hyperad
