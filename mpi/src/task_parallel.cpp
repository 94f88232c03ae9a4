#include "hyperad/mpi/task_parallel.hpp"

#include <climits>

#include <fmt/format.h>

#include "collectives_internal.hpp"

namespace hyperad::mpi {

namespace {

class RankExchange final : public bilevel::UnitExchange {
 public:
  explicit RankExchange(Communicator comm) : comm_(std::move(comm)) {}

  std::pair<std::int64_t, std::int64_t> share(std::int64_t count) const override {
    const ChunkRange mine = comm_.chunks(count);
    return {mine.begin, mine.end};
  }

  std::vector<std::string> all_gather(const std::string& mine) const override {
    static constexpr const char* op = "mpi::task_parallel";
    detail::require_usable(op);
    const auto n = static_cast<std::size_t>(comm_.size());
    std::uint64_t size = mine.size();
    std::vector<std::uint64_t> sizes(n);
    const auto start = Communicator::Clock::now();
    check(MPI_Allgather(&size, 1, MPI_UINT64_T, sizes.data(), 1, MPI_UINT64_T, comm_.handle()), op);
    std::vector<int> counts(n), offsets(n);
    std::uint64_t total = 0;
    for (std::size_t q = 0; q < n; ++q) {
      if (total + sizes[q] > INT_MAX)
        throw ValueError(fmt::format("{}: the episodes' outcomes of {} ranks exceed MPI's int count of {} bytes", op,
                                     q + 1, INT_MAX));
      counts[q] = static_cast<int>(sizes[q]);
      offsets[q] = static_cast<int>(total);
      total += sizes[q];
    }
    comm_.count(0, 0, n, start);
    std::string all(total, '\0');
    const auto start_data = Communicator::Clock::now();
    check(MPI_Allgatherv(mine.data(), counts[static_cast<std::size_t>(comm_.rank())], MPI_CHAR, all.data(),
                         counts.data(), offsets.data(), MPI_CHAR, comm_.handle()),
          op);
    comm_.count_bytes(mine.size(), total, start_data);
    std::vector<std::string> out(n);
    for (std::size_t q = 0; q < n; ++q) out[q] = all.substr(static_cast<std::size_t>(offsets[q]), sizes[q]);
    return out;
  }

  std::string describe() const override { return fmt::format("{} MPI rank{}", comm_.size(), comm_.size() == 1 ? "" : "s"); }

 private:
  Communicator comm_;
};

}  // namespace

std::shared_ptr<const bilevel::UnitExchange> task_parallel(const Communicator& comm) {
  return std::make_shared<const RankExchange>(comm);
}

}  // namespace hyperad::mpi
