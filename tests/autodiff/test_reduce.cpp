// Reductions through the harness, plus closed forms and errors.
#include <cmath>

#include "autodiff/ad_harness.hpp"

using namespace hyperad;
using hyperad::testing::expect_ad;
using hyperad::testing::values;

namespace {
Generator gen(77);
Tensor rn(const Shape& s) { return randn(s, gen); }
using V = TensorList;
}  // namespace

TEST_CASE("sum and mean over all, some, and negative axes, with and without keepdim") {
  Tensor x = rn({2, 3, 4});
  expect_ad("sum all", [](const V& a) { return sum(a[0] * a[0]); }, {x});
  expect_ad("sum axis 1", [](const V& a) { return sum(a[0], {1}); }, {x});
  expect_ad("sum axes 0,2 keepdim", [](const V& a) { return sum(tanh(a[0]), {0, -1}, true); }, {x});
  expect_ad("mean", [](const V& a) { return mean(square(a[0]), {1}); }, {x});
  expect_ad("mean all", [](const V& a) { return mean(exp(a[0])); }, {x});

  Tensor t = tensor({1, 2, 3, 4, 5, 6}, Dtype::f64);
  Tensor m = reshape(t, {2, 3});
  CHECK(values(sum(m, {0})) == std::vector<double>{5, 7, 9});
  CHECK(sum(m, {1}, true).shape() == Shape{2, 1});
  CHECK(values(mean(m, {-1})) == std::vector<double>{2, 5});
  CHECK(sum(m).item() == 21);
  CHECK(sum(m).shape().rank() == 0);
}

TEST_CASE("max, min, logsumexp along an axis") {
  Tensor x = rn({3, 5});
  expect_ad("max axis 1", [](const V& a) { return max(a[0], 1); }, {x});
  expect_ad("min axis 0 keepdim", [](const V& a) { return min(a[0], 0, true) * a[0]; }, {x});
  expect_ad("logsumexp", [](const V& a) { return logsumexp(a[0], 1); }, {x});
  expect_ad("logsumexp keepdim axis 0", [](const V& a) { return logsumexp(a[0] * a[0], 0, true); }, {x});

  Tensor m = tensor({1, 5, 5, 2}, Dtype::f64);
  Tensor mm = reshape(m, {2, 2}).requires_grad_();
  CHECK(values(max(mm, 1)) == std::vector<double>{5, 5});
  CHECK(argmax(mm, 1) == std::vector<std::int64_t>{1, 0});
  // The gradient goes to the first maximal element.
  Tensor v = tensor({3.0, 7.0, 7.0, 1.0}).requires_grad_();
  CHECK(values(grad(max(v, 0), {v})[0]) == std::vector<double>{0, 1, 0, 0});
  // logsumexp is stable for large inputs.
  Tensor big = tensor({1000.0, 1000.0});
  CHECK(logsumexp(big, 0).item() == doctest::Approx(1000.0 + std::log(2.0)));
}

TEST_CASE("norm, squared_norm, dot, sum_to") {
  expect_ad("norm", [](const V& a) { return norm(a[0]); }, {rn({4, 2})});
  expect_ad("squared_norm", [](const V& a) { return squared_norm(a[0]); }, {rn({5})});
  expect_ad("dot", [](const V& a) { return dot(a[0], a[1]); }, {rn({6}), rn({6})});
  expect_ad("dot with itself", [](const V& a) { return dot(a[0], a[0]); }, {rn({6})});
  expect_ad("sum_to", [](const V& a) { return sum_to(a[0] * a[0], Shape{3, 1}); }, {rn({2, 3, 4})});
  CHECK(norm(tensor({3.0, 4.0})).item() == doctest::Approx(5.0));
  // The gradient of the norm at 0 is taken as 0, not NaN.
  Tensor z = zeros({3}).requires_grad_();
  CHECK(values(grad(norm(z), {z})[0]) == std::vector<double>{0, 0, 0});
}

TEST_CASE("reduction errors") {
  CHECK_THROWS_WITH_AS(sum(zeros({2, 3}), {2}), doctest::Contains("sum: axis 2 out of range for a tensor of rank 2"),
                       ValueError);
  CHECK_THROWS_WITH_AS(sum(zeros({2, 3}), {1, -1}), doctest::Contains("sum: axis -1 listed twice"), ValueError);
  CHECK_THROWS_WITH_AS(max(zeros({2, 0}), 1), doctest::Contains("max: empty axis 1 of shape [2, 0]"), ValueError);
  CHECK_THROWS_WITH_AS(dot(zeros({3}), zeros({4})),
                       doctest::Contains("dot: operands must have equal shapes, got first [3] and second [4]"),
                       ShapeError);
  CHECK_THROWS_WITH_AS(sum_to(zeros({2, 3}), Shape{4}), doctest::Contains("sum_to"), ShapeError);
  CHECK_THROWS_WITH_AS(mean(zeros({0})), doctest::Contains("mean: no elements"), ValueError);
}
