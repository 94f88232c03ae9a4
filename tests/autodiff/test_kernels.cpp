// The vectorized / multithreaded kernels against plain scalar references: sizes that
// exercise full SIMD batches and the padded last batch, both dtypes, the broadcasting
// fast paths, all four GEMM transpose cases on odd sizes, and bitwise-identical results
// for repeated runs and for 1 vs 2 threads.
#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <omp.h>

#include <fmt/format.h>

#include "autodiff/ad_harness.hpp"
#include "autodiff/random_data.hpp"
#include "hyperad/autodiff/ops/elementwise.hpp"
#include "hyperad/autodiff/ops/linalg.hpp"
#include "hyperad/autodiff/ops/loss.hpp"
#include "hyperad/autodiff/ops/reduce.hpp"
#include "hyperad/autodiff/ops/shape_ops.hpp"
#include "hyperad/autodiff/runtime.hpp"
#include "hyperad/autodiff/tensor.hpp"

using namespace hyperad;
using hyperad::testing::ThreadCount;

namespace {

const std::vector<std::int64_t> kSizes = {0, 1, 7, 8, 9, 1023, 100003};
const Dtype kDtypes[] = {Dtype::f32, Dtype::f64};

Generator gen(2024);

Tensor uniform(const Shape& s, double lo, double hi, Dtype d) { return testing::uniform(s, lo, hi, d, gen); }

// A shape seen as [outer, n, inner] around `axis` (the layout the reductions walk).
struct Lanes {
  std::int64_t outer = 1, n = 1, inner = 1;
};
Lanes lanes_of(const Shape& s, int axis) {
  Lanes l;
  for (int k = 0; k < s.rank(); ++k) (k < axis ? l.outer : k == axis ? l.n : l.inner) *= s[k];
  return l;
}

// Relative-or-absolute closeness in units of the dtype's epsilon; NaN matches NaN.
bool close(double got, double want, Dtype d, double ulps) {
  if (std::isnan(want)) return std::isnan(got);
  if (std::isinf(want)) return got == want;
  const double eps = d == Dtype::f32 ? 1.2e-7 : 2.3e-16;
  return std::abs(got - want) <= ulps * eps * std::max(1.0, std::abs(want));
}

// Checks every element of `got` against `want` and reports the first mismatch.
void check_all(const Tensor& got, const std::vector<double>& want, double ulps, const std::string& what) {
  INFO(what);
  REQUIRE(got.numel() == static_cast<std::int64_t>(want.size()));
  std::vector<double> g = got.to_vector();
  std::int64_t bad = -1;
  for (std::size_t i = 0; i < g.size() && bad < 0; ++i)
    if (!close(g[i], want[i], got.dtype(), ulps)) bad = static_cast<std::int64_t>(i);
  if (bad >= 0) INFO("index " << bad << ": got " << g[bad] << ", want " << want[bad]);
  CHECK(bad == -1);
}

// The reference of a unary op: f applied in the element type T, as double.
template <class F>
std::vector<double> ref_unary(const Tensor& x, F f) {
  std::vector<double> v = x.to_vector(), out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (x.dtype() == Dtype::f32) out[i] = static_cast<double>(f(static_cast<float>(v[i])));
    else out[i] = f(v[i]);
  }
  return out;
}

struct UnaryCase {
  const char* name;
  std::function<Tensor(const Tensor&)> op;
  double lo, hi;  // input range
  double ulps;    // allowed error (vectorized transcendental functions differ from libm by a few ulps)
  std::function<double(double)> ref64;
  std::function<float(float)> ref32;
};

template <class F>
UnaryCase unary(const char* name, std::function<Tensor(const Tensor&)> op, double lo, double hi, double ulps, F f) {
  return {name, std::move(op), lo, hi, ulps, [f](double v) { return f(v); }, [f](float v) { return f(v); }};
}

std::vector<UnaryCase> unary_cases() {
  return {
      unary("neg", [](const Tensor& x) { return neg(x); }, -5, 5, 0, [](auto v) { return -v; }),
      unary("square", [](const Tensor& x) { return square(x); }, -5, 5, 0, [](auto v) { return v * v; }),
      unary("mul_scalar", [](const Tensor& x) { return mul_scalar(x, 0.37); }, -5, 5, 0,
            [](auto v) { return v * decltype(v)(0.37); }),
      unary("add_scalar", [](const Tensor& x) { return add_scalar(x, 1.5); }, -5, 5, 0,
            [](auto v) { return v + decltype(v)(1.5); }),
      unary("rsub_scalar", [](const Tensor& x) { return rsub_scalar(2.0, x); }, -5, 5, 0,
            [](auto v) { return decltype(v)(2) - v; }),
      unary("rdiv_scalar", [](const Tensor& x) { return rdiv_scalar(3.0, x); }, 0.5, 5, 1,
            [](auto v) { return decltype(v)(3) / v; }),
      unary("exp", [](const Tensor& x) { return exp(x); }, -30, 30, 4, [](auto v) { return std::exp(v); }),
      unary("log", [](const Tensor& x) { return log(x); }, 1e-3, 1e3, 4, [](auto v) { return std::log(v); }),
      unary("log1p", [](const Tensor& x) { return log1p(x); }, -0.9, 10, 4, [](auto v) { return std::log1p(v); }),
      unary("expm1", [](const Tensor& x) { return expm1(x); }, -5, 5, 4, [](auto v) { return std::expm1(v); }),
      unary("sqrt", [](const Tensor& x) { return sqrt(x); }, 0, 100, 1, [](auto v) { return std::sqrt(v); }),
      unary("pow 2.5", [](const Tensor& x) { return pow(x, 2.5); }, 0.1, 10, 8,
            [](auto v) { return std::pow(v, decltype(v)(2.5)); }),
      unary("abs", [](const Tensor& x) { return abs(x); }, -5, 5, 0, [](auto v) { return std::abs(v); }),
      unary("tanh", [](const Tensor& x) { return tanh(x); }, -10, 10, 4, [](auto v) { return std::tanh(v); }),
      unary("sigmoid", [](const Tensor& x) { return sigmoid(x); }, -40, 40, 4,
            [](auto v) { return decltype(v)(1) / (decltype(v)(1) + std::exp(-v)); }),
      unary("relu", [](const Tensor& x) { return relu(x); }, -5, 5, 0,
            [](auto v) { return v > decltype(v)(0) ? v : decltype(v)(0); }),
      unary("softplus", [](const Tensor& x) { return softplus(x); }, -30, 30, 4,
            [](auto v) { return std::log1p(std::exp(v)); }),
      unary("sin", [](const Tensor& x) { return sin(x); }, -10, 10, 4, [](auto v) { return std::sin(v); }),
      unary("cos", [](const Tensor& x) { return cos(x); }, -10, 10, 4, [](auto v) { return std::cos(v); }),
      unary("clamp", [](const Tensor& x) { return clamp(x, -1.0, 2.0); }, -5, 5, 0,
            [](auto v) { return std::min(std::max(v, decltype(v)(-1)), decltype(v)(2)); }),
      unary("sign", [](const Tensor& x) { return sign(x); }, -5, 5, 0,
            [](auto v) { return decltype(v)((v > 0) - (v < 0)); }),
  };
}

// Naive broadcast reference of a binary function: index arithmetic per element.
std::vector<double> ref_binary(const Tensor& a, const Tensor& b, const std::function<double(double, double)>& f) {
  const Shape out = broadcast_shapes(a.shape(), b.shape(), "ref");
  const std::vector<double> av = a.to_vector(), bv = b.to_vector();
  std::vector<double> r(static_cast<std::size_t>(out.numel()));
  const int R = out.rank();
  auto offset = [&](const Shape& s, std::int64_t flat) {
    std::int64_t off = 0, stride = 1;
    for (int d = R - 1; d >= 0; --d) {
      const std::int64_t i = flat % out.begin()[d];
      flat /= out.begin()[d];
      const int ds = d - (R - s.rank());
      if (ds < 0) continue;
      if (s.begin()[ds] != 1) off += i * stride;
      stride *= s.begin()[ds];
    }
    return off;
  };
  for (std::int64_t i = 0; i < out.numel(); ++i)
    r[static_cast<std::size_t>(i)] = f(av[static_cast<std::size_t>(offset(a.shape(), i))],
                                      bv[static_cast<std::size_t>(offset(b.shape(), i))]);
  return r;
}

// Rounds the double result of f on (float-exact) inputs back to the dtype's precision.
std::function<double(double, double)> in_dtype(Dtype d, double (*f)(double, double)) {
  return [d, f](double x, double y) { return d == Dtype::f32 ? double(float(f(x, y))) : f(x, y); };
}

bool bitwise_equal(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

// Naive C = op(A) op(B) in long double.
template <class T>
std::vector<double> naive_gemm(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K,
                               const std::vector<T>& A, const std::vector<T>& B) {
  std::vector<double> C(static_cast<std::size_t>(M * N));
  for (std::int64_t i = 0; i < M; ++i)
    for (std::int64_t j = 0; j < N; ++j) {
      long double s = 0;
      for (std::int64_t k = 0; k < K; ++k) {
        const T a = ta ? A[static_cast<std::size_t>(k * M + i)] : A[static_cast<std::size_t>(i * K + k)];
        const T b = tb ? B[static_cast<std::size_t>(j * K + k)] : B[static_cast<std::size_t>(k * N + j)];
        s += static_cast<long double>(a) * b;
      }
      C[static_cast<std::size_t>(i * N + j)] = static_cast<double>(s);
    }
  return C;
}

}  // namespace

TEST_CASE("unary maps match the scalar functions on every size, in both dtypes") {
  for (const UnaryCase& c : unary_cases())
    for (Dtype d : kDtypes)
      for (std::int64_t n : kSizes) {
        Tensor x = uniform({n}, c.lo, c.hi, d);
        const std::vector<double> want =
            d == Dtype::f32 ? ref_unary(x, c.ref32) : ref_unary(x, c.ref64);
        check_all(c.op(x), want, c.ulps, fmt::format("{} {} n={}", c.name, dtype_name(d), n));
      }
}

TEST_CASE("an element's result does not depend on its position (full batch or padded tail)") {
  for (Dtype d : kDtypes) {
    Tensor x = uniform({1023}, -3, 3, d);
    const std::vector<double> xv = x.to_vector();
    for (const UnaryCase& c : unary_cases()) {
      if (c.lo > -3 || c.hi < 3) continue;  // domain does not cover the inputs
      const std::vector<double> whole = c.op(x).to_vector();
      for (std::size_t i : {std::size_t{0}, std::size_t{5}, std::size_t{1016}, std::size_t{1022}}) {
        INFO(c.name << " " << dtype_name(d) << " index " << i);
        CHECK(c.op(tensor({xv[i]}, d)).item() == whole[i]);
      }
    }
  }
}

TEST_CASE("exp: within 2 ulp of std::exp over its whole range in both dtypes, with overflow, underflow and NaN") {
  // Every x from the largest finite result down into the subnormals (xsimd 8.1's exp
  // returned 0 there, and +Inf from exp(709.5) and, in float, exp(88.5)), and the edges.
  auto run = [&]<class T>(double lo, double hi) {
    std::vector<double> xs;
    for (int i = 0; i <= 200000; ++i) xs.push_back(double(T(lo + (hi - lo) * i / 200000.0)));
    for (double x : {0.0, -0.0, 1e-30, -1e-30, 0.5 * std::log(2.0), hi, lo}) xs.push_back(double(T(x)));
    const Tensor e = exp(tensor(xs, Shape{static_cast<std::int64_t>(xs.size())}, dtype_of<T>()));
    const std::vector<double> got = e.to_vector();
    double worst = 0, worst_x = 0;
    for (std::size_t i = 0; i < xs.size(); ++i) {
      const T want = std::exp(T(xs[i]));
      // in ulps of the result's own spacing (the subnormal spacing at the bottom)
      const T ulp = std::max(std::nextafter(want, T(INFINITY)) - want, std::numeric_limits<T>::denorm_min());
      const double err = std::abs(got[i] - double(want)) / double(ulp);
      if (err > worst) worst = err, worst_x = xs[i];
    }
    INFO(dtype_name(dtype_of<T>()) << ": worst at x = " << worst_x);
    CHECK(worst <= 2.0);
    const double big = double(std::numeric_limits<T>::max());
    const std::vector<double> edges =
        exp(tensor({hi + 1, big, INFINITY, lo - 1, -big, -INFINITY, NAN}, Shape{7}, dtype_of<T>())).to_vector();
    CHECK(edges[0] == INFINITY);
    CHECK(edges[1] == INFINITY);
    CHECK(edges[2] == INFINITY);
    CHECK(edges[3] == 0.0);
    CHECK(edges[4] == 0.0);
    CHECK(edges[5] == 0.0);
    CHECK(std::isnan(edges[6]));
  };
  run.operator()<double>(-745.13, 709.78);
  run.operator()<float>(-103.27, 88.72);
}

TEST_CASE("binary maps: equal shapes, scalar, row, column and two-sided broadcasts") {
  struct Pair {
    Shape a, b;
  };
  const std::vector<Pair> pairs = {
      {{1023}, {1023}},       {{9}, {9}},          {{100003}, {}},    {{}, {100003}},        {{7}, {1}},
      {{37, 1023}, {1023}},   {{37, 9}, {1, 9}},   {{37, 9}, {37, 1}}, {{1, 9}, {37, 9}},     {{37, 1}, {1, 1023}},
      {{5, 1, 9}, {5, 7, 9}}, {{5, 7, 1}, {7, 9}}, {{3, 4, 5, 6}, {4, 1, 6}}, {{0, 3}, {3}}, {{8, 8}, {8, 8}},
  };
  struct Fn {
    const char* name;
    Tensor (*op)(const Tensor&, const Tensor&);
    double (*f)(double, double);
  };
  const Fn fns[] = {
      {"add", [](const Tensor& a, const Tensor& b) { return add(a, b); }, [](double x, double y) { return x + y; }},
      {"sub", [](const Tensor& a, const Tensor& b) { return sub(a, b); }, [](double x, double y) { return x - y; }},
      {"mul", [](const Tensor& a, const Tensor& b) { return mul(a, b); }, [](double x, double y) { return x * y; }},
      {"div", [](const Tensor& a, const Tensor& b) { return div(a, b); }, [](double x, double y) { return x / y; }},
      {"greater", [](const Tensor& a, const Tensor& b) { return greater(a, b); },
       [](double x, double y) { return x > y ? 1.0 : 0.0; }},
      {"less_equal", [](const Tensor& a, const Tensor& b) { return less_equal(a, b); },
       [](double x, double y) { return x <= y ? 1.0 : 0.0; }},
      {"maximum", [](const Tensor& a, const Tensor& b) { return maximum(a, b); },
       [](double x, double y) { return x >= y ? x : y; }},
  };
  for (Dtype d : kDtypes)
    for (const Pair& p : pairs) {
      Tensor a = uniform(p.a, 0.5, 2, d), b = uniform(p.b, 0.5, 2, d);
      for (const Fn& f : fns)
        check_all(f.op(a, b), ref_binary(a, b, in_dtype(d, f.f)), 0,
                  fmt::format("{} {} {} with {}", f.name, dtype_name(d), p.a.str(), p.b.str()));
    }
}

TEST_CASE("where with broadcast mask and operands") {
  for (Dtype d : kDtypes) {
    Tensor m = greater(uniform({37, 1}, -1, 1, d), zeros({}, d));
    Tensor a = uniform({37, 1023}, -1, 1, d), b = uniform({1023}, -1, 1, d);
    Tensor w = where(m, a, b);
    const std::vector<double> mv = m.to_vector(), av = a.to_vector(), bv = b.to_vector(), wv = w.to_vector();
    bool ok = true;
    for (std::size_t i = 0; i < 37; ++i)
      for (std::size_t j = 0; j < 1023; ++j) ok = ok && wv[i * 1023 + j] == (mv[i] != 0 ? av[i * 1023 + j] : bv[j]);
    CHECK(ok);
    Tensor w2 = where(greater(a, zeros({}, d)), a, zeros({}, d));  // equal-shape mask, scalar operand
    check_all(w2, ref_unary(a, [](auto v) { return v > 0 ? v : decltype(v)(0); }), 0, "where as relu");
  }
}

TEST_CASE("sums: all elements, rows, columns and middle axes against a scalar loop") {
  for (Dtype d : kDtypes) {
    const double tol = d == Dtype::f32 ? 200 : 50;  // summation order differs from the loop
    for (std::int64_t n : kSizes) {
      Tensor x = uniform({n}, -1, 1, d);
      long double s = 0;
      for (double v : x.to_vector()) s += v;
      check_all(sum(x), {static_cast<double>(s)}, tol * std::sqrt(double(n) + 1), fmt::format("sum n={}", n));
    }
    const std::vector<Shape> shapes = {{37, 1023}, {1023, 37}, {5, 7, 9}, {300, 3}, {3, 40000}, {70000, 2}};
    for (const Shape& s : shapes) {
      Tensor x = uniform(s, -1, 1, d);
      const std::vector<double> v = x.to_vector();
      for (int axis = 0; axis < s.rank(); ++axis) {
        Tensor y = sum(x, {axis}, true);
        std::vector<long double> acc(static_cast<std::size_t>(y.numel()), 0);
        const auto sp = lanes_of(s, axis);
        for (std::int64_t o = 0; o < sp.outer; ++o)
          for (std::int64_t k = 0; k < sp.n; ++k)
            for (std::int64_t i = 0; i < sp.inner; ++i)
              acc[static_cast<std::size_t>(o * sp.inner + i)] += v[static_cast<std::size_t>((o * sp.n + k) * sp.inner + i)];
        std::vector<double> want(acc.begin(), acc.end());
        check_all(y, want, tol * std::sqrt(double(sp.n)), fmt::format("sum {} axis {} {}", s.str(), axis, dtype_name(d)));
      }
      // Several axes at once (the general path) and sum_to a broadcast shape.
      if (s.rank() == 3) {
        Tensor y = sum(x, {0, 2});
        Tensor y2 = sum(sum(x, {2}), {0});
        check_all(y, y2.to_vector(), tol * 4, "sum over axes 0 and 2");
      }
    }
  }
}

TEST_CASE("max, min and argmax: first extremum, NaN wins, both memory layouts") {
  for (Dtype d : kDtypes) {
    for (std::int64_t n : {1, 7, 9, 100, 1023}) {
      Tensor x = uniform({3, n}, -1, 1, d);
      std::vector<double> v = x.to_vector();
      for (int row = 0; row < 3; ++row) {
        const auto r = static_cast<std::size_t>(row * n);
        if (n > 4) v[r + 2] = v[r + 4] = 5.0;  // ties: the first one wins
      }
      x = tensor(v, {3, n}, d);
      const auto idx = argmax(x, 1);
      for (int row = 0; row < 3; ++row) {
        const auto r = static_cast<std::size_t>(row * n);
        std::size_t best = 0, worst = 0;
        for (std::size_t k = 1; k < static_cast<std::size_t>(n); ++k) {
          if (v[r + k] > v[r + best]) best = k;
          if (v[r + k] < v[r + worst]) worst = k;
        }
        CHECK(idx[static_cast<std::size_t>(row)] == static_cast<std::int64_t>(best));
        CHECK(max(x, 1).at({row}) == v[r + best]);
        CHECK(min(x, 1).at({row}) == v[r + worst]);
      }
      // The strided layout (reduce over axis 0 of the transpose-shaped tensor).
      Tensor xt = uniform({n, 5}, -1, 1, d);
      std::vector<double> tv = xt.to_vector();
      std::vector<std::int64_t> it = argmax(xt, 0);
      for (std::size_t i = 0; i < 5; ++i) {
        std::size_t best = 0;
        for (std::size_t k = 1; k < static_cast<std::size_t>(n); ++k)
          if (tv[k * 5 + i] > tv[best * 5 + i]) best = k;
        CHECK(it[i] == static_cast<std::int64_t>(best));
      }
    }
    std::vector<double> v(40, 1.0);
    v[13] = std::numeric_limits<double>::quiet_NaN();
    v[30] = std::numeric_limits<double>::quiet_NaN();
    v[20] = 9.0;
    Tensor x = tensor(v, {40}, d);
    CHECK(argmax(x, 0) == std::vector<std::int64_t>{13});
    CHECK(std::isnan(max(x, 0).item()));
    CHECK(std::isnan(min(x, 0).item()));
  }
}

TEST_CASE("logsumexp and softmax along contiguous and strided axes, with -inf lanes") {
  const double inf = std::numeric_limits<double>::infinity();
  for (Dtype d : kDtypes) {
    for (const Shape& s : std::vector<Shape>{{4, 1023}, {1023, 4}, {3, 9, 5}, {2, 7}}) {
      Tensor x = uniform(s, -20, 20, d);
      const std::vector<double> v = x.to_vector();
      for (int axis = 0; axis < s.rank(); ++axis) {
        const auto sp = lanes_of(s, axis);
        std::vector<double> want(static_cast<std::size_t>(sp.outer * sp.inner)), sm(v.size()), lsm(v.size());
        for (std::int64_t o = 0; o < sp.outer; ++o)
          for (std::int64_t i = 0; i < sp.inner; ++i) {
            auto at = [&](std::int64_t k) { return static_cast<std::size_t>((o * sp.n + k) * sp.inner + i); };
            double m = -inf;
            for (std::int64_t k = 0; k < sp.n; ++k) m = std::max(m, v[at(k)]);
            long double t = 0;
            for (std::int64_t k = 0; k < sp.n; ++k) t += std::exp(static_cast<long double>(v[at(k)] - m));
            const double lse = m + static_cast<double>(std::log(t));
            want[static_cast<std::size_t>(o * sp.inner + i)] = lse;
            for (std::int64_t k = 0; k < sp.n; ++k) {
              sm[at(k)] = std::exp(v[at(k)] - lse);
              lsm[at(k)] = v[at(k)] - lse;
            }
          }
        const std::string what = fmt::format("{} axis {} {}", s.str(), axis, dtype_name(d));
        check_all(logsumexp(x, axis), want, 64, "logsumexp " + what);
        check_all(softmax(x, axis), sm, 64, "softmax " + what);
        check_all(log_softmax(x, axis), lsm, 64, "log_softmax " + what);
      }
    }
    // A lane of -inf gives -inf; a +inf gives +inf; a NaN gives NaN.
    Tensor special = tensor({-inf, -inf, -inf, 1.0, inf, 2.0, 0.0, std::nan(""), 1.0}, {3, 3}, d);
    std::vector<double> l = logsumexp(special, 1).to_vector();
    CHECK(l[0] == -inf);
    CHECK(l[1] == inf);
    CHECK(std::isnan(l[2]));
  }
}

TEST_CASE("dot and squared norm against a long-double loop") {
  for (Dtype d : kDtypes)
    for (std::int64_t n : kSizes) {
      Tensor a = uniform({n}, -1, 1, d), b = uniform({n}, -1, 1, d);
      const std::vector<double> av = a.to_vector(), bv = b.to_vector();
      long double s = 0, q = 0;
      for (std::size_t i = 0; i < av.size(); ++i) {
        s += static_cast<long double>(av[i]) * bv[i];
        q += static_cast<long double>(av[i]) * av[i];
      }
      const double tol = (d == Dtype::f32 ? 200 : 50) * std::sqrt(double(n) + 1);
      check_all(dot(a, b), {static_cast<double>(s)}, tol, fmt::format("dot n={}", n));
      check_all(squared_norm(a), {static_cast<double>(q)}, tol, fmt::format("squared_norm n={}", n));
    }
}

TEST_CASE("GEMM: all four transpose cases on odd sizes against a naive triple loop") {
  struct Size {
    std::int64_t M, N, K;
  };
  const Size sizes[] = {{1, 1, 1},   {7, 9, 13},   {13, 17, 5},   {37, 29, 41},  {100, 1, 50}, {1, 50, 30},
                        {3, 300, 1}, {1, 1, 700},  {25, 33, 300}, {127, 129, 257}, {200, 70, 520}, {0, 5, 3},
                        {4, 0, 3},   {4, 5, 0},
                        // the small path: every row-group size, columns below, at, between and
                        // just past one and two vectors (a padded copy, in place, an overlapping tile)
                        {25, 5, 17}, {5, 17, 25}, {12, 4, 9},  {6, 8, 7},    {11, 3, 2},    {19, 12, 10},
                        {2, 2, 2},   {13, 16, 3}, {7, 9, 1},   {30, 30, 30},
                        // A·Bᵀ as dot products: tile widths and heights from 1 up, K at and
                        // past two vectors with every tail
                        {9, 7, 8},   {4, 11, 19}, {25, 5, 50}, {3, 24, 33}, {17, 13, 64}, {10, 2, 40},
                        {5, 9, 21},  {8, 6, 22},  {6, 3, 23}};
  auto run = [&]<class T>() {
    for (const Size& s : sizes)
      for (int t = 0; t < 4; ++t) {
        const bool ta = t & 1, tb = t & 2;
        std::vector<T> A(static_cast<std::size_t>(s.M * s.K)), B(static_cast<std::size_t>(s.K * s.N));
        for (T& v : A) v = static_cast<T>(gen.uniform() * 2 - 1);
        for (T& v : B) v = static_cast<T>(gen.uniform() * 2 - 1);
        const Tensor a = tensor(std::vector<double>(A.begin(), A.end()), ta ? Shape{s.K, s.M} : Shape{s.M, s.K}, dtype_of<T>());
        const Tensor b = tensor(std::vector<double>(B.begin(), B.end()), tb ? Shape{s.N, s.K} : Shape{s.K, s.N}, dtype_of<T>());
        const Tensor c = matmul_t(a, b, ta, tb);
        REQUIRE(c.shape() == Shape{s.M, s.N});
        const std::vector<T> C(c.data<T>(), c.data<T>() + c.numel());
        const std::vector<double> want = naive_gemm(ta, tb, s.M, s.N, s.K, A, B);
        const double tol = (sizeof(T) == 4 ? 2e-6 : 4e-15) * std::sqrt(double(s.K) + 1);
        std::int64_t bad = -1;
        for (std::size_t i = 0; i < C.size() && bad < 0; ++i)
          if (std::abs(C[i] - want[i]) > tol * 4) bad = static_cast<std::int64_t>(i);
        INFO("M=" << s.M << " N=" << s.N << " K=" << s.K << " ta=" << ta << " tb=" << tb << " bytes=" << sizeof(T));
        CHECK(bad == -1);
      }
  };
  run.operator()<float>();
  run.operator()<double>();
}

TEST_CASE("matrix-vector products: both orientations, every tail, each blocking path, any thread count") {
  // y = X v reads rows (dot products, 8 rows per pass); y = Xᵀ s sums weighted rows, in
  // fixed row blocks for tall matrices and split by columns for wide ones.
  struct Size {
    std::int64_t rows, cols;
  };
  const Size sizes[] = {{37, 1}, {37, 7}, {37, 9}, {37, 17}, {13, 7}, {1001, 17}, {2000, 10},
                        {2000, 100}, {20000, 30}, {300, 1500}, {9, 3000}};
  auto run = [&]<class T>() {
    for (const Size& s : sizes)
      for (bool transposed : {false, true}) {
        const std::int64_t n = transposed ? s.rows : s.cols;  // length of the vector
        std::vector<T> X(static_cast<std::size_t>(s.rows * s.cols)), v(static_cast<std::size_t>(n));
        for (T& e : X) e = static_cast<T>(gen.uniform() * 2 - 1);
        for (T& e : v) e = static_cast<T>(gen.uniform() * 2 - 1);
        const std::int64_t m = transposed ? s.cols : s.rows;
        // A product with one column: X·v, or Xᵀ·s as op(A) = Aᵀ with A = X.
        const Tensor x = tensor(std::vector<double>(X.begin(), X.end()), {s.rows, s.cols}, dtype_of<T>());
        const Tensor col = tensor(std::vector<double>(v.begin(), v.end()), {n, 1}, dtype_of<T>());
        auto product = [&](int threads) {
          ThreadCount tc(threads);
          const Tensor y = matmul_t(x, col, transposed, false);
          REQUIRE(y.numel() == m);
          return std::vector<T>(y.data<T>(), y.data<T>() + m);
        };
        const std::vector<T> one = product(1), two = product(2);
        const std::vector<double> want = transposed ? naive_gemm(true, false, s.cols, 1, s.rows, X, v)
                                                    : naive_gemm(false, false, s.rows, 1, s.cols, X, v);
        const double tol = (sizeof(T) == 4 ? 2e-6 : 4e-15) * std::sqrt(double(n) + 1) * 4;
        std::int64_t bad = -1;
        for (std::size_t i = 0; i < one.size() && bad < 0; ++i)
          if (std::abs(one[i] - want[i]) > tol) bad = static_cast<std::int64_t>(i);
        INFO(s.rows << "x" << s.cols << (transposed ? " transposed" : "") << " bytes=" << sizeof(T));
        CHECK(bad == -1);
        CHECK(std::memcmp(one.data(), two.data(), one.size() * sizeof(T)) == 0);
      }
  };
  run.operator()<float>();
  run.operator()<double>();
}

TEST_CASE("small A·Bᵀ: an element does not depend on which rows and columns share its product") {
  // The dot-product kernel tiles rows of A by rows of B; each element must be summed the same
  // way wherever it falls in a tile (batched and one-task products of a meta-batch agree).
  // Parts of at least two rows and columns: one row or column is a matrix-vector product,
  // another kernel.
  for (Dtype d : kDtypes)
    for (std::int64_t K : {16, 21, 37}) {
      const Tensor a = uniform({11, K}, -1, 1, d), b = uniform({13, K}, -1, 1, d);
      const Tensor c = matmul_t(a, b, false, true);
      for (auto [r0, r1, c0, c1] : {std::array<std::int64_t, 4>{0, 2, 0, 13}, {3, 6, 2, 9}, {9, 11, 5, 7}, {1, 8, 11, 13}}) {
        const Tensor part = matmul_t(slice(a, 0, r0, r1), slice(b, 0, c0, c1), false, true);
        INFO("rows " << r0 << ".." << r1 << " columns " << c0 << ".." << c1 << " K=" << K << " " << dtype_name(d));
        CHECK(bitwise_equal(part, slice(slice(c, 0, r0, r1), 1, c0, c1)));
      }
    }
}

TEST_CASE("batched matmul_t: each batch bitwise equal to the 2-D product of its slices") {
  for (Dtype d : kDtypes) {
    Tensor a = uniform({3, 17, 23}, -1, 1, d), b = uniform({3, 19, 23}, -1, 1, d);
    Tensor c = matmul_t(a, b, false, true);  // [3, 17, 19]
    for (std::int64_t k = 0; k < 3; ++k) {
      auto batch = [k](const Tensor& t) { return reshape(slice(t, 0, k, k + 1), {t.size(1), t.size(2)}); };
      INFO("batch " << k << " " << dtype_name(d));
      CHECK(bitwise_equal(batch(c), matmul_t(batch(a), batch(b), false, true)));
    }
  }
}

TEST_CASE("OpenMP: identical results for repeated runs, and for 1 vs 2 threads") {
  for (Dtype d : kDtypes) {
    Tensor x = uniform({1000000}, -1, 1, d), y = uniform({1000000}, -1, 1, d);
    Tensor m = uniform({700, 600}, -1, 1, d), w = uniform({600, 500}, -1, 1, d);
    Tensor cols = uniform({20000, 30}, -1, 1, d), row = uniform({1000}, -1, 1, d);
    auto compute = [&] {
      return TensorList{exp(x),
                                 add(x, y),
                                 mul(reshape(x, {1000, 1000}), reshape(y, {1000, 1000})),
                                 add(reshape(x, {1000, 1000}), row),
                                 sum(x),
                                 sum(cols, {0}),
                                 sum(cols, {1}),
                                 matmul(m, w),
                                 matmul_t(m, m, true, false),
                                 logsumexp(reshape(x, {100, 10000}), 1),
                                 dot(x, y)};
    };
    TensorList one, two, again;
    {
      ThreadCount tc(1);
      one = compute();
    }
    {
      ThreadCount tc(2);
      CHECK(runtime::num_threads() == 2);
      two = compute();
      again = compute();
    }
    for (std::size_t i = 0; i < one.size(); ++i) {
      INFO("result " << i << " " << dtype_name(d));
      CHECK(bitwise_equal(two[i], again[i]));
      CHECK(bitwise_equal(one[i], two[i]));
    }
  }
}

TEST_CASE("runtime thread count: default from OpenMP, settable, validated") {
  const int def = runtime::num_threads();
  CHECK(def >= 1);
  runtime::set_num_threads(3);
  CHECK(runtime::num_threads() == 3);
  runtime::set_num_threads(0);
  CHECK(runtime::num_threads() == def);
  // The default follows OpenMP's setting as it changes, not just its value at first use.
  const int omp_before = omp_get_max_threads();
  omp_set_num_threads(def + 1);
  CHECK(runtime::num_threads() == def + 1);
  omp_set_num_threads(omp_before);
  CHECK(runtime::num_threads() == def);
  CHECK_THROWS_WITH_AS(runtime::set_num_threads(-2), doctest::Contains("set_num_threads: needs n >= 0"),
                       ValueError);
}
