// CsrMatrix and sparse_matmul: construction and its errors, products against the dense
// product in both orientations, derivatives in the dense operand to second order, and the
// same values on one and two threads.
#include <doctest/doctest.h>

#include <cstring>
#include <string>

#include "autodiff/ad_harness.hpp"
#include "hyperad/autodiff/csr.hpp"
#include "hyperad/autodiff/ops/sparse.hpp"

using namespace hyperad;
using namespace hyperad::testing;

namespace {

// A rows × cols matrix with about `density` of its entries non-zero (some rows and columns
// empty), as CSR and dense.
CsrMatrix random_csr(std::int64_t rows, std::int64_t cols, double density, std::uint64_t seed, Dtype d = Dtype::f64) {
  Generator g(seed);
  std::vector<std::int64_t> r, c;
  std::vector<double> v;
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t j = 0; j < cols; ++j)
      if (g.uniform() < density && i % 5 != 3) {  // every fifth row empty
        r.push_back(i);
        c.push_back(j);
        v.push_back(g.uniform() * 2 - 1);
      }
  return CsrMatrix::from_triplets(rows, cols, r, c, v, d);
}

const Dtype kDtypes[] = {Dtype::f32, Dtype::f64};
Generator gen(2026);

// Values uniform in [lo, hi).
Tensor uniform(const Shape& s, double lo, double hi, Dtype d) {
  std::vector<double> v = rand(s, gen, Dtype::f64).to_vector();
  for (double& x : v) x = lo + (hi - lo) * x;
  return tensor(v, s, d);
}

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
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
  CHECK(&a.transposed() == &a.transposed());  // built once
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
  CHECK(error_of([&] { CsrMatrix(1, 3, {0, 1}, {0}, tensor({1.0}).requires_grad_()); }).find("values require gradients") !=
        std::string::npos);
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
