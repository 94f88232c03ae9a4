#pragma once
/// \file files.hpp
/// Output files that a crash, a full disk or a second process cannot leave half-written:
/// the state files, the CSV logs and the figures all go through these.
#include <string>
#include <string_view>

#include "hyperad/autodiff/errors.hpp"

namespace hyperad::bilevel {

/// A file that cannot be written (the message names the file, what was being done, and
/// the system's reason).
class IOError : public Error {
 public:
  using Error::Error;
};

/// Replaces `path` by `bytes` so that a reader, a crash or a kill at any moment sees the
/// old file or the whole new one, never a mix: the bytes go to a temporary file in the
/// same directory whose name is unique to this process and call (two runs writing the
/// same path do not share it), are flushed to disk (fsync), and the temporary is renamed
/// over `path`. On any failure the temporary is removed and IOError names `who` (e.g.
/// "--plot"), the path and the system's reason. A `path` that is a device or a pipe
/// (/dev/null, a FIFO) is written in place, checked the same way; a directory is refused.
void write_file_atomically(const std::string& path, std::string_view bytes, const std::string& who);

/// Appends `text` to `path` (created if absent) and flushes it; IOError naming `who`, the
/// path and the reason when any byte fails to reach the file (a full disk, /dev/full).
void append_to_file(const std::string& path, std::string_view text, const std::string& who);

}  // namespace hyperad::bilevel
