#include "ranks.hpp"

#include <cstdlib>

#ifdef HYPERAD_CLI_MPI
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
      out.rank = job.world.rank();
      out.size = job.world.size();
      if (out.size > 1) out.exchange = mpi::task_parallel(job.world);
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
