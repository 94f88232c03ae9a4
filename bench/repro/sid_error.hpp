#pragma once
// The mean-square error of SID's stochastic hypergradient against its three counts
// (Grazzi, Pontil, Salzo, "Convergence properties of stochastic hypergradients", AISTATS
// 2021): t inner SGD steps, K steps of the stochastic linear-system iteration, J cross-term
// batches. The paper bounds E‖h − ∇f(λ)‖² by terms O(1/t) + O(1/K) + O(1/J) when the inner
// and linear steps decrease as η₀γ/(γ + s); with constant steps the first two stop
// decreasing at a level set by the step and the gradients' variance.
//
// Each term is measured alone, the other two made exact: for t, SID takes v = v* (the
// linear system's solution at w*, not at w_t) with K = 0 and the cross term on the full
// data, so the error is that of w_t alone; for K, it starts at the exact w* with t = 0; for
// J, at both with t = K = 0, J batches drawn with replacement (so that the J estimates are
// independent). λ is λ0 moved by a seeded perturbation (projected back), so that the inner
// start w0 is not already w*(λ). The error of one call is ‖h − h*‖²/‖h*‖², h* =
// exact_hypergradient (dense LU); the MSE of a point is its mean over `calls` calls of one
// SID (its samplers go on, with replacement, so the calls are independent draws). The slope
// of log MSE against log count is fitted over the last `fit_points` counts (J: all), with a
// 95 % interval from resampling the calls (bootstrap): an interval for the Monte Carlo
// noise inside that window, not for where the asymptotic regime begins.
//
// Shared by bench/repro/repro_sid_error.cpp and the suite's
// tests/problems/test_repro_sid_error.cpp (a small form, which also writes the CSV rows and
// the figures), so neither the numbers nor the figures can rot.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "hyperad/autodiff/ops/elementwise.hpp"
#include "hyperad/bilevel/aid.hpp"
#include "hyperad/bilevel/inner.hpp"
#include "hyperad/bilevel/reference.hpp"
#include "hyperad/bilevel/sid.hpp"
#include "hyperad/bilevel/episodic.hpp"
#include "hyperad/problems/methods.hpp"
#include "hyperad/problems/registry.hpp"
#include "hyperad/problems/svg_plot.hpp"
#include "repro/common.hpp"

namespace hyperad::repro {

enum class Term { inner, linear, cross, batch };  // t, K, J; B (examples per episode)
inline const char* term_name(Term t) {
  return t == Term::inner ? "t" : t == Term::linear ? "K" : t == Term::cross ? "J" : "B";
}

struct SidErrorConfig {
  std::string name = "logreg";  ///< a registry problem with a stochastic version
  problems::ProblemConfig problem{.dataset = "synthetic", .seed = 1,
                                  .options = {{"n", "400"}, {"d", "10"}, {"lambda0", "-1"}}};
  std::int64_t batch = 8;          ///< |ξ| of every sampled part
  double eta0 = 1.0, gamma = 100;  ///< decreasing steps η₀γ/(γ + s)
  double constant = 0.2;           ///< the constant step compared with them
  std::vector<int> counts{10, 30, 100, 300, 1000, 3000};  ///< t and K
  std::vector<int> cross_counts{1, 2, 4, 8, 16, 32};     ///< J
  int calls = 100;                 ///< calls per point
  int fit_points = 3;              ///< the last counts of t and K, where the asymptotic rate shows
  int bootstrap = 200;
  double perturb = 0.3;            ///< λ = P(λ0 + perturb·U(−1, 1)), P the instance's projections
  bool inner_and_linear = true;    ///< measure t and K (both step rules)
  bool cross = true;               ///< measure J
  std::uint64_t seed = 7;
};

struct SidErrorPoint {
  int count = 0;
  std::vector<double> errors;  ///< ‖h − h*‖²/‖h*‖² of each call
  /// Their mean.
  double mse() const {
    double m = 0;
    for (double e : errors) m += e;
    return m / double(errors.size());
  }
};

struct SidErrorSeries {
  Term term = Term::inner;
  bool decreasing = true;  ///< η₀γ/(γ + s), else constant (J and B have no steps: true)
  std::vector<SidErrorPoint> points;
  std::vector<double> predicted;           ///< an exact law's MSE at each point, when one is known
  double slope = NAN, lo = NAN, hi = NAN;  ///< fitted, with its 95 % interval
  int fitted = 0;                          ///< over the last `fitted` points
};

struct SidErrorResult {
  std::string name, summary;
  std::int64_t n_inner = 0;  ///< inner examples
  std::int64_t batch = 0;
  double h_star_norm = 0;
  bool cross_is_exact = false;  ///< ∇_λE = 0 and each λ row read by its own example: see below
  std::vector<SidErrorSeries> series;
};

namespace detail {

inline void fit(SidErrorSeries& s, int fit_points, int bootstrap, std::uint64_t seed) {
  const std::size_t first = s.points.size() > std::size_t(fit_points) ? s.points.size() - fit_points : 0;
  s.fitted = static_cast<int>(s.points.size() - first);
  std::vector<double> x, y;
  for (std::size_t i = first; i < s.points.size(); ++i) {
    x.push_back(s.points[i].count);
    y.push_back(s.points[i].mse());
  }
  s.slope = log_slope(x, y);
  std::mt19937_64 rng(seed);
  std::vector<double> slopes;
  for (int b = 0; b < bootstrap; ++b) {
    std::vector<double> yb;
    for (std::size_t i = first; i < s.points.size(); ++i) {
      const std::vector<double>& e = s.points[i].errors;
      std::uniform_int_distribution<std::size_t> pick(0, e.size() - 1);
      double m = 0;
      for (std::size_t k = 0; k < e.size(); ++k) m += e[pick(rng)];
      yb.push_back(m / double(e.size()));
    }
    slopes.push_back(log_slope(x, yb));
  }
  std::sort(slopes.begin(), slopes.end());
  s.lo = slopes[std::size_t(0.025 * (slopes.size() - 1))];
  s.hi = slopes[std::size_t(0.975 * (slopes.size() - 1))];
}

inline double relative_squared_error(const TensorList& h, const TensorList& ref) {
  const double e = list::relative_error(h, ref);
  return e * e;
}

}  // namespace detail

/// Runs the terms (t and K with decreasing and constant steps, J) on the registry problem
/// `c.name` (one with a stochastic version) and fits their slopes. For the poisoning attack
/// the J term has an exact law, filled in `predicted`: E does not read λ, so h* is the cross
/// term, and each poisoned row's part of it is read by its own training point alone; a batch
/// of b drawn with replacement holds that point N ~ Bin(b, 1/n) times, so the row's estimate
/// is (nN/b)·h*_row and the relative MSE of J batches is (n/b)(1 − 1/n)/J.
inline SidErrorResult run_sid_error(const SidErrorConfig& c) {
  const problems::Instance inst = problems::make_problem(c.name, c.problem);
  const bilevel::StochasticProblem& sp = inst.stochastic.value();
  TensorList lam = inst.lambda0;
  {
    Generator g(c.seed);
    for (std::size_t k = 0; k < lam.size(); ++k) {
      lam[k] = lam[k] + c.perturb * (2.0 * rand(lam[k].shape(), g) - 1.0);
      if (k < inst.projections.size()) lam[k] = inst.projections[k](lam[k]);
    }
  }
  const bilevel::Hypergradient exact = bilevel::exact_hypergradient(inst.problem, lam);
  // w* and v*: the inner problem solved to rounding; v* the fixed point of SID's linear
  // iteration on the full data (AID-FP at w*, to rounding).
  const bilevel::InnerResult inner = bilevel::solve_inner(inst.problem, lam, inst.problem.initial_state(),
                                                          {.max_iterations = 200000, .tolerance = Tolerance::absolute(1e-14)});
  if (!inner.converged) throw std::runtime_error(fmt::format("{}: the inner solve for w* did not converge", c.name));
  bilevel::SID exact_v(sp, {.inner_steps = 0, .linear_steps = 20000, .warm_start = bilevel::WarmStart::inner});
  exact_v.set_warm_state({inner.state, {}});
  const bilevel::Hypergradient at_star = exact_v.hypergradient(lam);
  const TensorList v_star = exact_v.warm_state().linear;
  // h(w*, v*) is the exact hypergradient: checks both.
  if (list::relative_error(at_star.grad, exact.grad) > 1e-9)
    throw std::runtime_error(fmt::format("{}: h(w*, v*) differs from the exact hypergradient by {:.2g}", c.name,
                                         list::relative_error(at_star.grad, exact.grad)));

  SidErrorResult out;
  out.name = c.name;
  out.summary = inst.summary;
  out.n_inner = sp.n_inner();
  out.batch = c.batch;
  out.h_star_norm = list::norm(exact.grad);
  out.cross_is_exact = c.name == "poisoning";
  auto measure = [&](Term term, bool decreasing) {
    SidErrorSeries s{term, decreasing, {}, {}};
    const auto step = decreasing ? bilevel::StepSizeSchedule::inverse(c.eta0, c.gamma)
                                 : bilevel::StepSizeSchedule::constant(c.constant);
    for (int n : term == Term::cross ? c.cross_counts : c.counts) {
      bilevel::SIDOptions o{.inner_steps = 0, .linear_steps = 0, .sampling = bilevel::Sampling::with_replacement,
                            .seed = mix_seed(c.seed, 2 * std::uint64_t(term) + decreasing, std::uint64_t(n))};
      bilevel::WarmState warm;
      if (term == Term::inner) {
        o.inner_steps = n, o.inner_batch = c.batch, o.inner_step = step;
        o.warm_start = bilevel::WarmStart::linear;
        warm.linear = v_star;
      } else if (term == Term::linear) {
        o.linear_steps = n, o.linear_batch = c.batch, o.linear_step = step;
        o.warm_start = bilevel::WarmStart::inner;
        warm.inner = inner.state;
      } else {
        o.cross_batches = n, o.cross_batch = c.batch;
        o.warm_start = bilevel::WarmStart::inner_and_linear;
        warm = {inner.state, v_star};
      }
      bilevel::SID sid(sp, o);
      SidErrorPoint p{n, {}};
      for (int k = 0; k < c.calls; ++k) {
        sid.set_warm_state(warm);
        p.errors.push_back(detail::relative_squared_error(sid.hypergradient(lam).grad, exact.grad));
      }
      if (term == Term::cross && out.cross_is_exact)
        s.predicted.push_back(double(out.n_inner) / double(c.batch) * (1.0 - 1.0 / double(out.n_inner)) / n);
      s.points.push_back(std::move(p));
    }
    const int window = term == Term::cross ? static_cast<int>(s.points.size()) : c.fit_points;
    detail::fit(s, window, c.bootstrap, mix_seed(c.seed, 2 * std::uint64_t(term) + decreasing, 0xb007));
    out.series.push_back(std::move(s));
  };
  if (c.inner_and_linear) {
    measure(Term::inner, true);
    measure(Term::inner, false);
    measure(Term::linear, true);
    measure(Term::linear, false);
  }
  if (c.cross) measure(Term::cross, true);
  return out;
}

// ---- the equilibrium model (JMLR 2023's protocol) --------------------------------------
// Each example's state is its own fixed point, so within an episode nothing is sampled (its
// stochastic problem has one position): SID's t, K and J terms do not exist there. What is
// stochastic is the minibatch: the hypergradient of B examples (each state from 0 by T
// fixed-point steps, K linear-system steps). Its error against the full-data hypergradient
// has two parts: the minibatch, whose MSE for B examples drawn uniformly without
// replacement is exactly σ²/B · (n − B)/(n − 1) (σ²: the per-example hypergradients'
// variance about their mean h*, normalized by n), and the truncation in T = K, geometric in
// a contraction (Φ's matrix on the spectral ball of radius q: O(q^T), O(q^{2T}) squared).

struct EquilibriumErrorConfig {
  problems::ProblemConfig problem{.dataset = "digits", .seed = 1, .options = {{"radius", "0.5"}}};
  std::vector<std::int64_t> batches{10, 20, 50, 100, 200, 500};
  std::vector<int> steps{1, 2, 3, 4, 6, 8};  ///< T = K, on the full data
  int exact_steps = 60;                      ///< T = K of the reference (0.5⁶⁰: exact)
  int calls = 50;                            ///< draws per B, each the first batch of a fresh sampler
  int bootstrap = 200;
  std::uint64_t seed = 11;
};

struct EquilibriumErrorResult {
  std::string summary;
  std::int64_t n = 0;
  double sigma2 = 0;     ///< per-example variance, relative to ‖h*‖²
  SidErrorSeries batch;  ///< MSE against B, `predicted` the law; the slope of MSE·(n − 1)/(n − B)
  std::vector<std::pair<int, double>> truncation;  ///< (T = K, ‖h − h*‖²/‖h*‖²) on the full data
};

inline EquilibriumErrorResult run_equilibrium_error(const EquilibriumErrorConfig& c) {
  const problems::Instance inst = problems::make_problem("equilibrium", c.problem);
  const bilevel::EpisodicProblem& ep = inst.episodic.value().problem;
  const std::int64_t n = ep.population();
  const TensorList lam = inst.lambda0;
  auto method = [&](int steps, std::int64_t batch, std::uint64_t seed) {
    return problems::make_episodic({.name = "aid-fp", .inner_steps = steps, .linear_steps = steps}, inst,
                                   {.meta_batch = batch, .execution = bilevel::Execution::batched, .seed = seed});
  };
  const TensorList h_star = method(c.exact_steps, n, c.seed)->hypergradient(bilevel::full_batch(n), lam).grad;

  EquilibriumErrorResult out;
  out.summary = inst.summary;
  out.n = n;
  {
    const auto one = method(c.exact_steps, 1, c.seed);
    double total = 0;
    for (std::int64_t i = 0; i < n; ++i)
      total += detail::relative_squared_error(one->hypergradient({i}, lam).grad, h_star);
    out.sigma2 = total / double(n);
  }
  out.batch.term = Term::batch;
  for (std::int64_t b : c.batches) {
    SidErrorPoint p{static_cast<int>(b), {}};
    // Each draw from a fresh sampler: within one epoch the batches are disjoint, so
    // successive draws of one sampler would not be independent.
    for (int k = 0; k < c.calls; ++k) {
      const auto m = method(c.exact_steps, b, mix_seed(c.seed, std::uint64_t(b), std::uint64_t(k)));
      p.errors.push_back(detail::relative_squared_error(m->hypergradient(lam).grad, h_star));
    }
    out.batch.points.push_back(std::move(p));
    out.batch.predicted.push_back(out.sigma2 / double(b) * double(n - b) / double(n - 1));
  }
  // The slope of the MSE with the finite-population factor divided out: −1 by the law.
  SidErrorSeries corrected = out.batch;
  for (SidErrorPoint& p : corrected.points) {
    const double f = double(n - 1) / double(n - p.count);
    for (double& e : p.errors) e *= f;
  }
  detail::fit(corrected, static_cast<int>(corrected.points.size()), c.bootstrap, c.seed);
  out.batch.slope = corrected.slope, out.batch.lo = corrected.lo, out.batch.hi = corrected.hi;
  out.batch.fitted = corrected.fitted;
  for (int T : c.steps)
    out.truncation.emplace_back(
        T, detail::relative_squared_error(method(T, n, c.seed)->hypergradient(bilevel::full_batch(n), lam).grad, h_star));
  return out;
}

// ---- outputs: CSV rows and figures (the driver writes them; the test checks them) -------

/// Rows of bench/results/repro_sid_error.csv (no header): problem, term, steps, count,
/// mse, predicted, calls.
inline const char* steps_name(const SidErrorSeries& s) {
  if (s.term == Term::cross || s.term == Term::batch) return "none";
  return s.decreasing ? "decreasing" : "constant";
}

inline void append_rows(std::vector<std::vector<std::string>>& rows, const std::string& problem,
                        const SidErrorSeries& s) {
  for (std::size_t i = 0; i < s.points.size(); ++i)
    rows.push_back({problem, term_name(s.term), steps_name(s), std::to_string(s.points[i].count), g4(s.points[i].mse()),
                    i < s.predicted.size() ? g4(s.predicted[i]) : std::string(),
                    std::to_string(s.points[i].errors.size())});
}

/// True when every point's MSE is below 1e-20: a term with no variance (J on logreg).
inline bool vanishes(const SidErrorSeries& s) {
  return std::all_of(s.points.begin(), s.points.end(), [](const SidErrorPoint& p) { return p.mse() < 1e-20; });
}

/// log MSE against log10 of t, K or J, one line per series (vanishing ones left out, an
/// exact law dashed beside its series).
inline problems::LinePlot plot_terms(const SidErrorResult& r) {
  problems::LinePlot plot({.title = fmt::format("SID: relative MSE of one term ({}, batch {})", r.name, r.batch),
                           .x_label = "log10 of t, K or J (the other two exact)",
                           .y_label = "E|h - h*|^2 / |h*|^2",
                           .log_y = true});
  for (const SidErrorSeries& s : r.series) {
    if (vanishes(s)) continue;
    problems::PlotSeries line{.label = fmt::format("{} ({})", term_name(s.term), steps_name(s)), .markers = true,
                              .dashed = !s.decreasing};
    problems::PlotSeries law{.label = fmt::format("{}: exact law", term_name(s.term)), .dashed = true};
    for (std::size_t i = 0; i < s.points.size(); ++i) {
      line.x.push_back(std::log10(double(s.points[i].count)));
      line.y.push_back(s.points[i].mse());
      if (i < s.predicted.size()) {
        law.x.push_back(line.x.back());
        law.y.push_back(s.predicted[i]);
      }
    }
    plot.add(line);
    if (!law.x.empty()) plot.add(law);
  }
  return plot;
}

inline problems::LinePlot plot_batches(const EquilibriumErrorResult& e) {
  problems::LinePlot plot({.title = fmt::format("Equilibrium model (digits, n = {}): minibatch hypergradient error", e.n),
                           .x_label = "log10 B (examples per step)",
                           .y_label = "E|h - h*|^2 / |h*|^2",
                           .log_y = true});
  problems::PlotSeries measured{.label = "measured", .markers = true},
      law{.label = "sigma^2/B (n - B)/(n - 1)", .dashed = true};
  for (std::size_t i = 0; i < e.batch.points.size(); ++i) {
    measured.x.push_back(std::log10(double(e.batch.points[i].count)));
    measured.y.push_back(e.batch.points[i].mse());
    law.x.push_back(measured.x.back());
    law.y.push_back(e.batch.predicted[i]);
  }
  return std::move(plot.add(measured).add(law));
}

inline problems::LinePlot plot_truncation(const EquilibriumErrorResult& e) {
  problems::LinePlot plot({.title = "Equilibrium model: truncation error of AID-FP against T = K",
                           .x_label = "T = K (fixed-point and linear-system steps)",
                           .y_label = "|h - h*|^2 / |h*|^2",
                           .log_y = true});
  problems::PlotSeries measured{.label = "full data", .markers = true},
      bound{.label = "0.25^T from T = 1 (radius 0.5, squared)", .dashed = true};
  for (auto [T, err] : e.truncation) {
    measured.x.push_back(T);
    measured.y.push_back(err);
    bound.x.push_back(T);
    bound.y.push_back(e.truncation.front().second * std::pow(0.25, T - e.truncation.front().first));
  }
  return std::move(plot.add(measured).add(bound));
}

}  // namespace hyperad::repro
