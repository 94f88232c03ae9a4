// The differentiation API: grad options, vjp pullbacks, hvp, value_and_grad, Jacobians.
#include "autodiff/ad_harness.hpp"

using namespace hyperad;
using hyperad::testing::expect_ad;
using hyperad::testing::values;

namespace {
using V = TensorList;
}

TEST_CASE("create_graph records the backward pass; without it results are plain") {
  TapeScope scope;
  Tensor x = tensor({0.3, -0.7});
  x.requires_grad_();
  Tensor y = sum(sin(x) * x);
  GradOptions cg;
  cg.create_graph = true;
  Tensor g = grad(y, {x}, cg)[0];
  CHECK(g.requires_grad());
  CHECK_FALSE(grad(y, {x})[0].requires_grad());
  // d²/dx² (x sin x) = 2 cos x − x sin x
  std::vector<double> h = values(grad(sum(g), {x})[0]);
  for (int i = 0; i < 2; ++i) {
    double xi = i == 0 ? 0.3 : -0.7;
    CHECK(h[i] == doctest::Approx(2 * std::cos(xi) - xi * std::sin(xi)).epsilon(1e-12));
  }
  // Output equal to the input: the gradient is the seed.
  CHECK(values(grad(sum(x), {x})[0]) == std::vector<double>{1, 1});
}

TEST_CASE("grad of several outputs with seeds propagates them in one sweep") {
  TapeScope scope;
  Tensor x = tensor({1.0, 2.0});
  x.requires_grad_();
  Tensor a = x * 3.0, b = square(x);
  TensorList outs{a, b}, seeds{tensor({1.0, 0.0}), tensor({0.0, 1.0})}, ins{x};
  CHECK(values(grad(outs, seeds, ins)[0]) == std::vector<double>{3, 4});
}

TEST_CASE("a vjp pullback is reusable: K calls equal K separate gradients") {
  Generator gen(5);
  Tensor A = randn({4, 4}, gen), w = randn({4}, gen), lam = randn({4}, gen);
  TapeScope scope;
  // A [4, 1]-valued function of two vectors.
  auto f = [&A](const Tensor& w_, const Tensor& l_) {
    return sum_to(A * tanh(w_ * 0.5) * l_, Shape{4, 1}) + reshape(exp(w_ * l_), {4, 1});
  };
  Vjp r = vjp(f, w, lam);
  REQUIRE(r.value.size() == 1);
  CHECK_FALSE(r.value[0].requires_grad());
  for (int k = 0; k < 5; ++k) {
    Tensor u = randn({4, 1}, gen);
    TensorList pb = r.pullback(u);
    TapeScope inner;
    Tensor wl = w.detach(), ll = lam.detach();
    wl.requires_grad_();
    ll.requires_grad_();
    GradOptions o;
    o.seed = u;
    TensorList direct = grad(f(wl, ll), {wl, ll}, o);
    CHECK(values(pb[0]) == values(direct[0]));
    CHECK(values(pb[1]) == values(direct[1]));
  }
  CHECK(r.pullback.calls() == 5);
  CHECK_THROWS_WITH_AS(r.pullback(ones({3})), doctest::Contains("does not match output"), ShapeError);
}

TEST_CASE("a pullback whose segment was rewound refuses to run") {
  Pullback p;
  {
    TapeScope scope;
    p = vjp([](const Tensor& x) { return exp(x); }, ones({2})).pullback;
  }
  CHECK_THROWS_WITH_AS(p(ones({2})), doctest::Contains("Pullback: the recorded function was recorded in a tape scope that has been rewound"),
                       TapeError);
}

TEST_CASE("the pullback of a map containing a gradient: Phi(w, l) = w - eta grad_w L(w, l)") {
  // L(w, l) = Σ softplus(w·l) + ½ Σ w²; Φ contains ∇_w L, so its pullback needs second order.
  const double eta = 0.3;
  TensorFn phi = [eta](const V& x) {
    Tensor w = x[0], l = x[1];
    if (!w.requires_grad()) w = w.detach().requires_grad_();
    Tensor L = sum(softplus(w * l)) + 0.5 * sum(square(w));
    GradOptions o;
    o.create_graph = true;
    return w - eta * grad(L, {w}, o)[0];
  };
  Generator gen(11);
  expect_ad("gradient-step map", phi, {randn({5}, gen), randn({5}, gen)}, {.second_order = true, .check_f32 = false, .plain_check = false});
  // Closed form: ∂_wΦᵀu = u − η(σ'(wl) l² + 1)u, ∂_lΦᵀu = −η(σ(wl) + σ'(wl) w l) u.
  TapeScope scope;
  Tensor w = randn({5}, gen), l = randn({5}, gen), u = randn({5}, gen);
  Vjp r = vjp([&](const V& x) { return V{phi(x)}; }, V{w, l});
  TensorList pb = r.pullback(u);
  Tensor s = sigmoid(w * l), ds = s * (1.0 - s);
  Tensor ew = u - eta * (ds * l * l + 1.0) * u, el = -eta * (s + ds * w * l) * u;
  for (int i = 0; i < 5; ++i) {
    CHECK(pb[0].at({i}) == doctest::Approx(ew.at({i})).epsilon(1e-12));
    CHECK(pb[1].at({i}) == doctest::Approx(el.at({i})).epsilon(1e-12));
  }
}

TEST_CASE("grad with recording off is refused with its cause; gradient_of works recorded and not") {
  // Φ(w, l) = w − η∇_w L(w, l), L = Σ softplus(w·l) + ½‖w‖²: ∇_w L = σ(w·l)·l + w.
  const double eta = 0.3;
  auto inner_loss = [](const Tensor& w, const Tensor& l) { return sum(softplus(w * l)) + 0.5 * sum(square(w)); };
  auto phi_with_grad = [&](const V& x, bool allow_unused) {
    Tensor w = x[0].requires_grad() ? x[0] : x[0].detach().requires_grad_();
    GradOptions o;
    o.create_graph = true;
    o.allow_unused = allow_unused;
    return w - eta * grad(inner_loss(w, x[1]), {w}, o)[0];
  };
  TensorFn phi = [&](const V& x) {
    return x[0] - eta * gradient_of([&](const V& ws) { return inner_loss(ws[0], x[1]); }, {x[0]}, {x[1]})[0];
  };
  Generator gen(12);
  const Tensor w = randn({5}, gen), l = randn({5}, gen);
  const std::vector<double> expected = values(w - eta * (sigmoid(w * l) * l + w));
  {
    // Unrecorded (how inner solves and finite differences evaluate Φ): grad cannot see the
    // loss's history. It used to blame the input ("does not depend on"), or with
    // allow_unused return zeros, turning the gradient step into the identity.
    NoGradGuard off;
    for (bool allow_unused : {false, true})
      CHECK_THROWS_WITH_AS(phi_with_grad({w, l}, allow_unused),
                           doctest::Contains("was computed without recording: recording is off here"), TapeError);
    CHECK_THROWS_WITH_AS(grad(sum(w), {w}), doctest::Contains("use gradient_of(f, w)"), TapeError);
    const std::size_t records = Tape::current().num_records();
    std::vector<double> got = values(phi({w, l}));
    CHECK(Tape::current().num_records() == records);  // its own scope, rewound
    for (int i = 0; i < 5; ++i) CHECK(got[i] == doctest::Approx(expected[static_cast<std::size_t>(i)]).epsilon(1e-14));
  }
  // Recorded (ITD, AID's pullbacks): the gradient's backward is on the tape, so Φ's
  // derivatives include ∇²L, to first and second order.
  expect_ad("gradient_of map", phi, {w, l}, {.second_order = true, .check_f32 = false, .plain_check = false});
  TapeScope scope;
  std::vector<double> recorded = values(phi({w, l}));
  for (int i = 0; i < 5; ++i) CHECK(recorded[i] == doctest::Approx(expected[static_cast<std::size_t>(i)]).epsilon(1e-14));
  CHECK_THROWS_WITH_AS(gradient_of([](const V& xs) { return xs[0] * 2.0; }, {w}),
                       doctest::Contains("gradient_of: the function must return a one-element tensor, got [5]"), ShapeError);
}

TEST_CASE("hvp and value_and_grad against closed forms") {
  // f(x) = ½ xᵀ A x with A symmetric: ∇f = A x, ∇²f v = A v.
  Tensor A = tensor({2, 1, 0, 1, 3, 1, 0, 1, 4}, Shape{3, 3});
  auto f = [&A](const Tensor& x) {
    Tensor Ax = sum(A * reshape(x, {1, 3}), {1});
    return 0.5 * sum(x * Ax);
  };
  Tensor x = tensor({1.0, -1.0, 2.0}), v = tensor({0.5, 0.0, 1.0});
  CHECK(values(hvp(f, x, v)) == std::vector<double>{1.0, 1.5, 4.0});
  ValueAndGrad vg = value_and_grad([&](const V& xs) { return f(xs[0]); }, {x});
  CHECK(values(vg.grads[0]) == std::vector<double>{1.0, 0.0, 7.0});
  CHECK(vg.value.item() == doctest::Approx(0.5 * (1 * 1 + (-1) * 0 + 2 * 7)));
  // A function linear in x has a zero Hessian.
  CHECK(values(hvp([](const Tensor& t) { return sum(t * 3.0); }, x, v)) == std::vector<double>{0, 0, 0});
  CHECK(check_hvp([&](const V& xs) { return sum(exp(xs[0]) * xs[0]); }, {x}, {v}).ok);
  CHECK_THROWS_WITH_AS(hvp(f, x, ones({2})), doctest::Contains("hvp: direction 0 has shape [2] but input 0 has shape [3]"),
                       ShapeError);
}

TEST_CASE("jacobian by reverse mode equals finite differences and the closed form") {
  TensorFn f = [](const V& x) { return x[0] * x[0] * 2.0; };
  Tensor x = tensor({1.0, 3.0});
  CHECK(values(jacobian(f, {x}, 0)) == std::vector<double>{4, 0, 0, 12});
  std::vector<double> fd = values(jacobian_fd(f, {x}, 0));
  CHECK(fd[0] == doctest::Approx(4.0).epsilon(1e-8));
  CHECK(fd[3] == doctest::Approx(12.0).epsilon(1e-8));
  // The checker reports a wrong derivative.
  static const OpDef wrong{"wrong", [](Backward& b) { b.accumulate(0, b.grad_out() * 1.01); }};
  TensorFn bad = [](const V& xs) {
    Tensor y;
    {
      NoGradGuard off;
      y = xs[0] * 1.0;
    }
    return record(wrong, std::move(y), {&xs[0]});
  };
  CheckReport r = check_gradient(bad, {x});
  CHECK_FALSE(r.ok);
  CHECK(r.message.find("reverse mode gives 1.01") != std::string::npos);
  CheckOptions proj;
  proj.max_full_elements = 0;  // force the random-projection check
  CHECK_FALSE(check_gradient(bad, {x}, proj).ok);
  CHECK(check_gradient(f, {x}, proj).ok);
}
