// Linear-model losses and their w-gradient and w-Hessian-vector product, each one fused
// pass over X (kernels::fused_row_pass; kernels::csr_row_pass for CSR data). The three ops
// differentiate into each other in w; every other derivative (w.r.t. X — or a CSR
// matrix's values — and y, and the third w-derivative) is written in DSL ops from the
// per-example derivatives of ℓ below, so all orders work.
#include "hyperad/autodiff/ops/linear_model.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>

#include <fmt/format.h>

#include "hyperad/autodiff/ops/elementwise.hpp"
#include "hyperad/autodiff/ops/linalg.hpp"
#include "hyperad/autodiff/record.hpp"
#include "hyperad/autodiff/errors.hpp"
#include "hyperad/autodiff/tape.hpp"
#include "deferred.hpp"
#include "kernels/elementwise.hpp"
#include "kernels/logistic.hpp"
#include "kernels/reduce.hpp"
#include "kernels/sparse.hpp"
#include "ops/design.hpp"
#include "ops/loss_common.hpp"

namespace hyperad {

using namespace detail;

namespace {

// This thread's counts: losses of a deferred product run fused, and loss values computed.
constinit thread_local std::uint64_t t_fused_losses = 0, t_loss_values = 0;

// ---- ℓ and its z-derivatives in the kernels, for scalars or xsimd batches -------------

// ℓ, ℓ' and ℓ'' at scores z and labels y, for xsimd batches; a null output is skipped.
// Logistic, with m = −yz: ℓ = softplus(m) = max(m, 0) + log1p(e), ℓ' = −y σ(m),
// ℓ'' = y² σ(m) σ(−m), all from the one exponential e = exp(−|m|) ∈ (0, 1] (no overflow
// at any z, and tiny losses keep their relative precision).
template <class V>
void logistic_terms(V z, V y, V* value, V* d1, V* d2) {
  const V m = -y * z, e = kernels::exp_neg_abs(m);
  if (value) *value = kernels::softplus_from(m, e);
  if (d1) *d1 = -y * kernels::sigmoid_from(m, e);
  if (d2) {
    const V r = V(1) / (V(1) + e);
    *d2 = y * y * e * r * r;
  }
}

template <class V>
void squared_terms(V z, V y, V* value, V* d1, V* d2) {
  if (value) *value = (z - y) * (z - y);
  if (d1) *d1 = V(2) * (z - y);
  if (d2) *d2 = V(2);
}

// For m ≤ 16 rows with scores z and labels y: the per-example losses into `value`,
// s·ℓ' into `d1`, and ℓ'' into `d2` (times s·times[i] when `times` is given); null
// outputs are not computed.
template <class T>
void eval_terms(LinearLoss loss, std::int64_t m, const T* z, const T* y, T s, T* value, T* d1, T* d2,
                const T* times) {
  constexpr std::int64_t W = kernels::kLanes<T>;
  using B = kernels::Batch<T>;
  for (std::int64_t i = 0; i < m; i += W) {
    const std::int64_t len = std::min(W, m - i);
    const B zv = kernels::load_partial(z + i, len, T(0)), yv = kernels::load_partial(y + i, len, T(0));
    B v, g, h;
    if (loss == LinearLoss::logistic)
      logistic_terms<B>(zv, yv, value ? &v : nullptr, d1 ? &g : nullptr, d2 ? &h : nullptr);
    else
      squared_terms<B>(zv, yv, value ? &v : nullptr, d1 ? &g : nullptr, d2 ? &h : nullptr);
    if (value) kernels::store_partial(v, value + i, len);
    if (d1) kernels::store_partial(g * B(s), d1 + i, len);
    if (d2) kernels::store_partial(times ? h * B(s) * kernels::load_partial(times + i, len, T(0)) : h, d2 + i, len);
  }
}

// ---- the same derivatives in DSL ops, for the backward rules -------------------------

// ∂_z^k ∂_y^j ℓ(z, y) (k ≤ 3, j ≤ 1, not both zero) as DSL ops of z and y, so that it is
// differentiated further; undefined where it is identically zero. Logistic: ℓ = φ(yz)
// with φ(m) = softplus(−m), φ' = −σ(−m), φ'' = σ(m)σ(−m), φ''' = φ''·(σ(−m) − σ(m)); so
// ∂_z^k ℓ = y^k φ^(k)(yz) and ∂_y ∂_z^k ℓ = k y^(k−1) φ^(k) + y^k z φ^(k+1).
Tensor loss_derivative(LinearLoss loss, const Tensor& z, const Tensor& y, int k, int j) {
  if (loss == LinearLoss::squared) {  // ℓ = (z − y)²: ∂_y = −∂_z
    if (k + j == 1) return mul_scalar(sub(z, y), j ? -2.0 : 2.0);
    if (k + j == 2) return full_like(z, j ? -2.0 : 2.0);
    return Tensor();
  }
  const Tensor m = mul(y, z), s = sigmoid(m), sb = sigmoid(neg(m));
  const auto phi = [&](int order) {
    if (order == 1) return neg(sb);
    const Tensor p2 = mul(s, sb);
    return order == 2 ? p2 : mul(p2, sub(sb, s));
  };
  const auto ypow = [&](int p) {
    Tensor r = y;
    for (int i = 1; i < p; ++i) r = mul(r, y);
    return r;
  };
  if (j == 0) return mul(ypow(k), phi(k));
  if (k == 0) return mul(z, phi(1));
  Tensor lead = k == 1 ? phi(1) : mul_scalar(mul(ypow(k - 1), phi(k)), k);
  return add(lead, mul(mul(ypow(k), z), phi(k + 1)));
}

// ---- checks -------------------------------------------------------------------------

struct Dims {
  std::int64_t n, d;
};

Dims check_operands(const char* op, const Design& X, const Tensor& w, const Tensor& y, const Tensor* v,
                    LinearLoss loss) {
  if (!X.sparse()) kernels::require_defined(X.dense(), op, "data X");
  kernels::require_defined(w, op, "weights w");
  kernels::require_defined(y, op, "labels y");
  if (v) kernels::require_defined(*v, op, "direction v");
  if (loss != LinearLoss::logistic && loss != LinearLoss::squared)
    throw ValueError(fmt::format("{}: unknown LinearLoss {}", op, static_cast<int>(loss)));
  const auto shapes = [&] {
    return fmt::format("{}, w {}, y {}{}", X.describe(), w.shape().str(), y.shape().str(),
                       v ? fmt::format(", v {}", v->shape().str()) : std::string());
  };
  if ((!X.sparse() && X.dense().rank() != 2) || w.rank() != 1 || y.rank() != 1 || (v && v->rank() != 1))
    throw ShapeError(fmt::format("{}: expects X [n, d], w [d], y [n]{}; got {}", op, v ? ", v [d]" : "", shapes()));
  const Dims dims{X.rows(), X.cols()};
  if (w.size(0) != dims.d || y.size(0) != dims.n || (v && v->size(0) != dims.d))
    throw ShapeError(fmt::format("{}: sizes disagree (n = {} rows and d = {} columns of X): {}", op, dims.n, dims.d,
                                 shapes()));
  for (const Tensor* t : {&w, &y, v})
    if (t && t->dtype() != X.dtype())
      throw DtypeError(fmt::format("{}: dtypes differ: X {} vs {} ({})", op, dtype_name(X.dtype()),
                                   dtype_name(t->dtype()), shapes()));
  return dims;
}

// What a record carries besides tensors: the CSR matrix (its values are saved tensor 0),
// and what the loss's forward pass computed for the backward pass — its gradient, and ℓ''
// per example for the gradient's Hessian-vector products. Records holding ℓ'' also save it
// (saved tensor 3), so that the tape's memory count includes it.
struct Context {
  std::optional<CsrMatrix> sparse;
  Tensor grad, curvature;
};

OpAttrs attrs_of(Reduction r, double scale, LinearLoss loss, const Design& X, Tensor grad = {}, Tensor curvature = {}) {
  OpAttrs a = reduction_attr(r, scale);
  a.integer[1] = static_cast<std::int64_t>(loss);
  if (X.sparse() || grad.defined() || curvature.defined())
    a.payload = std::make_shared<const Context>(
        Context{X.sparse() ? std::optional<CsrMatrix>(X.csr()) : std::nullopt, std::move(grad), std::move(curvature)});
  return a;
}

LinearLoss loss_of(const Backward& b) { return static_cast<LinearLoss>(b.integer(1)); }
Reduction reduction_of(const Backward& b) { return static_cast<Reduction>(b.integer(0)); }
const Context* context_of(const Backward& b) { return static_cast<const Context*>(b.attrs().payload.get()); }

// X as the forward pass saw it: saved tensor 0, or the CSR matrix whose values it is
// (read through saved(0) all the same, which refuses values written in place since).
Design design_of(const Backward& b) {
  const Context* c = context_of(b);
  const Tensor& x = b.saved(0);
  return c && c->sparse ? Design(*c->sparse) : Design(x);
}

// The one pass over X's rows, dense or CSR (kernels/reduce.hpp, kernels/sparse.hpp).
template <class T>
void row_pass(const Design& X, const T* v0, const T* v1, kernels::RowWeights<T> weights, T* out) {
  if (!X.sparse())
    return kernels::fused_row_pass<T>(X.dense().data<T>(), X.rows(), X.cols(), v0, v1, weights, out);
  const CsrMatrix& a = X.csr();
  const CsrMatrix t = out ? a.transposed() : a;  // the transpose only for a sum Xᵀc
  kernels::csr_row_pass<T>({a.rows(), a.indptr().data(), a.indices().data(), a.values().data<T>()},
                           {t.rows(), t.indptr().data(), t.indices().data(), t.values().data<T>()}, v0, v1, weights,
                           out);
}

// ---- the fused passes -----------------------------------------------------------------

// Per-example losses into `per` (if given) and, if grad is given, grad = scale · Xᵀ ℓ'(Xw, y) and
// curv = ℓ''(Xw, y); the scores Xw into `scores` if given: one pass.
template <class T>
void loss_pass(LinearLoss loss, const Design& X, const Tensor& w, const Tensor& y, T scale, T* per, T* grad,
               T* curv, T* scores) {
  const T* yp = y.data<T>();
  const auto weights = [&](std::int64_t r0, std::int64_t m, const T* z, const T*, T* c) {
    if (scores) std::copy(z, z + m, scores + r0);
    eval_terms<T>(loss, m, z, yp + r0, scale, per ? per + r0 : nullptr, grad ? c : nullptr, curv ? curv + r0 : nullptr,
                  nullptr);
  };
  row_pass<T>(X, w.data<T>(), nullptr, kernels::RowWeights<T>::of(weights), grad);
}

// One pass: scale · Xᵀ ℓ'(Xw, y) (v undefined), or scale · Xᵀ (ℓ''(Xw, y) ⊙ Xv), where
// `curv`, when given, holds ℓ''(Xw, y) already (the pass then only needs Xv).
Tensor derivative_pass(LinearLoss loss, const Design& X, const Tensor& w, const Tensor& y, const Tensor& v,
                       double scale, const Tensor* curv) {
  Tensor out({X.cols()}, X.dtype());
  dispatch(X.dtype(), [&]<class T>() {
    const T* yp = y.data<T>();
    const T* hp = curv ? curv->data<T>() : nullptr;
    const T s = static_cast<T>(scale);
    const auto weights = [&](std::int64_t r0, std::int64_t m, const T* d0, const T* d1, T* c) {
      if (!v.defined()) return eval_terms<T>(loss, m, d0, yp + r0, s, nullptr, c, nullptr, nullptr);
      if (!hp) return eval_terms<T>(loss, m, d0, yp + r0, s, nullptr, nullptr, c, d1);  // d0 = Xw, d1 = Xv
      for (std::int64_t i = 0; i < m; ++i) c[i] = s * hp[r0 + i] * d0[i];              // d0 = Xv
    };
    const T* first = v.defined() && hp ? v.data<T>() : w.data<T>();
    const T* second = v.defined() && !hp ? v.data<T>() : nullptr;
    row_pass<T>(X, first, second, kernels::RowWeights<T>::of(weights), out.mutable_data<T>());
  });
  return out;
}

// The curvature kept with a record (by the loss, or by the gradient op it created), if any.
const Tensor* kept_curvature(const Backward& b) {
  const Context* c = context_of(b);
  return c && c->curvature.defined() ? &b.saved(3) : nullptr;
}

Tensor hvp_op(LinearLoss loss, Reduction r, double scale, const Design& X, const Tensor& w, const Tensor& y,
              const Tensor& v, const Tensor* curv);

// The gradient op; `kept` holds its value and ℓ'' when the loss's forward pass computed
// them (the record keeps ℓ'' for its Hessian-vector products).
Tensor grad_op(LinearLoss loss, Reduction r, double scale, const Design& X, const Tensor& w, const Tensor& y,
               const Context* kept) {
  // With ḡ the cotangent and t = Xḡ: dw = hvp(ḡ); dX = s (ℓ' ḡᵀ + (ℓ'' ⊙ t) wᵀ);
  // dy = s ∂_yℓ' ⊙ t.
  static const OpDef def{"linear_model_grad", [](Backward& b) {
                           const Design X = design_of(b);
                           const Tensor &w = b.saved(1), &y = b.saved(2), &g = b.grad_out();
                           const LinearLoss loss = loss_of(b);
                           const double s = b.real(0);
                           if (b.needs(1)) b.accumulate(1, hvp_op(loss, reduction_of(b), s, X, w, y, g, kept_curvature(b)));
                           if (!b.needs(0) && !b.needs(2)) return;
                           const Tensor z = X.times(w), t = X.times(g);
                           if (b.needs(0)) {
                             Tensor dx = X.outer(loss_derivative(loss, z, y, 1, 0), g);
                             dx = add(dx, X.outer(mul(loss_derivative(loss, z, y, 2, 0), t), w));
                             b.accumulate(0, mul_scalar(dx, s));
                           }
                           if (b.needs(2)) b.accumulate(2, mul_scalar(mul(loss_derivative(loss, z, y, 1, 1), t), s));
                         }};
  Tensor out = kept ? kept->grad : derivative_pass(loss, X, w, y, Tensor(), scale, nullptr);
  const Tensor& x = X.input();
  if (kept && kept->curvature.defined())
    return record(def, std::move(out), {&x, &w, &y}, {&x, &w, &y, &kept->curvature},
                  attrs_of(r, scale, loss, X, Tensor(), kept->curvature));
  return record(def, std::move(out), {&x, &w, &y}, {&x, &w, &y}, attrs_of(r, scale, loss, X));
}

Tensor hvp_op(LinearLoss loss, Reduction r, double scale, const Design& X, const Tensor& w, const Tensor& y,
              const Tensor& v, const Tensor* curv) {
  // With ū the cotangent, a = Xv, b = Xū, ℓ'' and ℓ''' at z = Xw: dv = hvp(ū);
  // dw = s Xᵀ(ℓ''' ⊙ a ⊙ b); dX = s ((ℓ'' ⊙ a) ūᵀ + (ℓ'' ⊙ b) vᵀ + (ℓ''' ⊙ a ⊙ b) wᵀ);
  // dy = s ∂_yℓ'' ⊙ a ⊙ b.
  static const OpDef def{"linear_model_hvp", [](Backward& b) {
                           const Design X = design_of(b);
                           const Tensor &w = b.saved(1), &y = b.saved(2), &v = b.saved(3);
                           const Tensor& u = b.grad_out();
                           const LinearLoss loss = loss_of(b);
                           const double s = b.real(0);
                           if (b.needs(3)) b.accumulate(3, hvp_op(loss, reduction_of(b), s, X, w, y, u, nullptr));
                           if (!b.needs(0) && !b.needs(1) && !b.needs(2)) return;
                           const Tensor z = X.times(w), xv = X.times(v), xu = X.times(u), ab = mul(xv, xu);
                           const Tensor d3 = loss_derivative(loss, z, y, 3, 0);  // undefined: zero
                           if (b.needs(1) && d3.defined()) b.accumulate(1, mul_scalar(X.times_t(mul(d3, ab)), s));
                           if (b.needs(0)) {
                             const Tensor d2 = loss_derivative(loss, z, y, 2, 0);
                             Tensor dx = add(X.outer(mul(d2, xv), u), X.outer(mul(d2, xu), v));
                             if (d3.defined()) dx = add(dx, X.outer(mul(d3, ab), w));
                             b.accumulate(0, mul_scalar(dx, s));
                           }
                           if (b.needs(2)) {
                             const Tensor dy = loss_derivative(loss, z, y, 2, 1);
                             if (dy.defined()) b.accumulate(2, mul_scalar(mul(dy, ab), s));
                           }
                         }};
  Tensor out = derivative_pass(loss, X, w, y, v, scale, curv);
  const Tensor& x = X.input();
  return record(def, std::move(out), {&x, &w, &y, &v}, {&x, &w, &y, &v}, attrs_of(r, scale, loss, X));
}

// The loss reduced from the scores z = Xw, the same bits as loss_pass's: for a value
// computed when read (loss_op).
Tensor loss_value(LinearLoss loss, const Tensor& z, const Tensor& y, Reduction reduction, double scale) {
  Tensor per(z.shape(), z.dtype());
  dispatch(z.dtype(), [&]<class T>() {
    eval_terms<T>(loss, z.numel(), z.data<T>(), y.data<T>(), T(1), per.mutable_data<T>(), nullptr, nullptr, nullptr);
  });
  ++t_loss_values;
  return reduce_losses(std::move(per), reduction, scale);
}

// `scores`, when given, receives Xw (n values of X's dtype).
Tensor loss_op(const Design& X, const Tensor& w, const Tensor& y, LinearLoss loss, Reduction reduction,
               void* scores = nullptr) {
  // With ū the cotangent (a scalar, or per example for none) and ℓ' at z = Xw:
  // dw = ū · grad (none: Xᵀ(ū ⊙ ℓ')); dX = s (ū ⊙ ℓ') wᵀ; dy = s ū ⊙ ∂_yℓ.
  static const OpDef def{"linear_model_loss", [](Backward& b) {
                           const Design X = design_of(b);
                           const Tensor &w = b.saved(1), &y = b.saved(2), &u = b.grad_out();
                           const LinearLoss loss = loss_of(b);
                           const Reduction r = reduction_of(b);
                           const double s = b.real(0);
                           const bool per_example = r == Reduction::none;
                           if (b.needs(1) && !per_example) {
                             const Context* kept = context_of(b);
                             if (kept && !kept->grad.defined()) kept = nullptr;
                             b.accumulate(1, mul(grad_op(loss, r, s, X, w, y, kept), u));
                           }
                           if (!b.needs(0) && !b.needs(2) && !(b.needs(1) && per_example)) return;
                           const Tensor z = X.times(w);
                           const Tensor ud1 = mul_scalar(mul(u, loss_derivative(loss, z, y, 1, 0)), s);
                           if (b.needs(1) && per_example) b.accumulate(1, X.times_t(ud1));
                           if (b.needs(0)) b.accumulate(0, X.outer(ud1, w));
                           if (b.needs(2)) b.accumulate(2, mul_scalar(mul(u, loss_derivative(loss, z, y, 0, 1)), s));
                         }};
  const char* op = "linear_model_loss";
  const Dims dims = check_operands(op, X, w, y, nullptr, loss);
  const double scale = reduction_scale(reduction, dims.n, op);
  // The gradient comes almost free with the loss (the rows are in cache): keep it when a
  // backward pass may want it.
  const bool keep_grad = reduction != Reduction::none && any_requires_grad({&w});
  // Inside gradient_of the value is usually not read (a gradient step reads only ∇L): keep
  // the scores instead and compute it from them if it is (a log1p per example).
  const bool lazy_value = keep_grad && GradientOnlyScope::open();
  // ℓ'' per example, for the Hessian-vector products of the gradient this op records.
  const bool keep_curvature = keep_grad && !GradientOnlyScope::first_order();
  Tensor per, z, grad, curvature;
  (lazy_value ? z : per) = Tensor({dims.n}, X.dtype());
  if (keep_grad) grad = Tensor({dims.d}, X.dtype());
  if (keep_curvature) curvature = Tensor({dims.n}, X.dtype());
  dispatch(X.dtype(), [&]<class T>() {
    T* kept_scores = lazy_value ? z.mutable_data<T>() : static_cast<T*>(scores);
    loss_pass<T>(loss, X, w, y, static_cast<T>(scale), lazy_value ? nullptr : per.mutable_data<T>(),
                 keep_grad ? grad.mutable_data<T>() : nullptr, keep_curvature ? curvature.mutable_data<T>() : nullptr,
                 kept_scores);
    if (lazy_value && scores) std::copy(kept_scores, kept_scores + dims.n, static_cast<T*>(scores));
  });
  Tensor value = lazy_value ? Deferral::lazy(Shape{}, X.dtype(), std::move(z), y,
                                             [loss, reduction, scale](const Tensor& zs, const Tensor& ys, void* out) {
                                               const Tensor v = loss_value(loss, zs, ys, reduction, scale);
                                               std::memcpy(out, v.raw(), v.nbytes());
                                             })
                            : (++t_loss_values, reduce_losses(std::move(per), reduction, scale));
  const Tensor& x = X.input();
  if (!keep_grad) return record(def, std::move(value), {&x, &w, &y}, {&x, &w, &y}, attrs_of(reduction, scale, loss, X));
  if (!keep_curvature)
    return record(def, std::move(value), {&x, &w, &y}, {&x, &w, &y}, attrs_of(reduction, scale, loss, X, std::move(grad)));
  const Tensor kept_curvature = curvature;
  return record(def, std::move(value), {&x, &w, &y}, {&x, &w, &y, &kept_curvature},
                attrs_of(reduction, scale, loss, X, std::move(grad), std::move(curvature)));
}

Tensor grad_public(const Design& X, const Tensor& w, const Tensor& y, LinearLoss loss, Reduction reduction) {
  const char* op = "linear_model_grad";
  const Dims dims = check_operands(op, X, w, y, nullptr, loss);
  return grad_op(loss, reduction, gradient_scale(reduction, dims.n, op), X, w, y, nullptr);
}

Tensor hvp_public(const Design& X, const Tensor& w, const Tensor& y, const Tensor& v, LinearLoss loss,
                  Reduction reduction) {
  const char* op = "linear_model_hvp";
  const Dims dims = check_operands(op, X, w, y, &v, loss);
  return hvp_op(loss, reduction, gradient_scale(reduction, dims.n, op), X, w, y, v, nullptr);
}

}  // namespace

std::uint64_t fused_linear_losses() { return t_fused_losses; }
std::uint64_t linear_loss_values() { return t_loss_values; }

Tensor detail::loss_of_deferred_product(const Tensor& z, const Tensor& y, LinearLoss loss, Reduction reduction,
                                        const char* op) {
  if (!y.defined() || y.shape() != z.shape() || y.dtype() != z.dtype()) return {};
  (void)reduction_scale(reduction, z.numel(), op);  // a bad reduction: the caller's error
  DeferredClaim claim;
  Deferral::claim(z, DeferredKind::matrix_vector, claim);
  if (!claim) return {};
  const Tensor X = claim.a(), w = claim.b();
  // The composition records z's loss iff z has a history; the fused op records iff X or w
  // has one now. They differ for a product made unrecorded and a loss recorded, or the
  // reverse: then the composition's graph stands (z is computed on access). A stale
  // variable anywhere: the composition says so in its own words.
  try {
    if (z.requires_grad() != (Tape::current().recording() && any_requires_grad({&X, &w}))) return {};
    (void)y.requires_grad();
  } catch (const TapeError&) {
    return {};
  }
  claim.drop_records();  // the product's records: this op replaces them
  Tensor out = loss_op(Design(X), w, y, loss, reduction, claim.data());
  claim.filled();
  ++t_fused_losses;
  return out;
}

Tensor linear_model_loss(const Tensor& X, const Tensor& w, const Tensor& y, LinearLoss loss, Reduction reduction) {
  return loss_op(Design(X), w, y, loss, reduction);
}
Tensor linear_model_loss(const CsrMatrix& X, const Tensor& w, const Tensor& y, LinearLoss loss, Reduction reduction) {
  return loss_op(Design(X), w, y, loss, reduction);
}
Tensor linear_model_grad(const Tensor& X, const Tensor& w, const Tensor& y, LinearLoss loss, Reduction reduction) {
  return grad_public(Design(X), w, y, loss, reduction);
}
Tensor linear_model_grad(const CsrMatrix& X, const Tensor& w, const Tensor& y, LinearLoss loss, Reduction reduction) {
  return grad_public(Design(X), w, y, loss, reduction);
}
Tensor linear_model_hvp(const Tensor& X, const Tensor& w, const Tensor& y, const Tensor& v, LinearLoss loss,
                        Reduction reduction) {
  return hvp_public(Design(X), w, y, v, loss, reduction);
}
Tensor linear_model_hvp(const CsrMatrix& X, const Tensor& w, const Tensor& y, const Tensor& v, LinearLoss loss,
                        Reduction reduction) {
  return hvp_public(Design(X), w, y, v, loss, reduction);
}

const char* linear_loss_name(LinearLoss loss) {
  switch (loss) {
    case LinearLoss::logistic: return "logistic";
    case LinearLoss::squared: return "squared";
  }
  return "unknown";
}

}  // namespace hyperad
