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

void Progress::update(std::int64_t done, double objective, double validation, const std::string& validation_name) {
  if (!enabled_) return;
  const auto now = Clock::now();
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const std::int64_t run = done - first_, left = total_ - done;
  const double eta = run > 0 ? elapsed / static_cast<double>(run) * static_cast<double>(left) : NAN;
  std::string values = fmt::format("objective {:.6g}", objective);
  if (!std::isnan(validation)) values += fmt::format("  {} {:.6g}", validation_name, validation);

  if (tty_) {
    // Redraw at most ~10 times a second, and always for the last step.
    if (done < total_ && drawn_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
    const int width = 24;
    const double frac = total_ > 0 ? static_cast<double>(done) / static_cast<double>(total_) : 1.0;
    const int filled = static_cast<int>(std::lround(frac * width));
    std::string line = fmt::format("[{}{}] {}/{}  ETA {}  {}", std::string(filled, '#'), std::string(width - filled, '-'),
                                   done, total_, clock_time(eta), values);
    const auto cols = static_cast<std::size_t>(terminal_columns() - 1);
    if (line.size() > cols) line.resize(cols);
    fmt::print(stderr, "\r{}\x1b[K", line);
    std::fflush(stderr);
    drawn_ = true;
    last_draw_ = now;
    return;
  }
  const std::int64_t every = std::max<std::int64_t>(1, (total_ - first_) / 10);
  if (run == 1 || done == total_ || run % every == 0)
    fmt::print(stderr, "step {}/{}  elapsed {}  ETA {}  {}\n", done, total_, clock_time(elapsed), clock_time(eta),
               values);
}

void Progress::finish() {
  if (enabled_ && tty_ && drawn_) fmt::print(stderr, "\n");
  drawn_ = false;
}

}  // namespace hyperad::cli
