#include "hyperad/bilevel/state_file.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <fmt/format.h>

#include "hyperad/bilevel/files.hpp"

namespace hyperad::bilevel {

namespace {

constexpr char kMagic[8] = {'H', 'Y', 'A', 'D', 'O', 'U', 'T', 'R'};
constexpr std::uint32_t kByteOrder = 0x01020304;
constexpr std::size_t kHeader = 8 + 4 + 4 + 8;  // magic, version, byte order, payload size
constexpr int kTensorLists = 5;

std::uint64_t fnv1a(const char* data, std::size_t n) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (std::size_t i = 0; i < n; ++i) {
    h ^= static_cast<unsigned char>(data[i]);
    h *= 0x100000001b3ull;
  }
  return h;
}

// ---- writing -----------------------------------------------------------------------------------

class Writer {
 public:
  template <class T>
  void put(const T& v) {
    const char* p = reinterpret_cast<const char*>(&v);
    bytes.insert(bytes.end(), p, p + sizeof(T));
  }
  void put_string(const std::string& s) {
    put(static_cast<std::uint32_t>(s.size()));
    bytes.insert(bytes.end(), s.begin(), s.end());
  }
  void put_tensors(const TensorList& xs) {
    put(static_cast<std::uint32_t>(xs.size()));
    for (const Tensor& x : xs) {
      put(static_cast<std::uint8_t>(x.dtype() == Dtype::f32 ? 0 : 1));
      put(static_cast<std::uint8_t>(x.rank()));
      for (std::int64_t d : x.shape()) put(d);
      put(static_cast<std::uint64_t>(x.nbytes()));
      if (x.nbytes() == 0) continue;
      const char* p = static_cast<const char*>(x.raw());
      bytes.insert(bytes.end(), p, p + x.nbytes());
    }
  }
  std::vector<char> bytes;
};

// ---- reading -----------------------------------------------------------------------------------

class Reader {
 public:
  Reader(const std::string& path, const std::vector<char>& bytes, std::size_t begin, std::size_t end)
      : path_(path), bytes_(bytes), at_(begin), end_(end) {}

  template <class T>
  T get(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, bytes_.data() + at_, sizeof(T));
    at_ += sizeof(T);
    return v;
  }
  std::string get_string(const char* what) {
    const auto n = get<std::uint32_t>(what);
    need(n, what);
    std::string s(bytes_.data() + at_, n);
    at_ += n;
    return s;
  }
  TensorList get_tensors(const char* what) {
    const auto count = get<std::uint32_t>(what);
    TensorList xs;
    for (std::uint32_t i = 0; i < count; ++i) {
      const auto dt = get<std::uint8_t>(what);
      const auto rank = get<std::uint8_t>(what);
      if (dt > 1) fail(fmt::format("{} tensor {} has an unknown dtype code {}", what, i, dt));
      if (rank > kMaxRank) fail(fmt::format("{} tensor {} has rank {} (at most {})", what, i, rank, kMaxRank));
      std::vector<std::int64_t> dims;
      for (int k = 0; k < rank; ++k) {
        dims.push_back(get<std::int64_t>(what));
        if (dims.back() < 0) fail(fmt::format("{} tensor {} has a negative extent {}", what, i, dims.back()));
      }
      const Dtype dtype = dt == 0 ? Dtype::f32 : Dtype::f64;
      // Extents whose product overflows are refused by Shape; say it as the file's fault.
      Shape shape;
      try {
        shape = Shape(dims);
      } catch (const Error& e) {
        fail(fmt::format("{} tensor {}: {}", what, i, e.what()));
      }
      const auto nbytes = get<std::uint64_t>(what);
      if (nbytes != static_cast<std::uint64_t>(shape.numel()) * dtype_size(dtype))
        fail(fmt::format("{} tensor {} of shape {} {} holds {} bytes (expected {})", what, i, shape.str(),
                         dtype_name(dtype), nbytes, static_cast<std::uint64_t>(shape.numel()) * dtype_size(dtype)));
      need(nbytes, what);
      Tensor x(shape, dtype);
      if (nbytes > 0) std::memcpy(x.raw_mut(), bytes_.data() + at_, nbytes);
      at_ += nbytes;
      xs.push_back(x);
    }
    return xs;
  }
  bool done() const { return at_ == end_; }
  std::size_t offset() const { return at_; }
  [[noreturn]] void fail(const std::string& what) const {
    throw StateFileError(fmt::format("state file '{}': malformed payload: {}", path_, what));
  }

 private:
  void need(std::uint64_t n, const char* what) const {
    if (n > end_ - at_)
      fail(fmt::format("reading {} needs {} bytes at offset {}, only {} left", what, n, at_, end_ - at_));
  }
  const std::string& path_;
  const std::vector<char>& bytes_;
  std::size_t at_, end_;
};

std::string shape_and_dtype(const Tensor& x) { return fmt::format("{} {}", x.shape().str(), dtype_name(x.dtype())); }

}  // namespace

void write_state_file(const std::string& path, const OuterState& s) {
  Writer payload;
  payload.put(static_cast<std::uint32_t>(s.config.size()));
  for (const auto& [key, value] : s.config) {
    payload.put_string(key);
    payload.put_string(value);
  }
  payload.put(s.step);
  payload.put(s.samples);
  payload.put(s.seconds);
  for (const TensorList* xs : {&s.lambda, &s.optimizer1, &s.optimizer2, &s.warm_inner, &s.warm_linear})
    payload.put_tensors(*xs);
  payload.put(static_cast<std::uint64_t>(s.random.size()));
  for (std::uint64_t w : s.random) payload.put(w);

  Writer file;
  file.bytes.insert(file.bytes.end(), std::begin(kMagic), std::end(kMagic));
  file.put(kStateFileVersion);
  file.put(kByteOrder);
  file.put(static_cast<std::uint64_t>(payload.bytes.size()));
  file.bytes.insert(file.bytes.end(), payload.bytes.begin(), payload.bytes.end());
  file.put(fnv1a(file.bytes.data(), file.bytes.size()));

  try {
    write_file_atomically(path, std::string_view(file.bytes.data(), file.bytes.size()),
                          fmt::format("state file '{}'", path));
  } catch (const IOError& e) {
    throw StateFileError(e.what());
  }
}

OuterState read_state_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw StateFileError(fmt::format("state file '{}': is a directory", path));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw StateFileError(fmt::format("state file '{}': cannot open it: {}", path, std::strerror(errno)));
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto fail = [&](const std::string& what) { throw StateFileError(fmt::format("state file '{}': {}", path, what)); };

  if (bytes.size() < kHeader + 8)
    fail(fmt::format("only {} bytes, too short to be an outer state file (header and checksum take {})", bytes.size(),
                     kHeader + 8));
  if (std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0)
    fail("not a hyperad outer state file (its first 8 bytes are not \"HYADOUTR\")");
  Reader header(path, bytes, 8, kHeader);
  const auto version = header.get<std::uint32_t>("version");
  const auto order = header.get<std::uint32_t>("byte order");
  const auto size = header.get<std::uint64_t>("payload size");
  if (order != kByteOrder) fail(fmt::format("written with another byte order (mark 0x{:08x})", order));
  if (version != kStateFileVersion)
    fail(fmt::format("format version {}, but this build reads version {}", version, kStateFileVersion));
  if (size != bytes.size() - kHeader - 8)
    fail(fmt::format("truncated or extended: the header announces a {}-byte payload, the file holds {} bytes after "
                     "the header (including the 8-byte checksum)",
                     size, bytes.size() - kHeader));
  const std::size_t body = bytes.size() - 8;
  std::uint64_t stored;
  std::memcpy(&stored, bytes.data() + body, 8);
  const std::uint64_t computed = fnv1a(bytes.data(), body);
  if (stored != computed)
    fail(fmt::format("checksum mismatch (stored 0x{:016x}, computed 0x{:016x}): the file is corrupted", stored,
                     computed));

  Reader r(path, bytes, kHeader, body);
  OuterState s;
  const auto entries = r.get<std::uint32_t>("the configuration");
  for (std::uint32_t i = 0; i < entries; ++i) {
    std::string key = r.get_string("a configuration key");
    s.config.emplace_back(std::move(key), r.get_string("a configuration value"));
  }
  s.step = r.get<std::int64_t>("the step counter");
  s.samples = r.get<std::int64_t>("the sample counter");
  s.seconds = r.get<double>("the wall time");
  const char* names[kTensorLists] = {"λ", "optimizer state 1", "optimizer state 2", "warm w", "warm v"};
  TensorList* lists[kTensorLists] = {&s.lambda, &s.optimizer1, &s.optimizer2, &s.warm_inner, &s.warm_linear};
  for (int i = 0; i < kTensorLists; ++i) *lists[i] = r.get_tensors(names[i]);
  const auto words = r.get<std::uint64_t>("the random state");
  for (std::uint64_t i = 0; i < words; ++i) s.random.push_back(r.get<std::uint64_t>("the random state"));
  if (!r.done()) r.fail(fmt::format("{} unread bytes after the random state", body - r.offset()));
  if (s.step < 0 || s.samples < 0) r.fail(fmt::format("negative step {} or sample count {}", s.step, s.samples));
  return s;
}

void check_state_tensors(const std::string& path, const char* what, const TensorList& saved, const TensorList& expected,
                         bool allow_empty) {
  if (allow_empty && saved.empty()) return;
  if (saved.size() != expected.size())
    throw StateFileError(fmt::format("state file '{}': {} has {} tensors, the run has {}", path, what, saved.size(),
                                     expected.size()));
  for (std::size_t i = 0; i < saved.size(); ++i)
    if (saved[i].shape() != expected[i].shape() || saved[i].dtype() != expected[i].dtype())
      throw StateFileError(fmt::format("state file '{}': {} tensor {} has shape {}, the run has {}", path, what, i,
                                       shape_and_dtype(saved[i]), shape_and_dtype(expected[i])));
}

}  // namespace hyperad::bilevel
