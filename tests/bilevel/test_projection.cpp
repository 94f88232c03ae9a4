// Projections: each output lies in its set, projecting twice changes nothing, and results
// equal closed forms on examples; the exact ball ∩ box algorithms also match independent
// references (bisection on the KKT multiplier, Dykstra's alternating projections) and
// satisfy the optimality condition ⟨y − P(y), z − P(y)⟩ ≤ 0 for feasible z.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "hyperad/bilevel/projection.hpp"
#include "hyperad/hyperad.hpp"

using namespace hyperad;
using namespace hyperad::bilevel;

namespace {

using Vec = std::vector<double>;

double max_abs_diff(const Vec& a, const Vec& b) {
  REQUIRE(a.size() == b.size());
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}
void check_close(const Tensor& a, const Vec& b, double tol) { CHECK(max_abs_diff(a.to_vector(), b) <= tol); }

double norm_p(const Vec& d, RowNorm n) {
  double s = 0;
  for (double x : d) s = n == RowNorm::l1 ? s + std::abs(x) : n == RowNorm::l2 ? s + x * x : std::max(s, std::abs(x));
  return n == RowNorm::l2 ? std::sqrt(s) : s;
}

// Optimality of p = P(y) over a convex set: ⟨y − p, z − p⟩ ≤ 0 for every z in the set.
void check_variational(const Vec& y, const Vec& p, const std::vector<Vec>& feasible, double tol) {
  for (const Vec& z : feasible) {
    double s = 0;
    for (std::size_t i = 0; i < y.size(); ++i) s += (y[i] - p[i]) * (z[i] - p[i]);
    CHECK(s <= tol);
  }
}

// Independent reference for one row of ball ∩ box: bisection on the KKT multiplier.
// ℓ2: x(θ) = clamp(c + θ d) with ‖x(θ) − c‖ increasing in θ; ℓ1: soft threshold μ then clamp.
Vec bisect_row(const Vec& y, const Vec& c, double eps, double lo, double hi, RowNorm n) {
  const std::size_t m = y.size();
  auto at = [&](double p) {
    Vec x(m);
    for (std::size_t j = 0; j < m; ++j) {
      const double d = y[j] - c[j];
      const double moved = n == RowNorm::l2 ? p * d : std::copysign(std::max(std::abs(d) - p, 0.0), d);
      x[j] = std::clamp(c[j] + moved, lo, hi);
    }
    return x;
  };
  auto dist = [&](const Vec& x) {
    Vec d(m);
    for (std::size_t j = 0; j < m; ++j) d[j] = x[j] - c[j];
    return norm_p(d, n);
  };
  const double free = n == RowNorm::l2 ? 1.0 : 0.0;  // the multiplier value of "box only"
  if (dist(at(free)) <= eps) return at(free);
  double a = n == RowNorm::l2 ? 0.0 : 0.0, b = n == RowNorm::l2 ? 1.0 : 1e6;  // feasible end is a (l2) / b (l1)
  for (int it = 0; it < 200; ++it) {
    const double mid = 0.5 * (a + b);
    const bool inside = dist(at(mid)) <= eps;
    if (n == RowNorm::l2) (inside ? a : b) = mid;
    else (inside ? b : a) = mid;
  }
  return at(n == RowNorm::l2 ? a : b);
}

// Dykstra's alternating projections between the ℓ2 ball and the box (slow, independent).
Vec dykstra_l2_box(const Vec& y, const Vec& c, double eps, double lo, double hi) {
  const std::size_t m = y.size();
  Vec x = y, p(m, 0.0), q(m, 0.0), z(m);
  for (int it = 0; it < 20000; ++it) {
    for (std::size_t j = 0; j < m; ++j) z[j] = std::clamp(x[j] + p[j], lo, hi);
    for (std::size_t j = 0; j < m; ++j) p[j] = x[j] + p[j] - z[j];
    double n2 = 0;
    for (std::size_t j = 0; j < m; ++j) n2 += std::pow(z[j] + q[j] - c[j], 2);
    const double f = std::sqrt(n2) > eps ? eps / std::sqrt(n2) : 1.0;
    Vec nx(m);
    for (std::size_t j = 0; j < m; ++j) nx[j] = c[j] + (z[j] + q[j] - c[j]) * f;
    for (std::size_t j = 0; j < m; ++j) q[j] = z[j] + q[j] - nx[j];
    x = nx;
  }
  return x;
}

// Random feasible points of ball(c, eps) ∩ [lo, hi]: a random direction scaled into the
// ball, then clamped into the box (which only shrinks |x_j − c_j| since c is in the box).
std::vector<Vec> feasible_row_points(const Vec& c, double eps, double lo, double hi, RowNorm n, Generator& g) {
  std::vector<Vec> pts;
  for (int k = 0; k < 50; ++k) {
    Vec d(c.size());
    for (double& x : d) x = g.normal();
    const double scale = eps * g.uniform() / std::max(norm_p(d, n), 1e-300);
    Vec z(c.size());
    for (std::size_t j = 0; j < c.size(); ++j) z[j] = std::clamp(c[j] + d[j] * scale, lo, hi);
    pts.push_back(z);
  }
  return pts;
}

// C = A·B for small row-major matrices.
Vec matmul_rm(const Vec& a, const Vec& b, std::size_t n, std::size_t k, std::size_t m) {
  Vec c(n * m, 0.0);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t l = 0; l < k; ++l)
      for (std::size_t j = 0; j < m; ++j) c[i * m + j] += a[i * k + l] * b[l * m + j];
  return c;
}
Vec transpose_rm(const Vec& a, std::size_t n, std::size_t m) {
  Vec t(n * m);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < m; ++j) t[j * n + i] = a[i * m + j];
  return t;
}
// An n × n orthogonal matrix: a product of Givens rotations with random angles.
Vec orthogonal(std::size_t n, Generator& g) {
  Vec q(n * n, 0.0);
  for (std::size_t i = 0; i < n; ++i) q[i * n + i] = 1.0;
  for (std::size_t p = 0; p < n; ++p)
    for (std::size_t r = p + 1; r < n; ++r) {
      const double th = 6.283185307179586 * g.uniform(), c = std::cos(th), s = std::sin(th);
      for (std::size_t i = 0; i < n; ++i) {
        const double a = q[i * n + p], b = q[i * n + r];
        q[i * n + p] = c * a - s * b;
        q[i * n + r] = s * a + c * b;
      }
    }
  return q;
}
// U[:, :k] diag(s) Vᵀ for orthogonal U (n × n) and V (m × m), k = min(n, m).
Vec compose_svd(const Vec& u, const Vec& s, const Vec& v, std::size_t n, std::size_t m) {
  Vec out(n * m, 0.0);
  for (std::size_t k = 0; k < s.size(); ++k)
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < m; ++j) out[i * m + j] += u[i * n + k] * s[k] * v[j * m + k];
  return out;
}

// True when r² I − PᵀP is positive semidefinite (Cholesky with a relative slack), i.e.
// ‖P‖₂ ≤ r·(1 + slack) — a check independent of any SVD.
bool spectral_norm_at_most(const Vec& p, std::size_t n, std::size_t m, double r, double slack) {
  Vec a = matmul_rm(transpose_rm(p, n, m), p, m, n, m);
  for (double& x : a) x = -x;
  for (std::size_t i = 0; i < m; ++i) a[i * m + i] += r * r * (1 + slack);
  for (std::size_t j = 0; j < m; ++j) {
    double d = a[j * m + j];
    for (std::size_t k = 0; k < j; ++k) d -= a[j * m + k] * a[j * m + k];
    if (d < 0) return false;
    const double l = std::sqrt(d);
    a[j * m + j] = l;
    for (std::size_t i = j + 1; i < m; ++i) {
      double s = a[i * m + j];
      for (std::size_t k = 0; k < j; ++k) s -= a[i * m + k] * a[j * m + k];
      a[i * m + j] = l > 0 ? s / l : 0.0;
    }
  }
  return true;
}

// Largest singular value from below: power iteration on PᵀP (a Rayleigh quotient never exceeds it).
double power_sigma(const Vec& p, std::size_t n, std::size_t m) {
  Vec x(m, 1.0), y;
  double lam = 0;
  for (int it = 0; it < 2000; ++it) {
    y = matmul_rm(transpose_rm(p, n, m), matmul_rm(p, x, n, m, 1), m, n, 1);
    double nx = 0, ny = 0;
    for (std::size_t i = 0; i < m; ++i) {
      nx += x[i] * x[i];
      ny += y[i] * x[i];
    }
    lam = ny / nx;
    double nn = 0;
    for (double v : y) nn += v * v;
    for (std::size_t i = 0; i < m; ++i) x[i] = y[i] / std::sqrt(nn);
  }
  return std::sqrt(lam);
}

}  // namespace

TEST_CASE("box and nonnegative orthant: clamps, in the set, idempotent, float32 and float64") {
  for (Dtype dt : {Dtype::f64, Dtype::f32}) {
    Tensor x = tensor({-2.0, -0.25, 0.0, 0.5, 3.0}, dt);
    Tensor b = project_box(x, -0.5, 1.0);
    CHECK(b.dtype() == dt);
    check_close(b, {-0.5, -0.25, 0.0, 0.5, 1.0}, 0.0);
    check_close(project_box(b, -0.5, 1.0), b.to_vector(), 0.0);
    check_close(project_nonnegative(x), {0.0, 0.0, 0.0, 0.5, 3.0}, 0.0);
    Tensor lo = tensor({0.0, 0.0, -1.0, 1.0, 0.0}, dt), hi = tensor({1.0, 0.0, 1.0, 2.0, 2.5}, dt);
    check_close(project_box(x, lo, hi), {0.0, 0.0, 0.0, 1.0, 2.5}, 0.0);
  }
  CHECK_THROWS_WITH_AS(project_box(tensor({1.0}), 2.0, 1.0), doctest::Contains("project_box: empty range [2, 1]"),
                       ValueError);
  CHECK_THROWS_WITH_AS(project_box(tensor({1.0, 2.0}), tensor({0.0}), tensor({1.0, 1.0})),
                       doctest::Contains("input [2], lower bound [1] and upper bound [2]"), ShapeError);
}

TEST_CASE("l2 ball: radial scaling towards the center; points inside are unchanged") {
  Tensor x = tensor({3.0, 4.0});
  check_close(project_l2_ball(x, 1.0), {0.6, 0.8}, 1e-15);
  check_close(project_l2_ball(x, 10.0), {3.0, 4.0}, 0.0);
  Tensor c = tensor({1.0, 1.0});
  Tensor p = project_l2_ball(x, 1.0, c);  // d = (2, 3), ‖d‖ = √13
  check_close(p, {1.0 + 2.0 / std::sqrt(13.0), 1.0 + 3.0 / std::sqrt(13.0)}, 1e-15);
  check_close(project_l2_ball(p, 1.0, c), p.to_vector(), 1e-15);
  CHECK(norm(p - c).item() <= 1.0 + 1e-15);
  Tensor f = project_l2_ball(tensor({3.0, 4.0}, Dtype::f32), 1.0);
  CHECK(f.dtype() == Dtype::f32);
  check_close(f, {0.6, 0.8}, 1e-7);
  CHECK_THROWS_WITH_AS(project_l2_ball(x, -1.0), doctest::Contains("radius must be >= 0, got -1"), ValueError);
  CHECK_THROWS_WITH_AS(project_l2_ball(x, 1.0, tensor({1.0})), doctest::Contains("the center has shape [1], the input [2]"),
                       ShapeError);
}

TEST_CASE("per-row balls without a range: closed forms per row") {
  Tensor x = tensor({3.0, 4.0, 0.1, 0.2, -2.0, 0.5}, Shape{3, 2});
  // ℓ2: rows scaled to radius 1 when outside.
  check_close(project_rows(x, {.norm = RowNorm::l2, .radius = 1.0, .center = {}}), {0.6, 0.8, 0.1, 0.2, -2.0 / std::sqrt(4.25), 0.5 / std::sqrt(4.25)},
              1e-15);
  // ℓ∞: clamp to [−1, 1].
  check_close(project_rows(x, {.norm = RowNorm::linf, .radius = 1.0, .center = {}}), {1.0, 1.0, 0.1, 0.2, -1.0, 0.5}, 0.0);
  // ℓ1: soft threshold at μ with Σ max(|y_j| − μ, 0) = 1: (3, 4) → μ = 3 → (0, 1);
  // (−2, 0.5) → μ = 1 (0.5 drops out) → (−1, 0); (0.1, 0.2) is inside.
  check_close(project_rows(x, {.norm = RowNorm::l1, .radius = 1.0, .center = {}}), {0.0, 1.0, 0.1, 0.2, -1.0, 0.0}, 1e-15);
  // Rank 1: every element is a row.
  check_close(project_rows(tensor({2.0, -0.5}), {.norm = RowNorm::l2, .radius = 1.0, .center = {}}), {1.0, -0.5}, 0.0);
  CHECK_THROWS_WITH_AS(project_rows(scalar(1.0), {}), doctest::Contains("needs rows (rank >= 1), got shape []"), ShapeError);
}

TEST_CASE("per-row l2 ball ∩ box: exact KKT solution, not a composition") {
  // c = (0.5, 0.5), pixels [0, 1], ε = 0.65, y = (2, 1.5): d = (1.5, 1), the first
  // coordinate saturates at 1 (θ = 1/3), then the second moves alone: x₂ = 0.5 + √(ε² − 0.25).
  const double eps = 0.65;
  Tensor y = tensor({2.0, 1.5}, Shape{1, 2}), c = tensor({0.5, 0.5}, Shape{1, 2});
  RowBall ball{.norm = RowNorm::l2, .radius = eps, .center = c, .lo = 0.0, .hi = 1.0};
  Tensor p = project_rows(y, ball);
  check_close(p, {1.0, 0.5 + std::sqrt(eps * eps - 0.25)}, 1e-15);
  // Neither composition gives it.
  const Vec ball_then_box = project_box(project_l2_ball(y, eps, c), 0.0, 1.0).to_vector();
  const Vec box_then_ball = project_l2_ball(project_box(y, 0.0, 1.0), eps, c).to_vector();
  CHECK(max_abs_diff(ball_then_box, p.to_vector()) > 1e-2);
  CHECK(max_abs_diff(box_then_ball, p.to_vector()) > 1e-2);
  // Inside the box only the radial scaling acts: y = (2, 0.5) → (0.5 + 0.3, 0.5) for ε = 0.3.
  check_close(project_rows(tensor({2.0, 0.5}, Shape{1, 2}), {RowNorm::l2, 0.3, c, 0.0, 1.0}), {0.8, 0.5}, 1e-15);
}

TEST_CASE("per-row l2 / l1 / linf balls ∩ [0, 1] on random poisoning budgets") {
  Generator g(7);
  const std::int64_t rows = 6, len = 9;
  Tensor clean = rand({rows, len}, g);         // pixels in [0, 1)
  Tensor y = clean + 0.8 * randn({rows, len}, g);  // an unconstrained attacker step
  for (RowNorm n : {RowNorm::l2, RowNorm::l1, RowNorm::linf}) {
    CAPTURE(row_norm_name(n));
    const double eps = n == RowNorm::l1 ? 1.5 : n == RowNorm::l2 ? 0.6 : 0.2;
    RowBall ball{.norm = n, .radius = eps, .center = clean, .lo = 0.0, .hi = 1.0};
    const Vec p = project_rows(y, ball).to_vector(), yv = y.to_vector(), cv = clean.to_vector();
    CHECK(max_abs_diff(project_rows(tensor(p, y.shape()), ball).to_vector(), p) <= 1e-14);  // idempotent
    for (std::int64_t r = 0; r < rows; ++r) {
      CAPTURE(r);
      const auto o = static_cast<std::ptrdiff_t>(r * len);
      const Vec pr(p.begin() + o, p.begin() + o + len), yr(yv.begin() + o, yv.begin() + o + len),
          cr(cv.begin() + o, cv.begin() + o + len);
      Vec dr(len);
      for (std::int64_t j = 0; j < len; ++j) dr[j] = pr[j] - cr[j];
      CHECK(norm_p(dr, n) <= eps * (1 + 1e-14));  // in the ball
      for (double v : pr) CHECK((v >= 0.0 && v <= 1.0));  // in the range
      if (n != RowNorm::linf) CHECK(max_abs_diff(pr, bisect_row(yr, cr, eps, 0.0, 1.0, n)) <= 1e-12);
      check_variational(yr, pr, feasible_row_points(cr, eps, 0.0, 1.0, n, g), 1e-12);
      if (n == RowNorm::l2 && r < 2) CHECK(max_abs_diff(pr, dykstra_l2_box(yr, cr, eps, 0.0, 1.0)) <= 1e-6);
      if (n == RowNorm::linf)
        for (std::int64_t j = 0; j < len; ++j)
          CHECK(pr[j] == std::clamp(yr[j], std::max(cr[j] - eps, 0.0), std::min(cr[j] + eps, 1.0)));
    }
    // float32 agrees with float64 to float precision.
    RowBall ball32 = ball;
    ball32.center = clean.to(Dtype::f32);
    Tensor p32 = project_rows(y.to(Dtype::f32), ball32);
    CHECK(p32.dtype() == Dtype::f32);
    CHECK(max_abs_diff(p32.to_vector(), p) <= 1e-6);
  }
  RowBall outside{.norm = RowNorm::l2, .radius = 0.1, .center = full({2, 2}, 1.5), .lo = 0.0, .hi = 1.0};
  CHECK_THROWS_WITH_AS(project_rows(zeros({2, 2}), outside),
                       doctest::Contains("center element 0 (row 0) is 1.5, outside the valid range [0, 1]"), ValueError);
}

TEST_CASE("simplex: sort-based projection, exact on examples") {
  check_close(project_simplex(tensor({0.2, 0.3, 0.5})), {0.2, 0.3, 0.5}, 1e-16);
  check_close(project_simplex(tensor({2.0, 0.0, 0.0})), {1.0, 0.0, 0.0}, 0.0);
  check_close(project_simplex(tensor({0.5, 0.5, 0.5})), {1.0 / 3, 1.0 / 3, 1.0 / 3}, 1e-16);
  check_close(project_simplex(tensor({1.0, 0.5, -1.0})), {0.75, 0.25, 0.0}, 1e-16);
  check_close(project_simplex(tensor({1.0, 0.5, -1.0}), 3.0), {1.75, 1.25, 0.0}, 1e-15);  // total 3: τ = −0.75
  Generator g(3);
  for (Dtype dt : {Dtype::f64, Dtype::f32}) {
    Tensor y = randn({4, 5}, g, dt);
    Tensor p = project_simplex(y);
    CHECK(p.dtype() == dt);
    CHECK(p.shape() == y.shape());
    const Vec pv = p.to_vector();
    const double tol = dt == Dtype::f64 ? 1e-14 : 1e-6;
    CHECK(std::abs(std::accumulate(pv.begin(), pv.end(), 0.0) - 1.0) <= tol);
    for (double v : pv) CHECK(v >= 0.0);
    CHECK(max_abs_diff(project_simplex(p).to_vector(), pv) <= tol);
    std::vector<Vec> pts;  // random points of the simplex
    for (int k = 0; k < 50; ++k) {
      Vec z(20);
      for (double& v : z) v = -std::log(1.0 - g.uniform());
      const double s = std::accumulate(z.begin(), z.end(), 0.0);
      for (double& v : z) v /= s;
      pts.push_back(z);
    }
    check_variational(y.to_vector(), pv, pts, tol);
  }
  CHECK_THROWS_WITH_AS(project_simplex(tensor({1.0}), 0.0), doctest::Contains("the total must be positive"), ValueError);
}

TEST_CASE("spectral-norm ball: diagonal and orthogonally-composed closed forms") {
  Tensor d = tensor({3.0, 0, 0, 0, 0.5, 0, 0, 0, 2.0}, Shape{3, 3});
  check_close(project_spectral_ball(d, 1.0), {1.0, 0, 0, 0, 0.5, 0, 0, 0, 1.0}, 1e-15);
  const Vec sv = singular_values(d);
  CHECK(max_abs_diff(sv, {3.0, 2.0, 0.5}) <= 1e-15);

  Generator g(11);
  for (auto [n, m] : {std::pair<std::size_t, std::size_t>{5, 3}, {3, 5}, {4, 4}}) {
    CAPTURE(n);
    CAPTURE(m);
    const Vec u = orthogonal(n, g), v = orthogonal(m, g);
    const Vec s = {5.0, 2.0, 0.3, 0.1};  // the first min(n, m) are used
    const Vec w = compose_svd(u, Vec(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(std::min(n, m))), v, n, m);
    Tensor wt = tensor(w, Shape{static_cast<std::int64_t>(n), static_cast<std::int64_t>(m)});
    const Vec clipped = {1.0, 1.0, 0.3, 0.1};
    const Vec expect = compose_svd(u, Vec(clipped.begin(), clipped.begin() + static_cast<std::ptrdiff_t>(std::min(n, m))), v, n, m);
    Tensor p = project_spectral_ball(wt, 1.0);
    CHECK(max_abs_diff(p.to_vector(), expect) <= 1e-13);
    CHECK(max_abs_diff(project_spectral_ball(p, 1.0).to_vector(), p.to_vector()) <= 1e-13);
    CHECK(spectral_norm_at_most(p.to_vector(), n, m, 1.0, 1e-10));
  }
}

TEST_CASE("spectral-norm ball on random matrices: norm ≤ radius, top value at the radius, unchanged inside") {
  Generator g(5);
  for (auto [n, m] : {std::pair<std::int64_t, std::int64_t>{6, 4}, {4, 7}, {8, 8}}) {
    CAPTURE(n);
    CAPTURE(m);
    Tensor w = 2.0 * randn({n, m}, g);
    const double r = 0.7;
    Tensor p = project_spectral_ball(w, r);
    const auto un = static_cast<std::size_t>(n), um = static_cast<std::size_t>(m);
    CHECK(spectral_norm_at_most(p.to_vector(), un, um, r, 1e-10));
    CHECK(!spectral_norm_at_most(p.to_vector(), un, um, r, -1e-8));  // and not below it
    CHECK(power_sigma(p.to_vector(), un, um) >= r * (1 - 1e-8));
    CHECK(max_abs_diff(project_spectral_ball(p, r).to_vector(), p.to_vector()) <= 1e-13);
    // Singular values below the radius are kept: P(W) − W lives in the clipped directions,
    // so ‖P(W)‖_F² = Σ min(σ, r)².
    double expect = 0;
    for (double s : singular_values(w)) expect += std::pow(std::min(s, r), 2);
    CHECK(squared_norm(p).item() == doctest::Approx(expect).epsilon(1e-12));
    Tensor inside = w * (0.5 * r / singular_values(w)[0]);
    CHECK(max_abs_diff(project_spectral_ball(inside, r).to_vector(), inside.to_vector()) == 0.0);
    Tensor p32 = project_spectral_ball(w.to(Dtype::f32), r);
    CHECK(p32.dtype() == Dtype::f32);
    CHECK(max_abs_diff(p32.to_vector(), p.to_vector()) <= 1e-5);
  }
  CHECK_THROWS_WITH_AS(project_spectral_ball(tensor({1.0, 2.0}), 1.0),
                       doctest::Contains("project_spectral_ball: expects a matrix (rank 2), got shape [2]"), ShapeError);
}

TEST_CASE("Projection values: names, identity, no recording, shape check") {
  Tensor x = tensor({-1.0, 2.0}).requires_grad_();
  Projection id;
  CHECK(id.is_identity());
  CHECK(id.name() == "none");
  Tensor same = id(x);
  CHECK(!same.requires_grad());
  CHECK(!same.shares_storage(x));
  Projection b = Projection::box(0.0, 1.0);
  CHECK(b.name() == "box [0, 1]");
  Tensor y = b(x);
  CHECK(!y.requires_grad());
  check_close(y, {0.0, 1.0}, 0.0);
  CHECK(Projection::simplex().name() == "simplex (sum 1)");
  CHECK(Projection::spectral_ball(0.9).name() == "spectral ball (radius 0.9)");
  CHECK(Projection::rows({.norm = RowNorm::l1, .radius = 2.0, .center = {}, .lo = 0.0, .hi = 1.0}).name() ==
        "row l1 ball (radius 2) in [0, 1]");
  Projection bad("bad", [](const Tensor&) { return zeros({3}); });
  CHECK_THROWS_WITH_AS(bad(x), doctest::Contains("Projection 'bad': returned [3] for an input of shape [2]"), ShapeError);
  CHECK_THROWS_WITH_AS(Projection::box(1.0, 0.0), doctest::Contains("Projection::box: empty range"), ValueError);
}
