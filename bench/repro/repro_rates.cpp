// Reproduces the iteration-complexity picture of Grazzi et al. 2020, "On the Iteration
// Complexity of Hypergradient Computation" (ICML), on the registry's problems:
//   1. relative error ‖h − h*‖/‖h*‖ against t = K (inner steps = linear / reverse
//      iterations) for ITD, AID-FP and AID-CG (AID-GMRES and AID-normal-CG on the
//      non-symmetric equilibrium map), with h* = exact_hypergradient (dense LU); linear
//      rates fitted to log(error) and set beside the contraction factor q of ∂_wΦ(w*);
//   2. AID's two error terms: error against t at fixed K and against K at fixed t (AID-FP,
//      AID-CG), each curve levelling off at the plateau set by the other count.
//
//   repro_rates [--tmax N]   writes bench/results/repro_rates.csv and
//                            docs/figures/rates_<problem>.svg, aid_terms_<problem>_{t,K}.svg
#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bench_util.hpp"
#include "hyperad/bilevel/aid.hpp"
#include "hyperad/bilevel/inner.hpp"
#include "hyperad/bilevel/itd.hpp"
#include "hyperad/bilevel/projection.hpp"
#include "hyperad/bilevel/reference.hpp"
#include "hyperad/hyperad.hpp"
#include "hyperad/problems/registry.hpp"
#include "hyperad/problems/svg_plot.hpp"

using namespace hyperad;
using namespace hyperad::bilevel;

namespace {

std::string g4(double v) { return fmt::format("{:.4g}", v); }

// One problem of the study: a registry instance at a fixed λ.
struct Case {
  std::string key, title;  // file-name key, plot title
  problems::Instance inst;
  TensorList lambda;
  int tmax_factor = 1;  // this case runs t = K up to tmax_factor · tmax (slow contractions)
};

// A method of part 1, built for t = K = n.
struct MethodSpec {
  std::string name;
  std::function<std::unique_ptr<HypergradientMethod>(int)> make;
};

std::unique_ptr<HypergradientMethod> aid(int t, int k, const linsolve::Solver& s, double tol = 0.0) {
  // GMRES restarts only after K iterations (a single cycle), as the thesis's counts assume.
  const linsolve::Solver solver = s.name() == "GMRES" ? linsolve::gmres(std::max(k, 1)) : s;
  return std::make_unique<AID>(AIDOptions{
      .inner_steps = t, .solver = solver, .linear_steps = k, .linear_tolerance = Tolerance::relative(tol)});
}

std::vector<MethodSpec> methods_for(const Problem& p) {
  std::vector<MethodSpec> m{{"ITD", [](int n) { return std::make_unique<ITD>(ITDOptions{.inner_steps = n}); }},
                            {"AID-FP", [](int n) { return aid(n, n, linsolve::richardson()); }}};
  if (p.symmetric_jacobian()) {
    m.push_back({"AID-CG", [](int n) { return aid(n, n, linsolve::cg()); }});
  } else {
    m.push_back({"AID-GMRES", [](int n) { return aid(n, n, linsolve::gmres()); }});
    m.push_back({"AID-normal-CG", [](int n) { return aid(n, n, linsolve::normal_cg()); }});
  }
  return m;
}

// Relative error of one method call; NaN if the call throws (reported, not fatal).
double error_of(HypergradientMethod& m, const Case& c, const TensorList& exact) {
  try {
    return list::relative_error(m.hypergradient(c.inst.problem, c.lambda).grad, exact);
  } catch (const std::exception& e) {
    fmt::print(stderr, "  {} failed: {}\n", m.name(), e.what());
    return std::nan("");
  }
}

// Least-squares slope of ln(err) against n over the linear part: the points up to the
// first one near the floor (err ≤ 30·min err, when the curve has flattened: its last point
// is at least half the one a tenth of the range earlier), skipping the first fifth of that
// range (transient). Returns the rate per iteration e^slope and the range of n fitted.
struct Fit {
  double rate = std::nan(""), lo = 0, hi = 0;
};
Fit fit_rate(const std::vector<double>& n, const std::vector<double>& err) {
  double floor = 1e300;
  for (double e : err)
    if (std::isfinite(e) && e > 0) floor = std::min(floor, e);
  const std::size_t back = err.size() - 1 - err.size() / 10;
  const bool flat = err.back() >= 0.5 * err[back];
  const double thr = flat ? 30 * floor : 0.0;
  std::size_t end = 0;
  while (end < err.size() && std::isfinite(err[end]) && err[end] > thr) ++end;
  if (end < 3) return {};
  const double n_end = n[end - 1], n_start = n[0] + 0.2 * (n_end - n[0]);
  double sx = 0, sy = 0, sxx = 0, sxy = 0, cnt = 0, lo = 1e300;
  for (std::size_t i = 0; i < end; ++i) {
    if (n[i] < n_start) continue;
    const double x = n[i], y = std::log(err[i]);
    sx += x, sy += y, sxx += x * x, sxy += x * y, cnt += 1, lo = std::min(lo, x);
  }
  if (cnt < 3) return {};
  const double slope = (cnt * sxy - sx * sy) / (cnt * sxx - sx * sx);
  return {std::exp(slope), lo, n_end};
}

// q of ∂_wΦ at the (nearly) exact inner solution.
double contraction_at_solution(const Case& c) {
  InnerResult r = solve_inner(c.inst.problem, c.lambda, c.inst.problem.initial_state(),
                              {.max_iterations = 200000, .tolerance = Tolerance::absolute(1e-12)});
  return estimate_contraction(c.inst.problem, r.state, c.lambda, 300);
}

Hypergradient exact_of(const Case& c) {
  ExactOptions o;
  o.inner.tolerance = Tolerance::absolute(1e-14);
  try {
    return exact_hypergradient(c.inst.problem, c.lambda, o);
  } catch (const ConvergenceError&) {  // step norm stalled above 1e-14: settle for 1e-13
    return exact_hypergradient(c.inst.problem, c.lambda);
  }
}

std::vector<int> grid(int tmax) {
  std::vector<int> g;
  for (int n = 1; n <= tmax; n += n < 20 ? 1 : n < 60 ? 2 : n < 200 ? 5 : 10) g.push_back(n);
  if (g.back() != tmax) g.push_back(tmax);
  return g;
}

std::vector<double> as_double(const std::vector<int>& v) { return {v.begin(), v.end()}; }

Case make_case(const std::string& key, const std::string& title, const std::string& name,
               const problems::ProblemConfig& cfg, std::function<TensorList(const problems::Instance&)> lambda = {},
               int tmax_factor = 1) {
  problems::Instance inst = problems::make_problem(name, cfg);
  TensorList l = lambda ? lambda(inst) : inst.lambda0;
  return {key, title, std::move(inst), std::move(l), tmax_factor};
}

}  // namespace

int main(int argc, char** argv) {
  int tmax = 200;
  bench::parse_flags(argc, argv, {{"--tmax", &tmax}});
  std::vector<std::vector<std::string>> csv{{"experiment", "problem", "method", "t", "K", "value"}};

  // ---- the problems and their λ -------------------------------------------------------
  // logreg: a fixed random λ_j ∈ [−1, 1] (e^λ ∈ [0.37, 2.7]), full registry sizes.
  auto random_logreg = [](const problems::Instance& inst) {
    Generator g(11);
    const auto d = inst.lambda0[0].numel();
    return TensorList{rand({d}, g) * 2.0 - 1.0};
  };
  // equilibrium: the seeded λ0 with A scaled up to ‖A‖₂ = 0.9 (the radius) by the instance's
  // projection, so that the fixed point is not reached in a handful of steps.
  auto stretched_equilibrium = [](const problems::Instance& inst) {
    TensorList l = inst.lambda0;
    l[0] = inst.projections[0](l[0] * 3.0);
    return l;
  };
  std::vector<Case> cases;
  cases.push_back(make_case("logreg_synthetic", "logreg, synthetic (n = 600, d = 40)", "logreg",
                            {.dataset = "synthetic"}, random_logreg));
  // breast_cancer's q is ≈ 0.987 (the unregularized bias): three times the range.
  cases.push_back(make_case("logreg_breast_cancer", "logreg, breast_cancer (d = 30)", "logreg",
                            {.dataset = "breast_cancer"}, random_logreg, 3));
  cases.push_back(make_case("kernel_ridge", "kernel_ridge, diabetes (small: 24 train), log_reg0 = 1",
                            "kernel_ridge", {.small = true, .options = {{"log_reg0", "1"}}}));
  cases.push_back(make_case("meta_biased", "meta_biased, digits, 4 tasks 5-way 5-shot", "meta_biased",
                            {.options = {{"tasks", "4"}}}));
  cases.push_back(make_case("equilibrium", "equilibrium, digits (train 100, h = 8), ‖A‖₂ = 0.9", "equilibrium",
                            {.options = {{"train_size", "100"}, {"hidden", "8"}}}, stretched_equilibrium));

  fmt::print("## Hypergradient error vs t = K\n\n");
  fmt::print("| problem | inner state | dim λ | q | method | fitted rate | fit range | error at t = 10 / 50 / 200 / t_max |\n");
  fmt::print("|---|---|---|---|---|---|---|---|\n");
  std::map<std::string, Hypergradient> exacts;
  for (const Case& c : cases) {
    const std::vector<int> ns = grid(tmax * c.tmax_factor);
    const Hypergradient exact = exact_of(c);
    exacts[c.key] = exact;
    const double q = contraction_at_solution(c);
    const auto state_n = list::flatten(c.inst.problem.initial_state()).size();
    const auto lambda_n = list::flatten(c.lambda).size();
    csv.push_back({"contraction", c.key, "", "", "", g4(q)});
    problems::LinePlot plot({.title = fmt::format("{}: q = {:.3f}", c.title, q), .x_label = "t = K (iterations)",
                             .y_label = "‖h − h*‖ / ‖h*‖", .log_y = true});
    std::vector<std::vector<double>> errs;
    std::vector<std::string> names;
    for (const MethodSpec& ms : methods_for(c.inst.problem)) {
      std::vector<double> err;
      for (int n : ns) {
        auto m = ms.make(n);
        err.push_back(error_of(*m, c, exact.grad));
        csv.push_back({"t_eq_K", c.key, ms.name, std::to_string(n), std::to_string(n), g4(err.back())});
      }
      const Fit f = fit_rate(as_double(ns), err);
      csv.push_back({"fit_rate", c.key, ms.name, g4(f.lo), g4(f.hi), g4(f.rate)});
      auto at = [&](int n) {
        const auto i = std::find(ns.begin(), ns.end(), n);
        return i == ns.end() ? std::string("-") : fmt::format("{:.2e}", err[i - ns.begin()]);
      };
      fmt::print("| {} | {} | {} | {:.4f} | {} | {:.4f} | {:.0f}–{:.0f} | {} / {} / {} / {} |\n", c.key, state_n, lambda_n,
                 q, ms.name, f.rate, f.lo, f.hi, at(10), at(50), at(200), at(ns.back()));
      plot.add({.label = fmt::format("{} (rate {:.3f})", ms.name, f.rate), .x = as_double(ns), .y = err});
      errs.push_back(std::move(err));
      names.push_back(ms.name);
    }
    // q^t for reference, scaled to start at ITD's first error, cut below the rounding floor.
    std::vector<double> ref;
    for (int n : ns) {
      const double r = errs[0][0] * std::pow(q, n - ns[0]);
      ref.push_back(r > 1e-17 ? r : std::nan(""));
    }
    plot.add({.label = "q^t (scaled)", .x = as_double(ns), .y = ref, .color = "#888888", .dashed = true});
    plot.write(bench::figure_path("rates_" + c.key + ".svg"));

    // Ordering: method j (more implicit) ≤ method i at equal iterations, ignoring points
    // where both are at the floor (< 1e-12).
    for (std::size_t i = 0; i + 1 < errs.size(); ++i)
      for (std::size_t j = i + 1; j < errs.size(); ++j) {
        int holds = 0, counted = 0;
        double worst = 1;  // the largest error ratio method j / method i where it fails
        std::string fails;
        for (std::size_t p = 0; p < ns.size(); ++p) {
          if (!(errs[i][p] >= 1e-12 || errs[j][p] >= 1e-12)) continue;
          ++counted;
          if (errs[j][p] <= errs[i][p]) {
            ++holds;
          } else {
            worst = std::max(worst, errs[j][p] / errs[i][p]);
            if (fails.size() < 60) fails += fmt::format("{}{}", fails.empty() ? "" : ",", ns[p]);
          }
        }
        fmt::print("  ordering {} <= {}: holds at {}/{} grid points{}\n", names[j], names[i], holds, counted,
                   fails.empty() ? "" : fmt::format("; fails at t = {} (error ratio up to {:.3g})", fails, worst));
        csv.push_back({"ordering_holds_fraction", c.key, names[j] + "<=" + names[i], "", "",
                       g4(counted ? double(holds) / counted : 1.0)});
      }
  }

  // ---- 2. AID's two terms ---------------------------------------------------------------
  fmt::print("\n## AID: error vs t at fixed K, vs K at fixed t\n");
  // The last fixed count (1000) makes the other term negligible: its curve is one term
  // alone, whose rate is fitted (the linear solver's rate in K, the inner rate in t).
  const std::vector<int> fixed{5, 10, 20, 40, 80, 1000}, ns = grid(tmax);
  for (const Case& c : cases) {
    if (c.key != "logreg_synthetic" && c.key != "kernel_ridge") continue;
    const TensorList& exact = exacts[c.key].grad;
    for (bool vary_t : {true, false}) {
      fmt::print("\n| problem | method | fixed | {0} = 1 | {0} = 20 | {0} = 50 | {0} = {1} | rate in {0} |\n"
                 "|---|---|---|---|---|---|---|---|\n", vary_t ? "t" : "K", tmax);
      problems::LinePlot plot({.title = fmt::format("{}: AID error vs {} at fixed {} (solid FP, dashed CG)", c.title,
                                                    vary_t ? "t" : "K", vary_t ? "K" : "t"),
                               .x_label = vary_t ? "t (inner steps)" : "K (linear-system iterations)",
                               .y_label = "‖h − h*‖ / ‖h*‖", .log_y = true});
      const char* palette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#111111"};
      for (std::size_t fi = 0; fi < fixed.size(); ++fi) {
        for (const linsolve::Solver& s : {linsolve::richardson(), linsolve::cg()}) {
          std::vector<double> err;
          for (int n : ns) {
            const int t = vary_t ? n : fixed[fi], k = vary_t ? fixed[fi] : n;
            // K = 1000 stands for "converged": stop at a relative residual of 1e-14, since
            // CG run far past convergence with no tolerance can break down (seen on
            // kernel_ridge: errors of 1e32 at K = 1000 for some t).
            auto m = aid(t, k, s, k == 1000 ? 1e-14 : 0.0);
            err.push_back(error_of(*m, c, exact));
            csv.push_back({vary_t ? "vary_t" : "vary_K", c.key, std::string("AID-") + s.name(),
                           std::to_string(t), std::to_string(k), g4(err.back())});
          }
          // The plateau is the error at the largest varied count; the rate is fitted on the
          // single-term curve (fixed count 1000) only.
          const Fit f = fixed[fi] == fixed.back() ? fit_rate(as_double(ns), err) : Fit{};
          fmt::print("| {} | AID-{} | {} = {} | {:.2e} | {:.2e} | {:.2e} | {:.2e} | {} |\n", c.key, s.name(),
                     vary_t ? "K" : "t", fixed[fi], err[0], err[std::find(ns.begin(), ns.end(), 20) - ns.begin()],
                     err[std::find(ns.begin(), ns.end(), 50) - ns.begin()], err.back(),
                     std::isnan(f.rate) ? std::string("") : fmt::format("{:.4f} ({:.0f}–{:.0f})", f.rate, f.lo, f.hi));
          if (fixed[fi] == fixed.back())
            csv.push_back({vary_t ? "fit_rate_vary_t" : "fit_rate_vary_K", c.key,
                           std::string("AID-") + s.name(), g4(f.lo), g4(f.hi), g4(f.rate)});
          plot.add({.label = fmt::format("{} {} = {}", s.name(), vary_t ? "K" : "t", fixed[fi]),
                    .x = as_double(ns),
                    .y = err,
                    .color = palette[fi],
                    .dashed = s.name() == "CG"});
        }
      }
      plot.write(bench::figure_path(fmt::format("aid_terms_{}_{}.svg", c.key, vary_t ? "t" : "K")));
    }
  }
  bench::write_csv(bench::results_path("repro_rates.csv"), csv);
  return 0;
}
