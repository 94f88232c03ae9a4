#pragma once
// Small helpers shared by the benchmarks: command-line flags, wall-clock medians and CSV
// output under bench/results/. Benchmarks report medians and ratios measured side by side
// in one run.
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace hyperad::bench {

/// One `--name value` flag of a benchmark and where its value goes: a whole number >= 1
/// (int or int64) or a string.
struct Flag {
  std::string_view name;
  std::variant<int*, std::int64_t*, std::string*> value;
};

/// Reads `--name value` pairs into `flags`. An unknown flag, a missing value or a number
/// that is not a whole number >= 1 ends the program with a one-line message (exit 2).
inline void parse_flags(int argc, char** argv, std::initializer_list<Flag> flags) {
  const std::string program = std::filesystem::path(argc > 0 ? argv[0] : "bench").filename().string();
  auto fail = [&](const std::string& why) {
    std::string usage;
    for (const Flag& f : flags)
      usage += fmt::format(" [{} {}]", f.name, std::holds_alternative<std::string*>(f.value) ? "S" : "N");
    fmt::print(stderr, "{}: {} (usage: {}{})\n", program, why, program, usage);
    std::exit(2);
  };
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const auto flag = std::find_if(flags.begin(), flags.end(), [&](const Flag& f) { return f.name == arg; });
    if (flag == flags.end()) fail(fmt::format("unknown option '{}'", arg));
    if (i + 1 >= argc) fail(fmt::format("{}: missing value", arg));
    const std::string_view text = argv[++i];
    if (auto* str = std::get_if<std::string*>(&flag->value)) {
      **str = text;
      continue;
    }
    std::int64_t v = 0;
    const auto [end, err] = std::from_chars(text.data(), text.data() + text.size(), v);
    const std::int64_t max = std::holds_alternative<int*>(flag->value) ? INT32_MAX : INT64_MAX;
    if (err != std::errc() || end != text.data() + text.size() || v < 1 || v > max)
      fail(fmt::format("{}: expected a whole number >= 1, got '{}'", arg, text));
    if (auto* i32 = std::get_if<int*>(&flag->value))
      **i32 = static_cast<int>(v);
    else
      *std::get<std::int64_t*>(flag->value) = v;
  }
}

/// The median of `v` (the upper one for an even count); 0 for an empty list.
inline double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

/// Runs fn() unmeasured for `ms` milliseconds: an idle core is clocked down and needs tens
/// of milliseconds of work to come back to speed.
template <class Fn>
void warm_up(Fn&& fn, int ms = 100) {
  const auto start = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - start < std::chrono::milliseconds(ms)) fn();
}

/// Wall-clock time of one call fn(), in milliseconds.
template <class Fn>
double elapsed_ms(Fn&& fn) {
  const auto a = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count();
}

/// Median of `reps` wall-clock timings of fn(), in milliseconds (one warm-up run first).
template <class Fn>
double median_ms(int reps, Fn&& fn) {
  fn();
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) t.push_back(elapsed_ms(fn));
  return median(std::move(t));
}

/// bench/results/<name> (HYPERAD_BENCH_DIR is the bench/ folder, set by CMake).
inline std::string results_path(const std::string& name) {
  std::filesystem::path dir = std::filesystem::path(HYPERAD_BENCH_DIR) / "results";
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

#ifdef HYPERAD_FIGURES_DIR
/// docs/figures/<name> (set by CMake for the reproduction drivers), the folder created.
inline std::string figure_path(const std::string& name) {
  std::filesystem::create_directories(HYPERAD_FIGURES_DIR);
  return (std::filesystem::path(HYPERAD_FIGURES_DIR) / name).string();
}
#endif

/// The --mode of a reproduction driver (bench/repro/): true for "quick", false for "full";
/// anything else prints why and exits with status 2. Quick modes write their files with
/// "_quick" before the extension, so the published full results stay.
inline bool quick_mode(const std::string& mode, const char* driver) {
  if (mode == "quick" || mode == "full") return mode == "quick";
  fmt::print(stderr, "{}: --mode {}: expected quick or full\n", driver, mode);
  std::exit(2);
}

/// Writes rows (the first is the header) as CSV; a cell holding a comma, a quote or a line
/// break is quoted, its quotes doubled (RFC 4180).
inline void write_csv(const std::string& path, const std::vector<std::vector<std::string>>& rows) {
  std::ofstream f(path);
  auto cell = [](const std::string& c) {
    if (c.find_first_of(",\"\n\r") == std::string::npos) return c;
    std::string q = "\"";
    for (char ch : c) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
    return q + "\"";
  };
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < row.size(); ++i) f << (i ? "," : "") << cell(row[i]);
    f << "\n";
  }
  fmt::print("wrote {}\n", path);
}

}  // namespace hyperad::bench
