#pragma once
/// \file communicator.hpp
/// hyperad over MPI (the optional layer `hyperad::mpi`, built with -DHYPERAD_MPI=ON): the
/// program's MPI environment, communicators, how fixed chunks of data are dealt to ranks,
/// and the traffic each communicator has carried.
///
/// \code
/// int main(int argc, char** argv) {
///   hyperad::mpi::Environment env(argc, argv);          // MPI_Init_thread(FUNNELED)
///   const auto comm = hyperad::mpi::Communicator::world();
///   const auto mine = comm.chunks(16);                  // this rank's share of 16 chunks
///   ...
/// }
/// \endcode
///
/// Ranks call hyperad's collective ops (collectives.hpp) from the thread that initialized
/// MPI; the OpenMP kernels inside each rank keep working (threads "funneled").
#include <mpi.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

#include "hyperad/autodiff/errors.hpp"

namespace hyperad::mpi {

/// An MPI call that failed (with MPI's own message), or MPI used before it was
/// initialized or after it was finalized.
class MpiError : public Error {
 public:
  using Error::Error;
};

/// RAII for MPI itself: MPI_Init_thread with MPI_THREAD_FUNNELED on construction,
/// MPI_Finalize on destruction. If MPI is already initialized (by the program or another
/// library) it does neither. Throws MpiError when the MPI library cannot give funneled
/// threads.
class Environment {
 public:
  Environment(int& argc, char**& argv);
  ~Environment();
  Environment(const Environment&) = delete;
  Environment& operator=(const Environment&) = delete;

 private:
  bool owns_ = false;
};

/// Chunks [begin, end) of a fixed number of chunks: the ones one rank holds.
struct ChunkRange {
  std::int64_t begin = 0, end = 0;
  std::int64_t size() const { return end - begin; }
};

/// What a communicator has carried since it was created (or since reset_traffic()), as
/// seen by this rank: the collectives it took part in, the data values it contributed and
/// received, the small control values (shapes, replication fingerprints) exchanged to
/// check the operands, the bytes of serialized outcomes (task_parallel.hpp), and the wall
/// time spent inside those collectives (waiting for the other ranks included). Values are
/// tensor elements, whatever their dtype.
struct Traffic {
  std::uint64_t collectives = 0;
  std::uint64_t values_sent = 0, values_received = 0;
  std::uint64_t control_values = 0;
  std::uint64_t bytes_sent = 0, bytes_received = 0;
  double seconds = 0;
};

/// A group of ranks. A cheap handle: copies share the MPI communicator and its traffic
/// counters. hyperad works on a duplicate of the communicator it is given (MPI_Comm_dup:
/// its collectives never meet the program's own messages), freed with the last handle;
/// errors inside MPI on it are returned to hyperad (not fatal) and thrown as MpiError.
class Communicator {
 public:
  /// A duplicate of MPI_COMM_WORLD (collective: every rank calls it). Throws MpiError if MPI
  /// is not initialized.
  static Communicator world();
  /// A duplicate of a communicator the program made (collective over it).
  static Communicator wrap(MPI_Comm comm);

  int rank() const { return rank_; }
  int size() const { return size_; }
  MPI_Comm handle() const;

  /// Collective: ranks with the same `color` (≥ 0; a rank giving a negative one takes part,
  /// then gets a ValueError) form a new communicator, ordered by `key` (then by rank here).
  /// The new communicator is freed with its last handle.
  Communicator split(int color, int key) const;

  /// This rank's share of `total` fixed chunks: contiguous, dealt in rank order, the first
  /// total % size() ranks holding one more. Chunk c is then the same data on any number
  /// of ranks, which is what makes results independent of the rank count (collectives.hpp).
  /// ValueError for a negative total.
  ChunkRange chunks(std::int64_t total) const;

  Traffic traffic() const;
  void reset_traffic() const;

  using Clock = std::chrono::steady_clock;
  /// Counts one collective that began at `start` (used by the collectives; not needed by users).
  void count(std::uint64_t sent, std::uint64_t received, std::uint64_t control, Clock::time_point start) const;
  /// Counts one collective of serialized bytes that began at `start`.
  void count_bytes(std::uint64_t sent, std::uint64_t received, Clock::time_point start) const;

  struct State;

 private:
  explicit Communicator(std::shared_ptr<State> state);
  std::shared_ptr<State> state_;
  int rank_ = 0, size_ = 1;
};

/// Throws MpiError naming `what` and MPI's message when `code` is not MPI_SUCCESS.
void check(int code, const char* what);

/// Runs fn, the body of a program under mpirun, and returns its exit code. An exception
/// escaping fn on a rank is printed by that rank ("rank r of n: <message>" on stderr, r and
/// n in comm) and aborts every rank of the job (MPI_Abort with exit code `failure`). MPI has no way to
/// tell the other ranks of one rank's error: they would wait forever in the next collective
/// it never reaches. hyperad's collectives check their operands, so that a mismatch makes
/// every rank throw, but an error on one rank alone between collectives (a backward rule
/// that throws there, a NaN its FiniteCheckGuard finds, an exception of the program's
/// own) needs this. In a job of one rank the error is printed and `failure` returned.
///
/// \code
/// int main(int argc, char** argv) {
///   hyperad::mpi::Environment env(argc, argv);
///   const auto world = hyperad::mpi::Communicator::world();
///   return hyperad::mpi::run_or_abort(world, [&] { ...; return 0; });
/// }
/// \endcode
int run_or_abort(const Communicator& comm, const std::function<int()>& fn, int failure = 1);

}  // namespace hyperad::mpi
