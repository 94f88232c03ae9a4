// Data parallelism through the bilevel layer's interface (bilevel/shards.hpp,
// mpi::data_parallel): sum_over_batch and the registry's data-parallel problem (poisoning)
// give the same bits on 1, 2 and 4 ranks for a fixed chunk count, equal to one process to
// rounding, with ranks that hold no chunk, parts shorter than the chunk count, and a part
// that fails on one rank only.
#include <doctest/doctest.h>

#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#include "hyperad/bilevel.hpp"
#include "hyperad/hyperad.hpp"
#include "hyperad/mpi.hpp"
#include "hyperad/problems/registry.hpp"
#include "mpi/rank_groups.hpp"
#include "thrown.hpp"

using namespace hyperad;
namespace hb = hyperad::bilevel;
namespace mpi = hyperad::mpi;
using hyperad::testing::message_of;
using hyperad::testing::on_each_rank_count;

namespace {

double relative_difference(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size(); ++i) num += (a[i] - b[i]) * (a[i] - b[i]), den += b[i] * b[i];
  return std::sqrt(num / den);
}

// f(a, b) = Σ_{i ∈ batch} (x_i·a)² · exp(b_i): every part reads a, and the entries of b of
// its examples; first and second derivatives mix the chunks. b is passed as an input every
// part reads (a copy per chunk) or as per-example (a copy per process).
Tensor objective(const hb::ExampleShards* shards, const hb::Batch& batch, const Tensor& X, const Tensor& a, const Tensor& b,
                 bool b_per_example) {
  const hb::PartSum part_sum = [&X](const TensorList& in, const hb::Batch& part) {
    const Tensor z = matmul(hb::rows(X, part), in[0]);
    return sum(square(z) * exp(index_select(in[1], 0, part)));
  };
  return b_per_example ? hb::sum_over_batch(shards, batch, {a}, part_sum, {b})
                       : hb::sum_over_batch(shards, batch, {a, b}, part_sum);
}

}  // namespace

TEST_CASE("sum_over_batch: value, gradient and Hessian-vector product the same bits on 1, 2, 4 ranks") {
  const mpi::Communicator world = mpi::Communicator::world();
  Generator g(4);
  const Tensor X = randn({10, 3}, g), a0 = randn({3}, g), b0 = 0.1 * randn({10}, g), u = randn({3}, g);
  // 10 examples in 4 chunks (parts of 2, 3, 2, 3); a batch of 3 in 8 chunks (5 empty parts,
  // and on 4 ranks a rank with nothing to sum).
  for (const auto& [batch, chunks] : std::vector<std::pair<hb::Batch, std::int64_t>>{
           {hb::full_batch(10), 4}, {{7, 2, 5}, 8}})
  for (const bool b_per_example : {false, true}) {
    CAPTURE(chunks);
    CAPTURE(b_per_example);
    const auto compute = [&](const hb::ExampleShards* shards) {
      const Tensor a = a0.clone().requires_grad_(), b = b0.clone().requires_grad_();
      const Tensor f = objective(shards, batch, X, a, b, b_per_example);
      const TensorList g1 = grad(f, {a, b}, {.create_graph = true});
      const TensorList g2 = grad(sum(g1[0] * u), {a, b});  // H u, both blocks
      std::vector<double> out{f.item()};
      for (const Tensor& t : {g1[0], g1[1], g2[0], g2[1]})
        for (double v : t.to_vector()) out.push_back(v);
      return out;
    };
    const auto by_ranks = on_each_rank_count(world, [&](const mpi::Communicator& comm) {
      return compute(mpi::data_parallel(comm, chunks).get());
    });
    for (const auto& [group, r] : by_ranks) {
      CAPTURE(group);
      CHECK(r == by_ranks.at(1));
    }
    CHECK(relative_difference(by_ranks.at(1), compute(nullptr)) < 1e-14);
  }
}

TEST_CASE("sum_over_batch: its collectives and the values each rank receives, counted") {
  const mpi::Communicator world = mpi::Communicator::world();
  const auto shards = mpi::data_parallel(world, 4);
  Generator g(6);
  const Tensor X = randn({10, 3}, g);
  const Tensor a = randn({3}, g).requires_grad_(), b = randn({10}, g).requires_grad_();
  // Forward: one collective per input's copies (the check only), two for the sum (its check,
  // then every chunk's part: C values).
  world.reset_traffic();
  const Tensor f = objective(shards.get(), hb::full_batch(10), X, a, b, true);
  CHECK(world.traffic().collectives == 1 + 1 + 2);
  CHECK(world.traffic().values_received == 4);
  // Backward: the sum's cotangent copied to the chunks (its check), then the shared input's
  // copies summed over the C chunks (C·|a| values), the per-example input's over the P ranks
  // (P·|b|).
  world.reset_traffic();
  grad(f, {a, b});
  CHECK(world.traffic().collectives == 1 + 2 + 2);
  CHECK(world.traffic().values_received == static_cast<std::uint64_t>(4 * 3 + world.size() * 10));
}

TEST_CASE("sum_over_batch: a part failing on one rank makes every rank throw") {
  const mpi::Communicator world = mpi::Communicator::world();
  const auto shards = mpi::data_parallel(world, 4);
  const Tensor a = ones({2});
  const std::string msg = message_of<Error>([&] {
    hb::sum_over_batch(shards.get(), hb::full_batch(8), {a}, [&](const TensorList& in, const hb::Batch& part) {
      if (part.front() == 6) throw ShapeError("the last chunk's part does not fit");  // chunk 3: the last rank's
      return sum(in[0]);
    });
  });
  if (world.rank() == world.size() - 1)
    CHECK(msg == "the last chunk's part does not fit");
  else
    CHECK(msg.find("rank " + std::to_string(world.size() - 1)) != std::string::npos);
  CHECK(message_of<ValueError>([&] { mpi::data_parallel(world, world.size() - 1); }) ==
        fmt::format("mpi::data_parallel: {} chunk{} cannot be dealt to {} ranks: every rank needs one at least (its "
                    "backward passes must make the same collectives as the others')",
                    world.size() - 1, world.size() == 2 ? "" : "s", world.size()));
}

TEST_CASE("the data-parallel poisoning problem: AID, ITD and SID the same bits on 1, 2, 4 ranks") {
  const mpi::Communicator world = mpi::Communicator::world();
  const auto instance = [](std::shared_ptr<const hb::ExampleShards> shards) {
    return problems::make_problem("poisoning", {.seed = 3, .small = true, .shards = std::move(shards)});
  };
  const auto hypergradients = [](const problems::Instance& inst) {
    hb::AID aid({.inner_steps = 30, .solver = linsolve::cg(), .linear_steps = 30});
    hb::ITD itd({.inner_steps = 20});
    hb::SID sid(*inst.stochastic, {.inner_steps = 20, .linear_steps = 20, .inner_batch = 9, .linear_batch = 9,
                                   .cross_batch = 9, .outer_batch = 7, .seed = 5});
    std::vector<double> out;
    for (hb::HypergradientMethod* m : std::initializer_list<hb::HypergradientMethod*>{&aid, &itd, &sid}) {
      const hb::Hypergradient h = m->hypergradient(inst.problem, inst.lambda0);
      out.push_back(h.objective);
      for (double v : h.grad[0].to_vector()) out.push_back(v);
    }
    return out;
  };
  const auto by_ranks = on_each_rank_count(world, [&](const mpi::Communicator& comm) {
    return hypergradients(instance(mpi::data_parallel(comm, 8)));
  });
  for (const auto& [group, r] : by_ranks) {
    CAPTURE(group);
    CHECK(r == by_ranks.at(1));
  }
  const std::vector<double> alone = hypergradients(instance(nullptr));
  CHECK(relative_difference(by_ranks.at(1), alone) < 1e-10);
  double norm = 0;
  for (double v : alone) norm += v * v;
  CHECK(std::sqrt(norm) > 1e-3);
}

TEST_CASE("make_problem refuses shards for a problem that cannot spread its examples") {
  const mpi::Communicator world = mpi::Communicator::world();
  const std::string msg = message_of<ValueError>(
      [&] { problems::make_problem("logreg", {.small = true, .shards = mpi::data_parallel(world, 4)}); });
  CHECK(msg.find("problem 'logreg' cannot spread its examples over processes (4 chunks over") != std::string::npos);
  CHECK(msg.find("the problems that can: poisoning") != std::string::npos);
}
