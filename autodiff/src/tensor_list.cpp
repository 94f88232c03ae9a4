// Lists of tensors as vectors (tensor_list.hpp).
#include "hyperad/autodiff/tensor_list.hpp"

#include <cmath>

#include <fmt/format.h>

#include "hyperad/autodiff/errors.hpp"
#include "hyperad/autodiff/record.hpp"

namespace hyperad::list {

namespace {

void check_pair(const TensorList& a, const TensorList& b, const char* op) {
  if (a.size() != b.size())
    throw ShapeError(fmt::format("{}: lists of {} and {} tensors", op, a.size(), b.size()));
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!a[i].defined() || !b[i].defined())
      throw ValueError(fmt::format("{}: tensor {} of a list is undefined", op, i));
    if (a[i].shape() != b[i].shape())
      throw ShapeError(fmt::format("{}: tensor {} has shape {} in the first list and {} in the second", op, i,
                                   a[i].shape().str(), b[i].shape().str()));
  }
}

// f(p, q, n) on the typed element pointers of a[i] and b[i], for every i.
template <class F>
void for_pairs(const TensorList& a, const TensorList& b, F&& f) {
  for (std::size_t i = 0; i < a.size(); ++i)
    dispatch(a[i].dtype(), [&]<class T>() {
      dispatch(b[i].dtype(), [&]<class U>() { f(a[i].data<T>(), b[i].data<U>(), a[i].numel()); });
    });
}

// Σ_k f(p[k], q[k]) in double, in four interleaved partial sums: one running sum waits
// on its own add every element (a solver's dot products and stopping tests over a
// meta-batch's states spent 2 % of a hypergradient there); four fill a vector register.
template <class P, class Q, class F>
double sum_of(const P* p, const Q* q, std::int64_t n, F f) {
  double s[4] = {0, 0, 0, 0};
  std::int64_t k = 0;
  for (; k + 4 <= n; k += 4)
    for (int j = 0; j < 4; ++j) s[j] += f(double(p[k + j]), double(q[k + j]));
  for (; k < n; ++k) s[0] += f(double(p[k]), double(q[k]));
  return (s[0] + s[1]) + (s[2] + s[3]);
}

}  // namespace

double dot(const TensorList& a, const TensorList& b) {
  check_pair(a, b, "list::dot");
  double s = 0.0;
  for_pairs(a, b, [&](const auto* p, const auto* q, std::int64_t n) {
    s += sum_of(p, q, n, [](double u, double v) { return u * v; });
  });
  return s;
}

double norm(const TensorList& a) { return std::sqrt(dot(a, a)); }

double distance(const TensorList& a, const TensorList& b) {
  check_pair(a, b, "list::distance");
  double s = 0.0;
  for_pairs(a, b, [&](const auto* p, const auto* q, std::int64_t n) {
    s += sum_of(p, q, n, [](double u, double v) { return (u - v) * (u - v); });
  });
  return std::sqrt(s);
}

std::int64_t numel(const TensorList& a) {
  std::int64_t n = 0;
  for (const Tensor& t : a) n += t.defined() ? t.numel() : 0;
  return n;
}

bool all_finite(const TensorList& a) {
  for (const Tensor& t : a) {
    if (!t.defined()) continue;
    const bool ok = dispatch(t.dtype(), [&]<class T>() {
      const T* p = t.data<T>();
      for (std::int64_t k = 0, n = t.numel(); k < n; ++k)
        if (!std::isfinite(p[k])) return false;
      return true;
    });
    if (!ok) return false;
  }
  return true;
}

bool any_requires_grad(const TensorList& a) {
  if (!Tape::current().recording()) return false;
  for (const Tensor& t : a)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

double relative_error(const std::vector<double>& a, const std::vector<double>& ref) {
  if (a.size() != ref.size())
    throw ShapeError(fmt::format("relative_error: {} values against a reference of {}", a.size(), ref.size()));
  double diff = 0, scale = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    diff += (a[i] - ref[i]) * (a[i] - ref[i]);
    scale += ref[i] * ref[i];
  }
  return scale > 0 ? std::sqrt(diff / scale) : std::sqrt(diff);
}

double relative_error(const TensorList& a, const TensorList& ref) { return relative_error(flatten(a), flatten(ref)); }

void axpy(double alpha, const TensorList& x, TensorList& y) {
  check_pair(x, y, "list::axpy");
  for (std::size_t i = 0; i < x.size(); ++i)
    dispatch(y[i].dtype(), [&]<class T>() {
      dispatch(x[i].dtype(), [&]<class U>() {
        T* q = y[i].mutable_data<T>();
        const U* p = x[i].data<U>();
        for (std::int64_t k = 0, n = x[i].numel(); k < n; ++k) q[k] = T(double(q[k]) + alpha * double(p[k]));
      });
    });
}

void scale(TensorList& x, double alpha) {
  for (Tensor& t : x)
    dispatch(t.dtype(), [&]<class T>() {
      T* q = t.mutable_data<T>();
      for (std::int64_t k = 0, n = t.numel(); k < n; ++k) q[k] = T(alpha * double(q[k]));
    });
}

TensorList zeros_like(const TensorList& x) {
  TensorList out;
  out.reserve(x.size());
  for (const Tensor& t : x) out.push_back(hyperad::zeros_like(t));
  return out;
}

TensorList clone(const TensorList& x) {
  TensorList out;
  out.reserve(x.size());
  for (const Tensor& t : x) out.push_back(t.detach().clone());
  return out;
}

TensorList detach(const TensorList& x) {
  TensorList out;
  out.reserve(x.size());
  for (const Tensor& t : x) out.push_back(t.detach());
  return out;
}

TensorList make_leaves(const TensorList& x) {
  TensorList out = detach(x);
  for (Tensor& t : out) t.requires_grad_();
  return out;
}

std::vector<double> flatten(const TensorList& x) {
  std::vector<double> v;
  v.reserve(static_cast<std::size_t>(numel(x)));
  for (const Tensor& t : x) {
    const std::vector<double> p = t.to_vector();
    v.insert(v.end(), p.begin(), p.end());
  }
  return v;
}

TensorList unflatten(const std::vector<double>& values, const TensorList& like) {
  const auto total = static_cast<std::size_t>(numel(like));
  if (values.size() != total)
    throw ShapeError(fmt::format("list::unflatten: {} values for a list of {} elements", values.size(), total));
  TensorList out;
  out.reserve(like.size());
  std::size_t at = 0;
  for (const Tensor& t : like) {
    const auto n = static_cast<std::size_t>(t.numel());
    out.push_back(tensor(std::vector<double>(values.begin() + static_cast<std::ptrdiff_t>(at),
                                             values.begin() + static_cast<std::ptrdiff_t>(at + n)),
                         t.shape(), t.dtype()));
    at += n;
  }
  return out;
}

void require_like(const TensorList& x, const TensorList& like, std::string_view what) {
  if (x.size() != like.size())
    throw ShapeError(fmt::format("{}: {} tensors, expected {}", what, x.size(), like.size()));
  for (std::size_t i = 0; i < x.size(); ++i)
    if (!x[i].defined() || x[i].shape() != like[i].shape())
      throw ShapeError(fmt::format("{}: tensor {} has shape {}, expected {}", what, i,
                                   x[i].defined() ? x[i].shape().str() : std::string("(undefined)"),
                                   like[i].shape().str()));
}

}  // namespace hyperad::list
