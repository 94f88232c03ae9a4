// A data-parallel bilevel problem (hyperad/mpi/collectives.hpp): logistic regression with
// one ℓ2 strength per feature, the training and validation examples cut into 8 fixed
// chunks dealt to the ranks, w and λ replicated. Run by ctest under mpirun with 1, 2 and 4
// ranks; inside one run the ranks are also split into groups of 1 and 2, so every run
// compares the rank counts it can hold: ITD, AID-FP and AID-CG give the same bits on 1, 2
// and 4 ranks, and equal (to rounding) the same problem written without MPI.
#include <doctest/doctest.h>

#include <omp.h>

#include <cmath>
#include <map>

#include "hyperad/bilevel.hpp"
#include "hyperad/hyperad.hpp"
#include "hyperad/mpi.hpp"
#include "mpi/rank_groups.hpp"

using namespace hyperad;
namespace hb = hyperad::bilevel;
namespace mpi = hyperad::mpi;
using hyperad::testing::on_each_rank_count;

namespace {

constexpr std::int64_t kChunks = 8;

struct Data {
  Tensor X, y, Xv, yv;
  double step = 0;
};

// The same data on every rank (a fixed seed): 96 training and 96 validation examples, 5 features.
Data make_data() {
  Generator g(11);
  const std::int64_t n = 96, d = 5;
  const Tensor w = randn({d}, g);
  Data D;
  D.X = randn({n, d}, g) * 0.5;
  D.Xv = randn({n, d}, g) * 0.5;
  D.y = sign(matmul(D.X, w) + 0.5 * randn({n}, g));
  D.yv = sign(matmul(D.Xv, w) + 0.5 * randn({n}, g));
  D.step = 1.0 / (squared_norm(D.X).item() / (4.0 * double(n)) + 1.0);
  return D;
}

// L(w, λ) = mean logistic loss + ½ Σ e^λ w², E(w) = validation mean logistic loss, each
// data term over this rank's chunks, summed over the ranks (mpi::linear_model_mean_loss).
hb::Problem data_parallel(const Data& D, const mpi::Communicator& comm, std::int64_t chunks = kChunks) {
  const Tensor X = mpi::local_chunks(D.X, chunks, comm), y = mpi::local_chunks(D.y, chunks, comm);
  const Tensor Xv = mpi::local_chunks(D.Xv, chunks, comm), yv = mpi::local_chunks(D.yv, chunks, comm);
  const std::int64_t n = D.X.size(0), nv = D.Xv.size(0);
  return hb::Problem::gradient_descent(
      [=](const TensorList& w, const TensorList& l) {
        return mpi::linear_model_mean_loss(X, y, w[0], LinearLoss::logistic, n, comm) +
               0.5 * sum(exp(l[0]) * square(w[0]));
      },
      D.step,
      [=](const TensorList& w, const TensorList&) {
        return mpi::linear_model_mean_loss(Xv, yv, w[0], LinearLoss::logistic, nv, comm);
      },
      {zeros({D.X.size(1)})});
}

// The same problem on one process, without MPI.
hb::Problem single_process(const Data& D) {
  return hb::Problem::gradient_descent(
      [X = D.X, y = D.y](const TensorList& w, const TensorList& l) {
        return logistic_loss(matmul(X, w[0]), y) + 0.5 * sum(exp(l[0]) * square(w[0]));
      },
      D.step, [Xv = D.Xv, yv = D.yv](const TensorList& w, const TensorList&) { return logistic_loss(matmul(Xv, w[0]), yv); },
      {zeros({D.X.size(1)})});
}

std::unique_ptr<hb::HypergradientMethod> method(const std::string& name) {
  if (name == "itd") return std::make_unique<hb::ITD>(hb::ITDOptions{.inner_steps = 40});
  if (name == "itd-checkpointed")
    return std::make_unique<hb::ITD>(hb::ITDOptions{.inner_steps = 40, .checkpoint = CheckpointPolicy::binomial(4)});
  if (name == "aid-gmres")
    return std::make_unique<hb::AID>(hb::AIDOptions{.inner_steps = 40, .solver = linsolve::gmres(), .linear_steps = 40,
                                                    .linear_tolerance = Tolerance::relative(1e-12)});
  if (name == "aid-bicgstab")
    return std::make_unique<hb::AID>(hb::AIDOptions{.inner_steps = 40, .solver = linsolve::bicgstab(), .linear_steps = 40,
                                                    .linear_tolerance = Tolerance::relative(1e-12)});
  if (name == "aid-fp")
    return std::make_unique<hb::AID>(hb::AIDOptions{.inner_steps = 40, .solver = linsolve::richardson(), .linear_steps = 40});
  return std::make_unique<hb::AID>(hb::AIDOptions{.inner_steps = 40, .solver = linsolve::cg(), .linear_steps = 40,
                                                  .linear_tolerance = Tolerance::relative(1e-12)});
}

}  // namespace

TEST_CASE("data-parallel hypergradients: the same bits on 1, 2 and 4 ranks, equal to one process") {
  const mpi::Communicator world = mpi::Communicator::world();
  const Data D = make_data();
  Generator g(5);
  const TensorList lambda{-1.0 - rand({5}, g)};
  for (const std::string name : {"itd", "itd-checkpointed", "aid-fp", "aid-cg", "aid-gmres", "aid-bicgstab"}) {
    CAPTURE(name);
    std::map<int, mpi::Traffic> traffic;  // ranks per group → what its communicator carried
    const auto by_ranks = on_each_rank_count(world, [&](const mpi::Communicator& comm) {
      const hb::Problem p = data_parallel(D, comm);
      comm.reset_traffic();
      std::vector<double> h = method(name)->hypergradient(p, lambda).grad[0].to_vector();
      traffic[comm.size()] = comm.traffic();
      return h;
    });
    for (const auto& [group, h] : by_ranks) {
      CAPTURE(group);
      CHECK(h == by_ranks.at(1));  // bit for bit
      // Every rank receives all chunks' parts, however they are dealt: the received
      // values do not depend on the rank count (what each rank sends does).
      CHECK(traffic.at(group).values_received == traffic.at(1).values_received);
      CHECK(traffic.at(group).collectives == traffic.at(1).collectives);
    }
    const Tensor reference = method(name)->hypergradient(single_process(D), lambda).grad[0];
    const std::vector<double> r = reference.to_vector(), h = by_ranks.at(1);
    double num = 0, den = 0;
    for (std::size_t i = 0; i < r.size(); ++i) num += (h[i] - r[i]) * (h[i] - r[i]), den += r[i] * r[i];
    CHECK(std::sqrt(num / den) < 1e-12);
    CHECK(std::sqrt(den) > 1e-3);  // a hypergradient worth comparing
  }
}

TEST_CASE("linear_model_mean_loss on ranks that hold no chunk: the same bits as one rank holding both") {
  // 2 chunks: on 4 ranks, ranks 2 and 3 hold none; their batched ops on empty tensors record
  // the same ops as the others', so every sweep (second order included) makes the same
  // collectives on every rank.
  const mpi::Communicator world = mpi::Communicator::world();
  const Data D = make_data();
  const TensorList lambda{full({5}, -1.0)};
  const mpi::Communicator self = world.split(world.rank(), 0);
  for (const std::string name : {"itd", "aid-cg"}) {
    CAPTURE(name);
    const std::vector<double> all = method(name)->hypergradient(data_parallel(D, world, 2), lambda).grad[0].to_vector();
    const std::vector<double> one = method(name)->hypergradient(data_parallel(D, self, 2), lambda).grad[0].to_vector();
    CHECK(all == one);
  }
}

TEST_CASE("local_chunks deals fixed row blocks and refuses data it cannot cut evenly") {
  const mpi::Communicator world = mpi::Communicator::world();
  const Tensor rows = reshape(arange(std::int64_t{24}), {12, 2});
  const mpi::ChunkRange mine = world.chunks(4);
  const Tensor c = mpi::local_chunks(rows, 4, world);
  CHECK(c.shape() == Shape{mine.size(), 3, 2});
  if (mine.size() > 0) CHECK(c.to_vector().front() == double(mine.begin * 6));
  CHECK_THROWS_WITH_AS(mpi::local_chunks(rows, 5, world), "mpi::local_chunks: 12 rows (shape [12, 2]) cannot be cut into 5 equal chunks",
                       ValueError);
  CHECK_THROWS_WITH_AS(mpi::local_chunks(scalar(1.0), 1, world),
                       "mpi::local_chunks: the rows must have a leading row axis, got a scalar", ShapeError);
}

TEST_CASE("one data-parallel gradient costs six collectives and C + C·d received values (docs/mpi.md)") {
  const mpi::Communicator world = mpi::Communicator::world();
  const Data D = make_data();
  const hb::Problem p = data_parallel(D, world);
  const std::int64_t d = D.X.size(1), c = world.chunks(kChunks).size();
  world.reset_traffic();
  const TensorList next = p.phi({zeros({d})}, {zeros({d})});  // one gradient step Φ(w, λ)
  const mpi::Traffic t = world.traffic();
  CHECK(next[0].shape() == Shape{d});
  CHECK(t.collectives == 6);
  CHECK(t.values_received == std::uint64_t(kChunks + kChunks * d));
  CHECK(t.values_sent == std::uint64_t(c * (1 + d)));
}

TEST_CASE("the references and the contraction estimate run data-parallel too, with the same bits") {
  const mpi::Communicator world = mpi::Communicator::world();
  const Data D = make_data();
  const TensorList lambda{full({5}, -1.5)};
  const auto exact = on_each_rank_count(world, [&](const mpi::Communicator& comm) {
    return hb::exact_hypergradient(data_parallel(D, comm), lambda).grad[0].to_vector();
  });
  const auto q = on_each_rank_count(world, [&](const mpi::Communicator& comm) {
    const hb::Problem p = data_parallel(D, comm);
    return std::vector<double>{hb::estimate_contraction(p, p.initial_state(), lambda)};
  });
  for (const auto& [group, h] : exact) CHECK(h == exact.at(1));
  for (const auto& [group, v] : q) CHECK(v == q.at(1));
  // Against the single-process problem: the same exact hypergradient; q of a gradient step
  // on a strongly convex loss lies in (0, 1).
  const std::vector<double> ref = hb::exact_hypergradient(single_process(D), lambda).grad[0].to_vector();
  for (std::size_t i = 0; i < ref.size(); ++i) CHECK(exact.at(1)[i] == doctest::Approx(ref[i]).epsilon(1e-10));
  CHECK(q.at(1)[0] > 0.5);
  CHECK(q.at(1)[0] < 1.0);
}

TEST_CASE("finite differences run data-parallel on one thread, and refuse their parallel loop") {
  const mpi::Communicator world = mpi::Communicator::world();
  const Data D = make_data();
  const TensorList lambda{full({5}, -1.5)};
  const auto fd = on_each_rank_count(world, [&](const mpi::Communicator& comm) {
    return hb::finite_difference_hypergradient(data_parallel(D, comm), lambda, {.parallel = false}).grad[0].to_vector();
  });
  for (const auto& [group, h] : fd) CHECK(h == fd.at(1));
  const std::vector<double> exact = hb::exact_hypergradient(single_process(D), lambda).grad[0].to_vector();
  for (std::size_t i = 0; i < exact.size(); ++i) CHECK(fd.at(1)[i] == doctest::Approx(exact[i]).epsilon(1e-6));
  // Its parallel loop over λ's entries would call collectives from worker threads, in any
  // order: refused on every rank, before any message is sent.
  const int before = omp_get_max_threads();
  omp_set_num_threads(2);
  CHECK_THROWS_WITH_AS(hb::finite_difference_hypergradient(data_parallel(D, world), lambda, {.parallel = true}),
                       doctest::Contains("called inside an OpenMP parallel region"), mpi::MpiError);
  omp_set_num_threads(before);
}

TEST_CASE("communication per hypergradient follows the formula of docs/mpi.md") {
  // With C chunks and d features, one gradient of L costs 6 collectives and C(1 + d)
  // received values (the chunks' losses, then their gradients); one pullback through the
  // recorded Φ costs 3 collectives and C·d values (the chunks' Hessian-vector products).
  // AID: t inner gradients, Φ recorded at w_t, ∇_wE; one pullback per product of its
  // solver, and one more for the final sweep that gives the cross term ∂_λΦᵀv and the true
  // residual. ITD: t recorded gradients and ∇_wE; t − 1 pullbacks through the data term (the
  // first step's starts from the constant w0, so only λ's part, which is replicated, is
  // pulled back).
  const mpi::Communicator world = mpi::Communicator::world();
  const Data D = make_data();
  const hb::Problem p = data_parallel(D, world);
  const std::uint64_t C = kChunks, d = std::uint64_t(D.X.size(1)), gradient = C * (1 + d), pullback = C * d;
  for (int t : {5, 9}) {
    CAPTURE(t);
    hb::AID aid({.inner_steps = t, .solver = linsolve::richardson(), .linear_steps = 4});
    world.reset_traffic();
    const hb::Hypergradient h = aid.hypergradient(p, {full({5}, -1.0)});
    const std::uint64_t P = std::uint64_t(h.diagnostics.linear.products);
    CHECK(P >= 4);
    mpi::Traffic tr = world.traffic();
    CHECK(tr.values_received == (t + 2) * gradient + (P + 1) * pullback);
    CHECK(tr.collectives == 6 * (t + 2) + 3 * (P + 1));

    hb::ITD itd({.inner_steps = t});
    world.reset_traffic();
    itd.hypergradient(p, {full({5}, -1.0)});
    tr = world.traffic();
    CHECK(tr.values_received == (t + 1) * gradient + (t - 1) * pullback);
    CHECK(tr.collectives == 6 * (t + 1) + 3 * (t - 1));
  }
}

TEST_CASE("linear_model_mean_loss: the mean over all ranks' examples, and one rank's bad chunks fail every rank") {
  const mpi::Communicator world = mpi::Communicator::world();
  const Data D = make_data();
  const Tensor X = mpi::local_chunks(D.X, kChunks, world), y = mpi::local_chunks(D.y, kChunks, world);
  Generator g(9);
  const Tensor w = randn({5}, g);
  const double n = double(D.X.size(0));
  CHECK(mpi::linear_model_mean_loss(X, y, w, LinearLoss::logistic, D.X.size(0), world).item() ==
        doctest::Approx(logistic_loss(matmul(D.X, w), D.y).item()).epsilon(1e-13));
  CHECK(mpi::linear_model_mean_loss(X, y, w, LinearLoss::squared, D.X.size(0), world).item() ==
        doctest::Approx(sum(square(matmul(D.X, w) - D.y)).item() / n).epsilon(1e-13));
  // The last rank's labels do not fit its chunks: it throws its ShapeError, the others an
  // Error naming it — and nobody waits.
  const int last = world.size() - 1;
  const Tensor bad_y = world.rank() == last ? zeros({X.size(0), X.size(1) + 1}) : y;
  if (world.rank() == last) {
    CHECK_THROWS_WITH_AS(mpi::linear_model_mean_loss(X, bad_y, w, LinearLoss::logistic, 96, world),
                         doctest::Contains("mpi::linear_model_mean_loss: expected X [c, n_c, d], y [c, n_c] and w [d]"),
                         ShapeError);
  } else {
    CHECK_THROWS_WITH_AS(mpi::linear_model_mean_loss(X, bad_y, w, LinearLoss::logistic, 96, world),
                         fmt::format("mpi::all_sum_chunks: rank {} failed before this collective (its own error says why)",
                                     last)
                             .c_str(),
                         Error);
  }
  CHECK_NOTHROW(mpi::linear_model_mean_loss(X, y, w, LinearLoss::logistic, 96, world));  // in step afterwards
}
