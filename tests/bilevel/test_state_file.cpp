// The outer loop's state file: exact round trip of every field and dtype, atomic writes,
// and rejection — with the file's name and the reason — of missing, short, foreign,
// newer-version, truncated, corrupted, malformed and mismatched files, and a bounded fuzz run.
#include <doctest/doctest.h>

#include "thrown.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "temp_files.hpp"
#include "hyperad/bilevel/aid.hpp"
#include "hyperad/bilevel/outer.hpp"
#include "hyperad/bilevel/state_file.hpp"
#include "hyperad/hyperad.hpp"

using namespace hyperad;
using namespace hyperad::bilevel;

namespace {

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("hyperad_test_state_" + name)).string();
}

std::vector<char> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
void write_bytes(const std::string& path, const std::vector<char>& b) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(b.data(), static_cast<std::streamsize>(b.size()));
}
// The documented checksum: FNV-1a 64 of every byte before it.
void fix_checksum(std::vector<char>& b) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (std::size_t i = 0; i + 8 < b.size(); ++i) {
    h ^= static_cast<unsigned char>(b[i]);
    h *= 0x100000001b3ull;
  }
  std::memcpy(b.data() + b.size() - 8, &h, 8);
}

OuterState sample_state() {
  Generator g(1);
  OuterState s;
  s.config = {{"method", "AID-CG"}, {"update", "adam(beta1=0.9)"}, {"note", "λ ünïcode"}};
  s.step = 42;
  s.samples = 1234567890123;
  s.seconds = 3.25;
  s.lambda = {randn({2}, g), randn({2, 3}, g, Dtype::f32)};
  s.optimizer1 = {randn({2}, g), randn({2, 3}, g, Dtype::f32)};
  s.optimizer2 = {};
  s.warm_inner = {scalar(-0.0), randn({4, 1, 2}, g)};
  s.warm_linear = {zeros({0})};
  s.random = {0ull, ~0ull, 0x0123456789abcdefull};
  return s;
}

void check_same(const TensorList& a, const TensorList& b) {
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].shape() == b[i].shape());
    CHECK(a[i].dtype() == b[i].dtype());
    // memcmp must not see the null data pointer of an empty tensor
    CHECK((a[i].nbytes() == 0 || std::memcmp(a[i].raw(), b[i].raw(), a[i].nbytes()) == 0));
  }
}

std::string message_of(const std::function<void()>& f) { return testing::message_of<StateFileError>(f); }

}  // namespace

TEST_CASE("round trip: every field, both dtypes, empty lists and zero-size tensors, bit for bit") {
  const std::string path = temp_path("roundtrip");
  const OuterState s = sample_state();
  write_state_file(path, s);
  CHECK(hyperad::testing::leftover_temporaries(path) == 0);
  const OuterState r = read_state_file(path);
  CHECK(r.config == s.config);
  CHECK(r.step == 42);
  CHECK(r.samples == 1234567890123);
  CHECK(r.seconds == 3.25);
  check_same(r.lambda, s.lambda);
  check_same(r.optimizer1, s.optimizer1);
  check_same(r.optimizer2, s.optimizer2);
  check_same(r.warm_inner, s.warm_inner);
  CHECK(std::signbit(r.warm_inner[0].item()));  // −0 kept
  check_same(r.warm_linear, s.warm_linear);
  CHECK(r.random == s.random);
  // Overwriting replaces the file in one piece.
  OuterState t = s;
  t.step = 43;
  write_state_file(path, t);
  CHECK(read_state_file(path).step == 43);
  std::filesystem::remove(path);
}

TEST_CASE("a file that cannot be written is reported with its name") {
  const std::string path = temp_path("no_such_dir") + "/state";
  CHECK_THROWS_WITH_AS(write_state_file(path, sample_state()),
                       doctest::Contains(("state file '" + path + "': cannot create '" + path + ".tmp.").c_str()),
                       StateFileError);
  // A directory in place of the file, to write or to read.
  const std::string dir = temp_path("a_directory");
  std::filesystem::create_directories(dir);
  CHECK_THROWS_WITH_AS(write_state_file(dir, sample_state()), doctest::Contains(("'" + dir + "' is a directory").c_str()),
                       StateFileError);
  CHECK_THROWS_WITH_AS(read_state_file(dir), doctest::Contains(("state file '" + dir + "': is a directory").c_str()),
                       StateFileError);
  std::filesystem::remove_all(dir);
}

TEST_CASE("damaged files are rejected with the file's name and what is wrong") {
  const std::string path = temp_path("damaged");
  write_state_file(path, sample_state());
  const std::vector<char> good = read_bytes(path);
  const std::string prefix = "state file '" + path + "': ";
  auto rejects = [&](const std::vector<char>& bytes, const std::string& why) {
    write_bytes(path, bytes);
    const std::string msg = message_of([&] { read_state_file(path); });
    CAPTURE(msg);
    CHECK(msg.find(prefix) == 0);
    CHECK(msg.find(why) != std::string::npos);
  };

  SUBCASE("missing") {
    std::filesystem::remove(path);
    const std::string msg = message_of([&] { read_state_file(path); });
    CHECK(msg.find(prefix + "cannot open it") == 0);
  }
  SUBCASE("empty or too short") {
    rejects({}, "only 0 bytes, too short to be an outer state file");
    rejects(std::vector<char>(good.begin(), good.begin() + 20), "only 20 bytes");
  }
  SUBCASE("not a state file") {
    std::vector<char> b = good;
    std::memcpy(b.data(), "PK\x03\x04....", 8);
    rejects(b, "not a hyperad outer state file");
  }
  SUBCASE("another format version") {
    std::vector<char> b = good;
    const std::uint32_t v = 2;
    std::memcpy(b.data() + 8, &v, 4);
    rejects(b, "format version 2, but this build reads version 1");
  }
  SUBCASE("another byte order") {
    std::vector<char> b = good;
    const std::uint32_t mark = 0x04030201;
    std::memcpy(b.data() + 12, &mark, 4);
    rejects(b, "written with another byte order");
  }
  SUBCASE("truncated or extended") {
    rejects(std::vector<char>(good.begin(), good.end() - 9), "truncated or extended");
    std::vector<char> longer = good;
    longer.push_back('x');
    rejects(longer, "truncated or extended");
  }
  SUBCASE("a flipped byte anywhere in the payload or the checksum") {
    for (std::size_t at : {std::size_t{24}, good.size() / 2, good.size() - 20, good.size() - 1}) {
      CAPTURE(at);
      std::vector<char> b = good;
      b[at] = static_cast<char>(b[at] ^ 0x10);
      rejects(b, "checksum mismatch");
      rejects(b, "the file is corrupted");
    }
  }
  SUBCASE("a malformed payload behind a valid checksum") {
    // The 5th byte of the payload is the first key's length (u32 at offset 28): make it huge.
    std::vector<char> b = good;
    const std::uint32_t n = 1u << 30;
    std::memcpy(b.data() + 28, &n, 4);
    fix_checksum(b);
    rejects(b, "malformed payload: reading a configuration key needs 1073741824 bytes");
  }
  std::filesystem::remove(path);
}

TEST_CASE("fuzz: mutated state files, with and without a repaired checksum, load or are refused by name") {
  // Bounded: 4000 mutants or 8 s. Half keep their damage visible to the checksum; half get
  // the payload size and the checksum repaired, so the payload parser itself meets them.
  const std::string path = temp_path("fuzz");
  write_state_file(path, sample_state());
  const std::vector<char> good = read_bytes(path);
  const std::string prefix = "state file '" + path + "': ";
  std::uint64_t x = 0x9e3779b97f4a7c15ull;
  auto below = [&x](std::size_t n) {  // splitmix64: the same mutants on every platform
    x += 0x9e3779b97f4a7c15ull;
    std::uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return n == 0 ? std::size_t{0} : static_cast<std::size_t>((z ^ (z >> 31)) % n);
  };
  const std::uint64_t interesting[] = {0, 1, 0xff, 0x7fffffff, 0xffffffff, 1ull << 31, 1ull << 40, ~0ull, 1ull << 62};
  int refused = 0, loaded = 0, rounds = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (; rounds < 4000 && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(8); ++rounds) {
    std::vector<char> b = good;
    const std::size_t payload_begin = 24;
    for (std::size_t k = 0, m = 1 + below(3); k < m; ++k) {
      // The payload ends before the 8-byte checksum, wherever earlier edits left it.
      if (b.size() <= payload_begin + 8) break;
      const std::size_t at = payload_begin + below(b.size() - 8 - payload_begin);
      switch (below(4)) {
        case 0: b[at] = static_cast<char>(b[at] ^ (1 << below(8))); break;
        case 1: {
          const std::uint64_t v = interesting[below(std::size(interesting))];
          std::memcpy(b.data() + at, &v, std::min<std::size_t>(below(2) ? 4 : 8, b.size() - 8 - at));
          break;
        }
        case 2: b.erase(b.begin() + static_cast<long>(at), b.begin() + static_cast<long>(std::min(at + 1 + below(16), b.size() - 8))); break;
        default: b.insert(b.begin() + static_cast<long>(at), static_cast<char>(below(256))); break;
      }
    }
    const bool repaired = below(2) == 0;
    if (repaired) {
      const std::uint64_t payload = b.size() - 8 - payload_begin;
      std::memcpy(b.data() + 16, &payload, 8);
      fix_checksum(b);
    }
    write_bytes(path, b);
    try {
      const OuterState st = read_state_file(path);
      ++loaded;
      // Only a repaired file may load (or one whose mutations cancelled out).
      if (!repaired && b != good) FAIL("a damaged state file passed its checksum");
      for (const TensorList* l : {&st.lambda, &st.optimizer1, &st.optimizer2, &st.warm_inner, &st.warm_linear})
        for (const Tensor& t : *l) CHECK(t.nbytes() == static_cast<std::size_t>(t.numel()) * dtype_size(t.dtype()));
    } catch (const StateFileError& e) {
      ++refused;
      if (std::string(e.what()).rfind(prefix, 0) != 0) FAIL("the message does not start with the file's name: " << std::string(e.what()));
    } catch (const std::exception& e) {
      FAIL("read_state_file threw something other than StateFileError: " << std::string(e.what()));
    }
  }
  MESSAGE("state file fuzz: " << rounds << " mutants: " << loaded << " loaded, " << refused << " refused");
  CHECK(rounds >= 500);
  CHECK(refused > rounds / 2);
  CHECK(loaded > 0);  // repaired mutants of tensor data are valid files
  std::filesystem::remove(path);
}

TEST_CASE("check_state_tensors names the list, the tensor, and both shapes") {
  const TensorList run{zeros({2}), zeros({3, 3}, Dtype::f32)};
  CHECK_NOTHROW(check_state_tensors("f", "λ", {zeros({2}), zeros({3, 3}, Dtype::f32)}, run));
  CHECK_NOTHROW(check_state_tensors("f", "warm w", {}, run, true));
  CHECK_THROWS_WITH_AS(check_state_tensors("f", "warm w", {}, run), doctest::Contains("state file 'f': warm w has 0 tensors, the run has 2"),
                       StateFileError);
  CHECK_THROWS_WITH_AS(check_state_tensors("f", "λ", {zeros({2}), zeros({3, 3})}, run),
                       doctest::Contains("state file 'f': λ tensor 1 has shape [3, 3] float64, the run has [3, 3] float32"),
                       StateFileError);
}

TEST_CASE("the outer loop refuses a state whose warm state or random state does not fit the run") {
  const Problem p = Problem::gradient_descent(
      [](const TensorList& w, const TensorList& l) { return 0.5 * sum(exp(l[0]) * square(w[0] - 1.0)); }, 0.1,
      [](const TensorList& w, const TensorList&) { return sum(square(w[0])); }, {zeros({2})});
  const std::string path = temp_path("fit");
  AID aid({.inner_steps = 3, .solver = linsolve::cg(), .linear_steps = 2});
  OuterOptions o;
  o.warm_start = WarmStart::inner_and_linear;
  OuterOptimizer opt(p, aid, {tensor({0.0})}, o);
  opt.step();
  const OuterState good = opt.state();
  CHECK(good.warm_inner.size() == 1);
  CHECK(good.warm_linear.size() == 1);
  const std::string prefix = "state file '" + path + "': ";
  auto load = [&](const OuterState& s) {
    write_state_file(path, s);
    AID fresh({.inner_steps = 3, .solver = linsolve::cg(), .linear_steps = 2});
    OuterOptimizer other(p, fresh, {tensor({0.0})}, o);
    other.load(path);
    return other.steps_done();
  };
  CHECK(load(good) == 1);
  OuterState bad = good;
  bad.warm_inner = {zeros({3})};
  CHECK(message_of([&] { load(bad); }) == prefix + "warm w tensor 0 has shape [3] float64, the run has [2] float64");
  bad = good;
  bad.warm_linear = {zeros({2}), zeros({2})};
  CHECK(message_of([&] { load(bad); }) == prefix + "warm v has 2 tensors, the run has 1");
  bad = good;
  bad.random = {1, 2, 3, 4};
  CHECK(message_of([&] { load(bad); }) == prefix + "holds 4 words of random state, AID-CG has 0");
  bad = good;
  bad.optimizer1 = {zeros({1})};
  CHECK(message_of([&] { load(bad); }) == prefix + "optimizer state 1 has 1 tensors, the run has 0");
  bad = good;
  bad.lambda = {tensor({std::nan("")})};
  CHECK(message_of([&] { load(bad); }) == prefix + "λ tensor 0 holds non-finite values");
  bad = good;
  bad.seconds = -1;
  CHECK(message_of([&] { load(bad); }) == prefix + "has an invalid wall-time total -1");
  bad = good;
  bad.config.pop_back();
  CHECK(message_of([&] { load(bad); }) == prefix + "has no 'cross batches (J)' entry");
  bad = good;
  bad.config.emplace_back("extra", "1");
  CHECK(message_of([&] { load(bad); }) == prefix + "was written with extra = '1', which this run does not set");
  std::filesystem::remove(path);
}
