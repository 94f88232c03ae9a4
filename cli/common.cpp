#include "common.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>

#include <fmt/format.h>
#include <omp.h>

#include "hyperad/autodiff/errors.hpp"
#include "hyperad/autodiff/runtime.hpp"
#include "hyperad/problems/data.hpp"
#include "hyperad/problems/registry.hpp"

namespace hyperad::cli {

void add_problem_args(CLI::App& sub, ProblemArgs& a) {
  // An unknown problem is a bad command line (exit 2), named with the valid ones.
  sub.add_option("problem", a.problem, "The problem to build (see 'hyperad list problems')")
      ->required()
      ->check(CLI::Validator(
          [](std::string& name) -> std::string {
            try {
              (void)problems::find_problem(name);
            } catch (const Error& e) {
              return e.what();
            }
            return {};
          },
          "PROBLEM"));
  sub.add_option("--dataset", a.dataset, "A dataset the problem accepts (default: its first)");
  sub.add_option("--data-dir", a.data_dir, "Where Fashion-MNIST is (default: " + std::string(problems::kFashionMnistDir) + ")");
  sub.add_option("--seed", a.seed, "Seed of the data splits, initialization and sampling")
      ->check(CLI::Validator(
          [](std::string& s) -> std::string {
            // strtoull accepts "-1" (as 2^64 - 1) and clamps overflow: only plain digits in range pass.
            errno = 0;
            char* end = nullptr;
            const bool digits = !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
            (void)std::strtoull(s.c_str(), &end, 10);
            if (!digits || *end != '\0' || errno == ERANGE)
              return fmt::format("expected a whole number in [0, {}], got '{}'", std::numeric_limits<std::uint64_t>::max(), s);
            return {};
          },
          "NONNEGATIVE"))
      ->capture_default_str();
  sub.add_option("--option,-o", a.options, "A problem-specific setting key=value (repeatable; see 'hyperad list')");
  sub.add_option("--threads", a.threads, "Compute threads (0: OMP_NUM_THREADS or the cores)")
      ->check(whole_number(0))
      ->capture_default_str();
}

problems::ProblemConfig problem_config(const ProblemArgs& a) {
  problems::ProblemConfig c;
  c.dataset = a.dataset;
  c.data_dir = a.data_dir;
  c.seed = a.seed;
  c.small = a.small;
  for (const std::string& kv : a.options) {
    const std::size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0)
      throw ValueError(fmt::format("--option '{}': expected key=value (e.g. --option train_size=200)", kv));
    c.options[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return c;
}

// Both the kernels' count and OpenMP's (the finite-difference reference runs its own
// parallel loop).
void apply_threads(int threads) {
  if (threads <= 0) return;
  hyperad::runtime::set_num_threads(threads);
  omp_set_num_threads(threads);
}

CLI::Validator whole_number(long long min) {
  return CLI::Validator(
      [min](std::string& s) -> std::string {
        errno = 0;
        char* end = nullptr;
        const long long v = std::strtoll(s.c_str(), &end, 10);
        if (s.empty() || *end != '\0' || errno == ERANGE || v < min || v > std::numeric_limits<int>::max())
          return fmt::format("expected a whole number >= {}, got '{}'", min, s);
        return {};
      },
      min > 0 ? "POSITIVE" : "NONNEGATIVE");
}

CLI::Validator real_number(double min) {
  return CLI::Validator(
      [min](std::string& s) -> std::string {
        errno = 0;
        char* end = nullptr;
        const double v = std::strtod(s.c_str(), &end);
        if (s.empty() || *end != '\0' || errno == ERANGE || !std::isfinite(v) || v < min)
          return fmt::format("expected a number >= {}, got '{}'", min, s);
        return {};
      },
      "NONNEGATIVE");
}

std::string num(double v) {
  if (std::isnan(v)) return "-";
  return fmt::format("{:.6g}", v);
}

std::string sci(double v) {
  if (std::isnan(v)) return "-";
  return fmt::format("{:.1e}", v);
}

std::string duration(double s) {
  if (s < 0.01) return fmt::format("{:.2f} ms", 1e3 * s);
  if (s < 1) return fmt::format("{:.0f} ms", 1e3 * s);
  if (s < 60) return fmt::format("{:.1f} s", s);
  const auto total = static_cast<long>(std::lround(s));
  return fmt::format("{} min {:02} s", total / 60, total % 60);
}

namespace {
// Display width of UTF-8 text: lead bytes only, so 'λ' or '‖' take one column.
std::size_t display_width(const std::string& s) {
  return static_cast<std::size_t>(
      std::count_if(s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}
}  // namespace

std::string Table::str(const std::string& indent) const {
  std::vector<std::size_t> width(header_.size(), 0);
  auto measure = [&](const std::vector<std::string>& row) {
    for (std::size_t i = 0; i < row.size() && i < width.size(); ++i) width[i] = std::max(width[i], display_width(row[i]));
  };
  measure(header_);
  for (const auto& r : rows_) measure(r);
  auto line = [&](const std::vector<std::string>& row) {
    std::string out = indent;
    for (std::size_t i = 0; i < width.size(); ++i) {
      const std::string cell = i < row.size() ? row[i] : "";
      const std::string pad(width[i] - std::min(width[i], display_width(cell)), ' ');
      if (i > 0) out += "  ";
      const bool left = i < align_.size() ? align_[i] == 'l' : i == 0;
      out += left ? cell + pad : pad + cell;
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out + "\n";
  };
  std::string out = line(header_);
  for (const auto& r : rows_) out += line(r);
  return out;
}

}  // namespace hyperad::cli
