// Softmax cross-entropy of a linear model with its W-gradient and W-Hessian-vector product
// (ops/softmax_model.hpp). The forward passes are the data products (dense GEMMs or CSR
// products) around one per-row loop over the logits; the backward rules are DSL ops, so
// derivatives of every order compose. With P the row softmax of Z = XW, H(A) = P ⊙ A −
// P ⊙ rowsum(P ⊙ A) is the logits' Hessian applied row by row, and the derivative of
// ⟨B, H(A)⟩ in Z is T3(A, B) = H(A ⊙ B) − rowsum(P ⊙ B) ⊙ H(A) − rowsum(P ⊙ A) ⊙ H(B).
#include "hyperad/autodiff/ops/softmax_model.hpp"

#include <algorithm>
#include <cmath>
#include <memory>
#include <optional>

#include <fmt/format.h>

#include "hyperad/autodiff/ops/elementwise.hpp"
#include "hyperad/autodiff/ops/reduce.hpp"
#include "hyperad/autodiff/ops/shape_ops.hpp"
#include "hyperad/autodiff/record.hpp"
#include "kernels/elementwise.hpp"
#include "kernels/exp.hpp"
#include "kernels/parallel.hpp"
#include "ops/design.hpp"
#include "ops/loss_common.hpp"

namespace hyperad {

using namespace detail;

namespace {

using Labels = std::shared_ptr<const std::vector<std::int64_t>>;

// What a record carries besides tensors: the CSR matrix (its values are saved tensor 0),
// the labels, and what the loss's forward pass computed — its gradient and P, which the
// records holding it also save (at slot integer(1)) so the tape's memory count includes it.
struct Context {
  std::optional<CsrMatrix> sparse;
  Labels labels;
  Tensor grad, probs;
};

struct Dims {
  std::int64_t n, d, C;
};

Dims check_operands(const char* op, const Design& X, const Tensor& W, const std::vector<std::int64_t>& labels,
                    const Tensor* V) {
  if (!X.sparse()) kernels::require_defined(X.dense(), op, "data X");
  kernels::require_defined(W, op, "weights W");
  if (V) kernels::require_defined(*V, op, "direction V");
  const auto shapes = [&] {
    return fmt::format("{}, W {}, {} labels{}", X.describe(), W.shape().str(), labels.size(),
                       V ? fmt::format(", V {}", V->shape().str()) : std::string());
  };
  if ((!X.sparse() && X.dense().rank() != 2) || W.rank() != 2 || (V && V->rank() != 2))
    throw ShapeError(fmt::format("{}: expects X [n, d], W [d, C], n labels{}; got {}", op, V ? ", V [d, C]" : "",
                                 shapes()));
  const Dims dims{X.rows(), X.cols(), W.size(1)};
  if (W.size(0) != dims.d || static_cast<std::int64_t>(labels.size()) != dims.n || (V && V->shape() != W.shape()))
    throw ShapeError(fmt::format("{}: sizes disagree (n = {} rows and d = {} columns of X, C = {} classes): {}", op,
                                 dims.n, dims.d, dims.C, shapes()));
  for (const Tensor* t : {&W, V})
    if (t && t->dtype() != X.dtype())
      throw DtypeError(fmt::format("{}: dtypes differ: X {} vs {} ({})", op, dtype_name(X.dtype()),
                                   dtype_name(t->dtype()), shapes()));
  if (dims.C < 1) throw ShapeError(fmt::format("{}: W has no classes: {}", op, shapes()));
  for (std::size_t i = 0; i < labels.size(); ++i)
    if (labels[i] < 0 || labels[i] >= dims.C)
      throw ValueError(fmt::format("{}: label {} at position {} is out of range [0, {})", op, labels[i], i, dims.C));
  return dims;
}

// ---- forward: the per-row loops between the two data products ------------------------

// Rows [0, n) of an [n, C] array on threads; each row by one thread.
template <class F>
void for_rows(std::int64_t n, std::int64_t C, F&& f) {
  const std::int64_t threshold = std::max<std::int64_t>(1, kernels::parallel_elementwise() / std::max<std::int64_t>(1, C));
  kernels::parallel_for(n, threshold, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t i = lo; i < hi; ++i) f(i);
  }, 1);
}

// The rows of E = exp(Z − rowmax Z) into P, normalized: P = E / rowsum E; the per-example
// losses log rowsum E − (Z − rowmax)[y] (if `per`) and D = s(P − Y) (if `D`), from the
// shifted logits (exact) rather than Z − logsumexp (rounded at large |Z|).
template <class T>
void softmax_rows(const T* shifted, const std::vector<std::int64_t>& y, std::int64_t n, std::int64_t C, T s, T* per,
                  T* P, T* D) {
  for_rows(n, C, [&](std::int64_t i) {
    T* p = P + i * C;
    T total = 0;
    for (std::int64_t c = 0; c < C; ++c) total += p[c];
    const T inv = T(1) / total;
    for (std::int64_t c = 0; c < C; ++c) p[c] *= inv;
    const auto label = y[static_cast<std::size_t>(i)];
    if (per) per[i] = std::log(total) - shifted[i * C + label];
    if (D) {
      T* g = D + i * C;
      for (std::int64_t c = 0; c < C; ++c) g[c] = s * p[c];
      g[label] -= s;
    }
  });
}

// out = s H(A) = s (P ⊙ A − P ⊙ rowsum(P ⊙ A)), in place over A.
template <class T>
void hessian_rows(const T* P, T* A, std::int64_t n, std::int64_t C, T s) {
  for_rows(n, C, [&](std::int64_t i) {
    const T* p = P + i * C;
    T* a = A + i * C;
    T pa = 0;
    for (std::int64_t c = 0; c < C; ++c) pa += p[c] * a[c];
    for (std::int64_t c = 0; c < C; ++c) a[c] = s * p[c] * (a[c] - pa);
  });
}

Tensor logits(const Design& X, const Tensor& W) {
  NoGradGuard off;
  return X.times(W);
}

Tensor transposed_product(const Design& X, const Tensor& coefficients) {
  NoGradGuard off;
  return X.times_t(coefficients);
}

// P from the logits, and D = s(P − Y) and the per-example losses when asked. The
// exponentials are one vectorized map over the shifted logits.
Tensor probabilities(const Tensor& Z, const std::vector<std::int64_t>& y, double s, Tensor* per, Tensor* D) {
  const std::int64_t n = Z.size(0), C = Z.size(1);
  Tensor shifted(Z.shape(), Z.dtype());
  dispatch(Z.dtype(), [&]<class T>() {
    const T* z = Z.data<T>();
    T* out = shifted.mutable_data<T>();
    for_rows(n, C, [&](std::int64_t i) {
      const T* row = z + i * C;
      T m = *std::max_element(row, row + C);
      if (!std::isfinite(m)) m = T(0);
      for (std::int64_t c = 0; c < C; ++c) out[i * C + c] = row[c] - m;
    });
  });
  Tensor P = kernels::map_unary(shifted, kernels::simd<4>([](auto v) { return kernels::vexp(v); }), "softmax_model");
  if (per) *per = Tensor({n}, Z.dtype());
  if (D) *D = Tensor(Z.shape(), Z.dtype());
  dispatch(Z.dtype(), [&]<class T>() {
    softmax_rows<T>(shifted.data<T>(), y, n, C, static_cast<T>(s), per ? per->mutable_data<T>() : nullptr,
                    P.mutable_data<T>(), D ? D->mutable_data<T>() : nullptr);
  });
  return P;
}

// s Xᵀ H(XV), with P given or computed from XW.
Tensor hvp_value(const Design& X, const Tensor& W, const std::vector<std::int64_t>& y, const Tensor& V, double s,
                 const Tensor* kept_probs) {
  const Tensor P = kept_probs ? *kept_probs : probabilities(logits(X, W), y, s, nullptr, nullptr);
  Tensor A = logits(X, V);
  dispatch(A.dtype(), [&]<class T>() {
    hessian_rows<T>(P.data<T>(), A.mutable_data<T>(), A.size(0), A.size(1), static_cast<T>(s));
  });
  return transposed_product(X, A);
}

// ---- backward: the same quantities in DSL ops ----------------------------------------

Tensor one_hot(const std::vector<std::int64_t>& y, std::int64_t C, Dtype dtype) {
  Tensor Y = zeros({static_cast<std::int64_t>(y.size()), C}, dtype);
  dispatch(dtype, [&]<class T>() {
    T* p = Y.mutable_data<T>();
    for (std::size_t i = 0; i < y.size(); ++i) p[static_cast<std::int64_t>(i) * C + y[i]] = T(1);
  });
  return Y;
}

Tensor rowsum(const Tensor& a) { return sum(a, {1}, true); }
Tensor hess(const Tensor& P, const Tensor& A) { return sub(mul(P, A), mul(P, rowsum(mul(P, A)))); }
Tensor third(const Tensor& P, const Tensor& A, const Tensor& B) {
  return sub(sub(hess(P, mul(A, B)), mul(rowsum(mul(P, B)), hess(P, A))), mul(rowsum(mul(P, A)), hess(P, B)));
}

// ---- records -----------------------------------------------------------------------

const Context& context_of(const Backward& b) { return b.payload<Context>(); }
// X as the forward pass saw it (saved(0) read in both cases: it refuses values written in
// place since).
Design design_of(const Backward& b) {
  const Context& c = context_of(b);
  const Tensor& x = b.saved(0);
  return c.sparse ? Design(*c.sparse) : Design(x);
}
Reduction reduction_of(const Backward& b) { return static_cast<Reduction>(b.integer(0)); }
// P kept by the loss's forward pass, if this record holds it.
const Tensor* kept_probs(const Backward& b) { return b.integer(1) >= 0 ? &b.saved(static_cast<int>(b.integer(1))) : nullptr; }

OpAttrs attrs_of(Reduction r, double s, const Design& X, Labels labels, int probs_slot, Tensor grad = {},
                 Tensor probs = {}) {
  OpAttrs a = reduction_attr(r, s);
  a.integer[1] = probs_slot;
  a.payload = std::make_shared<const Context>(
      Context{X.sparse() ? std::optional<CsrMatrix>(X.csr()) : std::nullopt, std::move(labels), std::move(grad),
              std::move(probs)});
  return a;
}

Tensor hvp_op(Reduction r, double s, const Design& X, const Tensor& W, const Labels& y, const Tensor& V,
              const Tensor* probs);

Tensor grad_op(Reduction r, double s, const Design& X, const Tensor& W, const Labels& y, const Context* kept) {
  // With Ḡ the cotangent and T = XḠ: dW = hvp(Ḡ); dX = s (D1 Ḡᵀ + H(T) Wᵀ), D1 = P − Y.
  static const OpDef def{"softmax_model_grad", [](Backward& b) {
                           const Design X = design_of(b);
                           const Tensor &W = b.saved(1), &G = b.grad_out();
                           const Labels& y = context_of(b).labels;
                           const double s = b.real(0);
                           if (b.needs(1)) b.accumulate(1, hvp_op(reduction_of(b), s, X, W, y, G, kept_probs(b)));
                           if (!b.needs(0)) return;
                           const Tensor P = softmax(X.times(W), 1);
                           const Tensor D1 = sub(P, one_hot(*y, W.size(1), W.dtype()));
                           b.accumulate(0, mul_scalar(add(X.outer(D1, G), X.outer(hess(P, X.times(G)), W)), s));
                         }};
  Tensor out;
  if (kept) {
    out = kept->grad;
  } else {
    Tensor D;
    probabilities(logits(X, W), *y, s, nullptr, &D);
    out = transposed_product(X, D);
  }
  const Tensor& x = X.input();
  if (kept) return record(def, std::move(out), {&x, &W}, {&x, &W, &kept->probs}, attrs_of(r, s, X, y, 2, {}, kept->probs));
  return record(def, std::move(out), {&x, &W}, {&x, &W}, attrs_of(r, s, X, y, -1));
}

Tensor hvp_op(Reduction r, double s, const Design& X, const Tensor& W, const Labels& y, const Tensor& V,
              const Tensor* probs) {
  // With Ū the cotangent, A = XV, B = XŪ: dV = hvp(Ū); dW = s Xᵀ T3(A, B);
  // dX = s (H(A) Ūᵀ + H(B) Vᵀ + T3(A, B) Wᵀ).
  static const OpDef def{"softmax_model_hvp", [](Backward& b) {
                           const Design X = design_of(b);
                           const Tensor &W = b.saved(1), &V = b.saved(2), &U = b.grad_out();
                           const Labels& y = context_of(b).labels;
                           const double s = b.real(0);
                           if (b.needs(2)) b.accumulate(2, hvp_op(reduction_of(b), s, X, W, y, U, kept_probs(b)));
                           if (!b.needs(0) && !b.needs(1)) return;
                           const Tensor P = softmax(X.times(W), 1), A = X.times(V), B = X.times(U);
                           const Tensor T3 = third(P, A, B);
                           if (b.needs(1)) b.accumulate(1, mul_scalar(X.times_t(T3), s));
                           if (b.needs(0)) {
                             const Tensor dx = add(add(X.outer(hess(P, A), U), X.outer(hess(P, B), V)), X.outer(T3, W));
                             b.accumulate(0, mul_scalar(dx, s));
                           }
                         }};
  Tensor out = hvp_value(X, W, *y, V, s, probs);
  const Tensor& x = X.input();
  if (probs) return record(def, std::move(out), {&x, &W, &V}, {&x, &W, &V, probs}, attrs_of(r, s, X, y, 3, {}, *probs));
  return record(def, std::move(out), {&x, &W, &V}, {&x, &W, &V}, attrs_of(r, s, X, y, -1));
}

Tensor loss_op(const Design& X, const Tensor& W, const std::vector<std::int64_t>& labels, Reduction reduction) {
  // With ū the cotangent (a scalar, or per example for none): dW = ū · grad (none:
  // Xᵀ(ū ⊙ D1)); dX = s (ū ⊙ D1) Wᵀ.
  static const OpDef def{"softmax_model_loss", [](Backward& b) {
                           const Design X = design_of(b);
                           const Tensor &W = b.saved(1), &u = b.grad_out();
                           const Context& c = context_of(b);
                           const Reduction r = reduction_of(b);
                           const double s = b.real(0);
                           const bool per_example = r == Reduction::none;
                           if (b.needs(1) && !per_example)
                             b.accumulate(1, mul(grad_op(r, s, X, W, c.labels, c.grad.defined() ? &c : nullptr), u));
                           if (!b.needs(0) && !(b.needs(1) && per_example)) return;
                           const Tensor D1 = sub(softmax(X.times(W), 1), one_hot(*c.labels, W.size(1), W.dtype()));
                           const Tensor uD1 = mul_scalar(mul(per_example ? unsqueeze(u, 1) : u, D1), s);
                           if (b.needs(1) && per_example) b.accumulate(1, X.times_t(uD1));
                           if (b.needs(0)) b.accumulate(0, X.outer(uD1, W));
                         }};
  const char* op = "softmax_model_loss";
  const Dims dims = check_operands(op, X, W, labels, nullptr);
  const double s = reduction_scale(reduction, dims.n, op);
  auto y = std::make_shared<const std::vector<std::int64_t>>(labels);
  // The gradient costs one more product with the logits at hand: keep it (and P) when a
  // backward pass may want it.
  const bool keep = reduction != Reduction::none && any_requires_grad({&W});
  Tensor per, D;
  Tensor P = probabilities(logits(X, W), labels, s, &per, keep ? &D : nullptr);
  Tensor value = reduce_losses(std::move(per), reduction, s);
  const Tensor& x = X.input();
  if (!keep) return record(def, std::move(value), {&x, &W}, {&x, &W}, attrs_of(reduction, s, X, std::move(y), -1));
  Tensor grad = transposed_product(X, D);
  const Tensor kept = P;
  return record(def, std::move(value), {&x, &W}, {&x, &W, &kept},
                attrs_of(reduction, s, X, std::move(y), 2, std::move(grad), std::move(P)));
}

Tensor grad_public(const Design& X, const Tensor& W, const std::vector<std::int64_t>& labels, Reduction r) {
  const char* op = "softmax_model_grad";
  const Dims dims = check_operands(op, X, W, labels, nullptr);
  return grad_op(r, gradient_scale(r, dims.n, op), X, W, std::make_shared<const std::vector<std::int64_t>>(labels),
                 nullptr);
}

Tensor hvp_public(const Design& X, const Tensor& W, const std::vector<std::int64_t>& labels, const Tensor& V,
                  Reduction r) {
  const char* op = "softmax_model_hvp";
  const Dims dims = check_operands(op, X, W, labels, &V);
  return hvp_op(r, gradient_scale(r, dims.n, op), X, W, std::make_shared<const std::vector<std::int64_t>>(labels), V,
                nullptr);
}

}  // namespace

Tensor softmax_model_loss(const Tensor& X, const Tensor& W, const std::vector<std::int64_t>& labels, Reduction r) {
  return loss_op(Design(X), W, labels, r);
}
Tensor softmax_model_loss(const CsrMatrix& X, const Tensor& W, const std::vector<std::int64_t>& labels, Reduction r) {
  return loss_op(Design(X), W, labels, r);
}
Tensor softmax_model_grad(const Tensor& X, const Tensor& W, const std::vector<std::int64_t>& labels, Reduction r) {
  return grad_public(Design(X), W, labels, r);
}
Tensor softmax_model_grad(const CsrMatrix& X, const Tensor& W, const std::vector<std::int64_t>& labels, Reduction r) {
  return grad_public(Design(X), W, labels, r);
}
Tensor softmax_model_hvp(const Tensor& X, const Tensor& W, const std::vector<std::int64_t>& labels, const Tensor& V,
                         Reduction r) {
  return hvp_public(Design(X), W, labels, V, r);
}
Tensor softmax_model_hvp(const CsrMatrix& X, const Tensor& W, const std::vector<std::int64_t>& labels, const Tensor& V,
                         Reduction r) {
  return hvp_public(Design(X), W, labels, V, r);
}

}  // namespace hyperad
