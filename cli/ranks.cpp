#include "ranks.hpp"

#include <cstdlib>

#ifdef HYPERAD_CLI_MPI
#include "hyperad/mpi/data_parallel.hpp"
#include "hyperad/mpi/task_parallel.hpp"
#endif

namespace hyperad::cli {

namespace {

// Open MPI's launcher, and the PMI / PMIx ones of other MPIs, set these in every rank.
bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE"})
    if (std::getenv(v)) return true;
  return false;
}

#ifdef HYPERAD_CLI_MPI
// MPI for the tool's lifetime: the communicator is freed before MPI is finalized (members
// are destroyed in reverse order).
struct Job {
  int argc = 0;
  char** argv = nullptr;
  mpi::Environment env{argc, argv};
  mpi::Communicator world = mpi::Communicator::world();
};
#endif

}  // namespace

const Ranks& ranks() {
  static const Ranks r = [] {
    Ranks out;
#ifdef HYPERAD_CLI_MPI
    if (launched_by_mpi()) {
      static Job job;
      out.launched = true;
      out.rank = job.world.rank();
      out.size = job.world.size();
      out.exchange = mpi::task_parallel(job.world);  // on one rank too: the same defaults, the same numbers
      out.data_parallel = [](std::int64_t chunks) { return mpi::data_parallel(job.world, chunks); };
      out.same_everywhere = [](bool mine) {  // max of v and of −v: all equal when max(−v) = −max(v)
        const int v[2] = {mine ? 1 : 0, mine ? -1 : 0};
        int top[2] = {0, 0};
        mpi::check(MPI_Allreduce(v, top, 2, MPI_INT, MPI_MAX, job.world.handle()), "hyperad");
        return top[1] == -top[0];
      };
    }
#endif
    return out;
  }();
  return r;
}

void abort_job_on_failure(int code) {
#ifdef HYPERAD_CLI_MPI
  if (launched_by_mpi() && ranks().size > 1) MPI_Abort(MPI_COMM_WORLD, code);
#else
  (void)code;
#endif
}

}  // namespace hyperad::cli
