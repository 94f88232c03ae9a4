// Matrix-free Richardson / CG / GMRES over tuples of tensors (see linsolve.hpp).
#include "hyperad/autodiff/linsolve.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "hyperad/autodiff/errors.hpp"

namespace hyperad::linsolve {

namespace {
void check_pair(const Vec& a, const Vec& b, const char* op) {
  if (a.size() != b.size())
    throw ShapeError(fmt::format("{}: tuples of {} and {} tensors", op, a.size(), b.size()));
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!a[i].defined() || !b[i].defined())
      throw ValueError(fmt::format("{}: tensor {} of a tuple is undefined", op, i));
    if (a[i].shape() != b[i].shape())
      throw ShapeError(fmt::format("{}: tensor {} has shape {} in the first tuple and {} in the second", op, i,
                                   a[i].shape().str(), b[i].shape().str()));
  }
}

// A x, checked against the shapes of x (a callback returning the wrong tuple is a bug
// in the caller's operator; say so rather than fail later in a dot product).
Vec apply(const LinearOp& A, const Vec& x, const char* solver, int& matvecs) {
  Vec y = A(x);
  ++matvecs;
  if (y.size() != x.size())
    throw ShapeError(fmt::format("linsolve::{}: the operator returned {} tensors for a vector of {}", solver,
                                 y.size(), x.size()));
  for (std::size_t i = 0; i < x.size(); ++i)
    if (!y[i].defined() || y[i].shape() != x[i].shape())
      throw ShapeError(fmt::format("linsolve::{}: the operator returned shape {} for tensor {} of shape {}", solver,
                                   y[i].defined() ? y[i].shape().str() : std::string("(undefined)"), i,
                                   x[i].shape().str()));
  return y;
}

// b − A x as a fresh tuple.
Vec residual_of(const LinearOp& A, const Vec& b, const Vec& x, const char* solver, int& matvecs) {
  Vec r = clone(b);
  axpy(-1.0, apply(A, x, solver, matvecs), r);
  return r;
}

struct Start {
  Vec x, r;
};
// x0 (or zeros) and its residual; zeros need no operator application.
Start start(const LinearOp& A, const Vec& b, const Vec& x0, const char* solver, int& matvecs) {
  if (b.empty()) throw ValueError(fmt::format("linsolve::{}: empty right-hand side", solver));
  for (std::size_t i = 0; i < b.size(); ++i)
    if (!b[i].defined()) throw ValueError(fmt::format("linsolve::{}: right-hand side tensor {} is undefined", solver, i));
  if (x0.empty()) return {zeros_like(b), clone(b)};
  check_pair(x0, b, "linsolve: initial guess vs right-hand side");
  Vec x = clone(x0);
  Vec r = residual_of(A, b, x, solver, matvecs);
  return {std::move(x), std::move(r)};
}

// The relative accuracy of the vectors' arithmetic: float32's epsilon if any tensor is
// float32, else float64's.
double working_epsilon(const Vec& v) {
  for (const Tensor& t : v)
    if (t.dtype() == Dtype::f32) return std::numeric_limits<float>::epsilon();
  return std::numeric_limits<double>::epsilon();
}

void check_options(const Options& o, const char* solver) {
  if (!(o.rtol >= 0) || !(o.atol >= 0) || o.max_iter < 0)
    throw ValueError(fmt::format("linsolve::{}: tolerances and max_iter must be >= 0 (rtol {}, atol {}, max_iter {})",
                                 solver, o.rtol, o.atol, o.max_iter));
}
}  // namespace

// ---- vector helpers -----------------------------------------------------------------------

double dot(const Vec& a, const Vec& b) {
  check_pair(a, b, "linsolve::dot");
  double s = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i)
    dispatch(a[i].dtype(), [&]<class T>() {
      dispatch(b[i].dtype(), [&]<class U>() {
        const T* p = a[i].data<T>();
        const U* q = b[i].data<U>();
        for (std::int64_t k = 0, n = a[i].numel(); k < n; ++k) s += double(p[k]) * double(q[k]);
      });
    });
  return s;
}

double norm(const Vec& a) { return std::sqrt(dot(a, a)); }

void axpy(double alpha, const Vec& x, Vec& y) {
  check_pair(x, y, "linsolve::axpy");
  for (std::size_t i = 0; i < x.size(); ++i)
    dispatch(y[i].dtype(), [&]<class T>() {
      dispatch(x[i].dtype(), [&]<class U>() {
        T* q = y[i].mutable_data<T>();
        const U* p = x[i].data<U>();
        for (std::int64_t k = 0, n = x[i].numel(); k < n; ++k) q[k] = T(double(q[k]) + alpha * double(p[k]));
      });
    });
}

void scale(Vec& x, double alpha) {
  for (Tensor& t : x)
    dispatch(t.dtype(), [&]<class T>() {
      T* q = t.mutable_data<T>();
      for (std::int64_t k = 0, n = t.numel(); k < n; ++k) q[k] = T(alpha * double(q[k]));
    });
}

Vec clone(const Vec& x) {
  Vec out;
  out.reserve(x.size());
  for (const Tensor& t : x) out.push_back(t.detach().clone());
  return out;
}

Vec zeros_like(const Vec& x) {
  Vec out;
  out.reserve(x.size());
  for (const Tensor& t : x) out.push_back(hyperad::zeros_like(t));
  return out;
}

bool all_finite(const Vec& x) {
  for (const Tensor& t : x) {
    bool ok = dispatch(t.dtype(), [&]<class T>() {
      const T* p = t.data<T>();
      for (std::int64_t k = 0, n = t.numel(); k < n; ++k)
        if (!std::isfinite(p[k])) return false;
      return true;
    });
    if (!ok) return false;
  }
  return true;
}

const char* method_name(Method m) {
  switch (m) {
    case Method::fixed_point: return "fixed_point";
    case Method::cg: return "cg";
    case Method::gmres: return "gmres";
  }
  return "?";
}

// ---- Richardson -----------------------------------------------------------------------------

Result richardson(const LinearOp& A, const Vec& b, const Vec& x0, const Options& o) {
  check_options(o, "fixed_point");
  Result res;
  Start s = start(A, b, x0, "fixed_point", res.matvecs);
  res.tolerance = std::max(o.atol, o.rtol * norm(b));
  Vec x = std::move(s.x), r = std::move(s.r);
  double rn = norm(r), best = rn;
  for (;;) {
    if (rn <= res.tolerance) {
      res.converged = true;
      res.reason = fmt::format("converged: residual {:.3e} <= tolerance {:.3e} after {} iterations", rn,
                               res.tolerance, res.iterations);
      break;
    }
    if (!std::isfinite(rn) || rn > o.divergence_factor * best) {
      res.diverged = true;
      res.reason = fmt::format("diverged: residual {:.3e} at iteration {} after a smallest residual of {:.3e} "
                               "(is the spectral radius of I - omega*A below 1?)",
                               rn, res.iterations, best);
      break;
    }
    if (res.iterations >= o.max_iter) {
      res.reason = fmt::format("not converged: residual {:.3e} > tolerance {:.3e} after {} iterations", rn,
                               res.tolerance, res.iterations);
      break;
    }
    axpy(o.omega, r, x);
    ++res.iterations;
    r = residual_of(A, b, x, "fixed_point", res.matvecs);
    rn = norm(r);
    best = std::min(best, rn);
  }
  res.x = std::move(x);
  res.residual = rn;
  return res;
}

// ---- conjugate gradient -----------------------------------------------------------------

Result cg(const LinearOp& A, const Vec& b, const Vec& x0, const Options& o) {
  check_options(o, "cg");
  Result res;
  Start s = start(A, b, x0, "cg", res.matvecs);
  const double bn = norm(b);
  res.tolerance = std::max(o.atol, o.rtol * bn);
  // Below ε‖b‖ the recursive residual is rounding noise: p'Ap and r'r then shrink towards
  // underflow, their ratio is garbage, and iterating on (tolerance 0, large K) can blow x
  // up by 30 orders of magnitude. Nothing is left to gain there, so CG stops.
  const double floor = working_epsilon(b) * bn;
  Vec x = std::move(s.x), r = std::move(s.r);
  Vec p = clone(r);
  double rs = dot(r, r), rn = std::sqrt(rs);
  for (;;) {
    // Checked after every update, so a converged x is returned as is (never one step late).
    if (rn <= res.tolerance) {
      res.converged = true;
      res.reason = fmt::format("converged: residual {:.3e} <= tolerance {:.3e} after {} iterations", rn,
                               res.tolerance, res.iterations);
      break;
    }
    if (rn <= floor) {
      res.converged = true;
      res.reason = fmt::format("converged to machine precision: residual {:.3e} <= eps*|b| = {:.3e} after {} "
                               "iterations (the tolerance {:.3e} is below what the arithmetic resolves)",
                               rn, floor, res.iterations, res.tolerance);
      break;
    }
    if (!std::isfinite(rn)) {
      res.diverged = true;
      res.reason = fmt::format("diverged: non-finite residual at iteration {}", res.iterations);
      break;
    }
    if (res.iterations >= o.max_iter) {
      res.reason = fmt::format("not converged: residual {:.3e} > tolerance {:.3e} after {} iterations", rn,
                               res.tolerance, res.iterations);
      break;
    }
    Vec Ap = apply(A, p, "cg", res.matvecs);
    double pAp = dot(p, Ap);
    if (!(pAp > 0.0)) {  // also catches NaN; rs > 0 here, so p != 0
      res.reason = fmt::format("breakdown: p'Ap = {:.3e} <= 0 at iteration {}; the operator is not positive "
                               "definite (CG needs a symmetric positive definite operator; use gmres)",
                               pAp, res.iterations);
      res.diverged = !std::isfinite(pAp);
      break;
    }
    double alpha = rs / pAp;
    axpy(alpha, p, x);
    axpy(-alpha, Ap, r);
    ++res.iterations;
    double rs_new = dot(r, r);
    rn = std::sqrt(rs_new);
    if (rn <= std::max(res.tolerance, floor) || !std::isfinite(rn)) continue;  // reported at the loop head
    scale(p, rs_new / rs);  // rs > tolerance² >= 0 from the previous check: no 0/0
    axpy(1.0, r, p);
    rs = rs_new;
  }
  res.x = std::move(x);
  res.residual = rn;
  return res;
}

// ---- restarted GMRES --------------------------------------------------------------------

Result gmres(const LinearOp& A, const Vec& b, const Vec& x0, const Options& o) {
  check_options(o, "gmres");
  if (o.restart < 1) throw ValueError(fmt::format("linsolve::gmres: restart must be >= 1, got {}", o.restart));
  Result res;
  Start s = start(A, b, x0, "gmres", res.matvecs);
  res.tolerance = std::max(o.atol, o.rtol * norm(b));
  Vec x = std::move(s.x), r = std::move(s.r);
  double rn = norm(r);
  const int m = o.restart;
  for (;;) {
    if (rn <= res.tolerance) {
      res.converged = true;
      res.reason = fmt::format("converged: residual {:.3e} <= tolerance {:.3e} after {} iterations", rn,
                               res.tolerance, res.iterations);
      break;
    }
    if (!std::isfinite(rn)) {
      res.diverged = true;
      res.reason = fmt::format("diverged: non-finite residual at iteration {}", res.iterations);
      break;
    }
    if (res.iterations >= o.max_iter) {
      res.reason = fmt::format("not converged: residual {:.3e} > tolerance {:.3e} after {} iterations", rn,
                               res.tolerance, res.iterations);
      break;
    }
    // One cycle: Arnoldi basis V, Hessenberg H (column-major, (m+1) × m) reduced to upper
    // triangular by Givens rotations (cs, sn); g is the rotated β e₁.
    std::vector<Vec> V;
    V.push_back(r);
    scale(V[0], 1.0 / rn);  // rn > tolerance >= 0
    std::vector<double> H(static_cast<std::size_t>((m + 1) * m), 0.0), cs(m, 1.0), sn(m, 0.0), g(m + 1, 0.0);
    auto h = [&](int i, int j) -> double& { return H[static_cast<std::size_t>(j * (m + 1) + i)]; };
    g[0] = rn;
    int k = 0;  // columns built
    while (k < m && res.iterations < o.max_iter) {
      const int j = k;
      Vec w = apply(A, V[j], "gmres", res.matvecs);
      for (int i = 0; i <= j; ++i) {  // modified Gram–Schmidt
        h(i, j) = dot(w, V[i]);
        axpy(-h(i, j), V[i], w);
      }
      const double hn = norm(w);
      h(j + 1, j) = hn;
      for (int i = 0; i < j; ++i) {  // previous rotations on the new column
        double a = h(i, j), c = h(i + 1, j);
        h(i, j) = cs[i] * a + sn[i] * c;
        h(i + 1, j) = -sn[i] * a + cs[i] * c;
      }
      const double a = h(j, j), c = h(j + 1, j), d = std::hypot(a, c);
      cs[j] = d == 0.0 ? 1.0 : a / d;
      sn[j] = d == 0.0 ? 0.0 : c / d;
      h(j, j) = d;
      h(j + 1, j) = 0.0;
      g[j + 1] = -sn[j] * g[j];
      g[j] = cs[j] * g[j];
      ++k;
      ++res.iterations;
      const double est = std::abs(g[j + 1]);
      if (est <= res.tolerance || hn == 0.0 || !std::isfinite(est)) break;  // hn == 0: exact (happy) breakdown
      scale(w, 1.0 / hn);
      V.push_back(std::move(w));
    }
    // Back substitution H[0:k,0:k] y = g[0:k]; a zero pivot (singular A restricted to the
    // Krylov space) contributes nothing instead of dividing by zero.
    std::vector<double> y(k, 0.0);
    for (int i = k - 1; i >= 0; --i) {
      double acc = g[i];
      for (int l = i + 1; l < k; ++l) acc -= h(i, l) * y[l];
      y[i] = h(i, i) != 0.0 ? acc / h(i, i) : 0.0;
    }
    for (int i = 0; i < k; ++i) axpy(y[i], V[i], x);
    r = residual_of(A, b, x, "gmres", res.matvecs);
    rn = norm(r);
  }
  res.x = std::move(x);
  res.residual = rn;
  return res;
}

Result solve(Method method, const LinearOp& A, const Vec& b, const Vec& x0, const Options& opts) {
  switch (method) {
    case Method::cg: return cg(A, b, x0, opts);
    case Method::gmres: return gmres(A, b, x0, opts);
    case Method::fixed_point: break;
  }
  return richardson(A, b, x0, opts);
}

}  // namespace hyperad::linsolve
