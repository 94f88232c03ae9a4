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

namespace {

class RankShards final : public bilevel::ExampleShards {
 public:
  RankShards(Communicator comm, std::int64_t chunks) : comm_(std::move(comm)), chunks_(chunks) {}

  std::int64_t chunks() const override { return chunks_; }
  std::pair<std::int64_t, std::int64_t> mine() const override {
    const ChunkRange r = comm_.chunks(chunks_);
    return {r.begin, r.end};
  }
  Tensor replicate_chunks(const Tensor& x) const override {
    return mpi::replicate_chunks(x, comm_.chunks(chunks_).size(), comm_);
  }
  Tensor replicate(const Tensor& x) const override { return mpi::replicate(x, comm_); }
  Tensor sum_chunks(const Tensor& parts, const std::exception_ptr& local_failure) const override {
    return detail::all_sum_chunks_or_fail(parts, local_failure, comm_);
  }
  std::string describe() const override {
    return fmt::format("{} chunks over {} MPI rank{}", chunks_, comm_.size(), comm_.size() == 1 ? "" : "s");
  }

 private:
  Communicator comm_;
  std::int64_t chunks_;
};

}  // namespace

std::shared_ptr<const bilevel::ExampleShards> data_parallel(const Communicator& comm, std::int64_t chunks) {
  if (chunks < comm.size())
    throw ValueError(fmt::format("mpi::data_parallel: {} chunk{} cannot be dealt to {} ranks: every rank needs one at "
                                 "least (its backward passes must make the same collectives as the others')",
                                 chunks, chunks == 1 ? "" : "s", comm.size()));
  return std::make_shared<const RankShards>(comm, chunks);
}

}  // namespace hyperad::mpi
