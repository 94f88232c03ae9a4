// meta_hyperrep: meta-learning a hyper-representation. λ is a feature map h_λ shared by
// all tasks — linear h(x) = A x (‖A‖₂ ≤ r, projected) or one tanh layer h(x) = tanh(A x + a)
// — and each task fits a linear head on [h_λ(x), 1] of its support set:
//   inner  Σ_i loss_i^support(W_i; h_λ) + (ρ/2)‖W_i‖²   (strongly convex in every W_i)
//   outer  (1/T) Σ_i loss_i^query(W_i(λ); h_λ),
// over T fixed tasks, or a fresh meta-batch of tasks each step (the episodic version).
// The inner step must be stable for every feasible λ, so it comes from a bound on the
// features over all of them: r²·λ_max(XᵀX)/n + 1 for the linear map, p + 1 for tanh.
#include <cmath>

#include <fmt/format.h>

#include "hyperad/autodiff/ops/elementwise.hpp"
#include "hyperad/autodiff/ops/linalg.hpp"
#include "hyperad/bilevel/projection.hpp"
#include "families.hpp"
#include "meta_tasks.hpp"

namespace hyperad::problems::meta {

namespace {

const char* const kName = "meta_hyperrep";

Instance make(const ProblemConfig& config) {
  const std::string dataset = config.dataset.empty() ? "digits" : config.dataset;
  const MetaOptions o = parse_meta_options(config, kName, meta_base_options(config, dataset));
  const std::string map = option_string(config, "map", "linear");
  if (map != "linear" && map != "mlp")
    throw ValueError(fmt::format("problem '{}': option map='{}' is not one of linear, mlp", kName, map));
  const bool mlp = map == "mlp";
  const std::int64_t p = option_int(config, kName, "dim", config.small ? 3 : 64, 1, 1024);
  const double radius = option_double(config, kName, "radius", 1.0, 1e-3, 1e3);
  auto pools = std::make_shared<const MetaPools>(load_meta_pools(config, kName, dataset, o));
  const std::int64_t d = pools->train.num_features();

  MetaSpec spec{.name = kName, .dataset = dataset, .options = o};
  // [h_λ(x), 1] for x [T, n, d].
  spec.model = {.head = o.head, .rho = o.rho, .ways = o.ways, .q = p + 1,
                .features = [mlp](const Tensor& x, const TensorList& lam) {
                  Tensor h = matmul_t(x, lam[0], false, true);
                  return with_intercept(mlp ? tanh(h + lam[1]) : h);
                }};
  // λ_max([XAᵀ, 1]ᵀ[XAᵀ, 1])/n ≤ ‖A‖₂² λ_max(XᵀX)/n + 1; tanh features lie in [−1, 1].
  spec.calibrate = [mlp, p, radius](const Tensor& x) {
    return mlp ? double(p + 1) : radius * radius * max_gram_eigenvalue(x) + 1.0;
  };
  // A random start: Gaussian rows; the linear map scaled onto the ball's boundary, the tanh
  // layer by 1/√d so that its pre-activations are of unit scale on standardized inputs.
  Generator gen(config.seed);
  const Tensor a0 = randn({p, d}, gen);
  if (mlp) {
    spec.lambda0 = {a0 / std::sqrt(double(d)), zeros({p})};
  } else {
    spec.lambda0 = {a0 * (radius / bilevel::singular_values(a0).front())};
    spec.projections = {bilevel::Projection::spectral_ball(radius)};
  }
  spec.what = fmt::format("λ: {} map {}->{}{}", map, d, p,
                          mlp ? " (tanh)" : fmt::format(" (spectral norm <= {})", radius));
  // Meta-test baselines: the features of λ0 (no meta-learning) and the raw standardized
  // inputs (no representation).
  const TensorList lambda0 = spec.lambda0;
  const Head head = o.head;
  const double rho = o.rho;
  spec.baselines = [lambda0, head, rho, o, d](const auto& fit, const TaskSet& test) {
    const HeadFit raw = fit_heads(head, rho, with_intercept(test.support), with_intercept(test.query), test,
                                  zeros({o.ways, d + 1}));
    return Metrics{{"initial_accuracy", fit(lambda0).accuracy}, {"raw_features_accuracy", raw.accuracy}};
  };
  spec.defaults = {.method = "aid-cg", .inner_steps = 100, .linear_steps = 30, .outer_steps = 50,
                   .outer_step_size = 0.05, .update = bilevel::OuterUpdate::adam};
  return make_meta_instance(config, std::move(pools), std::move(spec));
}

}  // namespace

ProblemInfo hyperrep_info() {
  std::vector<OptionInfo> options = meta_option_infos(meta_base_options({}, "digits"), "classes");
  options.push_back({"map", "linear", "the shared feature map: linear (d->p, spectral norm <= radius) or mlp (tanh)"});
  options.push_back({"dim", "64", "p: dimension of the learned features"});
  options.push_back({"radius", "1", "linear map: bound on its spectral norm (a projection)"});
  return {.name = kName,
          .family = "meta-learning",
          .summary = "hyper-representation: a shared feature map learned under few-shot linear heads",
          .datasets = {"digits", "fashion_mnist"},
          .options = std::move(options),
          .make = make,
          .warm_start = "none",
          .warm_start_why = "each step draws fresh tasks (episodic): no task has a previous solution of its own; "
                            "naive or full (with task_pool=M) are options"};
}

}  // namespace hyperad::problems::meta
