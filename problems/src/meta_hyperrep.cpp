// meta_hyperrep: meta-learning a hyper-representation. λ is a feature map h_λ shared by
// all tasks — linear h(x) = A x (‖A‖₂ ≤ r, projected), one tanh layer h(x) = tanh(A x + a),
// or a CNN (blocks of 3×3 convolution, batch normalization per task, ReLU and 2×2
// max-pooling, then global average pooling and unit-norm rows) — and each task fits a
// linear head on [h_λ(x), 1] of its support set:
//   inner  Σ_i loss_i^support(W_i; h_λ) + (ρ/2)‖W_i‖²   (strongly convex in every W_i)
//   outer  (1/T) Σ_i loss_i^query(W_i(λ); h_λ),
// over T fixed tasks, or a fresh meta-batch of tasks each step (the episodic version).
// The inner step must be stable for every feasible λ, so it comes from a bound on the
// features over all of them: r²·λ_max(XᵀX)/n + 1 for the linear map, p + 1 for tanh, 2 for
// the CNN (its feature rows have unit norm, so ‖[h, 1]‖² = 2).
#include <cmath>
#include <functional>

#include <fmt/format.h>

#include "hyperad/autodiff/ops/elementwise.hpp"
#include "hyperad/autodiff/ops/linalg.hpp"
#include "hyperad/bilevel/projection.hpp"
#include "families.hpp"
#include "meta_tasks.hpp"

namespace hyperad::problems::meta {

namespace {

const char* const kName = "meta_hyperrep";

// GCC 12 at -O3 reports the std::function in `spec` as maybe uninitialized on an
// exception path of make (the report comes and goes with unrelated edits to the function:
// a false positive of the flow analysis through the inlined std::function destructor).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
Instance make(const ProblemConfig& config) {
  const std::string dataset = config.dataset.empty() ? "digits" : config.dataset;
  const std::string map = option_string(config, "map", "linear");
  if (map != "linear" && map != "mlp" && map != "cnn")
    throw ValueError(fmt::format("problem '{}': option map='{}' is not one of linear, mlp, cnn", kName, map));
  const bool mlp = map == "mlp", cnn = map == "cnn";
  MetaOptions base = meta_base_options(config, dataset);
  if (cnn && !config.small) base.pool = 1;  // the full images
  const MetaOptions o = parse_meta_options(config, kName, base);
  const double radius = option_double(config, kName, "radius", 1.0, 1e-3, 1e3);
  auto pools = std::make_shared<const MetaPools>(load_meta_pools(config, kName, dataset, o));
  const std::int64_t d = pools->train.num_features();
  const auto side = static_cast<std::int64_t>(std::lround(std::sqrt(double(d))));
  CnnMap net{static_cast<std::int32_t>(side),
             static_cast<std::int32_t>(option_int(config, kName, "channels", config.small ? 4 : 32, 1, 1024)), 0};
  for (const char* other : {"dim", "radius"})
    if (cnn && config.options.count(other))
      throw ValueError(fmt::format("problem '{}': option {} is for map=linear or mlp, not map=cnn", kName, other));
  if (!cnn)
    for (const char* other : {"channels", "blocks"})
      if (config.options.count(other))
        throw ValueError(fmt::format("problem '{}': option {} is for map=cnn", kName, other));
  if (cnn) {
    if (side * side != d)
      throw ValueError(fmt::format("problem '{}': map=cnn needs square images, got {} features", kName, d));
    net.blocks = static_cast<std::int32_t>(
        option_int(config, kName, "blocks", std::min<std::int64_t>(4, CnnMap::halvings(side)), 1, 4));
    if (net.blocks > CnnMap::halvings(side))
      throw ValueError(fmt::format("problem '{}': option blocks={} halves the {}×{} images more than {} times",
                                   kName, net.blocks, side, side, CnnMap::halvings(side)));
  }
  const std::int64_t p = cnn ? net.channels : option_int(config, kName, "dim", config.small ? 3 : 64, 1, 1024);
  // A random start: Gaussian rows; the linear map scaled onto the ball's boundary, the tanh
  // layer by 1/√d so that its pre-activations are of unit scale on standardized inputs;
  // the CNN's convolutions He-initialized, γ = 1, β = 0.
  Generator gen(config.seed);
  TensorList lambda0;
  if (cnn) {
    lambda0 = net.lambda0(gen);
  } else {
    const Tensor a0 = randn({p, d}, gen);
    lambda0 = mlp ? TensorList{a0 / std::sqrt(double(d)), zeros({p})}
                  : TensorList{a0 * (radius / bilevel::singular_values(a0).front())};
  }

  MetaSpec spec{.name = kName, .dataset = dataset, .options = o};
  // [h_λ(x), 1] for x [T, n, d].
  spec.model = {.head = o.head, .rho = o.rho, .ways = o.ways, .q = p + 1,
                .features = [mlp, cnn, net](const Tensor& x, const TensorList& lam) {
                  if (cnn) return with_intercept(net.features(x, lam));
                  Tensor h = matmul_t(x, lam[0], false, true);
                  return with_intercept(mlp ? tanh(h + lam[1]) : h);
                }};
  // λ_max([XAᵀ, 1]ᵀ[XAᵀ, 1])/n ≤ ‖A‖₂² λ_max(XᵀX)/n + 1; tanh features lie in [−1, 1]; the
  // CNN's rows have unit norm.
  spec.calibrate = [mlp, cnn, p, radius](const Tensor& x) {
    if (cnn) return 2.0;
    return mlp ? double(p + 1) : radius * radius * max_gram_eigenvalue(x) + 1.0;
  };
  spec.lambda0 = lambda0;
  if (!cnn && !mlp) spec.projections = {bilevel::Projection::spectral_ball(radius)};
  spec.what = cnn ? fmt::format("λ: cnn on {}×{} images, {} blocks of 3×3 conv ({} channels), batch norm per "
                                "task, ReLU, 2×2 max-pool; unit-norm features",
                                side, side, net.blocks, net.channels)
                  : fmt::format("λ: {} map {}->{}{}", map, d, p,
                                mlp ? " (tanh)" : fmt::format(" (spectral norm <= {})", radius));
  // Meta-test baselines: the features of λ0 (no meta-learning) and the raw standardized
  // inputs (no representation).
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
#pragma GCC diagnostic pop

}  // namespace

ProblemInfo hyperrep_info() {
  std::vector<OptionInfo> options = meta_option_infos(meta_base_options({}, "digits"), "classes");
  options.push_back({"map", "linear",
                     "the shared feature map: linear (d->p, spectral norm <= radius), mlp (tanh) or cnn (conv blocks on "
                     "the full images)"});
  options.push_back({"channels", "32 (small: 4)", "map=cnn: channels of every convolution"});
  options.push_back({"blocks", "4, at most the image side's halvings (3 for 8×8 digits)",
                     "map=cnn: conv/batch-norm/ReLU/max-pool blocks"});
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
