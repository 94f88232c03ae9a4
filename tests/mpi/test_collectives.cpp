// The differentiable collectives (hyperad/mpi/collectives.hpp), run by ctest under mpirun
// with 1, 2 and 4 ranks: values against sums computed here, derivatives of first and
// second order against central differences of the whole (all ranks') function, the
// traffic counters, and the refusals every rank must raise alike.
#include <doctest/doctest.h>

#include <omp.h>

#include <cmath>
#include <string>

#include "hyperad/hyperad.hpp"
#include "hyperad/mpi/collectives.hpp"
#include "thrown.hpp"

using namespace hyperad;
namespace mpi = hyperad::mpi;

namespace {

const mpi::Communicator& world() {
  static const mpi::Communicator w = mpi::Communicator::world();
  return w;
}

// Σ over ranks of a local double (a plain MPI sum, for the checks).
double sum_over_ranks(double v) {
  double total = 0;
  mpi::check(MPI_Allreduce(&v, &total, 1, MPI_DOUBLE, MPI_SUM, world().handle()), "test");
  return total;
}

// Chunk k (global index) of the test data: [3] values that tell chunks apart.
Tensor chunk_values(std::int64_t k) {
  return tensor({0.5 + double(k), -1.25 * double(k) + 0.1, 1.0 / (1.0 + double(k))});
}

using testing::message_of;

}  // namespace

TEST_CASE("chunks are dealt contiguously, in rank order, as evenly as possible") {
  const int n = world().size(), r = world().rank();
  for (std::int64_t total : {0, 1, 3, 4, 10, 17}) {
    const mpi::ChunkRange mine = world().chunks(total);
    const std::int64_t base = total / n, extra = total % n;
    CHECK(mine.size() == base + (r < extra ? 1 : 0));
    // The ranges of all ranks tile [0, total): the sum of sizes is total and each begins
    // where the ranks before it end.
    CHECK(sum_over_ranks(double(mine.size())) == double(total));
    CHECK(sum_over_ranks(r == n - 1 ? double(mine.end) : 0.0) == double(total));
  }
  CHECK(message_of<ValueError>([] { world().chunks(-1); }).find("must be >= 0, got -1") != std::string::npos);
}

TEST_CASE("communicators: split into groups, a negative color refused after the collective") {
  const int r = world().rank(), n = world().size();
  const mpi::Communicator halves = world().split(r % 2, r);
  CHECK(halves.size() == (n + 1 - r % 2) / 2);
  CHECK(halves.rank() == r / 2);
  // The last rank asks for no group: it gets the error, the others their communicator.
  if (r == n - 1) {
    CHECK(message_of<ValueError>([] { world().split(-1, 0); }) == "mpi::Communicator::split: color must be >= 0, got -1");
  } else {
    CHECK(world().split(0, r).size() == n - 1);
  }
}

TEST_CASE("collectives refuse to run inside an OpenMP parallel region, on every thread") {
  std::string seen[2];
#pragma omp parallel num_threads(2)
  {
    const int t = omp_get_thread_num();
    seen[t] = message_of<mpi::MpiError>([] { mpi::all_sum(scalar(1.0), world()); });
  }
  if (!seen[1].empty()) {  // a team of two was given (it normally is)
    for (const std::string& m : seen) CHECK(m.find("mpi::all_sum: called inside an OpenMP parallel region") == 0);
  }
  CHECK(mpi::all_sum(scalar(1.0), world()).item() == world().size());  // and outside, it works
}

TEST_CASE("all_sum_chunks adds every rank's chunks in chunk order, the same bits on every rank") {
  const int r = world().rank();
  // Uneven: rank r holds r + 1 chunks, so the global chunk order is rank order.
  std::int64_t first = 0;
  for (int q = 0; q < r; ++q) first += q + 1;
  TensorList mine;
  for (std::int64_t k = first; k < first + r + 1; ++k) mine.push_back(chunk_values(k));
  const std::int64_t total = std::int64_t(world().size()) * (world().size() + 1) / 2;
  Tensor expected = chunk_values(0);
  for (std::int64_t k = 1; k < total; ++k) expected = expected + chunk_values(k);  // the same order, left to right

  world().reset_traffic();
  const Tensor got = mpi::all_sum_chunks(stack(mine, 0), world());
  CHECK(got.shape() == Shape{3});
  CHECK(got.to_vector() == expected.to_vector());  // exact
  const mpi::Traffic t = world().traffic();
  CHECK(t.values_sent == std::uint64_t(3 * (r + 1)));
  CHECK(t.values_received == std::uint64_t(3 * total));
  CHECK(t.collectives == 2);  // the operands' description, then the data

  // No chunk at all on this rank (shape [0, 3]) is fine: it adds nothing.
  const Tensor none = mpi::all_sum_chunks(r == 0 ? reshape(chunk_values(7), {1, 3}) : zeros({0, 3}), world());
  CHECK(none.to_vector() == chunk_values(7).to_vector());
  // Scalars per chunk give a scalar; float32 stays float32.
  const Tensor s = mpi::all_sum_chunks(full({2}, 1.5).to(Dtype::f32), world());
  CHECK(s.rank() == 0);
  CHECK(s.dtype() == Dtype::f32);
  CHECK(s.item() == doctest::Approx(3.0 * world().size()));
}

TEST_CASE("all_sum and replicate: a sum over ranks and its adjoint") {
  const int r = world().rank(), n = world().size();
  const Tensor x = full({2, 2}, double(r + 1));
  CHECK(mpi::all_sum(x, world()).to_vector() == std::vector<double>(4, n * (n + 1) / 2.0));
  const Tensor w = tensor({1.0, -2.0});
  const Tensor copy = mpi::replicate(w, world());
  CHECK(copy.to_vector() == w.to_vector());
  const Tensor copies = mpi::replicate_chunks(w, 3, world());
  CHECK(copies.shape() == Shape{3, 2});
  // Backward of replicate: Σ over ranks of each rank's use. Here rank r uses w with weight r + 1.
  Tensor wg = w.clone().requires_grad_();
  const Tensor local = sum(mpi::replicate(wg, world()) * double(r + 1));
  const Tensor objective = mpi::all_sum(local, world());
  const Tensor g = grad(objective, {wg})[0];
  CHECK(g.to_vector() == std::vector<double>(2, n * (n + 1) / 2.0));
}

TEST_CASE("first and second derivatives across ranks match central differences") {
  // f(x, w) = Σ tanh(y) ⊙ w with y = all_sum_chunks(x ⊙ replicate_chunks(w) + sin x):
  // x local ([2, 3] per rank), w replicated, f replicated; every rank's x and w reach f.
  const int r = world().rank();
  Generator g(100 + std::uint64_t(r));  // each rank its own x and direction for x
  Generator shared(7);                  // the same w and direction for w on every rank
  const Tensor x0 = randn({2, 3}, g), vx = randn({2, 3}, g);
  const Tensor w0 = randn({3}, shared), vw = randn({3}, shared);
  const auto f = [](const Tensor& x, const Tensor& w) {
    const Tensor y = mpi::all_sum_chunks(x * mpi::replicate_chunks(w, 2, world()) + sin(x), world());
    return sum(tanh(y) * w);
  };
  Tensor x = x0.clone().requires_grad_(), w = w0.clone().requires_grad_();
  const Tensor fx = f(x, w);
  const TensorList gr = grad(fx, {x, w}, {.create_graph = true});
  // First order: the directional derivative along (vx on every rank, vw) of the one f.
  const double analytic = sum_over_ranks(sum(gr[0] * vx).item()) + dot(gr[1], vw).item();
  const double h = 1e-6;
  const double fd = (f(x0 + h * vx, w0 + h * vw).item() - f(x0 - h * vx, w0 - h * vw).item()) / (2 * h);
  CHECK(std::abs(analytic - fd) <= 1e-8 * std::max(1.0, std::abs(fd)));
  CHECK(std::abs(analytic) > 1e-3);  // not a vacuous comparison

  // Second order: H·v from the recorded gradient (the pullback crosses ranks both ways)
  // against central differences of the gradient itself.
  const Tensor s = mpi::all_sum(sum(gr[0] * vx), world()) + dot(gr[1], vw);
  const TensorList hv = grad(s, {x, w});
  const auto gradient_at = [&](double t) {
    Tensor xa = (x0 + t * vx).requires_grad_(), wa = (w0 + t * vw).requires_grad_();
    return grad(f(xa, wa), {xa, wa});
  };
  const double h2 = 1e-5;
  const TensorList gp = gradient_at(h2), gm = gradient_at(-h2);
  for (int k = 0; k < 2; ++k) {
    const Tensor fd2 = (gp[k] - gm[k]) / (2 * h2);
    const double err = max(abs(flatten(hv[k] - fd2)), 0).item(), scale = std::max(1.0, max(abs(flatten(fd2)), 0).item());
    CHECK(err <= 1e-7 * scale);
  }
}

TEST_CASE("bad operands are refused on every rank alike, naming the rank") {
  const int r = world().rank(), n = world().size();
  CHECK(message_of<ShapeError>([] { mpi::all_sum_chunks(scalar(1.0), world()); }).find("is a scalar; it needs a leading chunk axis") !=
        std::string::npos);
  CHECK(message_of<ValueError>([&] { mpi::replicate_chunks(tensor({1.0}), r == n - 1 ? -2 : 1, world()); })
            .find(fmt::format("rank {} asked for -2 chunks", n - 1)) != std::string::npos);
  CHECK(message_of<ValueError>([&] { mpi::all_sum_chunks(r == n - 1 ? Tensor() : zeros({1, 2}), world()); })
            .find(fmt::format("x is an undefined tensor on rank {}", n - 1)) != std::string::npos);
  if (n == 1) return;  // the rest needs two ranks that disagree

  const std::string shape = message_of<ShapeError>([&] { mpi::all_sum_chunks(zeros({1, r == 1 ? 4 : 3}), world()); });
  CHECK(shape.find("x has chunks of shape [4] on rank 1 but [3] on rank 0") != std::string::npos);
  const std::string dtype =
      message_of<DtypeError>([&] { mpi::all_sum(r == 1 ? zeros({2}).to(Dtype::f32) : zeros({2}), world()); });
  CHECK(dtype.find("x is float32 on rank 1 but float64 on rank 0") != std::string::npos);
  const std::string copies =
      message_of<ValueError>([&] { mpi::replicate_chunks(tensor({1.0, r == 1 ? 2.5 : 2.0}), 1, world()); });
  CHECK(copies.find("x is not replicated: its values on rank 1 differ from rank 0's (shape [2])") != std::string::npos);
  const std::string records = message_of<ValueError>([&] {
    Tensor x = zeros({1, 2});
    if (r == 0) x.requires_grad_();
    mpi::all_sum_chunks(x, world());
  });
  CHECK(records.find("rank 0 records this op but rank 1 does not") != std::string::npos);
  // Ranks in different collectives (rank 1 replicates where the others sum) are told so
  // before any data moves, and all of them throw.
  const std::string crossed = message_of<ValueError>([&] {
    if (r == 1) mpi::replicate_chunks(zeros({2}), 1, world());
    else mpi::all_sum_chunks(zeros({1, 2}), world());
  });
  CHECK(crossed.find("rank 1 is in mpi::replicate_chunks where rank 0 is in mpi::all_sum_chunks: every rank must make "
                     "the same collectives in the same order") != std::string::npos);
  // A cotangent that differs between ranks: each rank differentiates its own objective.
  const std::string cotangent = message_of<ValueError>([&] {
    Tensor x = ones({1, 2}).requires_grad_();
    grad(sum(mpi::all_sum_chunks(x, world())) * double(r + 1), {x});
  });
  CHECK(cotangent.find("mpi::replicate_chunks: the cotangent of mpi::all_sum_chunks' result") != std::string::npos);
  CHECK(cotangent.find("is not replicated: its values on rank 1 differ") != std::string::npos);
  // The check can be turned off (ranks that round differently); the values are then the caller's word.
  mpi::set_replication_check(false);
  CHECK_NOTHROW(mpi::replicate_chunks(tensor({double(r)}), 1, world()));
  // ... but on every rank alike.
  mpi::set_replication_check(r != 1);
  CHECK(message_of<ValueError>([] { mpi::replicate(tensor({1.0}), world()); })
            .find("mpi::replicate: rank 0 checks replication but rank 1 does not") != std::string::npos);
  mpi::set_replication_check(true);
}
