// IDX loader (the MNIST format), plain or gzip through zlib.
//
// Layout: magic (00 00, element type, number of dimensions D), D big-endian uint32
// extents, then the elements. Only unsigned bytes (type 0x08) are read: images and labels.
#include <algorithm>
#include <cstdio>
#include <memory>

#include <fmt/format.h>
#include <zlib.h>

#include "data_util.hpp"

namespace hyperad::problems {
namespace {

constexpr unsigned char kUnsignedByte = 0x08;
// Refuse absurd headers before reading: no single item above 1 GiB, no file above 1 TiB.
constexpr std::int64_t kMaxItemBytes = std::int64_t{1} << 30;
constexpr std::int64_t kMaxDataBytes = std::int64_t{1} << 40;

// Sequential bytes of a plain or gzip file (detected by its first two bytes, 1f 8b);
// offsets count decompressed bytes.
class ByteReader {
 public:
  ByteReader(std::string_view loader, const std::filesystem::path& path) : loader_(loader), path_(path) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) detail::fail_file(loader, path, "is a directory, not a file");
    plain_ = std::fopen(path.c_str(), "rb");
    if (!plain_)
      detail::fail_file(loader, path, std::filesystem::exists(path, ec) ? "cannot be opened (permissions?)" : "no such file");
    unsigned char head[2] = {0, 0};
    const std::size_t got = std::fread(head, 1, 2, plain_);
    gzip_ = got == 2 && head[0] == 0x1f && head[1] == 0x8b;
    if (gzip_) {
      std::fclose(plain_);
      plain_ = nullptr;
      gz_ = gzopen(path.c_str(), "rb");
      if (!gz_) detail::fail_file(loader, path, "cannot be opened by zlib");
      gzbuffer(gz_, 1 << 17);
    } else {
      std::fseek(plain_, 0, SEEK_END);
      size_ = std::ftell(plain_);
      std::fseek(plain_, 0, SEEK_SET);
    }
  }
  ~ByteReader() {
    if (plain_) std::fclose(plain_);
    if (gz_) gzclose(gz_);
  }
  ByteReader(const ByteReader&) = delete;
  ByteReader& operator=(const ByteReader&) = delete;

  bool gzip() const { return gzip_; }
  std::int64_t offset() const { return offset_; }
  /// Bytes left in a plain file (-1 for gzip, whose size is unknown until read).
  std::int64_t remaining() const { return gzip_ ? -1 : size_ - offset_; }
  /// " (gzip ...)" after messages about offsets, so they are not mistaken for file positions.
  std::string note() const { return gzip_ ? " (gzip file; byte offsets are in the decompressed data)" : ""; }

  /// Reads up to n bytes; fewer only at the end of the data. Corrupt gzip data throws.
  std::size_t read(unsigned char* buf, std::size_t n) {
    std::size_t total = 0;
    while (total < n) {
      std::size_t got = 0;
      if (gzip_) {
        const auto want = static_cast<unsigned>(std::min<std::size_t>(n - total, 1u << 30));
        const int r = gzread(gz_, buf + total, want);
        // zlib decompresses ahead in blocks, so the damage may lie somewhat after this offset.
        if (r < 0)
          fail(offset_ + static_cast<std::int64_t>(total),
               fmt::format("corrupt gzip data at or after this point: {}", gz_message()));
        got = static_cast<std::size_t>(r);
      } else {
        got = std::fread(buf + total, 1, n - total, plain_);
        if (got == 0 && std::ferror(plain_)) fail(offset_ + static_cast<std::int64_t>(total), "read error");
      }
      if (got == 0) break;
      total += got;
    }
    offset_ += static_cast<std::int64_t>(total);
    return total;
  }
  /// After the last byte: a gzip stream cut before its trailer (CRC-32 and length) has
  /// decompressed completely, and zlib says so only through its error state.
  void verify_end() const {
    if (!gzip_) return;
    int code = Z_OK;
    gzerror(gz_, &code);
    if (code != Z_OK)
      fail(offset_, fmt::format("the gzip stream ends early, so its checksum and length cannot be verified ({})",
                                gz_message()));
  }
  /// zlib's account of why a gzip stream ended early ("unexpected end of file"), if any.
  std::string end_reason() const {
    if (!gzip_) return {};
    int code = Z_OK;
    const char* msg = gzerror(gz_, &code);
    return code == Z_OK || !msg ? std::string{} : fmt::format(" (zlib: {})", strip_path(msg));
  }
  [[noreturn]] void fail(std::int64_t byte, std::string_view reason) const {
    detail::fail_byte(loader_, path_, byte, std::string(reason) + note());
  }

 private:
  std::string gz_message() const {
    int code = Z_OK;
    const char* msg = gzerror(gz_, &code);
    return msg ? strip_path(msg) : "unknown zlib error";
  }
  // gzerror prefixes its message with the path, which our messages already name.
  std::string strip_path(std::string_view msg) const {
    const std::string prefix = path_.string() + ": ";
    if (msg.starts_with(prefix)) msg.remove_prefix(prefix.size());
    return std::string(msg);
  }

  std::string_view loader_;
  const std::filesystem::path& path_;
  std::FILE* plain_ = nullptr;
  gzFile gz_ = nullptr;
  bool gzip_ = false;
  std::int64_t size_ = 0;
  std::int64_t offset_ = 0;
};

enum class Kind { images, labels, any };

struct Idx {
  std::vector<std::int64_t> dims;  // from the header
  std::int64_t header_bytes = 0;
  std::int64_t items = 0;          // items read (≤ dims[0])
  std::string note;                // ByteReader::note() of the file
  std::vector<unsigned char> data; // items × item size bytes
};

std::uint32_t big_endian(const unsigned char* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

// Reads and checks the magic number and the extents.
Idx read_header(ByteReader& in, Kind kind) {
  unsigned char magic[4];
  const std::size_t got = in.read(magic, 4);
  if (got == 0) in.fail(0, "empty file");
  if (got < 4) in.fail(static_cast<std::int64_t>(got), fmt::format("truncated: the file ends inside the 4-byte magic number ({} bytes)", got));
  const std::string expected = kind == Kind::labels ? "0x00000801 (unsigned-byte labels, 1 dimension)"
                               : kind == Kind::images ? "0x00000803 (unsigned-byte images, or another count of dimensions >= 2)"
                                                      : "0x000008DD (unsigned bytes, DD dimensions)";
  const std::string shown = fmt::format("0x{:08X}", big_endian(magic));
  if (magic[0] != 0 || magic[1] != 0)
    in.fail(0, fmt::format("wrong magic {}: not an IDX file (those start with two zero bytes); expected {}", shown, expected));
  if (magic[2] != kUnsignedByte)
    in.fail(0, fmt::format("wrong magic {}: element type 0x{:02X} is not supported (only unsigned bytes, 0x08); expected {}",
                           shown, magic[2], expected));
  const int rank = magic[3];
  if (rank == 0 || (kind == Kind::labels && rank != 1) || (kind == Kind::images && rank < 2))
    in.fail(0, fmt::format("wrong magic {}: {} dimensions; expected {}", shown, rank, expected));

  Idx idx;
  std::vector<unsigned char> raw(static_cast<std::size_t>(rank) * 4);
  const std::size_t dim_bytes = in.read(raw.data(), raw.size());
  if (dim_bytes < raw.size())
    in.fail(in.offset(), fmt::format("truncated header: expected {} bytes of dimensions, found {}", raw.size(), dim_bytes));
  for (int k = 0; k < rank; ++k) {
    idx.dims.push_back(big_endian(raw.data() + 4 * k));
    if (idx.dims.back() == 0)
      in.fail(4 + 4 * k, fmt::format("dimension {} is 0: the file holds no {}", k, k == 0 ? "items" : "data per item"));
  }
  idx.header_bytes = in.offset();
  idx.note = in.note();
  return idx;
}

std::int64_t item_bytes(const Idx& idx, ByteReader& in) {
  std::int64_t size = 1;
  for (std::size_t k = 1; k < idx.dims.size(); ++k) {
    size *= idx.dims[k];  // each factor < 2^32 and size ≤ 2^30 before: no overflow
    if (size > kMaxItemBytes)
      in.fail(4, fmt::format("implausible dimensions: one item would exceed {} bytes", kMaxItemBytes));
  }
  return size;
}

// The header and the first `limit` items (all when limit is 0). A full read also checks
// that nothing follows the data (and, for gzip, the checksum at the end of the stream).
Idx read_idx(std::string_view loader, const std::filesystem::path& path, Kind kind, std::int64_t limit) {
  if (limit < 0) throw ValueError(fmt::format("{}: limit = {} is negative", loader, limit));
  ByteReader in(loader, path);
  Idx idx = read_header(in, kind);
  const std::int64_t item = item_bytes(idx, in);
  const std::int64_t total_items = idx.dims[0];
  idx.items = limit > 0 ? std::min(limit, total_items) : total_items;
  const std::int64_t want = idx.items * item;  // < 2^32 · 2^30: fits
  if (want > kMaxDataBytes) in.fail(4, fmt::format("implausible dimensions: {} bytes of data", want));
  const std::string what = kind == Kind::labels ? "labels" : kind == Kind::images ? "pixel data" : "data";
  const auto truncated = [&](std::int64_t found, const std::string& why) {
    in.fail(idx.header_bytes + found,
            fmt::format("truncated file: expected {} bytes of {} after the {}-byte header ({} items of {} bytes), found {}{}",
                        want, what, idx.header_bytes, idx.items, item, found, why));
  };
  // A plain file's size is known: refuse before allocating anything.
  if (in.remaining() >= 0 && in.remaining() < want) truncated(in.remaining(), "");

  // Grow as data arrives, so a lying gzip header cannot make us allocate its claim upfront.
  std::size_t filled = 0;
  const auto target = static_cast<std::size_t>(want);
  while (filled < target) {
    const std::size_t step = std::min(target - filled, std::max<std::size_t>(filled, std::size_t{1} << 20));
    idx.data.resize(filled + step);
    const std::size_t got = in.read(idx.data.data() + filled, step);
    filled += got;
    if (got < step) truncated(static_cast<std::int64_t>(filled), in.end_reason());
  }
  if (limit == 0 || limit >= total_items) {
    unsigned char extra[256];
    const std::size_t more = in.read(extra, sizeof extra);
    if (more > 0)
      in.fail(idx.header_bytes + want,
              fmt::format("unexpected data after the {} bytes the header announces ({}{} more bytes)", want,
                          more == sizeof extra ? "at least " : "", more));
    in.verify_end();
  }
  return idx;
}

Tensor pixels(const Idx& idx, Dtype dtype) {
  const std::int64_t d = static_cast<std::int64_t>(idx.data.size()) / idx.items;
  Tensor out(Shape{idx.items, d}, dtype);
  dispatch(dtype, [&]<class T>() {
    T* p = out.mutable_data<T>();
    for (std::size_t i = 0; i < idx.data.size(); ++i) p[i] = static_cast<T>(idx.data[i]) / T(255);
  });
  return out;
}

}  // namespace

Tensor load_idx_images(const std::filesystem::path& path, std::int64_t limit, Dtype dtype) {
  return pixels(read_idx("load_idx_images", path, Kind::images, limit), dtype);
}

std::vector<std::int64_t> load_idx_labels(const std::filesystem::path& path, std::int64_t limit) {
  const Idx idx = read_idx("load_idx_labels", path, Kind::labels, limit);
  return {idx.data.begin(), idx.data.end()};
}

std::vector<std::int64_t> idx_dims(const std::filesystem::path& path) {
  ByteReader in("idx_dims", path);
  return read_header(in, Kind::any).dims;
}

Dataset load_idx(const std::filesystem::path& images, const std::filesystem::path& labels, const IdxOptions& options) {
  if (options.num_classes < 0 || options.num_classes > 256)
    throw ValueError(fmt::format("load_idx: num_classes = {} is not in [0, 256]", options.num_classes));
  const Idx lab = read_idx("load_idx", labels, Kind::labels, options.limit);
  // Compare the counts in the headers before the (much larger) images are read.
  std::int64_t image_count = 0;
  {
    ByteReader in("load_idx", images);
    image_count = read_header(in, Kind::images).dims[0];
  }
  if (image_count != lab.dims[0])
    throw DataError(fmt::format("load_idx: mismatched counts: \"{}\" holds {} images but \"{}\" holds {} labels",
                                images.string(), image_count, labels.string(), lab.dims[0]),
                    labels.string());
  Dataset ds;
  ds.features = pixels(read_idx("load_idx", images, Kind::images, options.limit), options.dtype);
  std::vector<double> targets(lab.data.begin(), lab.data.end());
  for (std::size_t i = 0; i < lab.data.size(); ++i)
    if (options.num_classes > 0 && lab.data[i] >= options.num_classes)
      detail::fail_byte("load_idx", labels, lab.header_bytes + static_cast<std::int64_t>(i),
                        fmt::format("label out of range: {} is not in [0, {}) (num_classes = {}){}", lab.data[i],
                                    options.num_classes, options.num_classes, lab.note));
  detail::set_targets(ds, targets, Task::classification, options.num_classes, options.dtype);
  for (std::int64_t j = 0; j < ds.num_features(); ++j) ds.feature_names.push_back(fmt::format("pixel{}", j));
  ds.target_name = "label";
  ds.source = images.string() + " + " + labels.string();
  return ds;
}

Dataset load_idx(const std::filesystem::path& images, const std::filesystem::path& labels, std::int64_t limit) {
  IdxOptions options;
  options.limit = limit;
  return load_idx(images, labels, options);
}

}  // namespace hyperad::problems
