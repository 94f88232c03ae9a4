// Cost and memory of hypergradients on logistic regression with per-feature ℓ2
// hyperparameters e^λ (d = 100 features, n = 500 training and 500 validation points),
// gradient-descent inner map, t = T = K = 100:
//   1. ITD, AID-FP, AID-CG time / inner-solve time (bar: ≤ 3);
//   2. AID's peak tape memory at t = 100 vs t = 5000 (bar: within 10 %), ITD's for scale;
//   3. AID-CG against central finite differences (2·d inner solves) in time and in
//      relative error against the exact hypergradient (bar: ≥ 50× faster at equal or
//      better accuracy).
//
//   bench_hypergradient [--reps N]      writes bench/results/hypergradient.csv
#include <cmath>

#include "bench_util.hpp"
#include "logistic_fixture.hpp"
#include "hyperad/bilevel/aid.hpp"
#include "hyperad/bilevel/inner.hpp"
#include "hyperad/bilevel/itd.hpp"
#include "hyperad/bilevel/reference.hpp"
#include "hyperad/hyperad.hpp"

using namespace hyperad;
using namespace hyperad::bilevel;

namespace {

std::string f3(double v) { return fmt::format("{:.3g}", v); }

}  // namespace

int main(int argc, char** argv) {
  int reps = 7;
  bench::parse_flags(argc, argv, {{"--reps", &reps}});
  const std::int64_t d = 100, n = 500;
  const bench::Logistic data(n, d, 7,
                             {.features = 1.0, .weights = 3.0 / std::sqrt(static_cast<double>(d)), .noise = 1.0});
  Problem p = data.problem();
  Generator g(3);
  Tensor lam = -1.0 - rand({d}, g);  // e^λ in (0.13, 0.37)
  const TensorList l{lam};
  std::vector<std::vector<std::string>> csv{{"measure", "method", "value", "unit", "ratio"}};

  // 1. cost relative to the inner solve (t = T = K = 100), medians side by side.
  const int t = 100;
  const double inner = bench::median_ms(reps, [&] { solve_inner(p, l, p.initial_state(), {.max_iterations = t}); });
  ITD itd({.inner_steps = t});
  AID fp({.inner_steps = t, .solver = linsolve::richardson(), .linear_steps = t});
  AID cg({.inner_steps = t, .solver = linsolve::cg(), .linear_steps = t});
  fmt::print("## Hypergradient cost, logistic regression d = {}, n = {}, t = T = K = {} (median of {})\n\n", d, n, t,
             reps);
  fmt::print("| method | time (ms) | time / inner solve |\n|---|---|---|\n| inner solve alone | {:.2f} | 1 |\n", inner);
  csv.push_back({"time", "inner", f3(inner), "ms", "1"});
  for (HypergradientMethod* m : std::initializer_list<HypergradientMethod*>{&itd, &fp, &cg}) {
    const double ms = bench::median_ms(reps, [&] { m->hypergradient(p, l); });
    fmt::print("| {} | {:.2f} | {:.2f} |\n", m->name(), ms, ms / inner);
    csv.push_back({"time", m->name(), f3(ms), "ms", f3(ms / inner)});
  }

  // 2. peak tape memory against t.
  fmt::print("\n## Peak tape memory (bytes) against the number of inner steps t (K = T = 100)\n\n");
  fmt::print("| method | t = 100 | t = 1000 | t = 5000 | ratio 5000 / 100 |\n|---|---|---|---|---|\n");
  for (bool is_aid : {true, false}) {
    std::vector<double> mem;
    for (int tt : {100, 1000, 5000}) {
      if (is_aid)
        mem.push_back(static_cast<double>(
            AID({.inner_steps = tt, .solver = linsolve::cg(), .linear_steps = 100}).hypergradient(p, l).diagnostics.peak_tape_bytes));
      else
        mem.push_back(static_cast<double>(ITD({.inner_steps = tt})
                                              .hypergradient(p, l)
                                              .diagnostics.peak_tape_bytes));
    }
    const char* name = is_aid ? "AID-CG" : "ITD (full)";
    fmt::print("| {} | {:.0f} | {:.0f} | {:.0f} | {:.3f} |\n", name, mem[0], mem[1], mem[2], mem[2] / mem[0]);
    for (std::size_t i = 0; i < 3; ++i)
      csv.push_back({"peak_tape_bytes", fmt::format("{} t={}", name, i == 0 ? 100 : i == 1 ? 1000 : 5000), f3(mem[i]), "bytes",
                     f3(mem[i] / mem[0])});
  }

  // 3. AID-CG against finite differences, both measured against the exact hypergradient.
  Hypergradient exact = exact_hypergradient(p, l);
  AID precise({.inner_steps = 5000, .inner_tolerance = Tolerance::absolute(1e-10), .solver = linsolve::cg(), .linear_steps = 500,
               .linear_tolerance = Tolerance::relative(1e-10)});
  Hypergradient a = precise.hypergradient(p, l);
  const double t_aid = bench::median_ms(reps, [&] { precise.hypergradient(p, l); });
  Hypergradient fd;
  FiniteDifferenceOptions fo;
  fo.parallel = false;  // one core each, for a fair ratio
  const double t_fd = bench::median_ms(1, [&] { fd = finite_difference_hypergradient(p, l, fo); });
  const double e_aid = list::relative_error(a.grad, exact.grad);
  const double e_fd = list::relative_error(fd.grad, exact.grad);
  fmt::print("\n## AID-CG against central finite differences (d = {}, single thread)\n\n", d);
  fmt::print("| method | time (ms) | rel. error vs exact | speed-up |\n|---|---|---|---|\n");
  fmt::print("| AID-CG (tol 1e-10) | {:.2f} | {:.2e} | {:.0f}× |\n", t_aid, e_aid, t_fd / t_aid);
  fmt::print("| finite differences | {:.2f} | {:.2e} | 1× |\n", t_fd, e_fd);
  csv.push_back({"fd_vs_aid", "AID-CG", f3(t_aid), "ms", f3(e_aid)});
  csv.push_back({"fd_vs_aid", "finite differences", f3(t_fd), "ms", f3(e_fd)});
  csv.push_back({"fd_vs_aid", "speedup", f3(t_fd / t_aid), "x", ""});
  bench::write_csv(bench::results_path("hypergradient.csv"), csv);
  return 0;
}
