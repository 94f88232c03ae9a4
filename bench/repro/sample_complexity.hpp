#pragma once
// Sample complexity without warm start (Grazzi, Pontil, Salzo, "Bilevel optimization with a
// lower-level contraction: optimal sample complexity without warm-start", JMLR 2023): the
// projected inexact hypergradient method λ_{s+1} = P(λ_s − α h_s) with a constant α and
// hypergradients h_s from SID without warm start reaches an ε-stationary point — the mean
// over its iterates of the squared gradient mapping ‖G_α(λ_s)‖² = ‖(λ_s − P(λ_s −
// α∇f(λ_s)))/α‖² at most ε, i.e. E‖G(λ_R)‖² ≤ ε for an iterate R drawn uniformly — with
// O(ε⁻²) sample-gradients; with deterministic inner iterations, Õ(ε⁻¹).
//
// Why: the mean of ‖G‖² over S steps is about C/S (the descent telescopes: C depends on
// f(λ0) − inf f and α) plus the floor the hypergradient's error leaves (its MSE, O(1/t +
// 1/K + 1/J) with decreasing steps, AISTATS 2021; O(q^{2t}) for the deterministic method).
// The theorem sets S, t, K and J all proportional to 1/ε (deterministic: S ∝ 1/ε, t = K ∝
// log(1/ε)), hence S·(t + K + J) = O(ε⁻²) samples (Õ(ε⁻¹)).
//
// What is measured, on a problem whose exact hypergradient is computable (∇f from a
// converged reference, problems::reference_gradient, its cost counted nowhere):
// - the prescription's constants are measured, not guessed: a pilot run at t_p gives the
//   floor φ(t_p) (the mean of ‖G‖² over the second half of its steps); SID then takes t = K
//   = J = ⌈t_p·φ(t_p)/(share·ε)⌉ (the floor's law φ ∝ 1/t), the deterministic method t = K
//   from two pilots and the law φ ∝ q^{2t}; so the floor is a `share` of ε at every ε;
// - each run steps until the running mean of ‖G_s‖² is at most ε (or a cap of steps), and
//   reports the outer steps S and the sample-gradients consumed (Diagnostics::samples: all
//   of SID's batches and E's gradients; n per full-batch map application);
// - per seed, the log-log slopes of samples, S and t against ε; their mean over seeds with
//   a 95 % Student interval. Also the samples until ‖G_s‖² first falls below ε (the best
//   iterate), which needs no S ∝ 1/ε when the outer problem is benign.
//
// ε is relative: the target for the mean of ‖G_s‖²/‖G(λ0)‖².
//
// Shared by bench/repro/repro_sample_complexity.cpp and the suite's
// tests/problems/test_repro_sample_complexity.cpp (a small form).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "hyperad/bilevel/outer.hpp"
#include "hyperad/problems/methods.hpp"
#include "hyperad/problems/protocol.hpp"
#include "hyperad/problems/registry.hpp"
#include "hyperad/problems/svg_plot.hpp"
#include "repro/common.hpp"

namespace hyperad::repro {

/// The methods compared: SID without warm start (the theorem's), SID warm-starting both the
/// inner solve and the linear system, AID-FP on the full batch without warm start (the
/// theorem's deterministic method), and the control: SID without warm start whose t = K = J
/// stay at the prescription of the largest ε.
enum class Scheme { sid_cold, sid_warm, deterministic, sid_fixed_t };
inline const char* scheme_name(Scheme s) {
  switch (s) {
    case Scheme::sid_cold: return "sid-no-warm";
    case Scheme::sid_warm: return "sid-warm";
    case Scheme::deterministic: return "deterministic";
    case Scheme::sid_fixed_t: return "sid-fixed-t";
  }
  return "?";
}
inline bool is_sid(Scheme s) { return s != Scheme::deterministic; }

struct SampleComplexityConfig {
  std::string name = "poisoning";  ///< a registry problem with a stochastic version
  problems::ProblemConfig problem{.dataset = "digits", .seed = 1,
                                  .options = {{"train_size", "200"}, {"val_size", "100"}, {"test_size", "100"},
                                              {"downsample", "2"}, {"l2", "0.05"}}};
  double alpha = 1000;  ///< the constant outer step, also the gradient mapping's α
  std::vector<Scheme> schemes{Scheme::sid_cold, Scheme::sid_warm, Scheme::deterministic, Scheme::sid_fixed_t};
  std::vector<double> epsilons{0.08, 0.05, 0.03, 0.02, 0.012, 0.008};  ///< relative targets
  int seeds = 5;
  std::int64_t batch = 4;           ///< SID's inner, linear and cross batches
  double eta0 = 1.0, gamma = 100;   ///< SID's decreasing steps η₀γ/(γ + s)
  double share = 0.1;               ///< the floor's share of ε the prescription aims at
  int pilot_steps = 60;             ///< outer steps of each pilot (the floor: its second half)
  int sid_pilot_t = 300;            ///< t_p of SID's pilots
  int det_pilot_t1 = 10, det_pilot_t2 = 20;  ///< the deterministic method's two pilots
  double cap = 10;                  ///< at most ⌈cap/ε⌉ outer steps per run
  int exact_t = 100;                ///< t = K of the (deterministic) run that measures C ...
  std::int64_t exact_steps = 0;     ///< ... and its steps (0: max(500, ⌈2/ε_min⌉))
  std::uint64_t seed = 5;
};

/// One run: a scheme, a seed and a target ε.
struct ComplexityRun {
  Scheme scheme = Scheme::sid_cold;
  int seed = 0;
  double epsilon = 0;
  int t = 0;                    ///< t = K (= J for SID) prescribed for ε
  std::int64_t steps = -1;      ///< outer steps until the mean of ‖G‖² ≤ ε (−1: not within the cap)
  std::int64_t samples = -1;    ///< sample-gradients consumed by then
  std::int64_t first_steps = -1, first_samples = -1;  ///< until ‖G_s‖² ≤ ε first
  std::int64_t theory_steps = 0;  ///< S_C = ⌈C/((1 − share)ε)⌉
  double theory_mean = NAN;       ///< the mean of ‖G_s‖²/‖G0‖² over the first S_C steps
  bool reached() const { return steps > 0; }
};

/// A fitted log-log slope against ε: the mean over seeds with a 95 % Student interval
/// (one value and no interval when the runs do not depend on the seed).
struct ComplexityFit {
  Scheme scheme = Scheme::sid_cold;
  std::string quantity;  ///< "samples", "steps", "t", "first_samples"
  double slope = NAN, lo = NAN, hi = NAN;
  std::vector<double> per_seed;  ///< one slope per seed that reached every ε
  double predicted = NAN;  ///< the theorem's exponent (NaN: none stated)
};

struct SampleComplexityResult {
  std::string name, summary;
  double g0_squared = 0;  ///< ‖G(λ0)‖², the unit of ε
  /// C = Σ_s ‖G_s‖²/‖G0‖² of the method with exact hypergradients (AID-FP, t = K =
  /// exact_t) over exact_steps: with a floor of share·ε, S → C/((1 − share)ε).
  double exact_sum = 0;
  struct Pilot {
    Scheme scheme;
    double floor_coefficient;  ///< SID: t_p·φ(t_p); deterministic: φ(t2) (relative to ‖G0‖²)
    double q2 = NAN;           ///< deterministic: φ's factor per step, q²
  };
  std::vector<Pilot> pilots;
  std::vector<ComplexityRun> runs;
  std::vector<ComplexityFit> fits;
  /// The prescribed t for ε (the pilots' laws).
  int prescribed_t(Scheme s, double epsilon, const SampleComplexityConfig& c) const;
};

namespace detail {

inline ComplexityFit summarize(Scheme scheme, std::string quantity, std::vector<double> per_seed, double predicted) {
  ComplexityFit f{scheme, std::move(quantity), NAN, NAN, NAN, std::move(per_seed), predicted};
  if (f.per_seed.empty()) return f;
  const double n = double(f.per_seed.size());
  double mean = 0;
  for (double v : f.per_seed) mean += v / n;
  f.slope = mean;
  if (f.per_seed.size() > 1) {
    double var = 0;
    for (double v : f.per_seed) var += (v - mean) * (v - mean) / (n - 1);
    const double half = student_975(int(f.per_seed.size()) - 1) * std::sqrt(var / n);
    f.lo = mean - half, f.hi = mean + half;
  }
  return f;
}

}  // namespace detail

inline int SampleComplexityResult::prescribed_t(Scheme s, double epsilon, const SampleComplexityConfig& c) const {
  if (s == Scheme::sid_fixed_t) epsilon = *std::max_element(c.epsilons.begin(), c.epsilons.end());
  for (const Pilot& p : pilots) {
    if (p.scheme != s) continue;
    const double target = c.share * epsilon;
    const double t = is_sid(s) ? p.floor_coefficient / target
                               : c.det_pilot_t2 + std::log(target / p.floor_coefficient) / std::log(p.q2);
    if (!(t < 1e8))
      throw std::runtime_error(fmt::format("{}: the prescription asks for t = {:.3g} at ε = {:g} (pilot {:.3g})",
                                           scheme_name(s), t, epsilon, p.floor_coefficient));
    return std::max(1, static_cast<int>(std::ceil(t)));
  }
  throw std::logic_error("prescribed_t: no pilot for this scheme");
}

/// Runs the pilots, then every scheme × seed × ε, and fits the slopes. Throws
/// std::runtime_error when a pilot's floor does not behave as its law needs (a
/// deterministic floor that does not fall with t).
inline SampleComplexityResult run_sample_complexity(const SampleComplexityConfig& c) {
  if (c.epsilons.size() < 2 || std::any_of(c.epsilons.begin(), c.epsilons.end(), [](double e) { return !(e > 0); }))
    throw std::invalid_argument("run_sample_complexity: at least two targets ε > 0");
  if (c.pilot_steps < 2 || c.seeds < 1 || !(c.share > 0 && c.share < 1) || c.det_pilot_t2 <= c.det_pilot_t1)
    throw std::invalid_argument("run_sample_complexity: pilot_steps >= 2, seeds >= 1, share in (0, 1), t1 < t2");
  const problems::Instance inst = problems::make_problem(c.name, c.problem);
  const bilevel::ReferenceGradient reference = problems::reference_gradient(inst);
  SampleComplexityResult out;
  out.name = c.name;
  out.summary = inst.summary;
  {
    const double g0 =
        bilevel::gradient_mapping_norm(inst.lambda0, reference(inst.lambda0), c.alpha, inst.projections, inst.maximize);
    out.g0_squared = g0 * g0;
  }
  auto method_of = [&](Scheme s, int t, std::uint64_t seed) {
    problems::MethodConfig m{.name = is_sid(s) ? "sid" : "aid-fp", .inner_steps = t, .linear_steps = t,
                             .warm_start = s == Scheme::sid_warm ? bilevel::WarmStart::inner_and_linear
                                                                 : bilevel::WarmStart::none};
    if (is_sid(s)) {
      m.batch_size = c.batch, m.cross_batches = t, m.seed = seed;
      m.inner_step_size = m.linear_step_size = c.eta0;
      m.step_decay = c.gamma;
    }
    return m;
  };
  // Steps until stop(s, ‖G_s‖²/‖G0‖², mean so far) or max_steps; calls each step's record.
  auto run = [&](const problems::MethodConfig& m, std::int64_t max_steps, auto&& on_step) {
    const auto method = problems::make_method(m, inst);
    bilevel::OuterOptimizer opt(inst.problem, *method, inst.lambda0,
                                {.outer_steps = max_steps, .step_size = bilevel::StepSizeSchedule::constant(c.alpha),
                                 .maximize = inst.maximize, .update = bilevel::OuterUpdate::gradient,
                                 .warm_start = m.warm_start, .reference_gradient = reference,
                                 .stationarity_every = 1, .stationarity_step = c.alpha},
                                inst.projections);
    double sum = 0;
    for (std::int64_t s = 0; s < max_steps; ++s) {
      const bilevel::OuterRecord& r = opt.step();
      const double g2 = r.stationarity * r.stationarity / out.g0_squared;
      sum += g2;
      if (on_step(s, g2, sum / double(s + 1), r.total_samples)) return;
    }
  };
  auto pilot_floor = [&](Scheme s, int t) {
    double tail = 0;
    int count = 0;
    run(method_of(s, t, mix_seed(c.seed, std::uint64_t(s), 0x9170)), c.pilot_steps,
        [&](std::int64_t step, double g2, double, std::int64_t) {
          if (step >= c.pilot_steps / 2) tail += g2, ++count;
          return false;
        });
    return tail / count;
  };
  {
    const double eps_min = *std::min_element(c.epsilons.begin(), c.epsilons.end());
    const std::int64_t steps =
        c.exact_steps > 0 ? c.exact_steps : std::max<std::int64_t>(500, std::int64_t(std::ceil(2 / eps_min)));
    run(method_of(Scheme::deterministic, c.exact_t, 0), steps,
        [&](std::int64_t, double g2, double, std::int64_t) {
          out.exact_sum += g2;
          return false;
        });
  }
  for (Scheme s : c.schemes) {
    if (is_sid(s)) {
      const double floor = pilot_floor(s, c.sid_pilot_t);
      if (!(floor > 0 && std::isfinite(floor)))
        throw std::runtime_error(fmt::format("{}: the pilot's floor at t = {} is {}", scheme_name(s), c.sid_pilot_t, floor));
      out.pilots.push_back({s, c.sid_pilot_t * floor});
    } else {
      const double f1 = pilot_floor(s, c.det_pilot_t1), f2 = pilot_floor(s, c.det_pilot_t2);
      const double q2 = std::pow(f2 / f1, 1.0 / (c.det_pilot_t2 - c.det_pilot_t1));
      if (!(q2 < 1) || !(f2 > 0))
        throw std::runtime_error(fmt::format("{}: the deterministic pilots' floors ({:.3g} at t = {}, {:.3g} at t = {}) "
                                             "do not fall with t: raise the pilots' t or lower their floor",
                                             c.name, f1, c.det_pilot_t1, f2, c.det_pilot_t2));
      out.pilots.push_back({s, f2, q2});
    }
  }
  for (Scheme s : c.schemes) {
    const int seeds = is_sid(s) ? c.seeds : 1;  // the deterministic method draws nothing
    for (int seed = 0; seed < seeds; ++seed)
      for (double eps : c.epsilons) {
        ComplexityRun r{s, seed, eps, out.prescribed_t(s, eps, c)};
        r.theory_steps = static_cast<std::int64_t>(std::ceil(out.exact_sum / ((1 - c.share) * eps)));
        const auto cap = std::max(r.theory_steps, static_cast<std::int64_t>(std::ceil(c.cap / eps)));
        run(method_of(s, r.t, mix_seed(c.seed, std::uint64_t(s) * 1000 + std::uint64_t(seed), std::uint64_t(eps * 1e9))),
            cap, [&](std::int64_t step, double g2, double mean, std::int64_t samples) {
              if (r.first_steps < 0 && g2 <= eps) r.first_steps = step + 1, r.first_samples = samples;
              if (step + 1 == r.theory_steps) r.theory_mean = mean;
              if (!r.reached() && mean <= eps) r.steps = step + 1, r.samples = samples;
              return r.reached() && step + 1 >= r.theory_steps;
            });
        out.runs.push_back(r);
      }
  }
  // Slopes per seed that reached every ε (the control has none: its t is not prescribed).
  for (Scheme s : c.schemes) {
    if (s == Scheme::sid_fixed_t) continue;
    std::vector<double> samples, steps, ts, first;
    for (int seed = 0; seed < (is_sid(s) ? c.seeds : 1); ++seed) {
      std::vector<double> e, n, S, t, f;
      bool all = true;
      for (const ComplexityRun& r : out.runs)
        if (r.scheme == s && r.seed == seed) {
          all = all && r.reached();
          e.push_back(r.epsilon), n.push_back(double(r.samples)), S.push_back(double(r.steps)),
              t.push_back(double(r.t)), f.push_back(double(r.first_samples));
        }
      if (!all) continue;
      samples.push_back(log_slope(e, n)), steps.push_back(log_slope(e, S)), ts.push_back(log_slope(e, t)),
          first.push_back(log_slope(e, f));
    }
    out.fits.push_back(detail::summarize(s, "samples", samples, is_sid(s) ? -2.0 : -1.0));
    out.fits.push_back(detail::summarize(s, "steps", steps, -1.0));
    out.fits.push_back(detail::summarize(s, "t", ts, is_sid(s) ? -1.0 : NAN));
    out.fits.push_back(detail::summarize(s, "first_samples", first, NAN));
  }
  return out;
}

/// The fit of `quantity` for scheme `s` (std::logic_error when absent).
inline const ComplexityFit& find_fit(const SampleComplexityResult& r, Scheme s, const std::string& quantity) {
  for (const ComplexityFit& f : r.fits)
    if (f.scheme == s && f.quantity == quantity) return f;
  throw std::logic_error("find_fit: no such fit");
}

/// Rows of bench/results/sample_complexity.csv (no header): problem, scheme, seed,
/// epsilon, t, steps, samples, first_steps, first_samples (−1: not reached), theory_steps,
/// theory_mean (relative to ε).
inline void append_rows(std::vector<std::vector<std::string>>& rows, const SampleComplexityResult& r) {
  for (const ComplexityRun& x : r.runs)
    rows.push_back({r.name, scheme_name(x.scheme), std::to_string(x.seed), g4(x.epsilon), std::to_string(x.t),
                    std::to_string(x.steps), std::to_string(x.samples), std::to_string(x.first_steps),
                    std::to_string(x.first_samples), std::to_string(x.theory_steps), g4(x.theory_mean / x.epsilon)});
}

/// Rows of bench/results/sample_complexity_fits.csv: problem, scheme, quantity, slope,
/// lo95, hi95, predicted, seeds.
inline void append_fit_rows(std::vector<std::vector<std::string>>& rows, const SampleComplexityResult& r) {
  for (const ComplexityFit& f : r.fits)
    rows.push_back({r.name, scheme_name(f.scheme), f.quantity, g4(f.slope), g4(f.lo), g4(f.hi), g4(f.predicted),
                    std::to_string(f.per_seed.size())});
}

/// Samples against ε (log10 on x, log on y): the median over the seeds that reached ε per
/// scheme (a gap where none did), with dashed lines of slopes −2 and −1 through the point of
/// the largest ε of the first SID scheme and of the deterministic one.
inline problems::LinePlot plot_sample_complexity(const SampleComplexityResult& r) {
  problems::LinePlot plot({.title = fmt::format("Sample-gradients to reach mean |G|^2 <= eps ({})", r.name),
                           .x_label = "log10 eps (relative to |G(lambda0)|^2)",
                           .y_label = "sample-gradients",
                           .log_y = true});
  std::vector<problems::PlotSeries> guides;
  std::vector<Scheme> schemes;
  for (const ComplexityRun& x : r.runs)
    if (std::find(schemes.begin(), schemes.end(), x.scheme) == schemes.end()) schemes.push_back(x.scheme);
  bool sid_guide = false;
  for (Scheme s : schemes) {
    problems::PlotSeries line{.label = scheme_name(s), .markers = true};
    std::vector<double> eps;
    for (const ComplexityRun& x : r.runs)
      if (x.scheme == s && std::find(eps.begin(), eps.end(), x.epsilon) == eps.end()) eps.push_back(x.epsilon);
    std::sort(eps.begin(), eps.end());
    for (double e : eps) {
      std::vector<double> n;
      for (const ComplexityRun& x : r.runs)
        if (x.scheme == s && x.epsilon == e && x.reached()) n.push_back(double(x.samples));
      line.x.push_back(std::log10(e));
      line.y.push_back(n.empty() ? NAN : problems::quartiles(n).median);
    }
    const bool guide = is_sid(s) ? !sid_guide : true;
    if (guide && !line.x.empty() && std::isfinite(line.y.back())) {
      const double p = is_sid(s) ? -2.0 : -1.0;
      problems::PlotSeries g{.label = fmt::format("slope {:g}", p), .dashed = true};
      for (double x : line.x) {
        g.x.push_back(x);
        g.y.push_back(line.y.back() * std::pow(10.0, p * (x - line.x.back())));
      }
      guides.push_back(std::move(g));
      sid_guide = sid_guide || is_sid(s);
    }
    plot.add(line);
  }
  for (problems::PlotSeries& g : guides) plot.add(g);
  return plot;
}

}  // namespace hyperad::repro
