#pragma once
/// \file state_file.hpp
/// The outer loop's save file: everything a run needs to continue exactly where it was
/// (outer.hpp saves and loads it; this file only reads and writes it).
///
/// Format (version 1; all integers and floats little-endian as in memory — the byte-order
/// mark rejects a file from a big-endian machine):
///
///     magic "HYADOUTR" (8 bytes) | u32 version | u32 byte-order mark 0x01020304
///     | u64 payload size | payload | u64 checksum (FNV-1a 64 of all preceding bytes)
///
///     payload: u32 count, count × (string key, string value)      the run's configuration
///              i64 step | i64 samples | f64 seconds
///              5 tensor lists: λ, optimizer state 1, optimizer state 2, warm w, warm v
///              u64 count, count × u64                               the method's random state
///     string:  u32 length, UTF-8 bytes
///     tensors: u32 count, count × (u8 dtype (0 float32, 1 float64), u8 rank, rank × i64
///              extent, u64 bytes, raw row-major data)
///
/// Writing is atomic: the bytes go to a temporary file unique to the process, which is
/// flushed to disk (fsync) and then renamed over `<path>`, so a crash leaves either the old
/// file or the new one, never half, and two runs sharing a path do not collide.
/// Reading checks, in order: size, magic, byte order, version, payload size, checksum,
/// then the payload's own structure; any failure throws StateFileError naming the file and
/// what is wrong.
#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "hyperad/autodiff/errors.hpp"
#include "hyperad/bilevel/problem.hpp"

namespace hyperad::bilevel {

/// A state file that cannot be read, is corrupted, or does not match the run resuming it.
class StateFileError : public Error {
 public:
  using Error::Error;
};

/// The format version this build writes and reads.
inline constexpr std::uint32_t kStateFileVersion = 1;

/// Everything an outer run saves.
struct OuterState {
  /// Settings the run was made with (method, update rule, ...), checked on resume.
  std::vector<std::pair<std::string, std::string>> config;
  std::int64_t step = 0;     ///< outer steps completed (the next step's s)
  std::int64_t samples = 0;  ///< sample-gradients consumed so far
  double seconds = 0.0;      ///< wall time so far
  TensorList lambda;
  TensorList optimizer1, optimizer2;  ///< momentum buffer; Adam's first and second moments
  TensorList warm_inner, warm_linear; ///< the method's warm-start state (WarmState)
  std::vector<std::uint64_t> random;  ///< the method's export_random_state()
};

/// Writes `state` to `path` atomically (write_file_atomically, files.hpp). Throws
/// StateFileError naming the file when it cannot be written.
void write_state_file(const std::string& path, const OuterState& state);
/// Reads and verifies a state file. Throws StateFileError naming the file and the problem.
OuterState read_state_file(const std::string& path);

/// Checks that `saved` (a tensor list from the file at `path`) has the count, shapes and
/// dtypes of `expected`; with `allow_empty` an empty list also passes. Throws
/// StateFileError: "state file '<path>': <what> tensor 1 has shape [3] float64, the run
/// has [2] float64".
void check_state_tensors(const std::string& path, const char* what, const TensorList& saved, const TensorList& expected,
                         bool allow_empty = false);

}  // namespace hyperad::bilevel
