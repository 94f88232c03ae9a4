#pragma once
// The episodic test problem of tests/bilevel/test_episodic.cpp and tests/mpi/: a population
// of ridge-regression tasks sharing per-feature ℓ2 strengths e^λ (3 features, 8 support
// and 8 query examples per task, each task's data from its id and a seed).
#include <algorithm>
#include <cmath>

#include "hyperad/bilevel/episodic.hpp"
#include "hyperad/bilevel/stochastic.hpp"
#include "hyperad/hyperad.hpp"

namespace hyperad::testing {

using namespace hyperad::bilevel;

constexpr std::int64_t kN = 8, kD = 3;  // examples per task (support and query), features

// Task u: its own regression data. Inner, per task: ½ mean((X_u w_u − y_u)²) + ½ Σ_j e^{λ_j} w_uj²
// (summed over the episode's tasks: the tasks are decoupled); E: the mean over the tasks of
// ½ mean((Xv_u w_u − yv_u)²). One step size for every task (a bound on each task's L).
struct Tasks {
  double step = 0;
  std::uint64_t seed;

  // step = scale / (a bound on every task's L over λ ∈ [−1, 1]³), or `fixed_step` when given.
  explicit Tasks(std::uint64_t s = 3, double scale = 1.0, double fixed_step = 0) : seed(s) {
    double worst = 0;
    for (std::int64_t u = 0; u < 40; ++u) worst = std::max(worst, squared_norm(data(u)[0]).item() / double(kN));
    step = fixed_step > 0 ? fixed_step : scale / (worst + std::exp(1.0));
  }
  // The largest eigenvalue of task u's inner Hessian XᵀX/n + diag(e^λ) at λ (power iteration).
  double curvature(std::int64_t u, const TensorList& lam) const {
    const Tensor X = data(u)[0];
    Tensor v = ones({kD});
    double ev = 0;
    for (int k = 0; k < 500; ++k) {
      Tensor hv = matmul(transpose(X), matmul(X, v)) / double(kN) + exp(lam[0]) * v;
      ev = norm(hv).item() / norm(v).item();
      v = hv / norm(hv).item();
    }
    return ev;
  }
  // X, y, Xv, yv of task u.
  TensorList data(std::int64_t u) const {
    Generator g(mix_seed(seed, static_cast<std::uint64_t>(u)));
    Tensor wt = randn({kD}, g);
    Tensor X = randn({kN, kD}, g), Xv = randn({kN, kD}, g);
    return {X, matmul(X, wt) + 0.3 * randn({kN}, g), Xv, matmul(Xv, wt) + 0.3 * randn({kN}, g)};
  }
  EpisodicProblem problem(std::int64_t population) const {
    const Tasks self = *this;
    return EpisodicProblem(
        population,
        [self](const Batch& units) {
          TensorList X, y, Xv, yv;
          for (std::int64_t u : units) {
            TensorList d = self.data(u);
            X.push_back(d[0]), y.push_back(d[1]), Xv.push_back(d[2]), yv.push_back(d[3]);
          }
          const Tensor x = stack(X, 0), t = stack(y, 0), xv = stack(Xv, 0), tv = stack(yv, 0);
          const double c = double(units.size());
          auto predict = [](const Tensor& a, const Tensor& w) { return sum(a * unsqueeze(w, 1), {2}); };  // [c, n]
          auto inner = [x, t, predict](const TensorList& w, const TensorList& l) {
            return 0.5 * sum(mean(square(predict(x, w[0]) - t), {1})) + 0.5 * sum(exp(l[0]) * square(w[0]));
          };
          auto outer = [xv, tv, c, predict](const TensorList& w, const TensorList&) {
            return 0.5 * sum(mean(square(predict(xv, w[0]) - tv), {1})) / c;
          };
          const auto n = static_cast<std::int64_t>(units.size());
          // SID inside the episode: minibatches of example positions, shared by its tasks.
          auto sinner = [x, t, predict](const TensorList& w, const TensorList& l, const Batch& xi) {
            const Tensor xs = index_select(x, 1, xi), ts = index_select(t, 1, xi);
            return 0.5 * sum(mean(square(predict(xs, w[0]) - ts), {1})) + 0.5 * sum(exp(l[0]) * square(w[0]));
          };
          auto souter = [xv, tv, c, predict](const TensorList& w, const TensorList&, const Batch& z) {
            const Tensor xs = index_select(xv, 1, z), ts = index_select(tv, 1, z);
            return 0.5 * sum(mean(square(predict(xs, w[0]) - ts), {1})) / c;
          };
          return Episode{.problem = Problem::gradient_descent(inner, self.step, outer, {zeros({n, kD})}),
                         .inner_examples = kN,
                         .outer_examples = kN,
                         .stochastic = StochasticProblem::gradient_descent(sinner, self.step, kN, souter, kN,
                                                                           {zeros({n, kD})})};
        },
        "task", "ridge tasks");
  }
};

}  // namespace hyperad::testing
