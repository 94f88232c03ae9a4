// Every elementwise op through the harness, plus closed forms and error messages.
#include <cmath>

#include "autodiff/ad_harness.hpp"

using namespace hyperad;
using hyperad::testing::AdCase;
using hyperad::testing::expect_ad;
using hyperad::testing::values;

namespace {
Generator gen(2024);
Tensor rn(const Shape& s) { return randn(s, gen); }
// Values bounded away from 0 (for log, sqrt, division, pow, abs at non-kinks).
Tensor positive(const Shape& s) { return add_scalar(rand(s, gen), 0.5); }
Tensor away_from_zero(const Shape& s) {
  Tensor u = rn(s);
  return add(u, mul_scalar(sign(u), 0.3));
}
using V = TensorList;
}  // namespace

TEST_CASE("binary arithmetic: FD first and second order, broadcasting, scalars") {
  expect_ad("add", [](const V& x) { return add(x[0], x[1]); }, {rn({3, 4}), rn({3, 4})});
  expect_ad("add broadcast", [](const V& x) { return x[0] + x[1]; }, {rn({3, 1}), rn({1, 4})});
  expect_ad("sub broadcast", [](const V& x) { return x[0] - x[1]; }, {rn({2, 3, 4}), rn({4})});
  expect_ad("mul", [](const V& x) { return x[0] * x[1]; }, {rn({3, 4}), rn({3, 4})});
  expect_ad("mul broadcast", [](const V& x) { return x[0] * x[1]; }, {rn({4, 1}), rn({3})});
  expect_ad("div", [](const V& x) { return x[0] / x[1]; }, {rn({3, 4}), positive({3, 4})});
  expect_ad("div broadcast", [](const V& x) { return x[0] / x[1]; }, {rn({2, 3}), positive({})});
  expect_ad("neg", [](const V& x) { return -x[0]; }, {rn({5})});
  expect_ad("scalar ops", [](const V& x) { return (2.5 - x[0]) * 3.0 + x[0] / 4.0 - 1.0 + (1.0 + x[0]); },
            {rn({2, 2})});
  expect_ad("rdiv_scalar", [](const V& x) { return 2.0 / x[0]; }, {positive({4})});
}

TEST_CASE("an input used twice accumulates its gradient") {
  expect_ad("x*x", [](const V& x) { return x[0] * x[0]; }, {rn({4})});
  expect_ad("f(x)+g(x)", [](const V& x) { return exp(x[0]) + sin(x[0]) * x[0]; }, {rn({3})});
  // Closed form: d/dx sum(x*x*x) = 3x², d²: 6x.
  Tensor x = tensor({1.0, -2.0, 0.5}).requires_grad_();
  auto g = grad(sum(x * x * x), {x}, {.create_graph = true});
  CHECK(values(g[0]) == std::vector<double>{3.0, 12.0, 0.75});
  auto h = grad(sum(g[0]), {x});
  CHECK(values(h[0]) == std::vector<double>{6.0, -12.0, 3.0});
}

TEST_CASE("unary maps: FD first and second order") {
  expect_ad("exp", [](const V& x) { return exp(x[0]); }, {rn({3, 2})});
  expect_ad("log", [](const V& x) { return log(x[0]); }, {positive({4})});
  expect_ad("log1p", [](const V& x) { return log1p(x[0]); }, {positive({4})});
  expect_ad("expm1", [](const V& x) { return expm1(x[0]); }, {rn({4})});
  expect_ad("sqrt", [](const V& x) { return sqrt(x[0]); }, {positive({4})});
  expect_ad("square", [](const V& x) { return square(x[0]); }, {rn({4})});
  expect_ad("pow 3", [](const V& x) { return pow(x[0], 3.0); }, {rn({4})});
  expect_ad("pow -1.5", [](const V& x) { return pow(x[0], -1.5); }, {positive({4})});
  expect_ad("abs", [](const V& x) { return abs(x[0]); }, {away_from_zero({5})});
  expect_ad("tanh", [](const V& x) { return tanh(x[0]); }, {rn({4})});
  expect_ad("sigmoid", [](const V& x) { return sigmoid(x[0]); }, {rn({4})});
  expect_ad("relu", [](const V& x) { return relu(x[0]); }, {away_from_zero({6})});
  expect_ad("softplus", [](const V& x) { return softplus(x[0]); }, {rn({4})});
  expect_ad("sin", [](const V& x) { return sin(x[0]); }, {rn({4})});
  expect_ad("cos", [](const V& x) { return cos(x[0]); }, {rn({4})});
}

TEST_CASE("piecewise ops: FD away from kinks, ties, masks") {
  Tensor a = rn({3, 4}), b = add(a, mul_scalar(sign(rn({3, 4})), 0.5));
  expect_ad("maximum", [](const V& x) { return maximum(x[0], x[1]); }, {a, b});
  expect_ad("minimum", [](const V& x) { return minimum(x[0], x[1]); }, {a, b});
  expect_ad("maximum broadcast", [](const V& x) { return maximum(x[0], x[1]); }, {tensor({-1.0, 0.3, 2.0}), scalar(0.7)});
  expect_ad("clamp", [](const V& x) { return clamp(x[0], -0.5, 0.5); }, {tensor({-1.0, -0.2, 0.1, 0.4, 0.9})});
  Tensor mask = tensor({1.0, 0.0, 1.0, 0.0}, Dtype::f64);
  expect_ad("where", [mask](const V& x) { return where(mask, x[0], x[1]); }, {rn({4}), rn({4})});
  expect_ad("where broadcast", [](const V& x) { return where(greater(x[0], scalar(0.0, x[0].dtype())), x[0] * x[0], x[1]); },
            {away_from_zero({2, 3}), rn({3})});

  // Ties in maximum send the gradient to the first operand.
  Tensor p = tensor({1.0, 2.0}).requires_grad_(), q = tensor({1.0, 3.0}).requires_grad_();
  auto g = grad(sum(maximum(p, q)), {p, q});
  CHECK(values(g[0]) == std::vector<double>{1.0, 0.0});
  CHECK(values(g[1]) == std::vector<double>{0.0, 1.0});
  // abs and relu have derivative 0 at 0.
  Tensor z = tensor({0.0, 0.0}).requires_grad_();
  CHECK(values(grad(sum(abs(z) + relu(z)), {z})[0]) == std::vector<double>{0.0, 0.0});
}

TEST_CASE("stable forms: sigmoid and softplus do not overflow") {
  Tensor x = tensor({-1000.0, -40.0, 0.0, 40.0, 1000.0});
  std::vector<double> s = values(sigmoid(x)), sp = values(softplus(x));
  CHECK(s[0] == 0.0);
  CHECK(s[2] == doctest::Approx(0.5));
  CHECK(s[4] == 1.0);
  CHECK(sp[0] == 0.0);
  CHECK(sp[1] == doctest::Approx(std::exp(-40.0)).epsilon(1e-12));
  CHECK(sp[3] == doctest::Approx(40.0));
  CHECK(sp[4] == 1000.0);
}

TEST_CASE("comparisons and sign are constants") {
  Tensor a = tensor({1.0, 2.0, 3.0}).requires_grad_(), b = tensor({2.0, 2.0, 2.0});
  CHECK(values(greater(a, b)) == std::vector<double>{0, 0, 1});
  CHECK(values(greater_equal(a, b)) == std::vector<double>{0, 1, 1});
  CHECK(values(less(a, b)) == std::vector<double>{1, 0, 0});
  CHECK(values(less_equal(a, b)) == std::vector<double>{1, 1, 0});
  CHECK(values(equal(a, b)) == std::vector<double>{0, 1, 0});
  CHECK(values(sign(tensor({-2.0, 0.0, 5.0}))) == std::vector<double>{-1, 0, 1});
  CHECK_FALSE(greater(a, b).requires_grad());
}

TEST_CASE("elementwise errors name the op and the shapes") {
  CHECK_THROWS_WITH_AS(add(zeros({3, 4}), zeros({5, 4})),
                       doctest::Contains("add: shapes [3, 4] and [5, 4] do not broadcast"), ShapeError);
  CHECK_THROWS_WITH_AS(mul(zeros({2}), zeros({2}, Dtype::f32)),
                       doctest::Contains("mul: dtype mismatch, first operand float64 [2] vs second operand float32 [2]"),
                       DtypeError);
  CHECK_THROWS_WITH_AS(exp(Tensor{}), doctest::Contains("exp: input is an undefined tensor"), ValueError);
  CHECK_THROWS_WITH_AS(clamp(zeros({2}), 1.0, -1.0), doctest::Contains("clamp: needs lo <= hi"), ValueError);
  CHECK_THROWS_WITH_AS(where(zeros({2}), zeros({3}), zeros({2})), doctest::Contains("where"), ShapeError);
}
