// Matrix-free solvers against a dense direct solve, on one tensor and on tuples.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "hyperad/hyperad.hpp"

using namespace hyperad;
namespace ls = hyperad::linsolve;

namespace {
using Mat = std::vector<std::vector<double>>;

// Concatenation of a tuple's elements.
std::vector<double> flat(const ls::Vec& v) {
  std::vector<double> out;
  for (const Tensor& t : v)
    for (double x : t.to_vector()) out.push_back(x);
  return out;
}

// x ↦ A x on tuples shaped like `like` (blocks of the concatenated vector).
ls::LinearOp dense_op(const Mat& A, const ls::Vec& like, int* calls = nullptr) {
  return [A, like, calls](const ls::Vec& x) {
    if (calls) ++*calls;
    std::vector<double> xf = flat(x), y(A.size(), 0.0);
    for (std::size_t i = 0; i < A.size(); ++i)
      for (std::size_t j = 0; j < xf.size(); ++j) y[i] += A[i][j] * xf[j];
    ls::Vec out;
    std::size_t off = 0;
    for (const Tensor& t : like) {
      std::vector<double> part(y.begin() + off, y.begin() + off + t.numel());
      out.push_back(tensor(part, t.shape(), t.dtype()));
      off += t.numel();
    }
    return out;
  };
}

// Gaussian elimination with partial pivoting.
std::vector<double> direct(Mat A, std::vector<double> b) {
  const std::size_t n = b.size();
  for (std::size_t k = 0; k < n; ++k) {
    std::size_t p = k;
    for (std::size_t i = k + 1; i < n; ++i)
      if (std::abs(A[i][k]) > std::abs(A[p][k])) p = i;
    std::swap(A[k], A[p]);
    std::swap(b[k], b[p]);
    for (std::size_t i = k + 1; i < n; ++i) {
      double f = A[i][k] / A[k][k];
      for (std::size_t j = k; j < n; ++j) A[i][j] -= f * A[k][j];
      b[i] -= f * b[k];
    }
  }
  std::vector<double> x(n);
  for (std::size_t i = n; i-- > 0;) {
    double s = b[i];
    for (std::size_t j = i + 1; j < n; ++j) s -= A[i][j] * x[j];
    x[i] = s / A[i][i];
  }
  return x;
}

Mat random_mat(std::size_t n, Generator& g) {
  Mat M(n, std::vector<double>(n));
  for (auto& row : M)
    for (double& v : row) v = g.normal();
  return M;
}

// MᵀM / n + I: symmetric positive definite, moderately conditioned.
Mat spd(std::size_t n, Generator& g) {
  Mat M = random_mat(n, g), A(n, std::vector<double>(n, 0.0));
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      for (std::size_t k = 0; k < n; ++k) A[i][j] += M[k][i] * M[k][j] / double(n);
      if (i == j) A[i][j] += 1.0;
    }
  return A;
}

// I − 0.6 R / ‖R‖_F: non-symmetric, spectral radius of I − A below 0.6.
Mat nonsym(std::size_t n, Generator& g) {
  Mat R = random_mat(n, g);
  double f = 0;
  for (auto& row : R)
    for (double v : row) f += v * v;
  f = std::sqrt(f);
  Mat A(n, std::vector<double>(n));
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < n; ++j) A[i][j] = (i == j ? 1.0 : 0.0) - 0.6 * R[i][j] / f;
  return A;
}

double max_rel_err(const std::vector<double>& a, const std::vector<double>& b) {
  double e = 0, s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    e = std::max(e, std::abs(a[i] - b[i]));
    s = std::max(s, std::abs(b[i]));
  }
  return e / s;
}

// ‖b − A x‖ recomputed from scratch.
double true_residual(const ls::LinearOp& A, const ls::Vec& b, const ls::Vec& x) {
  ls::Vec r = ls::clone(b);
  ls::axpy(-1.0, A(x), r);
  return ls::norm(r);
}
}  // namespace

TEST_CASE("vector helpers over tuples") {
  ls::Vec a{tensor({1.0, 2.0}), tensor({3.0}, Dtype::f32)};
  ls::Vec b{tensor({4.0, 5.0}), tensor({6.0}, Dtype::f32)};
  CHECK(ls::dot(a, b) == doctest::Approx(4 + 10 + 18));
  CHECK(ls::norm(a) == doctest::Approx(std::sqrt(14.0)));
  ls::Vec y = ls::clone(b);
  ls::axpy(2.0, a, y);
  CHECK(flat(y) == std::vector<double>{6, 9, 12});
  CHECK(flat(b) == std::vector<double>{4, 5, 6});  // clone copied the data
  ls::scale(y, 0.5);
  CHECK(flat(y) == std::vector<double>{3, 4.5, 6});
  CHECK(flat(ls::zeros_like(a)) == std::vector<double>{0, 0, 0});
  CHECK(ls::all_finite(a));
  CHECK_FALSE(ls::all_finite({tensor({1.0, std::nan("")})}));
  CHECK_THROWS_WITH_AS(ls::dot(a, {tensor({1.0, 2.0})}), doctest::Contains("tuples of 2 and 1 tensors"), ShapeError);
  CHECK_THROWS_WITH_AS(ls::axpy(1.0, {tensor({1.0})}, y = {tensor({1.0, 2.0})}),
                       doctest::Contains("tensor 0 has shape [1] in the first tuple and [2] in the second"),
                       ShapeError);
}

TEST_CASE("CG, GMRES and fixed-point iteration solve an SPD system split over two tensors") {
  Generator g(3);
  Mat A = spd(7, g);
  ls::Vec b{randn({3}, g), randn({2, 2}, g)};
  std::vector<double> want = direct(A, flat(b));
  ls::LinearOp op = dense_op(A, b);
  ls::Options o;
  o.rtol = 1e-12;

  ls::Result c = ls::cg(op, b, {}, o);
  CHECK(c.converged);
  CHECK(c.iterations <= 7 + 2);  // n steps in exact arithmetic
  CHECK(max_rel_err(flat(c.x), want) < 1e-10);
  CHECK(c.x[1].shape() == Shape{2, 2});
  // The reported residual is the returned iterate's (CG returns its current iterate).
  CHECK(true_residual(op, b, c.x) <= 10 * c.tolerance);

  ls::Result gm = ls::gmres(op, b, {}, o);
  CHECK(gm.converged);
  CHECK(max_rel_err(flat(gm.x), want) < 1e-10);
  CHECK(gm.residual == doctest::Approx(true_residual(op, b, gm.x)).epsilon(1e-6));

  // Richardson with ω below 2 / λ_max: eigenvalues of MᵀM/n + I lie in [1, ~5].
  o.omega = 0.25;
  ls::Result fp = ls::richardson(op, b, {}, o);
  CHECK(fp.converged);
  CHECK(max_rel_err(flat(fp.x), want) < 1e-10);
  CHECK(fp.residual <= fp.tolerance);
  CHECK(fp.matvecs == fp.iterations);  // zero start: no initial product

  // A warm start at the solution needs no iteration.
  ls::Result again = ls::cg(op, b, c.x, o);
  CHECK(again.converged);
  CHECK(again.iterations == 0);
  CHECK(again.matvecs == 1);
}

TEST_CASE("GMRES and fixed-point iteration on a non-symmetric system; restarts") {
  Generator g(11);
  Mat A = nonsym(8, g);
  ls::Vec b{randn({8}, g)};
  std::vector<double> want = direct(A, flat(b));
  ls::LinearOp op = dense_op(A, b);
  ls::Options o;
  o.rtol = 1e-12;
  ls::Result gm = ls::gmres(op, b, {}, o);
  CHECK(gm.converged);
  CHECK(gm.iterations <= 8);
  CHECK(max_rel_err(flat(gm.x), want) < 1e-10);

  o.restart = 3;  // GMRES(3): several cycles, still converges on this well-conditioned A
  ls::Result gr = ls::gmres(op, b, {}, o);
  CHECK(gr.converged);
  CHECK(gr.iterations > 8);
  CHECK(max_rel_err(flat(gr.x), want) < 1e-10);

  ls::Result fp = ls::solve(ls::Method::fixed_point, op, b, {}, o);  // ω = 1: x ← b + (I − A) x
  CHECK(fp.converged);
  CHECK(max_rel_err(flat(fp.x), want) < 1e-10);
  CHECK(fp.iterations > gm.iterations);

  // float32 vectors: float32 accuracy.
  ls::Vec b32{b[0].to(Dtype::f32)};
  ls::Options o32;
  o32.rtol = 1e-5;
  ls::Result g32 = ls::gmres(dense_op(A, b32), b32, {}, o32);
  CHECK(g32.converged);
  CHECK(g32.x[0].dtype() == Dtype::f32);
  CHECK(max_rel_err(flat(g32.x), want) < 1e-4);
}

TEST_CASE("zero tolerance: exact convergence gives no NaN; zero right-hand side") {
  ls::Options o;
  o.rtol = 0;
  o.atol = 0;
  o.max_iter = 40;
  Mat I3 = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
  ls::Vec b{tensor({1.0, -2.0, 3.0})};
  ls::LinearOp id = dense_op(I3, b);
  for (ls::Method m : {ls::Method::cg, ls::Method::gmres, ls::Method::fixed_point}) {
    INFO(ls::method_name(m));
    ls::Result r = ls::solve(m, id, b, {}, o);
    CHECK(r.converged);  // residual exactly 0 (a happy breakdown for GMRES)
    CHECK(r.residual == 0.0);
    CHECK(flat(r.x) == std::vector<double>{1, -2, 3});
  }
  // A 2×2 SPD system with tolerance 0: the iteration runs on past convergence without NaN.
  Mat A = {{4, 1}, {1, 3}};
  ls::Vec b2{tensor({1.0, 2.0})};
  for (ls::Method m : {ls::Method::cg, ls::Method::gmres}) {
    INFO(ls::method_name(m));
    ls::Result r = ls::solve(m, dense_op(A, b2), b2, {}, o);
    CHECK(ls::all_finite(r.x));
    CHECK(std::isfinite(r.residual));
    CHECK(max_rel_err(flat(r.x), direct(A, {1, 2})) < 1e-14);
  }
  // b = 0: x = 0 at once.
  ls::Vec z{zeros({4})};
  for (ls::Method m : {ls::Method::cg, ls::Method::gmres, ls::Method::fixed_point}) {
    ls::Result r = ls::solve(m, [](const ls::Vec& x) { return x; }, z, {}, o);
    CHECK(r.converged);
    CHECK(r.iterations == 0);
    CHECK(flat(r.x) == std::vector<double>{0, 0, 0, 0});
  }
}

TEST_CASE("failures are reported with numbers") {
  Mat A = {{2, 0}, {0, 3}};
  ls::Vec b{tensor({1.0, 1.0})};
  ls::Options o;
  o.omega = 1.0;  // spectral radius of I − A is 2: Richardson diverges
  ls::Result d = ls::richardson(dense_op(A, b), b, {}, o);
  CHECK(d.diverged);
  CHECK_FALSE(d.converged);
  CHECK(d.reason.find("diverged: residual") != std::string::npos);

  o.max_iter = 3;
  o.omega = 0.1;
  ls::Result cap = ls::richardson(dense_op(A, b), b, {}, o);
  CHECK_FALSE(cap.converged);
  CHECK(cap.iterations == 3);
  CHECK(cap.reason.find("not converged") != std::string::npos);
  CHECK(cap.reason.find("after 3 iterations") != std::string::npos);

  // CG on an indefinite operator stops at p'Ap <= 0 instead of dividing by it.
  Mat ind = {{1, 0}, {0, -1}};
  ls::Vec b2{tensor({0.0, 1.0})};
  ls::Result br = ls::cg(dense_op(ind, b2), b2);
  CHECK_FALSE(br.converged);
  CHECK(br.reason.find("not positive definite") != std::string::npos);
  CHECK(ls::all_finite(br.x));

  auto bad = [](const ls::Vec&) { return ls::Vec{zeros({3})}; };
  CHECK_THROWS_WITH_AS(ls::gmres(bad, b), doctest::Contains("gmres: the operator returned shape [3] for tensor 0 of shape [2]"),
                       ShapeError);
  o = {};
  o.restart = 0;
  CHECK_THROWS_WITH_AS(ls::gmres(dense_op(A, b), b, {}, o), doctest::Contains("restart must be >= 1"), ValueError);
  CHECK_THROWS_WITH_AS(ls::cg(dense_op(A, b), {}), doctest::Contains("empty right-hand side"), ValueError);
}
