// `poisoning`: a data-poisoning attack on multinomial logistic regression.
//
// A fraction of the training points is under the attacker's control: λ holds their
// poisoned copies x̃_i (one row each, pixels), each within ‖x̃_i − x_i‖₂ ≤ radius of the
// clean x_i and inside the pixel range [0, 1]. The inner problem trains the model (W, b)
// on the untouched points and the poisoned ones (labels unchanged),
//     L(w, λ) = (1/n) Σ_i CE((x_i − x̄) W + b, y_i) + (l2/2)(‖W‖² + ‖b‖²),
// strongly convex in w; the attacker maximizes the validation cross-entropy E(w(λ)).
// Inputs are centered by the clean training mean x̄ (a constant, so the model class is the
// same): that removes the large mean direction from the Hessian and makes the inner
// gradient descent far better conditioned.
#include <algorithm>
#include <cmath>
#include <memory>

#include <fmt/format.h>

#include "hyperad/autodiff/grad.hpp"
#include "hyperad/autodiff/ops/elementwise.hpp"
#include "hyperad/autodiff/ops/linalg.hpp"
#include "hyperad/autodiff/ops/loss.hpp"
#include "hyperad/autodiff/ops/reduce.hpp"
#include "hyperad/autodiff/ops/shape_ops.hpp"
#include "hyperad/autodiff/tape.hpp"
#include "hyperad/bilevel/inner.hpp"
#include "hyperad/bilevel/sampling.hpp"
#include "hyperad/bilevel/shards.hpp"
#include "families.hpp"
#include "metrics.hpp"
#include "poisoning.hpp"

namespace hyperad::problems::detail {

namespace {

using bilevel::Batch;
using Labels = std::vector<std::int64_t>;

constexpr const char* kName = "poisoning";

// Everything the closures need, built once and shared.
struct Model {
  Tensor mean;                    // [d] clean training mean x̄
  Tensor clean;                   // [m, d] the attacked points before poisoning (pixels)
  Labels y_poison;                // their labels
  Tensor x_rest;                  // [n − m, d] the untouched training points, centered
  Labels y_rest;
  Tensor x_val, x_test;           // centered
  Labels y_val, y_test;
  double l2 = 0, step = 0;        // ℓ2 weight, inner step size η
  // x_rest and x_val with the copies of their data-parallel chunks kept (the same rows at
  // every evaluation of the full batch).
  bilevel::RowCache rest_rows, val_rows;
  std::int64_t m() const { return clean.size(0); }
  std::int64_t n_rest() const { return x_rest.defined() ? x_rest.size(0) : 0; }
};

Tensor logits(const TensorList& w, const Tensor& centered) { return matmul(centered, w[0]) + w[1]; }

// Σ of the cross-entropies of the training points in `part`: indices 0..m−1 are the
// poisoned points (rows of λ), m..n−1 the others. Both terms are computed even when the
// part has no point of one kind (0 from no rows): data-parallel chunks must record the
// same ops whatever rows they hold (bilevel::PartSum).
Tensor train_loss_sum(const Model& M, const TensorList& w, const Tensor& poisoned, const Batch& part) {
  Batch pois, rest;
  for (std::int64_t i : part) (i < M.m() ? pois.push_back(i) : rest.push_back(i - M.m()));
  Tensor total = cross_entropy(logits(w, bilevel::rows(poisoned, pois) - M.mean), bilevel::pick(M.y_poison, pois),
                               Reduction::sum);
  if (M.n_rest() > 0)
    total = total + cross_entropy(logits(w, M.rest_rows.rows(rest)), bilevel::pick(M.y_rest, rest), Reduction::sum);
  return total;
}

// L over `batch`; with shards, its examples spread over processes (collective).
Tensor inner_loss(const Model& M, const TensorList& w, const Tensor& poisoned, const Batch& batch,
                  const bilevel::ExampleShards* shards) {
  // λ's rows are per-example: each is read by the chunk of its training point only.
  const Tensor total = bilevel::sum_over_batch(
      shards, batch, {w[0], w[1]},
      [&M](const TensorList& in, const Batch& part) { return train_loss_sum(M, {in[0], in[1]}, in[2], part); },
      {poisoned});
  return total / static_cast<double>(batch.size()) + (0.5 * M.l2) * (sum(square(w[0])) + sum(square(w[1])));
}

Tensor val_loss(const Model& M, const TensorList& w, const Batch& batch, const bilevel::ExampleShards* shards) {
  return bilevel::sum_over_batch(shards, batch, w,
                                 [&M](const TensorList& in, const Batch& part) {
                                   return cross_entropy(logits(in, M.val_rows.rows(part)),
                                                        bilevel::pick(M.y_val, part), Reduction::sum);
                                 }) /
         static_cast<double>(batch.size());
}

double accuracy(const TensorList& w, const Tensor& x, const Labels& y) {
  NoGradGuard off;
  return multiclass_accuracy(logits(w, x), y);
}

double test_loss(const TensorList& w, const Tensor& x, const Labels& y) {
  NoGradGuard off;
  return cross_entropy(logits(w, x), y).item();
}

// λ_max(XᵀX) by power iteration, with a 5% margin for its underestimate.
double top_eigenvalue(const Tensor& x) {
  NoGradGuard off;
  Generator gen(3);
  Tensor v = randn({x.size(1), 1}, gen);
  double lam = 0;
  for (int k = 0; k < 100; ++k) {
    Tensor u = matmul_t(x, matmul(x, v), true, false);
    lam = norm(u).item() / norm(v).item();
    v = u / norm(u).item();
  }
  return 1.05 * lam;
}

// Trains the model on the training set with `poisoned` as the attacked rows, to a step norm
// of 1e-8, by heavy ball from `start` with the momentum (1 − √(η·l2))² that damps the
// flattest direction (curvature l2) critically.
TensorList train(const std::shared_ptr<const Model>& M, const Tensor& poisoned, const TensorList& start) {
  const Batch all = bilevel::full_batch(M->m() + M->n_rest());
  bilevel::Problem hb = bilevel::Problem::heavy_ball(
      [M, all](const TensorList& w, const TensorList& lam) { return inner_loss(*M, w, lam[0], all, nullptr); }, M->step,
      std::pow(1.0 - std::sqrt(M->step * M->l2), 2),
      [](const TensorList& w, const TensorList&) { return sum(w[1]); }, start);  // E is not used here
  const bilevel::InnerResult r =
      bilevel::solve_inner(hb, {poisoned}, hb.initial_state(), {.max_iterations = 50000, .tolerance = Tolerance::absolute(1e-8)});
  return hb.weights(r.state);
}

// The same per-row distances as the attack's, in random directions, clipped to [0, 1].
Tensor random_perturbation(const Model& M, const Tensor& poisoned, std::uint64_t seed) {
  const std::int64_t m = M.m(), d = M.clean.size(1);
  const std::vector<double> c = M.clean.to_vector(), p = poisoned.to_vector();
  std::vector<double> out(c.size());
  Generator gen(seed ^ 0x9e3779b97f4a7c15ULL);
  for (std::int64_t i = 0; i < m; ++i) {
    double dist = 0, len = 0;
    std::vector<double> u(static_cast<std::size_t>(d));
    for (std::int64_t j = 0; j < d; ++j) {
      const auto k = static_cast<std::size_t>(i * d + j);
      dist += (p[k] - c[k]) * (p[k] - c[k]);
      u[static_cast<std::size_t>(j)] = gen.normal();
      len += u[static_cast<std::size_t>(j)] * u[static_cast<std::size_t>(j)];
    }
    const double scale = std::sqrt(dist / len);
    for (std::int64_t j = 0; j < d; ++j) {
      const auto k = static_cast<std::size_t>(i * d + j);
      out[k] = std::clamp(c[k] + scale * u[static_cast<std::size_t>(j)], 0.0, 1.0);
    }
  }
  return tensor(out, Shape{m, d});
}

double mean_row_distance(const Tensor& a, const Tensor& b) {
  NoGradGuard off;
  return mean(sqrt(sum(square(a - b), {1}))).item();
}

struct Settings {
  std::string dataset;
  PoisoningSizes sizes;
  double fraction, radius, l2;
};

Settings read_settings(const ProblemConfig& cfg) {
  Settings s;
  s.dataset = !cfg.dataset.empty() ? cfg.dataset : cfg.small ? "digits" : "fashion_mnist";
  const bool fm = s.dataset == "fashion_mnist";
  const auto size = [&](const char* key, std::int64_t fashion, std::int64_t digits, std::int64_t small,
                        std::int64_t lo) {
    return option_int(cfg, kName, key, cfg.small ? small : fm ? fashion : digits, lo, 60000);
  };
  s.sizes.train = size("train_size", 1000, 800, 40, 2);
  s.sizes.val = size("val_size", 1000, 400, 40, 1);
  s.sizes.test = size("test_size", 2000, 597, 100, 1);
  s.sizes.downsample = option_int(cfg, kName, "downsample", cfg.small ? (fm ? 4 : 2) : (fm ? 2 : 1), 1, 28);
  s.fraction = option_double(cfg, kName, "fraction", cfg.small ? 0.1 : 0.2, 0.0, 1.0);
  s.radius = option_double(cfg, kName, "radius", 5.0, 0.0, 1e6);
  s.l2 = option_double(cfg, kName, "l2", cfg.small ? 0.01 : 0.003, 1e-8, 1e6);
  return s;
}

Instance make(const ProblemConfig& cfg) {
  const Settings s = read_settings(cfg);
  const PoisoningData data = load_poisoning_data(s.dataset, s.sizes, cfg.data_dir, cfg.seed);
  const std::int64_t n = s.sizes.train, d = data.train.num_features();
  const auto m = static_cast<std::int64_t>(std::llround(s.fraction * static_cast<double>(n)));
  if (m < 1) {
    throw ValueError(fmt::format("problem '{}': option fraction={} poisons no point of train_size={}", kName,
                                 s.fraction, n));
  }
  auto M = std::make_shared<Model>();
  {
    NoGradGuard off;
    const Tensor& x = data.train.features;
    M->mean = mean(x, {0});
    M->clean = narrow(x, 0, 0, m).clone();
    M->y_poison.assign(data.train.labels.begin(), data.train.labels.begin() + m);
    if (m < n) M->x_rest = narrow(x, 0, m, n - m) - M->mean;
    M->y_rest.assign(data.train.labels.begin() + m, data.train.labels.end());
    M->x_val = data.val.features - M->mean;
    M->x_test = data.test.features - M->mean;
    if (M->x_rest.defined()) M->rest_rows = bilevel::RowCache(M->x_rest);
    M->val_rows = bilevel::RowCache(M->x_val);
    M->y_val = data.val.labels;
    M->y_test = data.test.labels;
    M->l2 = s.l2;
    // η = 1/L̂ with L̂ = ½‖Z‖₂²/n + l2 on the clean data, Z = [X − x̄, 1]: the softmax
    // cross-entropy's Hessian in the logits is ≤ ½I, and ‖Z‖₂² = max(λ_max((X − x̄)ᵀ(X − x̄)), n)
    // (centered columns ⟂ 1). Gradient descent contracts while η < 2/L, so the poisoned data
    // may double ‖Z‖₂² before Φ stops contracting; in practice the ½ bound has far more
    // room (it needs every prediction split evenly between two classes). A bound valid for
    // every feasible λ (‖Z‖₂ + √m·radius) would make η ~10× smaller for nothing.
    const double z2 = std::max(top_eigenvalue(x - M->mean), static_cast<double>(n));
    M->step = 1.0 / (0.5 * z2 / static_cast<double>(n) + s.l2);
  }
  const std::int64_t classes = std::max(data.train.num_classes, std::int64_t{2});
  // The inner problem starts from the model trained on clean data: poisoned optima are near.
  const TensorList w_clean = train(M, M->clean, {zeros({d, classes}), zeros({classes})});

  Instance inst;
  inst.stochastic = bilevel::StochasticProblem::gradient_descent(
      [M, shards = cfg.shards](const TensorList& w, const TensorList& lam, const Batch& b) {
        return inner_loss(*M, w, lam[0], b, shards.get());
      },
      M->step, n,
      [M, shards = cfg.shards](const TensorList& w, const TensorList&, const Batch& b) {
        return val_loss(*M, w, b, shards.get());
      },
      s.sizes.val, w_clean);
  inst.problem = inst.stochastic->full_batch();
  inst.lambda0 = {M->clean.clone()};
  inst.projections = {bilevel::Projection::rows(
      {.norm = bilevel::RowNorm::l2, .radius = s.radius, .center = M->clean, .lo = 0.0, .hi = 1.0})};
  inst.maximize = true;
  inst.dataset = s.dataset;  // small instances default to digits
  inst.summary = fmt::format(
      "{}: multinomial logistic regression ({} features, {} classes, ℓ2 {}) attacked through λ = {} of {} training "
      "points ({}×{} pixels, ‖x̃ − x‖₂ ≤ {}, in [0, 1]); {} validation, {} test points",
      s.dataset, d, classes, s.l2, m, n, m, d, s.radius, s.sizes.val, s.sizes.test);
  inst.validation = [M](const TensorList& w, const TensorList&) {
    return w.empty() ? std::nan("") : accuracy(w, M->x_val, M->y_val);
  };
  inst.validation_name = "val_acc";
  const double clean_acc = accuracy(w_clean, M->x_test, M->y_test), clean_loss = test_loss(w_clean, M->x_test, M->y_test);
  const std::uint64_t seed = cfg.seed;
  inst.evaluate = [M, w_clean, clean_acc, clean_loss, seed](const TensorList& lambda) -> Metrics {
    const Tensor& poisoned = lambda.at(0);
    const Tensor random = random_perturbation(*M, poisoned, seed);
    const TensorList w_p = train(M, poisoned, w_clean), w_r = train(M, random, w_clean);
    return {{"test_acc_poisoned", accuracy(w_p, M->x_test, M->y_test)},
            {"test_acc_random", accuracy(w_r, M->x_test, M->y_test)},
            {"test_acc_clean", clean_acc},
            {"test_loss_poisoned", test_loss(w_p, M->x_test, M->y_test)},
            {"test_loss_random", test_loss(w_r, M->x_test, M->y_test)},
            {"test_loss_clean", clean_loss},
            {"val_loss_poisoned", test_loss(w_p, M->x_val, M->y_val)},
            {"mean_perturbation", mean_row_distance(poisoned, M->clean)}};
  };
  inst.defaults = {.method = "aid-cg",
                   .inner_steps = 100,
                   .linear_steps = 50,
                   .outer_steps = 50,
                   // ∂E/∂x̃_i scales like 1/n (each point weighs 1/n in L): so does α.
                   .outer_step_size = 0.05 * static_cast<double>(n),
                   .update = bilevel::OuterUpdate::momentum,
                   // the JMLR 2023 comparison's minibatch
                   .batch_size = std::min<std::int64_t>(90, n)};
  return inst;
}

}  // namespace

ProblemInfo poisoning_info() {
  return {
      .name = kName,
      .family = "poisoning",
      .summary = "poison a fraction of the training points (ℓ2 ball ∩ pixel range) to maximize the validation "
                 "loss of multinomial logistic regression",
      .datasets = {"fashion_mnist", "digits"},
      .options = {{"train_size", "1000 (digits 800, small 40)", "training points, poisoned ones included"},
                  {"val_size", "1000 (digits 400, small 40)", "validation points (the attacker's objective)"},
                  {"test_size", "2000 (digits 597, small 100)", "test points (evaluate's accuracies)"},
                  {"fraction", "0.2 (small 0.1)", "fraction of the training points the attacker controls"},
                  {"radius", "5", "ℓ2 budget of each poisoned point, ‖x̃_i − x_i‖₂ ≤ radius"},
                  {"l2", "0.003 (small 0.01)", "ℓ2 weight of the inner problem (its strong convexity)"},
                  {"downsample", "2 (digits 1, small 4 / digits 2)", "average k×k pixel blocks (28×28 → 14×14 for 2)"}},
      .make = make,
      .data_parallel = true,
  };
}

}  // namespace hyperad::problems::detail
