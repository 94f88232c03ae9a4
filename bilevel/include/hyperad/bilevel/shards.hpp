#pragma once
/// \file shards.hpp
/// Data parallelism as the bilevel layer sees it: a problem's examples spread over
/// processes. Every batch an objective is evaluated on (the full data set, or SID's
/// minibatch) is cut into a fixed number C of chunks by position; each process computes the
/// loss sums of its chunks, each chunk with its own copies of the replicated inputs every
/// chunk reads (w; per-example inputs such as poisoned rows: one copy per process);
/// and the chunks' sums are added over all processes in chunk order. The objective is then
/// the same value on every process, with the same bits on any number of processes (chunk k
/// is the same examples and the same ops whatever the process count), and every
/// hypergradient method runs on it unchanged: the backward of the sum hands every chunk the
/// cotangent, and the copies' gradients are summed over all chunks in order.
///
/// \code
/// // A data-parallel inner objective: the mean cross-entropy over `batch`.
/// Tensor L = bilevel::sum_over_batch(shards.get(), batch, {W, b}, [&](const TensorList& in, const Batch& part) {
///   return cross_entropy(matmul(rows(X, part), in[0]) + in[1], pick(y, part), Reduction::sum);
/// }) / static_cast<double>(batch.size());
/// \endcode
///
/// hyperad::mpi::data_parallel(comm, C) implements ExampleShards over MPI; the interface lets
/// the bilevel and problems layers stay free of MPI. Every process must evaluate the same
/// objectives in the same order (they are collective).
#include <cstdint>
#include <exception>
#include <functional>
#include <string>
#include <utility>

#include "hyperad/autodiff/tensor_list.hpp"
#include "hyperad/bilevel/sampling.hpp"

namespace hyperad::bilevel {

/// The differentiable collectives of data parallelism over a fixed number of chunks.
class ExampleShards {
 public:
  virtual ~ExampleShards() = default;
  /// C: how many chunks every batch is cut into (the same on every process).
  virtual std::int64_t chunks() const = 0;
  /// The chunks [first, second) of the C this process computes: contiguous shares in
  /// process order, covering [0, C) together, at least one per process.
  virtual std::pair<std::int64_t, std::int64_t> mine() const = 0;
  /// Collective: x, the same on every process, copied once per local chunk along a new
  /// leading axis, [c, ...]. Backward: sum_chunks of the copies' cotangents.
  virtual Tensor replicate_chunks(const Tensor& x) const = 0;
  /// Collective: x, the same on every process, as this process's copy (forward: x).
  /// Backward: the cotangents of every process's copy summed in process order.
  virtual Tensor replicate(const Tensor& x) const = 0;
  /// Collective: this process's per-chunk parts [c, ...] summed with every other process's
  /// in chunk order; the same value on every process. Backward: replicate_chunks. A process
  /// whose parts could not be computed passes its exception instead (`parts` undefined): it
  /// still takes part, and every process throws (this one its own error).
  virtual Tensor sum_chunks(const Tensor& parts, const std::exception_ptr& local_failure = nullptr) const = 0;
  /// e.g. "8 chunks over 2 MPI ranks" (for names and messages).
  virtual std::string describe() const = 0;
};

/// A chunk's loss: the sum over the examples of `part`, from this chunk's copies of the
/// inputs (in the order given to sum_over_batch: `inputs`, then `per_example`). A scalar. It must read every input, and
/// compute an empty part (0 from the same ops on no rows): every process's chunks must
/// record the same ops on the same copies, so that their backward passes make the same
/// collectives in the same order.
using PartSum = std::function<Tensor(const TensorList& inputs, const Batch& part)>;

/// Σ over the examples of `batch` of a loss, data-parallel over `shards`: the batch is cut
/// by position into shards->chunks() contiguous parts (part k: positions [k·B/C, (k+1)·B/C),
/// some empty when B < C), each of this process's parts summed by `part_sum`, and the parts'
/// sums added over all processes in chunk order. Each part reads its own copy of `inputs`
/// (replicated values every part reads: weights), so that their gradients are summed over
/// the chunks in chunk order. `per_example` are replicated inputs whose every element one
/// part at most reads — per-example parameters such as poisoned points, each row read by
/// the chunk of its example — and get one copy per process instead (C times less copying
/// and communication): their gradient on an element is the one part's term plus exact
/// zeros, the same bits on any number of processes. (An element read by two parts is
/// still exact, a + b being b + a; by three or more, its sum may round differently on
/// different process counts.) Without shards (null): part_sum(inputs + per_example, batch),
/// the single-process sum. Collective when shards is set (inputs.size() +
/// per_example.size() + 2 collectives forward, 1 + 2·(inputs.size() + per_example.size())
/// in its pullback); a failure of part_sum on one process makes every process throw.
Tensor sum_over_batch(const ExampleShards* shards, const Batch& batch, const TensorList& inputs,
                      const PartSum& part_sum, const TensorList& per_example = {});

}  // namespace hyperad::bilevel
