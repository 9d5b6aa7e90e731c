// Hostile inputs found by tests/hostile/cost_check.py (the cost bound of issue 10): small files
// that made a reader hold far more memory than the file or the data it declares before refusing
// them. Each is now refused from what its header declares; the tests check that the refusal
// comes before the costly part (the data past the declared size is corrupt, so a reader that
// still inflated it all would report that instead).
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstring>
#include <string>
#include <vector>

#include "neutrino/data/csv.h"
#include "neutrino/data/idx.h"
#include "neutrino/data/npy.h"
#include "test_util.h"

using namespace neutrino;
using neutrino::testing::expect_error;

namespace {

using Bytes = std::vector<uint8_t>;

// A zlib stream of `raw`: gzip-wrapped (window_bits 16 + 15) or raw deflate (-15, as in ZIP).
Bytes deflate_bytes(const Bytes& raw, int window_bits) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, 9, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY), Z_OK);
  Bytes out(deflateBound(&zs, static_cast<uLong>(raw.size())) + 64);
  zs.next_in = const_cast<Bytef*>(raw.data());
  zs.avail_in = static_cast<uInt>(raw.size());
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

// Spoils the last bytes of a compressed stream: what inflates first is intact, its end is not.
Bytes spoil_end(Bytes z) {
  for (size_t i = z.size() - 12; i < z.size(); ++i) z[i] ^= 0x5a;
  return z;
}

void put_le(Bytes& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

// A one-member ZIP whose member `name` is `deflated` (raw deflate of `raw`).
Bytes zip_one(const std::string& name, const Bytes& raw, const Bytes& deflated) {
  const auto crc = static_cast<uint32_t>(crc32(0, raw.data(), static_cast<uInt>(raw.size())));
  auto fields = [&](Bytes& out) {
    put_le(out, 20, 2);  // version needed
    put_le(out, 0, 2);   // flags
    put_le(out, 8, 2);   // deflate
    put_le(out, 0, 2);   // time
    put_le(out, (1 << 5) | 1, 2);  // 1980-01-01
    put_le(out, crc, 4);
    put_le(out, deflated.size(), 4);
    put_le(out, raw.size(), 4);
    put_le(out, name.size(), 2);
    put_le(out, 0, 2);  // extra
  };
  Bytes out;
  put_le(out, 0x04034b50, 4);
  fields(out);
  out.insert(out.end(), name.begin(), name.end());
  out.insert(out.end(), deflated.begin(), deflated.end());
  const size_t cd = out.size();
  put_le(out, 0x02014b50, 4);
  put_le(out, 20, 2);  // version made by
  fields(out);
  put_le(out, 0, 2);  // comment
  put_le(out, 0, 2);  // disk
  put_le(out, 0, 2);  // internal attributes
  put_le(out, 0, 4);  // external attributes
  put_le(out, 0, 4);  // local header offset
  out.insert(out.end(), name.begin(), name.end());
  const size_t cd_size = out.size() - cd;
  put_le(out, 0x06054b50, 4);
  put_le(out, 0, 4);  // disks
  put_le(out, 1, 2);
  put_le(out, 1, 2);
  put_le(out, cd_size, 4);
  put_le(out, cd, 4);
  put_le(out, 0, 2);
  return out;
}

Bytes npy_f32(int64_t n) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(n) + ",), }";
  header.append(63 - (10 + header.size()) % 64, ' ');
  header += '\n';
  Bytes out = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};
  put_le(out, header.size(), 2);
  out.insert(out.end(), header.begin(), header.end());
  out.resize(out.size() + static_cast<size_t>(n) * 4, 0);
  return out;
}

}  // namespace

TEST(HostileReaders, GzippedIdxIsInflatedNoFurtherThanItsHeaderDeclares) {
  // 8 bytes of u8 data declared, 4 MB of zeros after them, the stream's end spoiled.
  Bytes raw = {0, 0, 0x08, 1, 0, 0, 0, 8};
  raw.resize(raw.size() + 8 + (4 << 20), 0);
  const Bytes gz = spoil_end(deflate_bytes(raw, 16 + MAX_WBITS));
  expect_error<IOError>([&] { data::read_idx_bytes(gz.data(), gz.size(), "x.idx.gz"); },
                        {"x.idx.gz: trailing bytes after the IDX data at offset 16",
                         "inflates to more than the 16 bytes its header declares"});
  // Exactly the declared size still reads, and a short stream is still truncated.
  raw.resize(16);
  const Bytes ok = deflate_bytes(raw, 16 + MAX_WBITS);
  EXPECT_EQ(data::read_idx_bytes(ok.data(), ok.size(), "x.idx.gz").shape(), (Shape{8}));
  raw.resize(12);
  const Bytes cut = deflate_bytes(raw, 16 + MAX_WBITS);
  expect_error<IOError>([&] { data::read_idx_bytes(cut.data(), cut.size(), "x.idx.gz"); },
                        {"x.idx.gz: truncated"});
  // A header cut inside the first bytes is reported as before.
  const Bytes tiny = deflate_bytes(Bytes{0, 0, 0x08, 3, 0, 0}, 16 + MAX_WBITS);
  expect_error<IOError>([&] { data::read_idx_bytes(tiny.data(), tiny.size(), "t.gz"); },
                        {"t.gz: truncated: the IDX header needs 16 bytes"});
}

TEST(HostileReaders, NpzMemberSizeIsCheckedAgainstItsNpyHeaderBeforeInflating) {
  Bytes member = npy_f32(4);
  const size_t declared = member.size();
  member.resize(member.size() + (4 << 20), 0);
  const Bytes zip = zip_one("x.npy", member, spoil_end(deflate_bytes(member, -MAX_WBITS)));
  expect_error<IOError>([&] { data::read_npz_bytes(zip.data(), zip.size(), "b.npz"); },
                        {"b.npz: member 'x.npy': " + std::to_string(4 << 20) +
                         " trailing bytes after the NPY data at offset " + std::to_string(declared)});
  const Bytes exact = npy_f32(4);
  const Bytes ok = zip_one("x.npy", exact, deflate_bytes(exact, -MAX_WBITS));
  EXPECT_EQ(data::read_npz_bytes(ok.data(), ok.size(), "ok.npz").at("x").shape(), (Shape{4}));
}

TEST(HostileReaders, CsvLinesAreSplitOnlyAsFarAsTheirExpectedWidth) {
  // The count stays exact, though only the first columns + 1 fields are kept.
  std::string text = "a,b\n1,2\n";
  for (int i = 0; i < 100000; ++i) text += "1,";
  text += "1\n";
  expect_error<IOError>([&] { data::read_csv_text(text, "w.csv", {}); },
                        {"w.csv:3: expected 2 fields (as in the header on line 1), found 100001"});
  // Wider than the limit: refused at the header, or at the first row without one.
  const std::string wide(data::kMaxCsvColumns, ',');
  expect_error<IOError>([&] { data::read_csv_text(wide + "\n0\n", "h.csv", {}); },
                        {"h.csv:1: 1048577 columns, more than the limit of 1048576"});
  expect_error<IOError>([&] { data::read_csv_text(wide + "\n", "n.csv", {.header = false}); },
                        {"n.csv:1: 1048577 columns, more than the limit"});
  expect_error<IOError>(
      [&] { data::read_csv_text(wide + "\n", "d.csv", {.detect_header = true}); },
      {"d.csv:1: 1048577 columns"});
  // Exactly at the limit is allowed.
  std::string row = "0";
  for (size_t i = 1; i < data::kMaxCsvColumns; ++i) row += ",0";
  EXPECT_EQ(data::read_csv_text(row + "\n", "e.csv", {.header = false}).features.size(1),
            static_cast<int64_t>(data::kMaxCsvColumns));
}
