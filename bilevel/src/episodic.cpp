#include "hyperad/bilevel/episodic.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <exception>
#include <map>

#include <fmt/format.h>

#include "hyperad/autodiff/errors.hpp"
#include "hyperad/autodiff/ops/elementwise.hpp"
#include "hyperad/autodiff/runtime.hpp"
#include "hyperad/bilevel/sid.hpp"
#include "call_meter.hpp"
#include "episode_wire.hpp"

namespace hyperad::bilevel {

namespace {

const char* const kWho = "EpisodicHypergradient";
// Tags the random-state words (format version 2: the kept v is each unit's own). Version 1
// kept a batched episode's v divided by its size; such a state is refused for batched runs
// with warm starts (per-unit runs kept the same v in both versions).
constexpr std::uint64_t kWordsMagic = 0x4550495344450002ULL, kWordsMagicV1 = 0x4550495344450001ULL;

bool same_rows(const Tensor& a, const Tensor& b) {
  if (a.rank() != b.rank() || a.dtype() != b.dtype()) return false;
  for (int k = 1; k < a.rank(); ++k)
    if (a.size(k) != b.size(k)) return false;
  return true;
}

// "[r…]" of a tensor with a leading unit axis.
std::string row_shape(const Tensor& t) {
  std::string s;
  for (int k = 1; k < t.rank(); ++k) s += (s.empty() ? "" : ", ") + std::to_string(t.size(k));
  return fmt::format("[{}] {}", s, dtype_name(t.dtype()));
}

// Copies row `from` of `src` to row `to` of `dst` (tensors of equal rows, leading unit axis).
void copy_row(const Tensor& src, std::int64_t from, Tensor& dst, std::int64_t to) {
  const std::size_t n = dst.nbytes() / static_cast<std::size_t>(dst.size(0));
  std::memcpy(static_cast<char*>(dst.raw_mut()) + static_cast<std::size_t>(to) * n,
              static_cast<const char*>(src.raw()) + static_cast<std::size_t>(from) * n, n);
}

// A tensor of `rows` rows shaped like the rows of `like`.
Tensor with_rows(const Tensor& like, std::int64_t rows) {
  std::vector<std::int64_t> dims{rows};
  for (int k = 1; k < like.rank(); ++k) dims.push_back(like.size(k));
  return zeros(Shape(dims), like.dtype());
}

// "task 3", "tasks 3, 8, 11", "examples 3, 8, 11, … (100)".
std::string units_text(const std::string& unit, const Batch& ids) {
  std::string s;
  for (std::size_t i = 0; i < std::min<std::size_t>(ids.size(), 5); ++i) s += (i ? ", " : "") + std::to_string(ids[i]);
  if (ids.size() > 5) s += fmt::format(", … ({})", ids.size());
  return fmt::format("{}{} {}", unit, ids.size() == 1 ? "" : "s", s);
}

void check_episode(const Episode& e, const Batch& units, const std::string& unit, const TensorList* rows_like) {
  const TensorList& s = e.problem.initial_state();
  const auto c = static_cast<std::int64_t>(units.size());
  for (std::size_t k = 0; k < s.size(); ++k) {
    if (s[k].rank() < 1 || s[k].size(0) != c)
      throw ShapeError(fmt::format("EpisodicProblem: the episode of {} has inner-state tensor {} of shape {}; its "
                                   "leading axis must hold one row per {} ({})",
                                   units_text(unit, units), k, s[k].shape().str(), unit, c));
    if (rows_like && (rows_like->size() != s.size() || !same_rows(s[k], (*rows_like)[k])))
      throw ShapeError(fmt::format("EpisodicProblem: the episode of {} has inner-state rows {} in tensor {}, unit 0's "
                                   "are {}; every {} must have the same state shapes",
                                   units_text(unit, units), row_shape(s[k]), k,
                                   k < rows_like->size() ? row_shape((*rows_like)[k]) : "absent", unit));
  }
  if (e.inner_examples < 1 || e.outer_examples < 1)
    throw ValueError(fmt::format("EpisodicProblem: the episode of {} gives {} inner and {} outer examples per {} "
                                 "(each must be >= 1)",
                                 units_text(unit, units), e.inner_examples, e.outer_examples, unit));
  if (e.stochastic) {
    if (e.stochastic->n_inner() != e.inner_examples || e.stochastic->n_outer() != e.outer_examples)
      throw ValueError(fmt::format("EpisodicProblem: the episode's stochastic version indexes {} inner and {} outer "
                                   "positions, but a {} has {} and {} examples",
                                   e.stochastic->n_inner(), e.stochastic->n_outer(), unit, e.inner_examples,
                                   e.outer_examples));
    list::require_like(e.stochastic->initial_state(), s, "EpisodicProblem: the stochastic version's initial state");
  }
}

// The same exception with "<where>: " in front of its message, its type kept (a derived
// type listed before its base); other exceptions as they are.
template <class E, class... Others>
std::exception_ptr retyped(const std::exception_ptr& error, const std::string& where) {
  try {
    std::rethrow_exception(error);
  } catch (const E& e) {
    return std::make_exception_ptr(E(where + ": " + e.what()));
  } catch (...) {
    if constexpr (sizeof...(Others) > 0) return retyped<Others...>(error, where);
    return error;
  }
}

std::exception_ptr in_context(const std::exception_ptr& error, const std::string& where) {
  return retyped<UntrustedError, ConvergenceError, ShapeError, DtypeError, ValueError, TapeError, NonFiniteError>(
      error, where);
}

void scale_counts(SampleCounts& c, std::int64_t k) {
  c.inner *= k;
  c.linear *= k;
  c.cross *= k;
  c.outer *= k;
}

}  // namespace

// ---- EpisodicProblem --------------------------------------------------------------------

EpisodicProblem::EpisodicProblem(std::int64_t population, Builder build, std::string unit, std::string description)
    : population_(population),
      build_(std::make_shared<const Builder>(std::move(build))),
      unit_(std::move(unit)),
      description_(std::move(description)) {
  if (population < 0)
    throw ValueError(fmt::format("EpisodicProblem: the population must be >= 0 (0: unbounded), got {}", population));
  if (!*build_) throw ValueError("EpisodicProblem: no builder given");
  if (unit_.empty()) unit_ = "unit";
  const Batch first{0};
  const Episode probe = (*build_)(first);
  check_episode(probe, first, unit_, nullptr);
  unit_state_ = list::detach(probe.problem.initial_state());
}

Episode EpisodicProblem::episode(const Batch& units) const {
  if (units.empty()) throw ValueError(fmt::format("EpisodicProblem: an episode needs at least one {}", unit_));
  for (std::int64_t u : units)
    if (u < 0 || (bounded() && u >= population_))
      throw ValueError(fmt::format("EpisodicProblem: {} id {} is outside {}", unit_, u,
                                   bounded() ? fmt::format("[0, {}) (the population)", population_)
                                             : std::string("[0, ∞)")));
  Episode e = (*build_)(units);
  check_episode(e, units, unit_, &unit_state_);
  return e;
}

// ---- EpisodicHypergradient ----------------------------------------------------------------

struct EpisodicHypergradient::Result {
  Hypergradient h;
  TensorList w, v;  // the episode's final state and linear-system solution (warm starts only)
  std::exception_ptr error;
};

struct EpisodicHypergradient::Part {
  Batch units;
  std::int64_t first;
};

void EpisodicHypergradient::exchange_outcomes(const Batch& units, std::vector<Part>& parts,
                                              std::vector<Result>& results) const {
  const auto count = static_cast<std::int64_t>(units.size());
  // Each process's bytes begin with a fingerprint of the meta-batch it was given, so that
  // every process sees it when they disagree (not only those whose units were replaced).
  const auto print_of = [](const Batch& b) {
    std::uint64_t h = 0xcbf29ce484222325ULL ^ b.size();
    for (std::int64_t u : b) h = (h ^ static_cast<std::uint64_t>(u)) * 0x100000001b3ULL;
    return h;
  };
  const std::uint64_t print = print_of(units);
  std::string mine(reinterpret_cast<const char*>(&print), sizeof print);
  for (std::size_t i = 0; i < parts.size(); ++i)
    detail::pack({parts[i].units, parts[i].first, results[i].h, results[i].w, results[i].v, results[i].error}, mine);
  const std::vector<std::string> all = options_.exchange->all_gather(mine);
  parts.clear();
  results.clear();
  std::int64_t next = 0;  // the next position expected
  for (std::size_t q = 0; q < all.size(); ++q) {
    const std::string source = fmt::format("process {} of {}", q, options_.exchange->describe());
    std::uint64_t theirs = 0;
    if (all[q].size() >= sizeof theirs) std::memcpy(&theirs, all[q].data(), sizeof theirs);
    if (all[q].size() < sizeof theirs || theirs != print)
      throw ValueError(fmt::format("{}: {} was given another meta-batch than this process's {}: the processes drew "
                                   "different meta-batches (give them the same seed and state, and the same units)",
                                   kWho, source, units_text(problem_.unit(), units)));
    for (std::size_t pos = sizeof theirs; pos < all[q].size();) {
      detail::EpisodeOutcome o = detail::unpack(all[q], pos, source);
      if (o.first != next || o.units.empty() || next + static_cast<std::int64_t>(o.units.size()) > count)
        throw ValueError(fmt::format("{}: {} sent the episode at position {} ({} units) where position {} of {} was due",
                                     kWho, source, o.first, o.units.size(), next, count));
      if (!std::equal(o.units.begin(), o.units.end(), units.begin() + next))
        throw ValueError(fmt::format("{}: {} computed {} at position {}, where this process's meta-batch has {}: the "
                                     "processes drew different meta-batches (give them the same seed and state)",
                                     kWho, source, units_text(problem_.unit(), o.units), next,
                                     units_text(problem_.unit(), Batch(units.begin() + next,
                                                                       units.begin() + next + std::int64_t(o.units.size())))));
      next += static_cast<std::int64_t>(o.units.size());
      parts.push_back({std::move(o.units), o.first});
      results.push_back({std::move(o.h), std::move(o.w), std::move(o.v), o.error});
    }
  }
  if (next != count)
    throw ValueError(fmt::format("{}: the processes of {} computed {} of the meta-batch's {} positions", kWho,
                                 options_.exchange->describe(), next, count));
}

EpisodicHypergradient::EpisodicHypergradient(EpisodicProblem problem, EpisodeMethodFactory method,
                                             EpisodicOptions options)
    : problem_(std::move(problem)), factory_(std::move(method)), options_(options) {
  const EpisodicOptions& o = options_;
  const std::string& unit = problem_.unit();
  if (!factory_) throw ValueError(fmt::format("{}: no method factory given", kWho));
  if (o.meta_batch < 1) throw ValueError(fmt::format("{}: the meta-batch must be >= 1, got {}", kWho, o.meta_batch));
  if (problem_.bounded()) {
    if (o.meta_batch > problem_.population())
      throw ValueError(fmt::format("{}: the meta-batch {} exceeds the population of {} {}s", kWho, o.meta_batch,
                                   problem_.population(), unit));
    sampler_.emplace(problem_.population(), o.sampling, mix_seed(o.seed, 0x756e697473ULL));
  } else if (o.sampling == Sampling::with_replacement) {
    throw ValueError(fmt::format("{}: sampling with replacement needs a bounded population; this problem draws a "
                                 "fresh {} every time",
                                 kWho, unit));
  } else if (o.warm_start == EpisodeWarmStart::full) {
    throw ValueError(fmt::format("{}: warm start 'full' keeps one state per {} and needs a bounded population, but "
                                 "this problem draws a fresh {} every time; use 'naive' or 'none', or a finite pool "
                                 "of {}s",
                                 kWho, unit, unit, unit));
  }
  const Episode probe = problem_.episode({0});
  const std::unique_ptr<HypergradientMethod> m = factory_(probe, 0);
  if (!m) throw ValueError(fmt::format("{}: the method factory returned no method", kWho));
  method_name_ = m->name();
}

std::string EpisodicHypergradient::name() const {
  return fmt::format("{} over {}s (meta-batch {}, warm start {}, {}{})", method_name_, problem_.unit(),
                     options_.meta_batch, episode_warm_start_name(options_.warm_start),
                     execution_name(options_.execution),
                     options_.exchange ? ", shared by " + options_.exchange->describe() : std::string());
}

std::vector<std::pair<std::string, std::string>> EpisodicHypergradient::config() const {
  const EpisodicOptions& o = options_;
  const std::string population = problem_.bounded()
                                     ? fmt::format("drawn {} from {}", sampling_name(o.sampling), problem_.population())
                                     : std::string("fresh each draw");
  return {{"episodes", fmt::format("{} {}s per step, {}", o.meta_batch, problem_.unit(), population)},
          {"episode warm start", episode_warm_start_name(o.warm_start)},
          // sequential and threaded give the same numbers; batched may differ by rounding
          // (a batch per process when shared: its rounding depends on the processes)
          {"episode execution", o.execution != Execution::batched ? std::string("per unit")
                                : o.exchange ? "batched, shared by " + o.exchange->describe()
                                             : std::string("batched")},
          {"episode seed", fmt::format("{}", o.seed)}};
}

void EpisodicHypergradient::set_iterations(const IterationCounts& counts) {
  const auto same = [](const IterationCounts& a, const IterationCounts& b) {
    return a.inner_steps == b.inner_steps && a.linear_steps == b.linear_steps && a.cross_batches == b.cross_batches;
  };
  // Counts a method refuses are refused here, not in the middle of a meta-batch (checked once per new value).
  if (counts.any() && !same(counts, counts_)) factory_(problem_.episode({0}), 0)->set_iterations(counts);
  counts_ = counts;
}

Batch EpisodicHypergradient::draw() {
  ++draws_;
  if (sampler_) return sampler_->next(options_.meta_batch);
  Batch b(static_cast<std::size_t>(options_.meta_batch));
  for (auto& u : b) u = next_id_++;
  return b;
}

Hypergradient EpisodicHypergradient::hypergradient(const TensorList& lambda) { return hypergradient(draw(), lambda); }

TensorList EpisodicHypergradient::start_rows(const Batch& units, std::int64_t first, bool linear,
                                             const TensorList& w0) const {
  const TensorList& buffer = linear ? buffer_v_ : buffer_w_;
  if (buffer.empty()) return {};
  std::vector<std::int64_t> source(units.size(), -1);
  bool any = false;
  for (std::size_t j = 0; j < units.size(); ++j) {
    const std::int64_t from = options_.warm_start == EpisodeWarmStart::full
                                  ? (!held_.empty() && held_[static_cast<std::size_t>(units[j])] ? units[j] : -1)
                                  : (first + static_cast<std::int64_t>(j) < buffered_units_ ? first + std::int64_t(j) : -1);
    source[j] = from;
    any = any || from >= 0;
  }
  if (!any) return {};
  TensorList out;
  for (std::size_t k = 0; k < w0.size(); ++k) {
    Tensor t = linear ? zeros_like(w0[k]) : w0[k].detach().clone();
    for (std::size_t j = 0; j < units.size(); ++j)
      if (source[j] >= 0) copy_row(buffer[k], source[j], t, static_cast<std::int64_t>(j));
    // v is kept per unit (keep()); an episode of c units, whose E is their mean, has v/c.
    if (linear && units.size() > 1) t = t * (1.0 / static_cast<double>(units.size()));
    out.push_back(t);
  }
  return out;
}

void EpisodicHypergradient::run_episode(const Batch& units, std::int64_t first, const TensorList& lambda,
                                        Result& out) const {
  const Episode e = problem_.episode(units);
  const std::unique_ptr<HypergradientMethod> m =
      factory_(e, mix_seed(options_.seed, static_cast<std::uint64_t>(batches_), static_cast<std::uint64_t>(first)));
  if (!m) throw ValueError(fmt::format("{}: the method factory returned no method", kWho));
  if (counts_.any()) m->set_iterations(counts_);
  const bool warm = options_.warm_start != EpisodeWarmStart::none;
  if (warm) {
    TensorList w = start_rows(units, first, false, e.problem.initial_state());
    TensorList v = m->has_linear_system() ? start_rows(units, first, true, e.problem.initial_state()) : TensorList{};
    if (!w.empty()) {
      m->set_warm_start(v.empty() ? WarmStart::inner : WarmStart::inner_and_linear);
      m->set_warm_state({std::move(w), std::move(v)});
    }
  }
  out.h = m->hypergradient(e.problem, lambda);
  if (warm) {
    WarmState ws = m->warm_state();
    if (ws.inner.empty())
      throw ValueError(fmt::format("{}: warm start '{}' keeps each {}'s solution, but {} gives none (warm_state)", kWho,
                                   episode_warm_start_name(options_.warm_start), problem_.unit(), m->name()));
    out.w = std::move(ws.inner);
    out.v = std::move(ws.linear);
  }
  Diagnostics& d = out.h.diagnostics;
  const auto c = static_cast<std::int64_t>(units.size());
  if (d.sample_counts.total() > 0) {
    scale_counts(d.sample_counts, c);  // positions shared by the episode's units (SID)
  } else {
    try {
      d.sample_counts = full_batch_samples(d, e.inner_examples * c, e.outer_examples * c);
    } catch (const ValueError&) {
      d.warnings.push_back(fmt::format("samples not counted: {} neither counts its own nor is ITD or AID", m->name()));
    }
  }
  d.samples = d.sample_counts.total();
}

void EpisodicHypergradient::keep(const Batch& units, std::int64_t first, const TensorList& w, const TensorList& v) {
  const bool full = options_.warm_start == EpisodeWarmStart::full;
  const TensorList& rows = problem_.unit_state();
  const std::int64_t slots = full ? problem_.population() : options_.meta_batch;
  // Rows of `from` into the buffer's slots; no `from` (a method that fell back to v = 0)
  // zeroes the slots, so the next start is cold rather than an older state.
  auto store = [&](TensorList& buffer, const TensorList& from) {
    if (from.empty() && buffer.empty()) return;
    if (buffer.empty())
      for (const Tensor& r : rows) buffer.push_back(with_rows(r, slots));
    for (std::size_t k = 0; k < buffer.size(); ++k) {
      const Tensor zero = from.empty() ? with_rows(rows[k], 1) : Tensor();
      for (std::size_t j = 0; j < units.size(); ++j)
        copy_row(from.empty() ? zero : from[k], from.empty() ? 0 : static_cast<std::int64_t>(j), buffer[k],
                 full ? units[j] : first + std::int64_t(j));
    }
  };
  store(buffer_w_, w);
  // v of an episode of c units, whose E is the mean of theirs, is 1/c of each unit's own v:
  // kept per unit, so that a start from it fits an episode of any size (and execution).
  TensorList per_unit = v;
  if (units.size() > 1)
    for (Tensor& t : per_unit) t = t * static_cast<double>(units.size());
  store(buffer_v_, per_unit);
  if (full) {
    if (held_.empty()) held_.assign(static_cast<std::size_t>(problem_.population()), false);
    for (std::int64_t u : units) held_[static_cast<std::size_t>(u)] = true;
  }
}

Hypergradient EpisodicHypergradient::hypergradient(const Batch& units, const TensorList& lambda) {
  const detail::CallClock clock;  // one thread plan for the meta-batch: the episodes' calls join it
  if (units.empty()) throw ValueError(fmt::format("{}: an empty meta-batch", kWho));
  if (options_.warm_start == EpisodeWarmStart::naive && static_cast<std::int64_t>(units.size()) > options_.meta_batch)
    throw ValueError(fmt::format("{}: a meta-batch of {} {}s exceeds the configured meta-batch {} (the naive warm "
                                 "start keeps that many states)",
                                 kWho, units.size(), problem_.unit(), options_.meta_batch));

  // The episodes: all units at once, or one each.
  // With an exchange, this process computes its share of the positions only.
  const auto count = static_cast<std::int64_t>(units.size());
  const auto [lo, hi] = options_.exchange ? options_.exchange->share(count) : std::pair<std::int64_t, std::int64_t>{0, count};
  if (lo < 0 || hi < lo || hi > count)
    throw ValueError(fmt::format("{}: the unit exchange ({}) gave this process positions [{}, {}) of a meta-batch of {}",
                                 kWho, options_.exchange->describe(), lo, hi, count));
  std::vector<Part> parts;
  if (options_.execution == Execution::batched) {
    if (hi > lo) parts.push_back({Batch(units.begin() + lo, units.begin() + hi), lo});
  } else {
    for (std::int64_t j = lo; j < hi; ++j) parts.push_back({{units[static_cast<std::size_t>(j)]}, j});
  }
  std::vector<Result> results(parts.size());
  auto run = [&](std::size_t i) {
    try {
      run_episode(parts[i].units, parts[i].first, lambda, results[i]);
    } catch (...) {
      results[i].error = in_context(std::current_exception(), units_text(problem_.unit(), parts[i].units));
    }
  };
  const auto n = static_cast<std::int64_t>(parts.size());
  if (options_.execution == Execution::threaded && n > 1) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(runtime::num_threads())
    for (std::int64_t i = 0; i < n; ++i) run(static_cast<std::size_t>(i));
  } else {
    for (std::int64_t i = 0; i < n; ++i) run(static_cast<std::size_t>(i));
  }
  if (options_.exchange) exchange_outcomes(units, parts, results);
  for (const Result& r : results)  // the first failure in unit order, whatever the thread or process count
    if (r.error) std::rethrow_exception(r.error);

  // The mean over units, summed in unit order (threaded = sequential, bit for bit).
  Hypergradient h;
  Diagnostics& d = h.diagnostics;
  d.method = method_name_;
  const double B = static_cast<double>(units.size());
  std::map<std::string, Batch> warned;  // message → units, in order of first appearance below
  std::vector<std::string> warned_order;
  std::vector<std::pair<Doubt, std::string>> concern_order;
  std::map<std::pair<Doubt, std::string>, Batch> concerned;
  double worst = -1;
  for (std::size_t i = 0; i < results.size(); ++i) {
    const Hypergradient& r = results[i].h;
    const Diagnostics& rd = r.diagnostics;
    const double weight = static_cast<double>(parts[i].units.size()) / B;
    if (h.grad.empty()) h.grad = list::zeros_like(list::detach(r.grad));
    list::axpy(weight, r.grad, h.grad);
    h.objective += weight * r.objective;
    d.inner_steps = std::max(d.inner_steps, rd.inner_steps);
    d.inner_step_norm = std::max(d.inner_step_norm, rd.inner_step_norm);
    d.reverse_steps = std::max(d.reverse_steps, rd.reverse_steps);
    d.recomputed_steps = std::max(d.recomputed_steps, rd.recomputed_steps);
    d.peak_stored_bytes = std::max(d.peak_stored_bytes, rd.peak_stored_bytes);
    d.peak_tape_bytes = std::max(d.peak_tape_bytes, rd.peak_tape_bytes);
    d.peak_referenced_bytes = std::max(d.peak_referenced_bytes, rd.peak_referenced_bytes);
    const double rel = rd.linear.relative_residual();
    const double badness = std::isnan(rel) ? (rd.linear.solver.empty() ? -1.0 : INFINITY) : rel;
    if (badness > worst) {
      worst = badness;
      d.linear = rd.linear;
    }
    d.sample_counts.inner += rd.sample_counts.inner;
    d.sample_counts.linear += rd.sample_counts.linear;
    d.sample_counts.cross += rd.sample_counts.cross;
    d.sample_counts.outer += rd.sample_counts.outer;
    for (const Concern& c : rd.concerns) {
      const auto key = std::make_pair(c.doubt, c.message);
      auto [it, fresh] = concerned.try_emplace(key);
      if (fresh) concern_order.push_back(key);
      it->second.insert(it->second.end(), parts[i].units.begin(), parts[i].units.end());
    }
    for (const std::string& w : rd.warnings) {
      if (std::any_of(rd.concerns.begin(), rd.concerns.end(), [&](const Concern& c) { return c.message == w; })) continue;
      auto [it, fresh] = warned.try_emplace(w);
      if (fresh) warned_order.push_back(w);
      it->second.insert(it->second.end(), parts[i].units.begin(), parts[i].units.end());
    }
  }
  for (const auto& key : concern_order)
    d.raise(key.first, units_text(problem_.unit(), concerned[key]) + ": " + key.second);
  for (const std::string& w : warned_order) d.warnings.push_back(units_text(problem_.unit(), warned[w]) + ": " + w);
  d.samples = d.sample_counts.total();
  clock.finish(d);
  // Strict: refused before anything is kept (the meta-batch drawn is consumed, nothing else).
  if (strict_ && !d.trusted()) {
    std::string why;
    for (const Concern& c : d.concerns) why += (why.empty() ? "" : "; ") + c.message;
    throw UntrustedError(fmt::format("{}: the hypergradient cannot be trusted: {}", name(), why));
  }

  // Warm starts for the next meta-batch: every episode read the buffers above, now they are updated.
  if (options_.warm_start != EpisodeWarmStart::none) {
    for (std::size_t i = 0; i < results.size(); ++i) keep(parts[i].units, parts[i].first, results[i].w, results[i].v);
    if (options_.warm_start == EpisodeWarmStart::naive) buffered_units_ = static_cast<std::int64_t>(units.size());
  }
  last_units_ = units;
  ++batches_;
  return h;
}

// ---- save / resume ------------------------------------------------------------------------

WarmState EpisodicHypergradient::warm_state() const { return {list::clone(buffer_w_), list::clone(buffer_v_)}; }

void EpisodicHypergradient::set_warm_state(const WarmState& s) {
  const TensorList& rows = problem_.unit_state();
  const bool full = options_.warm_start == EpisodeWarmStart::full;
  const std::int64_t slots = full ? problem_.population() : options_.meta_batch;
  auto check = [&](const TensorList& b, const char* what) {
    if (b.empty()) return;
    if (options_.warm_start == EpisodeWarmStart::none)
      throw ValueError(fmt::format("{}: a {} buffer was given, but the warm start is 'none'", kWho, what));
    if (b.size() != rows.size())
      throw ValueError(fmt::format("{}: the {} buffer has {} tensors, the inner state {}", kWho, what, b.size(),
                                   rows.size()));
    for (std::size_t k = 0; k < b.size(); ++k)
      if (!b[k].defined() || b[k].rank() != rows[k].rank() || b[k].size(0) != slots || !same_rows(b[k], rows[k]))
        throw ValueError(fmt::format("{}: {} buffer tensor {} has shape {}, expected {} rows of {}", kWho, what, k,
                                     b[k].defined() ? b[k].shape().str() : "undefined", slots, row_shape(rows[k])));
  };
  check(s.inner, "warm w");
  check(s.linear, "warm v");
  if (s.inner.empty() && !s.linear.empty())
    throw ValueError(fmt::format("{}: a warm v buffer without a warm w buffer", kWho));
  buffer_w_ = list::clone(list::detach(s.inner));  // written in place later: not the caller's storage
  buffer_v_ = list::clone(list::detach(s.linear));
  // Until import_random_state says which units the buffers hold: all of them (full), the
  // whole last meta-batch (naive).
  held_.clear();
  buffered_units_ = 0;
  if (!buffer_w_.empty()) {
    if (full) held_.assign(static_cast<std::size_t>(problem_.population()), true);
    else buffered_units_ = options_.meta_batch;
  }
}

std::vector<std::uint64_t> EpisodicHypergradient::export_random_state() const {
  std::vector<std::uint64_t> out{kWordsMagic, static_cast<std::uint64_t>(problem_.population()),
                                 sampler_ ? 1ULL : 0ULL};
  if (sampler_) append_sampler_words(out, sampler_->state());
  for (std::int64_t x : {next_id_, draws_, batches_, buffered_units_}) out.push_back(static_cast<std::uint64_t>(x));
  const std::size_t words = held_.empty() ? 0 : (held_.size() + 63) / 64;
  out.push_back(words);
  for (std::size_t w = 0; w < words; ++w) {
    std::uint64_t bits = 0;
    for (std::size_t b = 0; b < 64 && 64 * w + b < held_.size(); ++b)
      if (held_[64 * w + b]) bits |= 1ULL << b;
    out.push_back(bits);
  }
  return out;
}

void EpisodicHypergradient::import_random_state(const std::vector<std::uint64_t>& in) {
  std::size_t at = 0;
  auto word = [&]() {
    if (at >= in.size()) throw ValueError(fmt::format("{}: the random state ends early ({} words)", kWho, in.size()));
    return in[at++];
  };
  const std::uint64_t magic = word();
  if (magic != kWordsMagic && magic != kWordsMagicV1)
    throw ValueError(fmt::format("{}: the random state is not an episodic one", kWho));
  if (magic == kWordsMagicV1 && options_.execution == Execution::batched &&
      options_.warm_start != EpisodeWarmStart::none)
    throw ValueError(fmt::format("{}: the state was saved by an older hyperad, whose batched warm start kept each "
                                 "episode's v divided by its size; resume it with sequential execution, or start afresh",
                                 kWho));
  if (static_cast<std::int64_t>(word()) != problem_.population())
    throw ValueError(fmt::format("{}: the random state is for another population (this one has {} {}s)", kWho,
                                 problem_.population(), problem_.unit()));
  const bool has_sampler = word() != 0;
  if (has_sampler != sampler_.has_value())
    throw ValueError(fmt::format("{}: the random state's sampler does not fit this population", kWho));
  std::optional<BatchSampler> sampler = sampler_;
  if (sampler) sampler->set_state(read_sampler_words(in, at, kWho));
  std::int64_t counters[4];
  for (auto& c : counters) {
    c = static_cast<std::int64_t>(word());
    if (c < 0) throw ValueError(fmt::format("{}: the random state holds a negative counter", kWho));
  }
  const std::uint64_t words = word();
  const bool full = options_.warm_start == EpisodeWarmStart::full;
  const std::uint64_t expected = full && !buffer_w_.empty() ? (static_cast<std::uint64_t>(problem_.population()) + 63) / 64 : 0;
  if (words != expected)
    throw ValueError(fmt::format("{}: the random state marks {} words of held {}s, {} expected with these buffers",
                                 kWho, words, problem_.unit(), expected));
  std::vector<bool> held;
  if (words > 0) held.assign(static_cast<std::size_t>(problem_.population()), false);
  for (std::uint64_t w = 0; w < words; ++w) {
    const std::uint64_t bits = word();
    for (std::size_t b = 0; b < 64; ++b) {
      const std::size_t u = 64 * w + b;
      if (u < held.size()) held[u] = (bits >> b) & 1ULL;
      else if ((bits >> b) & 1ULL) throw ValueError(fmt::format("{}: the random state marks a {} past the population", kWho, problem_.unit()));
    }
  }
  if (at != in.size())
    throw ValueError(fmt::format("{}: the random state has {} words, {} expected", kWho, in.size(), at));
  const std::int64_t buffered = counters[3];
  if (buffered > (options_.warm_start == EpisodeWarmStart::naive && !buffer_w_.empty() ? options_.meta_batch : 0))
    throw ValueError(fmt::format("{}: the random state holds {} buffered {}s, which these buffers cannot", kWho,
                                 buffered, problem_.unit()));
  sampler_ = std::move(sampler);
  next_id_ = counters[0];
  draws_ = counters[1];
  batches_ = counters[2];
  buffered_units_ = buffered;
  held_ = std::move(held);
}

void EpisodicHypergradient::restore(const WarmState& s, const std::vector<std::uint64_t>& words) {
  TensorList w = buffer_w_, v = buffer_v_;
  std::vector<bool> held = held_;
  const std::int64_t buffered = buffered_units_;
  try {
    set_warm_state(s);
    import_random_state(words);
  } catch (...) {  // nothing changed: the buffers and counters as they were
    buffer_w_ = std::move(w), buffer_v_ = std::move(v), held_ = std::move(held), buffered_units_ = buffered;
    throw;
  }
}

void EpisodicHypergradient::reset() {
  buffer_w_.clear();
  buffer_v_.clear();
  held_.clear();
  buffered_units_ = 0;
}

EpisodeMethodFactory sid_per_episode(SIDOptions options) {
  return [options](const Episode& e, std::uint64_t seed) -> std::unique_ptr<HypergradientMethod> {
    if (!e.stochastic)
      throw ValueError("SID over episodes: this episodic problem has no stochastic version (Episode::stochastic)");
    SIDOptions o = options;
    o.seed = seed;
    o.warm_start = WarmStart::none;  // the episodic driver decides the starts
    return std::make_unique<SID>(*e.stochastic, o);
  };
}

}  // namespace hyperad::bilevel
