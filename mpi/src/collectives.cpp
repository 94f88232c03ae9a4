#include "hyperad/mpi/collectives.hpp"

#include <array>
#include <atomic>
#include <climits>
#include <cstring>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <omp.h>

#include "hyperad/autodiff/ops/shape_ops.hpp"
#include "hyperad/autodiff/record.hpp"
#include "collectives_internal.hpp"

namespace hyperad::mpi {

namespace {

std::atomic<bool> g_replication_check{true};

// What each rank says about its operand before any data move, so that every rank can
// refuse a bad call in the same way (a rank throwing alone would leave the others
// waiting in the collective forever).
enum Status : std::int64_t { ok = 0, undefined = 1, negative_chunks = 2, no_chunk_axis = 3, failed = 4 };
enum Slot : int { kOp, kStatus, kLead, kDtype, kRecords, kChecked, kPrint, kRank, kDims };
constexpr int kHeader = kDims + kMaxRank;
using Header = std::array<std::int64_t, kHeader>;

Header header(Status status, std::int64_t lead, const Tensor& x, const Shape& shape, bool records, std::uint64_t print) {
  Header h{};
  h[kStatus] = status;
  h[kLead] = lead;
  h[kDtype] = x.defined() ? static_cast<std::int64_t>(x.dtype()) : -1;
  h[kRecords] = records ? 1 : 0;
  h[kChecked] = g_replication_check ? 1 : 0;
  std::memcpy(&h[kPrint], &print, sizeof print);
  h[kRank] = shape.rank();
  for (int i = 0; i < shape.rank(); ++i) h[kDims + i] = shape.begin()[i];
  return h;
}

Shape shape_in(const Header& h) {
  return Shape(std::span<const std::int64_t>(h.data() + kDims, static_cast<std::size_t>(h[kRank])));
}

}  // namespace

// Collectives run on the thread that initialized MPI (funneled), outside OpenMP parallel
// regions: from a worker thread the ranks would issue them in any order and hang.
void detail::require_usable(const char* op) {
  int ready = 0, done = 0;
  MPI_Initialized(&ready);
  MPI_Finalized(&done);
  if (!ready || done)
    throw MpiError(fmt::format("{}: MPI is {} (the tape may outlive mpi::Environment; differentiate before it ends)", op,
                               done ? "already finalized" : "not initialized"));
  if (omp_in_parallel())
    throw MpiError(fmt::format("{}: called inside an OpenMP parallel region; collectives run on the thread that "
                               "initialized MPI, one at a time (finite_difference_hypergradient: set parallel = false; "
                               "episodic runs: execution sequential or batched)",
                               op));
}

namespace {

// The collectives, by the code their headers carry: ranks that reached different ones
// (a rank recorded an op the others did not, or in another order) are told so before
// anything else is compared, and before any data moves.
constexpr std::array<const char*, 4> kOpNames{"mpi::all_sum_chunks", "mpi::all_sum", "mpi::replicate_chunks",
                                              "mpi::replicate"};

std::int64_t op_code(const char* op) {
  for (std::size_t i = 0; i < kOpNames.size(); ++i)
    if (std::strcmp(kOpNames[i], op) == 0) return static_cast<std::int64_t>(i);
  return -1;
}

std::vector<Header> exchange(Header mine, const Communicator& comm, const char* op) {
  detail::require_usable(op);
  mine[kOp] = op_code(op);
  std::vector<Header> all(static_cast<std::size_t>(comm.size()));
  const auto start = Communicator::Clock::now();
  check(MPI_Allgather(mine.data(), kHeader, MPI_INT64_T, all.data(), kHeader, MPI_INT64_T, comm.handle()), op);
  comm.count(0, 0, static_cast<std::uint64_t>(kHeader) * static_cast<std::uint64_t>(comm.size()), start);
  for (std::size_t q = 1; q < all.size(); ++q) {
    const auto name = [](std::int64_t code) {
      return code >= 0 && code < static_cast<std::int64_t>(kOpNames.size()) ? kOpNames[static_cast<std::size_t>(code)]
                                                                             : "another collective";
    };
    if (all[q][kOp] != all[0][kOp])
      throw ValueError(fmt::format("{}: rank {} is in {} where rank 0 is in {}: every rank must make the same "
                                   "collectives in the same order (record the same ops; an objective must read the "
                                   "same inputs on every rank)",
                                   op, q, name(all[q][kOp]), name(all[0][kOp])));
  }
  return all;
}

// The checks every rank makes on the same gathered headers, so all throw alike. `what`
// names the operand ("x", the cotangent); `chunked`: its shape is [chunks, ...] and the
// trailing shapes must agree; `replicated`: its bytes must agree too.
void validate(const std::vector<Header>& all, const char* op, const char* what, bool chunked, bool replicated) {
  for (std::size_t q = 0; q < all.size(); ++q) {
    switch (all[q][kStatus]) {
      case undefined:
        throw ValueError(fmt::format("{}: {} is an undefined tensor on rank {}", op, what, q));
      case negative_chunks:
        throw ValueError(fmt::format("{}: rank {} asked for {} chunks (must be >= 0)", op, q, all[q][kLead]));
      case no_chunk_axis:
        throw ShapeError(fmt::format("{}: {} on rank {} is a scalar; it needs a leading chunk axis, [chunks, ...]", op,
                                     what, q));
      case failed:  // the failing rank rethrows its own error before validating (sum_chunks)
        throw Error(fmt::format("{}: rank {} failed before this collective (its own error says why)", op, q));
      default:
        break;
    }
  }
  const Header& h0 = all[0];
  for (std::size_t q = 1; q < all.size(); ++q) {
    const Header& h = all[q];
    if (h[kDtype] != h0[kDtype])
      throw DtypeError(fmt::format("{}: {} is {} on rank {} but {} on rank 0", op, what,
                                   dtype_name(static_cast<Dtype>(h[kDtype])), q,
                                   dtype_name(static_cast<Dtype>(h0[kDtype]))));
    if (shape_in(h) != shape_in(h0))
      throw ShapeError(fmt::format("{}: {} has {} {} on rank {} but {} on rank 0", op, what,
                                   chunked ? "chunks of shape" : "shape", shape_in(h).str(), q,
                                   shape_in(h0).str()));
    if (h[kChecked] != h0[kChecked])
      throw ValueError(fmt::format("{}: rank {} checks replication but rank {} does not (call "
                                   "mpi::set_replication_check alike on every rank)",
                                   op, h[kChecked] ? q : 0, h[kChecked] ? 0 : q));
    if (h[kRecords] != h0[kRecords])
      throw ValueError(fmt::format("{}: rank {} records this op but rank {} does not (every rank must record the same "
                                   "ops: {} must require gradients on all ranks or on none)",
                                   op, h[kRecords] ? q : 0, h[kRecords] ? 0 : q, what));
    if (replicated && h[kPrint] != h0[kPrint])
      throw ValueError(fmt::format("{}: {} is not replicated: its values on rank {} differ from rank 0's (shape {}); "
                                   "pass a value every rank holds alike (w, λ), or turn the check off with "
                                   "mpi::set_replication_check(false) where ranks may round differently",
                                   op, what, q, shape_in(h0).str()));
  }
}

// A 64-bit fingerprint of x's bytes (four interleaved multiply-xor lanes over 8-byte words,
// so it is not bound by one dependency chain).
std::uint64_t fingerprint(const Tensor& x) {
  const auto* p = static_cast<const unsigned char*>(x.raw());
  const std::size_t n = x.nbytes();
  constexpr std::uint64_t kMul = 0x9E3779B97F4A7C15ull;
  std::uint64_t lane[4] = {1, 2, 3, 4};
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int k = 0; k < 4; ++k) {
      std::uint64_t w;
      std::memcpy(&w, p + i + 8 * k, 8);
      lane[k] = (lane[k] ^ w) * kMul;
      lane[k] ^= lane[k] >> 29;
    }
  std::uint64_t h = n;
  for (; i < n; ++i) h = (h ^ p[i]) * kMul;
  for (std::uint64_t l : lane) h = (h ^ l) * kMul, h ^= h >> 31;
  return h;
}

MPI_Datatype mpi_type(Dtype d) { return d == Dtype::f32 ? MPI_FLOAT : MPI_DOUBLE; }

Shape trailing(const Shape& s) {
  return Shape(std::span<const std::int64_t>(s.begin() + 1, static_cast<std::size_t>(s.rank() - 1)));
}

OpAttrs attrs_of(const Communicator& comm, std::int64_t chunks) {
  OpAttrs a;
  a.integer[0] = chunks;
  a.payload = std::make_shared<const Communicator>(comm);
  return a;
}

template <class T>
void sum_in_order(const T* chunks, std::int64_t count, std::int64_t m, T* out) {
  if (count == 0) return std::fill(out, out + m, T(0));
  std::copy(chunks, chunks + m, out);
  for (std::int64_t c = 1; c < count; ++c) {
    const T* p = chunks + c * m;
    for (std::int64_t i = 0; i < m; ++i) out[i] += p[i];
  }
}

// The ops' shared bodies. `whole`: x is this rank's one part as it is (all_sum, replicate);
// otherwise it has a leading chunk axis (all_sum_chunks, replicate_chunks).
Tensor sum_chunks(const Tensor& x, const Communicator& comm, bool whole, const std::exception_ptr& local_error = {});
Tensor copy_chunks(const Tensor& x, std::int64_t chunks, const Communicator& comm, bool whole, const char* what);

// What the sums' backward rules call the cotangent they replicate.
constexpr const char* kChunksCotangent =
    "the cotangent of mpi::all_sum_chunks' result (an objective every rank computes alike)";
constexpr const char* kSumCotangent = "the cotangent of mpi::all_sum's result (an objective every rank computes alike)";

}  // namespace

void set_replication_check(bool on) { g_replication_check = on; }
bool replication_check() { return g_replication_check; }

namespace {

Tensor sum_chunks(const Tensor& x, const Communicator& comm, bool whole, const std::exception_ptr& local_error) {
  static constexpr OpDef chunked{"mpi::all_sum_chunks", [](Backward& b) {
                                   b.accumulate(0, copy_chunks(b.grad_out(), b.integer(0), b.payload<Communicator>(),
                                                               false, kChunksCotangent));
                                 }};
  static constexpr OpDef one{"mpi::all_sum", [](Backward& b) {
                               b.accumulate(0, copy_chunks(b.grad_out(), 1, b.payload<Communicator>(), true, kSumCotangent));
                             }};
  const char* op = whole ? one.name : chunked.name;
  const Status status =
      local_error ? failed : !x.defined() ? undefined : !whole && x.rank() == 0 ? no_chunk_axis : ok;
  const Shape tail = status != ok ? Shape{} : whole ? x.shape() : trailing(x.shape());
  const std::int64_t lead = status != ok ? 0 : whole ? 1 : x.size(0);
  const std::vector<Header> all =
      exchange(header(status, lead, x, tail, status == ok && any_requires_grad({&x}), 0), comm, op);
  if (local_error) std::rethrow_exception(local_error);
  validate(all, op, "x", !whole, false);

  const std::int64_t m = tail.numel();
  std::vector<int> counts(all.size()), offsets(all.size());
  std::int64_t total = 0;
  for (std::size_t q = 0; q < all.size(); ++q) {
    const std::int64_t values = all[q][kLead] * m;
    if (values > INT_MAX || total + values > INT_MAX)
      throw ValueError(fmt::format("{}: {} values from {} ranks exceed MPI's int count ({}); use more, smaller calls", op,
                                   total + values, q + 1, INT_MAX));
    counts[q] = static_cast<int>(values);
    offsets[q] = static_cast<int>(total);
    total += values;
  }
  Tensor out(tail, x.dtype());
  const auto start = Communicator::Clock::now();
  dispatch(x.dtype(), [&]<class T>() {
    std::vector<T> gathered(static_cast<std::size_t>(total));
    check(MPI_Allgatherv(x.data<T>(), counts[static_cast<std::size_t>(comm.rank())], mpi_type(x.dtype()),
                         gathered.data(), counts.data(), offsets.data(), mpi_type(x.dtype()), comm.handle()),
          op);
    sum_in_order(gathered.data(), m == 0 ? 0 : total / m, m, out.mutable_data<T>());
  });
  comm.count(static_cast<std::uint64_t>(lead * m), static_cast<std::uint64_t>(total), 0, start);  // with the in-order sum
  return record(whole ? one : chunked, std::move(out), {&x}, {}, attrs_of(comm, lead));
}

Tensor copy_chunks(const Tensor& x, std::int64_t chunks, const Communicator& comm, bool whole, const char* what) {
  static constexpr OpDef chunked{"mpi::replicate_chunks", [](Backward& b) {
                                   b.accumulate(0, sum_chunks(b.grad_out(), b.payload<Communicator>(), false));
                                 }};
  static constexpr OpDef one{"mpi::replicate",
                             [](Backward& b) { b.accumulate(0, sum_chunks(b.grad_out(), b.payload<Communicator>(), true)); }};
  const char* op = whole ? one.name : chunked.name;
  const Status status = !x.defined() ? undefined : chunks < 0 ? negative_chunks : ok;
  const bool checked = status == ok && g_replication_check;
  const std::vector<Header> all =
      exchange(header(status, chunks, x, status == ok ? x.shape() : Shape{}, status == ok && any_requires_grad({&x}),
                      checked ? fingerprint(x) : 0),
               comm, op);
  validate(all, op, what, false, true);
  Tensor out;
  if (whole) {
    out = x.alias_with_shape(x.shape());  // forward identity: no copy (as reshape)
  } else {
    std::vector<std::int64_t> dims{chunks};
    for (std::int64_t d : x.shape().vec()) dims.push_back(d);
    out = broadcast_to(unsqueeze(x.detach(), 0), Shape(dims));
  }
  return record(whole ? one : chunked, std::move(out), {&x}, {}, attrs_of(comm, chunks));
}

}  // namespace

Tensor all_sum_chunks(const Tensor& x, const Communicator& comm) { return sum_chunks(x, comm, false); }

Tensor detail::all_sum_chunks_or_fail(const Tensor& x, const std::exception_ptr& local_error, const Communicator& comm) {
  return sum_chunks(x, comm, false, local_error);
}

Tensor replicate_chunks(const Tensor& x, std::int64_t chunks, const Communicator& comm) {
  return copy_chunks(x, chunks, comm, false, "x");
}

Tensor all_sum(const Tensor& x, const Communicator& comm) { return sum_chunks(x, comm, true); }

Tensor replicate(const Tensor& x, const Communicator& comm) { return copy_chunks(x, 1, comm, true, "x"); }

Tensor local_chunks(const Tensor& rows, std::int64_t chunks, const Communicator& comm) {
  static constexpr const char* op = "mpi::local_chunks";
  if (!rows.defined()) throw ValueError(fmt::format("{}: the rows are an undefined tensor", op));
  if (rows.rank() == 0) throw ShapeError(fmt::format("{}: the rows must have a leading row axis, got a scalar", op));
  const std::int64_t n = rows.size(0);
  if (chunks < 1 || n % chunks != 0)
    throw ValueError(fmt::format("{}: {} rows (shape {}) cannot be cut into {} equal chunks", op, n, rows.shape().str(),
                                 chunks));
  const ChunkRange mine = comm.chunks(chunks);
  const std::int64_t per = n / chunks;
  std::vector<std::int64_t> dims{mine.size(), per};
  for (int i = 1; i < rows.rank(); ++i) dims.push_back(rows.size(i));
  return reshape(narrow(rows, 0, mine.begin * per, mine.size() * per), dims);
}

}  // namespace hyperad::mpi
