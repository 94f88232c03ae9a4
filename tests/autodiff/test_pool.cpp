// Pooling: values against direct loops (ties, NaN, padding, strides), finite differences
// to first and second order, float32, and the errors.
#include <cmath>
#include <limits>

#include "autodiff/ad_harness.hpp"

using namespace hyperad;
using hyperad::testing::AdCase;
using hyperad::testing::expect_ad;
using hyperad::testing::values;

namespace {
Generator gen(77);
Tensor rn(const Shape& s) { return randn(s, gen); }
using V = TensorList;

// Windows of x [N, C, H, W] reduced by `max` (padding ignored) or averaged (padding as zeros).
std::vector<double> direct_pool(const Tensor& x, std::int64_t kh, std::int64_t kw, std::int64_t s0, std::int64_t s1,
                                std::int64_t p0, std::int64_t p1, bool max) {
  const std::int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const std::int64_t Ho = (H + 2 * p0 - kh) / s0 + 1, Wo = (W + 2 * p1 - kw) / s1 + 1;
  std::vector<double> out;
  for (std::int64_t n = 0; n < N; ++n)
    for (std::int64_t c = 0; c < C; ++c)
      for (std::int64_t i = 0; i < Ho; ++i)
        for (std::int64_t j = 0; j < Wo; ++j) {
          double m = -std::numeric_limits<double>::infinity(), s = 0;
          for (std::int64_t a = 0; a < kh; ++a)
            for (std::int64_t b = 0; b < kw; ++b) {
              const std::int64_t h = i * s0 - p0 + a, w = j * s1 - p1 + b;
              if (h < 0 || h >= H || w < 0 || w >= W) continue;
              const double v = x.at({n, c, h, w});
              m = std::max(m, v);
              s += v;
            }
          out.push_back(max ? m : s / double(kh * kw));
        }
  return out;
}

void check_close(const std::vector<double>& got, const std::vector<double>& want) {
  REQUIRE(got.size() == want.size());
  double err = 0;
  for (std::size_t i = 0; i < got.size(); ++i) err = std::max(err, std::abs(got[i] - want[i]));
  CHECK(err < 1e-14);
}

struct Case {
  std::array<std::int64_t, 2> k;
  PoolOptions o;
  std::int64_t s0, s1;  // the strides in effect
};
const Case kCases[] = {
    {{2, 2}, {}, 2, 2},
    {{3, 3}, {.stride = {1, 1}}, 1, 1},
    {{3, 2}, {.stride = {2, 1}, .padding = {1, 1}}, 2, 1},
    {{2, 3}, {.stride = {1, 2}, .padding = {1, 0}}, 1, 2},
};
}  // namespace

TEST_CASE("max_pool2d and avg_pool2d: values against the definition") {
  const Tensor x = rn({2, 3, 7, 6});
  for (const Case& c : kCases) {
    INFO("kernel " << c.k[0] << "x" << c.k[1] << " stride " << c.s0 << "," << c.s1 << " padding " << c.o.padding[0]
                   << "," << c.o.padding[1]);
    check_close(values(max_pool2d(x, c.k, c.o)),
                direct_pool(x, c.k[0], c.k[1], c.s0, c.s1, c.o.padding[0], c.o.padding[1], true));
    check_close(values(avg_pool2d(x, c.k, c.o)),
                direct_pool(x, c.k[0], c.k[1], c.s0, c.s1, c.o.padding[0], c.o.padding[1], false));
  }
  const std::vector<double> g = values(global_avg_pool2d(x));
  REQUIRE(g.size() == 6);
  double s = 0;
  for (std::int64_t h = 0; h < 7; ++h)
    for (std::int64_t w = 0; w < 6; ++w) s += x.at({1, 2, h, w});
  CHECK(g[5] == doctest::Approx(s / 42).epsilon(1e-14));
}

TEST_CASE("max_pool2d: ties go to the first maximum, NaN wins, the cotangent reaches the maximum alone") {
  Tensor x = tensor({1, 3, 2, 2,  //
                     0, 1, 2, 2,  //
                     5, 5, NAN, 1,  //
                     4, 5, 1, 7},
                    Shape{1, 1, 4, 4})
                 .requires_grad_();
  const Tensor y = max_pool2d(x, {2, 2});
  const std::vector<double> v = values(y);
  CHECK(v[0] == 3);
  CHECK(v[1] == 2);
  CHECK(v[2] == 5);
  CHECK(std::isnan(v[3]));
  const std::vector<double> g = values(grad(sum(mul(y, tensor({1, 10, 100, 1000}, Shape{1, 1, 2, 2}))), {x})[0]);
  // window 0: the 3 (index 1); window 1: four 2s, the first (index 2); window 2: the first
  // of three 5s (index 8); window 3: the NaN (index 10)
  std::vector<double> want(16, 0.0);
  want[1] = 1, want[2] = 10, want[8] = 100, want[10] = 1000;
  CHECK(g == want);
}

TEST_CASE("max_pool2d: a later NaN replaces a finite maximum and the first of two NaNs stays, on both paths") {
  // The selected element shows in the gradient of the sum (index routing: no NaN arithmetic).
  // Window inside the image: 1, 5, NaN (index 2), NaN (index 3).
  Tensor x = tensor({1, 5, NAN, NAN}, Shape{1, 1, 2, 2}).requires_grad_();
  CHECK(values(grad(sum(max_pool2d(x, {2, 2})), {x})[0]) == std::vector<double>{0, 0, 1, 0});
  // Padded windows (3×3, padding 1, stride 1): each of the four covers 1, NaN (index 1), NaN
  // (index 2), 9, and each selects index 1.
  Tensor z = tensor({1, NAN, NAN, 9}, Shape{1, 1, 2, 2}).requires_grad_();
  const Tensor y = max_pool2d(z, {3, 3}, {.stride = {1, 1}, .padding = {1, 1}});
  REQUIRE(y.shape() == Shape{1, 1, 2, 2});
  CHECK(values(grad(sum(y), {z})[0]) == std::vector<double>{0, 4, 0, 0});
}

TEST_CASE("pooling: finite differences, first and second order, float32") {
  const Tensor x = rn({2, 2, 6, 5});
  for (const Case& c : kCases) {
    expect_ad("max_pool2d", [c](const V& a) { return tanh(max_pool2d(a[0], c.k, c.o)); }, {x});
    expect_ad("avg_pool2d", [c](const V& a) { return tanh(avg_pool2d(a[0], c.k, c.o)); }, {x});
  }
  expect_ad("global_avg_pool2d", [](const V& a) { return tanh(global_avg_pool2d(a[0])); }, {x});
  // Max pooling inside a gradient map (the shape AID differentiates through).
  expect_ad("max_pool2d of a conv", [](const V& a) {
    return sum(square(max_pool2d(conv2d(a[0], a[1], {}, {.padding = {1, 1}}), {2, 2})));
  }, {rn({2, 2, 6, 6}), rn({3, 2, 3, 3})});
}

TEST_CASE("pooling: errors name the op and the shapes") {
  const Tensor x = rn({1, 2, 4, 4});
  CHECK_THROWS_WITH_AS(max_pool2d(rn({2, 4, 4}), {2, 2}), doctest::Contains("max_pool2d: input must be 4-D [N, C, H, W] (input [2, 4, 4]"),
                       ShapeError);
  CHECK_THROWS_WITH_AS(max_pool2d(x, {5, 2}), doctest::Contains("max_pool2d: kernel 5×2 is larger than the padded input 4×4"),
                       ShapeError);
  CHECK_THROWS_WITH_AS(avg_pool2d(x, {2, 2}, {.padding = {2, 0}}),
                       doctest::Contains("avg_pool2d: padding must be at most half the kernel"), ValueError);
  CHECK_THROWS_WITH_AS(max_pool2d(x, {0, 2}), doctest::Contains("kernel and strides must be >= 1"), ValueError);
  CHECK_THROWS_WITH_AS(global_avg_pool2d(rn({2, 3})), doctest::Contains("global_avg_pool2d: input must be 4-D"),
                       ShapeError);
}
