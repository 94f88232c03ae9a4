// CsrMatrix, sparse_matmul and sampled_product: construction and its errors, products
// against the dense products in both orientations, derivatives in the dense operands and
// in the stored values to second order, and the same values on one and two threads.
#include <doctest/doctest.h>

#include "thrown.hpp"

#include <cstring>
#include <string>

#include "autodiff/ad_harness.hpp"
#include "autodiff/random_data.hpp"
#include "hyperad/autodiff/csr.hpp"
#include "hyperad/autodiff/ops/sparse.hpp"

using namespace hyperad;
using namespace hyperad::testing;

namespace {

const Dtype kDtypes[] = {Dtype::f32, Dtype::f64};
Generator gen(2026);

Tensor uniform(const Shape& s, double lo, double hi, Dtype d) { return testing::uniform(s, lo, hi, d, gen); }

// What f throws as a hyperad Error.
template <class F>
std::string error_of(F&& f) {
  return testing::message_of<Error>(std::forward<F>(f));
}

}  // namespace

TEST_CASE("CsrMatrix: triplets summed and sorted, dense round trip, transpose") {
  // [[0, 2, 0], [1, 0, 3]] with (1, 2) given as 1 + 2 and the triplets out of order.
  const CsrMatrix a = CsrMatrix::from_triplets(2, 3, {1, 0, 1, 1}, {2, 1, 0, 2}, {1.0, 2.0, 1.0, 2.0});
  CHECK(a.nnz() == 3);
  CHECK(a.indptr() == std::vector<std::int64_t>{0, 1, 3});
  CHECK(a.indices() == std::vector<std::int64_t>{1, 0, 2});
  CHECK(a.to_dense().to_vector() == std::vector<double>{0, 2, 0, 1, 0, 3});
  const CsrMatrix t = a.transposed();
  CHECK(t.rows() == 3);
  CHECK(t.cols() == 2);
  CHECK(t.to_dense().to_vector() == std::vector<double>{0, 1, 2, 0, 0, 3});
  CHECK(a.transposed().values().shares_storage(a.transposed().values()));  // built once
  const CsrMatrix b = CsrMatrix::from_dense(a.to_dense());
  CHECK(b.indices() == a.indices());
  CHECK(b.values().to_vector() == a.values().to_vector());
  CHECK(a.to(Dtype::f32).dtype() == Dtype::f32);
  const CsrMatrix none;
  CHECK(none.rows() == 0);
  CHECK(none.nnz() == 0);
  CHECK(none.transposed().cols() == 0);
  // Empty rows and columns, and an empty matrix.
  const CsrMatrix e = CsrMatrix::from_triplets(3, 4, {}, {}, {});
  CHECK(e.nnz() == 0);
  CHECK(e.transposed().indptr() == std::vector<std::int64_t>{0, 0, 0, 0, 0});
}

TEST_CASE("CsrMatrix: invalid arrays are rejected at the first offending position") {
  const Tensor v2 = tensor({1.0, 2.0});
  CHECK(error_of([&] { CsrMatrix(2, 3, {0, 1}, {0, 1}, v2); }).find("indptr has 2 entries, expected rows + 1 = 3") !=
        std::string::npos);
  CHECK(error_of([&] { CsrMatrix(3, 3, {0, 2, 1, 2}, {0, 1}, v2); }).find("indptr decreases at row 1 (2 then 1)") != std::string::npos);
  CHECK(error_of([&] { CsrMatrix(2, 3, {0, 1, 2}, {0, 3}, v2); }).find("row 1 has column 3 outside [0, 3)") !=
        std::string::npos);
  CHECK(error_of([&] { CsrMatrix(1, 3, {0, 2}, {2, 1}, v2); }).find("not strictly increasing (1 after 2)") !=
        std::string::npos);
  CHECK(error_of([&] { CsrMatrix(1, 3, {0, 2}, {0, 1}, tensor({1.0})); }).find("1 values for 2 column indices") !=
        std::string::npos);
  CHECK(error_of([&] { CsrMatrix(1, 3, {0, 1}, {0}, zeros({1, 1})); }).find("values must be a 1-D tensor, got [1, 1]") !=
        std::string::npos);
  const CsrMatrix ok(1, 3, {0, 1}, {0}, tensor({1.0}));
  CHECK(error_of([&] { ok.with_values(tensor({1.0, 2.0})); })
            .find("CsrMatrix::with_values: 2 values for 1 column indices") != std::string::npos);
  CHECK(error_of([&] { CsrMatrix::from_triplets(2, 2, {0, 2}, {0, 0}, {1.0, 1.0}); })
            .find("triplet 1 at (2, 0) is outside the 2 × 2 matrix") != std::string::npos);
  CHECK(error_of([&] { CsrMatrix::from_triplets(2, 2, {0}, {0, 1}, {1.0}); }).find("1 row indices, 2 column indices") !=
        std::string::npos);
}

TEST_CASE("sparse_matmul: A·B and Aᵀ·B equal the dense products, vectors and matrices, both dtypes") {
  for (Dtype d : kDtypes) {
    const CsrMatrix a = random_csr(23, 17, 0.2, 3, d);
    const Tensor dense = a.to_dense();
    const double tol = d == Dtype::f32 ? 1e-5 : 1e-13;
    for (std::int64_t n : {1, 3, 9}) {
      const Tensor b = uniform(n == 1 ? Shape{17} : Shape{17, n}, -1, 1, d);
      const Tensor bt = uniform(n == 1 ? Shape{23} : Shape{23, n}, -1, 1, d);
      INFO("n = " << n << " " << dtype_name(d));
      expect_close(values(sparse_matmul(a, b)), values(matmul(dense, b)), tol, "A·B");
      expect_close(values(sparse_matmul(a, bt, true)), values(matmul(transpose(dense), bt)), tol, "Aᵀ·B");
    }
  }
}

TEST_CASE("sparse_matmul: derivatives in the dense operand, first and second order") {
  const CsrMatrix a = random_csr(9, 7, 0.35, 5);
  const Tensor b = uniform({7, 4}, -1, 1, Dtype::f64), bt = uniform({9, 4}, -1, 1, Dtype::f64);
  using V = TensorList;
  // The harness's float32 pass casts the dense inputs; the sparse matrix follows their dtype.
  expect_ad("sparse_matmul", [a](const V& x) { return sparse_matmul(a.to(x[0].dtype()), x[0]); }, {b});
  expect_ad("tanh(sparse_matmul)²", [a](const V& x) { return square(tanh(sparse_matmul(a.to(x[0].dtype()), x[0]))); },
            {b});
  expect_ad("sparse_matmul transposed", [a](const V& x) { return sparse_matmul(a.to(x[0].dtype()), x[0], true); }, {bt});
  expect_ad("sparse_matmul · dense, squared",
            [a](const V& x) { return square(matmul(sparse_matmul(a.to(x[0].dtype()), x[0]), x[1])); },
            {b, uniform({4, 3}, -1, 1, Dtype::f64)});
  // The backward of A·B is Aᵀ·G: the vector-Jacobian product against the explicit transpose.
  Tensor x = b.detach().requires_grad_();
  const Tensor g = uniform({9, 4}, -1, 1, Dtype::f64);
  const Tensor vjp = grad(sum(sparse_matmul(a, x) * g), {x})[0];
  expect_close(values(vjp), values(matmul(transpose(a.to_dense()), g)), 1e-13, "vjp");
}

TEST_CASE("sparse_matmul: errors name the operands") {
  const CsrMatrix a = random_csr(4, 5, 0.5, 7);
  CHECK(error_of([&] { sparse_matmul(a, zeros({4, 2})); })
            .find("sparse_matmul: inner dimensions differ: sparse operand 4 × 5 vs dense operand [4, 2]") !=
        std::string::npos);
  CHECK(error_of([&] { sparse_matmul(a, zeros({5}), true); })
            .find("sparse operand 4 × 5 (transposed) vs dense operand [5]") != std::string::npos);
  CHECK(error_of([&] { sparse_matmul(a, zeros({5}, Dtype::f32)); }).find("dtypes differ") != std::string::npos);
  CHECK(error_of([&] { sparse_matmul(a, zeros({5, 1, 1})); }).find("must be a vector or a matrix") != std::string::npos);
  CHECK(error_of([&] { sparse_matmul(a, Tensor{}); }).find("sparse_matmul") != std::string::npos);
}

TEST_CASE("sparse_matmul: the same values on one and two threads, above the threading threshold") {
  const CsrMatrix a = random_csr(3000, 400, 0.05, 9);
  const Tensor b = uniform({400, 16}, -1, 1, Dtype::f64), s = uniform({3000, 16}, -1, 1, Dtype::f64);
  auto run = [&](int threads) {
    ThreadCount tc(threads);
    return std::make_pair(sparse_matmul(a, b), sparse_matmul(a, s, true));
  };
  const auto one = run(1), two = run(2);
  CHECK(std::memcmp(one.first.raw(), two.first.raw(), one.first.nbytes()) == 0);
  CHECK(std::memcmp(one.second.raw(), two.second.raw(), one.second.nbytes()) == 0);
}

TEST_CASE("CsrMatrix::with_values shares the pattern; select_rows keeps the values' gradient") {
  const CsrMatrix a = random_csr(6, 5, 0.4, 11);
  const Tensor v = uniform({a.nnz()}, -1, 1, Dtype::f64);
  const CsrMatrix b = a.with_values(v);
  CHECK(b.same_pattern(a));
  CHECK(!random_csr(6, 5, 0.4, 11).same_pattern(a));
  CHECK(b.transposed().same_pattern(a.transposed()));  // the transposed pattern is built once for both
  CHECK(values(b.transposed().to_dense()) == values(transpose(b.to_dense())));
  // Rows 4 and 1 of A(x): the gradient of Σ (rows)² in x is 2x at those rows' entries, twice for a repeat.
  Tensor x = v.detach().requires_grad_();
  const std::vector<std::int64_t> pick = {4, 1, 4};
  const Tensor g = grad(sum(square(a.with_values(x).select_rows(pick).values())), {x})[0];
  std::vector<double> expected(static_cast<std::size_t>(a.nnz()), 0.0);
  for (std::int64_t r : pick)
    for (std::int64_t k = a.indptr()[static_cast<std::size_t>(r)]; k < a.indptr()[static_cast<std::size_t>(r) + 1]; ++k)
      expected[static_cast<std::size_t>(k)] += 2 * values(v)[static_cast<std::size_t>(k)];
  expect_close(values(g), expected, 1e-15, "select_rows gradient");
}

TEST_CASE("sampled_product: L·Rᵀ at the pattern, vectors and matrices, both dtypes; errors name the shapes") {
  for (Dtype d : kDtypes) {
    const CsrMatrix a = random_csr(13, 11, 0.3, 13, d);
    for (std::int64_t n : {0, 1, 5}) {  // n = 0: vectors
      const Tensor l = uniform(n ? Shape{13, n} : Shape{13}, -1, 1, d), r = uniform(n ? Shape{11, n} : Shape{11}, -1, 1, d);
      const Tensor full_product = n ? matmul_t(l, r, false, true) : outer(l, r);
      std::vector<double> expected;
      const std::vector<double> p = values(full_product);
      for (std::int64_t i = 0; i < a.rows(); ++i)
        for (std::int64_t k = a.indptr()[static_cast<std::size_t>(i)]; k < a.indptr()[static_cast<std::size_t>(i) + 1]; ++k)
          expected.push_back(p[static_cast<std::size_t>(i * 11 + a.indices()[static_cast<std::size_t>(k)])]);
      INFO("n = " << n << " " << dtype_name(d));
      expect_close(values(sampled_product(a, l, r)), expected, d == Dtype::f32 ? 1e-6 : 1e-15, "sampled");
    }
  }
  const CsrMatrix a = random_csr(4, 5, 0.5, 7);
  CHECK(error_of([&] { sampled_product(a, zeros({4, 2}), zeros({5, 3})); })
            .find("sampled_product: expects L [4] and R [5] (or [4, n] and [5, n]) for the pattern 4 × 5, got L [4, 2] "
                  "and R [5, 3]") != std::string::npos);
  CHECK(error_of([&] { sampled_product(a, zeros({5}), zeros({5})); }).find("got L [5] and R [5]") != std::string::npos);
  CHECK(error_of([&] { sampled_product(a, zeros({4}), zeros({5}, Dtype::f32)); }).find("dtypes differ") !=
        std::string::npos);
}

TEST_CASE("sparse_matmul and sampled_product: derivatives in the values and both factors, first and second order") {
  const CsrMatrix a = random_csr(9, 7, 0.35, 5);
  const Tensor v = uniform({a.nnz()}, -1, 1, Dtype::f64);
  const Tensor b = uniform({7, 3}, -1, 1, Dtype::f64), bt = uniform({9, 3}, -1, 1, Dtype::f64);
  using V = TensorList;
  // Products that are bilinear in (values, B): second order meets the cross terms.
  expect_ad("A(v)·B", [a](const V& x) { return sparse_matmul(a.with_values(x[0]), x[1]); }, {v, b});
  expect_ad("A(v)ᵀ·B", [a](const V& x) { return sparse_matmul(a.with_values(x[0]), x[1], true); }, {v, bt});
  expect_ad("tanh(A(v)·B)²", [a](const V& x) { return square(tanh(sparse_matmul(a.with_values(x[0]), x[1]))); },
            {v, b});
  expect_ad("A(v²)ᵀ·tanh(B), vector",
            [a](const V& x) { return sparse_matmul(a.with_values(square(x[0])), tanh(x[1]), true); },
            {v, uniform({9}, -1, 1, Dtype::f64)});
  expect_ad("sampled_product", [a](const V& x) { return sampled_product(a.to(x[0].dtype()), x[0], x[1]); },
            {uniform({9, 3}, -1, 1, Dtype::f64), uniform({7, 3}, -1, 1, Dtype::f64)});
  expect_ad("sampled_product of vectors, squared",
            [a](const V& x) { return square(sampled_product(a.to(x[0].dtype()), x[0], sin(x[1]))); },
            {uniform({9}, -1, 1, Dtype::f64), uniform({7}, -1, 1, Dtype::f64)});
  // The values' gradient of Σ G ⊙ (A·B) is G·Bᵀ at the pattern: against the dense product.
  Tensor x = v.detach().requires_grad_();
  const Tensor g = uniform({9, 3}, -1, 1, Dtype::f64);
  const Tensor dv = grad(sum(sparse_matmul(a.with_values(x), b) * g), {x})[0];
  const Tensor dense = a.with_values(dv).to_dense(), want = matmul_t(g, b, false, true);
  const std::vector<double> got = values(dense), full = values(want);
  std::vector<double> masked(full.size(), 0.0);
  const std::vector<double> pattern = values(a.to_dense());
  for (std::size_t i = 0; i < full.size(); ++i) masked[i] = pattern[i] != 0 ? full[i] : 0.0;
  expect_close(got, masked, 1e-14, "values gradient");
}

TEST_CASE("CSR values written in place: the transpose follows, a recorded product refuses its backward") {
  const CsrMatrix a = random_csr(7, 6, 0.4, 23);
  Tensor v = a.values().clone();
  const CsrMatrix m = a.with_values(v);
  const Tensor before = m.transposed().to_dense();
  CHECK(values(before) == values(transpose(m.to_dense())));
  v.set({0}, 42.0);
  CHECK(values(m.transposed().to_dense()) == values(transpose(m.to_dense())));  // gathered again
  CHECK(values(m.transposed().to_dense()) != values(before));
  for (bool t : {false, true}) {
    Tensor b = uniform({t ? 7 : 6, 2}, -1, 1, Dtype::f64).requires_grad_();
    const Tensor y = sum(sparse_matmul(m, b, t));
    v.set({1}, -3.0);
    CHECK_THROWS_WITH_AS(grad(y, {b}), doctest::Contains("modified in place"), TapeError);
  }
  // The fused linear-model op over CSR refuses too.
  Tensor w = uniform({6}, -1, 1, Dtype::f64).requires_grad_();
  const Tensor l = linear_model_loss(m, w, uniform({7}, -1, 1, Dtype::f64), LinearLoss::squared);
  const Tensor g = grad(l, {w}, {.create_graph = true})[0];
  v.set({2}, 1.5);
  CHECK_THROWS_WITH_AS(grad(sum(g), {w}), doctest::Contains("modified in place"), TapeError);
}

TEST_CASE("sampled_product: the same values on one and two threads") {
  const CsrMatrix a = random_csr(3000, 400, 0.05, 19);
  const Tensor l = uniform({3000, 16}, -1, 1, Dtype::f64), r = uniform({400, 16}, -1, 1, Dtype::f64);
  auto run = [&](int threads) {
    ThreadCount tc(threads);
    return sampled_product(a, l, r);
  };
  const Tensor one = run(1), two = run(2);
  CHECK(std::memcmp(one.raw(), two.raw(), one.nbytes()) == 0);
}
