// `equilibrium`: a deep-equilibrium classifier. Each example's hidden state is the fixed
// point z = tanh(A z + B x + c), read out by logits U z + b. For a batch of n examples the
// states form Z [n, h] and Φ(Z, λ) = tanh(Z Aᵀ + X Bᵀ + c). Training the model is the
// bilevel problem with inner state w = Z_train, λ = (A, B, c, U, b) and outer objective the
// mean training cross-entropy (+ optional weight decay). tanh is 1-Lipschitz, so ‖A‖₂ ≤ r < 1
// (a spectral-ball projection on A) makes Φ a contraction; ∂_ZΦ = diag(tanh′) (I ⊗ A) is
// not symmetric, so AID needs FP, GMRES or normal-equation CG (CG is flagged by AID).
//
// map=conv: each state is an image of h channels, z = tanh(conv(z, W) + conv(x, V) + c)
// (3×3 kernels, padding 1), read out by logits U·mean(z) + b over the positions. A 3×3
// convolution is a sum of nine channel mixes W[:, :, a, b] each followed by a shift, and a
// zero-padded shift has norm at most 1, so ‖conv(·, W)‖₂ ≤ Σ_ab ‖W_ab‖₂ ≤ Σ_ab ‖W_ab‖_F ≤
// 3‖W‖_F (Cauchy–Schwarz over the nine taps): projecting W on the Frobenius ball of
// radius r/3 keeps Φ a contraction of constant r.
#include <cmath>
#include <filesystem>
#include <numeric>

#include <fmt/format.h>

#include "families.hpp"
#include "metrics.hpp"
#include "hyperad/autodiff/ops/conv.hpp"
#include "hyperad/autodiff/ops/elementwise.hpp"
#include "hyperad/autodiff/ops/linalg.hpp"
#include "hyperad/autodiff/ops/loss.hpp"
#include "hyperad/autodiff/ops/pool.hpp"
#include "hyperad/autodiff/ops/reduce.hpp"
#include "hyperad/autodiff/ops/shape_ops.hpp"
#include "hyperad/autodiff/tape.hpp"
#include "hyperad/bilevel/inner.hpp"
#include "hyperad/problems/data.hpp"

namespace hyperad::problems::detail {

namespace {

constexpr const char* kName = "equilibrium";

// Positions in λ = {A [h, h], B [h, d], c [h], U [C, h], b [C]}; with map=conv A is W
// [h, h, 3, 3] and B is V [h, 1, 3, 3].
enum : std::size_t { kA, kB, kC, kU, kb };

struct Settings {
  std::string dataset;
  std::int64_t hidden = 0, train_size = 0, val_size = 0, test_size = 0, pool = 1;
  double radius = 0.9, weight_decay = 0.0;
  bool conv = false;
};

// The shape of the states: rows of h (dense) or h-channel side × side images (conv).
struct Model {
  bool conv = false;
  std::int64_t hidden = 0, side = 0;
  Shape states(std::int64_t n) const { return conv ? Shape{n, hidden, side, side} : Shape{n, hidden}; }
};

// Examples: standardized features [n, d] and labels.
struct Data {
  Tensor x;
  std::vector<std::int64_t> y;
};
struct Sets {
  Data train, val, test;
  std::int64_t classes = 0;
};

Settings parse(const ProblemConfig& config) {
  Settings s;
  s.dataset = config.dataset.empty() ? "digits" : config.dataset;
  const bool digits = s.dataset == "digits", small = config.small;
  s.hidden = option_int(config, kName, "hidden", small ? 4 : 32, 1, 4096);
  s.radius = option_double(config, kName, "radius", 0.9, 0.0, 1.0);
  if (!(s.radius > 0.0 && s.radius < 1.0))
    throw ValueError(fmt::format("problem '{}': option radius={} must lie strictly between 0 and 1 "
                                 "(‖A‖₂ < 1 makes the equilibrium map a contraction)",
                                 kName, s.radius));
  s.train_size = option_int(config, kName, "train_size", small ? 24 : 1000, 1, 60000);
  s.val_size = option_int(config, kName, "val_size", small ? 20 : (digits ? 300 : 500), 1, 60000);
  s.test_size = option_int(config, kName, "test_size", small ? 40 : (digits ? 497 : 1000), 1, 10000);
  s.pool = option_int(config, kName, "pool", small ? (digits ? 4 : 7) : (digits ? 1 : 2), 1, 28);
  s.weight_decay = option_double(config, kName, "weight_decay", 0.0, 0.0, 1e3);
  const std::string map = option_string(config, "map", "dense");
  if (map != "dense" && map != "conv")
    throw ValueError(fmt::format("problem '{}': option map='{}' is not one of dense, conv", kName, map));
  s.conv = map == "conv";
  const std::int64_t side = digits ? 8 : 28;
  if (side % s.pool != 0)
    throw ValueError(fmt::format("problem '{}': option pool={} must divide the image side {} of {}", kName, s.pool,
                                 side, s.dataset));
  return s;
}

// p×p average pooling of square images stored as rows of side² pixels.
Tensor pool_images(const Tensor& x, std::int64_t side, std::int64_t p) {
  if (p == 1) return x;
  const std::int64_t n = x.size(0), s = side / p;
  return reshape(mean(reshape(x, {n, s, p, s, p}), {2, 4}), {n, s * s});
}

std::vector<std::int64_t> first(std::int64_t k) {
  std::vector<std::int64_t> idx(static_cast<std::size_t>(k));
  std::iota(idx.begin(), idx.end(), 0);
  return idx;
}

// Seeded train/validation split; test examples from the dataset's own test part when it
// has one (Fashion-MNIST), else from the rest of the shuffled data (digits).
Sets load(const Settings& s, const ProblemConfig& config) {
  Splits parts;
  std::int64_t side = 0;
  const std::int64_t fit = s.train_size + s.val_size;
  if (s.dataset == "digits") {
    side = 8;
    Dataset all = load_builtin("digits");
    const std::int64_t n = all.size();
    if (fit + s.test_size > n)
      throw ValueError(fmt::format("problem '{}': train_size + val_size + test_size = {} exceeds the {} examples of "
                                   "digits",
                                   kName, fit + s.test_size, n));
    const double N = static_cast<double>(n);
    parts = split(all, {static_cast<double>(s.train_size) / N, static_cast<double>(s.val_size) / N,
                        1.0 - static_cast<double>(fit) / N},
                  config.seed);
    parts.test = subset(parts.test, first(s.test_size));
  } else {
    side = 28;
    if (fit > 60000)
      throw ValueError(fmt::format("problem '{}': train_size + val_size = {} exceeds the 60000 training images of "
                                   "fashion_mnist",
                                   kName, fit));
    std::filesystem::path dir;
    try {
      dir = fashion_mnist_dir(config.data_dir);
    } catch (const DataError& e) {  // says how to install it; add who asked
      throw DataError(fmt::format("problem '{}': {}", kName, e.what()), e.file());
    }
    Dataset head = load_fashion_mnist(FashionMnistPart::train, {.limit = fit}, dir);
    const double N = static_cast<double>(fit);
    parts = split(head, {static_cast<double>(s.train_size) / N, static_cast<double>(s.val_size) / N, 0.0},
                  config.seed);
    parts.test = load_fashion_mnist(FashionMnistPart::test, {.limit = s.test_size}, dir);
  }
  NoGradGuard off;
  Sets out;
  out.classes = parts.train.num_classes;
  Tensor xtr = pool_images(parts.train.features, side, s.pool);
  const Standardizer st = Standardizer::fit(xtr);
  out.train = {st.transform(xtr), parts.train.labels};
  out.val = {st.transform(pool_images(parts.validation.features, side, s.pool)), parts.validation.labels};
  out.test = {st.transform(pool_images(parts.test.features, side, s.pool)), parts.test.labels};
  return out;
}

// ---- the model -----------------------------------------------------------------------

// Φ on the states Z of the examples X: tanh(Z Aᵀ + X Bᵀ + c) on rows, or
// tanh(conv(Z, W) + conv(X, V) + c) on images.
Tensor layer(const Model& m, const Tensor& z, const Tensor& x, const TensorList& lam) {
  if (m.conv) {
    const ConvOptions same{.padding = {1, 1}};
    const Tensor img = reshape(x, {x.size(0), 1, m.side, m.side});
    return tanh(conv2d(z, lam[kA], {}, same) + conv2d(img, lam[kB], lam[kC], same));
  }
  return tanh(matmul_t(z, lam[kA], false, true) + matmul_t(x, lam[kB], false, true) + lam[kC]);
}
Tensor logits(const Model& m, const Tensor& z, const TensorList& lam) {
  return matmul_t(m.conv ? global_avg_pool2d(z) : z, lam[kU], false, true) + lam[kb];
}
Tensor loss(const Model& m, const Tensor& z, const std::vector<std::int64_t>& y, const TensorList& lam,
            double weight_decay) {
  Tensor e = cross_entropy(logits(m, z, lam), y);
  if (weight_decay == 0.0) return e;
  return e + (0.5 * weight_decay) * (squared_norm(lam[kA]) + squared_norm(lam[kB]) + squared_norm(lam[kU]));
}

struct Score {
  double loss = 0, accuracy = 0;
};

// Held-out examples: their equilibrium by fixed-point iteration to a tolerance (per
// element about 1e-8), then the cross-entropy and accuracy of the readout.
Score score(const Model& m, const Data& d, const TensorList& lam) {
  const Tensor x = d.x;
  const Shape states = m.states(x.size(0));
  bilevel::Problem p = bilevel::Problem::from_map(
      [m, x](const TensorList& w, const TensorList& l) { return TensorList{layer(m, w[0], x, l)}; },
      [](const TensorList&, const TensorList&) { return scalar(0.0); }, {zeros(states)});
  const double tol = 1e-8 * std::sqrt(static_cast<double>(states.numel()));
  const bilevel::InnerResult r =
      bilevel::solve_inner(p, lam, p.initial_state(), {.max_iterations = 10000, .tolerance = Tolerance::absolute(tol)});
  NoGradGuard off;
  const Tensor lg = logits(m, r.state[0], lam);
  return {cross_entropy(lg, d.y).item(), multiclass_accuracy(lg, d.y)};
}

// A seeded starting point: ‖A‖₂ about 0.5 (then clipped to the radius), unit-scale
// pre-activations, and a random readout so that every part of λ has a nonzero gradient.
TensorList initial_lambda(const Model& m, std::int64_t d, std::int64_t classes, double radius, std::uint64_t seed) {
  Generator gen(seed ^ 0xe9b1f5a3c7d2ull);
  const std::int64_t h = m.hidden;
  const double sh = std::sqrt(static_cast<double>(h));
  if (m.conv) {  // ‖W‖_F = radius/6: the bound 3‖W‖_F is half the radius
    Tensor w = randn({h, h, 3, 3}, gen);
    w = w * (radius / 6.0 / std::sqrt(squared_norm(w).item()));
    Tensor v = randn({h, 1, 3, 3}, gen) * (1.0 / 3.0);
    return {w, v, zeros({h}), randn({classes, h}, gen) * (1.0 / sh), zeros({classes})};
  }
  Tensor a = bilevel::project_spectral_ball(randn({h, h}, gen) * (0.25 / sh), radius);
  Tensor b = randn({h, d}, gen) * (1.0 / std::sqrt(static_cast<double>(d)));
  Tensor u = randn({classes, h}, gen) * (1.0 / sh);
  return {a, b, zeros({h}), u, zeros({classes})};
}

// The episodic version: each example's state is its own fixed point, so a minibatch of
// examples is an episode — their states Z_ids [B, h] from 0 by T iterations of Φ on their rows
// alone, E the mean cross-entropy over them. The full batch of ids is the deterministic
// problem itself (rows() of the full batch is X, not a copy). Inside an episode there is
// nothing left to sample (one position per example): SID there is damped fixed-point
// iteration on the batch, and with η = 1 it is AID-FP.
bilevel::EpisodicProblem episodic_version(const Model& m, const Data& train, double weight_decay) {
  const Tensor x = train.x;
  const std::vector<std::int64_t> y = train.y;
  auto build = [m, x, y, weight_decay](const bilevel::Batch& ids) {
    const Tensor xb = bilevel::rows(x, ids);
    const std::vector<std::int64_t> yb = bilevel::is_full_batch(ids, x.size(0)) ? y : bilevel::pick(y, ids);
    const TensorList z0{zeros(m.states(static_cast<std::int64_t>(ids.size())))};
    auto phi = [m, xb](const TensorList& w, const TensorList& lam) { return TensorList{layer(m, w[0], xb, lam)}; };
    auto outer = [m, yb, weight_decay](const TensorList& w, const TensorList& lam) {
      return loss(m, w[0], yb, lam, weight_decay);
    };
    bilevel::Episode e{.problem = bilevel::Problem::from_map(phi, outer, z0)};
    e.stochastic = bilevel::StochasticProblem::from_map(
        [phi](const TensorList& w, const TensorList& lam, const bilevel::Batch&) { return phi(w, lam); }, 1,
        [outer](const TensorList& w, const TensorList& lam, const bilevel::Batch&) { return outer(w, lam); }, 1, z0);
    return e;
  };
  return bilevel::EpisodicProblem(x.size(0), build, "example",
                                  "minibatches of training examples, each state from its own fixed point");
}

Instance make(const ProblemConfig& config) {
  const Settings s = parse(config);
  const Sets data = load(s, config);
  const std::int64_t n = data.train.x.size(0), d = data.train.x.size(1), h = s.hidden;
  const Model m{s.conv, h, static_cast<std::int64_t>(std::lround(std::sqrt(static_cast<double>(d))))};
  if (m.conv && m.side * m.side != d)
    throw ValueError(fmt::format("problem '{}': map=conv needs square images, got {} features", kName, d));

  Instance inst;
  inst.summary =
      m.conv ? fmt::format("convolutional deep-equilibrium classifier on {} ({} train / {} validation / {} test, "
                           "{}×{} images, {} classes): w = Z_train [{}, {}, {}, {}] with Z = tanh(conv(Z, W) + "
                           "conv(X, V) + c), 3×3 kernels, 3‖W‖_F ≤ {}; logits U·mean(Z) + b",
                           s.dataset, n, data.val.x.size(0), data.test.x.size(0), m.side, m.side, data.classes, n, h,
                           m.side, m.side, s.radius)
             : fmt::format("deep-equilibrium classifier on {} ({} train / {} validation / {} test, {} features, {} "
                           "classes): w = Z_train [{}, {}] with Z = tanh(Z Aᵀ + X Bᵀ + c), λ = (A [{}, {}], ‖A‖₂ ≤ "
                           "{}; B [{}, {}]; c; U [{}, {}]; b)",
                           s.dataset, n, data.val.x.size(0), data.test.x.size(0), d, data.classes, n, h, h, h,
                           s.radius, h, d, data.classes, h);

  bilevel::EpisodicProblem episodic = episodic_version(m, data.train, s.weight_decay);
  inst.problem = episodic.episode(bilevel::full_batch(n)).problem;
  inst.inner_examples = inst.outer_examples = n;
  inst.lambda0 = initial_lambda(m, d, data.classes, s.radius, config.seed);
  inst.projections = {m.conv ? bilevel::Projection::l2_ball(s.radius / 3.0) : bilevel::Projection::spectral_ball(s.radius),
                      bilevel::Projection::identity(), bilevel::Projection::identity(),
                      bilevel::Projection::identity(), bilevel::Projection::identity()};

  const Data val = data.val, test = data.test, train = data.train;
  inst.validation = [m, val](const TensorList&, const TensorList& lam) { return score(m, val, lam).accuracy; };
  inst.validation_name = "val_acc";
  // The JMLR 2023 protocol: a minibatch of examples per step, T = K = 3 iterations from 0
  // (radius 0.5 there: -o radius=0.5).
  inst.episodic = EpisodicVersion{.problem = std::move(episodic),
                                  .validation = inst.validation,
                                  .validation_name = "val_acc",
                                  .validation_every = 10,
                                  .defaults = {.method = "sid",
                                               .inner_steps = 3,
                                               .linear_steps = 3,
                                               .outer_steps = 300,
                                               .outer_step_size = 0.01,
                                               .update = bilevel::OuterUpdate::adam,
                                               .batch_size = 0},
                                  .meta_batch = std::min<std::int64_t>(100, n),
                                  .preferred = false};
  inst.evaluate = [m, train, val, test](const TensorList& lam) {
    const Score te = score(m, test, lam);
    Metrics out{{"test_loss", te.loss},
                {"test_accuracy", te.accuracy},
                {"validation_accuracy", score(m, val, lam).accuracy},
                {"train_accuracy", score(m, train, lam).accuracy}};
    if (m.conv) out.push_back({"contraction_bound", 3.0 * std::sqrt(squared_norm(lam[kA]).item())});
    else out.push_back({"spectral_norm_A", bilevel::singular_values(lam[kA]).front()});
    return out;
  };
  inst.defaults = {.method = "aid-gmres",
                   .inner_steps = 40,
                   .linear_steps = 20,
                   .outer_steps = 100,
                   .outer_step_size = 0.01,
                   .update = bilevel::OuterUpdate::adam,
                   .batch_size = 0};
  return inst;
}

}  // namespace

ProblemInfo equilibrium_classifier() {
  return {
      .name = kName,
      .family = "equilibrium",
      .summary = "deep-equilibrium classifier z = tanh(Az + Bx + c), ‖A‖₂ ≤ radius, trained by implicit "
                 "differentiation (w = training states, λ = all weights)",
      .datasets = {"digits", "fashion_mnist"},
      .options =
          {
              {"hidden", "32 (small: 4)", "h, the size of the equilibrium state"},
              {"radius", "0.9", "bound on ‖A‖₂, in (0, 1): the contraction constant of Φ"},
              {"train_size", "1000 (small: 24)", "training examples (the inner state)"},
              {"val_size", "300 digits, 500 fashion_mnist (small: 20)", "validation examples (val_acc)"},
              {"test_size", "497 digits (the rest), 1000 fashion_mnist (small: 40)", "test examples (evaluate)"},
              {"pool", "1 digits, 2 fashion_mnist (small: 4, 7)", "average-pool the images p×p (p divides the side)"},
              {"weight_decay", "0", "½·wd·(‖A‖² + ‖B‖² + ‖U‖²) added to the training loss"},
              {"map", "dense", "dense (z = tanh(Az + Bx + c)) or conv (h-channel image states, 3×3 convolutions, "
                               "3‖W‖_F ≤ radius)"},
          },
      .make = make,
      .warm_start = "inner+linear",
      .warm_start_why = "full batch: the same training states are re-solved at a nearby λ each step; with "
                        "--meta-batch B (minibatches of examples, the JMLR 2023 protocol) the states start from 0 "
                        "(none), or from each example's last state (full)",
  };
}

}  // namespace hyperad::problems::detail
