#include "hyperad/bilevel/files.hpp"

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>
#include <unistd.h>

namespace hyperad::bilevel {

namespace {

// Writes all of `bytes` to `f`, flushes (fsync with `sync`) and closes it; 0, or the errno
// of the first failure (a failed close counts: buffered bytes may be lost there).
int write_and_close(std::FILE* f, std::string_view bytes, bool sync) {
  const bool written = (bytes.empty() || std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size()) &&
                       std::fflush(f) == 0 && (!sync || ::fsync(::fileno(f)) == 0);
  int err = written ? 0 : errno;
  if (std::fclose(f) != 0 && err == 0) err = errno;
  return err;
}

}  // namespace

void write_file_atomically(const std::string& path, std::string_view bytes, const std::string& who) {
  // A device or pipe (/dev/null, /dev/stdout, a FIFO) is written in place: renaming a
  // regular file over it would replace the device. A directory is refused by name.
  std::error_code ec;
  const auto kind = std::filesystem::status(path, ec).type();
  if (kind == std::filesystem::file_type::directory) throw IOError(fmt::format("{}: '{}' is a directory", who, path));
  if (kind != std::filesystem::file_type::not_found && kind != std::filesystem::file_type::regular &&
      kind != std::filesystem::file_type::none) {
    std::FILE* dev = std::fopen(path.c_str(), "wb");
    if (!dev) throw IOError(fmt::format("{}: cannot open '{}' for writing: {}", who, path, std::strerror(errno)));
    if (const int err = write_and_close(dev, bytes, false); err != 0)
      throw IOError(fmt::format("{}: writing '{}' failed: {}", who, path, std::strerror(err)));
    return;
  }
  static std::atomic<unsigned> counter{0};
  const std::string tmp = fmt::format("{}.tmp.{}.{}", path, ::getpid(), counter++);
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw IOError(fmt::format("{}: cannot create '{}' (to replace '{}'): {}", who, tmp, path, std::strerror(errno)));
  int err = write_and_close(f, bytes, true);
  if (err != 0) {
    std::remove(tmp.c_str());
    throw IOError(fmt::format("{}: writing '{}' failed: {}", who, path, std::strerror(err)));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    err = errno;
    std::remove(tmp.c_str());
    throw IOError(fmt::format("{}: cannot replace '{}': {}", who, path, std::strerror(err)));
  }
}

void append_to_file(const std::string& path, std::string_view text, const std::string& who) {
  std::FILE* f = std::fopen(path.c_str(), "ab");
  if (!f) throw IOError(fmt::format("{}: cannot open '{}' to append: {}", who, path, std::strerror(errno)));
  if (const int err = write_and_close(f, text, false); err != 0)
    throw IOError(fmt::format("{}: appending to '{}' failed: {}", who, path, std::strerror(err)));
}

}  // namespace hyperad::bilevel
