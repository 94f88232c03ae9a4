// fixed_point: closed forms, finite differences of the whole solve, every adjoint solver,
// composition, diagnostics, failures.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "hyperad/hyperad.hpp"

using namespace hyperad;
using V = TensorList;

namespace {
FixedPointOptions tight(const linsolve::Solver& solver = linsolve::richardson()) {
  FixedPointOptions o;
  o.tolerance = {.rtol = 1e-14, .atol = 1e-15};
  o.max_iterations = 5000;
  o.adjoint.solver = solver;
  o.adjoint.linear.tolerance = Tolerance::relative(1e-14);
  o.adjoint.linear.max_iterations = 5000;
  return o;
}

// The adjoint solvers every test runs through (CG where ∂_wΦ is symmetric).
const std::vector<linsolve::Solver> kAnySolver = {linsolve::richardson(), linsolve::gmres(), linsolve::bicgstab(),
                                                  linsolve::dense_lu()};

// Gaussian elimination, for closed forms.
std::vector<double> solve_dense(std::vector<std::vector<double>> A, std::vector<double> b) {
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

void check_close(const std::vector<double>& got, const std::vector<double>& want, double rtol) {
  REQUIRE(got.size() == want.size());
  double scale = 0, err = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    scale = std::max(scale, std::abs(want[i]));
    err = std::max(err, std::abs(got[i] - want[i]));
  }
  CHECK_MESSAGE(err <= rtol * scale, "max error " << err << " vs scale " << scale);
}
}  // namespace

TEST_CASE("scalar affine map w <- a w + b lambda: dw*/dlambda = b / (1 - a), dw*/da = b lambda / (1 - a)^2") {
  TapeScope scope;
  const double a = 0.6, bb = 2.0, l = 3.0;
  Tensor ta = scalar(a), tb = scalar(bb), lam = scalar(l), w0 = scalar(0.0);
  ta.requires_grad_();
  lam.requires_grad_();
  w0.requires_grad_();
  std::vector<linsolve::Solver> solvers = kAnySolver;
  solvers.push_back(linsolve::cg());
  solvers.push_back(linsolve::neumann());
  for (const linsolve::Solver& m : solvers) {
    INFO(m.name());
    FixedPointStats st;
    const std::size_t before = Tape::current().num_records();
    Tensor w = fixed_point([&](const Tensor& x, const V& p) { return p[0] * x + tb * p[1]; }, w0, {ta, lam},
                           tight(m), &st);
    CHECK(Tape::current().num_records() == before + 1);  // one record, whatever the iteration count
    CHECK(st->forward_converged);
    CHECK(st->forward_iterations > 20);
    CHECK(w.item() == doctest::Approx(bb * l / (1 - a)).epsilon(1e-13));
    V g = grad(w, {lam, ta, w0});
    CHECK(g[0].item() == doctest::Approx(bb / (1 - a)).epsilon(1e-12));
    CHECK(g[1].item() == doctest::Approx(bb * l / ((1 - a) * (1 - a))).epsilon(1e-12));
    CHECK(g[2].item() == 0.0);  // w0's gradient is zero by definition
    CHECK(st->backward_calls == 1);
    CHECK(st->adjoint.converged());
    CHECK(st->adjoint.solver == m.name());
    CHECK(st->adjoint.iterations >= 1);
    CHECK(Tape::current().num_records() == before + 1);  // the backward's nested recordings are gone
  }
}

TEST_CASE("quadratic inner problem w <- w - eta (A w - B lambda): the gradient is the closed-form linear solve") {
  Generator gen(21);
  const int n = 4, k = 3;
  // A = M^T M / n + I (SPD, eigenvalues in [1, ~5]); eta = 0.2 makes Phi a contraction.
  Tensor M = randn({n, n}, gen);
  Tensor A = add(matmul(transpose(M), M) * (1.0 / n), eye(n));
  Tensor B = randn({n, k}, gen), lam0 = randn({k}, gen), target = randn({n}, gen);
  const double eta = 0.2;
  std::vector<std::vector<double>> Ad(n, std::vector<double>(n));
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) Ad[i][j] = A.at({i, j});

  std::vector<linsolve::Solver> solvers = kAnySolver;
  solvers.push_back(linsolve::cg());
  for (const linsolve::Solver& m : solvers) {
    INFO(m.name());
    TapeScope scope;
    Tensor lam = lam0.detach(), Bv = B.detach();
    lam.requires_grad_();
    Bv.requires_grad_();
    FixedPointStats st;
    Tensor w = fixed_point(
        [&](const Tensor& x, const V& p) { return x - eta * (matmul(A, x) - matmul(p[1], p[0])); }, zeros({n}),
        {lam, Bv}, tight(m), &st);
    Tensor loss = 0.5 * squared_norm(w - target);
    V g = grad(loss, {lam, Bv});

    // w* = A^-1 B lambda; v = A^-T (w* - t); dL/dlambda = B^T v, dL/dB = v lambda^T.
    std::vector<double> Bl(n, 0.0);
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < k; ++j) Bl[i] += B.at({i, j}) * lam0.at({j});
    std::vector<double> wstar = solve_dense(Ad, Bl);
    check_close(w.to_vector(), wstar, 1e-12);
    std::vector<double> r(n);
    for (int i = 0; i < n; ++i) r[i] = wstar[i] - target.at({i});
    std::vector<double> v = solve_dense(Ad, r);  // A is symmetric
    std::vector<double> gl(k, 0.0), gB(n * k);
    for (int j = 0; j < k; ++j)
      for (int i = 0; i < n; ++i) {
        gl[j] += B.at({i, j}) * v[i];
        gB[i * k + j] = v[i] * lam0.at({j});
      }
    check_close(g[0].to_vector(), gl, 1e-10);
    check_close(g[1].to_vector(), gB, 1e-10);
    if (m.name() != "FP") CHECK(st->adjoint.iterations <= 2 * n + 2);  // Krylov, LU: ~n steps
  }
}

TEST_CASE("non-symmetric tanh equilibrium z <- tanh(W z + U x + b): fixed-point and GMRES adjoints vs finite differences") {
  Generator gen(8);
  const int d = 5, p = 3;
  Tensor R = randn({d, d}, gen);
  Tensor W = R * (0.5 / norm(R).item());  // ||W||_2 <= ||W||_F = 0.5: a contraction (tanh' <= 1)
  Tensor U = randn({d, p}, gen), b = randn({d}, gen) * 0.3, x = randn({p}, gen), c = randn({d}, gen);
  for (const linsolve::Solver& m : kAnySolver) {
    INFO(m.name());
    // Equilibrium layer followed by a loss; every input of the layer is a parameter.
    TensorFn model = [&, m](const V& in) {
      Tensor z = fixed_point(
          [](const Tensor& z_, const V& q) { return tanh(matmul(q[0], z_) + matmul(q[1], q[3]) + q[2]); },
          zeros({d}), in, tight(m));
      return sum(c * z) + 0.1 * squared_norm(z);
    };
    CheckOptions co;
    co.rtol = 1e-6;
    co.atol = 1e-9;
    CheckReport rep = check_gradient(model, {W, U, b, x}, co);
    CHECK_MESSAGE(rep.ok, rep.message);
  }
  // The two adjoints agree with each other to solver accuracy.
  TapeScope scope;
  V in{W.detach(), U.detach(), b.detach(), x.detach()};
  for (Tensor& t : in) t.requires_grad_();
  auto layer = [&](const linsolve::Solver& m) {
    return fixed_point([](const Tensor& z_, const V& q) { return tanh(matmul(q[0], z_) + matmul(q[1], q[3]) + q[2]); },
                       zeros({d}), in, tight(m));
  };
  V g1 = grad(sum(c * layer(linsolve::richardson())), in);
  V g2 = grad(sum(c * layer(linsolve::gmres())), in);
  for (std::size_t i = 0; i < in.size(); ++i) check_close(g2[i].to_vector(), g1[i].to_vector(), 1e-11);
}

TEST_CASE("tuple state and composition: a parameter used inside and outside the layer, float32") {
  TapeScope scope;
  // (u, v) <- (0.5 v + a, 0.25 u - a * s): fixed point u* = (0.5 s... ) solved by hand below.
  Tensor a = tensor({1.0, -2.0}), s = scalar(0.8);
  a.requires_grad_();
  s.requires_grad_();
  FixedPointMap phi = [](const V& w, const V& q) { return V{0.5 * w[1] + q[0], 0.25 * w[0] - q[0] * q[1]}; };
  V out = fixed_point(phi, {zeros({2}), zeros({2})}, {a, s}, tight());
  // u = 0.5 v + a, v = 0.25 u - a s  =>  u = a (1 - 0.5 s) / (1 - 0.125), v = 0.25 u - a s.
  const double f = (1 - 0.5 * 0.8) / 0.875;
  CHECK(out[0].to_vector()[0] == doctest::Approx(f).epsilon(1e-12));
  CHECK(out[1].to_vector()[1] == doctest::Approx(0.25 * (-2 * f) + 2 * 0.8).epsilon(1e-12));
  // L = sum(u) + sum(v) + sum(a^2): a is used inside and outside the layer.
  Tensor L = sum(out[0]) + sum(out[1]) + sum(a * a);
  V g = grad(L, {a, s});
  // dL/da_i = 1.25 (1 - 0.5 s)/0.875 - s + 2 a_i;  dL/ds = sum_i a_i (1.25 (-0.5)/0.875 - 1)
  const double sa = 1.0 - 2.0;
  for (int i = 0; i < 2; ++i)
    CHECK(g[0].to_vector()[i] == doctest::Approx(1.25 * f - 0.8 + 2 * (i == 0 ? 1.0 : -2.0)).epsilon(1e-11));
  CHECK(g[1].item() == doctest::Approx(sa * (1.25 * -0.5 / 0.875 - 1)).epsilon(1e-11));

  // A float32 state and parameters: float32 accuracy, float32 gradients.
  Tensor a32 = a.detach().to(Dtype::f32), s32 = s.detach().to(Dtype::f32);
  a32.requires_grad_();
  s32.requires_grad_();
  FixedPointOptions o32;
  o32.tolerance = Tolerance::relative(1e-6);
  o32.adjoint.linear.tolerance = Tolerance::relative(1e-6);
  V o = fixed_point(phi, {zeros({2}, Dtype::f32), zeros({2}, Dtype::f32)}, {a32, s32}, o32);
  CHECK(o[0].dtype() == Dtype::f32);
  V g32 = grad(sum(o[0]) + sum(o[1]) + sum(a32 * a32), {a32, s32});
  CHECK(g32[0].dtype() == Dtype::f32);
  CHECK(g32[1].item() == doctest::Approx(g[1].item()).epsilon(1e-5));
}

TEST_CASE("warm start of the adjoint, repeated backward, diagnostics after forward and backward") {
  TapeScope scope;
  Tensor lam = tensor({0.3, -0.4, 0.5});
  lam.requires_grad_();
  auto phi = [](const Tensor& w, const V& q) { return 0.9 * tanh(w) + q[0]; };
  FixedPointOptions o = tight();
  o.adjoint.linear.tolerance = Tolerance::relative(1e-12);
  o.adjoint_start = std::make_shared<TensorList>();
  FixedPointStats st;
  Tensor w = fixed_point(phi, zeros({3}), {lam}, o, &st);
  CHECK(st->forward_converged);
  CHECK(st->backward_calls == 0);
  CHECK(st->forward_step <= st->forward_tolerance);
  Tensor L = sum(w * w);
  V g1 = grad(L, {lam});
  const int first = st->adjoint.iterations;
  CHECK(first > 10);
  CHECK(st->adjoint.residual <= st->adjoint.tolerance);
  REQUIRE(o.adjoint_start->size() == 1);
  // The same backward again (the record is reusable) starts at the previous solution.
  V g2 = grad(L, {lam});
  CHECK(st->backward_calls == 2);
  CHECK(st->adjoint.iterations < first / 4);
  check_close(g2[0].to_vector(), g1[0].to_vector(), 1e-11);
  // A new call with the same warm start object (an outer loop) profits too.
  FixedPointStats st2;
  Tensor w2 = fixed_point(phi, zeros({3}), {lam}, o, &st2);
  grad(sum(w2 * w2), {lam});
  CHECK(st2->adjoint.iterations < first / 4);
}

TEST_CASE("second order through fixed_point is refused") {
  TapeScope scope;
  Tensor lam = scalar(0.5);
  lam.requires_grad_();
  Tensor w = fixed_point([](const Tensor& x, const V& q) { return 0.5 * x + q[0] * q[0]; }, scalar(0.0), {lam});
  GradOptions co;
  co.create_graph = true;
  CHECK_THROWS_WITH_AS(grad(w, {lam}, co),
                       doctest::Contains("second-order differentiation through fixed_point is not supported"),
                       TapeError);
  // First order still works after the refusal.
  CHECK(grad(w, {lam})[0].item() == doctest::Approx(2 * 0.5 / 0.5).epsilon(1e-8));
}

TEST_CASE("non-convergence and divergence: errors with numbers, or warnings in the report") {
  TapeScope scope;
  Tensor lam = scalar(1.0);
  lam.requires_grad_();
  auto slow = [](const Tensor& x, const V& q) { return 0.99 * x + q[0]; };
  FixedPointOptions o;
  o.max_iterations = 5;
  CHECK_THROWS_WITH_AS(fixed_point(slow, scalar(0.0), {lam}, o),
                       doctest::Contains("fixed_point: not converged after 5 iterations: step norm"), ConvergenceError);

  o.on_failure = OnFailure::quiet;
  FixedPointStats st;
  Tensor w = fixed_point(slow, scalar(0.0), {lam}, o, &st);
  CHECK_FALSE(st->forward_converged);
  CHECK(st->forward_iterations == 5);
  REQUIRE(st->warnings.size() == 1);
  CHECK(st->warnings[0].find("not converged after 5 iterations") != std::string::npos);
  CHECK(w.item() == doctest::Approx((1 - std::pow(0.99, 5)) / 0.01));

  // An expanding map: the step norm grows geometrically and is caught with its numbers.
  auto expand = [](const Tensor& x, const V& q) { return 2.0 * x + q[0]; };
  CHECK_THROWS_WITH_AS(fixed_point(expand, scalar(0.0), {lam}),
                       doctest::Contains("fixed_point: the iteration diverges: at iteration 15 the step norm"),
                       ConvergenceError);
  try {
    fixed_point(expand, scalar(0.0), {lam});
  } catch (const ConvergenceError& e) {
    CHECK(std::string(e.what()).find("grew 1.64e+04-fold above its smallest value 1.000e+00 (iteration 1)") !=
          std::string::npos);
  }
  // Non-finite iterate; warn mode returns the last finite one.
  auto blowup = [](const Tensor& x, const V& q) { return log(x - 10.0) + q[0]; };
  CHECK_THROWS_WITH_AS(fixed_point(blowup, scalar(0.0), {lam}),
                       doctest::Contains("non-finite iterate at iteration 1 (step norm NaN)"), ConvergenceError);
  o = {};
  o.on_failure = OnFailure::warn;  // also prints one line to stderr
  FixedPointStats sd;
  Tensor last = fixed_point(blowup, scalar(3.0), {lam}, o, &sd);
  CHECK(sd->forward_diverged);
  CHECK(last.item() == 3.0);

  // The adjoint solve has its own cap: too few iterations fail at backward time.
  o = {};
  o.adjoint.linear.max_iterations = 2;
  Tensor wa = fixed_point([](const Tensor& x, const V& q) { return 0.9 * x + q[0]; }, scalar(0.0), {lam}, o);
  CHECK_THROWS_WITH_AS(grad(wa, {lam}),
                       doctest::Contains("fixed_point backward: the adjoint solve (FP) failed: not converged"),
                       ConvergenceError);
  o.on_failure = OnFailure::quiet;
  FixedPointStats sq;
  Tensor wq = fixed_point([](const Tensor& x, const V& q) { return 0.9 * x + q[0]; }, scalar(0.0), {lam}, o, &sq);
  Tensor gq = grad(wq, {lam})[0];
  CHECK_FALSE(sq->adjoint.converged());
  CHECK(sq->adjoint.status == linsolve::Status::iteration_cap);
  CHECK(sq->adjoint.iterations == 2);
  CHECK(gq.item() == doctest::Approx(1 + 0.9));  // the Neumann series truncated after 2 terms
}

TEST_CASE("argument errors and in-place modification") {
  TapeScope scope;
  Tensor lam = tensor({1.0, 2.0});
  lam.requires_grad_();
  auto id = [](const V& w, const V&) { return w; };
  CHECK_THROWS_WITH_AS(fixed_point(id, V{}, {lam}), doctest::Contains("initial state has no tensors"), ValueError);
  CHECK_THROWS_WITH_AS(fixed_point(id, V{Tensor{}}, {lam}), doctest::Contains("initial state tensor 0 is undefined"),
                       ValueError);
  FixedPointOptions o;
  o.max_iterations = 0;
  CHECK_THROWS_WITH_AS(fixed_point(id, V{zeros({2})}, {lam}, o), doctest::Contains("max_iterations must be >= 1, got 0"),
                       ValueError);
  auto wrong = [](const V&, const V&) { return V{zeros({3})}; };
  CHECK_THROWS_WITH_AS(fixed_point(wrong, V{zeros({2})}, {lam}),
                       doctest::Contains("the map returned float64 [3] for state tensor 0 of float64 [2] (iteration 1)"),
                       ShapeError);
  auto two = [](const V&, const V&) { return V{zeros({2}), zeros({2})}; };
  CHECK_THROWS_WITH_AS(fixed_point(two, V{zeros({2})}, {lam}),
                       doctest::Contains("the map returned 2 tensors for a state of 1 tensors"), ShapeError);

  // A parameter overwritten between forward and backward is caught.
  Tensor p = tensor({0.5, 0.5});
  p.requires_grad_();
  Tensor w = fixed_point([](const Tensor& x, const V& q) { return 0.5 * x + q[0]; }, zeros({2}), {p});
  p.set({0}, 7.0);
  CHECK_THROWS_WITH_AS(grad(sum(w), {p}), doctest::Contains("parameter 0 (shape [2]) was modified in place"),
                       TapeError);
}

TEST_CASE("tape memory does not grow with the number of forward iterations") {
  Generator gen(4);
  Tensor R = randn({6, 6}, gen), lam0 = randn({6}, gen);
  Tensor A = R * (0.9 / norm(R).item());  // a contraction, not exactly converged in 20 steps
  auto peak_for = [&](int iters) {
    TapeScope scope;
    Tape& tape = Tape::current();
    Tensor lam = lam0.detach();
    lam.requires_grad_();
    tape.reset_peak_memory();
    const std::size_t base = tape.memory_bytes();
    FixedPointOptions o;
    o.tolerance = {};
    o.max_iterations = iters;
    o.on_failure = OnFailure::quiet;
    FixedPointStats st;
    Tensor w = fixed_point([&](const Tensor& x, const V& q) { return tanh(matmul(A, x) + q[0]); }, zeros({6}), {lam},
                           o, &st);
    grad(sum(w), {lam});
    CHECK(st->forward_iterations == iters);
    return tape.peak_memory_bytes() - base;
  };
  const std::size_t p5 = peak_for(5), p20 = peak_for(20);
  CHECK(p5 > 0);
  CHECK(p5 == p20);
}
