#pragma once
// One call per op (in the spirit of Stan Math's expect_ad): first order against finite
// differences, second order (the gradient map differentiated again), each input held
// constant in turn, and float32 against float64. Tolerances: rtol 1e-6 / atol 1e-8 with
// central differences of step 1e-6 in float64 (error ~1e-9 for smooth ops); float32
// values and gradients within 2e-3 relative of float64 (a few hundred float32 ulps,
// enough for chains of a few ops).
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "hyperad/autodiff/runtime.hpp"
#include "hyperad/hyperad.hpp"

namespace hyperad::testing {

struct AdCase {
  double rtol = 1e-6;
  double atol = 1e-8;
  double eps = 1e-6;
  bool second_order = true;
  bool check_f32 = true;
  double f32_rtol = 2e-3;
  /// Check that with no differentiable input nothing is recorded (off for functions that
  /// differentiate internally, e.g. a gradient-step map).
  bool plain_check = true;
  /// Inputs not to differentiate at all (e.g. a mask); empty: all are differentiable.
  std::vector<bool> differentiable{};
};

inline CheckOptions options_of(const AdCase& c, std::vector<bool> wrt) {
  CheckOptions o;
  o.rtol = c.rtol;
  o.atol = c.atol;
  o.eps = c.eps;
  o.wrt = std::move(wrt);
  return o;
}

inline TensorList cast_all(const TensorList& xs, Dtype d) {
  TensorList out;
  for (const Tensor& x : xs) out.push_back(x.detach().to(d));
  return out;
}

// max |a - b| ≤ rtol · max(1, max |b|)
inline void expect_close(const std::vector<double>& a, const std::vector<double>& b, double rtol,
                         const std::string& what) {
  REQUIRE_MESSAGE(a.size() == b.size(), what);
  double scale = 1.0, err = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    scale = std::max(scale, std::abs(b[i]));
    err = std::max(err, std::abs(a[i] - b[i]));
  }
  CHECK_MESSAGE(err <= rtol * scale, what << ": max error " << err << " vs scale " << scale);
}

/// The whole battery for one op (or composite) at one point.
inline void expect_ad(const std::string& name, const TensorFn& fn, const TensorList& inputs,
                      const AdCase& c = {}) {
  INFO("op: " << name);
  std::vector<bool> base = c.differentiable.empty() ? std::vector<bool>(inputs.size(), true) : c.differentiable;

  CheckReport r1 = check_gradient(fn, inputs, options_of(c, base));
  CHECK_MESSAGE(r1.ok, name << " first order: " << r1.message);
  if (c.second_order) {
    CheckReport r2 = check_second_order(fn, inputs, options_of(c, base));
    CHECK_MESSAGE(r2.ok, name << " second order: " << r2.message);
  }

  // Each differentiable input in turn held constant (it does not require gradients).
  if (inputs.size() > 1)
    for (std::size_t k = 0; k < inputs.size(); ++k) {
      if (!base[k]) continue;
      std::vector<bool> wrt = base;
      wrt[k] = false;
      bool any = false;
      for (bool b : wrt) any = any || b;
      if (!any) continue;
      CheckReport r = check_gradient(fn, inputs, options_of(c, wrt));
      CHECK_MESSAGE(r.ok, name << " with input " << k << " constant: " << r.message);
    }

  // No input requires gradients: plain computation, nothing recorded.
  if (c.plain_check) {
    TapeScope scope;
    std::size_t before = Tape::current().num_records();
    Tensor y = fn(inputs);
    CHECK_MESSAGE(!y.requires_grad(), name << ": output requires grad although no input does");
    CHECK_MESSAGE(Tape::current().num_records() == before, name << ": recorded without differentiable inputs");
  }

  if (c.check_f32) {
    TapeScope scope;
    TensorList x64 = cast_all(inputs, Dtype::f64), x32 = cast_all(inputs, Dtype::f32);
    for (std::size_t k = 0; k < inputs.size(); ++k)
      if (base[k]) {
        x64[k].requires_grad_();
        x32[k].requires_grad_();
      }
    Tensor y64 = fn(x64), y32 = fn(x32);
    CHECK_MESSAGE(y32.dtype() == Dtype::f32, name << ": float32 inputs gave a " << dtype_name(y32.dtype()) << " result");
    expect_close(y32.to_vector(), y64.to_vector(), c.f32_rtol, name + " float32 value");
    Generator gen(7);
    Tensor w = randn(y64.shape(), gen);
    TensorList want64, want32;
    for (std::size_t k = 0; k < inputs.size(); ++k)
      if (base[k]) {
        want64.push_back(x64[k]);
        want32.push_back(x32[k]);
      }
    if (!want64.empty() && y64.requires_grad()) {
      GradOptions o64, o32;
      o64.seed = w;
      o64.allow_unused = o32.allow_unused = true;
      o32.seed = w.to(Dtype::f32);
      auto g64 = grad(y64, want64, o64), g32 = grad(y32, want32, o32);
      for (std::size_t k = 0; k < g64.size(); ++k)
        expect_close(g32[k].to_vector(), g64[k].to_vector(), c.f32_rtol, name + " float32 gradient");
    }
  }
}

/// Sets the kernels' thread count for a scope (restores the default on exit).
struct ThreadCount {
  explicit ThreadCount(int n) { runtime::set_num_threads(n); }
  ~ThreadCount() { runtime::set_num_threads(0); }
  ThreadCount(const ThreadCount&) = delete;
  ThreadCount& operator=(const ThreadCount&) = delete;
};

/// Reads a whole tensor as doubles (for CHECKs against closed forms).
inline std::vector<double> values(const Tensor& t) { return t.to_vector(); }

/// max |a − b| / max(1, max |b|) over the elements of two tensors of one size.
inline double rel_diff(const Tensor& a, const Tensor& b) {
  const std::vector<double> x = values(a), y = values(b);
  REQUIRE(x.size() == y.size());
  double scale = 1, err = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    scale = std::max(scale, std::abs(y[i]));
    err = std::max(err, std::abs(x[i] - y[i]));
  }
  return err / scale;
}

/// f() run with the kernels on n threads.
template <class F>
auto with_threads(int n, F&& f) {
  ThreadCount t(n);
  return f();
}

}  // namespace hyperad::testing
