#pragma once
// Wall time and peak tape memory (owned and referenced) of one hypergradient call, for its
// Diagnostics.
#include <chrono>
#include <string>

#include <fmt/format.h>

#include "hyperad/autodiff/tape.hpp"
#include "hyperad/bilevel/hypergradient.hpp"

namespace hyperad::bilevel::detail {

class CallMeter {
 public:
  CallMeter() : tape_(Tape::current()), t0_(std::chrono::steady_clock::now()) {
    tape_.reset_peak_memory();
    owned_base_ = tape_.owned_bytes();
    referenced_base_ = tape_.referenced_bytes();
  }
  /// Fills d.seconds, d.peak_tape_bytes and d.peak_referenced_bytes (above the levels at
  /// construction); in strict mode, throws UntrustedError when a check failed.
  void finish(Diagnostics& d, bool strict) const {
    auto above = [](std::size_t peak, std::size_t base) { return peak > base ? peak - base : 0; };
    d.peak_tape_bytes = above(tape_.peak_owned_bytes(), owned_base_);
    d.peak_referenced_bytes = above(tape_.peak_referenced_bytes(), referenced_base_);
    d.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    if (strict && !d.trusted()) {
      std::string why;
      for (const Concern& c : d.concerns) why += (why.empty() ? "" : "; ") + c.message;
      throw UntrustedError(fmt::format("{}: the hypergradient cannot be trusted: {}", d.method, why));
    }
  }

 private:
  Tape& tape_;
  std::size_t owned_base_ = 0, referenced_base_ = 0;
  std::chrono::steady_clock::time_point t0_;
};

}  // namespace hyperad::bilevel::detail
