#include "neutrino/data/idx.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <system_error>

#include "neutrino/core/error.h"
#include "neutrino/io/file_io.h"

namespace neutrino::data {
namespace {

constexpr size_t kMagicSize = 4;  // two zero bytes, the type byte, the dimension count
constexpr int kMaxDims = 8;
// zlib counts in uInt (32 bits); larger buffers are fed to it in pieces of this size.
constexpr size_t kZlibChunk = size_t{1} << 30;

struct IdxType {
  uint8_t code;
  const char* name;
  size_t size;
  DType dtype;
};
constexpr IdxType kTypes[] = {
    {0x08, "u8", 1, DType::kInt64},    {0x09, "i8", 1, DType::kInt64},
    {0x0B, "i16", 2, DType::kInt64},   {0x0C, "i32", 4, DType::kInt64},
    {0x0D, "f32", 4, DType::kFloat32}, {0x0E, "f64", 8, DType::kFloat64},
};

const IdxType* find_type(uint8_t code) {
  for (const IdxType& t : kTypes) {
    if (t.code == code) return &t;
  }
  return nullptr;
}

// Big-endian unsigned value of `n` bytes; IDX stores every number most significant byte first.
uint64_t load_be(const uint8_t* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v = (v << 8) | p[i];
  return v;
}

bool is_gzip(const uint8_t* data, size_t size) {
  return size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
}

using io::read_file;

// Frees zlib's state however the decompression ends.
struct InflateGuard {
  z_stream* stream;
  ~InflateGuard() { inflateEnd(stream); }
};

// Converts `count` big-endian elements of `type` into the tensor's storage.
void decode(const uint8_t* src, size_t count, const IdxType& type, void* out) {
  switch (type.code) {
    case 0x08:
      for (size_t i = 0; i < count; ++i) static_cast<int64_t*>(out)[i] = src[i];
      break;
    case 0x09:
      for (size_t i = 0; i < count; ++i) {
        static_cast<int64_t*>(out)[i] = static_cast<int8_t>(src[i]);
      }
      break;
    case 0x0B:
      for (size_t i = 0; i < count; ++i) {
        static_cast<int64_t*>(out)[i] = static_cast<int16_t>(load_be(src + 2 * i, 2));
      }
      break;
    case 0x0C:
      for (size_t i = 0; i < count; ++i) {
        static_cast<int64_t*>(out)[i] = static_cast<int32_t>(load_be(src + 4 * i, 4));
      }
      break;
    case 0x0D:
      for (size_t i = 0; i < count; ++i) {
        static_cast<float*>(out)[i] =
            std::bit_cast<float>(static_cast<uint32_t>(load_be(src + 4 * i, 4)));
      }
      break;
    case 0x0E:
      for (size_t i = 0; i < count; ++i) {
        static_cast<double*>(out)[i] = std::bit_cast<double>(load_be(src + 8 * i, 8));
      }
      break;
    default:
      NEUTRINO_ASSERT(false);
  }
}

// What an IDX header declares: the element type and shape, the header's size and the data's.
struct IdxLayout {
  const IdxType* type;
  Shape shape;
  size_t header;
  uint64_t count;
  uint64_t nbytes;
};
constexpr size_t kMaxHeaderSize = kMagicSize + 4 * kMaxDims;

// Checks the header at the start of `data` (`size` bytes, which may end before the data).
IdxLayout parse_idx_header(const uint8_t* data, size_t size, const std::string& source) {
  NEUTRINO_CHECK_IO(size >= kMagicSize,
                    "{}: file is {} bytes, too short for an IDX header (at least {} bytes)", source,
                    size, kMagicSize);
  NEUTRINO_CHECK_IO(data[0] == 0 && data[1] == 0,
                    "{}: bad IDX magic: bytes 0-1 are 0x{:02x} 0x{:02x}, expected 0x00 0x00",
                    source, data[0], data[1]);
  const IdxType* type = find_type(data[2]);
  NEUTRINO_CHECK_IO(type != nullptr,
                    "{}: unknown IDX type byte 0x{:02x} at offset 2 (expected 0x08 u8, 0x09 i8, "
                    "0x0b i16, 0x0c i32, 0x0d f32 or 0x0e f64)",
                    source, data[2]);
  const int ndim = data[3];
  NEUTRINO_CHECK_IO(ndim >= 1 && ndim <= kMaxDims,
                    "{}: IDX dimension count {} at offset 3 is out of range (1 to {})", source,
                    ndim, kMaxDims);
  const size_t header = kMagicSize + 4 * static_cast<size_t>(ndim);
  NEUTRINO_CHECK_IO(size >= header,
                    "{}: truncated: the IDX header needs {} bytes for {} dimensions but the file "
                    "has {}",
                    source, header, ndim, size);

  Shape shape;
  for (int d = 0; d < ndim; ++d) {
    shape.push_back(
        static_cast<int64_t>(load_be(data + kMagicSize + 4 * static_cast<size_t>(d), 4)));
  }
  // The bound skips zero dimensions: an empty tensor's strides are still products of the other
  // dimensions, so those must fit in int64 too. It also bounds the byte count.
  constexpr uint64_t kMax = std::numeric_limits<int64_t>::max();
  uint64_t bound = type->size;
  uint64_t count = 1;
  for (const int64_t dim : shape) {
    const auto extent = static_cast<uint64_t>(dim);
    NEUTRINO_CHECK_IO(extent == 0 || bound <= kMax / extent,
                      "{}: IDX dimensions {} (from offset {}) overflow the element count", source,
                      shape_str(shape), kMagicSize);
    if (extent != 0) bound *= extent;
    count *= extent;  // at most `bound`
  }
  return {type, shape, header, count, count * type->size};
}

// Parses an uncompressed IDX image of exactly `size` bytes.
Tensor parse_idx(const uint8_t* data, size_t size, const std::string& source) {
  const auto [type, shape, header, count, nbytes] = parse_idx_header(data, size, source);
  const uint64_t available = size - header;
  NEUTRINO_CHECK_IO(available >= nbytes,
                    "{}: truncated: IDX header says {} {} data for shape {} ({} bytes from offset "
                    "{}) but only {} bytes follow",
                    source, count, type->name, shape_str(shape), nbytes, header, available);
  NEUTRINO_CHECK_IO(available == nbytes, "{}: {} trailing bytes after the IDX data at offset {}",
                    source, available - nbytes, header + nbytes);

  // Only now, with the size proven against real bytes, is the tensor allocated.
  Tensor out = Tensor::empty(shape, type->dtype);
  decode(data + header, static_cast<size_t>(count), *type, out.raw_data());
  return out;
}

}  // namespace

namespace detail {

std::vector<uint8_t> gunzip(const uint8_t* data, size_t size, uint64_t max_output,
                            const std::string& source_name, bool stop_at_limit) {
  z_stream zs{};
  // 16 + MAX_WBITS: expect a gzip wrapper, whose CRC-32 and length trailer inflate checks.
  NEUTRINO_CHECK_IO(inflateInit2(&zs, 16 + MAX_WBITS) == Z_OK, "{}: cannot start zlib: {}",
                    source_name, zs.msg != nullptr ? zs.msg : "out of memory");
  InflateGuard guard{&zs};

  // The output grows with what actually comes out, never from a size claimed by the input.
  std::vector<uint8_t> out;
  size_t filled = 0;
  size_t fed = 0;  // input bytes handed to zlib so far
  const auto consumed = [&] { return fed - zs.avail_in; };
  for (;;) {
    if (zs.avail_in == 0 && fed < size) {
      const size_t chunk = std::min(size - fed, kZlibChunk);
      zs.next_in = const_cast<Bytef*>(data + fed);  // zlib's API is not const-correct
      zs.avail_in = static_cast<uInt>(chunk);
      fed += chunk;
    }
    if (filled == out.size()) {
      if (stop_at_limit && filled >= max_output) break;
      NEUTRINO_CHECK_IO(filled <= max_output,
                        "{}: gzip stream decompresses to more than {} bytes, the limit",
                        source_name, max_output);
      const uint64_t grown =
          std::max<uint64_t>({uint64_t{1} << 16, uint64_t{filled} * 2, uint64_t{size} * 4});
      out.resize(static_cast<size_t>(std::min(grown, max_output + (stop_at_limit ? 0 : 1))));
    }
    zs.next_out = out.data() + filled;
    zs.avail_out = static_cast<uInt>(std::min(out.size() - filled, kZlibChunk));
    const uInt room = zs.avail_out;
    const int ret = inflate(&zs, Z_NO_FLUSH);
    filled += room - zs.avail_out;
    if (ret == Z_STREAM_END) {
      const size_t end = consumed();
      if (end == size) break;
      // Concatenated members are one valid gzip file (what `cat a.gz b.gz` makes).
      NEUTRINO_CHECK_IO(is_gzip(data + end, size - end),
                        "{}: {} trailing bytes after the gzip stream at offset {}", source_name,
                        size - end, end);
      NEUTRINO_CHECK_IO(inflateReset(&zs) == Z_OK, "{}: cannot reset zlib", source_name);
      continue;
    }
    if (ret == Z_BUF_ERROR || (ret == Z_OK && zs.avail_in == 0 && fed == size && zs.avail_out)) {
      // No progress is possible: either the output is full (grown above) or input ran out.
      NEUTRINO_CHECK_IO(zs.avail_in != 0 || fed != size || zs.avail_out == 0,
                        "{}: truncated gzip stream: the compressed data ends at byte {} before "
                        "the end of the stream",
                        source_name, size);
      continue;
    }
    NEUTRINO_CHECK_IO(ret == Z_OK, "{}: corrupt gzip stream near compressed byte {}: {}",
                      source_name, consumed(), zs.msg != nullptr ? zs.msg : zError(ret));
  }
  NEUTRINO_CHECK_IO(filled <= max_output,
                    "{}: gzip stream decompresses to more than {} bytes, the limit", source_name,
                    max_output);
  out.resize(filled);
  return out;
}

}  // namespace detail

Tensor read_idx_bytes(const uint8_t* data, size_t size, const std::string& source_name) {
  if (is_gzip(data, size)) {
    // The header says how many bytes the stream must inflate to, so one byte more is enough to
    // refuse it: a small file never makes us hold bytes that would be refused as trailing anyway.
    const std::vector<uint8_t> head =
        detail::gunzip(data, size, kMaxHeaderSize, source_name, /*stop_at_limit=*/true);
    const IdxLayout layout = parse_idx_header(head.data(), head.size(), source_name);
    const uint64_t expected = layout.header + layout.nbytes;
    const uint64_t limit = std::min(expected, kMaxIdxDecompressedBytes) + 1;
    const std::vector<uint8_t> raw =
        detail::gunzip(data, size, limit, source_name, /*stop_at_limit=*/true);
    NEUTRINO_CHECK_IO(raw.size() <= kMaxIdxDecompressedBytes,
                      "{}: gzip stream decompresses to more than {} bytes, the limit",
                      source_name, kMaxIdxDecompressedBytes);
    NEUTRINO_CHECK_IO(raw.size() <= expected,
                      "{}: trailing bytes after the IDX data at offset {}: the gzip stream "
                      "inflates to more than the {} bytes its header declares",
                      source_name, expected, expected);
    return parse_idx(raw.data(), raw.size(), source_name);
  }
  return parse_idx(data, size, source_name);
}

Tensor read_idx(const std::string& path) {
  const std::vector<uint8_t> bytes = read_file(path);
  return read_idx_bytes(bytes.data(), bytes.size(), path);
}

IdxPair read_idx_pair(const std::string& images, const std::string& labels) {
  IdxPair pair{read_idx(images), read_idx(labels)};
  const int64_t n_images = pair.images.size(0);
  const int64_t n_labels = pair.labels.size(0);
  NEUTRINO_CHECK_IO(n_images == n_labels, "{}: {} images, but {} has {} labels", images, n_images,
                    labels, n_labels);
  return pair;
}

}  // namespace neutrino::data
