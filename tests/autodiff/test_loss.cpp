// Fused losses through the harness (every op, every reduction), values against naive
// closed forms, stability at extreme inputs, and every error message.
#include <cmath>
#include <limits>

#include "autodiff/ad_harness.hpp"

using namespace hyperad;
using hyperad::testing::AdCase;
using hyperad::testing::expect_ad;
using hyperad::testing::values;

namespace {
Generator gen(4242);
Tensor rn(const Shape& s) { return randn(s, gen); }
// Random ±1 labels.
Tensor pm1(const Shape& s) { return sub(mul_scalar(greater(rand(s, gen), full({}, 0.5)), 2.0), ones({})); }
using V = TensorList;
using Labels = std::vector<std::int64_t>;
constexpr Reduction kAll[] = {Reduction::mean, Reduction::sum, Reduction::none};
const char* name_of(Reduction r) { return r == Reduction::mean ? "mean" : r == Reduction::sum ? "sum" : "none"; }

bool all_finite(const Tensor& t) {
  for (double v : values(t))
    if (!std::isfinite(v)) return false;
  return true;
}

// Naive row-wise softmax of a 2-D tensor, in double.
std::vector<double> naive_softmax(const Tensor& x) {
  std::vector<double> v = values(x), out(v.size());
  const std::int64_t n = x.size(0), C = x.size(1);
  for (std::int64_t i = 0; i < n; ++i) {
    double s = 0;
    for (std::int64_t j = 0; j < C; ++j) s += std::exp(v[i * C + j]);
    for (std::int64_t j = 0; j < C; ++j) out[i * C + j] = std::exp(v[i * C + j]) / s;
  }
  return out;
}

void check_near(const std::vector<double>& a, const std::vector<double>& b, double tol) {
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) CHECK_MESSAGE(std::abs(a[i] - b[i]) <= tol, "entry " << i << ": " << a[i] << " vs " << b[i]);
}

// Number of records an expression adds to the tape.
template <class F>
std::size_t records_of(F&& f) {
  std::size_t before = Tape::current().num_records();
  f();
  return Tape::current().num_records() - before;
}
}  // namespace

TEST_CASE("softmax and log_softmax: FD first and second order along any axis") {
  expect_ad("softmax last axis", [](const V& a) { return softmax(a[0]); }, {rn({3, 4})});
  expect_ad("softmax axis 0", [](const V& a) { return softmax(a[0], 0); }, {rn({3, 4})});
  expect_ad("softmax 3-D middle axis", [](const V& a) { return softmax(a[0], 1); }, {rn({2, 3, 2})});
  expect_ad("softmax 1-D", [](const V& a) { return softmax(a[0], 0); }, {rn({5})});
  expect_ad("log_softmax last axis", [](const V& a) { return log_softmax(a[0]); }, {rn({3, 4})});
  expect_ad("log_softmax axis -2", [](const V& a) { return log_softmax(a[0], -2); }, {rn({2, 3, 2})});
  // The input used twice, and a broadcast operand feeding the op.
  expect_ad("softmax(x) * x", [](const V& a) { return softmax(a[0]) * a[0]; }, {rn({2, 5})});
  expect_ad("log_softmax(x + b) broadcast", [](const V& a) { return log_softmax(a[0] + a[1]); },
            {rn({3, 4}), rn({4})});
}

TEST_CASE("softmax and log_softmax: values, one record, stability") {
  Tensor x = rn({3, 5});
  check_near(values(softmax(x)), naive_softmax(x), 1e-14);
  std::vector<double> ls = naive_softmax(x);
  for (double& v : ls) v = std::log(v);
  check_near(values(log_softmax(x)), ls, 1e-13);
  // Along axis 0 it is the softmax of the transpose, transposed.
  Tensor s0 = softmax(x, 0);
  std::vector<double> s0v = values(s0), xv = values(x);
  for (int j = 0; j < 5; ++j) {
    double z = 0;
    for (int i = 0; i < 3; ++i) z += std::exp(xv[i * 5 + j]);
    for (int i = 0; i < 3; ++i) CHECK(s0v[i * 5 + j] == doctest::Approx(std::exp(xv[i * 5 + j]) / z).epsilon(1e-13));
  }

  {
    TapeScope scope;
    Tensor xr = x.clone().requires_grad_();
    CHECK(records_of([&] { softmax(xr); }) == 1);
    CHECK(records_of([&] { log_softmax(xr); }) == 1);
  }

  // exp(1000) overflows: the naive formula gives NaN, the shifted one the right answer.
  for (Dtype d : {Dtype::f64, Dtype::f32}) {
    Tensor big = tensor({1000.0, 1000.0, -1000.0, 999.0, -1000.0, 1000.0}, {2, 3}, d);
    Tensor s = softmax(big), l = log_softmax(big);
    CHECK(all_finite(s));
    CHECK(all_finite(l));
    CHECK(s.at({0, 0}) == doctest::Approx(0.5));
    CHECK(s.at({0, 2}) == 0.0);
    CHECK(l.at({0, 2}) == doctest::Approx(-2000.0 - std::log(2.0)));
    CHECK(l.at({1, 0}) == doctest::Approx(-1.0 - std::log1p(std::exp(-1.0))));
    CHECK(l.at({1, 1}) == doctest::Approx(-2000.0 - std::log1p(std::exp(-1.0))).epsilon(1e-6));
    Tensor br = big.clone().requires_grad_();
    auto g = grad(sum(log_softmax(br) * tensor({1.0, 0.0, 0.0, 0.0, 0.0, 1.0}, {2, 3}, d)), {br});
    CHECK(all_finite(g[0]));
    // d/dx of log_softmax picked at one entry = onehot − softmax.
    CHECK(g[0].at({0, 0}) == doctest::Approx(0.5));
    CHECK(g[0].at({0, 1}) == doctest::Approx(-0.5));
    CHECK(g[0].at({1, 2}) == doctest::Approx(1.0 - 1.0 / (1.0 + std::exp(-1.0))).epsilon(1e-5));
  }
}

TEST_CASE("cross_entropy: FD first and second order for every reduction") {
  const Labels labels{2, 0, 3, 3};  // a repeated label
  for (Reduction r : kAll) {
    expect_ad(std::string("cross_entropy ") + name_of(r),
              [&](const V& a) { return cross_entropy(a[0], labels, r); }, {rn({4, 5})});
    // Logits used twice: through the loss and outside it.
    expect_ad(std::string("cross_entropy(x*x) + x ") + name_of(r),
              [&](const V& a) { return cross_entropy(a[0] * a[0], labels, r) * sum(a[0]); }, {rn({4, 5})});
  }
  // Logits that are themselves a broadcast sum (bias added to every row).
  expect_ad("cross_entropy(x + b)", [&](const V& a) { return cross_entropy(a[0] + a[1], labels); },
            {rn({4, 5}), rn({5})});
}

TEST_CASE("cross_entropy: values and gradient against closed forms") {
  Tensor x = rn({4, 3});
  const Labels labels{1, 0, 2, 1};
  // −log_softmax gathered at the labels.
  Tensor ls = log_softmax(x);
  std::vector<double> per(4);
  double total = 0;
  for (std::size_t i = 0; i < 4; ++i) total += per[i] = -ls.at({static_cast<std::int64_t>(i), labels[i]});
  CHECK(cross_entropy(x, labels).item() == doctest::Approx(total / 4).epsilon(1e-14));
  CHECK(cross_entropy(x, labels, Reduction::sum).item() == doctest::Approx(total).epsilon(1e-14));
  Tensor none = cross_entropy(x, labels, Reduction::none);
  CHECK(none.shape() == Shape{4});
  check_near(values(none), per, 1e-14);
  CHECK(cross_entropy(x, labels).shape().rank() == 0);

  // Gradient of the mean: (softmax − onehot) / n; of `none` with cotangent c: rows scaled by c.
  Tensor xr = x.clone().requires_grad_();
  std::vector<double> p = naive_softmax(x), want(p.size()), want_none(p.size());
  const std::vector<double> c{0.5, -1.0, 2.0, 3.0};
  for (std::size_t i = 0; i < 4; ++i)
    for (std::size_t j = 0; j < 3; ++j) {
      double d = p[i * 3 + j] - (static_cast<std::int64_t>(j) == labels[i] ? 1.0 : 0.0);
      want[i * 3 + j] = d / 4;
      want_none[i * 3 + j] = d * c[i];
    }
  check_near(values(grad(cross_entropy(xr, labels), {xr})[0]), want, 1e-15);
  GradOptions o;
  o.seed = tensor({0.5, -1.0, 2.0, 3.0});
  check_near(values(grad(cross_entropy(xr, labels, Reduction::none), {xr}, o)[0]), want_none, 1e-14);
  CHECK(records_of([&] { cross_entropy(xr, labels); }) == 1);
  // A first-order sweep reuses the forward's probabilities; a recorded one recomputes them
  // with the softmax op: the same numbers, bit for bit, for every reduction.
  for (Reduction r : kAll) {
    GradOptions first, second;
    second.create_graph = true;
    if (r == Reduction::none) first.seed = second.seed = o.seed;
    Tensor xb = (x * 7.0).detach().requires_grad_();  // wide logits: the exponentials matter
    const Tensor g1 = grad(cross_entropy(xb, labels, r), {xb}, first)[0];
    const Tensor g2 = grad(cross_entropy(xb, labels, r), {xb}, second)[0];
    INFO(name_of(r));
    CHECK(values(g1) == values(g2));
  }

  // No examples: sum is 0, none is empty, mean has no value.
  CHECK(cross_entropy(zeros({0, 3}), {}, Reduction::sum).item() == 0.0);
  CHECK(cross_entropy(zeros({0, 3}), {}, Reduction::none).shape() == Shape{0});
}

TEST_CASE("cross_entropy: stable at extreme logits") {
  for (Dtype d : {Dtype::f64, Dtype::f32}) {
    Tensor x = tensor({1000.0, -1000.0, 1000.0, -1000.0, -1000.0, -1000.0}, {3, 2}, d);
    const Labels labels{0, 1, 1};
    Tensor none = cross_entropy(x, labels, Reduction::none);
    REQUIRE(all_finite(none));
    CHECK(none.at({0}) == 0.0);
    CHECK(none.at({1}) == doctest::Approx(2000.0));
    CHECK(none.at({2}) == doctest::Approx(std::log(2.0)));
    Tensor xr = x.clone().requires_grad_();
    Tensor g = grad(cross_entropy(xr, labels, Reduction::sum), {xr})[0];
    REQUIRE(all_finite(g));
    check_near(values(g), {0.0, 0.0, 1.0, -1.0, 0.5, -0.5}, 1e-6);
  }
}

TEST_CASE("logistic_loss: FD first and second order in z and y, every reduction") {
  for (Reduction r : kAll) {
    expect_ad(std::string("logistic_loss ") + name_of(r),
              [r](const V& a) { return logistic_loss(a[0], a[1], r); }, {rn({6}), pm1({6})});
    expect_ad(std::string("logistic_loss 2-D ") + name_of(r),
              [r](const V& a) { return logistic_loss(a[0], a[1], r); }, {rn({2, 3}), pm1({2, 3})});
  }
  // The labels held constant (the usual case) and an input used as both operands.
  expect_ad("logistic_loss y constant", [](const V& a) { return logistic_loss(a[0], a[1]); },
            {rn({5}), pm1({5})}, AdCase{.differentiable = {true, false}});
  expect_ad("logistic_loss(x, x)", [](const V& a) { return logistic_loss(a[0], a[0], Reduction::none); }, {rn({4})});
  // Scores broadcast from a scalar bias.
  expect_ad("logistic_loss(z + b)", [](const V& a) { return logistic_loss(a[0] + a[2], a[1]); },
            {rn({4}), pm1({4}), rn({})});
}

TEST_CASE("logistic_loss: values and gradients against closed forms") {
  Tensor z = tensor({0.3, -1.2, 2.0, 0.0, -0.7});
  Tensor y = tensor({1.0, -1.0, -1.0, 1.0, 1.0});
  std::vector<double> zv = values(z), yv = values(y), per(5), dz(5), dy(5);
  double total = 0;
  for (int i = 0; i < 5; ++i) {
    total += per[i] = std::log(1 + std::exp(-yv[i] * zv[i]));
    double s = 1 / (1 + std::exp(yv[i] * zv[i]));  // σ(−y z)
    dz[i] = -yv[i] * s / 5;
    dy[i] = -zv[i] * s / 5;
  }
  check_near(values(logistic_loss(z, y, Reduction::none)), per, 1e-15);
  CHECK(logistic_loss(z, y).item() == doctest::Approx(total / 5).epsilon(1e-14));
  CHECK(logistic_loss(z, y, Reduction::sum).item() == doctest::Approx(total).epsilon(1e-14));

  Tensor zr = z.clone().requires_grad_(), yr = y.clone().requires_grad_();
  auto g = grad(logistic_loss(zr, yr), {zr, yr});
  check_near(values(g[0]), dz, 1e-15);
  check_near(values(g[1]), dy, 1e-15);
  CHECK(records_of([&] { logistic_loss(zr, yr); }) == 1);
}

TEST_CASE("logistic_loss: no overflow at |y z| = 1000") {
  for (Dtype d : {Dtype::f64, Dtype::f32}) {
    Tensor z = tensor({1000.0, -1000.0, 1000.0, -1000.0}, d);
    Tensor y = tensor({1.0, 1.0, -1.0, -1.0}, d);
    Tensor l = logistic_loss(z, y, Reduction::none);
    REQUIRE(all_finite(l));
    check_near(values(l), {0.0, 1000.0, 1000.0, 0.0}, 1e-9);
    CHECK(logistic_loss(z, y, Reduction::sum).item() == doctest::Approx(2000.0));
    Tensor zr = z.clone().requires_grad_(), yr = y.clone().requires_grad_();
    auto g = grad(logistic_loss(zr, yr, Reduction::sum), {zr, yr}, {.create_graph = true});
    REQUIRE(all_finite(g[0]));
    REQUIRE(all_finite(g[1]));
    check_near(values(g[0]), {0.0, -1.0, 1.0, 0.0}, 1e-12);
    check_near(values(g[1]), {0.0, 1000.0, -1000.0, 0.0}, 1e-9);
    // Second derivative in z: σ(yz)σ(−yz) y² → 0 at the extremes, not NaN.
    Tensor h = grad(sum(g[0]), {zr})[0];
    REQUIRE(all_finite(h));
    check_near(values(h), {0.0, 0.0, 0.0, 0.0}, 1e-12);
  }
  // Tiny losses keep full relative precision (log1p, not log(1 + tiny)).
  CHECK(logistic_loss(tensor({40.0}), tensor({1.0})).item() == doctest::Approx(std::exp(-40.0)).epsilon(1e-12));
}

TEST_CASE("mse_loss: FD, values, closed-form gradients") {
  for (Reduction r : kAll) {
    expect_ad(std::string("mse_loss ") + name_of(r), [r](const V& a) { return mse_loss(a[0], a[1], r); },
              {rn({3, 2}), rn({3, 2})});
  }
  expect_ad("mse_loss(2x, x)", [](const V& a) { return mse_loss(a[0] * 2.0, a[0]); }, {rn({4})});
  expect_ad("mse_loss(x + b, t)", [](const V& a) { return mse_loss(a[0] + a[1], a[2], Reduction::sum); },
            {rn({2, 3}), rn({3}), rn({2, 3})});

  Tensor p = tensor({1.0, 2.0, -3.0}), t = tensor({0.5, 2.0, 1.0});
  CHECK(values(mse_loss(p, t, Reduction::none)) == std::vector<double>{0.25, 0.0, 16.0});
  CHECK(mse_loss(p, t).item() == doctest::Approx(16.25 / 3).epsilon(1e-15));
  CHECK(mse_loss(p, t, Reduction::sum).item() == 16.25);
  Tensor pr = p.clone().requires_grad_(), tr = t.clone().requires_grad_();
  auto g = grad(mse_loss(pr, tr), {pr, tr});
  check_near(values(g[0]), {2 * 0.5 / 3, 0.0, 2 * -4.0 / 3}, 1e-15);
  check_near(values(g[1]), {-2 * 0.5 / 3, 0.0, 2 * 4.0 / 3}, 1e-15);
  // Same tensor as both operands: the loss is 0 and so is its gradient.
  auto g2 = grad(mse_loss(pr, pr, Reduction::sum), {pr});
  CHECK(values(g2[0]) == std::vector<double>{0, 0, 0});
  CHECK(records_of([&] { mse_loss(pr, tr); }) == 1);
}

TEST_CASE("loss errors") {
  const Tensor logits = zeros({3, 4});
  CHECK_THROWS_WITH_AS(
      cross_entropy(logits, {0, 4, 1}),
      doctest::Contains("cross_entropy: label 4 at position 1 is out of range [0, 4) for C = 4 classes (logits [3, 4])"),
      ValueError);
  CHECK_THROWS_WITH_AS(cross_entropy(logits, {0, 1, -2}),
                       doctest::Contains("label -2 at position 2 is out of range [0, 4) for C = 4"), ValueError);
  CHECK_THROWS_WITH_AS(cross_entropy(logits, {0, 1}),
                       doctest::Contains("cross_entropy: 2 labels (labels [2]) for logits [3, 4]"), ShapeError);
  CHECK_THROWS_WITH_AS(cross_entropy(zeros({4}), {0, 1, 2, 3}),
                       doctest::Contains("cross_entropy: logits must be 2-D [n, C], got logits [4]"), ShapeError);
  CHECK_THROWS_WITH_AS(cross_entropy(zeros({2, 3, 4}), {0, 1}),
                       doctest::Contains("logits must be 2-D [n, C], got logits [2, 3, 4]"), ShapeError);
  CHECK_THROWS_WITH_AS(cross_entropy(zeros({0, 4}), {}), doctest::Contains("cross_entropy: reduction mean over zero"),
                       ValueError);
  CHECK_THROWS_WITH_AS(cross_entropy(Tensor(), {}), doctest::Contains("cross_entropy: logits is an undefined tensor"),
                       ValueError);

  CHECK_THROWS_WITH_AS(logistic_loss(zeros({3}), zeros({3, 1})),
                       doctest::Contains("logistic_loss: shapes differ: scores z [3] vs labels y [3, 1]"), ShapeError);
  CHECK_THROWS_WITH_AS(logistic_loss(zeros({2}), zeros({2}, Dtype::f32)),
                       doctest::Contains("logistic_loss: dtypes differ: scores z float64 vs labels y float32"),
                       DtypeError);
  CHECK_THROWS_WITH_AS(logistic_loss(zeros({2}), Tensor()),
                       doctest::Contains("logistic_loss: labels y is an undefined tensor"), ValueError);
  CHECK_THROWS_WITH_AS(logistic_loss(zeros({0}), zeros({0})),
                       doctest::Contains("logistic_loss: reduction mean over zero examples"), ValueError);

  CHECK_THROWS_WITH_AS(mse_loss(zeros({2, 3}), zeros({3, 2})),
                       doctest::Contains("mse_loss: shapes differ: prediction [2, 3] vs target [3, 2]"), ShapeError);
  CHECK_THROWS_WITH_AS(mse_loss(Tensor(), zeros({2})),
                       doctest::Contains("mse_loss: prediction is an undefined tensor"), ValueError);
  CHECK_THROWS_WITH_AS(mse_loss(zeros({2}), zeros({2}), static_cast<Reduction>(7)),
                       doctest::Contains("mse_loss: unknown reduction 7"), ValueError);

  CHECK_THROWS_WITH_AS(softmax(zeros({2, 3}), 2),
                       doctest::Contains("softmax: axis 2 out of range for a tensor of rank 2"), ValueError);
  CHECK_THROWS_WITH_AS(log_softmax(zeros({2, 3}), -3),
                       doctest::Contains("log_softmax: axis -3 out of range"), ValueError);
  CHECK_THROWS_WITH_AS(softmax(Tensor()), doctest::Contains("softmax: input is an undefined tensor"), ValueError);
}
