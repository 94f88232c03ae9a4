#include "episode_wire.hpp"

#include <cstring>
#include <type_traits>

#include <fmt/format.h>

#include "hyperad/autodiff/errors.hpp"

namespace hyperad::bilevel::detail {

namespace {

// The last enumerators (the wire refuses codes past them): keep in step with the enums.
static_assert(kDoubtNames.size() == 4 && kDoubtNames.back().value == Doubt::non_finite);

// ---- writing ------------------------------------------------------------------------------

template <class T>
void put(std::string& b, const T& v) {
  static_assert(std::is_trivially_copyable_v<T>);
  b.append(reinterpret_cast<const char*>(&v), sizeof v);
}

void put(std::string& b, const std::string& s) {
  put(b, static_cast<std::uint64_t>(s.size()));
  b.append(s);
}

void put(std::string& b, const std::vector<std::string>& v) {
  put(b, static_cast<std::uint64_t>(v.size()));
  for (const std::string& s : v) put(b, s);
}

void put(std::string& b, const TensorList& list) {
  put(b, static_cast<std::uint64_t>(list.size()));
  for (const Tensor& t : list) {
    put(b, static_cast<std::int32_t>(t.dtype()));
    put(b, static_cast<std::int32_t>(t.rank()));
    for (int k = 0; k < t.rank(); ++k) put(b, t.size(k));
    b.append(static_cast<const char*>(t.raw()), t.nbytes());
  }
}

// The error's kind (the types an episode's failure keeps, most derived first) and message.
enum class Kind : std::int32_t { none, untrusted, convergence, shape, dtype, value, tape, non_finite, error, other };

std::pair<Kind, std::string> describe(const std::exception_ptr& e) {
  if (!e) return {Kind::none, {}};
  try {
    std::rethrow_exception(e);
  } catch (const UntrustedError& x) {
    return {Kind::untrusted, x.what()};
  } catch (const ConvergenceError& x) {
    return {Kind::convergence, x.what()};
  } catch (const ShapeError& x) {
    return {Kind::shape, x.what()};
  } catch (const DtypeError& x) {
    return {Kind::dtype, x.what()};
  } catch (const ValueError& x) {
    return {Kind::value, x.what()};
  } catch (const TapeError& x) {
    return {Kind::tape, x.what()};
  } catch (const NonFiniteError& x) {
    return {Kind::non_finite, x.what()};
  } catch (const Error& x) {
    return {Kind::error, x.what()};
  } catch (const std::exception& x) {
    return {Kind::other, x.what()};
  } catch (...) {
    return {Kind::other, "an exception that is not a std::exception"};
  }
}

std::exception_ptr rebuild(Kind k, const std::string& m) {
  switch (k) {
    case Kind::none: return nullptr;
    case Kind::untrusted: return std::make_exception_ptr(UntrustedError(m));
    case Kind::convergence: return std::make_exception_ptr(ConvergenceError(m));
    case Kind::shape: return std::make_exception_ptr(ShapeError(m));
    case Kind::dtype: return std::make_exception_ptr(DtypeError(m));
    case Kind::value: return std::make_exception_ptr(ValueError(m));
    case Kind::tape: return std::make_exception_ptr(TapeError(m));
    case Kind::non_finite: return std::make_exception_ptr(NonFiniteError(m));
    case Kind::error: return std::make_exception_ptr(Error(m));
    case Kind::other: return std::make_exception_ptr(std::runtime_error(m));
  }
  return std::make_exception_ptr(std::runtime_error(m));
}

// ---- reading ------------------------------------------------------------------------------

struct Reader {
  const std::string& b;
  std::size_t& pos;
  const std::string& what;

  void need(std::size_t n) const {
    if (n > b.size() - pos)
      throw ValueError(fmt::format("EpisodicHypergradient: the episode outcomes from {} end after {} of {} bytes",
                                   what, pos, b.size()));
  }
  template <class T>
  T get() {
    need(sizeof(T));
    T v;
    std::memcpy(&v, b.data() + pos, sizeof v);
    pos += sizeof v;
    return v;
  }
  std::string text() {
    const auto n = get<std::uint64_t>();
    need(n);
    std::string s = b.substr(pos, n);
    pos += n;
    return s;
  }
  // A count of items, each at least `least` bytes: checked against what is left before
  // anything is allocated for it.
  std::size_t count(std::size_t least) {
    const auto n = get<std::uint64_t>();
    if (n > (b.size() - pos) / least)
      throw ValueError(fmt::format("EpisodicHypergradient: the episode outcomes from {} announce {} items at byte {}, "
                                   "more than the {} bytes left hold",
                                   what, n, pos, b.size() - pos));
    return static_cast<std::size_t>(n);
  }
  template <class E>
  E code(std::int32_t last, const char* name) {
    const auto c = get<std::int32_t>();
    if (c < 0 || c > last)
      throw ValueError(fmt::format("EpisodicHypergradient: the episode outcomes from {} hold {} code {} at byte {}",
                                   what, name, c, pos));
    return static_cast<E>(c);
  }
  std::vector<std::string> texts() {
    std::vector<std::string> v(count(sizeof(std::uint64_t)));
    for (std::string& s : v) s = text();
    return v;
  }
  TensorList tensors() {
    TensorList list(count(2 * sizeof(std::int32_t)));
    for (Tensor& t : list) {
      const auto dtype = get<std::int32_t>(), rank = get<std::int32_t>();
      if ((dtype != static_cast<std::int32_t>(Dtype::f32) && dtype != static_cast<std::int32_t>(Dtype::f64)) || rank < 0 ||
          rank > kMaxRank)
        throw ValueError(fmt::format("EpisodicHypergradient: the episode outcomes from {} hold a tensor of dtype code {} "
                                     "and rank {} at byte {}",
                                     what, dtype, rank, pos));
      std::vector<std::int64_t> dims(static_cast<std::size_t>(rank));
      for (auto& d : dims) d = get<std::int64_t>();
      t = Tensor(Shape(dims), static_cast<Dtype>(dtype));
      need(t.nbytes());
      std::memcpy(t.raw_mut(), b.data() + pos, t.nbytes());
      pos += t.nbytes();
    }
    return list;
  }
};

}  // namespace

void pack(const EpisodeOutcome& o, std::string& b) {
  put(b, static_cast<std::uint64_t>(o.units.size()));
  for (std::int64_t u : o.units) put(b, u);
  put(b, o.first);
  const auto [kind, message] = describe(o.error);
  put(b, static_cast<std::int32_t>(kind));
  put(b, message);
  if (o.error) return;
  put(b, o.h.grad);
  put(b, o.h.objective);
  const Diagnostics& d = o.h.diagnostics;
  put(b, d.method);
  put(b, d.inner_steps), put(b, d.inner_step_norm), put(b, d.inner_error), put(b, d.error_estimate);
  put(b, d.reverse_steps), put(b, d.recomputed_steps), put(b, d.peak_stored_bytes);
  const linsolve::Report& l = d.linear;
  put(b, l.solver), put(b, static_cast<std::int32_t>(l.status)), put(b, l.iterations), put(b, l.products);
  put(b, l.iteration_cost), put(b, l.residual), put(b, l.rhs_norm), put(b, l.tolerance), put(b, l.reason);
  put(b, l.warnings);
  put(b, d.seconds), put(b, d.threads), put(b, d.parallel_stalls), put(b, d.peak_tape_bytes);
  put(b, d.peak_referenced_bytes), put(b, d.warnings);
  put(b, static_cast<std::uint64_t>(d.concerns.size()));
  for (const Concern& c : d.concerns) put(b, static_cast<std::int32_t>(c.doubt)), put(b, c.message);
  put(b, d.samples);
  put(b, d.sample_counts.inner), put(b, d.sample_counts.linear), put(b, d.sample_counts.cross);
  put(b, d.sample_counts.outer);
  put(b, o.w);
  put(b, o.v);
}

EpisodeOutcome unpack(const std::string& bytes, std::size_t& pos, const std::string& what) {
  Reader r{bytes, pos, what};
  EpisodeOutcome o;
  o.units.resize(r.count(sizeof(std::int64_t)));
  for (std::int64_t& u : o.units) u = r.get<std::int64_t>();
  o.first = r.get<std::int64_t>();
  const auto kind = r.get<std::int32_t>();
  if (kind < 0 || kind > static_cast<std::int32_t>(Kind::other))
    throw ValueError(fmt::format("EpisodicHypergradient: the episode outcomes from {} hold error kind {}", what, kind));
  const std::string message = r.text();
  o.error = rebuild(static_cast<Kind>(kind), message);
  if (o.error) return o;
  o.h.grad = r.tensors();
  o.h.objective = r.get<double>();
  Diagnostics& d = o.h.diagnostics;
  d.method = r.text();
  d.inner_steps = r.get<int>(), d.inner_step_norm = r.get<double>(), d.inner_error = r.get<double>();
  d.error_estimate = r.get<double>();
  d.reverse_steps = r.get<int>(), d.recomputed_steps = r.get<std::int64_t>(), d.peak_stored_bytes = r.get<std::size_t>();
  linsolve::Report& l = d.linear;
  l.solver = r.text();
  l.status = r.code<linsolve::Status>(static_cast<std::int32_t>(linsolve::Status::diverged), "solver status");
  l.iterations = r.get<int>();
  l.products = r.get<int>(), l.iteration_cost = r.get<int>(), l.residual = r.get<double>();
  l.rhs_norm = r.get<double>(), l.tolerance = r.get<double>(), l.reason = r.text();
  l.warnings = r.texts();
  d.seconds = r.get<double>(), d.threads = r.get<int>(), d.parallel_stalls = r.get<std::uint64_t>();
  d.peak_tape_bytes = r.get<std::size_t>(), d.peak_referenced_bytes = r.get<std::size_t>(), d.warnings = r.texts();
  d.concerns.resize(r.count(sizeof(std::int32_t) + sizeof(std::uint64_t)));
  for (Concern& c : d.concerns) {
    c.doubt = r.code<Doubt>(static_cast<std::int32_t>(Doubt::non_finite), "doubt");
    c.message = r.text();
  }
  d.samples = r.get<std::int64_t>();
  d.sample_counts.inner = r.get<std::int64_t>(), d.sample_counts.linear = r.get<std::int64_t>();
  d.sample_counts.cross = r.get<std::int64_t>(), d.sample_counts.outer = r.get<std::int64_t>();
  o.w = r.tensors();
  o.v = r.tensors();
  return o;
}

}  // namespace hyperad::bilevel::detail
