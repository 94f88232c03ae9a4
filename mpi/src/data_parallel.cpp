#include "hyperad/mpi/data_parallel.hpp"

#include <algorithm>
#include <exception>

#include <fmt/format.h>

#include "hyperad/autodiff/ops/elementwise.hpp"
#include "hyperad/autodiff/ops/linalg.hpp"
#include "hyperad/autodiff/ops/loss.hpp"
#include "hyperad/autodiff/ops/reduce.hpp"
#include "hyperad/autodiff/ops/shape_ops.hpp"
#include "collectives_internal.hpp"

namespace hyperad::mpi {

Tensor linear_model_mean_loss(const Tensor& X, const Tensor& y, const Tensor& w, LinearLoss loss, std::int64_t total,
                              const Communicator& comm) {
  static constexpr const char* op = "mpi::linear_model_mean_loss";
  // Every rank makes the same two collectives whatever fails locally: a rank whose chunks
  // do not fit still replicates w (for no chunks) and then reports its error through the
  // sum, so that all ranks throw instead of waiting for it.
  const bool fits = X.defined() && y.defined() && w.defined() && X.rank() == 3 && y.rank() == 2 && w.rank() == 1 &&
                    y.size(0) == X.size(0) && y.size(1) == X.size(1) && w.size(0) == X.size(2) && total >= 1;
  const Tensor copies = replicate_chunks(w, fits ? X.size(0) : 0, comm);  // [c, d], one per chunk
  std::exception_ptr error;
  Tensor per_chunk;
  try {
    if (total < 1) throw ValueError(fmt::format("{}: total must be >= 1 example, got {}", op, total));
    if (!fits)
      throw ShapeError(fmt::format("{}: expected X [c, n_c, d], y [c, n_c] and w [d], got {}, {} and {}", op,
                                   X.defined() ? X.shape().str() : "undefined",
                                   y.defined() ? y.shape().str() : "undefined",
                                   w.defined() ? w.shape().str() : "undefined"));
    const Tensor z = squeeze(matmul(X, unsqueeze(copies, 2)), 2);  // [c, n_c]
    const Tensor per_example =
        loss == LinearLoss::logistic ? logistic_loss(z, y, Reduction::none) : mse_loss(z, y, Reduction::none);
    per_chunk = sum(per_example, {1});
  } catch (...) {
    error = std::current_exception();
  }
  return detail::all_sum_chunks_or_fail(per_chunk, error, comm) * (1.0 / static_cast<double>(std::max<std::int64_t>(total, 1)));
}

}  // namespace hyperad::mpi
