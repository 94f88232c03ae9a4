// Cost of one linear-solver iteration of implicit differentiation (AID-FP) on the
// equilibrium model: each iteration is one pullback c ↦ ∂_wΦᵀc. Measured side by side:
//
//   leaves    implicit_vjp with λ = (A, B, c) as parameters: Φ is recorded once with λ
//             as leaves, and each iteration pulls back through w alone (the λ part of the
//             sweep is pruned by Pullback::with_respect_to);
//   constant  the same solve with λ captured as constants (no λ derivative at all): the
//             floor an iteration can cost;
//   both      the pullback through (w, λ) with the λ part thrown away — what an iteration
//             cost before the w-only pullback.
//
// Per-iteration time = (time at K2 − time at K1) / (K2 − K1) iterations, which cancels the
// recording of Φ and the final cross-term sweep. Goal: leaves / constant ≤ 1.15.
//
//   build-bench/bench/bench_implicit [--train N] [--hidden H] [--reps R]
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <vector>

#include "bench_util.hpp"
#include "hyperad/hyperad.hpp"

using namespace hyperad;

int main(int argc, char** argv) {
  int train = 64, hidden = 30, reps = 21;
  bench::parse_flags(argc, argv, {{"--train", &train}, {"--hidden", &hidden}, {"--reps", &reps}});
  const int features = 64;
  Generator gen(7);
  // Small inputs keep tanh near its linear part (tanh' ≈ 1), so ∂_wΦ contracts at about ‖A‖₂.
  const Tensor X = randn({train, features}, gen) * 0.1;
  // Spectral radius of A ≈ 0.9 (circular law): slow enough that K2 iterations stay above the residual
  // floor ε‖b‖ (where the solver would stop early; checked below).
  const Tensor A0 = randn({hidden, hidden}, gen) * (0.9 / std::sqrt(static_cast<double>(hidden)));
  const Tensor B0 = randn({hidden, features}, gen) * (1.0 / std::sqrt(static_cast<double>(features)));
  const Tensor c0 = randn({hidden}, gen) * 0.1;
  const TensorList lambda{A0, B0, c0};
  // Φ(Z, λ) = tanh(Z Aᵀ + X Bᵀ + c), one row of Z per example.
  auto phi_of = [&X](const TensorList& z, const TensorList& l) {
    return TensorList{tanh(matmul(z[0], transpose(l[0])) + matmul(X, transpose(l[1])) + l[2])};
  };
  const FixedPointMap with_lambda = phi_of;
  const FixedPointMap constant = [&](const TensorList& z, const TensorList&) { return phi_of(z, lambda); };

  // An (approximate) fixed point and a cotangent.
  TensorList w{zeros({train, hidden})};
  for (int k = 0; k < 400; ++k) w = list::detach(phi_of(w, lambda));
  const TensorList g{randn({train, hidden}, gen)};

  auto timed = [](auto&& fn) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  };
  auto solve = [&](const FixedPointMap& phi, const TensorList& params, int K) {
    ImplicitOptions o;
    o.solver = linsolve::richardson();
    o.linear.tolerance = {};
    o.linear.max_iterations = K;
    int iterations = 0;
    const double ms = timed([&] { iterations = implicit_vjp(phi, w, params, g, {}, o).report.iterations; });
    if (iterations != K) {
      fmt::print(stderr, "bench_implicit: the solve stopped after {} of {} iterations\n", iterations, K);
      std::exit(1);
    }
    return ms;
  };
  // The old iteration: the full pullback through (w, λ), λ's part discarded.
  auto both = [&](int K) {
    return timed([&] {
      TapeScope scope;
      TensorList in = list::detach(w);
      for (const Tensor& l : lambda) in.push_back(l.detach());
      const Vjp rec = vjp(
          [&](const TensorList& x) { return phi_of({x[0]}, TensorList(x.begin() + 1, x.end())); }, in);
      TensorList v = list::clone(g);
      for (int k = 0; k < K; ++k) {
        TensorList u = rec.pullback(v);
        u.resize(1);
        list::axpy(1.0, g, u);
        v = std::move(u);
      }
    });
  };

  // The three variants interleaved within each repetition, so that a slow spell of the
  // machine hits all of them; medians of the per-repetition values and ratios.
  const int K1 = 20, K2 = 220;
  bench::warm_up([&] { solve(with_lambda, lambda, 5); }, 200);
  std::vector<double> t_leaves, t_floor, t_both, r_leaves, r_both;
  for (int r = 0; r < reps; ++r) {
    const double l = (solve(with_lambda, lambda, K2) - solve(with_lambda, lambda, K1)) / (K2 - K1);
    const double f = (solve(constant, {}, K2) - solve(constant, {}, K1)) / (K2 - K1);
    const double b = (both(K2) - both(K1)) / (K2 - K1);
    t_leaves.push_back(l);
    t_floor.push_back(f);
    t_both.push_back(b);
    r_leaves.push_back(l / f);
    r_both.push_back(b / f);
  }
  const double leaves = bench::median(t_leaves), floor = bench::median(t_floor), both_it = bench::median(t_both);
  const double ratio = bench::median(r_leaves), ratio_both = bench::median(r_both);

  fmt::print("AID-FP iteration on the equilibrium model ({} × {} states, λ = A [{}×{}], B [{}×{}], c [{}]), "
             "median of {} runs\n",
             train, hidden, hidden, hidden, hidden, features, hidden, reps);
  fmt::print("  λ as leaves, w-only pullback   {:8.2f} µs\n", 1e3 * leaves);
  fmt::print("  λ constant (floor)             {:8.2f} µs\n", 1e3 * floor);
  fmt::print("  pullback through (w, λ)        {:8.2f} µs\n", 1e3 * both_it);
  fmt::print("  ratio leaves / constant        {:8.3f}   (goal <= 1.15)\n", ratio);
  fmt::print("  ratio (w, λ) / constant        {:8.3f}\n", ratio_both);
  bench::write_csv(bench::results_path("implicit_iteration.csv"),
                   {{"train", "hidden", "leaves_us", "constant_us", "both_us", "ratio_leaves", "ratio_both"},
                    {std::to_string(train), std::to_string(hidden), fmt::format("{:.3f}", 1e3 * leaves),
                     fmt::format("{:.3f}", 1e3 * floor), fmt::format("{:.3f}", 1e3 * both_it),
                     fmt::format("{:.4f}", ratio), fmt::format("{:.4f}", ratio_both)}});
  return 0;
}
