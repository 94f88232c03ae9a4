// mpi::run_or_abort's probe (tests/mpi/check_abort.cmake runs it under mpirun): the last
// rank fails inside a backward rule of its own, while the others go on to mpi::all_sum,
// which the failed rank never reaches. Without run_or_abort the others would wait there
// forever. Should run_or_abort return on more than one rank (it must abort), the probe
// says so, and the script fails.
#include <cstdio>

#include "hyperad/hyperad.hpp"
#include "hyperad/mpi/collectives.hpp"

using namespace hyperad;

int main(int argc, char** argv) {
  mpi::Environment env(argc, argv);
  const mpi::Communicator world = mpi::Communicator::world();
  const int code = mpi::run_or_abort(
      world,
      [&] {
        const bool fails = world.rank() == world.size() - 1;
        static const OpDef fragile{"probe_fragile", [](Backward& b) {
                                     if (b.integer(0)) throw ValueError("probe_fragile: backward failed on this rank");
                                     b.accumulate(0, b.grad_out());
                                   }};
        OpAttrs attrs;
        attrs.integer[0] = fails;
        const Tensor x = full({3}, 1.0).requires_grad_();
        const Tensor y = record(fragile, x.detach().clone(), {&x}, {}, std::move(attrs));
        (void)grad(sum(y), {x});                                         // throws on the last rank
        (void)grad(mpi::all_sum(sum(square(x)), world), {x});            // the others wait here
        return 0;
      },
      3);
  if (code != 0 && world.size() > 1) std::fprintf(stderr, "run_or_abort returned %d instead of aborting\n", code);
  return code;
}
