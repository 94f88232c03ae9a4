#include "hyperad/autodiff/tensor.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <vector>

#include <fmt/format.h>

#include "hyperad/autodiff/record.hpp"
#include "deferred.hpp"
#include "kernels/buffer.hpp"
#include "tape_engine.hpp"

namespace hyperad {

namespace detail {
namespace {
// Serials come in blocks per thread, so that creating a tensor touches no shared cache line.
constexpr std::uint64_t kSerialBlock = 1024;
constinit std::atomic<std::uint64_t> g_serial{1};
struct SerialBlock {
  std::uint64_t next = 0, end = 0;
};
constinit thread_local SerialBlock t_serials{};
std::uint64_t take_serial() {
  if (t_serials.next == t_serials.end) {
    t_serials.next = g_serial.fetch_add(kSerialBlock, std::memory_order_relaxed);
    t_serials.end = t_serials.next + kSerialBlock;
  }
  return t_serials.next++;
}
}  // namespace
Storage::Storage(std::size_t nbytes) : data(kernels::allocate_buffer(nbytes)), bytes(nbytes), serial(take_serial()) {}
std::uint64_t Storage::serial_mark() {
  t_serials = {};  // this thread's next storage takes a new block, which starts at or after the mark
  return g_serial.load(std::memory_order_relaxed);
}
// ---- deferred data (deferred.hpp) ------------------------------------------------------

constinit thread_local Storage* t_deferred = nullptr;
namespace {
// Keeps t_deferred alive until it is computed or claimed; at thread exit it forgets it
// first, so that later thread-local destructors find nothing to compute.
struct DeferredOwner {
  std::shared_ptr<Storage> s;
  ~DeferredOwner() { t_deferred = nullptr; }
};
thread_local DeferredOwner t_deferred_owner;

// Every pending result of every thread, for writers to find those that read their storage.
// An entry is read without a reference to its result (a reference would change the result's
// use count, which a claim on another thread reads). Leaked: threads may defer during exit.
struct RegistryEntry {
  std::weak_ptr<Storage> result;
  std::shared_ptr<Deferred> d;
};
struct Registry {
  std::mutex mutex;
  std::vector<RegistryEntry> entries;  // finished entries are pruned when the list doubles
  std::size_t prune_at = 64;
};
Registry& registry() {
  static Registry* r = new Registry;
  return *r;
}

// The operands' count of pending readers, once per deferred result (holding d's lock, or
// as its last owner); the registry may then forget it.
void release_readers(Deferred& d) {
  if (d.readers_released) return;
  d.readers_released = true;
  for (const Storage* r : d.reads)
    if (r) const_cast<Storage*>(r)->pending_readers.fetch_sub(1, std::memory_order_acq_rel);
  d.done.store(true, std::memory_order_release);
}

// s's data are written (holding its lock): no longer pending, and the operands are let go.
void finish(Storage& s) {
  s.pending.store(false, std::memory_order_release);
  release_readers(*s.deferred);
  s.deferred->a = Tensor(), s.deferred->b = Tensor();
}

void run_deferred(Storage& s) {
  std::lock_guard lock(s.deferred->mutex);
  if (!s.pending.load(std::memory_order_relaxed)) return;  // another thread computed it
  s.deferred->fill(s.deferred->a, s.deferred->b, s.data);  // throws: stays pending
  finish(s);
}
}  // namespace

void complete_deferred(Storage* s) {
  if (t_deferred) {
    const std::shared_ptr<Storage> own = std::move(t_deferred_owner.s);
    t_deferred = nullptr;  // first: the computation's own reads must not come back here
    // Held by the owner alone: nobody can read it, so it is dropped uncomputed (~Storage).
    if (own.use_count() > 1) run_deferred(*own);
  }
  if (s && s->pending.load(std::memory_order_acquire)) run_deferred(*s);
}

void complete_readers(Storage* s) {
  std::vector<std::shared_ptr<Storage>> readers;
  {
    Registry& reg = registry();
    std::lock_guard lock(reg.mutex);
    for (const RegistryEntry& e : reg.entries)
      if (!e.d->done.load(std::memory_order_acquire) && (e.d->reads[0] == s || e.d->reads[1] == s))
        if (std::shared_ptr<Storage> p = e.result.lock()) readers.push_back(std::move(p));
  }
  for (const std::shared_ptr<Storage>& p : readers) run_deferred(*p);
}

Storage::~Storage() {
  if (deferred) {  // the registry may hold `deferred` a while longer: not the operands
    if (pending.load(std::memory_order_acquire)) release_readers(*deferred);
    deferred->a = Tensor(), deferred->b = Tensor();
  }
  kernels::release_buffer(data, bytes);
}

TapeMark Deferral::mark() {
  const Tape& t = Tape::current();
  return {&t, t.num_records(), t.num_variables()};
}

namespace {
// Makes s pending on d: the operands count d among their readers, and the registry lists it
// for writers to find.
void make_pending(const std::shared_ptr<Storage>& s, std::shared_ptr<Deferred> d) {
  const auto* a = static_cast<const Storage*>(d->a.storage_id());
  const auto* b = static_cast<const Storage*>(d->b.storage_id());
  d->reads[0] = a, d->reads[1] = b != a ? b : nullptr;
  for (const Storage* r : d->reads)
    if (r) const_cast<Storage*>(r)->pending_readers.fetch_add(1, std::memory_order_acq_rel);
  s->deferred = d;
  s->pending.store(true, std::memory_order_release);
  Registry& reg = registry();
  std::lock_guard lock(reg.mutex);
  if (reg.entries.size() >= reg.prune_at) {
    std::erase_if(reg.entries, [](const RegistryEntry& e) {
      return e.d->done.load(std::memory_order_acquire) || e.result.expired();
    });
    reg.prune_at = std::max<std::size_t>(64, 2 * reg.entries.size());
  }
  reg.entries.push_back({s, std::move(d)});
}
}  // namespace

void Deferral::defer(Tensor& out, Tensor a, Tensor b, Fill fill, Kind kind, TapeMark before) {
  out.sync();  // computes this thread's previous deferred result
  auto d = std::make_shared<Deferred>();
  d->a = std::move(a), d->b = std::move(b);
  d->fill = std::move(fill), d->kind = kind;
  d->before = before, d->after = mark();
  make_pending(out.storage_, std::move(d));
  t_deferred_owner.s = out.storage_;
  t_deferred = t_deferred_owner.s.get();
}

Tensor Deferral::lazy(const Shape& shape, Dtype dtype, Tensor a, Tensor b, Fill fill, int depth) {
  Tensor out(shape, dtype);
  auto d = std::make_shared<Deferred>();
  d->a = std::move(a), d->b = std::move(b);
  d->fill = std::move(fill), d->kind = Kind::lazy, d->depth = depth;
  make_pending(out.storage_, std::move(d));
  return out;
}

constinit thread_local GradientOnlyScope::State GradientOnlyScope::state_{};

void Deferral::claim(const Tensor& t, Kind kind, DeferredClaim& claim) {
  Storage* s = t.storage_.get();
  // This thread's deferred result, held by t (and t_deferred_owner) alone: nobody else can
  // read it while the claimant writes it.
  if (!s || s != t_deferred || s->deferred->kind != kind || t.storage_.use_count() != 2) return;
  std::unique_lock lock(s->deferred->mutex);
  if (!s->pending.load(std::memory_order_relaxed)) return;  // computed by another thread
  t_deferred = nullptr;  // the claimant's reads of the operands must not compute it
  claim.s_ = t.storage_;
  claim.lock_ = std::move(lock);
}

DeferredClaim::~DeferredClaim() {
  if (!s_ || !s_->pending.load(std::memory_order_relaxed)) return;
  lock_.unlock();
  // Not filled: the result is this thread's deferred one again (t_deferred_owner still holds it).
  if (t_deferred_owner.s == s_) t_deferred = s_.get();
}

void DeferredClaim::drop_records() const {
  const Deferred& d = *s_->deferred;
  Tape& t = Tape::current();
  const TapeMark now = Deferral::mark();
  if (d.after.tape == &t && d.before.tape == &t && now.records == d.after.records &&
      now.variables == d.after.variables && d.before.records <= now.records && d.before.variables <= now.variables &&
      TapeEngine::scope_floor(t) <= d.before.records)
    TapeEngine::rewind(t, d.before.records, d.before.variables);
}

void DeferredClaim::filled() {
  finish(*s_);
  lock_.unlock();
  if (t_deferred_owner.s == s_) t_deferred_owner.s.reset();
}
}  // namespace detail

namespace {
// The storage of a new tensor; running out of memory names the tensor (std::bad_alloc does not).
std::shared_ptr<detail::Storage> allocate(const Shape& shape, Dtype dtype) {
  const auto bytes = static_cast<std::size_t>(shape.numel()) * dtype_size(dtype);
  try {
    return std::make_shared<detail::Storage>(bytes);
  } catch (const std::bad_alloc&) {
    throw Error(fmt::format("Tensor: out of memory allocating {} bytes for a {} tensor of shape {}", bytes,
                            dtype_name(dtype), shape.str()));
  }
}
}  // namespace

Tensor::Tensor(const Shape& shape, Dtype dtype) : storage_(allocate(shape, dtype)), shape_(shape), dtype_(dtype) {}

void Tensor::check_access(Dtype want) const {
  sync();
  if (!storage_) throw ValueError("Tensor: access to the data of an undefined tensor");
  if (want != dtype_)
    throw DtypeError(fmt::format("Tensor: {} data requested from a {} tensor of shape {}", dtype_name(want),
                                 dtype_name(dtype_), shape_.str()));
}

namespace {
double read_at(const Tensor& t, std::int64_t i) {
  return dispatch(t.dtype(), [&]<class T>() { return static_cast<double>(t.data<T>()[i]); });
}

std::int64_t flat_index(const Tensor& t, std::initializer_list<std::int64_t> index, const char* op) {
  if (!t.defined()) throw ValueError(fmt::format("{}: undefined tensor", op));
  const Shape& s = t.shape();
  if (static_cast<int>(index.size()) != s.rank())
    throw ValueError(fmt::format("{}: {} indices given for a tensor of shape {}", op, index.size(), s.str()));
  std::int64_t flat = 0;
  int axis = 0;
  for (std::int64_t i : index) {
    std::int64_t n = s.begin()[axis];
    if (i < 0 || i >= n)
      throw ValueError(fmt::format("{}: index {} out of range for axis {} of shape {}", op, i, axis, s.str()));
    flat = flat * n + i;
    ++axis;
  }
  return flat;
}
}  // namespace

double Tensor::item() const {
  if (!defined() || numel() != 1)
    throw ValueError(fmt::format("Tensor::item: needs a one-element tensor, got shape {}",
                                 defined() ? shape_.str() : "undefined"));
  return read_at(*this, 0);
}

double Tensor::at(std::initializer_list<std::int64_t> index) const {
  return read_at(*this, flat_index(*this, index, "Tensor::at"));
}

void Tensor::set(std::initializer_list<std::int64_t> index, double value) {
  std::int64_t i = flat_index(*this, index, "Tensor::set");
  dispatch(dtype_, [&]<class T>() { mutable_data<T>()[i] = static_cast<T>(value); });
}

std::vector<double> Tensor::to_vector() const {
  if (!defined()) return {};
  std::vector<double> v(static_cast<std::size_t>(numel()));
  dispatch(dtype_, [&]<class T>() {
    const T* p = data<T>();
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>(p[i]);
  });
  return v;
}

Tensor Tensor::detach() const {
  Tensor t = *this;
  t.var_ = {};
  return t;
}

namespace {
const OpDef kCloneOp{"clone", [](Backward& b) { b.accumulate(0, b.grad_out()); }};
const OpDef kCastOp{"to", [](Backward& b) { b.accumulate(0, b.grad_out().to(static_cast<Dtype>(b.integer(0)))); }};
}  // namespace

Tensor Tensor::clone() const {
  if (!defined()) return {};
  Tensor out(shape_, dtype_);
  sync();
  if (nbytes() > 0) std::memcpy(out.storage_->data, storage_->data, nbytes());  // an empty one may hold nullptr
  return record(kCloneOp, std::move(out), {this});
}

Tensor Tensor::to(Dtype dtype) const {
  if (!defined()) throw ValueError("Tensor::to: undefined tensor");
  if (dtype == dtype_) return *this;
  sync();
  Tensor out(shape_, dtype);
  dispatch(dtype_, [&]<class S>() {
    dispatch(dtype, [&]<class D>() {
      const S* s = static_cast<const S*>(storage_->data);
      D* d = static_cast<D*>(out.storage_->data);
      for (std::int64_t i = 0, n = numel(); i < n; ++i) d[i] = static_cast<D>(s[i]);
    });
  });
  OpAttrs attrs;
  attrs.integer[0] = static_cast<std::int64_t>(dtype_);
  return record(kCastOp, std::move(out), {this}, {}, std::move(attrs));
}

bool Tensor::requires_grad() const {
  if (var_.tape == nullptr) return false;
  return detail::TapeEngine::is_live(Tape::current(), var_, "requires_grad", "tensor");
}

Tensor& Tensor::requires_grad_() {
  if (!defined()) throw ValueError("Tensor::requires_grad_: undefined tensor");
  if (!requires_grad()) var_ = detail::TapeEngine::new_leaf(Tape::current());
  return *this;
}

// ---- creation -----------------------------------------------------------------------

Tensor full(const Shape& shape, double value, Dtype dtype) {
  Tensor t(shape, dtype);
  dispatch(dtype, [&]<class T>() {
    T* p = t.mutable_data<T>();
    std::fill(p, p + t.numel(), static_cast<T>(value));
  });
  return t;
}
Tensor zeros(const Shape& shape, Dtype dtype) { return full(shape, 0.0, dtype); }
Tensor ones(const Shape& shape, Dtype dtype) { return full(shape, 1.0, dtype); }
Tensor zeros_like(const Tensor& like) { return full(like.shape(), 0.0, like.dtype()); }
Tensor ones_like(const Tensor& like) { return full(like.shape(), 1.0, like.dtype()); }
Tensor full_like(const Tensor& like, double value) { return full(like.shape(), value, like.dtype()); }
Tensor scalar(double value, Dtype dtype) { return full(Shape{}, value, dtype); }

Tensor arange(double start, double stop, double step, Dtype dtype) {
  if (step == 0.0 || !std::isfinite(start) || !std::isfinite(stop) || !std::isfinite(step))
    throw ValueError(fmt::format("arange: needs finite start/stop and a non-zero step, got ({}, {}, {})", start,
                                 stop, step));
  auto n = static_cast<std::int64_t>(std::ceil((stop - start) / step));
  if (n < 0) n = 0;
  Tensor t(Shape{n}, dtype);
  dispatch(dtype, [&]<class T>() {
    T* p = t.mutable_data<T>();
    for (std::int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(start + static_cast<double>(i) * step);
  });
  return t;
}
Tensor arange(std::int64_t n, Dtype dtype) { return arange(0.0, static_cast<double>(n), 1.0, dtype); }

Tensor eye(std::int64_t n, Dtype dtype) {
  Tensor t = zeros(Shape{n, n}, dtype);
  dispatch(dtype, [&]<class T>() {
    T* p = t.mutable_data<T>();
    for (std::int64_t i = 0; i < n; ++i) p[i * n + i] = T(1);
  });
  return t;
}

Tensor tensor(const std::vector<double>& values, const Shape& shape, Dtype dtype) {
  if (static_cast<std::int64_t>(values.size()) != shape.numel())
    throw ShapeError(fmt::format("tensor: {} values given for shape {} ({} elements)", values.size(),
                                 shape.str(), shape.numel()));
  Tensor t(shape, dtype);
  dispatch(dtype, [&]<class T>() {
    T* p = t.mutable_data<T>();
    for (std::size_t i = 0; i < values.size(); ++i) p[i] = static_cast<T>(values[i]);
  });
  return t;
}

Tensor tensor(std::initializer_list<double> values, Dtype dtype) {
  return tensor(std::vector<double>(values), Shape{static_cast<std::int64_t>(values.size())}, dtype);
}

// ---- random ---------------------------------------------------------------------------

namespace {
std::uint64_t splitmix64(std::uint64_t& x) {
  std::uint64_t z = (x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
}  // namespace

void Generator::seed_with(std::uint64_t seed) {
  for (auto& s : s_) s = splitmix64(seed);
  cached_normal_ = false;
}

std::uint64_t Generator::next_u64() {
  const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const std::uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double Generator::uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

double Generator::normal() {
  if (cached_normal_) {
    cached_normal_ = false;
    return cached_;
  }
  double u1 = 0.0;
  while (u1 <= 0.0) u1 = uniform();
  double u2 = uniform();
  double r = std::sqrt(-2.0 * std::log(u1));
  double a = 2.0 * 3.14159265358979323846 * u2;
  cached_ = r * std::sin(a);
  cached_normal_ = true;
  return r * std::cos(a);
}

std::uint64_t Generator::below(std::uint64_t n) {
  if (n == 0) throw ValueError("Generator::below: n must be positive");
  // Rejection sampling: unbiased and identical on every platform.
  const std::uint64_t limit = ~std::uint64_t{0} - (~std::uint64_t{0} % n);
  std::uint64_t x;
  do x = next_u64();
  while (x >= limit);
  return x % n;
}

Tensor randn(const Shape& shape, Generator& gen, Dtype dtype) {
  Tensor t(shape, dtype);
  dispatch(dtype, [&]<class T>() {
    T* p = t.mutable_data<T>();
    for (std::int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<T>(gen.normal());
  });
  return t;
}

Tensor rand(const Shape& shape, Generator& gen, Dtype dtype) {
  Tensor t(shape, dtype);
  dispatch(dtype, [&]<class T>() {
    T* p = t.mutable_data<T>();
    for (std::int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<T>(gen.uniform());
  });
  return t;
}

}  // namespace hyperad
