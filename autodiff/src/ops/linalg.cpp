// Linear algebra ops. The one arithmetic primitive is matmul_t (GEMM with transpose
// flags); matmul and outer are built from it and from reshape/broadcasting, and
// transpose is a permute. Backward rules are written with these same ops.
#include "hyperad/autodiff/ops/linalg.hpp"

#include <fmt/format.h>

#include <string>

#include "hyperad/autodiff/ops/elementwise.hpp"
#include "hyperad/autodiff/ops/reduce.hpp"
#include "hyperad/autodiff/ops/shape_ops.hpp"
#include "hyperad/autodiff/record.hpp"
#include "hyperad/autodiff/tape.hpp"
#include "deferred.hpp"
#include "kernels/elementwise.hpp"
#include "kernels/gemm.hpp"
#include "kernels/permute.hpp"

namespace hyperad {

namespace {

std::string role(const char* which, const Tensor& t, bool transposed) {
  return fmt::format("{} operand {}{}", which, t.shape().str(), transposed ? " (transposed)" : "");
}

// A cotangent computed per batch for an operand that was shared (2-D) across the batch:
// the operand's gradient is the sum over the batch.
Tensor unbatch(Tensor g, const Shape& input) { return g.rank() == 3 && input.rank() == 2 ? sum(g, {0}) : g; }

}  // namespace

// C = op(A) op(B), with G = dL/dC, gives d op(A) = G op(B)ᵀ and d op(B) = op(A)ᵀ G; when an
// operand is itself transposed its gradient is the transpose of that, which is again a
// product of the saved operands and G with suitable flags:
//   ta tb | dA          | dB
//   0  0  | G Bᵀ        | Aᵀ G
//   0  1  | G B         | Gᵀ A
//   1  0  | B Gᵀ        | A G
//   1  1  | Bᵀ Gᵀ       | Gᵀ Aᵀ
namespace {

// matmul_t, its result computed (compute) or left to the caller to defer.
Tensor product(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b, bool compute) {
  static const OpDef def{"matmul_t", [](Backward& bw) {
                           const Tensor& G = bw.grad_out();
                           const Tensor& A = bw.saved(0);
                           const Tensor& B = bw.saved(1);
                           const bool ta = bw.integer(0) != 0, tb = bw.integer(1) != 0;
                           if (bw.needs(0)) {
                             Tensor g = ta ? matmul_t(B, G, tb, true) : matmul_t(G, B, false, !tb);
                             bw.accumulate(0, unbatch(std::move(g), bw.input_shape(0)));
                           }
                           if (bw.needs(1)) {
                             Tensor g = tb ? matmul_t(G, A, true, ta) : matmul_t(A, G, !ta, false);
                             bw.accumulate(1, unbatch(std::move(g), bw.input_shape(1)));
                           }
                         }};
  const char* op = "matmul_t";
  kernels::require_defined(a, op, "first operand");
  kernels::require_defined(b, op, "second operand");
  kernels::require_same_dtype(a, b, op);
  const int ra = a.rank(), rb = b.rank();
  if (ra < 2 || ra > 3 || rb < 2 || rb > 3)
    throw ShapeError(fmt::format("{}: expects 2-D or batched 3-D operands, got {} vs {}", op,
                                 role("first", a, transpose_a), role("second", b, transpose_b)));
  const std::int64_t M = a.size(transpose_a ? -1 : -2), Ka = a.size(transpose_a ? -2 : -1);
  const std::int64_t Kb = b.size(transpose_b ? -1 : -2), N = b.size(transpose_b ? -2 : -1);
  if (Ka != Kb)
    throw ShapeError(fmt::format("{}: inner dimensions differ: {} vs {}", op, role("first", a, transpose_a),
                                 role("second", b, transpose_b)));
  if (ra == 3 && rb == 3 && a.size(0) != b.size(0))
    throw ShapeError(fmt::format("{}: batch sizes differ: {} vs {}", op, role("first", a, transpose_a),
                                 role("second", b, transpose_b)));

  // [Bt, m, k] @ op([k, n]) is one GEMM of the rows of all batches stacked: [Bt*m, k].
  // (Reshapes alias the storage; the backward then needs no batch sum either.)
  if (ra == 3 && rb == 2 && !transpose_a) {
    Tensor y = matmul_t(reshape(a, Shape{a.size(0) * M, Ka}), b, false, transpose_b);
    return reshape(y, Shape{a.size(0), M, N});
  }

  const std::int64_t batch = ra == 3 ? a.size(0) : (rb == 3 ? b.size(0) : 1);
  const bool batched = ra == 3 || rb == 3;
  Tensor out(batched ? Shape{batch, M, N} : Shape{M, N}, a.dtype());
  if (compute) dispatch(a.dtype(), [&]<class T>() {
    const T* ap = a.data<T>();
    const T* bp = b.data<T>();
    T* cp = out.mutable_data<T>();
    // A 2-D operand is shared across the batch: its pointer does not advance.
    const std::int64_t sa = ra == 3 ? M * Ka : 0, sb = rb == 3 ? Ka * N : 0;
    for (std::int64_t i = 0; i < batch; ++i)
      kernels::gemm<T>(transpose_a, transpose_b, M, N, Ka, ap + i * sa, bp + i * sb, cp + i * M * N);
  });
  OpAttrs at;
  at.integer = {transpose_a ? 1 : 0, transpose_b ? 1 : 0};
  return record(def, std::move(out), {&a, &b}, {saved_for(a, b), saved_for(b, a)}, std::move(at));
}

// The deferred X·w of matmul: the same kernel call as matmul_t's for [n, d]·[d, 1].
void fill_matrix_vector(const Tensor& x, const Tensor& w, void* out) {
  dispatch(x.dtype(), [&]<class T>() {
    kernels::gemm<T>(false, false, x.size(0), 1, x.size(1), x.data<T>(), w.data<T>(), static_cast<T*>(out));
  });
}

// Products below this many matrix elements are computed at once: deferring costs about as
// much as the pass it might save.
constexpr std::int64_t kDeferMin = 4096;

}  // namespace

Tensor matmul_t(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b) {
  return product(a, b, transpose_a, transpose_b, true);
}

Tensor matmul(const Tensor& a, const Tensor& b) {
  const char* op = "matmul";
  kernels::require_defined(a, op, "first operand");
  kernels::require_defined(b, op, "second operand");
  kernels::require_same_dtype(a, b, op);
  const int ra = a.rank(), rb = b.rank();
  const auto shapes = [&] {
    return fmt::format("first operand {} vs second operand {}", a.shape().str(), b.shape().str());
  };
  if (ra < 1 || ra > 3 || rb < 1 || rb > 3)
    throw ShapeError(fmt::format("{}: unsupported ranks {} and {} (expects 1-D, 2-D or batched 3-D): {}", op,
                                 ra, rb, shapes()));
  // The contracted axis: the last of a, and the only (1-D) or second to last of b.
  const std::int64_t ka = a.size(-1), kb = b.size(rb == 1 ? 0 : -2);
  if (ka != kb) throw ShapeError(fmt::format("{}: inner dimensions differ: {}", op, shapes()));
  if (ra == 3 && rb == 3 && a.size(0) != b.size(0))
    throw ShapeError(fmt::format("{}: batch sizes differ: {}", op, shapes()));

  // Vectors become a row (first operand) or a column (second operand), and the unit axis
  // is dropped from the result again. Reshapes are free: they alias the storage.
  // A matrix times a vector is deferred (deferred.hpp): a loss given it as a temporary
  // computes it in its own pass over the matrix. Not with finite checks on (they read it).
  const bool defer = ra == 2 && rb == 1 && a.numel() >= kDeferMin && !Tape::current().checking_finite();
  const detail::TapeMark before = defer ? detail::Deferral::mark() : detail::TapeMark{};
  const Tensor a2 = ra == 1 ? reshape(a, Shape{1, ka}) : a;
  const Tensor b2 = rb == 1 ? reshape(b, Shape{kb, 1}) : b;
  Tensor y = product(a2, b2, false, false, !defer);
  if (ra > 1 && rb > 1) return y;
  std::vector<std::int64_t> dims = y.shape().vec();
  if (rb == 1) dims.erase(dims.end() - 1);
  if (ra == 1) dims.erase(dims.end() - 1 - (rb == 1 ? 0 : 1));
  Tensor z = reshape(y, Shape(dims));
  if (defer) detail::Deferral::defer(z, a, b, fill_matrix_vector, detail::DeferredKind::matrix_vector, before);
  return z;
}

Tensor permute(const Tensor& x, const std::vector<int>& perm) {
  // The cotangent moves back with the inverse permutation.
  static const OpDef def{"permute", [](Backward& bw) {
                           const auto& p = bw.ints();
                           std::vector<int> inv(p.size());
                           for (std::size_t i = 0; i < p.size(); ++i)
                             inv[static_cast<std::size_t>(p[i])] = static_cast<int>(i);
                           bw.accumulate(0, permute(bw.grad_out(), inv));
                         }};
  kernels::require_defined(x, "permute", "input");
  const int r = x.rank();
  bool valid = static_cast<int>(perm.size()) == r;
  std::vector<bool> seen(static_cast<std::size_t>(r), false);
  for (std::size_t i = 0; valid && i < perm.size(); ++i) {
    valid = perm[i] >= 0 && perm[i] < r && !seen[static_cast<std::size_t>(perm[i])];
    if (valid) seen[static_cast<std::size_t>(perm[i])] = true;
  }
  if (!valid)
    throw ValueError(
        fmt::format("permute: [{}] is not a permutation of the axes 0..{} of a tensor of shape {}",
                    fmt::join(perm, ", "), r - 1, x.shape().str()));
  bool identity = true;
  for (int i = 0; i < r; ++i) identity = identity && perm[static_cast<std::size_t>(i)] == i;
  if (identity) return x;
  OpAttrs at;
  at.ints.assign(perm.begin(), perm.end());
  return record(def, kernels::permute(x, perm), {&x}, {}, std::move(at));
}

Tensor transpose(const Tensor& x) {
  kernels::require_defined(x, "transpose", "input");
  if (x.rank() < 2)
    throw ShapeError(fmt::format("transpose: needs a tensor of rank >= 2, got input {}", x.shape().str()));
  std::vector<int> perm(static_cast<std::size_t>(x.rank()));
  for (int i = 0; i < x.rank(); ++i) perm[static_cast<std::size_t>(i)] = i;
  std::swap(perm[perm.size() - 1], perm[perm.size() - 2]);
  return permute(x, perm);
}

Tensor outer(const Tensor& a, const Tensor& b) {
  kernels::require_defined(a, "outer", "first operand");
  kernels::require_defined(b, "outer", "second operand");
  kernels::require_same_dtype(a, b, "outer");
  if (a.rank() != 1 || b.rank() != 1)
    throw ShapeError(fmt::format("outer: expects two vectors, got first operand {} and second operand {}",
                                 a.shape().str(), b.shape().str()));
  // [m, 1] * [1, n] broadcasts to [m, n]; the engine sums the cotangents back.
  return mul(reshape(a, Shape{a.size(0), 1}), reshape(b, Shape{1, b.size(0)}));
}

}  // namespace hyperad
