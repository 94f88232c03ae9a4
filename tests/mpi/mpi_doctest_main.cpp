// The doctest main of the MPI tests (tests/mpi/, run by ctest under mpirun with 1, 2 and 4
// ranks): MPI is initialized around doctest, every rank runs every test case (the cases
// call collectives, so all ranks must), and the program fails on every rank when any
// rank failed.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "hyperad/mpi/communicator.hpp"

int main(int argc, char** argv) {
  hyperad::mpi::Environment env(argc, argv);
  const hyperad::mpi::Communicator world = hyperad::mpi::Communicator::world();
  doctest::Context context(argc, argv);
  if (world.rank() != 0) context.setOption("minimal", true);  // rank 0 prints the summary; others only failures
  int rc = context.run();
  if (context.shouldExit()) return rc;
  int worst = 0;
  hyperad::mpi::check(MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, world.handle()), "the tests' summary");
  return worst;
}
