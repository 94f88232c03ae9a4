// Output files (files.hpp): a replaced file is whole or untouched, no temporary survives a
// write (succeeded or failed), concurrent writers do not share a temporary, devices are
// written in place, and every failed byte is an IOError naming the file and the reason.
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "hyperad/bilevel/files.hpp"
#include "temp_files.hpp"

using namespace hyperad;
using namespace hyperad::bilevel;
using hyperad::testing::leftover_temporaries;

namespace {

std::filesystem::path scratch() {
  const auto dir = std::filesystem::temp_directory_path() / ("hyperad_files_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return dir;
}

std::string read(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

}  // namespace

TEST_CASE("write_file_atomically replaces the file whole and leaves no temporary") {
  const std::string path = (scratch() / "out.txt").string();
  write_file_atomically(path, "first\n", "test");
  CHECK(read(path) == "first\n");
  write_file_atomically(path, std::string(100000, 'x'), "test");
  CHECK(read(path) == std::string(100000, 'x'));
  write_file_atomically(path, "", "test");  // empty is a valid content
  CHECK(read(path).empty());
  CHECK(leftover_temporaries(path) == 0);
  std::filesystem::remove_all(scratch());
}

TEST_CASE("write_file_atomically failures: IOError with the reason, no temporary left, the old file intact") {
  const std::filesystem::path dir = scratch();
  // A missing directory.
  const std::string missing = (dir / "no_such_dir" / "x").string();
  CHECK_THROWS_WITH_AS(write_file_atomically(missing, "a", "--csv"),
                       doctest::Contains(("--csv: cannot create '" + missing + ".tmp.").c_str()), IOError);
  CHECK_THROWS_WITH_AS(write_file_atomically(missing, "a", "--csv"), doctest::Contains("No such file or directory"),
                       IOError);
  // A directory as the target.
  const std::string sub = (dir / "sub").string();
  std::filesystem::create_directories(sub);
  CHECK_THROWS_WITH_AS(write_file_atomically(sub, "a", "--plot"), doctest::Contains(("--plot: '" + sub + "' is a directory").c_str()),
                       IOError);
  CHECK(leftover_temporaries(sub) == 0);
  CHECK(std::filesystem::is_directory(sub));
  // A full device: written in place (never replaced by a regular file), the error reported.
  if (std::filesystem::exists("/dev/full")) {
    CHECK_THROWS_WITH_AS(write_file_atomically("/dev/full", std::string(10000, 'x'), "--csv"),
                         doctest::Contains("--csv: writing '/dev/full' failed: No space left on device"), IOError);
    CHECK(std::filesystem::is_character_file("/dev/full"));
    CHECK(leftover_temporaries("/dev/full") == 0);
  }
  // /dev/null accepts anything.
  if (std::filesystem::exists("/dev/null")) {
    CHECK_NOTHROW(write_file_atomically("/dev/null", "discarded", "--csv"));
    CHECK(std::filesystem::is_character_file("/dev/null"));
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("append_to_file appends, creates, and reports a full disk") {
  const std::string path = (scratch() / "log.csv").string();
  append_to_file(path, "a,b\n", "log");
  append_to_file(path, "1,2\n", "log");
  CHECK(read(path) == "a,b\n1,2\n");
  if (std::filesystem::exists("/dev/full"))
    CHECK_THROWS_WITH_AS(append_to_file("/dev/full", "1,2\n", "OuterOptimizer: the CSV log"),
                         doctest::Contains("OuterOptimizer: the CSV log: appending to '/dev/full' failed: No space left"),
                         IOError);
  CHECK_THROWS_WITH_AS(append_to_file((scratch() / "none" / "x").string(), "1", "log"),
                       doctest::Contains("cannot open"), IOError);
  std::filesystem::remove_all(scratch());
}

TEST_CASE("two processes replacing one path: every read sees one writer's whole content") {
  const std::string path = (scratch() / "shared.state").string();
  const std::string a(200000, 'a'), b(300000, 'b');
  write_file_atomically(path, a, "test");
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    try {
      for (int i = 0; i < 200; ++i) write_file_atomically(path, b, "child");
    } catch (...) {
      ::_exit(1);
    }
    ::_exit(0);
  }
  int torn = 0;
  for (int i = 0; i < 200; ++i) {
    write_file_atomically(path, a, "parent");
    const std::string got = read(path);
    if (got != a && got != b) ++torn;
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);  // the child never failed on a shared temporary
  CHECK(torn == 0);
  CHECK(leftover_temporaries(path) == 0);
  std::filesystem::remove_all(scratch());
}
