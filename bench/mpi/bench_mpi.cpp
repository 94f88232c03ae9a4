// Data-parallel hypergradients over MPI (hyperad::mpi): 2 ranks × 1 thread against 1 rank ×
// 2 threads, side by side in one job, and what the time is made of.
//
// Problem: logistic regression with one ℓ2 strength e^{λ_j} per feature, n training and n
// validation examples with d features, cut into C fixed chunks (mpi::local_chunks,
// mpi::linear_model_mean_loss), AID-CG with t inner steps and at most K CG iterations.
// Each rep times, on rank 0:
//
//   ranks    the data-parallel hypergradient on all ranks, one OpenMP thread each;
//   threads  the same problem on rank 0 alone (its own communicator, all C chunks) with
//            as many threads as there are ranks, while the other ranks wait without
//            spinning (MPI_Ibarrier polled every millisecond);
//   one      the same on rank 0 alone with one thread (the unit of both speed-ups);
//   plain    (poisoning) the problem without chunks (no shards) on rank 0, with as many
//            threads as there are ranks and with one: what one process runs without MPI;
//
// alternating, so both see the same machine load. Reported: medians, the median of the
// per-rep ratios threads / ranks (> 1: the ranks are faster), the share of the ranks' time
// spent inside collectives (waiting included), the traffic, and this machine's MPI latency
// and bandwidth (allgather of 8 B and of 8 MB) for the model in docs/RESULTS.md.
//
//   mpirun -np 2 build/bench/bench/bench_mpi [--problem logreg|poisoning] [--n N] [--d D] [--train N]
//        [--chunks C] [--t T] [--k K] [--reps R]
//        writes bench/results/mpi.csv (logreg) or mpi_poisoning.csv (rank 0)
#include <omp.h>

#include <chrono>
#include <cmath>
#include <optional>
#include <thread>
#include <vector>

#include "bench_util.hpp"
#include "hyperad/autodiff/runtime.hpp"
#include "hyperad/bilevel.hpp"
#include "hyperad/hyperad.hpp"
#include "hyperad/mpi.hpp"
#include "hyperad/problems/registry.hpp"

using namespace hyperad;
namespace hb = hyperad::bilevel;

namespace {

// Waits for every rank of `comm` without spinning a core (an MPI barrier busy-polls).
void quiet_barrier(const mpi::Communicator& comm) {
  MPI_Request r;
  mpi::check(MPI_Ibarrier(comm.handle(), &r), "bench_mpi");
  for (int done = 0;;) {
    mpi::check(MPI_Test(&r, &done, MPI_STATUS_IGNORE), "bench_mpi");
    if (done) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// Median time of an allgather of `bytes` per rank, in seconds.
double allgather_seconds(const mpi::Communicator& comm, std::size_t bytes, int reps) {
  std::vector<char> mine(bytes, 1), all(bytes * static_cast<std::size_t>(comm.size()));
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    mpi::check(MPI_Barrier(comm.handle()), "bench_mpi");
    const auto a = std::chrono::steady_clock::now();
    mpi::check(MPI_Allgather(mine.data(), static_cast<int>(bytes), MPI_CHAR, all.data(), static_cast<int>(bytes),
                             MPI_CHAR, comm.handle()),
               "bench_mpi");
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count());
  }
  return bench::median(t);
}

}  // namespace

int main(int argc, char** argv) {
  mpi::Environment env(argc, argv);
  const mpi::Communicator world = mpi::Communicator::world();
  const bool root = world.rank() == 0;
  std::int64_t n = 100000, d = 100, train = 1000, chunks = 16;
  int t = 20, K = 10, reps = 5;
  std::string problem = "logreg";
  bench::parse_flags(argc, argv, {{"--problem", &problem}, {"--n", &n}, {"--d", &d}, {"--train", &train},
                                  {"--chunks", &chunks}, {"--t", &t}, {"--k", &K}, {"--reps", &reps}});
  if (problem != "logreg" && problem != "poisoning") {
    if (root) fmt::print(stderr, "bench_mpi: --problem is logreg or poisoning, got '{}'\n", problem);
    return 2;
  }
  const bool poisoning = problem == "poisoning";

  // logreg: the same data on every rank (one seed); rows of norm ≈ 1.
  Tensor X_all, Xv_all, y_all, yv_all;
  double step = 0;
  if (!poisoning) {
    Generator g(21);
    const Tensor w_true = randn({d}, g) * 3.0;
    X_all = randn({n, d}, g) * (1.0 / std::sqrt(double(d))), Xv_all = randn({n, d}, g) * (1.0 / std::sqrt(double(d)));
    y_all = sign(matmul(X_all, w_true) + 0.5 * randn({n}, g));
    yv_all = sign(matmul(Xv_all, w_true) + 0.5 * randn({n}, g));
    step = 1.0 / (squared_norm(X_all).item() / (4.0 * double(n)) + 1.0);
  }
  TensorList lambda;
  const auto problem_on = [&](const mpi::Communicator& comm) {
    if (poisoning) {
      problems::Instance inst = problems::make_problem(
          "poisoning", {.options = {{"train_size", std::to_string(train)}}, .shards = mpi::data_parallel(comm, chunks)});
      lambda = inst.lambda0;
      return inst.problem;
    }
    const Tensor X = mpi::local_chunks(X_all, chunks, comm), y = mpi::local_chunks(y_all, chunks, comm);
    const Tensor Xv = mpi::local_chunks(Xv_all, chunks, comm), yv = mpi::local_chunks(yv_all, chunks, comm);
    Generator gl(4);
    lambda = {-1.0 - rand({d}, gl)};
    return hb::Problem::gradient_descent(
        [=](const TensorList& w, const TensorList& l) {
          return mpi::linear_model_mean_loss(X, y, w[0], LinearLoss::logistic, n, comm) + 0.5 * sum(exp(l[0]) * square(w[0]));
        },
        step,
        [=](const TensorList& w, const TensorList&) {
          return mpi::linear_model_mean_loss(Xv, yv, w[0], LinearLoss::logistic, n, comm);
        },
        {zeros({d})});
  };
  const hb::Problem spread = problem_on(world);
  const mpi::Communicator self = world.split(world.rank(), 0);
  const hb::Problem alone = problem_on(self);
  std::optional<hb::Problem> plain;
  if (poisoning) plain = problems::make_problem("poisoning", {.options = {{"train_size", std::to_string(train)}}}).problem;
  hb::AID aid({.inner_steps = t, .solver = linsolve::cg(), .linear_steps = K,
               .linear_tolerance = Tolerance::relative(1e-10)});

  std::vector<double> ranks_s, threads_s, one_s, plain_s, plain_one_s, ratio, comm_share, one_over_ranks, one_over_threads;
  int used_threads = 0;       // what the 2-thread runs' kernels used at their end (thread plans)
  std::uint64_t stalls = 0;  // and the stalls they saw
  mpi::Traffic traffic;
  std::vector<double> h_ranks, h_alone;
  for (int r = -1; r < reps; ++r) {  // r = -1: warm-up
    runtime::set_num_threads(1);
    omp_set_num_threads(1);
    quiet_barrier(world);
    world.reset_traffic();
    const auto a = std::chrono::steady_clock::now();
    h_ranks = aid.hypergradient(spread, lambda).grad[0].to_vector();
    const double ranks_time = std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count();
    traffic = world.traffic();
    // The ranks' share in collectives: the largest over the ranks.
    double share = traffic.seconds / ranks_time, worst = 0;
    mpi::check(MPI_Allreduce(&share, &worst, 1, MPI_DOUBLE, MPI_MAX, world.handle()), "bench_mpi");
    quiet_barrier(world);
    double threads_time = 0, one_time = 0, plain_time = 0, plain_one_time = 0;
    if (root) {
      for (int threads : {world.size(), 1}) {
        runtime::set_num_threads(threads);
        omp_set_num_threads(threads);
        const auto b = std::chrono::steady_clock::now();
        const hb::Hypergradient h = aid.hypergradient(alone, lambda);
        (threads == 1 ? one_time : threads_time) = std::chrono::duration<double>(std::chrono::steady_clock::now() - b).count();
        h_alone = h.grad[0].to_vector();
        if (threads > 1) used_threads = h.diagnostics.threads, stalls += h.diagnostics.parallel_stalls;
      }
      for (int threads : {world.size(), 1}) {
        if (!plain) break;
        runtime::set_num_threads(threads);
        omp_set_num_threads(threads);
        const auto c = std::chrono::steady_clock::now();
        aid.hypergradient(*plain, lambda);
        (threads == 1 ? plain_one_time : plain_time) =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - c).count();
      }
    }
    quiet_barrier(world);
    if (r < 0) continue;
    ranks_s.push_back(ranks_time), threads_s.push_back(threads_time), one_s.push_back(one_time);
    plain_s.push_back(plain_time), plain_one_s.push_back(plain_one_time);
    ratio.push_back(threads_time / ranks_time), comm_share.push_back(worst);
    one_over_ranks.push_back(one_time / ranks_time), one_over_threads.push_back(one_time / threads_time);
  }
  runtime::set_num_threads(1);
  const double lat = allgather_seconds(world, 8, 101), big = allgather_seconds(world, std::size_t{8} << 20, 11);
  if (root) {
    const bool same = h_ranks == h_alone;
    const double bytes_per_s = double(std::size_t{8} << 20) * double(world.size() - 1) / std::max(big - lat, 1e-9);
    const std::string what = poisoning ? fmt::format("poisoning on Fashion-MNIST, {} training points", train)
                                       : fmt::format("logistic regression n = {}, d = {}", n, d);
    fmt::print("## {} ranks × 1 thread vs 1 rank × {} threads: AID-CG, {}, C = {} chunks, t = {}, K ≤ {}, median of {} "
               "reps\n\n",
               world.size(), world.size(), what, chunks, t, K, reps);
    fmt::print("ranks: {:.1f} ms, threads: {:.1f} ms, one rank × 1 thread: {:.1f} ms\n"
               "threads / ranks {:.2f}x; speed-up over one thread: ranks {:.2f}x, threads {:.2f}x; in collectives: "
               "{:.1f} % of the ranks' time\n",
               1e3 * bench::median(ranks_s), 1e3 * bench::median(threads_s), 1e3 * bench::median(one_s),
               bench::median(ratio), bench::median(one_over_ranks), bench::median(one_over_threads),
               100 * bench::median(comm_share));
    if (plain)
      fmt::print("without chunks (one process, no MPI): {:.1f} ms × {} threads, {:.1f} ms × 1 thread\n",
                 1e3 * bench::median(plain_s), world.size(), 1e3 * bench::median(plain_one_s));
    fmt::print("the {}-thread runs: {} thread(s) at the end of the last, {} stalls in all\n", world.size(), used_threads,
               stalls);
    fmt::print("traffic of rank 0 per hypergradient: {} collectives, {} values sent, {} received; results equal bit for "
               "bit: {}\n",
               traffic.collectives, traffic.values_sent, traffic.values_received, same ? "yes" : "NO");
    fmt::print("MPI on this machine: allgather of 8 B {:.1f} µs, of 8 MiB per rank {:.2f} ms ({:.2f} GB/s received)\n",
               1e6 * lat, 1e3 * big, 1e-9 * bytes_per_s);
    bench::write_csv(bench::results_path(poisoning ? "mpi_poisoning.csv" : "mpi.csv"),
                     {{"ranks", poisoning ? "train" : "n", "d", "chunks", "t", "K", "ranks_ms", "threads_ms", "one_thread_ms",
                       "ratio_threads_over_ranks", "speedup_ranks", "speedup_threads",
                       "collective_share", "collectives", "values_received", "allgather_8B_us", "allgather_8MiB_ms",
                       "bitwise_equal", "plain_threads_ms", "plain_one_thread_ms"},
                      {std::to_string(world.size()), std::to_string(poisoning ? train : n),
                       poisoning ? std::to_string(spread.initial_state()[0].size(0)) : std::to_string(d),
                       std::to_string(chunks),
                       std::to_string(t), std::to_string(K), fmt::format("{:.2f}", 1e3 * bench::median(ranks_s)),
                       fmt::format("{:.2f}", 1e3 * bench::median(threads_s)),
                       fmt::format("{:.2f}", 1e3 * bench::median(one_s)), fmt::format("{:.3f}", bench::median(ratio)),
                       fmt::format("{:.3f}", bench::median(one_over_ranks)),
                       fmt::format("{:.3f}", bench::median(one_over_threads)),
                       fmt::format("{:.4f}", bench::median(comm_share)), std::to_string(traffic.collectives),
                       std::to_string(traffic.values_received), fmt::format("{:.2f}", 1e6 * lat),
                       fmt::format("{:.3f}", 1e3 * big), same ? "yes" : "no",
                       plain ? fmt::format("{:.2f}", 1e3 * bench::median(plain_s)) : "nan",
                       plain ? fmt::format("{:.2f}", 1e3 * bench::median(plain_one_s)) : "nan"}});
  }
  return 0;
}
