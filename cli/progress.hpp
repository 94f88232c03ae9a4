#pragma once
// Progress of the outer loop on stderr. On a terminal: one line redrawn in place (a bar,
// the step, the ETA and the current objective). Otherwise (a pipe, a log file, CI): a
// plain line every tenth of the run, so logs stay short and readable.
#include <chrono>
#include <cstdint>
#include <string>

namespace hyperad::cli {

class Progress {
 public:
  /// Steps `first` (already done, e.g. after a resume) to `total`; nothing is shown when
  /// `enabled` is false.
  Progress(std::int64_t first, std::int64_t total, bool enabled);
  /// After step `done` (steps completed so far) with its objective and validation value
  /// (NaN: none), `validation_name` labelling the latter. `fraction`: how much of the run is
  /// done when a budget ends it (< 0: done/total).
  void update(std::int64_t done, double objective, double validation, const std::string& validation_name,
              double fraction = -1);
  /// Ends the in-place line (a newline on a terminal).
  void finish();

 private:
  using Clock = std::chrono::steady_clock;
  std::int64_t first_, total_;
  bool enabled_, tty_;
  bool drawn_ = false;
  int printed_tenths_ = 0;  // not a terminal: the tenths of the run reported so far
  Clock::time_point start_, last_draw_;
};

}  // namespace hyperad::cli
