// meta_hyperrep: meta-learning a hyper-representation. λ is a feature map h_λ shared by
// all tasks — linear h(x) = A x (‖A‖₂ ≤ r, projected) or one tanh layer h(x) = tanh(A x + a)
// — and each task fits a linear head on [h_λ(x), 1] of its support set:
//   inner  Σ_i loss_i^support(W_i; h_λ) + (ρ/2)‖W_i‖²   (strongly convex in every W_i)
//   outer  (1/T) Σ_i loss_i^query(W_i(λ); h_λ).
// The inner step must be stable for every feasible λ, so it comes from a bound on the
// features over all of them: r²·λ_max(XᵀX)/n + 1 for the linear map, p + 1 for tanh.
#include <cmath>
#include <memory>
#include <optional>

#include <fmt/format.h>

#include "hyperad/autodiff/ops/elementwise.hpp"
#include "hyperad/autodiff/ops/linalg.hpp"
#include "hyperad/autodiff/ops/reduce.hpp"
#include "hyperad/autodiff/tape.hpp"
#include "hyperad/bilevel/projection.hpp"
#include "families.hpp"
#include "meta_tasks.hpp"

namespace hyperad::problems::meta {

namespace {

const char* const kName = "meta_hyperrep";

// [h_λ(x), 1] for x [T, n, d].
Tensor features(bool mlp, const Tensor& x, const TensorList& lam) {
  Tensor h = matmul_t(x, lam[0], false, true);
  return with_intercept(mlp ? tanh(h + lam[1]) : h);
}

Instance make(const ProblemConfig& config) {
  const std::string dataset = config.dataset.empty() ? "digits" : config.dataset;
  const MetaOptions o = parse_meta_options(config, kName, meta_base_options(config, dataset));
  const std::string map = option_string(config, "map", "linear");
  if (map != "linear" && map != "mlp")
    throw ValueError(fmt::format("problem '{}': option map='{}' is not one of linear, mlp", kName, map));
  const bool mlp = map == "mlp";
  const std::int64_t p = option_int(config, kName, "dim", config.small ? 3 : 64, 1, 1024);
  const double radius = option_double(config, kName, "radius", 1.0, 1e-3, 1e3);
  Generator gen(config.seed);
  const auto [pools, train, test] = load_meta_data(config, kName, dataset, o, gen);
  const Tensor xs = train->support, xq = train->query;
  const std::int64_t d = xs.size(2);
  const Head head = o.head;
  const double rho = o.rho, T = double(o.tasks);

  auto inner = [=](const TensorList& w, const TensorList& lam) {
    Tensor W = stack_heads(w);
    return head_loss(head, features(mlp, xs, lam), W, train->support_labels) + 0.5 * rho * sum(square(W));
  };
  auto outer = [=](const TensorList& w, const TensorList& lam) {
    return head_loss(head, features(mlp, xq, lam), stack_heads(w), train->query_labels) / T;
  };
  // λ_max([XAᵀ, 1]ᵀ[XAᵀ, 1])/n ≤ ‖A‖₂² λ_max(XᵀX)/n + 1; tanh features lie in [−1, 1].
  const double s = mlp ? double(p + 1) : radius * radius * max_gram_eigenvalue(xs) + 1.0;
  const double lipschitz = head_lipschitz(head, s, rho);
  TensorList w0;
  for (std::int64_t t = 0; t < o.tasks; ++t) w0.push_back(zeros({o.ways, p + 1}));

  Instance inst{.problem = bilevel::Problem::gradient_descent(inner, 1.0 / lipschitz, outer, w0)};
  // A random start: Gaussian rows; the linear map scaled onto the ball's boundary, the tanh
  // layer by 1/√d so that its pre-activations are of unit scale on standardized inputs.
  Tensor a0 = randn({p, d}, gen);
  if (mlp) {
    inst.lambda0 = {a0 / std::sqrt(double(d)), zeros({p})};
  } else {
    inst.lambda0 = {a0 * (radius / bilevel::singular_values(a0).front())};
    inst.projections = {bilevel::Projection::spectral_ball(radius)};
  }
  inst.summary = fmt::format(
      "{}; {} tasks {}-way {}-shot ({} queries/class), {} head, rho {}; w: {} heads [{}, {}], lambda: {} map {}->{}{}; "
      "inner step 1/{:.3g}",
      pools.description, o.tasks, o.ways, o.shots, o.queries, head == Head::softmax ? "softmax" : "ridge", rho, o.tasks,
      o.ways, p + 1, map, d, p, mlp ? " (tanh)" : fmt::format(" (spectral norm <= {})", radius), lipschitz);
  inst.validation = [=](const TensorList& w, const TensorList& lam) {
    if (w.empty()) return std::nan("");
    NoGradGuard off;
    return head_accuracy(features(mlp, xq, lam), stack_heads(w), train->query_labels);
  };
  inst.validation_name = "query_acc";

  // Meta-test: fresh heads on the held-out tasks with the features of λ, against the
  // features of λ0 (no meta-learning) and the raw standardized inputs (no representation).
  const TensorList lambda0 = inst.lambda0;
  auto fixed = std::make_shared<std::optional<std::pair<HeadFit, HeadFit>>>();
  inst.evaluate = [=](const TensorList& lambda) {
    auto fit = [&](const TensorList& lam) {
      Tensor zs, zq;
      {
        NoGradGuard off;  // fixed features; the heads' solve below needs the tape
        zs = features(mlp, test->support, lam);
        zq = features(mlp, test->query, lam);
      }
      return fit_heads(head, rho, zs, zq, *test, zeros({o.ways, p + 1}));
    };
    if (!*fixed) {
      const HeadFit raw = fit_heads(head, rho, with_intercept(test->support), with_intercept(test->query), *test,
                                    zeros({o.ways, d + 1}));
      *fixed = std::make_pair(fit(lambda0), raw);
    }
    const HeadFit now = fit(lambda);
    return Metrics{{"test_accuracy", now.accuracy},
                   {"test_loss", now.loss},
                   {"initial_accuracy", (*fixed)->first.accuracy},
                   {"raw_features_accuracy", (*fixed)->second.accuracy}};
  };
  inst.defaults = {.method = "aid-cg", .inner_steps = 100, .linear_steps = 30, .outer_steps = 50,
                   .outer_step_size = 0.05, .update = bilevel::OuterUpdate::adam};
  return inst;
}

}  // namespace

ProblemInfo hyperrep_info() {
  std::vector<OptionInfo> options = meta_option_infos(meta_base_options({}, "digits"), "classes");
  options.push_back({"map", "linear", "the shared feature map: linear (d->p, spectral norm <= radius) or mlp (tanh)"});
  options.push_back({"dim", "64", "p: dimension of the learned features"});
  options.push_back({"radius", "1", "linear map: bound on its spectral norm (a projection)"});
  return {kName,
          "meta-learning",
          "hyper-representation: a shared feature map learned under few-shot linear heads",
          {"digits", "fashion_mnist"},
          std::move(options),
          make};
}

}  // namespace hyperad::problems::meta
