// Convolution ops: values against a direct 7-loop reference over strides, paddings,
// dilations, groups and 1×1 kernels; the adjoint identities that tie conv2d,
// conv_transpose2d and conv2d_weight together; finite differences to first and second
// order through the harness (each input held constant, float32 against float64); results
// independent of the thread count; and the errors.
#include <cmath>
#include <string>

#include <fmt/format.h>

#include "autodiff/ad_harness.hpp"

using namespace hyperad;
using hyperad::testing::expect_ad;
using hyperad::testing::ThreadCount;
using hyperad::testing::values;

namespace {
Generator gen(2026);
Tensor rn(const Shape& s) { return randn(s, gen); }
using V = TensorList;

// The definition, one output element at a time.
std::vector<double> direct_conv(const Tensor& x, const Tensor& w, const ConvOptions& o) {
  const std::int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const std::int64_t O = w.size(0), Cg = w.size(1), kh = w.size(2), kw = w.size(3), G = o.groups, Og = O / G;
  const std::int64_t Ho = conv_output_size(H, kh, o.stride[0], o.padding[0], o.dilation[0]);
  const std::int64_t Wo = conv_output_size(W, kw, o.stride[1], o.padding[1], o.dilation[1]);
  const std::vector<double> xv = x.to_vector(), wv = w.to_vector();
  std::vector<double> y;
  for (std::int64_t n = 0; n < N; ++n)
    for (std::int64_t oc = 0; oc < O; ++oc)
      for (std::int64_t i = 0; i < Ho; ++i)
        for (std::int64_t j = 0; j < Wo; ++j) {
          double s = 0;
          const std::int64_t g = oc / Og;
          for (std::int64_t c = 0; c < Cg; ++c)
            for (std::int64_t a = 0; a < kh; ++a)
              for (std::int64_t b = 0; b < kw; ++b) {
                const std::int64_t ih = i * o.stride[0] - o.padding[0] + a * o.dilation[0];
                const std::int64_t iw = j * o.stride[1] - o.padding[1] + b * o.dilation[1];
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                s += wv[static_cast<std::size_t>(((oc * Cg + c) * kh + a) * kw + b)] *
                     xv[static_cast<std::size_t>(((n * C + g * Cg + c) * H + ih) * W + iw)];
              }
          y.push_back(s);
        }
  (void)C;
  return y;
}

double inner(const Tensor& a, const Tensor& b) {
  const std::vector<double> u = a.to_vector(), v = b.to_vector();
  REQUIRE(u.size() == v.size());
  double s = 0;
  for (std::size_t i = 0; i < u.size(); ++i) s += u[i] * v[i];
  return s;
}

struct Case {
  Shape x, w;
  ConvOptions o;
};

// Strides, paddings, dilations, groups, a 1×1 kernel (no im2col), rectangular everything.
std::vector<Case> cases() {
  return {
      {{2, 3, 7, 6}, {4, 3, 3, 3}, {}},
      {{2, 3, 7, 6}, {4, 3, 3, 2}, {.stride = {2, 1}, .padding = {1, 2}}},
      {{1, 2, 9, 8}, {3, 2, 3, 3}, {.stride = {2, 3}, .padding = {1, 1}, .dilation = {2, 1}}},
      {{2, 4, 6, 5}, {6, 2, 3, 3}, {.padding = {1, 1}, .groups = 2}},
      {{2, 4, 5, 5}, {4, 1, 3, 3}, {.stride = {2, 2}, .padding = {1, 1}, .groups = 4}},  // depthwise
      {{3, 5, 4, 6}, {2, 5, 1, 1}, {}},                                                   // pointwise
      {{1, 2, 5, 5}, {3, 2, 1, 1}, {.stride = {2, 2}}},                                   // 1×1, strided
      {{1, 1, 3, 3}, {1, 1, 3, 3}, {.padding = {2, 2}, .dilation = {2, 2}}},
  };
}

// c's options with the output padding that makes conv_transpose2d give back c.x's size from
// conv2d's output size `y`.
ConvOptions adjoint_options(const Case& c, const Shape& y) {
  ConvOptions t = c.o;
  for (int i = 0; i < 2; ++i)
    t.output_padding[i] =
        c.x[2 + i] - conv_transpose_output_size(y[2 + i], c.w[2 + i], c.o.stride[i], c.o.padding[i], c.o.dilation[i]);
  return t;
}

std::string describe(const Case& c) {
  return fmt::format("x {} w {} stride ({}, {}) padding ({}, {}) dilation ({}, {}) groups {}", c.x.str(), c.w.str(),
                     c.o.stride[0], c.o.stride[1], c.o.padding[0], c.o.padding[1], c.o.dilation[0], c.o.dilation[1],
                     c.o.groups);
}
}  // namespace

TEST_CASE("conv2d: values against the definition, with bias, in both dtypes") {
  for (const Case& c : cases()) {
    INFO(describe(c));
    const Tensor x = rn(c.x), w = rn(c.w), bias = rn({c.w[0]});
    const std::vector<double> want = direct_conv(x, w, c.o);
    const Tensor y = conv2d(x, w, {}, c.o);
    REQUIRE(y.shape() == Shape{c.x[0], c.w[0], conv_output_size(c.x[2], c.w[2], c.o.stride[0], c.o.padding[0], c.o.dilation[0]),
                                conv_output_size(c.x[3], c.w[3], c.o.stride[1], c.o.padding[1], c.o.dilation[1])});
    const std::vector<double> got = values(y);
    double err = 0;
    for (std::size_t i = 0; i < got.size(); ++i) err = std::max(err, std::abs(got[i] - want[i]));
    CHECK(err < 1e-12);
    // The bias adds per output channel.
    const Tensor yb = conv2d(x, w, bias, c.o);
    const std::int64_t per = y.numel() / (y.size(0) * y.size(1));
    const std::vector<double> vb = values(yb), bv = values(bias);
    double berr = 0;
    for (std::size_t i = 0; i < vb.size(); ++i)
      berr = std::max(berr, std::abs(vb[i] - got[i] - bv[static_cast<std::size_t>((std::int64_t(i) / per) % y.size(1))]));
    CHECK(berr < 1e-12);
    // float32 agrees to its precision.
    const std::vector<double> g32 = values(conv2d(x.to(Dtype::f32), w.to(Dtype::f32), {}, c.o));
    double e32 = 0;
    for (std::size_t i = 0; i < g32.size(); ++i) e32 = std::max(e32, std::abs(g32[i] - want[i]));
    CHECK(e32 < 1e-4);
  }
}

TEST_CASE("conv_transpose2d and conv2d_weight are conv2d's adjoints") {
  // <u, conv2d(x, w)> = <conv_transpose2d(u, w), x> = <conv2d_weight(x, u), w>
  for (const Case& c : cases()) {
    INFO(describe(c));
    const Tensor x = rn(c.x), w = rn(c.w);
    const Tensor y = conv2d(x, w, {}, c.o);
    const Tensor u = rn(y.shape());
    const Tensor xt = conv_transpose2d(u, w, {}, adjoint_options(c, y.shape()));
    REQUIRE(xt.shape() == x.shape());
    const Tensor wt = conv2d_weight(x, u, {c.w[2], c.w[3]}, c.o);
    REQUIRE(wt.shape() == w.shape());
    const double yu = inner(u, y);
    CHECK(inner(xt, x) == doctest::Approx(yu).epsilon(1e-12));
    CHECK(inner(wt, w) == doctest::Approx(yu).epsilon(1e-12));
  }
}

TEST_CASE("conv2d: finite differences, first and second order, every input, float32") {
  for (const Case& c : cases()) {
    const Tensor x = rn(c.x), w = rn(c.w), b = rn({c.w[0]});
    expect_ad("conv2d " + describe(c), [o = c.o](const V& a) { return conv2d(a[0], a[1], a[2], o); }, {x, w, b});
    // Nonlinear around it, so second order sees the op's own cross terms.
    expect_ad("sum(tanh(conv2d))² " + describe(c),
              [o = c.o](const V& a) { return square(sum(tanh(conv2d(a[0], a[1], {}, o)))); }, {x, w});
  }
}

TEST_CASE("conv_transpose2d and conv2d_weight: finite differences, first and second order") {
  for (const Case& c : cases()) {
    const Tensor x = rn(c.x), w = rn(c.w);
    const Shape ys = conv2d(x, w, {}, c.o).shape();
    const Tensor u = rn(ys);
    const ConvOptions t = adjoint_options(c, ys);
    const Tensor bias = rn({c.x[1]});
    expect_ad("conv_transpose2d " + describe(c),
              [t](const V& a) { return tanh(conv_transpose2d(a[0], a[1], a[2], t)); }, {u, w, bias});
    expect_ad("conv2d_weight " + describe(c),
              [o = c.o, k = std::array<std::int64_t, 2>{c.w[2], c.w[3]}](const V& a) {
                return tanh(conv2d_weight(a[0], a[1], k, o));
              },
              {x, u});
  }
}

TEST_CASE("conv ops and max pooling: the same bits on one thread and on two") {
  // Large enough that the batch is split over threads (and the weight gradient's 9 samples
  // into three chunks).
  const Tensor x = rn({9, 8, 20, 20}), w = rn({16, 8, 3, 3});
  const ConvOptions o{.padding = {1, 1}};
  Tensor y1, y2, t1, t2, w1, w2, p1, p2;
  {
    ThreadCount one(1);
    y1 = conv2d(x, w, {}, o);
    t1 = conv_transpose2d(y1, w, {}, o);
    w1 = conv2d_weight(x, y1, {3, 3}, o);
    p1 = max_pool2d(y1, {2, 2});
  }
  {
    ThreadCount two(2);
    y2 = conv2d(x, w, {}, o);
    t2 = conv_transpose2d(y1, w, {}, o);
    w2 = conv2d_weight(x, y1, {3, 3}, o);
    p2 = max_pool2d(y1, {2, 2});
  }
  CHECK(values(y1) == values(y2));
  CHECK(values(t1) == values(t2));
  CHECK(values(w1) == values(w2));
  CHECK(values(p1) == values(p2));
}

TEST_CASE("conv ops: errors name the op and the shapes") {
  const Tensor x = rn({2, 4, 5, 5}), w = rn({6, 4, 3, 3});
  CHECK_THROWS_WITH_AS(conv2d(rn({4, 5, 5}), w), doctest::Contains("conv2d: input must be 4-D [N, C, H, W], got [4, 5, 5]"),
                       ShapeError);
  CHECK_THROWS_WITH_AS(conv2d(x, rn({6, 3, 3, 3})),
                       doctest::Contains("the weight has 3 input channels per group, the input 4 / 1 groups = 4"),
                       ShapeError);
  CHECK_THROWS_WITH_AS(conv2d(x, rn({6, 2, 3, 3}), {}, {.groups = 4}),
                       doctest::Contains("4 input and 6 output channels are not divisible by groups = 4"), ShapeError);
  CHECK_THROWS_WITH_AS(conv2d(x, rn({6, 4, 7, 3})),
                       doctest::Contains("conv2d: kernel 7×3 (dilation (1, 1)) is larger than the padded input 5×5"),
                       ShapeError);
  CHECK_THROWS_WITH_AS(conv2d(x, w, {}, {.dilation = {3, 1}}),
                       doctest::Contains("kernel 3×3 (dilation (3, 1)) is larger than the padded input 5×5"),
                       ShapeError);
  CHECK_NOTHROW(conv2d(x, rn({6, 4, 7, 3}), {}, {.padding = {1, 0}}));
  CHECK_THROWS_WITH_AS(conv2d(x, w, rn({4})), doctest::Contains("conv2d: bias must be [6] (one per output channel), got [4]"),
                       ShapeError);
  CHECK_THROWS_WITH_AS(conv2d(x, w, {}, {.stride = {0, 1}}), doctest::Contains("strides and dilations must be >= 1"),
                       ValueError);
  CHECK_THROWS_WITH_AS(conv2d(x, w, {}, {.groups = 0}), doctest::Contains("conv2d: groups must be >= 1, got 0"),
                       ValueError);
  CHECK_THROWS_AS(conv2d(x, w.to(Dtype::f32)), DtypeError);
  CHECK_THROWS_WITH_AS(conv_transpose2d(rn({2, 5, 3, 3}), w),
                       doctest::Contains("conv_transpose2d: the input has 5 channels, the weight's first axis 6"),
                       ShapeError);
  CHECK_THROWS_WITH_AS(conv_transpose2d(rn({2, 6, 3, 3}), w, {}, {.stride = {2, 2}, .output_padding = {2, 0}}),
                       doctest::Contains("output padding must be smaller than the stride or the dilation"), ValueError);
  CHECK_THROWS_WITH_AS(conv2d_weight(x, rn({2, 6, 4, 4}), {3, 3}),
                       doctest::Contains("conv2d_weight: conv2d's output would be 3×3, not the gradient's 4×4"),
                       ShapeError);
  CHECK_THROWS_WITH_AS(conv2d_weight(x, rn({3, 6, 3, 3}), {3, 3}), doctest::Contains("conv2d_weight: batch sizes differ"),
                       ShapeError);
  CHECK_THROWS_WITH_AS(conv2d_weight(x, rn({2, 6, 3, 3}), {-1, 3}),
                       doctest::Contains("conv2d_weight: the kernel must be at least 1×1, got -1×3"), ValueError);
  CHECK_THROWS_WITH_AS(conv2d(x, rn({6, 4, 0, 3})), doctest::Contains("conv2d: the kernel must be at least 1×1, got 0×3"),
                       ShapeError);
  CHECK_THROWS_WITH_AS(conv_transpose2d(rn({2, 6, 1, 1}), w, {}, {.padding = {2, 0}}),
                       doctest::Contains("conv_transpose2d: the output would be -1×3"), ShapeError);
}

TEST_CASE("conv_output_size and conv_transpose_output_size: the usual rules, each other's inverse") {
  for (std::int64_t in : {5, 7, 28})
    for (std::int64_t s : {1, 2, 3}) {
      const std::int64_t out = conv_output_size(in, 3, s, 1, 1);
      const std::int64_t back = conv_transpose_output_size(out, 3, s, 1, 1);
      CHECK(back <= in);
      CHECK(in - back < s);  // the output padding that restores `in`
    }
  CHECK(conv_output_size(28, 3, 1, 1, 1) == 28);
  CHECK(conv_output_size(28, 3, 2, 1, 1) == 14);
  CHECK(conv_output_size(7, 3, 2, 0, 1) == 3);
  CHECK(conv_output_size(7, 3, 1, 0, 3) == 1);
  CHECK(conv_output_size(4, 5, 1, 0, 1) == 0);  // kernel larger than the input
}
