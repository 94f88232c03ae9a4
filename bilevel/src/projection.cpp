#include "hyperad/bilevel/projection.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include <fmt/format.h>

#include "hyperad/autodiff/errors.hpp"
#include "hyperad/autodiff/tape.hpp"

namespace hyperad::bilevel {

namespace {

using Vec = std::vector<double>;

void require_tensor(const Tensor& x, const char* who, const char* role = "input") {
  if (!x.defined()) throw ValueError(fmt::format("{}: the {} is undefined", who, role));
}
void require_radius(double r, const char* who) {
  if (!(r >= 0.0)) throw ValueError(fmt::format("{}: the radius must be >= 0, got {}", who, r));
}
void require_range(double lo, double hi, const char* who) {
  if (!(lo <= hi)) throw ValueError(fmt::format("{}: empty range [{}, {}] (need lo <= hi)", who, lo, hi));
}
// The values of `center` (x's shape), or zeros when it is undefined.
Vec center_values(const Tensor& center, const Tensor& x, const char* who) {
  if (!center.defined()) return Vec(static_cast<std::size_t>(x.numel()), 0.0);
  if (center.shape() != x.shape())
    throw ShapeError(fmt::format("{}: the center has shape {}, the input {}", who, center.shape().str(), x.shape().str()));
  return center.to_vector();
}
Tensor like(const Vec& v, const Tensor& x) { return tensor(v, x.shape(), x.dtype()); }

// ---- one row d = y − c of a ball ∩ box; room[j] = how far x_j may move from c_j in d_j's
// direction (hi − c_j or c_j − lo, possibly infinite). Returns the displacement x − c.

Vec row_linf(const Vec& d, const Vec& up, const Vec& down, double eps) {
  Vec out(d.size());
  for (std::size_t j = 0; j < d.size(); ++j) out[j] = std::clamp(d[j], -std::min(down[j], eps), std::min(up[j], eps));
  return out;
}

Vec row_l2(const Vec& d, const Vec& room, double eps) {
  const std::size_t n = d.size();
  Vec out(n);
  auto at = [&](double theta) {
    for (std::size_t j = 0; j < n; ++j) out[j] = std::copysign(std::min(theta * std::abs(d[j]), room[j]), d[j]);
  };
  double clipped = 0.0;  // ‖x(1) − c‖²: the box alone
  for (std::size_t j = 0; j < n; ++j) clipped += std::pow(std::min(std::abs(d[j]), room[j]), 2);
  if (clipped <= eps * eps) {
    at(1.0);
    return out;
  }
  // Coordinate j saturates at θ_j = room_j / |d_j|; below it contributes θ² d_j², above room_j².
  std::vector<std::size_t> order;
  for (std::size_t j = 0; j < n; ++j)
    if (d[j] != 0.0) order.push_back(j);
  auto tau = [&](std::size_t j) { return room[j] / std::abs(d[j]); };
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return tau(a) < tau(b); });
  Vec tail(order.size() + 1, 0.0);  // Σ d² over the not-yet-saturated suffix (no cancellation)
  for (std::size_t k = order.size(); k-- > 0;) tail[k] = tail[k + 1] + d[order[k]] * d[order[k]];
  double c = 0.0;
  std::size_t k = 0;
  for (; k < order.size(); ++k) {
    const double t = tau(order[k]);
    if (t >= 1.0 || c + t * t * tail[k] >= eps * eps) break;
    c += room[order[k]] * room[order[k]];
  }
  at(tail[k] > 0.0 ? std::min(1.0, std::sqrt(std::max(eps * eps - c, 0.0) / tail[k])) : 1.0);
  return out;
}

Vec row_l1(const Vec& d, const Vec& room, double eps) {
  const std::size_t n = d.size();
  Vec out(n);
  auto at = [&](double mu) {
    for (std::size_t j = 0; j < n; ++j)
      out[j] = std::copysign(std::min(std::max(std::abs(d[j]) - mu, 0.0), room[j]), d[j]);
  };
  double clipped = 0.0;
  for (std::size_t j = 0; j < n; ++j) clipped += std::min(std::abs(d[j]), room[j]);
  if (clipped <= eps) {
    at(0.0);
    return out;
  }
  // ψ(μ) = Σ clamp(|d_j| − μ, 0, room_j): slope −1 per coordinate on [|d_j| − room_j, |d_j|].
  // Sweep μ downward through the breakpoints until ψ reaches eps.
  struct Event {
    double at;
    int delta;
  };
  std::vector<Event> events;
  for (std::size_t j = 0; j < n; ++j) {
    if (d[j] == 0.0 || room[j] == 0.0) continue;
    events.push_back({std::abs(d[j]), +1});
    events.push_back({std::abs(d[j]) - room[j], -1});
  }
  std::sort(events.begin(), events.end(), [](const Event& a, const Event& b) { return a.at > b.at; });
  double mu = events.empty() ? 0.0 : events.front().at, value = 0.0, found = 0.0;
  int slope = 0;
  for (const Event& e : events) {
    const double next = slope == 0 ? value : value + slope * (mu - e.at);
    if (slope > 0 && next >= eps) {
      found = mu - (eps - value) / slope;
      break;
    }
    value = next;
    mu = e.at;
    slope += e.delta;
  }
  at(std::max(found, 0.0));
  return out;
}

// ---- one-sided Jacobi SVD of the columns `a` (each of length m): on return the columns
// are orthogonal (a = U Σ) and v holds the accumulated rotations (W V = a).
void one_sided_jacobi(std::vector<Vec>& a, std::vector<Vec>& v) {
  const std::size_t n = a.size();
  v.assign(n, Vec(n, 0.0));
  for (std::size_t j = 0; j < n; ++j) v[j][j] = 1.0;
  auto dot = [](const Vec& x, const Vec& y) {
    double s = 0.0;
    for (std::size_t i = 0; i < x.size(); ++i) s += x[i] * y[i];
    return s;
  };
  auto rotate = [](Vec& x, Vec& y, double c, double s) {
    for (std::size_t i = 0; i < x.size(); ++i) {
      const double xi = x[i], yi = y[i];
      x[i] = c * xi - s * yi;
      y[i] = s * xi + c * yi;
    }
  };
  for (int sweep = 0; sweep < 80; ++sweep) {
    bool rotated = false;
    for (std::size_t p = 0; p + 1 < n; ++p)
      for (std::size_t q = p + 1; q < n; ++q) {
        const double alpha = dot(a[p], a[p]), beta = dot(a[q], a[q]), gamma = dot(a[p], a[q]);
        if (gamma == 0.0 || std::abs(gamma) <= 1e-15 * std::sqrt(alpha * beta)) continue;
        rotated = true;
        // The rotation that zeroes the (p, q) entry of aᵀa (Jacobi on WᵀW).
        const double zeta = (beta - alpha) / (2.0 * gamma);
        const double t = std::abs(zeta) > 1e150 ? 0.5 / zeta
                                                : std::copysign(1.0, zeta) / (std::abs(zeta) + std::hypot(1.0, zeta));
        const double c = 1.0 / std::hypot(1.0, t), s = c * t;
        rotate(a[p], a[q], c, s);
        rotate(v[p], v[q], c, s);
      }
    if (!rotated) return;
  }
}

// The columns to orthogonalize: those of W (m × n) if n ≤ m, else those of Wᵀ.
std::vector<Vec> jacobi_columns(const Tensor& w, bool& transposed) {
  const auto m = static_cast<std::size_t>(w.size(0)), n = static_cast<std::size_t>(w.size(1));
  const Vec x = w.to_vector();
  transposed = n > m;
  const std::size_t cols = transposed ? m : n, len = transposed ? n : m;
  std::vector<Vec> a(cols, Vec(len));
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < n; ++j) (transposed ? a[i][j] : a[j][i]) = x[i * n + j];
  return a;
}

void require_matrix(const Tensor& w, const char* who) {
  require_tensor(w, who);
  if (w.rank() != 2) throw ShapeError(fmt::format("{}: expects a matrix (rank 2), got shape {}", who, w.shape().str()));
}

}  // namespace

// ---- free functions ------------------------------------------------------------------------

Tensor project_box(const Tensor& x, double lo, double hi) {
  require_tensor(x, "project_box");
  require_range(lo, hi, "project_box");
  Vec v = x.to_vector();
  for (double& e : v) e = std::clamp(e, lo, hi);
  return like(v, x);
}

Tensor project_box(const Tensor& x, const Tensor& lo, const Tensor& hi) {
  require_tensor(x, "project_box");
  require_tensor(lo, "project_box", "lower bound");
  require_tensor(hi, "project_box", "upper bound");
  if (lo.shape() != x.shape() || hi.shape() != x.shape())
    throw ShapeError(fmt::format("project_box: input {}, lower bound {} and upper bound {} must have the same shape",
                                 x.shape().str(), lo.shape().str(), hi.shape().str()));
  Vec v = x.to_vector();
  const Vec l = lo.to_vector(), h = hi.to_vector();
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (!(l[i] <= h[i]))
      throw ValueError(fmt::format("project_box: empty range [{}, {}] at element {}", l[i], h[i], i));
    v[i] = std::clamp(v[i], l[i], h[i]);
  }
  return like(v, x);
}

Tensor project_nonnegative(const Tensor& x) { return project_box(x, 0.0, std::numeric_limits<double>::infinity()); }

Tensor project_l2_ball(const Tensor& x, double radius, const Tensor& center) {
  require_tensor(x, "project_l2_ball");
  require_radius(radius, "project_l2_ball");
  Vec v = x.to_vector();
  const Vec c = center_values(center, x, "project_l2_ball");
  double n2 = 0.0;
  for (std::size_t i = 0; i < v.size(); ++i) n2 += (v[i] - c[i]) * (v[i] - c[i]);
  const double norm = std::sqrt(n2);
  if (norm > radius)
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = c[i] + (v[i] - c[i]) * (radius / norm);
  return like(v, x);
}

const char* row_norm_name(RowNorm n) {
  switch (n) {
    case RowNorm::l1: return "l1";
    case RowNorm::l2: return "l2";
    case RowNorm::linf: return "linf";
  }
  return "?";
}

Tensor project_rows(const Tensor& x, const RowBall& ball) {
  require_tensor(x, "project_rows");
  if (x.rank() < 1) throw ShapeError(fmt::format("project_rows: needs rows (rank >= 1), got shape {}", x.shape().str()));
  require_radius(ball.radius, "project_rows");
  require_range(ball.lo, ball.hi, "project_rows");
  Vec v = x.to_vector();
  const Vec c = center_values(ball.center, x, "project_rows");
  const auto rows = static_cast<std::size_t>(x.size(0));
  const std::size_t len = rows == 0 ? 0 : v.size() / rows;
  for (std::size_t i = 0; i < c.size(); ++i)
    if (!(c[i] >= ball.lo && c[i] <= ball.hi))
      throw ValueError(fmt::format("project_rows: center element {} (row {}) is {}, outside the valid range [{}, {}]; "
                                   "the ball around it may not meet the range",
                                   i, i / std::max<std::size_t>(len, 1), c[i], ball.lo, ball.hi));
  Vec d(len), up(len), down(len), room(len);
  for (std::size_t r = 0; r < rows; ++r) {
    const std::size_t o = r * len;
    for (std::size_t j = 0; j < len; ++j) {
      d[j] = v[o + j] - c[o + j];
      up[j] = ball.hi - c[o + j];
      down[j] = c[o + j] - ball.lo;
      room[j] = d[j] >= 0.0 ? up[j] : down[j];
    }
    Vec delta;
    switch (ball.norm) {
      case RowNorm::linf: delta = row_linf(d, up, down, ball.radius); break;
      case RowNorm::l2: delta = row_l2(d, room, ball.radius); break;
      case RowNorm::l1: delta = row_l1(d, room, ball.radius); break;
    }
    // c + δ can leave [lo, hi] by one rounding when δ is at its bound: clamp that away.
    for (std::size_t j = 0; j < len; ++j) v[o + j] = std::clamp(c[o + j] + delta[j], ball.lo, ball.hi);
  }
  return like(v, x);
}

Tensor project_simplex(const Tensor& x, double total) {
  require_tensor(x, "project_simplex");
  if (!(total > 0.0) || !std::isfinite(total))
    throw ValueError(fmt::format("project_simplex: the total must be positive and finite, got {}", total));
  if (x.numel() == 0) throw ShapeError(fmt::format("project_simplex: empty input of shape {}", x.shape().str()));
  Vec v = x.to_vector();
  Vec u = v;
  std::sort(u.begin(), u.end(), std::greater<>());
  // τ from the largest ρ with u_ρ > (Σ_{i≤ρ} u_i − total) / ρ; x = max(y − τ, 0).
  double sum = 0.0, tau = 0.0;
  for (std::size_t j = 0; j < u.size(); ++j) {
    sum += u[j];
    const double t = (sum - total) / static_cast<double>(j + 1);
    if (u[j] > t) tau = t;
  }
  for (double& e : v) e = std::max(e - tau, 0.0);
  return like(v, x);
}

std::vector<double> singular_values(const Tensor& w) {
  require_matrix(w, "singular_values");
  bool transposed = false;
  std::vector<Vec> a = jacobi_columns(w, transposed), v;
  one_sided_jacobi(a, v);
  Vec s;
  for (const Vec& col : a) s.push_back(std::sqrt(std::inner_product(col.begin(), col.end(), col.begin(), 0.0)));
  std::sort(s.begin(), s.end(), std::greater<>());
  return s;
}

Tensor project_spectral_ball(const Tensor& w, double radius) {
  require_matrix(w, "project_spectral_ball");
  require_radius(radius, "project_spectral_ball");
  bool transposed = false;
  std::vector<Vec> a = jacobi_columns(w, transposed), v;
  one_sided_jacobi(a, v);
  // P = Σ_k min(1, r/σ_k) a_k v_kᵀ, with a_k = σ_k u_k.
  Vec f(a.size(), 1.0);
  bool inside = true;
  for (std::size_t k = 0; k < a.size(); ++k) {
    const double sigma = std::sqrt(std::inner_product(a[k].begin(), a[k].end(), a[k].begin(), 0.0));
    if (sigma > radius) {
      f[k] = radius / sigma;
      inside = false;
    }
  }
  if (inside) return like(w.to_vector(), w);
  const auto m = static_cast<std::size_t>(w.size(0)), n = static_cast<std::size_t>(w.size(1));
  Vec out(m * n, 0.0);
  const std::size_t len = a.empty() ? 0 : a[0].size();
  // Worked matrix M (len × cols) = P(W) or P(Wᵀ): M[i][j] = Σ_k a_k[i] f_k v_k[j].
  for (std::size_t k = 0; k < a.size(); ++k)
    for (std::size_t i = 0; i < len; ++i) {
      const double aik = a[k][i] * f[k];
      for (std::size_t j = 0; j < a.size(); ++j) (transposed ? out[j * n + i] : out[i * n + j]) += aik * v[k][j];
    }
  return like(out, w);
}

// ---- Projection values ------------------------------------------------------------------------

Tensor Projection::operator()(const Tensor& x) const {
  require_tensor(x, "Projection");
  NoGradGuard off;
  if (!fn_) return x.detach().clone();
  Tensor y = fn_(x.detach());
  if (!y.defined() || y.shape() != x.shape())
    throw ShapeError(fmt::format("Projection '{}': returned {} for an input of shape {}", name_,
                                 y.defined() ? y.shape().str() : "undefined", x.shape().str()));
  return y.detach();
}

Projection Projection::box(double lo, double hi) {
  require_range(lo, hi, "Projection::box");
  return {fmt::format("box [{}, {}]", lo, hi), [lo, hi](const Tensor& x) { return project_box(x, lo, hi); }};
}
Projection Projection::nonnegative() { return {"nonnegative", [](const Tensor& x) { return project_nonnegative(x); }}; }
Projection Projection::l2_ball(double radius, Tensor center) {
  require_radius(radius, "Projection::l2_ball");
  return {fmt::format("l2 ball (radius {})", radius),
          [radius, center](const Tensor& x) { return project_l2_ball(x, radius, center); }};
}
Projection Projection::rows(RowBall ball) {
  require_radius(ball.radius, "Projection::rows");
  require_range(ball.lo, ball.hi, "Projection::rows");
  return {fmt::format("row {} ball (radius {}) in [{}, {}]", row_norm_name(ball.norm), ball.radius, ball.lo, ball.hi),
          [ball](const Tensor& x) { return project_rows(x, ball); }};
}
Projection Projection::simplex(double total) {
  return {fmt::format("simplex (sum {})", total), [total](const Tensor& x) { return project_simplex(x, total); }};
}
Projection Projection::spectral_ball(double radius) {
  require_radius(radius, "Projection::spectral_ball");
  return {fmt::format("spectral ball (radius {})", radius),
          [radius](const Tensor& x) { return project_spectral_ball(x, radius); }};
}

}  // namespace hyperad::bilevel
