// Matrix-free solvers (linsolve.hpp) against a dense direct solve, on one tensor and on
// lists of tensors; the driver's checks, counts and reports; a solver of the user's own.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "hyperad/hyperad.hpp"

using namespace hyperad;
namespace ls = hyperad::linsolve;

namespace {
using Mat = std::vector<std::vector<double>>;

Mat transposed(const Mat& A) {
  Mat T(A[0].size(), std::vector<double>(A.size()));
  for (std::size_t i = 0; i < A.size(); ++i)
    for (std::size_t j = 0; j < A[i].size(); ++j) T[j][i] = A[i][j];
  return T;
}

// x ↦ A x on lists shaped like x (blocks of the concatenated vector).
ls::LinearMap dense_map(const Mat& A) {
  return [A](const TensorList& x) {
    const std::vector<double> xf = list::flatten(x);
    std::vector<double> y(A.size(), 0.0);
    for (std::size_t i = 0; i < A.size(); ++i)
      for (std::size_t j = 0; j < xf.size(); ++j) y[i] += A[i][j] * xf[j];
    return list::unflatten(y, x);
  };
}

// The operator of a dense matrix, with its transpose.
ls::Operator dense_op(const Mat& A, ls::Symmetry symmetry = ls::Symmetry::unknown) {
  return {.apply = dense_map(A), .apply_transposed = dense_map(transposed(A)), .symmetry = symmetry};
}

std::vector<double> flat(const TensorList& v) { return list::flatten(v); }

// Gaussian elimination with partial pivoting (independent of linsolve::DenseLU).
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

// MᵀM / n + I: symmetric positive definite, eigenvalues in [1, ~5].
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

Mat identity_minus(const Mat& A) {
  Mat M = A;
  for (std::size_t i = 0; i < A.size(); ++i)
    for (std::size_t j = 0; j < A.size(); ++j) M[i][j] = (i == j ? 1.0 : 0.0) - A[i][j];
  return M;
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
double true_residual(const ls::Operator& A, const TensorList& b, const TensorList& x) {
  TensorList r = list::clone(b);
  list::axpy(-1.0, A.apply(x), r);
  return list::norm(r);
}

ls::Options tight() {
  ls::Options o;
  o.tolerance = Tolerance::relative(1e-12);
  return o;
}
}  // namespace

TEST_CASE("every built-in solver solves an SPD system split over two tensors") {
  Generator g(3);
  const Mat A = spd(7, g);
  const TensorList b{randn({3}, g), randn({2, 2}, g)};
  const std::vector<double> want = direct(A, flat(b));
  const ls::Operator op = dense_op(A, ls::Symmetry::symmetric);

  for (const ls::Solver& solver : {ls::cg(), ls::gmres(), ls::bicgstab(), ls::normal_cg(), ls::dense_lu(),
                                   ls::richardson(0.25)}) {
    INFO(solver.name());
    const ls::Solution s = solver(op, b, {}, tight());
    CHECK(s.report.converged());
    CHECK(s.report.solver == solver.name());
    CHECK(max_rel_err(flat(s.x), want) < 1e-10);
    CHECK(s.x[1].shape() == Shape{2, 2});
    // The reported residual is the returned x's, recomputed by the driver.
    CHECK(std::abs(s.report.residual - true_residual(op, b, s.x)) <= 1e-6 * s.report.residual + 1e-14);
    CHECK(s.report.residual <= s.report.tolerance);
    CHECK(s.report.tolerance == doctest::Approx(1e-12 * list::norm(b)));
    CHECK(s.report.warnings.empty());  // the symmetry is declared
  }
  // CG: n steps in exact arithmetic; one product each, plus the driver's final check.
  const ls::Solution c = ls::cg()(op, b, {}, tight());
  CHECK(c.report.iterations <= 7 + 2);
  CHECK(c.report.products == c.report.iterations + 1);
  // LU: one product per unknown to build the matrix (its residual is exact).
  CHECK(ls::dense_lu()(op, b, {}, tight()).report.products >= 7);
  // BiCGStab costs two products an iteration; normal-CG one of A and one of Aᵀ, which
  // counts twice (a Jacobian-vector product by double reverse is two pullbacks).
  CHECK(ls::bicgstab().traits().iteration_cost == 2);
  CHECK(ls::normal_cg()(op, b, {}, tight()).report.iteration_cost == 3);

  // A warm start at the solution needs no iteration: one product for the initial residual.
  const ls::Solution again = ls::cg()(op, b, c.x, tight());
  CHECK(again.report.converged());
  CHECK(again.report.iterations == 0);
}

TEST_CASE("non-symmetric systems: GMRES with restarts, BiCGStab, fixed point, Neumann; float32") {
  Generator g(11);
  const Mat A = nonsym(8, g);
  const TensorList b{randn({8}, g)};
  const std::vector<double> want = direct(A, flat(b));
  const ls::Operator op = dense_op(A, ls::Symmetry::nonsymmetric);

  const ls::Solution gm = ls::gmres()(op, b, {}, tight());
  CHECK(gm.report.converged());
  CHECK(gm.report.iterations <= 8);
  CHECK(max_rel_err(flat(gm.x), want) < 1e-10);

  const ls::Solution gr = ls::gmres(3)(op, b, {}, tight());  // several cycles
  CHECK(gr.report.converged());
  CHECK(gr.report.iterations > 8);
  CHECK(max_rel_err(flat(gr.x), want) < 1e-10);

  for (const ls::Solver& solver : {ls::bicgstab(), ls::normal_cg(), ls::dense_lu(), ls::richardson()}) {
    INFO(solver.name());
    const ls::Solution s = solver(op, b, {}, tight());
    CHECK(s.report.converged());
    CHECK(max_rel_err(flat(s.x), want) < 1e-10);
  }
  CHECK(ls::richardson()(op, b, {}, tight()).report.iterations > gm.report.iterations);

  // Neumann on A = I − M sums Σ Mᵏ b; after K terms it equals Richardson with K + 1
  // iterations from zero, up to rounding.
  const ls::Operator im = ls::Operator::identity_minus(dense_map(identity_minus(A)));
  ls::Options capped;
  capped.tolerance = {};
  capped.max_iterations = 5;
  const ls::Solution neu = ls::neumann()(im, b, {}, capped);
  CHECK(neu.report.status == ls::Status::iteration_cap);
  CHECK(neu.report.iterations == 5);
  capped.max_iterations = 6;
  const ls::Solution fp = ls::richardson()(im, b, {}, capped);
  CHECK(max_rel_err(flat(neu.x), flat(fp.x)) < 1e-13);
  // Neumann from a start x0 sums the series of the initial residual.
  const ls::Solution warm = ls::neumann()(im, b, gm.x, tight());
  CHECK(warm.report.converged());
  CHECK(warm.report.iterations <= 1);

  // float32 lists: float32 accuracy, and a tolerance below float32's resolution stops at
  // the resolution instead of iterating on rounding noise.
  const TensorList b32{b[0].to(Dtype::f32)};
  const ls::Solution g32 = ls::gmres()(op, b32, {}, tight());
  CHECK(g32.report.converged());
  CHECK(g32.report.reason.find("machine precision") != std::string::npos);
  CHECK(g32.x[0].dtype() == Dtype::f32);
  CHECK(max_rel_err(flat(g32.x), want) < 1e-4);
}

TEST_CASE("the ridge solves (A + ρI) x = b") {
  Generator g(5);
  Mat A = spd(6, g);
  const TensorList b{randn({6}, g)};
  ls::Options o = tight();
  o.ridge = 0.5;
  Mat Ar = A;
  for (std::size_t i = 0; i < 6; ++i) Ar[i][i] += 0.5;
  const std::vector<double> want = direct(Ar, flat(b));
  for (const ls::Solver& solver : {ls::cg(), ls::gmres(), ls::bicgstab(), ls::dense_lu(), ls::normal_cg()}) {
    INFO(solver.name());
    const ls::Solution s = solver(dense_op(A, ls::Symmetry::symmetric), b, {}, o);
    CHECK(s.report.converged());
    CHECK(max_rel_err(flat(s.x), want) < 1e-10);
  }
  // Neumann's exact iteration matrix of A + ρI = I − (M − ρI).
  const ls::Operator im = ls::Operator::identity_minus(dense_map(identity_minus(nonsym(6, g))));
  o.ridge = 0.1;
  const ls::Solution neu = ls::neumann()(im, b, {}, o);
  const ls::Solution lu = ls::dense_lu()(im, b, {}, o);
  CHECK(neu.report.converged());
  CHECK(max_rel_err(flat(neu.x), flat(lu.x)) < 1e-9);
}

TEST_CASE("zero tolerance: exact convergence gives no NaN; zero right-hand side") {
  ls::Options o;
  o.tolerance = {};
  o.max_iterations = 40;
  const Mat I3 = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
  const TensorList b{tensor({1.0, -2.0, 3.0})};
  for (const ls::Solver& solver : {ls::cg(), ls::gmres(), ls::richardson(), ls::bicgstab(), ls::neumann()}) {
    INFO(solver.name());
    const ls::Solution r = solver(dense_op(I3, ls::Symmetry::symmetric), b, {}, o);
    CHECK(r.report.converged());
    if (solver.name() == "GMRES") {
      // A happy breakdown after one step: x = (‖b‖/h₁₁)·b/‖b‖, exact only up to the
      // rounding of the normalization (exact with AVX2's order of summation, 1 ulp off
      // with AVX-512's), so the residual is at the arithmetic's resolution.
      CHECK(r.report.residual <= 4 * std::numeric_limits<double>::epsilon() * std::sqrt(14.0));
      CHECK(max_rel_err(flat(r.x), {1, -2, 3}) <= 4 * std::numeric_limits<double>::epsilon());
    } else {
      CHECK(r.report.residual == 0.0);  // exactly
      CHECK(flat(r.x) == std::vector<double>{1, -2, 3});
    }
  }
  // A 2×2 SPD system with tolerance 0: the iteration stops at the arithmetic's resolution.
  const Mat A = {{4, 1}, {1, 3}};
  const TensorList b2{tensor({1.0, 2.0})};
  for (const ls::Solver& solver : {ls::cg(), ls::gmres(), ls::bicgstab()}) {
    INFO(solver.name());
    const ls::Solution r = solver(dense_op(A, ls::Symmetry::symmetric), b2, {}, o);
    CHECK(list::all_finite(r.x));
    CHECK(std::isfinite(r.report.residual));
    CHECK(max_rel_err(flat(r.x), direct(A, {1, 2})) < 1e-14);
  }
  // b = 0: x = 0 at once.
  const TensorList z{zeros({4})};
  const ls::Operator id{.apply = [](const TensorList& x) { return x; }, .symmetry = ls::Symmetry::symmetric};
  for (const ls::Solver& solver : {ls::cg(), ls::gmres(), ls::richardson(), ls::bicgstab()}) {
    const ls::Solution r = solver(id, z, {}, o);
    CHECK(r.report.converged());
    CHECK(r.report.iterations == 0);
    CHECK(flat(r.x) == std::vector<double>{0, 0, 0, 0});
  }
}

TEST_CASE("GMRES at tolerance 0 stops where the Krylov space closes, though rounding leaves a residue") {
  // Past n iterations on an n×n system the Arnoldi step yields rounding noise (norm ~1e-16,
  // not 0). Taken as a basis vector it made the least-squares problem garbage: the solution
  // went wrong, unreported (test_trust's I − diag(0.5, 1.5) gave (2.56, −0.93) for (2, −2)
  // under another optimization level). Indefinite and definite, symmetric and not.
  Generator g(7);
  for (std::size_t n : {2, 3, 4}) {
    const Mat R = random_mat(n, g);
    for (double shift : {0.0, 3.0}) {  // 0: eigenvalues of both signs; 3: mostly positive
      Mat A = R;
      for (std::size_t i = 0; i < n; ++i) A[i][i] += shift;
      std::vector<double> bv(n);
      for (double& v : bv) v = g.normal();
      ls::Options o;
      o.tolerance = {};
      o.max_iterations = 4 * int(n) + 4;
      const ls::Solution r = ls::gmres()(dense_op(A), {tensor(bv, Shape{std::int64_t(n)})}, {}, o);
      CAPTURE(n);
      CAPTURE(shift);
      CAPTURE(r.report.reason);
      CHECK(list::all_finite(r.x));
      CHECK(max_rel_err(flat(r.x), direct(A, bv)) < 1e-12);
    }
  }
  // The 2×2 system of test_trust: (I − diag(0.5, 1.5)) v = (1, 1), v = (2, −2).
  ls::Options o;
  o.tolerance = {};
  o.max_iterations = 10;
  const ls::Solution r = ls::gmres()(dense_op({{0.5, 0}, {0, -0.5}}), {tensor({1.0, 1.0})}, {}, o);
  CAPTURE(r.report.reason);
  CHECK(max_rel_err(flat(r.x), {2, -2}) < 1e-14);
}

TEST_CASE("GMRES at its noise floor is no breakdown: float32 at tolerance 0, a warm start at the solution") {
  // At tolerance 0 (AID's K fixed steps) on a system conditioned ~10³, the true residual
  // stalls at ε‖A‖‖x‖, above the ε‖b‖ at which the rule stops: GMRES cycles at the
  // arithmetic's resolution, where the computed residual wanders up and down. Rounding,
  // not a lost basis: no breakdown.
  Generator g(3);
  const std::size_t n = 40;
  Mat A = random_mat(n, g);
  double f = 0;
  for (const auto& row : A)
    for (double v : row) f += v * v;
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < n; ++j)
      A[i][j] = (i == j ? std::pow(10.0, -2.0 + 3.0 * double(i) / double(n - 1)) : 0.0) + 0.005 * A[i][j] / std::sqrt(f);
  std::vector<double> bv(n);
  for (double& v : bv) v = g.normal();
  const std::vector<double> xs = direct(A, bv);
  ls::Options o;
  o.tolerance = {};
  o.max_iterations = 300;
  const TensorList b32{tensor(bv, Shape{std::int64_t(n)}).to(Dtype::f32)};
  for (int restart : {10, 30}) {
    CAPTURE(restart);
    const ls::Solution r32 = ls::gmres(restart)(dense_op(A), b32, {}, o);
    CAPTURE(r32.report.reason);
    CHECK(r32.report.status != ls::Status::breakdown);
    CHECK(max_rel_err(flat(r32.x), xs) < 1e-3);
    // float64 started at the solution: the first residual is ~ε‖A‖‖x‖, far below ‖b‖.
    const TensorList b{tensor(bv, Shape{std::int64_t(n)})};
    const ls::Solution r = ls::gmres(restart)(dense_op(A), b, {tensor(xs, Shape{std::int64_t(n)})}, o);
    CAPTURE(r.report.reason);
    CHECK(r.report.status != ls::Status::breakdown);
    CHECK(max_rel_err(flat(r.x), xs) < 1e-10);
  }
}

TEST_CASE("GMRES keeps its iterate when a cycle raises the residual (an operator that is not linear)") {
  // A(x) = x·(1 + ‖x‖²): a cycle's least-squares step assumes linearity and overshoots; in
  // exact arithmetic on a linear operator a cycle can never raise the residual.
  const ls::Operator op{.apply = [](const TensorList& x) {
    TensorList y = list::clone(x);
    list::scale(y, 1.0 + list::dot(x, x));
    return y;
  }};
  ls::Options o;
  o.tolerance = Tolerance::relative(1e-10);
  o.max_iterations = 50;
  const TensorList b{tensor({3.0, -4.0})};
  const ls::Solution r = ls::gmres(1)(op, b, {}, o);
  CAPTURE(r.report.reason);
  CHECK(r.report.status == ls::Status::breakdown);
  CHECK(r.report.reason.find("raised the residual") != std::string::npos);
  CHECK(r.report.residual == doctest::Approx(true_residual(op, b, r.x)));
  CHECK(r.report.residual <= list::norm(b));
}

TEST_CASE("failures are reported with their numbers") {
  const Mat A = {{2, 0}, {0, 3}};
  const TensorList b{tensor({1.0, 1.0})};
  // The spectral radius of I − A is 2: Richardson with ω = 1 diverges.
  const ls::Solution d = ls::richardson()(dense_op(A), b);
  CHECK(d.report.status == ls::Status::diverged);
  CHECK_FALSE(d.report.converged());
  CHECK(d.report.reason.find("diverged: residual") != std::string::npos);

  ls::Options o;
  o.max_iterations = 3;
  const ls::Solution cap = ls::richardson(0.1)(dense_op(A), b, {}, o);
  CHECK(cap.report.status == ls::Status::iteration_cap);
  CHECK(cap.report.iterations == 3);
  CHECK(cap.report.reason.find("not converged") != std::string::npos);
  CHECK(cap.report.reason.find("after 3 iterations") != std::string::npos);

  // CG on an indefinite operator stops at p'Ap <= 0 instead of dividing by it.
  const Mat ind = {{1, 0}, {0, -1}};
  const TensorList b2{tensor({0.0, 1.0})};
  const ls::Solution br = ls::cg()(dense_op(ind, ls::Symmetry::symmetric), b2);
  CHECK(br.report.status == ls::Status::breakdown);
  CHECK(br.report.reason.find("not positive") != std::string::npos);
  CHECK(list::all_finite(br.x));

  // A singular matrix is LU's breakdown, with the pivot.
  const ls::Solution sing = ls::dense_lu()(dense_op({{1, 2}, {2, 4}}), b);
  CHECK(sing.report.status == ls::Status::breakdown);
  CHECK(sing.report.reason.find("singular") != std::string::npos);
}

TEST_CASE("bad input is refused with the solver's name and the shapes") {
  const Mat A = {{2, 0}, {0, 3}};
  const TensorList b{tensor({1.0, 1.0})};
  const ls::Operator bad{.apply = [](const TensorList&) { return TensorList{zeros({3})}; }};
  CHECK_THROWS_WITH_AS(ls::gmres()(bad, b),
                       doctest::Contains("linsolve::GMRES: the operator returned shape [3] for tensor 0 of shape [2]"),
                       ShapeError);
  CHECK_THROWS_WITH_AS(ls::gmres(0), doctest::Contains("restart must be >= 1"), ValueError);
  CHECK_THROWS_WITH_AS(ls::richardson(-1.0), doctest::Contains("omega must be finite and > 0"), ValueError);
  CHECK_THROWS_WITH_AS(ls::cg()(dense_op(A), {}), doctest::Contains("linsolve::CG: empty right-hand side"),
                       ValueError);
  CHECK_THROWS_WITH_AS(ls::cg()(dense_op(A), b, {tensor({1.0})}),
                       doctest::Contains("the initial guess against the right-hand side"), ShapeError);
  ls::Options o;
  o.tolerance = Tolerance::relative(-1.0);
  CHECK_THROWS_WITH_AS(ls::cg()(dense_op(A), b, {}, o), doctest::Contains("linsolve::CG"), ValueError);
  o = {};
  o.ridge = -1.0;
  CHECK_THROWS_WITH_AS(ls::cg()(dense_op(A), b, {}, o), doctest::Contains("the ridge must be finite and >= 0"),
                       ValueError);
  o = {};
  o.max_iterations = -1;
  CHECK_THROWS_WITH_AS(ls::cg()(dense_op(A), b, {}, o), doctest::Contains("max_iterations must be >= 0, got -1"),
                       ValueError);
  // normal-CG needs the transpose.
  const ls::Operator no_t{.apply = dense_map(A)};
  CHECK_THROWS_WITH_AS(ls::normal_cg()(no_t, b), doctest::Contains("needs the transposed operator"), ValueError);
  // LU refuses systems above its limit.
  CHECK_THROWS_WITH_AS(ls::dense_lu(1)(dense_op(A), b), doctest::Contains("the system has 2 unknowns, above the limit 1"),
                       ValueError);
}

TEST_CASE("CG and symmetry: refused when declared non-symmetric, probed by default, only warned with the probe off") {
  Generator g(7);
  const Mat S = spd(5, g), N = nonsym(5, g);
  const TensorList b{randn({5}, g)};
  CHECK_THROWS_WITH_AS(ls::cg()(dense_op(S, ls::Symmetry::nonsymmetric), b),
                       doctest::Contains("declared non-symmetric, and CG needs a symmetric one"), ValueError);
  ls::Options probe = tight();
  CHECK(probe.probe_symmetry);  // the default
  CHECK_THROWS_WITH_AS(ls::cg()(dense_op(N), b, {}, probe), doctest::Contains("the operator is not symmetric"),
                       ValueError);
  const ls::Solution probed = ls::cg()(dense_op(S), b, {}, probe);
  CHECK(probed.report.converged());
  CHECK(probed.report.warnings.empty());
  CHECK(probed.report.products == probed.report.iterations + 3);  // two probes and the final check
  ls::Options off = tight();
  off.probe_symmetry = false;
  const ls::Solution unprobed = ls::cg()(dense_op(N), b, {}, off);
  REQUIRE(unprobed.report.warnings.size() == 1);
  CHECK(unprobed.report.warnings[0].find("symmetry is unknown") != std::string::npos);
}

TEST_CASE("a solver of the user's own runs behind the same driver") {
  // Jacobi iteration x ← x + D⁻¹(b − A x) for a diagonally dominant A.
  const Mat A = {{4, 1, 0}, {1, 5, 2}, {0, 2, 6}};
  const std::vector<double> diag = {4, 5, 6};
  const ls::Solver jacobi("Jacobi", [diag](const ls::Operator& op, const TensorList& b, const TensorList& x0,
                                           const ls::Options& o, ls::Report& rep) {
    TensorList x = x0.empty() ? list::zeros_like(b) : list::clone(x0);
    ls::StoppingRule rule(o, rep.rhs_norm, b);
    const Tensor inv = tensor({1.0 / diag[0], 1.0 / diag[1], 1.0 / diag[2]});
    for (;;) {
      TensorList r = list::clone(b);
      list::axpy(-1.0, op.apply(x), r);
      if (rule.done(list::norm(r), rep.iterations, rep)) return x;
      x[0] = (x[0] + inv * r[0]).detach();
      ++rep.iterations;
    }
  });
  const TensorList b{tensor({1.0, 2.0, 3.0})};
  const ls::Solution s = jacobi(dense_op(A, ls::Symmetry::symmetric), b, {}, tight());
  CHECK(s.report.solver == "Jacobi");
  CHECK(s.report.converged());
  CHECK(max_rel_err(flat(s.x), direct(A, {1, 2, 3})) < 1e-10);
  // Counted by the driver: one product per stopping check, plus the final verification.
  CHECK(s.report.products == s.report.iterations + 2);
  CHECK(std::abs(s.report.residual - true_residual(dense_op(A), b, s.x)) <= 1e-14);
  // The driver's checks apply to it too.
  const ls::Operator bad{.apply = [](const TensorList&) { return TensorList{zeros({2})}; }};
  CHECK_THROWS_WITH_AS(jacobi(bad, b), doctest::Contains("linsolve::Jacobi: the operator returned shape [2]"),
                       ShapeError);
  CHECK_THROWS_WITH_AS(ls::Solver("x", ls::Solver::Algorithm{}), doctest::Contains("the algorithm is empty"), ValueError);
}

TEST_CASE("solvers by name") {
  CHECK(ls::solver_named("cg").name() == "CG");
  CHECK(ls::solver_named("Normal-cg").name() == "normal-CG");
  CHECK(ls::solver_named("fp").name() == "FP");
  std::vector<std::string> names;
  for (const ls::SolverInfo& s : ls::solver_table()) names.emplace_back(s.name);
  CHECK(names == std::vector<std::string>{"FP", "Neumann", "CG", "GMRES", "BiCGStab", "normal-CG", "LU"});
  for (const ls::SolverInfo& s : ls::solver_table()) CHECK(s.make().name() == s.name);
  CHECK_THROWS_WITH_AS(ls::solver_named("qr"),
                       doctest::Contains("unknown linear solver 'qr'; the solvers are: FP, Neumann, CG"), ValueError);
}
