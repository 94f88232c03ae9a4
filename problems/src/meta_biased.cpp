// meta_biased: meta-learning by biased regularization. T few-shot tasks each fit a linear
// head W_i on their support set, pulled toward a shared bias λ:
//   inner  Σ_i loss_i^support(W_i) + (ρ/2)‖W_i − λ‖²   (all heads solved jointly)
//   outer  (1/T) Σ_i loss_i^query(W_i(λ)).
// Task labels follow ascending class order, so label j means the same kind of class in
// every task; with labels permuted per task a shared bias of a softmax head would cancel.
#include <cmath>
#include <memory>
#include <optional>

#include <fmt/format.h>

#include "hyperad/autodiff/ops/elementwise.hpp"
#include "hyperad/autodiff/ops/reduce.hpp"
#include "hyperad/autodiff/tape.hpp"
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
  Generator gen(config.seed);
  const auto [pools, train, test] = load_meta_data(config, kName, dataset, o, gen);
  const Tensor zs = with_intercept(train->support), zq = with_intercept(train->query);
  const std::int64_t q = zs.size(2);
  const Head head = o.head;
  const double rho = o.rho, T = double(o.tasks);

  auto inner = [=](const TensorList& w, const TensorList& lam) {
    Tensor W = stack_heads(w);
    return head_loss(head, zs, W, train->support_labels) + 0.5 * rho * sum(square(W - lam[0]));
  };
  auto outer = [=](const TensorList& w, const TensorList&) {
    return head_loss(head, zq, stack_heads(w), train->query_labels) / T;
  };
  // Tasks are decoupled, so the Lipschitz constant of ∇L is the largest task's.
  const double lipschitz = head_lipschitz(head, max_gram_eigenvalue(zs), rho);
  TensorList w0;
  for (std::int64_t t = 0; t < o.tasks; ++t) w0.push_back(zeros({o.ways, q}));

  Instance inst{.problem = bilevel::Problem::gradient_descent(inner, 1.0 / lipschitz, outer, w0)};
  inst.summary = fmt::format(
      "{}; {} tasks {}-way {}-shot ({} queries/class), {} head, rho {}; w: {} heads [{}, {}], lambda: the bias "
      "[{}, {}]; inner step 1/{:.3g}",
      pools.description, o.tasks, o.ways, o.shots, o.queries, head == Head::softmax ? "softmax" : "ridge", rho, o.tasks,
      o.ways, q, o.ways, q, lipschitz);
  inst.lambda0 = {zeros({o.ways, q})};
  inst.validation = [=](const TensorList& w, const TensorList&) {
    return w.empty() ? std::nan("") : head_accuracy(zq, stack_heads(w), train->query_labels);
  };
  inst.validation_name = "query_acc";
  const Tensor ts = with_intercept(test->support), tq = with_intercept(test->query);
  auto baseline = std::make_shared<std::optional<HeadFit>>();
  inst.evaluate = [=](const TensorList& lambda) {
    const HeadFit fit = fit_heads(head, rho, ts, tq, *test, lambda.at(0));
    if (!*baseline) *baseline = fit_heads(head, rho, ts, tq, *test, zeros({o.ways, q}));
    return Metrics{{"test_accuracy", fit.accuracy},
                   {"test_loss", fit.loss},
                   {"baseline_accuracy", (*baseline)->accuracy},
                   {"baseline_loss", (*baseline)->loss}};
  };
  inst.defaults = {.method = "aid-cg", .inner_steps = 100, .linear_steps = 30, .outer_steps = 50,
                   .outer_step_size = 0.1, .update = bilevel::OuterUpdate::adam};
  return inst;
}

}  // namespace

ProblemInfo biased_info() {
  return {kName,
          "meta-learning",
          "biased regularization: few-shot linear heads pulled toward a learned shared bias",
          {"digits", "fashion_mnist"},
          meta_option_infos(base_options({}, "digits"), "examples"),
          make};
}

}  // namespace hyperad::problems::meta
