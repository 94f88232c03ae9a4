#pragma once
// For tests that check parts of an error message (doctest's CHECK_THROWS_WITH wants the
// whole message): the message of the exception of type E that f throws.
#include <string>

namespace hyperad::testing {

/// What f throws as an E, or "(nothing thrown)" (another exception type propagates).
template <class E, class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "(nothing thrown)";
}

}  // namespace hyperad::testing
