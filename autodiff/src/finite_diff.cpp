#include "hyperad/autodiff/finite_diff.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "hyperad/autodiff/grad.hpp"
#include "hyperad/autodiff/ops/elementwise.hpp"
#include "hyperad/autodiff/ops/reduce.hpp"

namespace hyperad {

namespace {

TensorList leaves_of(const TensorList& xs, const std::vector<bool>& wrt) {
  TensorList out;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    Tensor l = xs[i].detach();
    if (wrt[i]) l.requires_grad_();
    out.push_back(std::move(l));
  }
  return out;
}

// fn at xs as float64 values (recorded in a scope that is rewound).
std::vector<double> values_at(const TensorFn& fn, const TensorList& xs) {
  TapeScope scope;
  return fn(xs).to_vector();
}

// xs with inputs[k] element j moved by delta (a fresh copy; the caller's data is untouched).
TensorList moved(const TensorList& xs, std::size_t k, std::int64_t j, double delta) {
  TensorList out = xs;
  Tensor c;
  {
    NoGradGuard off;
    c = xs[k].detach().clone();
  }
  dispatch(c.dtype(), [&]<class T>() { c.mutable_data<T>()[j] += static_cast<T>(delta); });
  out[k] = c;
  return out;
}

// xs moved along directions u (for the inputs in wrt) by `scale`.
TensorList moved_along(const TensorList& xs, const TensorList& u,
                                const std::vector<bool>& wrt, double scale) {
  NoGradGuard off;
  TensorList out;
  for (std::size_t i = 0; i < xs.size(); ++i)
    out.push_back(wrt[i] ? add(xs[i].detach(), mul_scalar(u[i], scale)) : xs[i].detach());
  return out;
}

std::vector<bool> wrt_mask(const CheckOptions& o, std::size_t n) {
  if (o.wrt.empty()) return std::vector<bool>(n, true);
  if (o.wrt.size() != n)
    throw ValueError(fmt::format("check: CheckOptions::wrt has {} entries for {} inputs", o.wrt.size(), n));
  return o.wrt;
}

struct Comparer {
  const CheckOptions& o;
  CheckReport r;
  void compare(double ad, double fd, const std::string& where) {
    double err = std::abs(ad - fd);
    double scale = std::max(std::abs(ad), std::abs(fd));
    r.max_abs_error = std::max(r.max_abs_error, err);
    if (scale > 0) r.max_rel_error = std::max(r.max_rel_error, err / scale);
    bool bad = !(err <= o.atol + o.rtol * scale);  // also catches NaN
    if (bad && r.ok) {
      r.ok = false;
      r.message = fmt::format("{}: reverse mode gives {:.12g}, finite differences {:.12g} (error {:.3g})", where,
                              ad, fd, err);
    }
  }
};

Tensor random_like(const Tensor& t, Generator& gen) { return randn(t.shape(), gen, t.dtype()); }

}  // namespace

Tensor jacobian_fd(const TensorFn& fn, const TensorList& inputs, std::size_t k, double eps) {
  if (k >= inputs.size()) throw ValueError(fmt::format("jacobian_fd: input {} of {}", k, inputs.size()));
  std::vector<double> y0 = values_at(fn, inputs);
  const std::int64_t m = static_cast<std::int64_t>(y0.size()), n = inputs[k].numel();
  std::vector<double> jac(static_cast<std::size_t>(m * n));
  for (std::int64_t j = 0; j < n; ++j) {
    std::vector<double> yp = values_at(fn, moved(inputs, k, j, eps));
    std::vector<double> ym = values_at(fn, moved(inputs, k, j, -eps));
    for (std::int64_t i = 0; i < m; ++i)
      jac[static_cast<std::size_t>(i * n + j)] = (yp[i] - ym[i]) / (2 * eps);
  }
  return tensor(jac, Shape{m, n});
}

Tensor jacobian(const TensorFn& fn, const TensorList& inputs, std::size_t k) {
  if (k >= inputs.size()) throw ValueError(fmt::format("jacobian: input {} of {}", k, inputs.size()));
  TapeScope scope;
  EnableGradGuard on;  // it records fn itself, whatever the caller's mode
  std::vector<bool> wrt(inputs.size(), false);
  wrt[k] = true;
  TensorList xs = leaves_of(inputs, wrt);
  Tensor y = fn(xs);
  const std::int64_t m = y.numel(), n = inputs[k].numel();
  std::vector<double> jac(static_cast<std::size_t>(m * n));
  for (std::int64_t i = 0; i < m; ++i) {
    Tensor seed = zeros(y.shape(), y.dtype());
    dispatch(seed.dtype(), [&]<class T>() { seed.mutable_data<T>()[i] = T(1); });
    GradOptions o;
    o.seed = seed;
    o.allow_unused = true;
    std::vector<double> row = grad(y, {xs[k]}, o)[0].to_vector();
    std::copy(row.begin(), row.end(), jac.begin() + i * n);
  }
  return tensor(jac, Shape{m, n});
}

CheckReport check_gradient(const TensorFn& fn, const TensorList& inputs, const CheckOptions& opts) {
  std::vector<bool> wrt = wrt_mask(opts, inputs.size());
  Comparer c{opts, {}};
  const std::int64_t out_n = static_cast<std::int64_t>(values_at(fn, inputs).size());
  bool projected = out_n > opts.max_full_elements;
  for (std::size_t k = 0; k < inputs.size(); ++k)
    if (wrt[k] && inputs[k].numel() > opts.max_full_elements) projected = true;

  if (!projected) {
    for (std::size_t k = 0; k < inputs.size(); ++k) {
      if (!wrt[k]) continue;
      std::vector<double> ad = jacobian(fn, inputs, k).to_vector();
      std::vector<double> fd = jacobian_fd(fn, inputs, k, opts.eps).to_vector();
      const std::int64_t n = inputs[k].numel();
      for (std::size_t e = 0; e < ad.size(); ++e)
        c.compare(ad[e], fd[e],
                  fmt::format("d output[{}] / d input {}[{}]", static_cast<std::int64_t>(e) / n, k,
                              static_cast<std::int64_t>(e) % n));
    }
    return c.r;
  }

  Generator gen(opts.seed);
  for (int p = 0; p < opts.probes; ++p) {
    TensorList u;
    for (const Tensor& x : inputs) u.push_back(random_like(x, gen));
    double ad = 0.0;
    Tensor w;
    {
      TapeScope scope;
      EnableGradGuard on;
      TensorList xs = leaves_of(inputs, wrt);
      Tensor y = fn(xs);
      w = random_like(y, gen);
      TensorList wanted;
      std::vector<std::size_t> idx;
      for (std::size_t k = 0; k < xs.size(); ++k)
        if (wrt[k]) {
          wanted.push_back(xs[k]);
          idx.push_back(k);
        }
      GradOptions o;
      o.seed = w;
      o.allow_unused = true;
      TensorList g = grad(y, wanted, o);
      for (std::size_t q = 0; q < g.size(); ++q) ad += dot(g[q], u[idx[q]]).item();
    }
    std::vector<double> yp = values_at(fn, moved_along(inputs, u, wrt, opts.eps));
    std::vector<double> ym = values_at(fn, moved_along(inputs, u, wrt, -opts.eps));
    std::vector<double> wv = w.to_vector();
    double fd = 0.0;
    for (std::size_t i = 0; i < wv.size(); ++i) fd += wv[i] * (yp[i] - ym[i]) / (2 * opts.eps);
    c.compare(ad, fd, fmt::format("random projection {} of the Jacobian", p));
  }
  return c.r;
}

CheckReport check_second_order(const TensorFn& fn, const TensorList& inputs, const CheckOptions& opts) {
  std::vector<bool> wrt = wrt_mask(opts, inputs.size());
  Generator gen(opts.seed + 1);
  Tensor w;
  {
    TapeScope scope;
    w = random_like(fn(inputs), gen);
  }
  CheckReport worst;
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    if (!wrt[k]) continue;
    // G_k(x) = ∇_{x_k} ⟨w, fn(x)⟩, recorded so that it can be differentiated again.
    TensorFn g_k = [&, k](const TensorList& xs_in) {
      EnableGradGuard on;
      TensorList xs;
      for (std::size_t i = 0; i < xs_in.size(); ++i) {
        Tensor x = xs_in[i];
        if (wrt[i] && !x.requires_grad()) x = x.detach().requires_grad_();
        xs.push_back(x);
      }
      Tensor s = sum(mul(fn(xs), w));
      GradOptions o;
      o.create_graph = true;
      o.allow_unused = true;
      return grad(s, {xs[k]}, o)[0];
    };
    CheckReport r = check_gradient(g_k, inputs, opts);
    worst.max_abs_error = std::max(worst.max_abs_error, r.max_abs_error);
    worst.max_rel_error = std::max(worst.max_rel_error, r.max_rel_error);
    if (!r.ok && worst.ok) {
      worst.ok = false;
      worst.message = fmt::format("second order, gradient block of input {}: {}", k, r.message);
    }
  }
  return worst;
}

CheckReport check_hvp(const TensorFn& f, const TensorList& inputs, const TensorList& directions,
                      const CheckOptions& opts) {
  TensorList h = hvp(f, inputs, directions);
  std::vector<bool> all(inputs.size(), true);
  auto grads_at = [&](double scale) { return value_and_grad(f, moved_along(inputs, directions, all, scale)).grads; };
  TensorList gp = grads_at(opts.eps), gm = grads_at(-opts.eps);
  Comparer c{opts, {}};
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    std::vector<double> hv = h[k].to_vector(), p = gp[k].to_vector(), m = gm[k].to_vector();
    for (std::size_t e = 0; e < hv.size(); ++e)
      c.compare(hv[e], (p[e] - m[e]) / (2 * opts.eps), fmt::format("Hessian-vector product, input {}[{}]", k, e));
  }
  return c.r;
}

}  // namespace hyperad
