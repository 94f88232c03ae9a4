// The gradient map Φ = w − η∇L skipping the work nothing reads (issue 18): inside
// gradient_of the fused loss leaves its value (a log1p per example) to be
// computed when read, and in an unrecorded step it keeps no ℓ'' for Hessian-vector
// products. Against the same problem whose Φ computes both, as gradient_of did before
// (value_and_grad for an unrecorded step, grad with create_graph for a recorded one), on
// the logistic-regression fixture (bench/logistic_fixture.hpp, the fused loss) with
// t = 100 inner steps: AID-CG (K = 100, CG to 1e-10) and ITD, one thread. Reps alternate
// the two problems; the ratio is the median of the per-rep ratios of times, computing the
// value / skipping it. The hypergradients must be the same bits.
//
//   bench_gradient_step [--reps N]        writes bench/results/gradient_step.csv
#include <cmath>

#include "bench_util.hpp"
#include "logistic_fixture.hpp"
#include "hyperad/bilevel/aid.hpp"
#include "hyperad/bilevel/itd.hpp"
#include "hyperad/hyperad.hpp"

using namespace hyperad;
using namespace hyperad::bilevel;

namespace {
std::string f3(double v) { return fmt::format("{:.3f}", v); }

// The fixture's fused problem with Φ computing the loss value (and ℓ'') at every step.
Problem computing_the_value(const bench::Logistic& data) {
  const auto inner = [X = data.X, y = data.y](const TensorList& w, const TensorList& l) {
    return linear_model_loss(X, w[0], y, LinearLoss::logistic) + 0.5 * sum(exp(l[0]) * square(w[0]));
  };
  InnerMap phi = [inner, eta = data.step()](const TensorList& w, const TensorList& l) {
    TensorList g;
    if (!Tape::current().recording() || (!list::any_requires_grad(w) && !list::any_requires_grad(l))) {
      g = value_and_grad([&](const TensorList& ws) { return inner(ws, l); }, w).grads;
    } else {
      const TensorList ws{w[0].requires_grad() ? w[0] : w[0].detach().requires_grad_()};
      g = grad(inner(ws, l), ws, {.create_graph = true, .allow_unused = true});
    }
    return TensorList{w[0] - eta * g[0]};
  };
  return Problem::from_map(
      std::move(phi),
      [Xv = data.Xv, yv = data.yv](const TensorList& w, const TensorList&) {
        return linear_model_loss(Xv, w[0], yv, LinearLoss::logistic);
      },
      {zeros({data.X.size(1)})}, linsolve::Symmetry::symmetric);
}
}  // namespace

int main(int argc, char** argv) {
  int reps = 11;
  bench::parse_flags(argc, argv, {{"--reps", &reps}});
  runtime::set_num_threads(1);
  const int t = 100;
  struct Shape {
    std::int64_t n, d;
  };
  std::vector<std::vector<std::string>> csv{
      {"n", "d", "method", "computing_ms", "skipping_ms", "ratio", "values_computed", "same_bits"}};
  std::vector<std::string> rows;
  for (const Shape s : {Shape{2000, 10}, Shape{10000, 10}, Shape{500, 100}, Shape{2000, 100}, Shape{2000, 1000}}) {
    const bench::Logistic data(s.n, s.d, 7,
                               {.features = 1.0, .weights = 3.0 / std::sqrt(static_cast<double>(s.d)), .noise = 1.0});
    const Problem skipping = data.problem(/*fused=*/true), computing = computing_the_value(data);
    Generator g(3);
    const TensorList lambda{-1.0 - rand({s.d}, g)};
    AID cg({.inner_steps = t, .solver = linsolve::cg(), .linear_steps = 100,
            .linear_tolerance = Tolerance::relative(1e-10)});
    ITD itd({.inner_steps = t});
    for (HypergradientMethod* m : {static_cast<HypergradientMethod*>(&cg), static_cast<HypergradientMethod*>(&itd)}) {
      const bool same = list::flatten(m->hypergradient(skipping, lambda).grad) ==
                        list::flatten(m->hypergradient(computing, lambda).grad);
      const std::uint64_t before = linear_loss_values();
      (void)m->hypergradient(skipping, lambda);
      const std::uint64_t values_computed = linear_loss_values() - before;  // E's alone
      bench::warm_up([&] { m->hypergradient(skipping, lambda); });
      std::vector<double> comp, skip, ratio;
      for (int r = 0; r < reps; ++r) {
        comp.push_back(bench::elapsed_ms([&] { m->hypergradient(computing, lambda); }));
        skip.push_back(bench::elapsed_ms([&] { m->hypergradient(skipping, lambda); }));
        ratio.push_back(comp.back() / skip.back());
      }
      rows.push_back(fmt::format("| {} | {} | {} | {:.3f} | {:.3f} | {:.2f}× | {} | {} |", s.n, s.d, m->name(),
                                 bench::median(comp), bench::median(skip), bench::median(ratio), values_computed,
                                 same ? "yes" : "NO"));
      csv.push_back({std::to_string(s.n), std::to_string(s.d), m->name(), f3(bench::median(comp)),
                     f3(bench::median(skip)), f3(bench::median(ratio)), std::to_string(values_computed),
                     same ? "1" : "0"});
      fmt::print(stderr, "n = {}, d = {}, {} done\n", s.n, s.d, m->name());
    }
  }
  runtime::set_num_threads(0);
  fmt::print("## The gradient step skipping the unread loss value (t = {}, one thread, median of {} reps)\n\n", t,
             reps);
  fmt::print("| n | d | method | computing the value (ms) | skipping it (ms) | ratio | loss values computed per "
             "hypergradient | same bits |\n|---|---|---|---|---|---|---|---|\n");
  for (const auto& row : rows) fmt::print("{}\n", row);
  bench::write_csv(bench::results_path("gradient_step.csv"), csv);
}
