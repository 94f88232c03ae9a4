// The fused softmax-regression ops, dense and CSR: the harness on each (first and second
// order in X — or the CSR values — W and V, every reduction), values and derivatives against
// cross_entropy(matmul(X, W), y) at threaded sizes, thread invariance, the kept gradient and
// its memory, stability at large logits, and the error messages.
#include <cmath>

#include "autodiff/ad_harness.hpp"
#include "autodiff/random_data.hpp"
#include "hyperad/autodiff/runtime.hpp"

using namespace hyperad;
using hyperad::testing::expect_ad;
using hyperad::testing::random_csr;
using hyperad::testing::rel_diff;
using hyperad::testing::values;
using hyperad::testing::with_threads;

namespace {
Generator gen(4242);
Tensor rn(const Shape& s) { return randn(s, gen); }
using V = TensorList;
using Labels = std::vector<std::int64_t>;
constexpr Reduction kVectorReductions[] = {Reduction::mean, Reduction::sum};

Labels random_labels(std::int64_t n, std::int64_t C) {
  Labels y(static_cast<std::size_t>(n));
  for (auto& v : y) v = static_cast<std::int64_t>(gen.uniform() * static_cast<double>(C)) % C;
  return y;
}


}  // namespace

TEST_CASE("softmax_model ops: FD first and second order in X and W (and V), every reduction, dense") {
  const Labels y = random_labels(6, 3);
  for (Reduction r : {Reduction::mean, Reduction::sum, Reduction::none})
    expect_ad("softmax_model_loss", [=](const V& a) { return softmax_model_loss(a[0], a[1], y, r); },
              {rn({6, 4}), rn({4, 3})});
  for (Reduction r : kVectorReductions) {
    expect_ad("softmax_model_grad", [=](const V& a) { return softmax_model_grad(a[0], a[1], y, r); },
              {rn({6, 4}), rn({4, 3})});
    expect_ad("softmax_model_hvp", [=](const V& a) { return softmax_model_hvp(a[0], a[1], y, a[2], r); },
              {rn({6, 4}), rn({4, 3}), rn({4, 3})});
  }
  // One class (the loss is identically zero) and a gradient step differentiated through.
  expect_ad("softmax_model_loss, C = 1", [](const V& a) { return softmax_model_loss(a[0], a[1], {0, 0, 0}); },
            {rn({3, 2}), rn({2, 1})});
  expect_ad("loss after a gradient step",
            [=](const V& a) { return softmax_model_loss(a[0], sub(a[1], softmax_model_grad(a[0], a[1], y)), y); },
            {rn({6, 4}), rn({4, 3})});
}

TEST_CASE("softmax_model ops over CSR: FD first and second order in the values, W and V") {
  const CsrMatrix a = random_csr(8, 5, 0.45, 31);
  const Labels y = random_labels(8, 3);
  const Tensor v = a.values();
  for (Reduction r : {Reduction::mean, Reduction::sum, Reduction::none})
    expect_ad("softmax_model_loss CSR", [=](const V& x) { return softmax_model_loss(a.with_values(x[0]), x[1], y, r); },
              {v, rn({5, 3})});
  expect_ad("softmax_model_grad CSR", [=](const V& x) { return softmax_model_grad(a.with_values(x[0]), x[1], y); },
            {v, rn({5, 3})});
  expect_ad("softmax_model_hvp CSR",
            [=](const V& x) { return softmax_model_hvp(a.with_values(x[0]), x[1], y, x[2], Reduction::sum); },
            {v, rn({5, 3}), rn({5, 3})});
}

TEST_CASE("softmax_model ops: the composition's values and derivatives, dense and CSR, threaded sizes") {
  for (auto [n, d, C] : {std::array<std::int64_t, 3>{7, 3, 4}, {3000, 70, 5}}) {
    const CsrMatrix sparse = random_csr(n, d, 0.1, 37);
    const Tensor X = sparse.to_dense(), V_ = rn({d, C});
    const Labels y = random_labels(n, C);
    const Tensor W = mul_scalar(rn({d, C}), 1.0 / std::sqrt(double(d))).requires_grad_();
    for (Reduction r : kVectorReductions) {
      INFO("n = " << n << ", d = " << d << ", C = " << C << ", reduction " << static_cast<int>(r));
      const Tensor plain = cross_entropy(matmul(X, W), y, r);
      const Tensor g_plain = grad(plain, {W}, {.create_graph = true})[0];
      const Tensor hv_plain = grad(g_plain, {W}, {.seed = V_})[0];
      for (bool csr : {false, true}) {
        INFO((csr ? "CSR" : "dense"));
        const Tensor fused = csr ? softmax_model_loss(sparse, W, y, r) : softmax_model_loss(X, W, y, r);
        CHECK(rel_diff(fused, plain) < 1e-13);
        const Tensor g = grad(fused, {W}, {.create_graph = true})[0];
        CHECK(rel_diff(g, g_plain) < 1e-13);
        CHECK(rel_diff(csr ? softmax_model_grad(sparse, W, y, r) : softmax_model_grad(X, W, y, r), g_plain) < 1e-13);
        CHECK(rel_diff(grad(g, {W}, {.seed = V_})[0], hv_plain) < 1e-12);
        CHECK(rel_diff(csr ? softmax_model_hvp(sparse, W, y, V_, r) : softmax_model_hvp(X, W, y, V_, r), hv_plain) <
              1e-12);
      }
    }
    const Tensor per = softmax_model_loss(sparse, W, y, Reduction::none);
    CHECK(rel_diff(per, cross_entropy(matmul(X, W), y, Reduction::none)) < 1e-13);
  }
}

TEST_CASE("softmax_model ops: the same values on one thread and on two") {
  const CsrMatrix sparse = random_csr(5000, 300, 0.03, 41);
  const Tensor X = sparse.to_dense(), W = mul_scalar(rn({300, 7}), 0.1), V_ = rn({300, 7});
  const Labels y = random_labels(5000, 7);
  const auto all = [&] {
    return V{softmax_model_loss(X, W, y), softmax_model_grad(X, W, y), softmax_model_hvp(X, W, y, V_),
             softmax_model_loss(sparse, W, y), softmax_model_grad(sparse, W, y), softmax_model_hvp(sparse, W, y, V_)};
  };
  const V one = with_threads(1, all), two = with_threads(2, all);
  for (std::size_t k = 0; k < one.size(); ++k) CHECK_MESSAGE(values(one[k]) == values(two[k]), "output " << k);
}

TEST_CASE("softmax_model_loss: the kept gradient is the gradient op's, its P is counted, in-place changes caught") {
  const CsrMatrix X = random_csr(40, 6, 0.5, 43);
  const Labels y = random_labels(40, 3);
  Tensor W = rn({6, 3}).requires_grad_();
  {
    TapeScope scope;
    const Tensor g = grad(softmax_model_loss(X, W, y), {W})[0];
    CHECK(values(g) == values(softmax_model_grad(X, W, y)));
  }
  {
    TapeScope scope;
    const Tensor l = softmax_model_loss(X, W, y);
    W.set({0, 0}, 3.0);
    CHECK_THROWS_WITH_AS(grad(l, {W}), doctest::Contains("modified in place"), TapeError);
  }
  // The tape counts the kept P (40 × 3 values): the same record with only the values
  // differentiable keeps nothing.
  const auto taped_bytes = [&](const CsrMatrix& A, const Tensor& w) {
    TapeScope scope;
    const std::size_t before = Tape::current().memory_bytes();
    softmax_model_loss(A, w, y);
    return Tape::current().memory_bytes() - before;
  };
  CHECK(taped_bytes(X, W) - taped_bytes(X.with_values(X.values().clone().requires_grad_()), rn({6, 3})) ==
        40 * 3 * sizeof(double));
}

TEST_CASE("softmax_model ops: finite at logits of ±1000, accurate for tiny losses") {
  for (Dtype dt : {Dtype::f64, Dtype::f32}) {
    const Tensor X = tensor({1.0, -1.0}, {2, 1}, dt), W = tensor({1000.0, -1000.0}, {1, 2}, dt);
    // Row 0 has logits (1000, −1000), row 1 (−1000, 1000); labels 0 and 0: losses 0 and 2000.
    CHECK(softmax_model_loss(X, W, {0, 0}, Reduction::sum).item() == doctest::Approx(2000.0));
    const std::vector<double> g = values(softmax_model_grad(X, W, {0, 0}, Reduction::sum));
    CHECK(g == std::vector<double>{1.0, -1.0});  // x_1 (P − Y) = −1·(0 − 1, 1 − 0)
    CHECK(values(softmax_model_hvp(X, W, {0, 0}, ones({1, 2}, dt), Reduction::sum)) == std::vector<double>{0.0, 0.0});
  }
  const Tensor W = tensor({40.0, 0.0}, {1, 2});
  CHECK(softmax_model_loss(ones({1, 1}), W, {0}).item() == doctest::Approx(std::exp(-40.0)).epsilon(1e-12));
}

TEST_CASE("softmax_model ops: errors name the op and the shapes") {
  const Tensor X = zeros({4, 3}), W = zeros({3, 2}), V_ = zeros({3, 2});
  const Labels y = {0, 1, 1, 0};
  CHECK_THROWS_WITH_AS(softmax_model_loss(X, zeros({2, 2}), y),
                       "softmax_model_loss: sizes disagree (n = 4 rows and d = 3 columns of X, C = 2 classes): X [4, 3], "
                       "W [2, 2], 4 labels",
                       ShapeError);
  CHECK_THROWS_WITH_AS(softmax_model_grad(X, W, {0, 1}), doctest::Contains("2 labels"), ShapeError);
  CHECK_THROWS_WITH_AS(softmax_model_hvp(X, W, y, zeros({3, 3})), doctest::Contains("V [3, 3]"), ShapeError);
  CHECK_THROWS_WITH_AS(softmax_model_loss(X, zeros({3}), y),
                       "softmax_model_loss: expects X [n, d], W [d, C], n labels; got X [4, 3], W [3], 4 labels",
                       ShapeError);
  CHECK_THROWS_WITH_AS(softmax_model_loss(X, W, {0, 1, 2, 0}),
                       "softmax_model_loss: label 2 at position 2 is out of range [0, 2)", ValueError);
  CHECK_THROWS_WITH_AS(softmax_model_loss(X, zeros({3, 2}, Dtype::f32), y),
                       doctest::Contains("softmax_model_loss: dtypes differ: X float64 vs float32"), DtypeError);
  CHECK_THROWS_WITH_AS(softmax_model_grad(X, W, y, Reduction::none),
                       doctest::Contains("softmax_model_grad: reduction none has no single gradient"), ValueError);
  CHECK_THROWS_WITH_AS(softmax_model_loss(zeros({0, 3}), W, {}), doctest::Contains("zero examples"), ValueError);
  const CsrMatrix s = random_csr(4, 5, 0.5, 7);
  CHECK_THROWS_WITH_AS(softmax_model_loss(s, W, y), doctest::Contains("X (CSR 4 × 5, "), ShapeError);
  CHECK_THROWS_WITH_AS(softmax_model_hvp(X, W, y, Tensor()), doctest::Contains("softmax_model_hvp"), ValueError);
  CHECK_THROWS_WITH_AS(softmax_model_loss(X, zeros({3, 0}), y),
                       "softmax_model_loss: W has no classes: X [4, 3], W [3, 0], 4 labels", ShapeError);
  // A float32 CSR matrix with float64 weights: the CSR path's own dtype check.
  const CsrMatrix s32 = random_csr(4, 3, 0.5, 7, Dtype::f32);
  CHECK_THROWS_WITH_AS(softmax_model_loss(s32, W, y), doctest::Contains("softmax_model_loss: dtypes differ: X float32 vs float64"),
                       DtypeError);
  CHECK_THROWS_WITH_AS(linear_model_loss(s32, zeros({3}), zeros({4}), LinearLoss::logistic),
                       doctest::Contains("linear_model_loss: dtypes differ: X float32 vs float64"), DtypeError);
}
