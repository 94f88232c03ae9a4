#include "progress.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <fmt/format.h>

namespace hyperad::cli {

namespace {

int terminal_columns() {
  winsize ws{};
  if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20) return ws.ws_col;
  return 80;
}

std::string clock_time(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--";
  const auto s = static_cast<long>(std::lround(seconds));
  return s >= 3600 ? fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60) : fmt::format("{}:{:02}", s / 60, s % 60);
}

}  // namespace

Progress::Progress(std::int64_t first, std::int64_t total, bool enabled)
    : first_(first), total_(total), enabled_(enabled), tty_(isatty(STDERR_FILENO) != 0), start_(Clock::now()),
      last_draw_(start_) {}

void Progress::update(std::int64_t done, double objective, double validation, const std::string& validation_name,
                      double fraction) {
  if (!enabled_) return;
  const auto now = Clock::now();
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double start = total_ > 0 ? static_cast<double>(first_) / static_cast<double>(total_) : 0.0;
  const double frac = fraction >= 0 ? fraction : total_ > 0 ? static_cast<double>(done) / static_cast<double>(total_) : 1.0;
  const double eta = frac > start ? elapsed / (frac - start) * (1.0 - frac) : NAN;
  // A budget-bound run has no meaningful step total.
  const bool unbounded = total_ >= (std::int64_t{1} << 50);
  const std::string count = unbounded ? fmt::format("{}", done) : fmt::format("{}/{}", done, total_);
  std::string values = fmt::format("objective {:.6g}", objective);
  if (!std::isnan(validation)) values += fmt::format("  {} {:.6g}", validation_name, validation);
  const bool last = frac >= 1.0;

  if (tty_) {
    // Redraw at most ~10 times a second, and always for the last step.
    if (!last && drawn_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
    const int width = 24;
    const int filled = static_cast<int>(std::lround(frac * width));
    std::string line = fmt::format("[{}{}] {}{}  ETA {}  {}", std::string(filled, '#'), std::string(width - filled, '-'),
                                   unbounded ? "step " : "", count, clock_time(eta), values);
    const auto cols = static_cast<std::size_t>(terminal_columns() - 1);
    if (line.size() > cols) line.resize(cols);
    fmt::print(stderr, "\r{}\x1b[K", line);
    std::fflush(stderr);
    drawn_ = true;
    last_draw_ = now;
    return;
  }
  const int tenths = static_cast<int>(std::floor(frac * 10));
  if (done - first_ == 1 || last || tenths > printed_tenths_) {
    printed_tenths_ = std::max(printed_tenths_, tenths);
    fmt::print(stderr, "step {}  elapsed {}  ETA {}  {}\n", count, clock_time(elapsed), clock_time(eta), values);
  }
}

void Progress::finish() {
  if (enabled_ && tty_ && drawn_) fmt::print(stderr, "\n");
  drawn_ = false;
}

}  // namespace hyperad::cli
