#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "neutrino/core/error.h"
#include "neutrino/io/safetensors.h"

namespace neutrino::io {
namespace {

namespace fs = std::filesystem;

constexpr const char* kSource = "bad.safetensors";

std::vector<uint8_t> le64(uint64_t v) {
  std::vector<uint8_t> out;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
  return out;
}

// A file made of a header text and a data buffer exactly as given (no padding added).
std::vector<uint8_t> make_file(const std::string& header, const std::vector<uint8_t>& data = {}) {
  std::vector<uint8_t> out = le64(header.size());
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

// One header entry: "name":{"dtype":..,"shape":..,"data_offsets":..} with shape and offsets as
// raw JSON text, so bad values can be written in.
std::string entry(const std::string& name, const std::string& dtype, const std::string& shape,
                  const std::string& offsets) {
  return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape +
         ",\"data_offsets\":" + offsets + "}";
}

template <typename T>
std::vector<uint8_t> to_bytes(const std::vector<T>& values) {
  std::vector<uint8_t> out(values.size() * sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), values.data(), out.size());
  return out;
}

RawTensor make_tensor(std::string dtype, std::vector<int64_t> shape, std::vector<uint8_t> data) {
  return RawTensor{std::move(dtype), std::move(shape), std::move(data)};
}

SafetensorsFile parse(const std::vector<uint8_t>& bytes) {
  return read_safetensors_bytes(bytes.data(), bytes.size(), "test.safetensors");
}

void expect_same(const SafetensorsFile& a, const SafetensorsFile& b) {
  EXPECT_EQ(a.metadata, b.metadata);
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (const auto& [name, t] : a.tensors) {
    const auto it = b.tensors.find(name);
    ASSERT_NE(it, b.tensors.end()) << name;
    EXPECT_EQ(t.dtype, it->second.dtype) << name;
    EXPECT_EQ(t.shape, it->second.shape) << name;
    EXPECT_EQ(t.data, it->second.data) << name;
  }
}

// Expects `bytes` to be refused with an IOError that starts with the source name and contains
// every fragment.
void expect_refused(const std::vector<uint8_t>& bytes,
                    std::initializer_list<std::string_view> fragments) {
  try {
    read_safetensors_bytes(bytes.data(), bytes.size(), kSource);
    ADD_FAILURE() << "accepted a bad file";
  } catch (const IOError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind(std::string(kSource) + ": ", 0), 0u) << msg;
    for (const std::string_view fragment : fragments) {
      EXPECT_NE(msg.find(fragment), std::string::npos) << "'" << fragment << "' not in: " << msg;
    }
  }
}

std::vector<uint8_t> read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

SafetensorsFile sample_file() {
  SafetensorsFile file;
  file.tensors["weight"] = make_tensor("F32", {2, 3}, to_bytes<float>({1, -2, 3.5f, 0, 1e-30f, 7}));
  file.tensors["bias"] = make_tensor("F64", {3}, to_bytes<double>({0.1, -0.0, 1e300}));
  file.tensors["step"] = make_tensor("I64", {}, to_bytes<int64_t>({-42}));
  file.tensors["mask"] = make_tensor("BOOL", {5}, {1, 0, 1, 1, 0});  // odd size: misaligns the rest
  file.tensors["empty"] = make_tensor("U8", {0}, {});
  file.tensors["empty2d"] = make_tensor("BF16", {3, 0, 2}, {});
  file.tensors["half"] = make_tensor("F16", {1, 1, 2}, {0x00, 0x3c, 0x00, 0xc0});
  file.metadata = {{"format", "pt"}, {"note", "caf\xc3\xa9 \"quoted\"\n"}};
  return file;
}

TEST(SafetensorsRoundTrip, SeveralDtypesShapesAndMetadata) {
  const SafetensorsFile file = sample_file();
  expect_same(file, parse(write_safetensors_bytes(file)));
}

TEST(SafetensorsRoundTrip, EmptyFile) {
  const std::vector<uint8_t> bytes = write_safetensors_bytes(SafetensorsFile{});
  EXPECT_EQ(bytes, make_file("{}      "));
  const SafetensorsFile back = parse(bytes);
  EXPECT_TRUE(back.tensors.empty());
  EXPECT_TRUE(back.metadata.empty());
}

TEST(SafetensorsLayout, MatchesReferenceWriterBytes) {
  // What huggingface safetensors writes for {"a": [1, 2], "b": 3} (F32) with {"format": "pt"}:
  // 8-byte LE header length, compact JSON (metadata first, then tensors in data order, each as
  // dtype, shape, data_offsets), space padding to a multiple of 8, then the data.
  SafetensorsFile file;
  file.tensors["a"] = make_tensor("F32", {2}, to_bytes<float>({1, 2}));
  file.tensors["b"] = make_tensor("F32", {}, to_bytes<float>({3}));
  file.metadata["format"] = "pt";
  const std::string header =
      R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
      R"("b":{"dtype":"F32","shape":[],"data_offsets":[8,12]}})"
      "      ";
  std::vector<uint8_t> expected = {0x90, 0, 0, 0, 0, 0, 0, 0};
  expected.insert(expected.end(), header.begin(), header.end());
  const std::vector<uint8_t> data = {0, 0, 0x80, 0x3f, 0, 0, 0, 0x40, 0, 0, 0x40, 0x40};
  expected.insert(expected.end(), data.begin(), data.end());
  EXPECT_EQ(write_safetensors_bytes(file), expected);
}

TEST(SafetensorsLayout, DataStartIsAlignedTo8) {
  for (size_t len = 1; len <= 16; ++len) {
    SafetensorsFile file;
    file.tensors[std::string(len, 'n')] = make_tensor("U8", {1}, {7});
    const std::vector<uint8_t> bytes = write_safetensors_bytes(file);
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[i];
    EXPECT_EQ((8 + n) % 8, 0u) << len;
    EXPECT_EQ(bytes.size(), 8 + n + 1) << len;
    const std::string header(bytes.begin() + 8, bytes.begin() + 8 + static_cast<int64_t>(n));
    const size_t json_end = header.find_last_not_of(' ') + 1;
    EXPECT_EQ(header[json_end - 1], '}') << len;
    EXPECT_LT(n - json_end, 8u) << len;  // only the padding needed, all spaces
    expect_same(file, parse(bytes));
  }
}

TEST(SafetensorsLayout, ReadsGoldenFileFromPython) {
  const fs::path golden = fs::path(__FILE__).parent_path() / "golden/data/op_abs.safetensors";
  if (!fs::exists(golden)) GTEST_SKIP() << "no golden file at " << golden;
  const SafetensorsFile file = read_safetensors(golden.string());
  EXPECT_EQ(file.metadata.at("op"), "abs");
  ASSERT_EQ(file.tensors.count("in0"), 1u);
  EXPECT_EQ(file.tensors.at("in0").dtype, "F64");
}

TEST(SafetensorsRead, MisalignedDataLoadsBitExact) {
  // Header length 125: the data starts at byte 133, and "b" at data offset 3, so nothing is
  // aligned for its type.
  std::string header = "{" + entry("a", "U8", "[3]", "[0,3]") + "," +
                       entry("b", "F64", "[3]", "[3,27]") + "," +
                       entry("c", "I64", "[]", "[27,35]") + "}";
  while (header.size() % 8 != 5) header += ' ';
  const std::vector<uint64_t> b_bits = {0x3FD5555555555555, 0x8000000000000000, 0x7FF8DEADBEEF0001};
  const int64_t c_value = -1234567890123;
  std::vector<uint8_t> data = {1, 2, 3};
  const std::vector<uint8_t> b_bytes = to_bytes(b_bits);
  const std::vector<uint8_t> c_bytes = to_bytes<int64_t>({c_value});
  data.insert(data.end(), b_bytes.begin(), b_bytes.end());
  data.insert(data.end(), c_bytes.begin(), c_bytes.end());

  const SafetensorsFile file = parse(make_file(header, data));
  EXPECT_EQ(file.tensors.at("a").data, (std::vector<uint8_t>{1, 2, 3}));
  const RawTensor& b = file.tensors.at("b");
  ASSERT_EQ(b.data.size(), 24u);
  for (size_t i = 0; i < 3; ++i) {
    uint64_t bits;
    std::memcpy(&bits, b.data.data() + 8 * i, 8);
    EXPECT_EQ(bits, b_bits[i]) << i;
  }
  int64_t c;
  std::memcpy(&c, file.tensors.at("c").data.data(), 8);
  EXPECT_EQ(c, c_value);
  EXPECT_TRUE(file.tensors.at("c").shape.empty());
}

TEST(SafetensorsRead, EmptyAndRankZeroTensorsInAnyHeaderOrder) {
  const std::string header = "{" + entry("z", "I64", "[]", "[0,8]") + "," +
                             entry("e", "F32", "[0,3]", "[8,8]") + "," +
                             entry("a", "BF16", "[2,0]", "[8,8]") + "}   ";
  const SafetensorsFile file = parse(make_file(header, to_bytes<int64_t>({5})));
  EXPECT_EQ(file.tensors.at("z").data, to_bytes<int64_t>({5}));
  EXPECT_EQ(file.tensors.at("e").shape, (std::vector<int64_t>{0, 3}));
  EXPECT_TRUE(file.tensors.at("e").data.empty());
  EXPECT_TRUE(file.tensors.at("a").data.empty());
}

TEST(SafetensorsBadInput, TooShort) {
  for (size_t size = 0; size < 8; ++size) {
    expect_refused(std::vector<uint8_t>(size, 0), {"too short"});
  }
}

TEST(SafetensorsBadInput, HeaderLengthHuge) {
  expect_refused(le64(UINT64_MAX), {"header length 18446744073709551615", "limit"});
  std::vector<uint8_t> over = le64(100'000'001);
  over.resize(200, ' ');
  expect_refused(over, {"header length 100000001", "limit"});
}

TEST(SafetensorsBadInput, HeaderPastEndOfFile) {
  std::vector<uint8_t> bytes = make_file("{}      ");
  bytes.pop_back();
  expect_refused(bytes, {"truncated", "header length 8"});
}

TEST(SafetensorsBadInput, HeaderNotUtf8OrJsonOrObject) {
  expect_refused(make_file("{\"\xff\":1}"), {"UTF-8"});
  expect_refused(make_file("{\"\xc0\xaf\":1}"), {"UTF-8"});  // overlong '/'
  expect_refused(make_file("{\"a\":"), {"not valid JSON"});
  expect_refused(make_file("{} x"), {"not valid JSON"});
  expect_refused(make_file(" {}"), {"start with '{'"});
  expect_refused(make_file("[]"), {"start with '{'"});
  expect_refused(make_file(""), {"start with '{'"});
  expect_refused(make_file("{\"a\":" + std::string(100000, '[')), {"deeper"});
}

TEST(SafetensorsBadInput, DuplicateNamesAndKeys) {
  const std::string a = entry("a", "U8", "[1]", "[0,1]");
  expect_refused(make_file("{" + a + "," + a + "}", {1}), {"duplicate tensor name 'a'"});
  expect_refused(
      make_file(R"({"a":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}})", {1}),
      {"duplicate key 'dtype'"});
  expect_refused(make_file(R"({"__metadata__":{"k":"1","k":"2"}})"), {"duplicate key 'k'"});
}

TEST(SafetensorsBadInput, BadDtypeAndMetadata) {
  expect_refused(make_file("{" + entry("w", "F33", "[1]", "[0,4]") + "}", {0, 0, 0, 0}),
                 {"tensor 'w'", "unknown dtype 'F33'"});
  expect_refused(make_file(R"({"__metadata__":{"k":1}})"), {"__metadata__ 'k'", "string"});
  expect_refused(make_file(R"({"__metadata__":["k"]})"), {"__metadata__", "object"});
}

TEST(SafetensorsBadInput, BadEntryFields) {
  expect_refused(make_file(R"({"w":5})"), {"tensor 'w'", "must be an object"});
  expect_refused(make_file(R"({"w":{"dtype":"U8","shape":[0]}})"),
                 {"tensor 'w'", "missing 'data_offsets'"});
  expect_refused(make_file(R"({"w":{"dtype":"U8","shape":[0],"data_offsets":[0,0],"extra":1}})"),
                 {"tensor 'w'", "unknown key 'extra'"});
}

TEST(SafetensorsBadInput, BadShapes) {
  const auto with_shape = [](const std::string& shape) {
    return make_file("{" + entry("w", "U8", shape, "[0,2]") + "}", {1, 2});
  };
  expect_refused(with_shape("[-2]"), {"tensor 'w'", "shape[0]", "-2"});
  expect_refused(with_shape("[2.5]"), {"tensor 'w'", "shape[0]", "2.5"});
  expect_refused(with_shape("[2.0]"), {"tensor 'w'", "shape[0]"});
  expect_refused(with_shape("[1,\"2\"]"), {"tensor 'w'", "shape[1]", "\"2\""});
  expect_refused(with_shape("2"), {"tensor 'w'", "shape must be an array"});
  expect_refused(with_shape("[18446744073709551616]"), {"tensor 'w'", "shape[0]"});
}

TEST(SafetensorsBadInput, ShapeOverflowAndSizeMismatch) {
  expect_refused(make_file("{" + entry("w", "U8", "[4294967296,4294967296,16]", "[0,0]") + "}"),
                 {"tensor 'w'", "overflows"});
  expect_refused(make_file("{" + entry("w", "F64", "[4611686018427387904]", "[0,0]") + "}"),
                 {"tensor 'w'", "overflows"});
  expect_refused(make_file("{" + entry("w", "F32", "[3]", "[0,8]") + "}", std::vector<uint8_t>(8)),
                 {"tensor 'w'", "size mismatch", "needs 12 bytes"});
}

TEST(SafetensorsBadInput, BadOffsetValues) {
  const auto with_offsets = [](const std::string& offsets) {
    return make_file("{" + entry("w", "U8", "[2]", offsets) + "}", {1, 2});
  };
  expect_refused(with_offsets("[-1,1]"), {"tensor 'w'", "non-negative integers"});
  expect_refused(with_offsets("[0,2.5]"), {"tensor 'w'", "non-negative integers"});
  expect_refused(with_offsets("[\"0\",2]"), {"tensor 'w'", "non-negative integers"});
  expect_refused(with_offsets("[0]"), {"tensor 'w'", "[BEGIN, END]"});
  expect_refused(with_offsets("[0,1,2]"), {"tensor 'w'", "[BEGIN, END]"});
  expect_refused(with_offsets("{}"), {"tensor 'w'", "[BEGIN, END]"});
  expect_refused(with_offsets("[4,2]"), {"tensor 'w'", "END 2 is before BEGIN 4"});
}

TEST(SafetensorsBadInput, OverlapGapAndNonZeroStart) {
  const std::vector<uint8_t> data(12);
  expect_refused(make_file("{" + entry("a", "U8", "[8]", "[0,8]") + "," +
                               entry("b", "U8", "[8]", "[4,12]") + "}",
                           data),
                 {"tensor 'b'", "overlap tensor 'a'"});
  expect_refused(make_file("{" + entry("a", "U8", "[4]", "[0,4]") + "," +
                               entry("b", "U8", "[4]", "[8,12]") + "}",
                           data),
                 {"tensor 'b'", "gap of 4 bytes"});
  expect_refused(make_file("{" + entry("a", "U8", "[8]", "[4,12]") + "}", data),
                 {"tensor 'a'", "must start at 0"});
  // Two entries sharing the same bytes.
  expect_refused(make_file("{" + entry("a", "U8", "[12]", "[0,12]") + "," +
                               entry("b", "U8", "[12]", "[0,12]") + "}",
                           data),
                 {"tensor 'b'", "overlap tensor 'a'"});
}

TEST(SafetensorsBadInput, DataShorterThanOffsetsOrTrailingBytes) {
  const std::string header =
      "{" + entry("a", "U8", "[4]", "[0,4]") + "," + entry("b", "U8", "[12]", "[4,16]") + "}";
  expect_refused(make_file(header, std::vector<uint8_t>(8)), {"truncated", "tensor 'b'"});
  expect_refused(make_file(header, std::vector<uint8_t>(20)), {"4 trailing bytes"});
  expect_refused(make_file("{}", {0}), {"1 trailing bytes"});
}

TEST(SafetensorsWrite, RejectsInvalidTensors) {
  const auto write_one = [](const std::string& name, RawTensor t) {
    SafetensorsFile file;
    file.tensors[name] = std::move(t);
    return write_safetensors_bytes(file);
  };
  EXPECT_THROW(write_one("w", make_tensor("F33", {1}, {0, 0, 0, 0})), ValueError);
  EXPECT_THROW(write_one("w", make_tensor("F32", {-1}, {})), ValueError);
  EXPECT_THROW(write_one("w", make_tensor("F32", {2}, {0, 0, 0, 0})), ValueError);
  EXPECT_THROW(write_one("__metadata__", make_tensor("U8", {1}, {0})), ValueError);
  EXPECT_THROW(write_one("bad\xff", make_tensor("U8", {1}, {0})), ValueError);
  SafetensorsFile file;
  file.metadata["k"] = "\xc3";
  EXPECT_THROW(write_safetensors_bytes(file), ValueError);
}

TEST(SafetensorsDtype, Sizes) {
  EXPECT_EQ(dtype_size("BOOL"), 1u);
  EXPECT_EQ(dtype_size("U8"), 1u);
  EXPECT_EQ(dtype_size("BF16"), 2u);
  EXPECT_EQ(dtype_size("F32"), 4u);
  EXPECT_EQ(dtype_size("I64"), 8u);
  EXPECT_EQ(dtype_size("F64"), 8u);
  EXPECT_THROW(dtype_size("f32"), ValueError);
  EXPECT_THROW(dtype_size(""), ValueError);
}

// Each test gets its own scratch directory.
class SafetensorsDisk : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("neutrino_st_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::permissions(dir_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(dir_, ec);
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  std::string temp_path(const std::string& name) const {
    return path(name) + ".tmp." + std::to_string(::getpid());
  }
  size_t entries_in_dir() const {
    return static_cast<size_t>(std::distance(fs::directory_iterator(dir_), {}));
  }
  // Saves a small file at `name` and returns its bytes, to check later that it survived.
  std::vector<uint8_t> save_old(const std::string& name) {
    SafetensorsFile old;
    old.tensors["old"] = make_tensor("U8", {2}, {4, 2});
    write_safetensors(path(name), old);
    return read_all(path(name));
  }

  fs::path dir_;
};

TEST_F(SafetensorsDisk, WriteThenReadAndOverwrite) {
  const std::vector<uint8_t> old_bytes = save_old("m.safetensors");
  EXPECT_FALSE(old_bytes.empty());
  const SafetensorsFile file = sample_file();
  write_safetensors(path("m.safetensors"), file);
  expect_same(file, read_safetensors(path("m.safetensors")));
  EXPECT_EQ(read_all(path("m.safetensors")), write_safetensors_bytes(file));
  EXPECT_EQ(entries_in_dir(), 1u);  // no temporary file left behind
}

TEST_F(SafetensorsDisk, ReadErrorsNameThePath) {
  const std::string missing = path("missing.safetensors");
  try {
    read_safetensors(missing);
    ADD_FAILURE() << "read a missing file";
  } catch (const IOError& e) {
    EXPECT_NE(std::string(e.what()).find(missing + ": cannot open: No such file"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(read_safetensors(dir_.string()), IOError);  // a directory

  const std::vector<uint8_t> bytes = write_safetensors_bytes(sample_file());
  std::ofstream(path("cut.safetensors"), std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size() - 1));
  try {
    read_safetensors(path("cut.safetensors"));
    ADD_FAILURE() << "read a truncated file";
  } catch (const IOError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind(path("cut.safetensors") + ": truncated", 0), 0u) << msg;
  }
}

TEST_F(SafetensorsDisk, WriteToMissingDirectoryThrows) {
  const std::string target = path("no/such/dir/m.safetensors");
  try {
    write_safetensors(target, sample_file());
    ADD_FAILURE() << "wrote into a missing directory";
  } catch (const IOError& e) {
    EXPECT_NE(std::string(e.what()).find(target), std::string::npos) << e.what();
  }
  EXPECT_EQ(entries_in_dir(), 0u);
}

TEST_F(SafetensorsDisk, WriteToReadOnlyDirectoryKeepsOldFile) {
  const std::vector<uint8_t> old_bytes = save_old("m.safetensors");
  fs::permissions(dir_, fs::perms::owner_read | fs::perms::owner_exec, fs::perm_options::replace);
  if (std::ofstream(path("probe")).is_open()) {
    GTEST_SKIP() << "directory permissions are not enforced (running as root?)";
  }
  EXPECT_THROW(write_safetensors(path("m.safetensors"), sample_file()), IOError);
  EXPECT_EQ(read_all(path("m.safetensors")), old_bytes);
  EXPECT_EQ(entries_in_dir(), 1u);
}

TEST_F(SafetensorsDisk, DiskFullKeepsOldFileAndRemovesTemp) {
  // A file-size limit makes write() fail part way (EFBIG), as a full disk would, even for root.
  const std::vector<uint8_t> old_bytes = save_old("m.safetensors");
  SafetensorsFile big;
  big.tensors["big"] = make_tensor("U8", {1 << 16}, std::vector<uint8_t>(1 << 16, 9));
  rlimit old_limit{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  rlimit small = old_limit;
  small.rlim_cur = 4096;
  const auto old_handler = ::signal(SIGXFSZ, SIG_IGN);
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  std::string error;
  try {
    write_safetensors(path("m.safetensors"), big);
  } catch (const IOError& e) {
    error = e.what();
  }
  ::setrlimit(RLIMIT_FSIZE, &old_limit);
  ::signal(SIGXFSZ, old_handler);
  EXPECT_EQ(error.rfind(path("m.safetensors") + ": cannot write", 0), 0u) << error;
  EXPECT_EQ(read_all(path("m.safetensors")), old_bytes);
  EXPECT_EQ(entries_in_dir(), 1u);
}

TEST_F(SafetensorsDisk, FailedRenameRemovesTemp) {
  // A non-empty directory at the final name makes the rename fail after the data is written.
  fs::create_directories(dir_ / "m.safetensors" / "keep");
  EXPECT_THROW(write_safetensors(path("m.safetensors"), sample_file()), IOError);
  EXPECT_TRUE(fs::is_directory(dir_ / "m.safetensors" / "keep"));
  EXPECT_FALSE(fs::exists(temp_path("m.safetensors")));
  EXPECT_EQ(entries_in_dir(), 1u);
}

TEST_F(SafetensorsDisk, SomethingPlantedAtATempNameIsLeftAlone) {
  // Temporary names are unique per save (pid and a counter) and created with O_EXCL, so a file
  // or folder already sitting at "<path>.tmp.<pid>" is neither written through nor removed.
  save_old("m.safetensors");
  fs::create_directory(temp_path("m.safetensors"));
  EXPECT_NO_THROW(write_safetensors(path("m.safetensors"), sample_file()));
  EXPECT_EQ(read_safetensors(path("m.safetensors")).tensors.size(), sample_file().tensors.size());
  EXPECT_TRUE(fs::is_directory(temp_path("m.safetensors")));  // not ours to remove
}

TEST_F(SafetensorsDisk, InvalidTensorWritesNothing) {
  SafetensorsFile file;
  file.tensors["w"] = make_tensor("F32", {2}, {0});
  EXPECT_THROW(write_safetensors(path("m.safetensors"), file), ValueError);
  EXPECT_EQ(entries_in_dir(), 0u);
}

}  // namespace
}  // namespace neutrino::io
