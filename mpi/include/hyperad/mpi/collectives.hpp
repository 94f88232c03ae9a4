#pragma once
/// \file collectives.hpp
/// Differentiable collectives: the two ops that make a bilevel problem data-parallel, each
/// the other's backward rule, so that derivatives of every order (ITD's reverse pass, AID's
/// Hessian-vector products) cross ranks correctly.
///
/// A value is *replicated* when every rank holds the same one (w, λ, a loss every rank
/// computes from replicated values); it is *local* when each rank holds its own part (its
/// chunks of the data, their gradients). `replicate_chunks` turns a replicated value into
/// local per-chunk copies (the backward sums the copies' cotangents over all ranks);
/// `all_sum_chunks` sums local per-chunk parts into a replicated value (the backward hands
/// every chunk the replicated cotangent). A data-parallel gradient step is then
///
/// \code
/// // X_c: this rank's chunks of the data, [c, n_c, d]; w replicated, [d].
/// Tensor w_c = mpi::replicate_chunks(w, c, comm);                    // [c, d]
/// Tensor z = squeeze(matmul(X_c, unsqueeze(w_c, 2)), 2);             // [c, n_c]
/// Tensor L = mpi::all_sum_chunks(sum(logistic_loss(z, y_c, Reduction::none), 1), comm) / n;
/// Φ(w) = w − η·∇_w L                                                  // replicated
/// \endcode
///
/// and every hypergradient method runs on it unchanged, each rank holding 1/size of the
/// data. **Determinism across rank counts**: the data are cut into a fixed number of chunks
/// (Communicator::chunks deals them to ranks), each chunk's part is computed alone, and
/// `all_sum_chunks` adds the parts of all chunks in chunk order on every rank. A result
/// therefore does not depend on how many ranks share the chunks: `mpirun -np 1, 2, 4` give
/// the same bits (tests/mpi/test_data_parallel.cpp asserts it).
///
/// Every rank must call the same collectives in the same order (record the same ops), from
/// the thread that initialized MPI and outside OpenMP parallel regions (a collective called
/// inside one throws MpiError on every thread before sending anything).
/// Operands are checked across ranks (one small exchange each): trailing shapes and
/// dtypes must agree, and a value passed to `replicate_chunks` (or a cotangent reaching
/// `all_sum_chunks`' backward) must be bitwise the same on every rank; otherwise every
/// rank throws the same ShapeError, DtypeError or ValueError, naming the ranks involved.
#include <cstdint>

#include "hyperad/autodiff/tensor.hpp"
#include "hyperad/mpi/communicator.hpp"

namespace hyperad::mpi {

/// Σ over every rank's chunks: x is this rank's [c_local, ...] (any c_local ≥ 0, the
/// trailing shape the same on all ranks); the result, of the trailing shape, is the sum of
/// all ranks' chunks in rank order, then chunk order — the same bits on every rank, and on
/// any number of ranks when the chunks are dealt contiguously in rank order
/// (Communicator::chunks, local_chunks). Backward: replicate_chunks of the cotangent.
Tensor all_sum_chunks(const Tensor& x, const Communicator& comm);

/// x, replicated, copied `chunks` times along a new leading axis: [chunks, ...]. No
/// communication forward except the replication check. Backward: all_sum_chunks of the
/// cotangent (each copy's part, summed over all ranks' chunks in order).
Tensor replicate_chunks(const Tensor& x, std::int64_t chunks, const Communicator& comm);

/// Σ over ranks of x (same shape on every rank), in rank order: all_sum_chunks of x as
/// one chunk. Its result depends on the rank count when the parts do (use chunks for
/// results independent of it). Backward: replicate.
Tensor all_sum(const Tensor& x, const Communicator& comm);

/// x, replicated, as a local value (forward: x itself); backward: all_sum of the
/// cotangents, the Σ over ranks of every rank's use of x.
Tensor replicate(const Tensor& x, const Communicator& comm);

/// This rank's chunks of a data set every rank holds: `rows` [n, ...] cut into `chunks`
/// equal blocks of n / chunks rows (chunk k = rows [k·n/chunks, (k+1)·n/chunks)), and the
/// blocks of Communicator::chunks(chunks) returned as [c_local, n / chunks, ...]. No
/// communication. ValueError when chunks < 1 or does not divide n (a chunk must be the
/// same rows on any rank count); ShapeError for a scalar.
Tensor local_chunks(const Tensor& rows, std::int64_t chunks, const Communicator& comm);

/// The bitwise replication check of replicate_chunks and of all_sum_chunks' backward (on
/// by default; one exchange of a 64-bit fingerprint per call). Turn it off only where ranks
/// may legitimately round differently (different CPUs in one job).
void set_replication_check(bool on);
bool replication_check();

}  // namespace hyperad::mpi
