// The fused linear-model ops: the harness on each (first and second order in X, w, y and
// v, both losses, every reduction), values and derivatives against the unfused
// composition at sizes that take the blocked and threaded paths, the gradient kept by the
// loss's forward pass, stability at extreme scores, and the error messages.
#include <cmath>

#include "autodiff/ad_harness.hpp"
#include "autodiff/random_data.hpp"
#include "hyperad/autodiff/runtime.hpp"

using namespace hyperad;
using hyperad::testing::expect_ad;
using hyperad::testing::rel_diff;
using hyperad::testing::values;
using hyperad::testing::with_threads;

namespace {
Generator gen(977);
Tensor rn(const Shape& s) { return randn(s, gen); }
Tensor pm1(const Shape& s) { return sub(mul_scalar(greater(rand(s, gen), full({}, 0.5)), 2.0), ones({})); }
using V = TensorList;
constexpr LinearLoss kLosses[] = {LinearLoss::logistic, LinearLoss::squared};
constexpr Reduction kVectorReductions[] = {Reduction::mean, Reduction::sum};

Tensor labels(LinearLoss loss, std::int64_t n) { return loss == LinearLoss::logistic ? pm1({n}) : rn({n}); }

// The same loss from the unfused ops.
Tensor unfused(const Tensor& X, const Tensor& w, const Tensor& y, LinearLoss loss, Reduction r) {
  const Tensor z = matmul(X, w);
  return loss == LinearLoss::logistic ? logistic_loss(z, y, r) : mse_loss(z, y, r);
}


bool bitwise_equal(const Tensor& a, const Tensor& b) { return values(a) == values(b); }

}  // namespace

TEST_CASE("linear_model_loss: FD first and second order in X, w and y, every reduction") {
  for (LinearLoss loss : kLosses)
    for (Reduction r : {Reduction::mean, Reduction::sum, Reduction::none}) {
      const std::string name = std::string("linear_model_loss ") + linear_loss_name(loss);
      expect_ad(name, [=](const V& a) { return linear_model_loss(a[0], a[1], a[2], loss, r); },
                {rn({5, 3}), rn({3}), labels(loss, 5)});
    }
  // A model whose weights feed two losses, and X shared by two terms.
  expect_ad("two linear_model_losses",
            [](const V& a) {
              return add(linear_model_loss(a[0], a[1], a[2], LinearLoss::logistic),
                         linear_model_loss(a[0], mul(a[1], a[1]), a[2], LinearLoss::squared, Reduction::sum));
            },
            {rn({4, 2}), rn({2}), pm1({4})});
}

TEST_CASE("linear_model_grad and linear_model_hvp: FD first and second order in every input") {
  for (LinearLoss loss : kLosses)
    for (Reduction r : kVectorReductions) {
      const std::string l = linear_loss_name(loss);
      expect_ad("linear_model_grad " + l, [=](const V& a) { return linear_model_grad(a[0], a[1], a[2], loss, r); },
                {rn({6, 3}), rn({3}), labels(loss, 6)});
      expect_ad("linear_model_hvp " + l,
                [=](const V& a) { return linear_model_hvp(a[0], a[1], a[2], a[3], loss, r); },
                {rn({6, 3}), rn({3}), labels(loss, 6), rn({3})});
    }
}

TEST_CASE("linear model ops: the unfused composition's values and derivatives, on blocked and wide shapes") {
  // The kernel's paths: rows under 256 bytes go 16 at a time (7 × 3, 45 × 31 in float64);
  // longer ones in groups of 8 (4 without AVX-512) whose sums run in the next group's sweep,
  // with a last group short of rows (1003) or of columns (37: a partial vector); 3000 × 70
  // is cut into blocks of rows; 700 × 1100 has rows wider than the cache group. Float32 too
  // (its rows are half as long, so 1003 × 37 takes the short path there).
  for (Dtype dtype : {Dtype::f64, Dtype::f32})
    for (auto [n, d] : {std::pair<std::int64_t, std::int64_t>{7, 3}, {45, 31}, {1003, 37}, {3000, 70}, {700, 1100}})
      for (LinearLoss loss : kLosses) {
        INFO("n = " << n << ", d = " << d << ", " << linear_loss_name(loss) << ", " << dtype_name(dtype));
        // float32 against the composition in float32: rounding of sums of d or n terms.
        const double tol = dtype == Dtype::f64 ? 1e-13 : 2e-5, hvp_tol = dtype == Dtype::f64 ? 1e-12 : 1e-4;
        const Tensor X = rn({n, d}).to(dtype), y = labels(loss, n).to(dtype), v = rn({d}).to(dtype);
        const Tensor w = mul_scalar(rn({d}), 1.0 / std::sqrt(double(d))).to(dtype).requires_grad_();
        for (Reduction r : kVectorReductions) {
          const Tensor fused = linear_model_loss(X, w, y, loss, r), plain = unfused(X, w, y, loss, r);
          CHECK(rel_diff(fused, plain) < tol);
          const Tensor g = grad(fused, {w}, {.create_graph = true})[0];
          const Tensor g_plain = grad(plain, {w}, {.create_graph = true})[0];
          CHECK(rel_diff(g, g_plain) < tol);
          CHECK(rel_diff(linear_model_grad(X, w, y, loss, r), g_plain) < tol);
          // The Hessian-vector product: of the op, and of autodiff through the fused gradient.
          const Tensor hv = grad(g, {w}, {.seed = v})[0], hv_plain = grad(g_plain, {w}, {.seed = v})[0];
          CHECK(rel_diff(hv, hv_plain) < hvp_tol);
          CHECK(rel_diff(linear_model_hvp(X, w, y, v, loss, r), hv_plain) < hvp_tol);
        }
        const Tensor per = linear_model_loss(X, w, y, loss, Reduction::none);
        CHECK(rel_diff(per, unfused(X, w, y, loss, Reduction::none)) < tol);
      }
}

TEST_CASE("linear model ops: the same values on one thread and on two") {
  const Tensor X = rn({4000, 300}), y = pm1({4000}), w = mul_scalar(rn({300}), 0.05), v = rn({300});
  const auto all = [&] {
    return V{linear_model_loss(X, w, y, LinearLoss::logistic), linear_model_grad(X, w, y, LinearLoss::logistic),
             linear_model_hvp(X, w, y, v, LinearLoss::logistic)};
  };
  const V one = with_threads(1, all), two = with_threads(2, all);
  for (std::size_t k = 0; k < one.size(); ++k) CHECK_MESSAGE(bitwise_equal(one[k], two[k]), "output " << k);
}

TEST_CASE("linear_model_loss: the gradient kept by its forward pass is the gradient op's, and stays checked") {
  const Tensor X = rn({50, 4}), y = pm1({50});
  Tensor w = rn({4}).requires_grad_();
  {
    TapeScope scope;
    const Tensor g = grad(linear_model_loss(X, w, y, LinearLoss::logistic), {w})[0];
    CHECK(bitwise_equal(g, linear_model_grad(X, w, y, LinearLoss::logistic)));
  }
  {
    TapeScope scope;
    const Tensor l = linear_model_loss(X, w, y, LinearLoss::logistic);
    w.set({0}, 3.0);  // w changed after the loss was recorded: the kept gradient is stale
    CHECK_THROWS_WITH_AS(grad(l, {w}), doctest::Contains("modified in place"), TapeError);
  }
  // The tape's memory count includes the kept ℓ'' (50 values): the same record with only X
  // differentiable keeps nothing.
  const auto taped_bytes = [&](const Tensor& A, const Tensor& v) {
    TapeScope scope;
    const std::size_t before = Tape::current().memory_bytes();
    linear_model_loss(A, v, y, LinearLoss::logistic);
    return Tape::current().memory_bytes() - before;
  };
  const Tensor w_plain = rn({4});
  CHECK(taped_bytes(X, w) - taped_bytes(X.clone().requires_grad_(), w_plain) == 50 * sizeof(double));
}

TEST_CASE("linear model ops: finite at scores of ±1000, accurate for tiny losses") {
  for (Dtype dt : {Dtype::f64, Dtype::f32}) {
    const Tensor X = reshape(tensor({1000.0, -1000.0, 1000.0, -1000.0}, dt), {4, 1}), y = tensor({1.0, 1.0, -1.0, -1.0}, dt);
    const Tensor w = ones({1}, dt), v = ones({1}, dt);
    const LinearLoss L = LinearLoss::logistic;
    CHECK(linear_model_loss(X, w, y, L, Reduction::sum).item() == doctest::Approx(2000.0));
    // ℓ' = −y σ(−yz): 0, −1, 1, 0 times x.
    CHECK(linear_model_grad(X, w, y, L, Reduction::sum).item() == doctest::Approx(2000.0));
    CHECK(linear_model_hvp(X, w, y, v, L, Reduction::sum).item() == 0.0);
  }
  // Tiny losses keep full relative precision (log1p, not log(1 + tiny)).
  const Tensor one = ones({1, 1}), w = full({1}, 40.0), y = ones({1});
  CHECK(linear_model_loss(one, w, y, LinearLoss::logistic).item() == doctest::Approx(std::exp(-40.0)).epsilon(1e-12));
  CHECK(linear_model_grad(one, w, y, LinearLoss::logistic).item() == doctest::Approx(-std::exp(-40.0)).epsilon(1e-12));
}

TEST_CASE("linear model ops: errors name the op and the shapes") {
  const Tensor X = zeros({4, 3}), w = zeros({3}), y = zeros({4}), v = zeros({3});
  const LinearLoss L = LinearLoss::logistic;
  CHECK_THROWS_WITH_AS(linear_model_loss(X, zeros({2}), y, L),
                       "linear_model_loss: sizes disagree (n = 4 rows and d = 3 columns of X): X [4, 3], w [2], y [4]",
                       ShapeError);
  CHECK_THROWS_WITH_AS(linear_model_grad(X, w, zeros({5}), L), doctest::Contains("linear_model_grad: sizes disagree"),
                       ShapeError);
  CHECK_THROWS_WITH_AS(linear_model_hvp(X, w, y, zeros({4}), L), doctest::Contains("v [4]"), ShapeError);
  CHECK_THROWS_WITH_AS(linear_model_loss(zeros({12}), w, y, L),
                       "linear_model_loss: expects X [n, d], w [d], y [n]; got X [12], w [3], y [4]", ShapeError);
  CHECK_THROWS_WITH_AS(linear_model_loss(X, zeros({3}, Dtype::f32), y, L),
                       doctest::Contains("linear_model_loss: dtypes differ: X float64 vs float32"), DtypeError);
  CHECK_THROWS_WITH_AS(linear_model_grad(X, w, y, L, Reduction::none),
                       doctest::Contains("linear_model_grad: reduction none has no single gradient"), ValueError);
  CHECK_THROWS_WITH_AS(linear_model_loss(X, w, y, static_cast<LinearLoss>(7)),
                       "linear_model_loss: unknown LinearLoss 7", ValueError);
  CHECK_THROWS_WITH_AS(linear_model_loss(zeros({0, 3}), w, zeros({0}), L), doctest::Contains("zero examples"),
                       ValueError);
  CHECK_THROWS_WITH_AS(linear_model_hvp(X, w, y, Tensor(), L), doctest::Contains("linear_model_hvp"), ValueError);
}

TEST_CASE("linear model ops over CSR: FD first and second order in the values, w, y and v") {
  const CsrMatrix a = hyperad::testing::random_csr(7, 4, 0.5, 51);
  for (LinearLoss loss : kLosses) {
    const std::string l = linear_loss_name(loss);
    const Tensor y = labels(loss, 7);
    for (Reduction r : {Reduction::mean, Reduction::none})
      expect_ad("linear_model_loss CSR " + l,
                [=](const V& x) { return linear_model_loss(a.with_values(x[0]), x[1], x[2], loss, r); },
                {a.values(), rn({4}), y});
    expect_ad("linear_model_grad CSR " + l,
              [=](const V& x) { return linear_model_grad(a.with_values(x[0]), x[1], x[2], loss); },
              {a.values(), rn({4}), y});
    expect_ad("linear_model_hvp CSR " + l,
              [=](const V& x) { return linear_model_hvp(a.with_values(x[0]), x[1], x[2], x[3], loss, Reduction::sum); },
              {a.values(), rn({4}), y, rn({4})});
  }
}

TEST_CASE("linear model ops over CSR: the dense ops' values and derivatives, the same on one and two threads") {
  const CsrMatrix sparse = hyperad::testing::random_csr(4000, 300, 0.03, 53);
  const Tensor X = sparse.to_dense(), v = rn({300});
  const Tensor w = mul_scalar(rn({300}), 0.1).requires_grad_();
  for (LinearLoss loss : kLosses) {
    INFO(linear_loss_name(loss));
    const Tensor y = labels(loss, 4000);
    for (Reduction r : kVectorReductions) {
      const Tensor g = grad(linear_model_loss(sparse, w, y, loss, r), {w}, {.create_graph = true})[0];
      const Tensor g_dense = grad(linear_model_loss(X, w, y, loss, r), {w}, {.create_graph = true})[0];
      CHECK(rel_diff(linear_model_loss(sparse, w, y, loss, r), linear_model_loss(X, w, y, loss, r)) < 1e-13);
      CHECK(rel_diff(g, g_dense) < 1e-13);
      CHECK(rel_diff(grad(g, {w}, {.seed = v})[0], grad(g_dense, {w}, {.seed = v})[0]) < 1e-12);
      CHECK(rel_diff(linear_model_hvp(sparse, w, y, v, loss, r), linear_model_hvp(X, w, y, v, loss, r)) < 1e-12);
    }
    const auto all = [&] {
      return V{linear_model_loss(sparse, w, y, loss), linear_model_grad(sparse, w, y, loss),
               linear_model_hvp(sparse, w, y, v, loss)};
    };
    const V one = with_threads(1, all), two = with_threads(2, all);
    for (std::size_t k = 0; k < one.size(); ++k) CHECK_MESSAGE(bitwise_equal(one[k], two[k]), "output " << k);
  }
  CHECK_THROWS_WITH_AS(linear_model_loss(sparse, zeros({299}), zeros({4000}), LinearLoss::squared),
                       doctest::Contains("X (CSR 4000 × 300, "), ShapeError);
}
