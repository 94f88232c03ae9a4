#pragma once
// Wall time and peak tape memory of one hypergradient call, for its Diagnostics.
#include <chrono>
#include <string>

#include <fmt/format.h>

#include "hyperad/autodiff/tape.hpp"
#include "hyperad/bilevel/hypergradient.hpp"

namespace hyperad::bilevel::detail {

class CallMeter {
 public:
  CallMeter() : tape_(Tape::current()), base_(tape_.memory_bytes()), t0_(std::chrono::steady_clock::now()) {
    tape_.reset_peak_memory();
  }
  /// Fills d.seconds and d.peak_tape_bytes (memory above the level at construction); in
  /// strict mode, throws UntrustedError when a check failed.
  void finish(Diagnostics& d, bool strict) const {
    const std::size_t peak = tape_.peak_memory_bytes();
    d.peak_tape_bytes = peak > base_ ? peak - base_ : 0;
    d.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    if (strict && !d.trusted()) {
      std::string why;
      for (const Concern& c : d.concerns) why += (why.empty() ? "" : "; ") + c.message;
      throw UntrustedError(fmt::format("{}: the hypergradient cannot be trusted: {}", d.method, why));
    }
  }

 private:
  Tape& tape_;
  std::size_t base_;
  std::chrono::steady_clock::time_point t0_;
};

}  // namespace hyperad::bilevel::detail
