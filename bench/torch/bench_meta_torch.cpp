// One meta-learning hypergradient with the convolutional representation, in hyperad and in
// libtorch, float64, in one process on identical data and weights (optional: built only
// when CMake finds Torch).
//
// A meta-batch of B = 4 tasks, 5-way 5-shot with 15 queries per class, on 1×28×28 images
// (random pixels and labels: the work does not depend on them); λ the 4-block CNN
// (cnn_fixture.hpp, batch normalization per task), each task a linear head W_i on [h, 1]:
//   inner  L(W, λ) = Σ_i CE_i^support(W_i) + (ρ/2)‖W_i‖²,   T = 10 gradient steps from 0
//   outer  E(W, λ) = (1/B) Σ_i CE_i^query(W_i)
// and AID-CG with K = 10 iterations on the Hessian system. hyperad runs its AID on the
// bilevel::Problem of the gradient step; libtorch does what hypertorch does: Hessian-vector
// products and the mixed term by double backward through a recorded ∇_W L. Reported: the
// median times over interleaved reps, the median per-rep ratio torch / hyperad, and the
// relative difference of the two hypergradients.
//
//   bench_meta_torch [--reps N] [--threads T]        writes bench/results/meta_torch.csv
#include <omp.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>

#include "bench_util.hpp"
#include "cnn_fixture.hpp"
#include "hyperad/autodiff/runtime.hpp"
#include "hyperad/bilevel/aid.hpp"
#include "hyperad/bilevel/problem.hpp"
#include "hyperad/hyperad.hpp"

using hyperad::Tensor;
using hyperad::TensorList;
namespace hb = hyperad::bench;

namespace {

constexpr std::int64_t kTasks = 4, kWays = 5, kShots = 5, kQueries = 15, kSide = 28;
constexpr int kInnerSteps = 10, kLinearSteps = 10;
constexpr double kRho = 1.0;

struct Tasks {
  Tensor support, query;  // [B·n, 1, 28, 28]
  std::vector<std::int64_t> support_labels, query_labels;
};

Tasks make_tasks(hyperad::Generator& gen) {
  Tasks t;
  t.support = hyperad::randn({kTasks * kWays * kShots, 1, kSide, kSide}, gen);
  t.query = hyperad::randn({kTasks * kWays * kQueries, 1, kSide, kSide}, gen);
  for (std::int64_t i = 0; i < kTasks * kWays * kShots; ++i) t.support_labels.push_back(i % kWays);
  for (std::int64_t i = 0; i < kTasks * kWays * kQueries; ++i) t.query_labels.push_back(i % kWays);
  return t;
}

// ---- hyperad ------------------------------------------------------------------------

// [h, 1] per example, tasks stacked: [B, n, 33].
Tensor features(const Tensor& x, const TensorList& lam) {
  const Tensor h = hyperad::reshape(hb::cnn_forward(x, lam, kTasks), {kTasks, x.size(0) / kTasks, hb::kCnnChannels});
  return hyperad::concat({h, hyperad::ones({kTasks, x.size(0) / kTasks, 1})}, 2);
}
// Σ_i mean CE of task i's heads W [B, 5, 33] on features z [B, n, 33].
Tensor head_loss(const Tensor& z, const Tensor& w, const std::vector<std::int64_t>& labels) {
  const Tensor logits = hyperad::reshape(hyperad::matmul_t(z, w, false, true), {z.size(0) * z.size(1), kWays});
  return hyperad::cross_entropy(logits, labels, hyperad::Reduction::sum) / double(z.size(1));
}

TensorList hyperad_hypergradient(const Tasks& t, const TensorList& lam, double step) {
  namespace bl = hyperad::bilevel;
  auto inner = [&t](const TensorList& w, const TensorList& l) {
    return head_loss(features(t.support, l), w[0], t.support_labels) + 0.5 * kRho * hyperad::sum(hyperad::square(w[0]));
  };
  auto outer = [&t](const TensorList& w, const TensorList& l) {
    return head_loss(features(t.query, l), w[0], t.query_labels) / double(kTasks);
  };
  bl::Problem p = bl::Problem::gradient_descent(inner, step, outer, {hyperad::zeros({kTasks, kWays, hb::kCnnChannels + 1})});
  bl::AID aid({.inner_steps = kInnerSteps,
               .inner_tolerance = hyperad::Tolerance::absolute(0),
               .solver = hyperad::linsolve::cg(),
               .linear_steps = kLinearSteps,
               .linear_tolerance = hyperad::Tolerance::absolute(0)});
  return aid.hypergradient(p, lam).grad;
}

// ---- libtorch -----------------------------------------------------------------------

torch::Tensor features(const torch::Tensor& x, const std::vector<torch::Tensor>& lam) {
  const torch::Tensor h = hb::cnn_forward(x, lam, kTasks).reshape({kTasks, x.size(0) / kTasks, hb::kCnnChannels});
  return torch::cat({h, torch::ones({kTasks, x.size(0) / kTasks, 1}, h.options())}, 2);
}
torch::Tensor head_loss(const torch::Tensor& z, const torch::Tensor& w, const torch::Tensor& labels) {
  const torch::Tensor logits = torch::matmul(z, w.transpose(1, 2)).reshape({-1, kWays});
  return torch::nn::functional::cross_entropy(
             logits, labels, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum)) /
         double(z.size(1));
}

std::vector<torch::Tensor> torch_hypergradient(const torch::Tensor& xs, const torch::Tensor& ys,
                                               const torch::Tensor& xq, const torch::Tensor& yq,
                                               const std::vector<torch::Tensor>& lam, double step) {
  auto inner = [&](const torch::Tensor& w, const torch::Tensor& zs) {
    return head_loss(zs, w, ys) + 0.5 * kRho * w.square().sum();
  };
  // T steps from 0 at fixed features.
  torch::Tensor w = torch::zeros({kTasks, kWays, hb::kCnnChannels + 1}, torch::kFloat64);
  {
    torch::Tensor zs;
    {
      torch::NoGradGuard off;
      zs = features(xs, lam);
    }
    for (int k = 0; k < kInnerSteps; ++k) {
      torch::Tensor wr = w.detach().requires_grad_();
      const torch::Tensor g = torch::autograd::grad({inner(wr, zs)}, {wr})[0];
      w = (wr - step * g).detach();
    }
  }
  // ∇_W E and ∇_λ E at the final W.
  torch::Tensor wr = w.detach().requires_grad_();
  std::vector<torch::Tensor> wl{wr};
  for (const torch::Tensor& l : lam) wl.push_back(l);
  const auto ge = torch::autograd::grad({head_loss(features(xq, lam), wr, yq) / double(kTasks)}, wl);
  // CG on ∇²_W L v = ∇_W E, through a recorded ∇_W L (features with λ on the tape).
  const torch::Tensor gw = torch::autograd::grad({inner(wr, features(xs, lam))}, {wr}, {}, true, true)[0];
  auto hvp = [&](const torch::Tensor& v) { return torch::autograd::grad({gw}, {wr}, {v}, true)[0]; };
  torch::Tensor v = torch::zeros_like(wr), r = ge[0].clone(), d = r.clone();
  double rr = r.square().sum().item<double>();
  for (int k = 0; k < kLinearSteps && rr > 0; ++k) {
    const torch::Tensor ad = hvp(d);
    const double alpha = rr / (d * ad).sum().item<double>();
    v = v + alpha * d;
    r = r - alpha * ad;
    const double rr_new = r.square().sum().item<double>();
    d = r + (rr_new / rr) * d;
    rr = rr_new;
  }
  // h = ∇_λ E − ∇²_{λW} L v
  const auto mixed = torch::autograd::grad({gw}, lam, {v}, false, true);
  std::vector<torch::Tensor> h;
  for (std::size_t i = 0; i < lam.size(); ++i)
    h.push_back((ge[i + 1].defined() ? ge[i + 1] : torch::zeros_like(lam[i])) -
                (mixed[i].defined() ? mixed[i] : torch::zeros_like(lam[i])));
  return h;
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 7, threads = 1;
  hb::parse_flags(argc, argv, {{"--reps", &reps}, {"--threads", &threads}});
  hyperad::runtime::set_num_threads(threads);
  omp_set_num_threads(threads);
  torch::set_num_threads(threads);

  hyperad::Generator gen(2);
  const Tasks t = make_tasks(gen);
  const TensorList lam = hb::cnn_params(1, gen, hyperad::Dtype::f64);
  // The inner step 1/L from the features at λ: L = ½ max ‖z‖² + ρ (softmax heads).
  double max_sq = 0;
  {
    hyperad::NoGradGuard off;
    const std::vector<double> z = features(t.support, lam).to_vector();
    for (std::size_t i = 0; i < z.size(); i += hb::kCnnChannels + 1) {
      double s = 0;
      for (std::int64_t j = 0; j < hb::kCnnChannels + 1; ++j) s += z[i + static_cast<std::size_t>(j)] * z[i + static_cast<std::size_t>(j)];
      max_sq = std::max(max_sq, s);
    }
  }
  const double step = 1.0 / (0.5 * max_sq + kRho);

  const torch::Tensor xs = hb::to_torch(t.support, torch::kFloat64), xq = hb::to_torch(t.query, torch::kFloat64);
  const torch::Tensor ys = torch::tensor(t.support_labels, torch::kInt64), yq = torch::tensor(t.query_labels, torch::kInt64);
  std::vector<torch::Tensor> tlam;
  for (const Tensor& l : lam) tlam.push_back(hb::to_torch(l, torch::kFloat64).requires_grad_());

  TensorList h1;
  std::vector<torch::Tensor> h2;
  h1 = hyperad_hypergradient(t, lam, step);  // warm up both
  h2 = torch_hypergradient(xs, ys, xq, yq, tlam, step);
  std::vector<double> th, tt, ratio;
  for (int r = 0; r < reps; ++r) {
    th.push_back(hyperad::bench::elapsed_ms([&] { h1 = hyperad_hypergradient(t, lam, step); }));
    tt.push_back(hyperad::bench::elapsed_ms([&] { h2 = torch_hypergradient(xs, ys, xq, yq, tlam, step); }));
    ratio.push_back(tt.back() / th.back());
  }
  std::vector<double> a, b;
  for (const Tensor& g : h1)
    for (double e : g.to_vector()) a.push_back(e);
  for (const torch::Tensor& g : h2)
    for (double e : hb::from_torch(g)) b.push_back(e);
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  const double diff = std::sqrt(num / den);
  fmt::print("meta-learning hypergradient, CNN representation, B = {} tasks {}-way {}-shot ({} queries), AID-CG "
             "T = {}, K = {}, float64, {} thread(s), {} interleaved reps\n",
             kTasks, kWays, kShots, kQueries, kInnerSteps, kLinearSteps, threads, reps);
  fmt::print("hyperad {:.1f} ms, libtorch {:.1f} ms (medians); torch/hyperad {:.2f}x; relative difference {:.1e}\n",
             hb::median(th), hb::median(tt), hb::median(ratio), diff);
  hb::write_csv(hb::results_path(fmt::format("meta_torch_{}t.csv", threads)),
                {{"threads", "hyperad_ms", "torch_ms", "ratio_torch_over_hyperad", "rel_diff"},
                 {std::to_string(threads), fmt::format("{:.2f}", hb::median(th)), fmt::format("{:.2f}", hb::median(tt)),
                  fmt::format("{:.3f}", hb::median(ratio)), fmt::format("{:.2e}", diff)}});
  return 0;
}
