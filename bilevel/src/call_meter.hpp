#pragma once
// What one hypergradient call measures for its Diagnostics: wall time and its thread plan
// (CallClock; every call), and peak tape memory, owned and referenced (CallMeter).
#include <chrono>
#include <string>

#include <fmt/format.h>

#include "hyperad/autodiff/runtime.hpp"
#include "hyperad/autodiff/tape.hpp"
#include "hyperad/bilevel/hypergradient.hpp"

namespace hyperad::bilevel::detail {

/// The call's wall time and its kernels' thread plan (one thread count for the call).
class CallClock {
 public:
  /// Fills d.seconds, d.threads and d.parallel_stalls.
  void finish(Diagnostics& d) const {
    d.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    d.threads = plan_.threads();
    d.parallel_stalls = plan_.stalls();
  }

 private:
  std::chrono::steady_clock::time_point t0_ = std::chrono::steady_clock::now();
  runtime::ThreadPlan plan_;
};

class CallMeter {
 public:
  CallMeter() : tape_(Tape::current()) {
    tape_.reset_peak_memory();
    owned_base_ = tape_.owned_bytes();
    referenced_base_ = tape_.referenced_bytes();
  }
  /// Fills the CallClock's fields, d.peak_tape_bytes and d.peak_referenced_bytes (above the
  /// levels at construction); in strict mode, throws UntrustedError when a check failed.
  void finish(Diagnostics& d, bool strict) const {
    auto above = [](std::size_t peak, std::size_t base) { return peak > base ? peak - base : 0; };
    d.peak_tape_bytes = above(tape_.peak_owned_bytes(), owned_base_);
    d.peak_referenced_bytes = above(tape_.peak_referenced_bytes(), referenced_base_);
    clock_.finish(d);
    if (strict && !d.trusted()) {
      std::string why;
      for (const Concern& c : d.concerns) why += (why.empty() ? "" : "; ") + c.message;
      throw UntrustedError(fmt::format("{}: the hypergradient cannot be trusted: {}", d.method, why));
    }
  }

 private:
  Tape& tape_;
  std::size_t owned_base_ = 0, referenced_base_ = 0;
  CallClock clock_;
};

}  // namespace hyperad::bilevel::detail
