// meta_biased: meta-learning by biased regularization. Few-shot tasks each fit a linear head
// W_i on their support set, pulled toward a shared bias λ:
//   inner  Σ_i loss_i^support(W_i) + (ρ/2)‖W_i − λ‖²   (the tasks decoupled)
//   outer  (1/T) Σ_i loss_i^query(W_i(λ)),
// over T fixed tasks, or a fresh meta-batch of tasks each step (the episodic version).
// Task labels follow ascending class order, so label j means the same kind of class in
// every task; with labels permuted per task a shared bias of a softmax head would cancel.
#include <fmt/format.h>

#include "hyperad/autodiff/tensor.hpp"
#include "families.hpp"
#include "meta_tasks.hpp"

namespace hyperad::problems::meta {

namespace {

const char* const kName = "meta_biased";

MetaOptions base_options(const ProblemConfig& config, const std::string& dataset) {
  MetaOptions b = meta_base_options(config, dataset);
  b.test_on_classes = false;  // a bias of class-specific rows transfers to new examples, not new classes
  return b;
}

Instance make(const ProblemConfig& config) {
  const std::string dataset = config.dataset.empty() ? "digits" : config.dataset;
  const MetaOptions o = parse_meta_options(config, kName, base_options(config, dataset));
  auto pools = std::make_shared<const MetaPools>(load_meta_pools(config, kName, dataset, o));
  const std::int64_t q = pools->train.num_features() + 1;
  MetaSpec spec{.name = kName, .dataset = dataset, .options = o};
  spec.model = {.head = o.head, .rho = o.rho, .ways = o.ways, .q = q, .fixed_features = true,
                .features = [](const Tensor& x, const TensorList&) { return with_intercept(x); }, .biased = true};
  spec.lambda0 = {zeros({o.ways, q})};
  spec.what = fmt::format("λ: the bias [{}, {}]", o.ways, q);
  // Tasks are decoupled: the Lipschitz constant of ∇L is the largest task's.
  spec.calibrate = [](const Tensor& x) { return max_gram_eigenvalue(with_intercept(x)); };
  spec.baselines = [o, q](const auto& fit, const TaskSet&) {
    const HeadFit zero = fit({zeros({o.ways, q})});
    return Metrics{{"baseline_accuracy", zero.accuracy}, {"baseline_loss", zero.loss}};
  };
  spec.defaults = {.method = "aid-cg", .inner_steps = 100, .linear_steps = 30, .outer_steps = 50,
                   .outer_step_size = 0.1, .update = bilevel::OuterUpdate::adam};
  return make_meta_instance(config, std::move(pools), std::move(spec));
}

}  // namespace

ProblemInfo biased_info() {
  return {.name = kName,
          .family = "meta-learning",
          .summary = "biased regularization: few-shot linear heads pulled toward a learned shared bias",
          .datasets = {"digits", "fashion_mnist"},
          .options = meta_option_infos(base_options({}, "digits"), "examples"),
          .make = make,
          .warm_start = "none",
          .warm_start_why = "each step draws fresh tasks (episodic): no task has a previous solution of its own; "
                            "naive or full (with task_pool=M) are options"};
}

}  // namespace hyperad::problems::meta
