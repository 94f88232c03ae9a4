// Data-parallel hyperparameter optimization over MPI (hyperad::mpi, -DHYPERAD_MPI=ON):
// logistic regression with one ℓ2 strength per feature, the 4800 training and validation
// examples cut into 16 fixed chunks dealt to the ranks, w and λ replicated. Every rank
// runs the same program; rank 0 prints. Run with
//
//   mpirun -np 2 build/release/examples/mpi/data_parallel_logreg
//
// It checks itself: the AID-CG hypergradient on all ranks equals, bit for bit, the one a
// single rank computes over all chunks; the validation loss falls under hypergradient
// descent. Exits non-zero otherwise.
#include <fmt/format.h>

#include "hyperad/bilevel.hpp"
#include "hyperad/hyperad.hpp"
#include "hyperad/mpi.hpp"

using namespace hyperad;
using namespace hyperad::bilevel;

namespace {
constexpr std::int64_t kChunks = 16;
}  // namespace

int main(int argc, char** argv) {
  mpi::Environment env(argc, argv);
  const mpi::Communicator world = mpi::Communicator::world();
  // An error on one rank alone aborts the job (the others would wait for it forever).
  return mpi::run_or_abort(world, [&] {
    const bool root = world.rank() == 0;

    // The same data on every rank (one seed); each rank keeps its chunks only.
    Generator gen(3);
    const std::int64_t n = 4800, d = 20;
    const Tensor w_true = randn({d}, gen) * 2.0;
    const double scale = 1.0 / std::sqrt(double(d));
    const Tensor X_all = randn({n, d}, gen) * scale, Xv_all = randn({n, d}, gen) * scale;
    const Tensor y_all = sign(matmul(X_all, w_true) + 0.3 * randn({n}, gen));
    const Tensor yv_all = sign(matmul(Xv_all, w_true) + 0.3 * randn({n}, gen));
    const double step = 1.0 / (squared_norm(X_all).item() / (4.0 * double(n)) + 1.0);

    const auto problem_on = [&](const mpi::Communicator& comm) {
      const Tensor X = mpi::local_chunks(X_all, kChunks, comm), y = mpi::local_chunks(y_all, kChunks, comm);
      const Tensor Xv = mpi::local_chunks(Xv_all, kChunks, comm), yv = mpi::local_chunks(yv_all, kChunks, comm);
      // Each data term: the mean over every rank's examples (each chunk with its own copy of
      // w, the chunks' sums added over the ranks in chunk order); the penalty is replicated.
      return Problem::gradient_descent(
          [=](const TensorList& w, const TensorList& lam) {
            return mpi::linear_model_mean_loss(X, y, w[0], LinearLoss::logistic, n, comm) +
                   0.5 * sum(exp(lam[0]) * square(w[0]));
          },
          step,
          [=](const TensorList& w, const TensorList&) {
            return mpi::linear_model_mean_loss(Xv, yv, w[0], LinearLoss::logistic, n, comm);
          },
          {zeros({d})});
    };
    const Problem problem = problem_on(world);
    TensorList lam{full({d}, -2.0)};

    // One hypergradient on all ranks, and the same on each rank alone (a communicator of one).
    AID cg({.inner_steps = 200, .solver = linsolve::cg(), .linear_steps = 50,
            .linear_tolerance = Tolerance::relative(1e-10)});
    world.reset_traffic();
    const Hypergradient h = cg.hypergradient(problem, lam);
    const mpi::Traffic t = world.traffic();
    const mpi::Communicator self = world.split(world.rank(), 0);
    const Hypergradient alone = cg.hypergradient(problem_on(self), lam);
    const bool same = h.grad[0].to_vector() == alone.grad[0].to_vector();
    if (root)
      fmt::print("{} ranks, {} chunks of {} examples each; rank 0 holds {}\n"
                 "AID-CG: {:.1f} ms on {} ranks, {:.1f} ms on one; equal bit for bit: {}\n"
                 "traffic of rank 0: {} collectives, {} values sent, {} received\n\n",
                 world.size(), kChunks, n / kChunks, world.chunks(kChunks).size(), 1e3 * h.diagnostics.seconds,
                 world.size(), 1e3 * alone.diagnostics.seconds, same ? "yes" : "NO", t.collectives, t.values_sent,
                 t.values_received);

    // Hypergradient descent on λ, warm-started AID-CG, every rank stepping alike.
    AID warm({.inner_steps = 100, .solver = linsolve::cg(), .linear_steps = 30,
              .warm_start = WarmStart::inner_and_linear});
    double first = 0, last = 0;
    if (root) fmt::print("{:>5} {:>16}\n", "step", "validation loss");
    for (int s = 0; s <= 30; ++s) {
      const Hypergradient g = warm.hypergradient(problem, lam);
      if (s == 0) first = g.objective;
      last = g.objective;
      if (root && s % 10 == 0) fmt::print("{:>5} {:>16.6f}\n", s, g.objective);
      lam[0] = lam[0] - 20.0 * g.grad[0];
    }
    const bool ok = same && last < first;
    if (root) fmt::print("\nvalidation loss {:.5f} -> {:.5f}: {}\n", first, last, ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
  });
}
