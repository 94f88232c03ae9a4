// Every op of shape_ops.hpp through the harness (alone, and followed by a nonlinear op so
// second order exercises the adjoint pairs), plus hand-computed values, adjoint identities
// ⟨op(x), y⟩ = ⟨x, op*(y)⟩, accumulation of repeated indices, and every error message.
#include <cmath>

#include "autodiff/ad_harness.hpp"

using namespace hyperad;
using hyperad::testing::expect_ad;
using hyperad::testing::values;

namespace {
Generator gen(4242);
Tensor rn(const Shape& s) { return randn(s, gen); }
using V = TensorList;
using I = std::vector<std::int64_t>;

// 0, 1, ..., numel - 1 in `shape` (readable expected values).
Tensor iota(const Shape& s) { return reshape(arange(s.numel()), s); }
double inner(const Tensor& a, const Tensor& b) { return dot(flatten(a), flatten(b)).item(); }
}  // namespace

// ---- the lead's view ops -----------------------------------------------------------------

TEST_CASE("reshape, flatten, unsqueeze, squeeze: FD alone and composed") {
  expect_ad("reshape", [](const V& a) { return reshape(a[0], {3, 2}); }, {rn({2, 3})});
  expect_ad("reshape -1 then tanh", [](const V& a) { return tanh(reshape(a[0] * a[0], {-1, 4})); }, {rn({2, 2, 2})});
  expect_ad("flatten", [](const V& a) { return flatten(a[0]); }, {rn({2, 3})});
  expect_ad("flatten then square", [](const V& a) { return square(flatten(tanh(a[0]))); }, {rn({2, 3})});
  expect_ad("unsqueeze", [](const V& a) { return unsqueeze(a[0], -1); }, {rn({3})});
  expect_ad("unsqueeze then mul", [](const V& a) { return unsqueeze(a[0], 0) * unsqueeze(a[0], 1); }, {rn({3})});
  expect_ad("squeeze", [](const V& a) { return squeeze(a[0], 1); }, {rn({3, 1, 2})});
  expect_ad("squeeze then tanh", [](const V& a) { return tanh(squeeze(a[0] * a[0], 0)); }, {rn({1, 4})});

  Tensor x = iota({2, 3});
  CHECK(reshape(x, {3, -1}).shape() == Shape{3, 2});
  CHECK(flatten(x).shape() == Shape{6});
  CHECK(unsqueeze(x, 1).shape() == Shape{2, 1, 3});
  CHECK(squeeze(unsqueeze(x, -1), -1).shape() == Shape{2, 3});
  CHECK(values(reshape(x, {3, 2})) == values(x));
}

TEST_CASE("reshape shares storage: no copy, also when recorded") {
  Tensor x = iota({2, 6}).requires_grad_();
  Tensor r = reshape(x, {3, 4});
  CHECK(r.shares_storage(x));
  CHECK(flatten(x).shares_storage(x));
  CHECK(unsqueeze(x, 0).shares_storage(x));
  CHECK(r.requires_grad());
  // A write through the base handle is visible through the view.
  Tensor y = iota({4});
  Tensor v = reshape(y, {2, 2});
  y.set({3}, 42.0);
  CHECK(v.at({1, 1}) == 42.0);
}

TEST_CASE("broadcast_to, and the engine's reduction of broadcast gradients") {
  expect_ad("broadcast_to", [](const V& a) { return broadcast_to(a[0], Shape{2, 3, 4}); }, {rn({3, 1})});
  expect_ad("broadcast_to then tanh", [](const V& a) { return tanh(broadcast_to(a[0] * a[0], Shape{2, 4})); },
            {rn({4})});
  CHECK(values(broadcast_to(tensor({1.0, 2.0}), Shape{2, 2})) == std::vector<double>{1, 2, 1, 2});

  // add of [3, 1] and [1, 4]: each gradient has its input's shape and sums the seed over
  // the broadcast axis.
  Tensor a = rn({3, 1}).requires_grad_(), b = rn({1, 4}).requires_grad_();
  Tensor c = a + b;
  CHECK(c.shape() == Shape{3, 4});
  auto g = grad(sum(c), {a, b});
  CHECK(g[0].shape() == Shape{3, 1});
  CHECK(g[1].shape() == Shape{1, 4});
  CHECK(values(g[0]) == std::vector<double>{4, 4, 4});
  CHECK(values(g[1]) == std::vector<double>{3, 3, 3, 3});
  expect_ad("add [3,1] + [1,4]", [](const V& x) { return tanh(x[0] + x[1]); }, {rn({3, 1}), rn({1, 4})});
}

TEST_CASE("view op errors") {
  CHECK_THROWS_WITH_AS(reshape(zeros({2, 3}), {4, 2}),
                       doctest::Contains("reshape: cannot view a tensor of shape [2, 3] (6 elements) as shape [4, 2]"),
                       ShapeError);
  CHECK_THROWS_WITH_AS(reshape(zeros({2, 3}), {-1, -1}), doctest::Contains("at most one extent may be -1"),
                       ValueError);
  CHECK_THROWS_WITH_AS(reshape(zeros({2, 3}), {-1, 4}), doctest::Contains("cannot infer the -1 extent"), ShapeError);
  CHECK_THROWS_WITH_AS(squeeze(zeros({2, 3}), 1), doctest::Contains("squeeze: axis 1 of shape [2, 3] has extent 3"),
                       ShapeError);
  CHECK_THROWS_WITH_AS(unsqueeze(zeros({2}), 3), doctest::Contains("unsqueeze: axis 3 out of range"), ValueError);
  CHECK_THROWS_WITH_AS(broadcast_to(zeros({3}), Shape{2, 4}),
                       doctest::Contains("broadcast_to: shapes [3] and [2, 4] do not broadcast"), ShapeError);
  CHECK_THROWS_WITH_AS(broadcast_to(zeros({3, 1}), Shape{1, 4}),
                       doctest::Contains("broadcast_to: cannot broadcast shape [3, 1] to shape [1, 4]"), ShapeError);
  CHECK_THROWS_WITH_AS(broadcast_to(zeros({2, 3}), Shape{3}),
                       doctest::Contains("broadcast_to: cannot broadcast shape [2, 3] to shape [3]"), ShapeError);
  CHECK_THROWS_WITH_AS(flatten(Tensor{}), doctest::Contains("flatten: input is an undefined tensor"), ValueError);
}

// ---- narrow ↔ pad, slice ↔ unslice --------------------------------------------------------

TEST_CASE("narrow and pad: values, FD, adjointness") {
  Tensor x = iota({2, 5});
  CHECK(values(narrow(x, 1, 1, 3)) == std::vector<double>{1, 2, 3, 6, 7, 8});
  CHECK(narrow(x, -1, 2, 0).shape() == Shape{2, 0});
  CHECK(values(narrow(x, 0, 1, 1)) == std::vector<double>{5, 6, 7, 8, 9});
  CHECK(!narrow(x, 1, 0, 5).shares_storage(x));  // a copy
  Tensor p = pad(tensor({1.0, 2.0}), 0, 2, 1);
  CHECK(values(p) == std::vector<double>{0, 0, 1, 2, 0});
  CHECK(pad(iota({2, 2}), 1, 0, 0).shape() == Shape{2, 2});
  CHECK(values(pad(iota({2, 1}), 1, 1, 1)) == std::vector<double>{0, 0, 0, 0, 1, 0});

  expect_ad("narrow", [](const V& a) { return narrow(a[0], 1, 1, 3); }, {rn({2, 5})});
  expect_ad("narrow then tanh", [](const V& a) { return tanh(narrow(a[0] * a[0], 0, 1, 2)); }, {rn({4, 3})});
  expect_ad("pad", [](const V& a) { return pad(a[0], 0, 1, 2); }, {rn({2, 3})});
  expect_ad("pad then tanh", [](const V& a) { return tanh(pad(a[0] * a[0], -1, 2, 1)) * 2.0; }, {rn({3, 2})});
  expect_ad("narrow of an input used twice",
            [](const V& a) { return narrow(a[0], 0, 0, 2) * narrow(a[0], 0, 1, 2); }, {rn({3, 2})});
  expect_ad("narrow 4-D", [](const V& a) { return sin(narrow(a[0], 2, 1, 2)); }, {rn({2, 1, 4, 3})});

  // ⟨narrow(x), y⟩ = ⟨x, pad(y)⟩
  Tensor xx = rn({3, 6}), yy = rn({3, 2});
  CHECK(inner(narrow(xx, 1, 3, 2), yy) == doctest::Approx(inner(xx, pad(yy, 1, 3, 1))));
  // The gradient of narrow is the padded seed.
  Tensor v = rn({5}).requires_grad_();
  CHECK(values(grad(sum(narrow(v, 0, 1, 2)), {v})[0]) == std::vector<double>{0, 1, 1, 0, 0});
}

TEST_CASE("slice and unslice: values, negative bounds, steps, FD, adjointness") {
  Tensor x = iota({2, 7});
  CHECK(values(slice(x, 1, 1, 6, 2)) == std::vector<double>{1, 3, 5, 8, 10, 12});
  CHECK(values(slice(x, 1, 0, 7, 3)) == std::vector<double>{0, 3, 6, 7, 10, 13});
  CHECK(values(slice(x, 1, -3, -1)) == std::vector<double>{4, 5, 11, 12});
  CHECK(values(slice(x, 0, -1, 2)) == std::vector<double>{7, 8, 9, 10, 11, 12, 13});
  CHECK(slice(x, 1, 4, 4, 2).shape() == Shape{2, 0});
  CHECK(slice(x, 1, 7, 7).shape() == Shape{2, 0});
  CHECK(values(unslice(tensor({1.0, 2.0, 3.0}), Shape{8}, 0, 1, 3)) == std::vector<double>{0, 1, 0, 0, 2, 0, 0, 3});
  CHECK(values(unslice(tensor({1.0, 2.0}), Shape{4}, 0, 1, 1)) == std::vector<double>{0, 1, 2, 0});
  CHECK(values(unslice(zeros({0}), Shape{3}, 0, 3, 2)) == std::vector<double>{0, 0, 0});

  expect_ad("slice step 2", [](const V& a) { return slice(a[0], 1, 1, 6, 2); }, {rn({2, 7})});
  expect_ad("slice step 3 then tanh", [](const V& a) { return tanh(slice(a[0] * a[0], 0, -5, 5, 3)); }, {rn({6, 2})});
  expect_ad("slice step 1 then square", [](const V& a) { return square(slice(tanh(a[0]), 0, 1, -1)); }, {rn({4})});
  expect_ad("slice empty", [](const V& a) { return slice(a[0], 0, 2, 2, 2); }, {rn({3})});
  expect_ad("unslice", [](const V& a) { return unslice(a[0], Shape{2, 8}, 1, 1, 3); }, {rn({2, 3})});
  expect_ad("unslice then tanh", [](const V& a) { return tanh(unslice(a[0] * a[0], Shape{7, 2}, 0, 0, 2)); },
            {rn({4, 2})});
  expect_ad("slice 4-D", [](const V& a) { return exp(slice(a[0], -1, 0, 5, 2)); }, {rn({2, 2, 1, 5})});

  Tensor xx = rn({9, 2}), yy = rn({3, 2});
  CHECK(inner(slice(xx, 0, 2, 9, 3), yy) == doctest::Approx(inner(xx, unslice(yy, Shape{9, 2}, 0, 2, 3))));
  Tensor v = rn({6}).requires_grad_();
  CHECK(values(grad(sum(slice(v, 0, 0, 6, 4)), {v})[0]) == std::vector<double>{1, 0, 0, 0, 1, 0});
}

TEST_CASE("narrow, slice, pad, unslice errors") {
  Tensor x = zeros({2, 5});
  CHECK_THROWS_WITH_AS(narrow(x, 1, 3, 4),
                       doctest::Contains("narrow: start 3 + length 4 exceeds extent 5 of axis 1 of shape [2, 5]"),
                       ValueError);
  CHECK_THROWS_WITH_AS(narrow(x, 0, -1, 1), doctest::Contains("narrow: negative start -1 for axis 0 of shape [2, 5]"),
                       ValueError);
  CHECK_THROWS_WITH_AS(narrow(x, 0, 0, -2), doctest::Contains("narrow: negative length -2"), ValueError);
  CHECK_THROWS_WITH_AS(narrow(x, 2, 0, 1), doctest::Contains("narrow: axis 2 out of range for a tensor of rank 2"),
                       ValueError);
  CHECK_THROWS_WITH_AS(narrow(scalar(1.0), 0, 0, 1), doctest::Contains("narrow: axis 0 out of range"), ValueError);
  CHECK_THROWS_WITH_AS(narrow(Tensor{}, 0, 0, 1), doctest::Contains("narrow: input is an undefined tensor"),
                       ValueError);
  CHECK_THROWS_WITH_AS(pad(x, 1, -1, 0),
                       doctest::Contains("pad: negative padding (before -1, after 0) for axis 1 of shape [2, 5]"),
                       ValueError);
  CHECK_THROWS_WITH_AS(pad(x, -3, 1, 1), doctest::Contains("pad: axis -3 out of range"), ValueError);
  CHECK_THROWS_WITH_AS(slice(x, 1, 0, 5, 0), doctest::Contains("slice: step 0 must be at least 1"), ValueError);
  CHECK_THROWS_WITH_AS(slice(x, 1, 6, 7),
                       doctest::Contains("slice: start 6 out of range for extent 5 of axis 1 of shape [2, 5]"),
                       ValueError);
  CHECK_THROWS_WITH_AS(slice(x, 1, 0, -6), doctest::Contains("slice: stop -6 out of range for extent 5"), ValueError);
  CHECK_THROWS_WITH_AS(slice(x, 1, 3, 1), doctest::Contains("slice: start 3 is after stop 1 for axis 1"),
                       ValueError);
  CHECK_THROWS_WITH_AS(slice(x, 5, 0, 1), doctest::Contains("slice: axis 5 out of range"), ValueError);
  CHECK_THROWS_WITH_AS(unslice(zeros({2, 3}), Shape{3, 7}, 1, 0, 2),
                       doctest::Contains("unslice: src of shape [2, 3] does not match shape [3, 7] off axis 1"),
                       ShapeError);
  CHECK_THROWS_WITH_AS(unslice(zeros({2, 3}), Shape{2, 7}, 1, 2, 3),
                       doctest::Contains("unslice: 3 slices from start 2 with step 3 do not fit extent 7 of axis 1"),
                       ValueError);
  CHECK_THROWS_WITH_AS(unslice(zeros({3}), Shape{7}, 0, -1, 2), doctest::Contains("unslice: need start ≥ 0"),
                       ValueError);
  CHECK_THROWS_WITH_AS(unslice(zeros({3}), Shape{7}, 0, 0, 0), doctest::Contains("step 0"), ValueError);
  CHECK_THROWS_WITH_AS(unslice(Tensor{}, Shape{7}, 0, 0, 1), doctest::Contains("unslice: src is an undefined"),
                       ValueError);
}

// ---- index_select ↔ index_add, gather ↔ scatter_add ---------------------------------------

TEST_CASE("index_select and index_add: values, repeated indices, FD, 4-D") {
  Tensor x = iota({4, 2});
  CHECK(values(index_select(x, 0, {3, 0, 3})) == std::vector<double>{6, 7, 0, 1, 6, 7});
  CHECK(values(index_select(x, -1, {1})) == std::vector<double>{1, 3, 5, 7});
  CHECK(index_select(x, 0, {}).shape() == Shape{0, 2});
  CHECK(values(index_add(Shape{3}, 0, {2, 0, 2}, tensor({1.0, 10.0, 100.0}))) == std::vector<double>{10, 0, 101});

  // Repeated indices: the gradient counts how often each row was picked.
  Tensor v = rn({4, 2}).requires_grad_();
  Tensor gv = grad(sum(index_select(v, 0, {1, 3, 1, 1})), {v})[0];
  CHECK(values(gv) == std::vector<double>{0, 0, 3, 3, 0, 0, 1, 1});

  expect_ad("index_select", [](const V& a) { return index_select(a[0], 0, {2, 0}); }, {rn({3, 2})});
  expect_ad("index_select repeated then tanh", [](const V& a) { return tanh(index_select(a[0] * a[0], 1, {1, 1, 0})); },
            {rn({2, 3})});
  expect_ad("index_add", [](const V& a) { return index_add(Shape{4, 3}, 0, {3, 1, 3}, a[0]); }, {rn({3, 3})});
  expect_ad("index_add repeated then tanh",
            [](const V& a) { return tanh(index_add(Shape{2, 2}, -1, {0, 0, 1}, a[0] * a[0])); }, {rn({2, 3})});
  expect_ad("index_select 4-D", [](const V& a) { return tanh(index_select(a[0], 2, {2, 0, 2, 1})); },
            {rn({2, 1, 3, 2})});

  Tensor xx = rn({5, 3}), yy = rn({4, 3});
  I idx{4, 0, 4, 2};
  CHECK(inner(index_select(xx, 0, idx), yy) == doctest::Approx(inner(xx, index_add(Shape{5, 3}, 0, idx, yy))));
}

TEST_CASE("gather and scatter_add: values, repeated positions, FD, 4-D") {
  // Labels picking one entry per row (the cross-entropy pattern).
  Tensor x = iota({3, 4});
  CHECK(values(gather(x, 1, {2, 0, 3})) == std::vector<double>{2, 4, 11});
  CHECK(gather(x, 1, {2, 0, 3}).shape() == Shape{3});
  CHECK(values(gather(x, 0, {1, 0, 2, 1})) == std::vector<double>{4, 1, 10, 7});
  CHECK(gather(tensor({5.0, 6.0}), 0, {1}).item() == 6.0);
  CHECK(values(scatter_add(Shape{2, 3}, 1, {2, 0}, tensor({1.0, 2.0}))) == std::vector<double>{0, 0, 1, 2, 0, 0});

  // The same element gathered from both lanes of a [2, 2] along axis 0: its gradient sums.
  Tensor v = rn({2, 2}).requires_grad_();
  Tensor g = grad(sum(gather(v, 0, {1, 1}) * 3.0), {v})[0];
  CHECK(values(g) == std::vector<double>{0, 0, 3, 3});
  Tensor w = rn({3}).requires_grad_();
  Tensor gw = grad(sum(gather(unsqueeze(w, 0), 0, {0, 0, 0}) + gather(unsqueeze(w, 1), 1, {0, 0, 0})), {w})[0];
  CHECK(values(gw) == std::vector<double>{2, 2, 2});

  expect_ad("gather", [](const V& a) { return gather(a[0], 1, {2, 0, 3}); }, {rn({3, 4})});
  expect_ad("gather then log-softmax-like",
            [](const V& a) { return gather(a[0], 1, {1, 1, 0}) - logsumexp(a[0], 1); }, {rn({3, 4})});
  expect_ad("scatter_add", [](const V& a) { return scatter_add(Shape{3, 2}, 0, {2, 2}, a[0]); }, {rn({2})});
  expect_ad("scatter_add then tanh", [](const V& a) { return tanh(scatter_add(Shape{2, 3}, 1, {0, 2}, a[0] * a[0])); },
            {rn({2})});
  // 4-D: x [2, 3, 2, 2] along axis 1 → result [2, 2, 2], 8 indices.
  expect_ad("gather 4-D", [](const V& a) { return tanh(gather(a[0], 1, {0, 2, 1, 1, 2, 2, 0, 1})); },
            {rn({2, 3, 2, 2})});

  Tensor xx = rn({3, 5}), yy = rn({3});
  I idx{4, 0, 4};
  CHECK(inner(gather(xx, 1, idx), yy) == doctest::Approx(inner(xx, scatter_add(Shape{3, 5}, 1, idx, yy))));
}

TEST_CASE("index op errors") {
  Tensor x = zeros({5, 3});
  CHECK_THROWS_WITH_AS(index_select(x, 0, {1, 7}),
                       doctest::Contains("index_select: index 7 at position 1 is out of range [0, 5) for axis 0 of "
                                         "shape [5, 3]"),
                       ValueError);
  CHECK_THROWS_WITH_AS(index_select(x, 1, {-1}), doctest::Contains("index -1 at position 0 is out of range [0, 3)"),
                       ValueError);
  CHECK_THROWS_WITH_AS(index_select(x, 2, {0}), doctest::Contains("index_select: axis 2 out of range"), ValueError);
  CHECK_THROWS_WITH_AS(index_add(Shape{5, 3}, 0, {0, 1}, zeros({2, 4})),
                       doctest::Contains("index_add: src of shape [2, 4] does not fit shape [5, 3] with 2 indices "
                                         "along axis 0 (expected src of shape [2, 3])"),
                       ShapeError);
  CHECK_THROWS_WITH_AS(index_add(Shape{5, 3}, 0, {0, 5}, zeros({2, 3})),
                       doctest::Contains("index_add: index 5 at position 1 is out of range [0, 5)"), ValueError);
  CHECK_THROWS_WITH_AS(gather(x, 1, {0, 1}),
                       doctest::Contains("gather: 2 indices given, but shape [5, 3] along axis 1 has 5 lanes "
                                         "(result shape [5])"),
                       ShapeError);
  CHECK_THROWS_WITH_AS(gather(x, 1, {0, 1, 2, 3, 0}),
                       doctest::Contains("gather: index 3 at position 3 is out of range [0, 3) for axis 1"), ValueError);
  CHECK_THROWS_WITH_AS(gather(scalar(1.0), 0, {}), doctest::Contains("gather: axis 0 out of range"), ValueError);
  CHECK_THROWS_WITH_AS(scatter_add(Shape{5, 3}, 0, {0, 1, 2}, zeros({5})),
                       doctest::Contains("scatter_add: src of shape [5] does not match shape [5, 3] without axis 0 "
                                         "(expected src of shape [3])"),
                       ShapeError);
  CHECK_THROWS_WITH_AS(scatter_add(Shape{5, 3}, 0, {0, 1}, zeros({3})),
                       doctest::Contains("scatter_add: 2 indices given"), ShapeError);
  CHECK_THROWS_WITH_AS(scatter_add(Shape{5, 3}, 0, {0, 9, 1}, zeros({3})),
                       doctest::Contains("scatter_add: index 9 at position 1"), ValueError);
  CHECK_THROWS_WITH_AS(gather(Tensor{}, 0, {0}), doctest::Contains("gather: input is an undefined tensor"), ValueError);
  CHECK_THROWS_WITH_AS(index_add(Shape{2}, 0, {0}, Tensor{}), doctest::Contains("index_add: src is an undefined"),
                       ValueError);
}

// ---- concat, stack ----------------------------------------------------------------------

TEST_CASE("concat and stack: values, many inputs, an input used twice, FD") {
  Tensor a = iota({2, 2}), b = add_scalar(iota({2, 1}), 10.0);
  CHECK(values(concat({a, b}, 1)) == std::vector<double>{0, 1, 10, 2, 3, 11});
  CHECK(values(concat({a, a}, 0)) == std::vector<double>{0, 1, 2, 3, 0, 1, 2, 3});
  CHECK(concat({a, zeros({2, 0}), b}, -1).shape() == Shape{2, 3});
  CHECK(values(concat({a}, 0)) == values(a));
  CHECK(values(stack({tensor({1.0, 2.0}), tensor({3.0, 4.0})}, 1)) == std::vector<double>{1, 3, 2, 4});
  CHECK(stack({a, a, a}, 0).shape() == Shape{3, 2, 2});
  CHECK(stack({a, a, a}, -1).shape() == Shape{2, 2, 3});

  expect_ad("concat", [](const V& x) { return concat({x[0], x[1]}, 0); }, {rn({2, 3}), rn({1, 3})});
  expect_ad("concat input twice then tanh", [](const V& x) { return tanh(concat({x[0], x[1] * x[0], x[0]}, 1)); },
            {rn({2, 2}), rn({2, 1})});
  // Six inputs: beyond the record's inline input slots.
  expect_ad("concat of six",
            [](const V& x) { return square(concat({x[0], x[1], x[2], x[3], x[4], x[5]}, -1)); },
            {rn({2, 1}), rn({2, 2}), rn({2, 1}), rn({2, 3}), rn({2, 1}), rn({2, 2})});
  expect_ad("concat 4-D", [](const V& x) { return sin(concat({x[0], x[1]}, 3)); }, {rn({1, 2, 2, 1}), rn({1, 2, 2, 2})});
  expect_ad("stack", [](const V& x) { return stack({x[0], x[1]}, 0); }, {rn({3}), rn({3})});
  expect_ad("stack then tanh", [](const V& x) { return tanh(stack({x[0], x[1] * x[1], x[0]}, 1)); },
            {rn({2, 2}), rn({2, 2})});

  // The gradient of each input is its block of the seed; a constant input gets none.
  Tensor p = rn({2}).requires_grad_(), q = rn({3});
  Tensor seed = arange(5);
  auto g = grad(concat({q, p}, 0), {p}, {.seed = seed});
  CHECK(values(g[0]) == std::vector<double>{3, 4});
}

TEST_CASE("concat and stack errors") {
  CHECK_THROWS_WITH_AS(concat({}, 0), doctest::Contains("concat: empty list of tensors"), ValueError);
  CHECK_THROWS_WITH_AS(stack({}, 0), doctest::Contains("stack: empty list of tensors"), ValueError);
  CHECK_THROWS_WITH_AS(concat({zeros({2, 3}), zeros({2, 1}), zeros({3, 1})}, 1),
                       doctest::Contains("concat: tensor 2 has shape [3, 1] but tensor 0 has shape [2, 3]; they must "
                                         "agree on every axis except axis 1"),
                       ShapeError);
  CHECK_THROWS_WITH_AS(concat({zeros({2, 3}), zeros({2, 3, 1})}, 0),
                       doctest::Contains("concat: tensor 1 has shape [2, 3, 1] but tensor 0 has shape [2, 3]"),
                       ShapeError);
  CHECK_THROWS_WITH_AS(concat({zeros({2}), zeros({2}, Dtype::f32)}, 0),
                       doctest::Contains("concat: tensor 1 is float32 [2] but tensor 0 is float64 [2]"), DtypeError);
  CHECK_THROWS_WITH_AS(concat({zeros({2}), zeros({2})}, 1), doctest::Contains("concat: axis 1 out of range"),
                       ValueError);
  CHECK_THROWS_WITH_AS(concat({zeros({2}), Tensor{}}, 0), doctest::Contains("concat: tensor 1 is an undefined tensor"),
                       ValueError);
  CHECK_THROWS_WITH_AS(stack({zeros({2}), zeros({3})}, 0),
                       doctest::Contains("stack: tensor 1 has shape [3] but tensor 0 has shape [2]; stacked tensors "
                                         "must have one shape"),
                       ShapeError);
  CHECK_THROWS_WITH_AS(stack({zeros({2}, Dtype::f32), zeros({2})}, 0),
                       doctest::Contains("stack: tensor 1 is float64 [2] but tensor 0 is float32 [2]"), DtypeError);
  CHECK_THROWS_WITH_AS(stack({zeros({2}), zeros({2})}, 2), doctest::Contains("stack: axis 2 out of range"),
                       ValueError);
}

TEST_CASE("float32 values of the selection ops") {
  Tensor x = iota({2, 3}).to(Dtype::f32);
  CHECK(narrow(x, 1, 1, 1).dtype() == Dtype::f32);
  CHECK(values(index_select(x, 1, {2, 2})) == std::vector<double>{2, 2, 5, 5});
  CHECK(values(gather(x, 1, {0, 2})) == std::vector<double>{0, 5});
  CHECK(scatter_add(Shape{2}, 0, {1}, scalar(1.0, Dtype::f32)).dtype() == Dtype::f32);
  CHECK(values(pad(x, 0, 1, 0)) == std::vector<double>{0, 0, 0, 0, 1, 2, 3, 4, 5});
  CHECK(concat({x, x}, 0).dtype() == Dtype::f32);
}
