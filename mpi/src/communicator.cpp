#include "hyperad/mpi/communicator.hpp"

#include <atomic>
#include <cstdio>
#include <string>

#include <fmt/format.h>

namespace hyperad::mpi {

namespace {
bool finalized() {
  int done = 0;
  MPI_Finalized(&done);
  return done != 0;
}

void require_initialized(const char* what) {
  int ready = 0;
  MPI_Initialized(&ready);
  if (!ready || finalized())
    throw MpiError(fmt::format("{}: MPI is not initialized (create a hyperad::mpi::Environment in main first)", what));
}
}  // namespace

void check(int code, const char* what) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) len = 0;
  throw MpiError(fmt::format("{}: MPI error {}: {}", what, code, std::string(text, static_cast<std::size_t>(len))));
}

int run_or_abort(const Communicator& comm, const std::function<int()>& fn, int failure) {
  std::string error;
  try {
    return fn();
  } catch (const std::exception& e) {
    error = e.what();
  } catch (...) {
    error = "an exception that is not a std::exception";
  }
  fmt::print(stderr, "rank {} of {}: {}\n", comm.rank(), comm.size(), error);
  std::fflush(stderr);
  // The job's size, not comm's: ranks outside a communicator of one may be waiting too.
  int job = 1;
  check(MPI_Comm_size(MPI_COMM_WORLD, &job), "mpi::run_or_abort");
  if (job > 1) MPI_Abort(comm.handle(), failure);  // aborts the job; does not return
  return failure;
}

// ---- Environment ----------------------------------------------------------------------

Environment::Environment(int& argc, char**& argv) {
  int ready = 0;
  MPI_Initialized(&ready);
  if (ready) return;
  int provided = 0;
  check(MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided), "mpi::Environment: MPI_Init_thread");
  owns_ = true;
  if (provided < MPI_THREAD_FUNNELED) {
    MPI_Finalize();
    owns_ = false;
    throw MpiError(fmt::format(
        "mpi::Environment: the MPI library gives thread level {}, below MPI_THREAD_FUNNELED ({}) that the OpenMP "
        "kernels inside each rank need",
        provided, MPI_THREAD_FUNNELED));
  }
}

Environment::~Environment() {
  if (owns_ && !finalized()) MPI_Finalize();
}

// ---- Communicator ---------------------------------------------------------------------

struct Communicator::State {
  MPI_Comm comm = MPI_COMM_NULL;
  bool owned = false;
  std::atomic<std::uint64_t> collectives{0}, sent{0}, received{0}, control{0}, bytes_sent{0}, bytes_received{0};
  std::atomic<std::uint64_t> nanoseconds{0};
  ~State() {
    if (owned && comm != MPI_COMM_NULL && !finalized()) MPI_Comm_free(&comm);
  }
};

Communicator::Communicator(std::shared_ptr<State> state) : state_(std::move(state)) {
  // Errors come back as codes (thrown by check) instead of aborting every rank.
  check(MPI_Comm_set_errhandler(state_->comm, MPI_ERRORS_RETURN), "mpi::Communicator: MPI_Comm_set_errhandler");
  check(MPI_Comm_rank(state_->comm, &rank_), "mpi::Communicator: MPI_Comm_rank");
  check(MPI_Comm_size(state_->comm, &size_), "mpi::Communicator: MPI_Comm_size");
}

Communicator Communicator::world() { return wrap(MPI_COMM_WORLD); }

Communicator Communicator::wrap(MPI_Comm comm) {
  require_initialized("mpi::Communicator");
  if (comm == MPI_COMM_NULL) throw MpiError("mpi::Communicator::wrap: MPI_COMM_NULL is not a communicator");
  // A duplicate: hyperad's collectives never meet the program's own messages, and its error
  // handler (errors returned, not fatal) stays off the program's communicator.
  auto s = std::make_shared<State>();
  check(MPI_Comm_dup(comm, &s->comm), "mpi::Communicator: MPI_Comm_dup");
  s->owned = true;
  return Communicator(std::move(s));
}

MPI_Comm Communicator::handle() const { return state_->comm; }

Communicator Communicator::split(int color, int key) const {
  require_initialized("mpi::Communicator::split");
  auto s = std::make_shared<State>();
  // Every rank takes part in the split (it is collective) before a bad color is refused.
  check(MPI_Comm_split(state_->comm, color < 0 ? MPI_UNDEFINED : color, key, &s->comm),
        "mpi::Communicator::split: MPI_Comm_split");
  if (color < 0) throw ValueError(fmt::format("mpi::Communicator::split: color must be >= 0, got {}", color));
  s->owned = true;
  return Communicator(std::move(s));
}

ChunkRange Communicator::chunks(std::int64_t total) const {
  if (total < 0) throw ValueError(fmt::format("mpi::Communicator::chunks: the number of chunks must be >= 0, got {}", total));
  const std::int64_t n = size_, r = rank_, base = total / n, extra = total % n;
  const std::int64_t begin = r * base + std::min(r, extra);
  return {begin, begin + base + (r < extra ? 1 : 0)};
}

Traffic Communicator::traffic() const {
  return {state_->collectives.load(), state_->sent.load(),           state_->received.load(),
          state_->control.load(),     state_->bytes_sent.load(),     state_->bytes_received.load(),
          1e-9 * static_cast<double>(state_->nanoseconds.load())};
}

void Communicator::reset_traffic() const {
  state_->collectives = 0, state_->sent = 0, state_->received = 0, state_->control = 0;
  state_->bytes_sent = 0, state_->bytes_received = 0, state_->nanoseconds = 0;
}

namespace {
std::uint64_t nanoseconds_since(Communicator::Clock::time_point start) {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Communicator::Clock::now() - start).count());
}
}  // namespace

void Communicator::count(std::uint64_t sent, std::uint64_t received, std::uint64_t control,
                         Clock::time_point start) const {
  state_->nanoseconds += nanoseconds_since(start);
  state_->collectives += 1;
  state_->sent += sent;
  state_->received += received;
  state_->control += control;
}

void Communicator::count_bytes(std::uint64_t sent, std::uint64_t received, Clock::time_point start) const {
  state_->nanoseconds += nanoseconds_since(start);
  state_->collectives += 1;
  state_->bytes_sent += sent;
  state_->bytes_received += received;
}

}  // namespace hyperad::mpi
