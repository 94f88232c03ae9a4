// Hypergradients by AID-CG against central finite differences as dim λ grows.
//
// Logistic regression with one ℓ2 hyperparameter e^{λ_j} per feature, d = dim λ ∈
// {10, 100, 1000} features, n = 500 training and 500 validation points (synthetic; rows of
// norm ≈ 1 so the inner problem's conditioning does not change with d), gradient-descent
// inner map. Both methods solve the inner problem to a step norm of 1e-12; AID-CG then runs
// CG to a relative residual of 1e-12; finite differences take 2·d inner solves. Each is
// compared with exact_hypergradient (inner solve to 1e-13, dense LU on the d × d system).
// Times are medians; FD at d = 1000 is timed once (it takes minutes). Cost is also given
// in units of one inner solve, which is what grows with d for FD (2·d) and not for AID.
//
//   OMP_NUM_THREADS=1 bench_fd_vs_aid [--reps N] [--max-d D]    writes bench/results/fd_vs_aid.csv
#include <cmath>

#include "bench_util.hpp"
#include "logistic_fixture.hpp"
#include "hyperad/bilevel/aid.hpp"
#include "hyperad/bilevel/inner.hpp"
#include "hyperad/bilevel/reference.hpp"
#include "hyperad/hyperad.hpp"

using namespace hyperad;
using namespace hyperad::bilevel;

namespace {

// One timed run (for runs of minutes, where median_ms's warm-up would double the cost).
template <class Fn>
double once_ms(Fn&& fn) {
  const auto a = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count();
}

std::string g3(double v) { return fmt::format("{:.3g}", v); }

}  // namespace

int main(int argc, char** argv) {
  int reps = 5;
  std::int64_t max_d = 1000;
  bench::parse_flags(argc, argv, {{"--reps", &reps}, {"--max-d", &max_d}});
  const std::int64_t n = 500;
  const InnerOptions tight{.max_iterations = 200000, .tolerance = 1e-12, .divergence_factor = 1e6};
  std::vector<std::vector<std::string>> csv{{"dim_lambda", "method", "ms", "inner_solves", "rel_error_vs_exact",
                                             "inner_steps", "linear_iterations"}};
  fmt::print("## AID-CG vs central finite differences, logistic regression, n = {}, median of {}\n\n", n, reps);
  fmt::print("| dim λ | inner solve (ms) | method | time (ms) | time / inner solve | rel. error vs exact |\n");
  fmt::print("|---|---|---|---|---|---|\n");
  for (std::int64_t d : {10, 100, 1000}) {
    if (d > max_d) break;
    const double unit_rows = 1.0 / std::sqrt(static_cast<double>(d));  // rows of norm ≈ 1 whatever d
    const bench::Logistic data(n, d, 11, {.features = unit_rows, .weights = 3.0, .noise = 0.5});
    Problem p = data.problem();
    Generator g(5);
    const TensorList l{-1.0 - rand({d}, g)};  // e^λ in (0.13, 0.37)

    Hypergradient exact = exact_hypergradient(p, l);
    InnerResult solved;
    const double t_inner = bench::median_ms(reps, [&] { solved = solve_inner(p, l, p.initial_state(), tight); });

    AID aid({.inner_steps = tight.max_iterations, .inner_tolerance = tight.tolerance, .solver = linsolve::cg(),
             .linear_steps = 1000, .linear_tolerance = Tolerance::relative(1e-12)});
    Hypergradient a;
    const double t_aid = bench::median_ms(reps, [&] { a = aid.hypergradient(p, l); });

    FiniteDifferenceOptions fo;
    fo.inner = tight;
    fo.parallel = false;  // the same threads as AID (OMP_NUM_THREADS), one coordinate at a time
    Hypergradient fd;
    auto run_fd = [&] { fd = finite_difference_hypergradient(p, l, fo); };
    const double t_fd = d >= 1000 ? once_ms(run_fd) : bench::median_ms(std::max(1, reps / 2), run_fd);

    const double e_aid = list::relative_error(a.grad, exact.grad);
    const double e_fd = list::relative_error(fd.grad, exact.grad);
    fmt::print("| {} | {:.2f} | AID-CG | {:.2f} | {:.2f} | {:.1e} |\n", d, t_inner, t_aid, t_aid / t_inner, e_aid);
    fmt::print("| {} | {:.2f} | finite differences | {:.1f} | {:.0f} | {:.1e} |\n", d, t_inner, t_fd, t_fd / t_inner, e_fd);
    fmt::print("|   |   | FD / AID | {:.0f}× |   |   |\n", t_fd / t_aid);
    csv.push_back({std::to_string(d), "inner_solve", g3(t_inner), "1", "", std::to_string(solved.steps), ""});
    csv.push_back({std::to_string(d), "AID-CG", g3(t_aid), g3(t_aid / t_inner), g3(e_aid),
                   std::to_string(a.diagnostics.inner_steps), std::to_string(a.diagnostics.linear.iterations)});
    csv.push_back({std::to_string(d), "finite_differences", g3(t_fd), g3(t_fd / t_inner), g3(e_fd), "", ""});
    std::fflush(stdout);
  }
  bench::write_csv(bench::results_path("fd_vs_aid.csv"), csv);
  return 0;
}
