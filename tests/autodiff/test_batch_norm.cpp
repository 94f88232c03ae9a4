// Batch normalization and dropout: closed forms (zero mean, unit variance, the affine
// part), the running statistics, evaluation mode, finite differences to first and second
// order, dropout's mask, and the errors.
#include <cmath>

#include "autodiff/ad_harness.hpp"

using namespace hyperad;
using hyperad::testing::expect_ad;
using hyperad::testing::values;

namespace {
Generator gen(5);
Tensor rn(const Shape& s) { return randn(s, gen); }
using V = TensorList;
}  // namespace

TEST_CASE("batch_norm: per channel zero mean and unit variance, then the affine map") {
  const Tensor x = add_scalar(mul_scalar(rn({4, 3, 5, 2}), 3.0), 2.0);
  const Tensor y = batch_norm(x, {}, {}, nullptr, {.eps = 1e-12});
  const Tensor m = mean(y, {0, 2, 3}), v = mean(square(y), {0, 2, 3});
  for (double e : values(m)) CHECK(std::abs(e) < 1e-13);
  for (double e : values(v)) CHECK(e == doctest::Approx(1.0).epsilon(1e-10));
  const Tensor w = tensor({2.0, -1.0, 0.5}), b = tensor({0.0, 1.0, -3.0});
  const std::vector<double> ya = values(batch_norm(x, w, b, nullptr, {.eps = 1e-12})), y0 = values(y);
  for (std::size_t i = 0; i < ya.size(); ++i) {
    const std::size_t c = (i / 10) % 3;
    CHECK(ya[i] == doctest::Approx(y0[i] * values(w)[c] + values(b)[c]).epsilon(1e-12));
  }
}

TEST_CASE("batch_norm: running statistics updated outside the tape, read in evaluation mode") {
  const Tensor x = rn({6, 2, 3, 3}).requires_grad_();
  BatchNormStats st = BatchNormStats::init(2);
  const Tensor y = batch_norm(x, {}, {}, &st, {.momentum = 0.25});
  CHECK(!st.mean.requires_grad());
  CHECK(!st.var.requires_grad());
  const std::vector<double> xv = values(x);
  for (std::int64_t c = 0; c < 2; ++c) {
    double s = 0, ss = 0;
    const std::int64_t n = 6 * 9;
    for (std::int64_t i = 0; i < 6; ++i)
      for (std::int64_t k = 0; k < 9; ++k) s += xv[static_cast<std::size_t>((i * 2 + c) * 9 + k)];
    const double mu = s / double(n);
    for (std::int64_t i = 0; i < 6; ++i)
      for (std::int64_t k = 0; k < 9; ++k) ss += std::pow(xv[static_cast<std::size_t>((i * 2 + c) * 9 + k)] - mu, 2);
    CHECK(values(st.mean)[static_cast<std::size_t>(c)] == doctest::Approx(0.25 * mu).epsilon(1e-12));
    CHECK(values(st.var)[static_cast<std::size_t>(c)] ==
          doctest::Approx(0.75 + 0.25 * ss / double(n - 1)).epsilon(1e-12));  // unbiased
  }
  // Evaluation: (x − running mean) / √(running var + eps), a constant map of x.
  const Tensor ye = batch_norm_eval(x, {}, {}, st, 1e-5);
  const double want = (xv[0] - values(st.mean)[0]) / std::sqrt(values(st.var)[0] + 1e-5);
  CHECK(values(ye)[0] == doctest::Approx(want).epsilon(1e-12));
  CHECK(values(grad(sum(ye), {x})[0])[0] == doctest::Approx(1 / std::sqrt(values(st.var)[0] + 1e-5)).epsilon(1e-12));
}

TEST_CASE("batch_norm: finite differences, first and second order, 4-D and 2-D") {
  expect_ad("batch_norm 4-D", [](const V& a) { return tanh(batch_norm(a[0], a[1], a[2])); },
            {rn({3, 2, 3, 2}), rn({2}), rn({2})});
  expect_ad("batch_norm 2-D", [](const V& a) { return tanh(batch_norm(a[0], a[1], a[2])); },
            {rn({5, 3}), rn({3}), rn({3})});
  BatchNormStats st{rn({2}), add_scalar(square(rn({2})), 0.5)};
  expect_ad("batch_norm_eval",
            [st](const V& a) {
              // the caller's statistics in the input's dtype
              const BatchNormStats s{st.mean.to(a[0].dtype()), st.var.to(a[0].dtype())};
              return tanh(batch_norm_eval(a[0], a[1], a[2], s));
            },
            {rn({3, 2, 2, 2}), rn({2}), rn({2})});
}

TEST_CASE("dropout: keeps 1 − p of the elements, scaled; the same generator state gives the same mask") {
  const Tensor x = ones({200, 100}).requires_grad_();
  Generator g1(11), g2(11);
  const Tensor y1 = dropout(x, 0.3, g1), y2 = dropout(x, 0.3, g2);
  CHECK(values(y1) == values(y2));
  std::int64_t kept = 0;
  for (double v : values(y1)) {
    CHECK((v == 0.0 || v == doctest::Approx(1 / 0.7).epsilon(1e-15)));
    kept += v != 0.0;
  }
  CHECK(std::abs(double(kept) / 20000 - 0.7) < 0.02);  // 6 standard deviations
  CHECK(values(grad(sum(y1), {x})[0]) == values(y1));  // the mask is the derivative
  Generator g3(1);
  CHECK(values(dropout(x, 0.0, g3)) == values(x));
}

TEST_CASE("batch_norm and dropout: errors") {
  CHECK_THROWS_WITH_AS(batch_norm(rn({2, 3, 4}), {}, {}), doctest::Contains("batch_norm: input must be [N, C] or [N, C, H, W], got [2, 3, 4]"),
                       ShapeError);
  CHECK_THROWS_WITH_AS(batch_norm(rn({2, 3}), rn({2}), {}), doctest::Contains("batch_norm: weight must be [3] (one per channel of input [2, 3]), got [2]"),
                       ShapeError);
  CHECK_THROWS_WITH_AS(batch_norm(rn({1, 3}), {}, {}), doctest::Contains("at least two values per channel"), ValueError);
  CHECK_THROWS_WITH_AS(batch_norm(rn({2, 3}), {}, {}, nullptr, {.eps = 0}), doctest::Contains("eps must be > 0"), ValueError);
  BatchNormStats wrong = BatchNormStats::init(4);
  CHECK_THROWS_WITH_AS(batch_norm(rn({2, 3}), {}, {}, &wrong), doctest::Contains("running mean must be [3]"), ShapeError);
  Generator g(1);
  CHECK_THROWS_WITH_AS(dropout(rn({2}), 1.0, g), doctest::Contains("dropout: p must be in [0, 1), got 1"), ValueError);
}

TEST_CASE("batch_norm: batch_groups normalizes each part of the batch with its own statistics") {
  const Tensor x = rn({6, 2, 2, 3}), w = rn({2}), b = rn({2});
  BatchNormStats st = BatchNormStats::init(2), st1 = BatchNormStats::init(2);
  const Tensor y = batch_norm(x, w, b, &st, {.batch_groups = 3});
  std::vector<double> mu_sum(2, 0.0);
  for (std::int64_t g = 0; g < 3; ++g) {
    const std::vector<double> part = values(batch_norm(narrow(x, 0, 2 * g, 2), w, b, &st1, {.momentum = 1.0}));
    const std::vector<double> got = values(narrow(y, 0, 2 * g, 2));
    REQUIRE(part.size() == got.size());
    for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(part[i]).epsilon(1e-13));
    for (std::size_t c = 0; c < 2; ++c) mu_sum[c] += values(st1.mean)[c];
  }
  // The running mean moves toward the parts' mean.
  for (std::size_t c = 0; c < 2; ++c) CHECK(values(st.mean)[c] == doctest::Approx(0.1 * mu_sum[c] / 3).epsilon(1e-12));
  expect_ad("batch_norm, 3 batch groups",
            [](const V& a) { return tanh(batch_norm(a[0], a[1], a[2], nullptr, {.batch_groups = 3})); },
            {x, w, b});
  CHECK_THROWS_WITH_AS(batch_norm(x, {}, {}, nullptr, {.batch_groups = 4}),
                       doctest::Contains("batch_groups = 4 must be >= 1 and divide the batch of input [6, 2, 2, 3]"),
                       ValueError);
}

TEST_CASE("batch_norm: the first-order backward kernel agrees with the recorded rule; float32 keeps its accuracy off zero mean") {
  // A first-order sweep runs the kernel; a sweep with create_graph writes the rule in DSL
  // ops. Both must give the same cotangents (4-D and 2-D, with and without γ, β, groups).
  struct Case {
    Shape shape;
    bool affine;
    std::int64_t groups;
  };
  for (const Case& c : {Case{{6, 3, 4, 5}, true, 1}, Case{{6, 3, 4, 5}, false, 3}, Case{{8, 5}, true, 2},
                        Case{{8, 5}, false, 1}}) {
    CAPTURE(c.shape.str());
    CAPTURE(c.groups);
    const Tensor x = add_scalar(rn(c.shape), 3.0).requires_grad_();
    const std::int64_t C = c.shape[1];
    const Tensor w = c.affine ? rn({C}).requires_grad_() : Tensor{}, b = c.affine ? rn({C}).requires_grad_() : Tensor{};
    const Tensor seed = rn(c.shape);
    TensorList wrt{x};
    if (c.affine) wrt = {x, w, b};
    const Tensor y = batch_norm(x, w, b, nullptr, {.batch_groups = c.groups});
    const TensorList fast = grad(y, wrt, {.seed = seed});
    const TensorList recorded = grad(y, wrt, {.seed = seed, .create_graph = true});
    for (std::size_t k = 0; k < wrt.size(); ++k) {
      CHECK(!fast[k].requires_grad());
      const std::vector<double> f = values(fast[k]), r = values(recorded[k]);
      for (std::size_t i = 0; i < f.size(); ++i) CHECK(f[i] == doctest::Approx(r[i]).epsilon(1e-12).scale(1.0));
    }
  }
  // Values around 1000 with spread 1: the kernel centres before scaling, so float32 loses
  // nothing to the mean's size (x·s − μ·s would cancel: errors ~ ε·|μ|/σ ≈ 6e-5).
  // The same for the first-order backward (Σ dy·(x − μ) centred on μ_T, δ = μ − μ_T carried).
  // 8 channels: some mean is far from a float32 number (spacing 6e-5 at 1000).
  const Tensor x32 = add_scalar(rn({4, 8, 8, 8}), 1000.0).to(Dtype::f32).requires_grad_();
  const Tensor x64 = x32.detach().to(Dtype::f64).requires_grad_();
  // A seed correlated with x̂, so that the x̂·mean(g·x̂) term of dx is of order one.
  const Tensor w = rn({8}), b = rn({8}), seed = add(rn({4, 8, 8, 8}), add_scalar(x32.detach().to(Dtype::f64), -1000.0));
  const Tensor w32 = w.to(Dtype::f32).requires_grad_(), b32 = b.to(Dtype::f32).requires_grad_();
  const Tensor w64 = w.detach().requires_grad_(), b64 = b.detach().requires_grad_();
  const Tensor y32 = batch_norm(x32, w32, b32), y64 = batch_norm(x64, w64, b64);
  const TensorList g32 = grad(y32, {x32, w32, b32}, {.seed = seed.to(Dtype::f32)});
  const TensorList g64 = grad(y64, {x64, w64, b64}, {.seed = seed});
  auto max_err = [](const Tensor& a, const Tensor& c) {
    const std::vector<double> av = values(a), cv = values(c);
    double e = 0, scale = 0;
    for (std::size_t i = 0; i < av.size(); ++i) {
      e = std::max(e, std::abs(av[i] - cv[i]));
      scale = std::max(scale, std::abs(cv[i]));
    }
    return e / scale;
  };
  CHECK(max_err(y32, y64) < 1e-6);
  CHECK(max_err(g32[0], g64[0]) < 1e-6);  // dx
  CHECK(max_err(g32[1], g64[1]) < 1e-6);  // dγ
  CHECK(max_err(g32[2], g64[2]) < 1e-6);  // dβ
}

TEST_CASE("batch_norm: the same bits on one thread and on two (forward and first-order backward)") {
  // 16 channels of 32 × 24 × 24 values each: above the threshold, the units split over threads.
  using hyperad::testing::ThreadCount;
  const Tensor x = rn({32, 16, 24, 24}).requires_grad_(), w = rn({16}).requires_grad_(), b = rn({16}).requires_grad_();
  const Tensor seed = rn({32, 16, 24, 24});
  auto run = [&](int threads) {
    ThreadCount n(threads);
    TensorList out{batch_norm(x, w, b, nullptr, {.batch_groups = 4})};
    for (const Tensor& g : grad(out[0], {x, w, b}, {.seed = seed})) out.push_back(g);
    return out;
  };
  const TensorList one = run(1), two = run(2);
  for (std::size_t k = 0; k < one.size(); ++k) CHECK(values(one[k]) == values(two[k]));
}
