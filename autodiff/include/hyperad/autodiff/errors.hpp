#pragma once
/// \file errors.hpp
/// The exception types hyperad throws. Every message names the operation and the
/// offending shapes or values, so a user can act on it without a debugger.
#include <stdexcept>
#include <string>

namespace hyperad {

/// Base class of every hyperad error.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Operands whose shapes do not fit the operation (e.g. matmul of [3, 4] and [5, 2]).
class ShapeError : public Error {
 public:
  using Error::Error;
};

/// Operands of different or unsupported dtypes.
class DtypeError : public Error {
 public:
  using Error::Error;
};

/// An argument outside its valid range (an axis, an index, a negative size, ...).
class ValueError : public Error {
 public:
  using Error::Error;
};

/// A misuse of the tape: a gradient of a tensor from a rewound scope, with respect to
/// something not on the tape, across threads, or of a tensor modified in place after
/// it was saved for the backward pass.
class TapeError : public Error {
 public:
  using Error::Error;
};

/// A NaN or Inf produced by an op while finite-checking is on (see `FiniteCheckGuard`).
class NonFiniteError : public Error {
 public:
  using Error::Error;
};

/// An iteration (inner solver, fixed point, linear solve) that diverged or, when asked to
/// throw, did not converge; the message gives the iteration and the norms involved.
class ConvergenceError : public Error {
 public:
  using Error::Error;
};

}  // namespace hyperad
