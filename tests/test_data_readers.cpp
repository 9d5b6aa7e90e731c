// IDX and NPY/NPZ readers: valid files (ours, NumPy's, the real Fashion-MNIST) and every bad input
// of docs "Bad inputs" 9 and 10, each built byte by byte inside the test.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "neutrino/ops/ops.h"
#include "neutrino/core/error.h"
#include "neutrino/data/idx.h"
#include "neutrino/data/npy.h"
#include "neutrino/tensor/tensor.h"

namespace neutrino::data {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

// Each test gets its own scratch directory.
class DataFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / ("neutrino_data_" + std::to_string(::getpid()) + "_" +
                                        info->test_suite_name() + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  std::string put(const std::string& name, const Bytes& bytes) const {
    std::ofstream(path(name), std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
    return path(name);
  }
  Bytes get(const std::string& name) const {
    std::ifstream in(path(name), std::ios::binary);
    return Bytes(std::istreambuf_iterator<char>(in), {});
  }
  // Runs a Python script, which gets this test's directory as argv[1], and asserts it succeeded.
  void run_python(const std::string& script) const {
    const std::string file = put("script.py", Bytes(script.begin(), script.end()));
    const std::string cmd = "/usr/bin/python3 " + file + " " + dir_.string();
    ASSERT_EQ(std::system(cmd.c_str()), 0) << script;
  }
  size_t entries() const {
    return static_cast<size_t>(std::distance(fs::directory_iterator(dir_), {}));
  }

  fs::path dir_;
};

// Runs `fn`, which must throw IOError whose message starts with `source` and contains `what`.
void expect_refused(const std::function<void()>& fn, const std::string& source,
                    const std::string& what) {
  try {
    fn();
    ADD_FAILURE() << "accepted; expected an error containing '" << what << "'";
  } catch (const IOError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind(source + ": ", 0), 0u) << msg;
    EXPECT_NE(msg.find(what), std::string::npos) << "'" << what << "' not in: " << msg;
  }
}

void expect_same(const Tensor& a, const Tensor& b) {
  ASSERT_EQ(a.dtype(), b.dtype());
  ASSERT_EQ(a.shape(), b.shape());
  const Tensor ca = contiguous(a);
  const Tensor cb = contiguous(b);
  EXPECT_EQ(std::memcmp(ca.raw_data(), cb.raw_data(),
                        static_cast<size_t>(a.numel()) * dtype_size(a.dtype())),
            0);
}

// ---------------------------------------------------------------------------------------------
// IDX

void put_be32(Bytes& out, uint32_t v) {
  for (int i = 3; i >= 0; --i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

Bytes idx_file(uint8_t type, const std::vector<uint32_t>& dims, const Bytes& payload) {
  Bytes out = {0, 0, type, static_cast<uint8_t>(dims.size())};
  for (const uint32_t d : dims) put_be32(out, d);
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

// Writes `bytes` as a gzip member; "ab" appends another member to the same file.
void gzip_to(const std::string& file, const Bytes& bytes, const char* mode = "wb") {
  gzFile gz = gzopen(file.c_str(), mode);
  ASSERT_NE(gz, nullptr);
  ASSERT_EQ(gzwrite(gz, bytes.data(), static_cast<unsigned>(bytes.size())),
            static_cast<int>(bytes.size()));
  ASSERT_EQ(gzclose(gz), Z_OK);
}

using IdxReader = DataFiles;

TEST_F(IdxReader, U8ImagesAndLabels) {
  Bytes pixels;
  for (int i = 0; i < 3 * 2 * 2; ++i) pixels.push_back(static_cast<uint8_t>(i * 20));
  const std::string images = put("images", idx_file(0x08, {3, 2, 2}, pixels));
  const std::string labels = put("labels", idx_file(0x08, {3}, {7, 0, 9}));
  const IdxPair pair = read_idx_pair(images, labels);
  EXPECT_EQ(pair.images.shape(), (Shape{3, 2, 2}));
  EXPECT_EQ(pair.images.dtype(), DType::kInt64);
  EXPECT_EQ(pair.labels.to_vector<int64_t>(), (std::vector<int64_t>{7, 0, 9}));
  std::vector<int64_t> expected(pixels.begin(), pixels.end());
  EXPECT_EQ(pair.images.to_vector<int64_t>(), expected);
}

TEST_F(IdxReader, EveryTypeIsBigEndian) {
  EXPECT_EQ(read_idx(put("i8", idx_file(0x09, {2}, {0xff, 0x7f}))).to_vector<int64_t>(),
            (std::vector<int64_t>{-1, 127}));
  EXPECT_EQ(
      read_idx(put("i16", idx_file(0x0B, {2}, {0xff, 0xfe, 0x01, 0x2c}))).to_vector<int64_t>(),
      (std::vector<int64_t>{-2, 300}));
  // -70000 = 0xfffeee90.
  EXPECT_EQ(
      read_idx(put("i32", idx_file(0x0C, {1}, {0xff, 0xfe, 0xee, 0x90}))).to_vector<int64_t>(),
      (std::vector<int64_t>{-70000}));
  const Tensor f32 = read_idx(put("f32", idx_file(0x0D, {1, 1}, {0x3f, 0xc0, 0, 0})));
  EXPECT_EQ(f32.dtype(), DType::kFloat32);
  EXPECT_EQ(f32.to_vector<float>(), (std::vector<float>{1.5f}));
  const Tensor f64 = read_idx(put("f64", idx_file(0x0E, {1}, {0xc0, 0x02, 0, 0, 0, 0, 0, 0})));
  EXPECT_EQ(f64.dtype(), DType::kFloat64);
  EXPECT_EQ(f64.to_vector<double>(), (std::vector<double>{-2.25}));
  // A zero dimension is an empty tensor, not an error.
  EXPECT_EQ(read_idx(put("empty", idx_file(0x08, {0, 28}, {}))).shape(), (Shape{0, 28}));
}

TEST_F(IdxReader, Gzipped) {
  const Bytes plain = idx_file(0x08, {2, 3}, {1, 2, 3, 4, 5, 6});
  gzip_to(path("a.gz"), plain);
  expect_same(read_idx(path("a.gz")), read_idx(put("a", plain)));
  // Concatenated members form one stream, as `cat a.gz b.gz` does.
  gzip_to(path("b.gz"), Bytes(plain.begin(), plain.begin() + 10));
  gzip_to(path("b.gz"), Bytes(plain.begin() + 10, plain.end()), "ab");
  expect_same(read_idx(path("b.gz")), read_idx(path("a")));
}

TEST_F(IdxReader, FashionMnistTestSet) {
  std::string dir;
  for (const char* d : {"/usr/share/datasets/fashion-mnist", "/usr/share/dataset-fashion-mnist"}) {
    if (fs::exists(fs::path(d) / "t10k-images-idx3-ubyte.gz")) dir = d;
  }
  if (dir.empty()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  const IdxPair pair =
      read_idx_pair(dir + "/t10k-images-idx3-ubyte.gz", dir + "/t10k-labels-idx1-ubyte.gz");
  EXPECT_EQ(pair.images.shape(), (Shape{10000, 28, 28}));
  EXPECT_EQ(pair.labels.shape(), (Shape{10000}));
  std::vector<int> per_class(10, 0);
  for (const int64_t label : pair.labels.to_vector<int64_t>()) {
    ASSERT_GE(label, 0);
    ASSERT_LT(label, 10);
    ++per_class[static_cast<size_t>(label)];
  }
  EXPECT_EQ(per_class, std::vector<int>(10, 1000));  // the test set is balanced
  int64_t max_pixel = 0;
  for (const int64_t p : pair.images.to_vector<int64_t>()) {
    ASSERT_GE(p, 0);
    max_pixel = std::max(max_pixel, p);
  }
  EXPECT_EQ(max_pixel, 255);
}

using IdxBadInput = DataFiles;

TEST_F(IdxBadInput, HeaderFields) {
  const auto refused = [&](const std::string& name, const Bytes& bytes, const std::string& what) {
    const std::string file = put(name, bytes);
    expect_refused([&] { read_idx(file); }, file, what);
  };
  refused("empty", {}, "too short");
  refused("magic", {0, 1, 0x08, 1, 0, 0, 0, 0}, "bad IDX magic");
  refused("type", idx_file(0x0A, {1}, {0}), "unknown IDX type byte 0x0a at offset 2");
  refused("zero_dims", idx_file(0x08, {}, {}), "dimension count 0");
  refused("nine_dims", idx_file(0x08, std::vector<uint32_t>(9, 1), {0}), "dimension count 9");
  refused("header_cut", Bytes{0, 0, 0x08, 3, 0, 0, 0, 1, 0, 0}, "truncated");
  refused("overflow", idx_file(0x08, {0xffffffff, 0xffffffff, 0xffffffff}, {}), "overflow");
  // Empty (a zero dimension), but the other dimensions' strides would still overflow.
  refused("overflow0", idx_file(0x0E, {0, 0xffffffff, 0xffffffff, 0xffffffff}, {}), "overflow");
  refused("data_cut", idx_file(0x0B, {2, 2}, {1, 2, 3, 4, 5, 6, 7}),
          "header says 4 i16 data for shape (2, 2) (8 bytes from offset 12) but only 7");
  refused("trailing", idx_file(0x08, {2}, {1, 2, 3}), "1 trailing bytes after the IDX data");
}

TEST_F(IdxBadInput, MissingFileAndDirectory) {
  expect_refused([&] { read_idx(path("nope")); }, path("nope"), "cannot open");
  expect_refused([&] { read_idx(dir_.string()); }, dir_.string(), "not a regular file");
}

TEST_F(IdxBadInput, BrokenGzip) {
  Bytes plain = idx_file(0x08, {64}, Bytes(64, 0));
  for (size_t i = 8; i < plain.size(); ++i) plain[i] = static_cast<uint8_t>(i * 37);
  gzip_to(path("good.gz"), plain);
  const Bytes gz = get("good.gz");

  const std::string cut = put("cut.gz", Bytes(gz.begin(), gz.end() - 5));
  expect_refused([&] { read_idx(cut); }, cut, "truncated gzip stream");
  const std::string half = put("half.gz", Bytes(gz.begin(), gz.begin() + 20));
  expect_refused([&] { read_idx(half); }, half, "truncated gzip stream");
  Bytes flipped = gz;
  flipped[flipped.size() - 12] ^= 0x55;  // inside the deflate data or its CRC
  const std::string bad = put("bad.gz", flipped);
  expect_refused([&] { read_idx(bad); }, bad, "corrupt gzip stream");
  Bytes trailing = gz;
  trailing.push_back(0);
  const std::string tail = put("tail.gz", trailing);
  expect_refused([&] { read_idx(tail); }, tail, "1 trailing bytes after the gzip stream");
  // A well-formed stream around a bad IDX image is refused by the IDX checks.
  gzip_to(path("short.gz"), Bytes(plain.begin(), plain.end() - 1));
  expect_refused([&] { read_idx(path("short.gz")); }, path("short.gz"), "truncated: IDX header");
}

TEST_F(IdxBadInput, DecompressionCap) {
  gzip_to(path("big.gz"), Bytes(100000, 0));
  const Bytes gz = get("big.gz");
  EXPECT_EQ(detail::gunzip(gz.data(), gz.size(), 100000, "big.gz").size(), 100000u);
  expect_refused([&] { detail::gunzip(gz.data(), gz.size(), 99999, "big.gz"); }, "big.gz",
                 "decompresses to more than 99999 bytes");
}

TEST_F(IdxBadInput, LabelCountMismatch) {
  const std::string images = put("images", idx_file(0x08, {3, 1}, {1, 2, 3}));
  const std::string labels = put("labels", idx_file(0x08, {2}, {1, 2}));
  expect_refused([&] { read_idx_pair(images, labels); }, images,
                 "3 images, but " + labels + " has 2 labels");
}

// ---------------------------------------------------------------------------------------------
// NPY

// Deterministic contents, different per element, for any dtype and shape.
Tensor sample(const Shape& shape, DType dtype) {
  Tensor t = Tensor::empty(shape, dtype);
  for (int64_t i = 0; i < t.numel(); ++i) {
    const double v = static_cast<double>(i % 7) * 1.25 - 3.0 + static_cast<double>(i) / 8;
    switch (dtype) {
      case DType::kFloat32:
        t.data<float>()[i] = static_cast<float>(v);
        break;
      case DType::kFloat64:
        t.data<double>()[i] = v;
        break;
      case DType::kInt64:
        t.data<int64_t>()[i] = i * 1000003 - 77;
        break;
      case DType::kBool:
        t.data<bool>()[i] = i % 3 == 0;
        break;
      case DType::kBFloat16:
        t.data<bfloat16>()[i] = bfloat16(v);
        break;
    }
  }
  return t;
}

// An NPY file with the given header dict text, padded NumPy's way unless `pad` is false.
Bytes npy_file(const std::string& dict, const Bytes& data, int major = 1, bool pad = true) {
  std::string header = dict;
  const size_t prefix = major == 1 ? 10 : 12;
  if (pad) {
    header.append((64 - (prefix + header.size() + 1) % 64) % 64, ' ');
    header += '\n';
  }
  Bytes out = {0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<uint8_t>(major), 0};
  for (size_t i = 0; i < prefix - 8; ++i)
    out.push_back(static_cast<uint8_t>(header.size() >> (8 * i)));
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

Tensor parse_npy(const Bytes& bytes) { return read_npy_bytes(bytes.data(), bytes.size(), "t.npy"); }

bool have_numpy() {
  static const bool ok = std::system("/usr/bin/python3 -c 'import numpy' > /dev/null 2>&1") == 0;
  return ok;
}

constexpr const char* kPythonPrelude =
    "import sys, numpy as np\n"
    "d = sys.argv[1] + '/'\n";

using NpyRoundTrip = DataFiles;

TEST_F(NpyRoundTrip, EveryDtypeAndShape) {
  const std::vector<Shape> shapes = {{}, {0}, {5}, {2, 3}, {2, 0, 3}, {2, 3, 4}, {1, 1, 1, 1, 2}};
  for (const DType dtype : {DType::kFloat32, DType::kFloat64, DType::kInt64, DType::kBool}) {
    for (const Shape& shape : shapes) {
      SCOPED_TRACE(std::string(dtype_name(dtype)) + " " + shape_str(shape));
      const Tensor t = sample(shape, dtype);
      write_npy(path("t.npy"), t);
      expect_same(read_npy(path("t.npy")), t);
      const Bytes bytes = get("t.npy");
      EXPECT_EQ(bytes, write_npy_bytes(t));
      const size_t header_len = bytes[8] | (bytes[9] << 8);
      EXPECT_EQ((10 + header_len) % 64, 0u);
      EXPECT_EQ(bytes[10 + header_len - 1], '\n');
    }
  }
  EXPECT_EQ(entries(), 1u);  // no temporary file left behind
}

TEST_F(NpyRoundTrip, NonContiguousTensorIsWrittenInCOrder) {
  const Tensor t = sample({2, 3}, DType::kInt64);
  const Tensor transposed = t.view_as({3, 2}, {1, 3}, 0);
  const Tensor back = parse_npy(write_npy_bytes(transposed));
  EXPECT_EQ(back.to_vector<int64_t>(), transposed.to_vector<int64_t>());
}

TEST_F(NpyRoundTrip, WriteErrors) {
  expect_refused([&] { write_npy(path("no/dir/t.npy"), sample({2}, DType::kFloat32)); },
                 path("no/dir/t.npy"), "cannot create temporary file");
  EXPECT_THROW(write_npy_bytes(Tensor()), ValueError);
}

TEST_F(NpyRoundTrip, NumPyReadsOurFiles) {
  if (!have_numpy()) GTEST_SKIP() << "python3-numpy is not installed";
  write_npy(path("f.npy"), Tensor::from_vector(std::vector<float>{1, 2.5f, -3, 4, 5, 6}, {2, 3}));
  write_npy(path("b.npy"), sample({4}, DType::kBool));
  write_npy(path("s.npy"), Tensor::scalar(7, DType::kInt64));
  write_npz(path("z.npz"),
            {{"x", sample({2, 2}, DType::kFloat64)}, {"y", sample({0}, DType::kInt64)}});
  run_python(std::string(kPythonPrelude) +
             "a = np.load(d + 'f.npy')\n"
             "assert a.dtype == np.float32 and a.tolist() == [[1, 2.5, -3], [4, 5, 6]]\n"
             "assert np.load(d + 'b.npy').tolist() == [True, False, False, True]\n"
             "s = np.load(d + 's.npy'); assert s.shape == () and s == 7\n"
             "z = np.load(d + 'z.npz')\n"
             "assert sorted(z.files) == ['x', 'y'] and z['x'].shape == (2, 2)\n"
             "assert z['y'].shape == (0,) and z['y'].dtype == np.int64\n");
}

using NpyNumPy = DataFiles;

TEST_F(NpyNumPy, ReadsFilesWrittenByNumPy) {
  if (!have_numpy()) GTEST_SKIP() << "python3-numpy is not installed";
  run_python(std::string(kPythonPrelude) +
             "a = np.arange(12).reshape(3, 4) * 0.5 - 1\n"
             "np.save(d + 'f4.npy', a.astype('<f4'))\n"
             "np.save(d + 'f4be.npy', a.astype('>f4'))\n"
             "np.save(d + 'f8be.npy', a.astype('>f8'))\n"
             "np.save(d + 'i8be.npy', (a * 4).astype('>i8'))\n"
             "np.save(d + 'i4.npy', (a * 4).astype('<i4'))\n"
             "for t in ['>i4', '<i2', '>i2', '|i1']: np.save(d + t[1:] + t[0].replace('>', "
             "'be').replace('<', 'le').replace('|', '') + '.npy', (a * 4).astype(t))\n"
             "np.save(d + 'u2be.npy', np.array([0, 1, 65535], '>u2'))\n"
             "np.save(d + 'u4.npy', np.array([0, 1, 4294967295], '<u4'))\n"
             "np.save(d + 'u1.npy', np.arange(12, dtype=np.uint8).reshape(3, 4))\n"
             "np.save(d + 'b1.npy', (np.arange(12) % 3 == 0).reshape(3, 4))\n"
             "np.save(d + 'fortran.npy', np.asfortranarray(a))\n"
             "np.save(d + 'fortran3.npy', np.asfortranarray(np.arange(24.).reshape(2, 3, 4)))\n"
             "np.save(d + 'scalar.npy', np.float64(2.5))\n"
             "np.save(d + 'empty.npy', np.zeros((0, 3), np.float32))\n"
             "for v in [(2, 0), (3, 0)]:\n"
             "  with open(d + 'v%d.npy' % v[0], 'wb') as f:\n"
             "    np.lib.format.write_array(f, a, version=v)\n");
  std::vector<double> a;
  for (int i = 0; i < 12; ++i) a.push_back(i * 0.5 - 1);
  const Tensor expected = Tensor::from_vector(a, {3, 4});
  expect_same(read_npy(path("f4.npy")), cast(expected, DType::kFloat32));
  expect_same(read_npy(path("f4be.npy")), cast(expected, DType::kFloat32));
  expect_same(read_npy(path("f8be.npy")), expected);
  expect_same(read_npy(path("fortran.npy")), expected);
  expect_same(read_npy(path("v2.npy")), expected);
  expect_same(read_npy(path("v3.npy")), expected);
  std::vector<int64_t> ints;
  for (const double v : a) ints.push_back(static_cast<int64_t>(v * 4));
  expect_same(read_npy(path("i8be.npy")), Tensor::from_vector(ints, {3, 4}));
  expect_same(read_npy(path("i4.npy")), Tensor::from_vector(ints, {3, 4}));
  for (const char* name : {"i4be", "i2le", "i2be", "i1"}) {
    SCOPED_TRACE(name);
    expect_same(read_npy(path(std::string(name) + ".npy")), Tensor::from_vector(ints, {3, 4}));
  }
  EXPECT_EQ(read_npy(path("u2be.npy")).to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 65535}));
  EXPECT_EQ(read_npy(path("u4.npy")).to_vector<int64_t>(),
            (std::vector<int64_t>{0, 1, 4294967295}));
  expect_same(read_npy(path("u1.npy")),
              Tensor::arange(12, DType::kInt64).view_as({3, 4}, {4, 1}, 0));
  const Tensor b1 = read_npy(path("b1.npy"));
  EXPECT_EQ(b1.dtype(), DType::kBool);
  for (int64_t i = 0; i < 12; ++i) EXPECT_EQ(b1.data<bool>()[i], i % 3 == 0);
  expect_same(read_npy(path("fortran3.npy")),
              Tensor::arange(24, DType::kFloat64).view_as({2, 3, 4}, {12, 4, 1}, 0));
  expect_same(read_npy(path("scalar.npy")), Tensor::scalar(2.5, DType::kFloat64));
  expect_same(read_npy(path("empty.npy")), Tensor::empty({0, 3}));
}

TEST(NpyHeader, PythonLiteralVariants) {
  const Bytes four = {1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0};
  const Tensor expected = Tensor::from_vector(std::vector<int64_t>{1, 2, 3, 4}, {2, 2});
  // Keys in any order, double quotes, no trailing comma, extra spaces, Python 2's long suffix.
  expect_same(
      parse_npy(npy_file("{\"shape\": (2,2), \"fortran_order\":False,\"descr\":\"<i4\"}", four)),
      expected);
  expect_same(parse_npy(npy_file("{ 'descr' : '<i4' , 'shape' : ( 2L , 2L , ) , "
                                 "'fortran_order' : False , }",
                                 four)),
              expected);
  // Not padded at all: only the final '\n' is required.
  expect_same(parse_npy(npy_file("{'descr': '<i4', 'fortran_order': False, 'shape': (2, 2)}\n",
                                 four, 1, false)),
              expected);
  // Fortran order, 2-D: the file holds columns.
  const Tensor t =
      parse_npy(npy_file("{'descr': '<i4', 'fortran_order': True, 'shape': (2, 2)}", four));
  EXPECT_EQ(t.to_vector<int64_t>(), (std::vector<int64_t>{1, 3, 2, 4}));
  // Any non-zero byte is true.
  EXPECT_EQ(
      parse_npy(npy_file("{'descr': '|b1', 'fortran_order': False, 'shape': (3,)}", {0, 2, 255}))
          .to_vector<int64_t>(),
      (std::vector<int64_t>{0, 1, 1}));
}

TEST(NpyBadInput, EveryFieldIsChecked) {
  const Bytes four(16, 0);
  const auto refused = [&](const Bytes& bytes, const std::string& what) {
    SCOPED_TRACE(what);
    expect_refused([&] { parse_npy(bytes); }, "t.npy", what);
  };
  const auto dict = [](const std::string& descr, const std::string& shape,
                       const std::string& fortran = "False") {
    return "{'descr': '" + descr + "', 'fortran_order': " + fortran + ", 'shape': " + shape + ", }";
  };
  const Bytes good = npy_file(dict("<i4", "(2, 2)"), four);
  EXPECT_NO_THROW(parse_npy(good));

  refused({}, "too short");
  Bytes magic = good;
  magic[1] = 'n';
  refused(magic, "bad NPY magic");
  Bytes version = good;
  version[6] = 4;
  refused(version, "unsupported NPY version 4.0");
  version = good;
  version[7] = 1;
  refused(version, "unsupported NPY version 1.1");
  refused(npy_file(std::string(10001, ' '), {}, 2, false), "exceeds the limit of 10000 bytes");
  refused(Bytes(good.begin(), good.begin() + 40), "truncated: NPY header");
  refused(npy_file(dict("<i4", "(2, 2)") + " ", four, 1, false), "does not end in '\\n'");
  refused(npy_file("{'descr' '<i4', 'fortran_order': False, 'shape': (2, 2)}", four),
          "expected ':'");
  refused(npy_file("[1, 2]", four), "expected '{'");
  refused(npy_file("{'descr': '<i4', 'fortran_order': False}", four), "no 'shape' key");
  refused(npy_file(dict("<i4", "(2, 2)") + "x", four), "text after the closing");
  refused(npy_file("{'descr': '<i4', 'fortran_order': False, 'shape': (4,), 'x': 1}", four),
          "unknown key 'x'");
  refused(npy_file("{'descr': '<i4', 'descr': '<i4', 'fortran_order': False, 'shape': (4,)}", four),
          "duplicate key 'descr'");
  refused(npy_file(dict("<i4", "(4)"), four), "trailing comma");
  refused(npy_file(dict("<i4", "(2, 2)", "0"), four), "expected True or False");
  refused(npy_file("{'descr': '<i4, 'fortran_order': False, 'shape': (4,)}", four), "expected '}'");
  refused(npy_file("{'descr': [('a', '<i4')], 'fortran_order': False, 'shape': (4,)}", four),
          "structured NPY dtypes");
  refused(npy_file(dict("|O", "(2,)"), Bytes(16, 0)), "refused: loading it would need unpickling");
  refused(npy_file(dict("<c8", "(2,)"), four), "unsupported NPY dtype descr '<c8'");
  refused(npy_file(dict("<u8", "(2,)"), four), "unsupported NPY dtype descr '<u8'");
  refused(npy_file(dict("<i4", "(-4,)"), four), "negative dimension -4");
  refused(npy_file(dict("<i4", "(99999999999999999999,)"), four), "dimension overflows int64");
  refused(npy_file(dict("<i4", "(4294967296, 4294967296)"), four), "overflows the element count");
  refused(npy_file(dict("<f8", "(0, 4294967296, 4294967296)"), {}), "overflows the element count");
  refused(npy_file(dict("<i4", "(2, 3)"), four), "truncated: NPY shape (2, 3) of '<i4' needs 24");
  refused(npy_file(dict("<i4", "(3,)"), four), "4 trailing bytes after the NPY data");
}

TEST(NpyBadInput, TooManyDimensions) {
  std::string shape = "(";
  for (int i = 0; i < 65; ++i) shape += "1, ";
  expect_refused(
      [&] {
        parse_npy(npy_file("{'descr': '<i4', 'fortran_order': False, 'shape': " + shape + ")}",
                           Bytes(4, 0)));
      },
      "t.npy", "more than 64 dimensions");
}

// ---------------------------------------------------------------------------------------------
// NPZ

using NpyNpz = DataFiles;

std::map<std::string, Tensor> sample_archive() {
  return {{"a", sample({2, 3}, DType::kFloat32)},
          {"b", sample({4}, DType::kInt64)},
          {"c", sample({}, DType::kBool)},
          {"dir/d", sample({0, 2}, DType::kFloat64)}};
}

void expect_same_archive(const std::map<std::string, Tensor>& a,
                         const std::map<std::string, Tensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [key, t] : a) {
    SCOPED_TRACE(key);
    ASSERT_EQ(b.count(key), 1u);
    expect_same(t, b.at(key));
  }
}

TEST_F(NpyNpz, RoundTrip) {
  write_npz(path("a.npz"), sample_archive());
  expect_same_archive(read_npz(path("a.npz")), sample_archive());
  EXPECT_EQ(get("a.npz"), write_npz_bytes(sample_archive()));
  write_npz(path("empty.npz"), {});
  EXPECT_TRUE(read_npz(path("empty.npz")).empty());
  EXPECT_EQ(entries(), 2u);
}

TEST_F(NpyNpz, ReadsNumPySavezAndSavezCompressed) {
  if (!have_numpy()) GTEST_SKIP() << "python3-numpy is not installed";
  run_python(std::string(kPythonPrelude) +
             "a = np.arange(12).reshape(3, 4) * 0.5 - 1\n"
             "kw = dict(x=a, y=(a * 4).astype('>i4'), z=np.asfortranarray(a.astype(np.float32)),\n"
             "          s=np.bool_(True), e=np.zeros((0,)))\n"
             "np.savez(d + 's.npz', **kw)\n"
             "np.savez_compressed(d + 'c.npz', **kw)\n"
             "np.savez_compressed(d + 'big.npz', r=np.tile(a, (1000, 1)))\n");
  std::vector<double> a;
  for (int i = 0; i < 12; ++i) a.push_back(i * 0.5 - 1);
  std::vector<int64_t> ints;
  for (const double v : a) ints.push_back(static_cast<int64_t>(v * 4));
  const Tensor x = Tensor::from_vector(a, {3, 4});
  const std::map<std::string, Tensor> expected = {{"x", x},
                                                  {"y", Tensor::from_vector(ints, {3, 4})},
                                                  {"z", cast(x, DType::kFloat32)},
                                                  {"s", Tensor::scalar(1, DType::kBool)},
                                                  {"e", Tensor::empty({0}, DType::kFloat64)}};
  expect_same_archive(read_npz(path("s.npz")), expected);
  expect_same_archive(read_npz(path("c.npz")), expected);
  const Tensor big = read_npz(path("big.npz")).at("r");
  EXPECT_EQ(big.shape(), (Shape{3000, 4}));
  EXPECT_EQ(big.at({2999, 3}), 4.5);
}

// Offsets into a one-member archive written by write_npz_bytes.
Bytes one_member() { return write_npz_bytes({{"x", sample({3}, DType::kFloat32)}}); }
constexpr size_t kLocal = 30;
size_t central_at(const Bytes& z) { return z.size() - 22 - 46 - 5; }  // name "x.npy"

void set32(Bytes& b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + static_cast<size_t>(i)] = static_cast<uint8_t>(v >> (8 * i));
}

TEST_F(NpyNpz, BadArchivesAreRefused) {
  const Bytes z = one_member();
  const auto refused = [&](const std::string& name, const Bytes& bytes, const std::string& what) {
    SCOPED_TRACE(name);
    const std::string file = put(name, bytes);
    expect_refused([&] { read_npz(file); }, file, what);
  };
  EXPECT_NO_THROW(read_npz(put("good.npz", z)));
  refused("tiny.npz", Bytes(z.begin(), z.begin() + 10), "too short for a zip archive");
  refused("half.npz", Bytes(z.begin(), z.begin() + static_cast<long>(z.size() / 2)),
          "no end-of-central-directory record");
  refused("cut.npz", Bytes(z.begin(), z.end() - 1), "no end-of-central-directory record");
  Bytes crc = z;
  crc[kLocal + 5 + 130] ^= 1;  // a data byte of the member
  refused("crc.npz", crc, "CRC-32 mismatch");
  Bytes sizes = z;  // the member claims more bytes than the file has, in both headers
  set32(sizes, 18, 0x7fffffff);
  set32(sizes, 22, 0x7fffffff);
  set32(sizes, central_at(z) + 20, 0x7fffffff);
  set32(sizes, central_at(z) + 24, 0x7fffffff);
  refused("sizes.npz", sizes, "run past the end of the file");
  Bytes local = z;
  local[0] = 'X';
  refused("local.npz", local, "no local header signature");
  Bytes mismatch = z;
  set32(mismatch, 18, 1);
  refused("mismatch.npz", mismatch, "disagree with the central directory");
  Bytes zip64 = z;
  zip64[zip64.size() - 22 + 10] = 0xff;
  zip64[zip64.size() - 22 + 11] = 0xff;
  refused("zip64.npz", zip64, "ZIP64 archives");
  Bytes method = z;
  method[central_at(z) + 10] = 12;  // bzip2
  refused("method.npz", method, "compression method 12");
}

TEST_F(NpyNpz, BadMembersAreRefused) {
  // A member that is not .npy: rename "x.npy" to "x.npz" in both headers.
  Bytes z = one_member();
  z[kLocal + 4] = 'z';
  z[central_at(z) + 46 + 4] = 'z';
  const std::string renamed = put("renamed.npz", z);
  expect_refused([&] { read_npz(renamed); }, renamed + ": member 'x.npz'", "not a .npy file");
  // A bad NPY inside: the error names the archive and the member.
  z = one_member();
  z[kLocal + 5] = 0;  // NPY magic, with the CRC fixed up below
  const uint32_t crc = static_cast<uint32_t>(
      crc32(0, z.data() + kLocal + 5, static_cast<uInt>(central_at(z) - kLocal - 5)));
  set32(z, 14, crc);
  set32(z, central_at(z) + 16, crc);
  const std::string bad = put("bad.npz", z);
  expect_refused([&] { read_npz(bad); }, bad + ": member 'x.npy'", "bad NPY magic");
}

TEST_F(NpyNpz, BadDeflateIsRefused) {
  if (!have_numpy()) GTEST_SKIP() << "python3-numpy is not installed";
  run_python(std::string(kPythonPrelude) +
             "np.savez_compressed(d + 'c.npz', x=np.arange(1000.))\n");
  const Bytes z = get("c.npz");
  Bytes flipped = z;
  flipped[80] ^= 0xff;  // inside the deflate data
  const std::string bad = put("bad.npz", flipped);
  expect_refused([&] { read_npz(bad); }, bad + ": member 'x.npy'", "corrupt deflate data");
  const std::string cut = put("cut.npz", Bytes(z.begin(), z.end() - 30));
  expect_refused([&] { read_npz(cut); }, cut, "no end-of-central-directory record");
}

}  // namespace
}  // namespace neutrino::data
