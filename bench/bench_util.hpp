#pragma once
// Small helpers shared by the benchmarks: wall-clock medians and CSV output under
// bench/results/. Benchmarks report medians and ratios measured side by side in one run.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <fmt/format.h>

namespace hyperad::bench {

/// Median of `reps` wall-clock timings of fn(), in milliseconds (one warm-up run first).
template <class Fn>
double median_ms(int reps, Fn&& fn) {
  fn();
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    const auto a = std::chrono::steady_clock::now();
    fn();
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

/// bench/results/<name> (HYPERAD_BENCH_DIR is the bench/ folder, set by CMake).
inline std::string results_path(const std::string& name) {
  std::filesystem::path dir = std::filesystem::path(HYPERAD_BENCH_DIR) / "results";
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

/// Writes rows (the first is the header) as CSV.
inline void write_csv(const std::string& path, const std::vector<std::vector<std::string>>& rows) {
  std::ofstream f(path);
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < row.size(); ++i) f << (i ? "," : "") << row[i];
    f << "\n";
  }
  fmt::print("wrote {}\n", path);
}

}  // namespace hyperad::bench
