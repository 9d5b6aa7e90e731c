#include "neutrino/data/npy.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <string_view>
#include <system_error>

#include "neutrino/core/error.h"
#include "neutrino/io/file_io.h"

namespace neutrino::data {
namespace {

constexpr uint8_t kNpyMagic[] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
constexpr size_t kNpyAlign = 64;  // NumPy pads headers so the data starts 64-byte aligned
// A shape tuple longer than this is refused; NumPy itself allows at most 64 dimensions.
constexpr size_t kMaxRank = 64;
constexpr uint64_t kMaxInt64 = std::numeric_limits<int64_t>::max();
// zlib counts in uInt (32 bits); larger buffers are fed to it in pieces of this size.
constexpr size_t kZlibChunk = size_t{1} << 30;
constexpr bool kLittleEndian = std::endian::native == std::endian::little;

using io::errno_text;
using io::read_file;

uint64_t load_le(const uint8_t* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = n; i-- > 0;) v = (v << 8) | p[i];
  return v;
}
uint16_t le16(const uint8_t* p) { return static_cast<uint16_t>(load_le(p, 2)); }
uint32_t le32(const uint8_t* p) { return static_cast<uint32_t>(load_le(p, 4)); }

void put_le(std::vector<uint8_t>& out, uint64_t v, size_t n) {
  for (size_t i = 0; i < n; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

// ---------------------------------------------------------------------------------------------
// Files.

// ---------------------------------------------------------------------------------------------
// NPY header: a Python dict literal, parsed by hand (never evaluated).

struct NpyHeader {
  std::string descr;
  bool fortran_order = false;
  Shape shape;
};

class HeaderParser {
 public:
  // `base` is the header's offset in the file, so errors can give file offsets.
  HeaderParser(const uint8_t* text, size_t size, size_t base, const std::string& source)
      : text_(text), size_(size), base_(base), source_(source) {}

  NpyHeader parse() {
    NpyHeader header;
    bool seen[3] = {false, false, false};  // descr, fortran_order, shape
    expect('{');
    while (!eat('}')) {
      const size_t key_at = pos_;
      const std::string key = string_literal();
      const int slot = key == "descr" ? 0 : key == "fortran_order" ? 1 : key == "shape" ? 2 : -1;
      if (slot < 0) fail_at(key_at, fmt::format("unknown key '{}'", key));
      if (seen[slot]) fail_at(key_at, fmt::format("duplicate key '{}'", key));
      seen[slot] = true;
      expect(':');
      if (slot == 0) {
        NEUTRINO_CHECK_IO(!at('['),
                          "{}: structured NPY dtypes (a list descr) are not supported (byte {})",
                          source_, base_ + pos_);
        header.descr = string_literal();
      } else if (slot == 1) {
        header.fortran_order = boolean();
      } else {
        header.shape = shape_tuple();
      }
      if (!eat(',')) {
        expect('}');
        break;
      }
    }
    skip_space();
    if (pos_ != size_) fail("text after the closing '}'");
    const char* names[3] = {"descr", "fortran_order", "shape"};
    for (int i = 0; i < 3; ++i) {
      NEUTRINO_CHECK_IO(seen[i], "{}: NPY header has no '{}' key", source_, names[i]);
    }
    return header;
  }

 private:
  [[noreturn]] void fail_at(size_t pos, const std::string& what) const {
    const std::string_view text(reinterpret_cast<const char*>(text_), std::min<size_t>(size_, 80));
    throw IOError(fmt::format("{}: unparsable NPY header at byte {}: {} (header starts {:?})",
                              source_, base_ + pos, what, text));
  }
  [[noreturn]] void fail(const std::string& what) const { fail_at(pos_, what); }

  void skip_space() {
    while (pos_ < size_ && std::string_view(" \t\r\n").find(static_cast<char>(text_[pos_])) !=
                               std::string_view::npos) {
      ++pos_;
    }
  }
  bool at(char c) {
    skip_space();
    return pos_ < size_ && text_[pos_] == c;
  }
  bool eat(char c) {
    if (!at(c)) return false;
    ++pos_;
    return true;
  }
  void expect(char c) {
    if (!eat(c)) fail(pos_ < size_ ? fmt::format("expected '{}'", c) : "unexpected end");
  }

  // 'text' or "text"; NumPy never writes escapes in these strings, so none are accepted.
  std::string string_literal() {
    skip_space();
    if (pos_ >= size_ || (text_[pos_] != '\'' && text_[pos_] != '"')) {
      fail("expected a quoted string");
    }
    const uint8_t quote = text_[pos_++];
    std::string s;
    while (pos_ < size_ && text_[pos_] != quote) {
      if (text_[pos_] == '\\' || text_[pos_] == '\n') fail("unsupported character in a string");
      s += static_cast<char>(text_[pos_++]);
    }
    if (pos_ >= size_) fail("unterminated string");
    ++pos_;
    return s;
  }

  bool boolean() {
    skip_space();
    const size_t start = pos_;
    while (pos_ < size_ && std::isalpha(text_[pos_])) ++pos_;
    const std::string_view word(reinterpret_cast<const char*>(text_) + start, pos_ - start);
    if (word == "True") return true;
    if (word == "False") return false;
    fail_at(start, "expected True or False");
  }

  int64_t integer() {
    skip_space();
    const size_t start = pos_;
    const bool negative = pos_ < size_ && text_[pos_] == '-';
    if (negative) ++pos_;
    if (pos_ >= size_ || !std::isdigit(text_[pos_])) fail("expected an integer");
    uint64_t v = 0;
    while (pos_ < size_ && std::isdigit(text_[pos_])) {
      const unsigned digit = text_[pos_++] - '0';
      if (v > (kMaxInt64 - digit) / 10) fail_at(start, "dimension overflows int64");
      v = v * 10 + digit;
    }
    if (pos_ < size_ && (text_[pos_] == 'L' || text_[pos_] == 'l')) ++pos_;  // Python 2's long
    NEUTRINO_CHECK_IO(!negative || v == 0, "{}: negative dimension -{} in the NPY shape (byte {})",
                      source_, v, base_ + start);
    return static_cast<int64_t>(v);
  }

  // (), (3,), (2, 3) or (2, 3,). "(3)" is the integer 3 in Python, not a tuple: refused.
  Shape shape_tuple() {
    Shape shape;
    expect('(');
    if (eat(')')) return shape;
    for (;;) {
      shape.push_back(integer());
      if (shape.size() > kMaxRank) fail(fmt::format("more than {} dimensions", kMaxRank));
      if (eat(')')) {
        if (shape.size() == 1) fail("a one-element shape needs a trailing comma, as in (3,)");
        return shape;
      }
      expect(',');
      if (eat(')')) return shape;
    }
  }

  const uint8_t* text_;
  size_t size_;
  size_t base_;
  const std::string& source_;
  size_t pos_ = 0;
};

// ---------------------------------------------------------------------------------------------
// NPY data.

struct Descr {
  char kind;        // 'f', 'i', 'u' or 'b'
  size_t size;      // bytes per element in the file
  bool big_endian;  // the file's byte order
  DType dtype;      // what we return
};

Descr parse_descr(const std::string& descr, const std::string& source) {
  NEUTRINO_CHECK_IO(descr.find('O') == std::string::npos,
                    "{}: NPY dtype '{}' is an object array, refused: loading it would need "
                    "unpickling, which can run arbitrary code",
                    source, descr);
  static constexpr std::string_view kKnown[] = {"f4", "f8", "i1", "i2", "i4",
                                                "i8", "u1", "u2", "u4", "b1"};
  const std::string_view code = std::string_view(descr).substr(std::min<size_t>(descr.size(), 1));
  NEUTRINO_CHECK_IO(descr.size() == 3 &&
                        std::string_view("<>|=").find(descr[0]) != std::string::npos &&
                        std::find(std::begin(kKnown), std::end(kKnown), code) != std::end(kKnown),
                    "{}: unsupported NPY dtype descr '{}' (supported: f4, f8, i1, i2, i4, i8, u1, "
                    "u2, u4, b1, little- or big-endian)",
                    source, descr);
  Descr d;
  d.kind = descr[1];
  d.size = static_cast<size_t>(descr[2] - '0');
  // '|' (byte order does not apply) and '=' mean native.
  d.big_endian = descr[0] == '>' || (descr[0] != '<' && !kLittleEndian);
  d.dtype = d.kind == 'f'   ? (d.size == 4 ? DType::kFloat32 : DType::kFloat64)
            : d.kind == 'b' ? DType::kBool
                            : DType::kInt64;
  return d;
}

void decode(const uint8_t* src, size_t count, const Descr& d, void* out) {
  const size_t n = d.size;
  // In our byte order, the types we store as they are (f4, f8, i8) are one copy.
  if (d.big_endian == !kLittleEndian && n == dtype_size(d.dtype) && d.dtype != DType::kBool) {
    if (count != 0) std::memcpy(out, src, count * n);
    return;
  }
  const unsigned shift = static_cast<unsigned>(64 - 8 * n);
  for (size_t i = 0; i < count; ++i) {
    // Assembled byte by byte: the file's data may sit at any alignment and in either order.
    const uint8_t* p = src + i * n;
    uint64_t bits = 0;
    for (size_t k = 0; k < n; ++k) bits = (bits << 8) | p[d.big_endian ? k : n - 1 - k];
    switch (d.dtype) {
      case DType::kFloat32:
        static_cast<float*>(out)[i] = std::bit_cast<float>(static_cast<uint32_t>(bits));
        break;
      case DType::kFloat64:
        static_cast<double*>(out)[i] = std::bit_cast<double>(bits);
        break;
      case DType::kInt64:  // sign-extends the signed kinds
        static_cast<int64_t*>(out)[i] = d.kind == 'i' ? static_cast<int64_t>(bits << shift) >> shift
                                                      : static_cast<int64_t>(bits);
        break;
      case DType::kBool:  // our bools are exactly 0 or 1; NumPy reads any non-zero byte as true
        static_cast<bool*>(out)[i] = bits != 0;
        break;
      case DType::kBFloat16:  // no NumPy descr maps to it
        NEUTRINO_ASSERT(false);
    }
  }
}

// Copies Fortran-ordered elements (first index fastest) into C order (last index fastest).
void fortran_to_c(const uint8_t* in, uint8_t* out, const Shape& shape, size_t elem) {
  const size_t rank = shape.size();
  Shape fstride(rank);
  int64_t stride = 1;
  for (size_t k = 0; k < rank; ++k) {
    fstride[k] = stride;
    stride *= shape[k];
  }
  const int64_t count = shape_numel(shape);
  std::vector<int64_t> index(rank, 0);
  int64_t from = 0;  // the Fortran offset of `index`
  for (int64_t i = 0; i < count; ++i) {
    std::memcpy(out + static_cast<size_t>(i) * elem, in + static_cast<size_t>(from) * elem, elem);
    for (size_t k = rank; k-- > 0;) {  // odometer step in C order
      if (++index[k] < shape[k]) {
        from += fstride[k];
        break;
      }
      from -= (shape[k] - 1) * fstride[k];
      index[k] = 0;
    }
  }
}

std::string shape_literal(const Shape& shape) {
  if (shape.size() == 1) return fmt::format("({},)", shape[0]);
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += fmt::format("{}{}", i ? ", " : "", shape[i]);
  return s + ")";
}

// The one bound on a shape, shared by the reader and the writer so that whatever one accepts the
// other does too: the byte size of the widest dtype either side uses (8: every integer reads as
// int64) times the product of the non-zero dimensions must fit in int64. Zero dimensions are
// skipped because an empty tensor's strides are still products of the other dimensions. It also
// bounds every element and byte count.
constexpr uint64_t kWidestDtype = 8;

uint64_t shape_bound(const Shape& shape) {
  uint64_t bound = kWidestDtype;
  for (const int64_t dim : shape) {
    const auto extent = static_cast<uint64_t>(dim);
    if (extent == 0) continue;
    if (bound > kMaxInt64 / extent) return 0;
    bound *= extent;
  }
  return bound;
}

void check_shape_bound(const Shape& shape, const std::string& src) {
  NEUTRINO_CHECK_IO(shape_bound(shape) != 0,
                    "{}: NPY shape {} overflows the element count ({} bytes times the non-zero "
                    "dimensions must fit in int64)",
                    src, shape_str(shape), kWidestDtype);
}

// ---------------------------------------------------------------------------------------------
// ZIP (NPZ).

constexpr uint32_t kLocalSig = 0x04034b50;
constexpr uint32_t kCentralSig = 0x02014b50;
constexpr uint32_t kEndSig = 0x06054b50;
constexpr uint32_t kZip64LocatorSig = 0x07064b50;
constexpr size_t kLocalSize = 30;
constexpr size_t kCentralSize = 46;
constexpr size_t kEndSize = 22;
constexpr uint32_t kMax32 = 0xFFFFFFFF;
constexpr uint16_t kDosDate = (0 << 9) | (1 << 5) | 1;  // 1980-01-01: reproducible archives
constexpr uint16_t kFlagUtf8 = 0x0800;
// Deflate cannot expand data by more than about 1032:1, so a member claiming more is lying.
constexpr uint64_t kMaxDeflateRatio = 1032;

struct Member {
  std::string name;
  uint16_t flags = 0;
  uint16_t method = 0;
  uint32_t crc = 0;
  uint64_t csize = 0;
  uint64_t usize = 0;
  uint64_t offset = 0;      // of the local header
  uint64_t data_begin = 0;  // from the local header
};

uint32_t crc32_of(const uint8_t* p, size_t n) {
  uLong crc = crc32(0L, Z_NULL, 0);
  for (size_t done = 0; done < n;) {
    const size_t chunk = std::min(n - done, kZlibChunk);
    crc = crc32(crc, p + done, static_cast<uInt>(chunk));
    done += chunk;
  }
  return static_cast<uint32_t>(crc);
}

// ZIP64 extended information (extra field 0x0001) holds the 64-bit value of each of usize, csize
// and offset that is 0xFFFFFFFF in the fixed header, in that order.
void apply_zip64(const uint8_t* extra, size_t len, uint64_t* usize, uint64_t* csize,
                 uint64_t* offset, const std::string& where) {
  for (size_t pos = 0; pos + 4 <= len;) {
    const uint16_t id = le16(extra + pos);
    const size_t n = le16(extra + pos + 2);
    NEUTRINO_CHECK_IO(n <= len - pos - 4, "{}: extra field runs past its end", where);
    if (id == 0x0001) {
      size_t at = pos + 4;
      for (uint64_t* field : {usize, csize, offset}) {
        if (field == nullptr || *field != kMax32) continue;
        NEUTRINO_CHECK_IO(at + 8 <= pos + 4 + n, "{}: ZIP64 extra field is too short", where);
        *field = load_le(extra + at, 8);
        at += 8;
      }
    }
    pos += 4 + n;
  }
}

struct InflateGuard {
  z_stream* stream;
  ~InflateGuard() { inflateEnd(stream); }
};

// Raw deflate (no zlib or gzip wrapper), which must inflate to exactly `usize` bytes and use
// exactly `csize` bytes of input. The output grows with what comes out, never from `usize` alone.
// With `prefix`, only the first `usize` bytes (or fewer, when the stream is shorter) are wanted:
// enough to read the NPY header before trusting the directory's size.
std::vector<uint8_t> inflate_member(const uint8_t* src, uint64_t csize, uint64_t usize,
                                    const std::string& where, bool prefix = false) {
  NEUTRINO_CHECK_IO(usize <= csize * kMaxDeflateRatio + 1024,
                    "{}: declared size {} is impossible for {} bytes of deflate data", where, usize,
                    csize);
  z_stream zs{};
  NEUTRINO_CHECK_IO(inflateInit2(&zs, -MAX_WBITS) == Z_OK, "{}: cannot start zlib", where);
  InflateGuard guard{&zs};
  std::vector<uint8_t> out;
  size_t filled = 0;
  size_t fed = 0;
  for (;;) {
    if (zs.avail_in == 0 && fed < csize) {
      const size_t chunk = std::min(static_cast<size_t>(csize) - fed, kZlibChunk);
      zs.next_in = const_cast<Bytef*>(src + fed);  // zlib's API is not const-correct
      zs.avail_in = static_cast<uInt>(chunk);
      fed += chunk;
    }
    if (filled == out.size()) {
      if (prefix && filled >= usize) break;
      // One byte past `usize` is room to notice a stream that inflates to more than declared.
      NEUTRINO_CHECK_IO(filled <= usize, "{}: inflates to more than its declared {} bytes", where,
                        usize);
      out.resize(static_cast<size_t>(std::min<uint64_t>(
          usize + (prefix ? 0 : 1), std::max<uint64_t>({1 << 16, filled * 2, csize * 4}))));
    }
    zs.next_out = out.data() + filled;
    zs.avail_out = static_cast<uInt>(std::min(out.size() - filled, kZlibChunk));
    const uInt room = zs.avail_out;
    const int ret = inflate(&zs, Z_NO_FLUSH);
    filled += room - zs.avail_out;
    if (ret == Z_STREAM_END) break;
    if (ret == Z_BUF_ERROR && zs.avail_out == 0) continue;  // output full: grow
    NEUTRINO_CHECK_IO(ret != Z_BUF_ERROR, "{}: truncated deflate data ({} bytes)", where, csize);
    NEUTRINO_CHECK_IO(ret == Z_OK, "{}: corrupt deflate data near byte {}: {}", where,
                      fed - zs.avail_in, zs.msg != nullptr ? zs.msg : zError(ret));
  }
  out.resize(filled);
  if (prefix) return out;
  NEUTRINO_CHECK_IO(filled == usize, "{}: inflates to {} bytes, but the directory says {}", where,
                    filled, usize);
  NEUTRINO_CHECK_IO(fed - zs.avail_in == csize, "{}: {} bytes after the end of the deflate data",
                    where, csize - (fed - zs.avail_in));
  return out;
}

// Checks a member's local header against its central directory entry and sets data_begin.
// `limit` is where the central directory starts; member data must end before it.
void check_local_header(const uint8_t* d, size_t size, uint64_t limit, Member& m,
                        const std::string& where) {
  NEUTRINO_CHECK_IO(m.offset <= limit && limit - m.offset >= kLocalSize,
                    "{}: local header at offset {} lies past the end of the member data", where,
                    m.offset);
  const uint8_t* h = d + m.offset;
  NEUTRINO_CHECK_IO(le32(h) == kLocalSig, "{}: no local header signature at offset {}", where,
                    m.offset);
  const size_t name_len = le16(h + 26);
  const size_t extra_len = le16(h + 28);
  const uint64_t begin = m.offset + kLocalSize + name_len + extra_len;
  NEUTRINO_CHECK_IO(begin <= limit, "{}: local header at offset {} runs into the central directory",
                    where, m.offset);
  NEUTRINO_CHECK_IO(
      std::string_view(reinterpret_cast<const char*>(h + kLocalSize), name_len) == m.name &&
          le16(h + 8) == m.method,
      "{}: local header at offset {} disagrees with the central directory", where, m.offset);
  // Bit 3: sizes and CRC follow the data instead; the central directory has them then.
  if ((le16(h + 6) & 0x0008) == 0) {
    uint64_t csize = le32(h + 18);
    uint64_t usize = le32(h + 22);
    apply_zip64(h + kLocalSize + name_len, extra_len, &usize, &csize, nullptr, where);
    NEUTRINO_CHECK_IO(le32(h + 14) == m.crc && csize == m.csize && usize == m.usize,
                      "{}: local header at offset {} has CRC or sizes that disagree with the "
                      "central directory",
                      where, m.offset);
  }
  NEUTRINO_CHECK_IO(m.csize <= size - begin,
                    "{}: {} bytes of data from offset {} run past the end of the file ({} bytes)",
                    where, m.csize, begin, size);
  NEUTRINO_CHECK_IO(m.csize <= limit - begin,
                    "{}: {} bytes of data from offset {} run into the central directory at {}",
                    where, m.csize, begin, limit);
  m.data_begin = begin;
}

// Parses the central directory, the archive's table of contents, which ends the file.
std::vector<Member> read_directory(const uint8_t* d, size_t size, const std::string& source,
                                   uint64_t* cd_begin) {
  NEUTRINO_CHECK_IO(size >= kEndSize, "{}: {} bytes is too short for a zip archive (NPZ)", source,
                    size);
  // The end record is the last 22 bytes plus a comment of up to 65535 bytes.
  size_t end = size;
  const size_t lowest = size - kEndSize > 0xFFFF ? size - kEndSize - 0xFFFF : 0;
  for (size_t p = size - kEndSize + 1; p-- > lowest;) {
    if (le32(d + p) == kEndSig && p + kEndSize + le16(d + p + 20) == size) {
      end = p;
      break;
    }
  }
  NEUTRINO_CHECK_IO(end != size,
                    "{}: not a zip archive (NPZ), or truncated: no end-of-central-directory "
                    "record",
                    source);
  const uint8_t* e = d + end;
  const uint16_t count = le16(e + 10);
  const uint64_t cd_size = le32(e + 12);
  const uint64_t cd_offset = le32(e + 16);
  NEUTRINO_CHECK_IO((end < 20 || le32(d + end - 20) != kZip64LocatorSig) && count != 0xFFFF &&
                        cd_size != kMax32 && cd_offset != kMax32,
                    "{}: ZIP64 archives (over 4 GiB or 65535 members) are not supported", source);
  NEUTRINO_CHECK_IO(le16(e + 4) == 0 && le16(e + 6) == 0 && le16(e + 8) == count,
                    "{}: multi-disk zip archives are not supported", source);
  NEUTRINO_CHECK_IO(cd_offset <= end && cd_size == end - cd_offset,
                    "{}: central directory (offset {}, {} bytes) does not end at the end record "
                    "(offset {})",
                    source, cd_offset, cd_size, end);
  *cd_begin = cd_offset;

  std::vector<Member> members;
  size_t pos = cd_offset;
  for (uint16_t i = 0; i < count; ++i) {
    NEUTRINO_CHECK_IO(end - pos >= kCentralSize && le32(d + pos) == kCentralSig,
                      "{}: central directory entry {} at offset {} is missing or cut short", source,
                      i, pos);
    const uint8_t* c = d + pos;
    const size_t name_len = le16(c + 28);
    const size_t extra_len = le16(c + 30);
    const size_t comment_len = le16(c + 32);
    NEUTRINO_CHECK_IO(end - pos - kCentralSize >= name_len + extra_len + comment_len,
                      "{}: central directory entry {} at offset {} runs past the directory", source,
                      i, pos);
    Member m;
    m.name.assign(reinterpret_cast<const char*>(c + kCentralSize), name_len);
    m.flags = le16(c + 8);
    m.method = le16(c + 10);
    m.crc = le32(c + 16);
    m.csize = le32(c + 20);
    m.usize = le32(c + 24);
    m.offset = le32(c + 42);
    const std::string where = fmt::format("{}: member '{}'", source, m.name);
    apply_zip64(c + kCentralSize + name_len, extra_len, &m.usize, &m.csize, &m.offset, where);
    NEUTRINO_CHECK_IO((m.flags & 0x0041) == 0, "{}: encrypted members are not supported", where);
    NEUTRINO_CHECK_IO(m.method == 0 || m.method == 8,
                      "{}: compression method {} is not supported (only stored and deflate)", where,
                      m.method);
    NEUTRINO_CHECK_IO(m.method != 0 || m.csize == m.usize,
                      "{}: stored member with compressed size {} but size {}", where, m.csize,
                      m.usize);
    members.push_back(std::move(m));
    pos += kCentralSize + name_len + extra_len + comment_len;
  }
  NEUTRINO_CHECK_IO(pos == end, "{}: {} unexplained bytes at the end of the central directory",
                    source, end - pos);
  return members;
}

// ---------------------------------------------------------------------------------------------

// What an NPY header declares, and where its data begins.
struct NpyLayout {
  NpyHeader header;
  Descr descr;
  size_t begin;
  uint64_t count, nbytes;
};

// Checks the magic, version and header at the start of `data` (`size` bytes, which may end
// before the array data).
NpyLayout parse_npy_layout(const uint8_t* data, size_t size, const std::string& src) {
  NEUTRINO_CHECK_IO(size >= 10, "{}: file is {} bytes, too short for an NPY header", src, size);
  NEUTRINO_CHECK_IO(std::memcmp(data, kNpyMagic, sizeof(kNpyMagic)) == 0,
                    "{}: bad NPY magic (expected \\x93NUMPY at offset 0)", src);
  const int major = data[6];
  const int minor = data[7];
  NEUTRINO_CHECK_IO(major >= 1 && major <= 3 && minor == 0,
                    "{}: unsupported NPY version {}.{} at offset 6 (supported: 1.0, 2.0, 3.0)", src,
                    major, minor);
  const size_t prefix = major == 1 ? 10 : 12;
  NEUTRINO_CHECK_IO(size >= prefix, "{}: truncated: no room for the NPY header length", src);
  const uint64_t header_len = load_le(data + 8, prefix - 8);
  NEUTRINO_CHECK_IO(header_len <= kMaxNpyHeaderBytes,
                    "{}: NPY header length {} at offset 8 exceeds the limit of {} bytes", src,
                    header_len, kMaxNpyHeaderBytes);
  NEUTRINO_CHECK_IO(header_len <= size - prefix,
                    "{}: truncated: NPY header of {} bytes runs past the end of the file ({} "
                    "bytes)",
                    src, header_len, size);
  NEUTRINO_CHECK_IO(header_len > 0 && data[prefix + header_len - 1] == '\n',
                    "{}: NPY header does not end in '\\n' (byte {})", src, prefix + header_len - 1);
  const NpyHeader header = HeaderParser(data + prefix, header_len, prefix, src).parse();
  const Descr descr = parse_descr(header.descr, src);

  check_shape_bound(header.shape, src);
  uint64_t count = 1;
  for (const int64_t dim : header.shape) count *= static_cast<uint64_t>(dim);  // within the bound
  return {header, descr, prefix + header_len, count, count * descr.size};
}

// The most an NPY file can hold before its array data: the version 2/3 prefix and the header.
constexpr size_t kMaxNpyPrelude = 12 + kMaxNpyHeaderBytes;

// A member's directory size must be what its NPY header declares, checked on its first bytes
// before it is inflated: a member of zeros claiming gigabytes is refused without holding them.
void check_member_size(const uint8_t* head, size_t head_size, uint64_t usize,
                       const std::string& where) {
  const NpyLayout layout = parse_npy_layout(head, head_size, where);
  const uint64_t expected = layout.begin + layout.nbytes;
  NEUTRINO_CHECK_IO(usize <= expected, "{}: {} trailing bytes after the NPY data at offset {}",
                    where, usize - expected, expected);
}
}  // namespace

Tensor read_npy_bytes(const uint8_t* data, size_t size, const std::string& source_name) {
  const std::string& src = source_name;
  const auto [header, descr, begin, count, nbytes] = parse_npy_layout(data, size, src);
  const uint64_t available = size - begin;
  NEUTRINO_CHECK_IO(available >= nbytes,
                    "{}: truncated: NPY shape {} of '{}' needs {} bytes from offset {} but {} "
                    "follow",
                    src, shape_str(header.shape), header.descr, nbytes, begin, available);
  NEUTRINO_CHECK_IO(available == nbytes, "{}: {} trailing bytes after the NPY data at offset {}",
                    src, available - nbytes, begin + nbytes);

  // Allocated only now, with the size proven against real bytes.
  if (!header.fortran_order || header.shape.size() < 2) {
    Tensor out = Tensor::empty(header.shape, descr.dtype);
    decode(data + begin, static_cast<size_t>(count), descr, out.raw_data());
    return out;
  }
  // Fortran data of shape S is C data of shape reversed(S): decode it so, then transpose.
  const Tensor file_order =
      Tensor::empty(Shape(header.shape.rbegin(), header.shape.rend()), descr.dtype);
  decode(data + begin, static_cast<size_t>(count), descr, file_order.raw_data());
  Tensor out = Tensor::empty(header.shape, descr.dtype);
  fortran_to_c(static_cast<const uint8_t*>(file_order.raw_data()),
               static_cast<uint8_t*>(out.raw_data()), header.shape, dtype_size(descr.dtype));
  return out;
}

Tensor read_npy(const std::string& path) {
  const std::vector<uint8_t> bytes = read_file(path);
  return read_npy_bytes(bytes.data(), bytes.size(), path);
}

std::vector<uint8_t> write_npy_bytes(const Tensor& tensor) {
  NEUTRINO_CHECK_VALUE(tensor.defined(), "write_npy: the tensor is undefined");
  NEUTRINO_CHECK_VALUE(shape_bound(tensor.shape()) != 0,
                       "write_npy: shape {} overflows the element count ({} bytes times the "
                       "non-zero dimensions must fit in int64)",
                       tensor.shape_string(), kWidestDtype);
  const Tensor t = densify(tensor.detach());
  const char order = kLittleEndian ? '<' : '>';
  std::string descr;
  switch (t.dtype()) {
    case DType::kFloat32:
      descr = fmt::format("{}f4", order);
      break;
    case DType::kFloat64:
      descr = fmt::format("{}f8", order);
      break;
    case DType::kInt64:
      descr = fmt::format("{}i8", order);
      break;
    case DType::kBool:
      descr = "|b1";
      break;
    case DType::kBFloat16:
      throw ValueError("write_npy: NumPy has no bfloat16 dtype; cast the tensor to float32 first");
  }
  std::string header = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
                                   descr, shape_literal(t.shape()));
  // Spaces, then '\n', so that magic + version + length + header is a multiple of 64.
  const size_t used = 10 + header.size() + 1;
  header.append((kNpyAlign - used % kNpyAlign) % kNpyAlign, ' ');
  header += '\n';
  NEUTRINO_CHECK_VALUE(header.size() <= kMaxNpyHeaderBytes,
                       "write_npy: header for shape {} exceeds {} bytes", t.shape_string(),
                       kMaxNpyHeaderBytes);
  const size_t nbytes = static_cast<size_t>(t.numel()) * dtype_size(t.dtype());
  std::vector<uint8_t> out(std::begin(kNpyMagic), std::end(kNpyMagic));
  out.reserve(10 + header.size() + nbytes);
  out.push_back(1);
  out.push_back(0);
  put_le(out, header.size(), 2);
  out.insert(out.end(), header.begin(), header.end());
  const auto* p = static_cast<const uint8_t*>(t.raw_data());
  out.insert(out.end(), p, p + nbytes);
  return out;
}

void write_npy(const std::string& path, const Tensor& tensor) {
  io::write_file_atomically(path, write_npy_bytes(tensor));
}

std::map<std::string, Tensor> read_npz_bytes(const uint8_t* data, size_t size,
                                             const std::string& source_name) {
  uint64_t cd_begin = 0;
  std::vector<Member> members = read_directory(data, size, source_name, &cd_begin);
  for (Member& m : members) {
    check_local_header(data, size, cd_begin, m,
                       fmt::format("{}: member '{}'", source_name, m.name));
  }
  // Members must not share bytes: overlapping members are how zip bombs multiply one
  // compressed block into many outputs.
  std::vector<const Member*> by_offset;
  for (const Member& m : members) by_offset.push_back(&m);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const Member* a, const Member* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const Member& prev = *by_offset[i - 1];
    NEUTRINO_CHECK_IO(prev.data_begin + prev.csize <= by_offset[i]->offset,
                      "{}: members '{}' and '{}' overlap", source_name, prev.name,
                      by_offset[i]->name);
  }

  std::map<std::string, Tensor> tensors;
  for (const Member& m : members) {
    const std::string where = fmt::format("{}: member '{}'", source_name, m.name);
    NEUTRINO_CHECK_IO(m.name.size() >= 4 && m.name.ends_with(".npy"), "{}: is not a .npy file",
                      where);
    const std::string key = m.name.substr(0, m.name.size() - 4);
    NEUTRINO_CHECK_IO(tensors.count(key) == 0, "{}: duplicate member", where);
    const uint8_t* stored = data + m.data_begin;
    std::vector<uint8_t> inflated;
    if (m.method == 8) {
      const std::vector<uint8_t> head = inflate_member(
          stored, m.csize, std::min<uint64_t>(m.usize, kMaxNpyPrelude), where, /*prefix=*/true);
      check_member_size(head.data(), head.size(), m.usize, where);
      inflated = inflate_member(stored, m.csize, m.usize, where);
      stored = inflated.data();
    }
    const uint32_t crc = crc32_of(stored, static_cast<size_t>(m.usize));
    NEUTRINO_CHECK_IO(crc == m.crc, "{}: CRC-32 mismatch (data {:08x}, directory {:08x})", where,
                      crc, m.crc);
    tensors.emplace(key, read_npy_bytes(stored, static_cast<size_t>(m.usize), where));
  }
  return tensors;
}

std::map<std::string, Tensor> read_npz(const std::string& path) {
  const std::vector<uint8_t> bytes = read_file(path);
  return read_npz_bytes(bytes.data(), bytes.size(), path);
}

std::vector<uint8_t> write_npz_bytes(const std::map<std::string, Tensor>& tensors) {
  NEUTRINO_CHECK_VALUE(tensors.size() < 0xFFFF, "write_npz: {} tensors need ZIP64 (unsupported)",
                       tensors.size());
  std::vector<uint8_t> out;
  std::vector<uint8_t> directory;
  for (const auto& [key, tensor] : tensors) {
    const std::string name = key + ".npy";
    NEUTRINO_CHECK_VALUE(name.size() <= 0xFFFF, "write_npz: name '{}' is too long", key);
    const std::vector<uint8_t> npy = write_npy_bytes(tensor);
    const uint64_t offset = out.size();
    NEUTRINO_CHECK_VALUE(npy.size() < kMax32 && offset < kMax32,
                         "write_npz: '{}': archives over 4 GiB need ZIP64 (unsupported)", key);
    const uint32_t crc = crc32_of(npy.data(), npy.size());
    const bool ascii =
        std::all_of(name.begin(), name.end(), [](char c) { return (c & 0x80) == 0; });
    const uint16_t flags = ascii ? 0 : kFlagUtf8;
    // The fields shared by the local header and the central directory entry, in order.
    const auto common = [&](std::vector<uint8_t>& v) {
      put_le(v, 20, 2);  // version needed: 2.0
      put_le(v, flags, 2);
      put_le(v, 0, 2);  // stored
      put_le(v, 0, 2);  // time
      put_le(v, kDosDate, 2);
      put_le(v, crc, 4);
      put_le(v, npy.size(), 4);
      put_le(v, npy.size(), 4);
      put_le(v, name.size(), 2);
      put_le(v, 0, 2);  // extra length
    };
    put_le(out, kLocalSig, 4);
    common(out);
    out.insert(out.end(), name.begin(), name.end());
    out.insert(out.end(), npy.begin(), npy.end());

    put_le(directory, kCentralSig, 4);
    put_le(directory, 20, 2);  // made by: MS-DOS, 2.0
    common(directory);
    put_le(directory, 0, 2);  // comment length
    put_le(directory, 0, 2);  // disk
    put_le(directory, 0, 2);  // internal attributes
    put_le(directory, 0, 4);  // external attributes
    put_le(directory, offset, 4);
    directory.insert(directory.end(), name.begin(), name.end());
  }
  const uint64_t cd_offset = out.size();
  NEUTRINO_CHECK_VALUE(cd_offset + directory.size() < kMax32,
                       "write_npz: archives over 4 GiB need ZIP64 (unsupported)");
  out.insert(out.end(), directory.begin(), directory.end());
  put_le(out, kEndSig, 4);
  put_le(out, 0, 4);  // disk numbers
  put_le(out, tensors.size(), 2);
  put_le(out, tensors.size(), 2);
  put_le(out, directory.size(), 4);
  put_le(out, cd_offset, 4);
  put_le(out, 0, 2);  // comment length
  return out;
}

void write_npz(const std::string& path, const std::map<std::string, Tensor>& tensors) {
  io::write_file_atomically(path, write_npz_bytes(tensors));
}

}  // namespace neutrino::data
