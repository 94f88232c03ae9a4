// Whole models end to end: an MLP's loss (first and second order against finite
// differences), logistic regression's gradient and Hessian-vector product against their
// closed forms, and reusable pullbacks (vjp), including through a gradient step.
#include <cmath>

#include "autodiff/ad_harness.hpp"

using namespace hyperad;
using hyperad::testing::values;

namespace {
Generator gen(31337);
Tensor rn(const Shape& s) { return randn(s, gen); }
Tensor pm1(const Shape& s) { return sub(mul_scalar(greater(rand(s, gen), full({}, 0.5)), 2.0), ones({})); }
using V = TensorList;

// ‖a − b‖ ≤ rtol ‖b‖
void check_rel(const Tensor& a, const Tensor& b, double rtol) {
  std::vector<double> x = values(a), y = values(b);
  REQUIRE(x.size() == y.size());
  double diff = 0, ref = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    diff += (x[i] - y[i]) * (x[i] - y[i]);
    ref += y[i] * y[i];
  }
  CHECK_MESSAGE(std::sqrt(diff) <= rtol * std::sqrt(ref), "relative error " << std::sqrt(diff / ref));
}

// Two-layer tanh MLP with a cross-entropy loss; p = {W1 [d, h], b1 [h], W2 [h, C], b2 [C]}.
Tensor mlp_loss(const V& p, const Tensor& X, const std::vector<std::int64_t>& labels) {
  Tensor h = tanh(matmul(X, p[0]) + p[1]);
  return cross_entropy(matmul(h, p[2]) + p[3], labels);
}

double sigma(double t) { return 1.0 / (1.0 + std::exp(-t)); }
}  // namespace

TEST_CASE("MLP loss: gradient and second order end to end") {
  const std::vector<std::int64_t> labels{0, 2, 1, 2, 0};
  Tensor X = rn({5, 3});
  TensorFn f = [&](const V& p) { return mlp_loss(p, X, labels); };
  // Small: every Jacobian in full.
  V small{mul_scalar(rn({3, 4}), 0.7), rn({4}), rn({4, 3}), rn({3})};
  CheckReport r1 = check_gradient(f, small);
  CHECK_MESSAGE(r1.ok, r1.message);
  CheckReport r2 = check_second_order(f, small);
  CHECK_MESSAGE(r2.ok, r2.message);
  // Wider hidden layer: W1 and W2 exceed max_full_elements, so random projections.
  V wide{mul_scalar(rn({3, 24}), 0.5), rn({24}), mul_scalar(rn({24, 3}), 0.3), rn({3})};
  CheckReport r3 = check_gradient(f, wide);
  CHECK_MESSAGE(r3.ok, r3.message);
  CheckReport r4 = check_second_order(f, wide);
  CHECK_MESSAGE(r4.ok, r4.message);
  // A loss value sanity check: zero weights give uniform predictions, loss log C.
  V zero{zeros({3, 4}), zeros({4}), zeros({4, 3}), zeros({3})};
  CHECK(f(zero).item() == doctest::Approx(std::log(3.0)).epsilon(1e-14));
}

TEST_CASE("logistic regression: gradient and HVP against closed forms") {
  const std::int64_t n = 40, d = 6;
  Tensor X = rn({n, d}), y = pm1({n}), w = mul_scalar(rn({d}), 0.5), v = rn({d});
  auto loss = [&](const Tensor& w) { return logistic_loss(matmul(X, w), y); };

  // Closed forms in plain double loops: with z = Xw, σ(−y z) = 1 − σ(y z);
  //   ∇L = −Xᵀ(y ⊙ σ(−y z)) / n,   ∇²L v = Xᵀ diag(σ(z)(1 − σ(z))) X v / n.
  std::vector<double> Xv = values(X), yv = values(y), wv = values(w), vv = values(v);
  std::vector<double> g(d, 0.0), hv(d, 0.0);
  for (std::int64_t i = 0; i < n; ++i) {
    double z = 0, xv = 0;
    for (std::int64_t j = 0; j < d; ++j) {
      z += Xv[i * d + j] * wv[j];
      xv += Xv[i * d + j] * vv[j];
    }
    const double s = sigma(z), a = -yv[i] * sigma(-yv[i] * z) / n, b = s * (1 - s) * xv / n;
    for (std::int64_t j = 0; j < d; ++j) {
      g[j] += a * Xv[i * d + j];
      hv[j] += b * Xv[i * d + j];
    }
  }

  Tensor wr = w.clone().requires_grad_();
  check_rel(grad(loss(wr), {wr})[0], tensor(g, {d}), 1e-10);
  check_rel(hvp(loss, w, v), tensor(hv, {d}), 1e-10);
  // The same through the multi-input form, with y differentiable too: the w block is unchanged.
  TensorList hv2 = hvp([&](const V& p) { return logistic_loss(matmul(X, p[0]), p[1]); }, {w, y},
                                {v, zeros({n})});
  check_rel(hv2[0], tensor(hv, {d}), 1e-10);

  // check_hvp: hvp against central differences of the gradient, in several directions.
  TensorFn f = [&](const V& p) { return logistic_loss(matmul(X, p[0]), y); };
  for (int k = 0; k < 3; ++k) {
    CheckReport r = check_hvp(f, {w}, {rn({d})});
    CHECK_MESSAGE(r.ok, r.message);
  }
  // ... and in (w, y) jointly.
  CheckReport r = check_hvp([&](const V& p) { return logistic_loss(matmul(X, p[0]), p[1], Reduction::sum); }, {w, y},
                            {rn({d}), rn({n})});
  CHECK_MESSAGE(r.ok, r.message);
}

TEST_CASE("a pullback reused K times equals K separate gradient calls") {
  Tensor X = rn({4, 3}), w = rn({3});
  auto F = [&](const Tensor& w) { return tanh(matmul(X, w)) * sum(w); };
  Vjp res = vjp(F, w);
  check_rel(res.value[0], F(w), 1e-15);
  for (int k = 0; k < 5; ++k) {
    Tensor u = rn({4});
    TensorList pulled = res.pullback(u);
    Tensor wr = w.clone().requires_grad_();
    GradOptions o;
    o.seed = u;
    check_rel(pulled[0], grad(F(wr), {wr}, o)[0], 1e-14);
  }
  CHECK(res.pullback.calls() == 5);
}

TEST_CASE("pullback of a gradient step Φ(w, λ) = w − η∇_w L(w, λ) for a quadratic L") {
  // L = ½wᵀAw − λᵀw with A symmetric: ∇_w L = Aw − λ, so Φ = w − η(Aw − λ),
  // ∂_wΦᵀu = u − ηAu and ∂_λΦᵀu = ηu.
  const std::int64_t d = 4;
  const double eta = 0.3;
  Tensor M = rn({d, d});
  Tensor A = add(matmul(transpose(M), M), eye(d));
  Tensor w = rn({d}), lam = rn({d});
  auto phi = [&](const Tensor& w, const Tensor& l) {
    Tensor L = mul_scalar(dot(w, matmul(A, w)), 0.5) - dot(l, w);
    Tensor g = grad(L, {w}, {.create_graph = true})[0];
    return w - g * eta;
  };
  Vjp res = vjp(phi, w, lam);
  // Φ's value: w − η(Aw − λ).
  check_rel(res.value[0], w - (matmul(A, w) - lam) * eta, 1e-14);
  for (int k = 0; k < 3; ++k) {
    Tensor u = rn({d});
    TensorList pulled = res.pullback(u);
    REQUIRE(pulled.size() == 2);
    check_rel(pulled[0], u - matmul(A, u) * eta, 1e-13);
    check_rel(pulled[1], u * eta, 1e-14);
  }
  CHECK(res.pullback.calls() == 3);
}
