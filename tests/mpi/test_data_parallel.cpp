// A data-parallel bilevel problem (hyperad/mpi/collectives.hpp): logistic regression with
// one ℓ2 strength per feature, the training and validation examples cut into 8 fixed
// chunks dealt to the ranks, w and λ replicated. Run by ctest under mpirun with 1, 2 and 4
// ranks; inside one run the ranks are also split into groups of 1 and 2, so every run
// compares the rank counts it can hold: ITD, AID-FP and AID-CG give the same bits on 1, 2
// and 4 ranks, and equal (to rounding) the same problem written without MPI.
#include <doctest/doctest.h>

#include <cmath>
#include <map>

#include "hyperad/bilevel.hpp"
#include "hyperad/hyperad.hpp"
#include "hyperad/mpi.hpp"

using namespace hyperad;
namespace hb = hyperad::bilevel;
namespace mpi = hyperad::mpi;

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
// data term a sum over this rank's chunks, all_sum_chunks'ed over the ranks.
hb::Problem data_parallel(const Data& D, const mpi::Communicator& comm) {
  const Tensor X = mpi::local_chunks(D.X, kChunks, comm), y = mpi::local_chunks(D.y, kChunks, comm);
  const Tensor Xv = mpi::local_chunks(D.Xv, kChunks, comm), yv = mpi::local_chunks(D.yv, kChunks, comm);
  const auto mean_loss = [comm](const Tensor& A, const Tensor& b, const Tensor& w) {
    const Tensor copies = mpi::replicate_chunks(w, A.size(0), comm);  // [c, d]
    const Tensor z = squeeze(matmul(A, unsqueeze(copies, 2)), 2);    // [c, n_c]
    const Tensor per_chunk = sum(logistic_loss(z, b, Reduction::none), {1});
    return mpi::all_sum_chunks(per_chunk, comm) * (1.0 / double(kChunks * A.size(1)));
  };
  return hb::Problem::gradient_descent(
      [=](const TensorList& w, const TensorList& l) { return mean_loss(X, y, w[0]) + 0.5 * sum(exp(l[0]) * square(w[0])); },
      D.step, [=](const TensorList& w, const TensorList&) { return mean_loss(Xv, yv, w[0]); },
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

// Runs `compute` on communicators of 1, 2 and 4 ranks (those the world can hold) and
// returns the results by group size.
template <class F>
std::map<int, std::vector<double>> on_each_rank_count(const mpi::Communicator& world, F&& compute) {
  std::map<int, std::vector<double>> out;
  for (int group : {1, 2, 4}) {
    if (world.size() % group != 0) continue;
    const mpi::Communicator comm = world.split(world.rank() / group, world.rank());
    REQUIRE(comm.size() == group);
    out[group] = compute(comm);
  }
  return out;
}

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
