// Hostile inputs: files and arguments made to mislead or hurt the readers and the CLI. Each must be
// refused with one line naming the file (or the option), or be read exactly as documented; never
// a crash, a hang, a huge allocation or a silent guess. The bad files are built here.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <zlib.h>
#include <unistd.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <string>
#include <tuple>
#include <vector>

#include "neutrino/core/random.h"
#include "neutrino/data/csv.h"
#include "neutrino/data/image.h"
#include "neutrino/data/npy.h"
#include "neutrino/nn/layers.h"
#include "neutrino/train/model_file.h"
#include "neutrino/train/sequential.h"
#include "test_util.h"

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wall"
#pragma GCC diagnostic ignored "-Wextra"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wsign-conversion"
#pragma GCC diagnostic ignored "-Wcast-align"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wpedantic"
#endif
#include <stb/stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace fs = std::filesystem;
using namespace neutrino;
using neutrino::testing::CliResult;
using neutrino::testing::expect_error;
using neutrino::testing::run_cli;
using neutrino::testing::run_shell;

namespace {

fs::path temp_dir(const std::string& name) {
  fs::path dir =
      fs::temp_directory_path() / ("neutrino_hostile_" + name + "_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void write(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// A small untrained model file taking samples of `input_shape` and giving `classes` scores.
std::string save_test_model(const fs::path& dir, const Shape& input_shape, int64_t classes = 3) {
  manual_seed(7);
  train::Sequential model({nn::Flatten({.input_shape = input_shape}), nn::Dense(classes)});
  const std::string path = (dir / "model.safetensors").string();
  train::save_model(path, model,
                    {.extra = {{"compile", R"({"loss": "sparse_categorical_crossentropy", "metrics": []})"}}});
  return path;
}

size_t count_of(const std::string& text, const std::string& part) {
  size_t n = 0;
  for (size_t pos = text.find(part); pos != std::string::npos; pos = text.find(part, pos + 1)) ++n;
  return n;
}

}  // namespace

// --- 1. A numeric CSV without a header: every row is data -----------------------------------

TEST(HostileCsv, DetectHeaderReadsAllNumericFirstRowAsData) {
  const data::CsvOptions detect{.detect_header = true};
  data::CsvData d = data::read_csv_text("0,1\n1,1\n1,0\n", "x.csv", detect);
  EXPECT_EQ(d.features.size(0), 3);
  EXPECT_TRUE(d.feature_names.empty());
  d = data::read_csv_text("a,b\n0,1\n1,1\n", "x.csv", detect);
  EXPECT_EQ(d.features.size(0), 2);
  EXPECT_EQ(d.feature_names, (std::vector<std::string>{"a", "b"}));
  // One name among numbers still makes a header; quoted numbers are numbers, as in data rows.
  EXPECT_EQ(data::read_csv_text("1,b\n0,1\n", "x.csv", detect).features.size(0), 1);
  EXPECT_EQ(data::read_csv_text("\"1\",\"2\"\n0,1\n", "x.csv", detect).features.size(0), 2);
  // detect_header follows skip_rows, and blank lines are skipped first.
  const data::CsvOptions skip{.skip_rows = 1, .detect_header = true};
  EXPECT_EQ(data::read_csv_text("count\n\n5,6\n7,8\n", "x.csv", skip).features.size(0), 2);
}

TEST(HostileCli, PredictOnHeaderlessCsvPrintsEveryRow) {
  const fs::path dir = temp_dir("csv_header");
  const std::string model = save_test_model(dir, {2});
  const std::string csv = (dir / "x.csv").string();
  write(csv, "0,1\n1,1\n1,0\n");
  CliResult r = run_cli("predict " + model + " --input " + csv);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(count_of(r.output, "\n"), 3u) << r.output;
  EXPECT_NE(r.output.find("2: "), std::string::npos) << r.output;

  // Each printed row is the model's output for that row of the file.
  ASSERT_EQ(run_cli("predict " + model + " --input " + csv + " --output " +
                    (dir / "out.npy").string()).code, 0);
  const Tensor out = data::read_npy((dir / "out.npy").string());
  const Tensor expected = train::load_model(model).model.predict(
      Tensor::from_vector(std::vector<float>{0, 1, 1, 1, 1, 0}, {3, 2}));
  ASSERT_EQ(out.shape(), expected.shape());
  EXPECT_EQ(out.to_vector<float>(), expected.to_vector<float>());

  r = run_cli("predict " + model + " --input " + csv + " --header");  // forced: 2 data rows
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(count_of(r.output, "\n"), 2u) << r.output;
  write(csv, "x1,x2\n0,1\n");
  r = run_cli("predict " + model + " --input " + csv);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(count_of(r.output, "\n"), 1u) << r.output;
  r = run_cli("predict " + model + " --input " + csv + " --no-header");  // "x1" is no number
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("x.csv:1"), std::string::npos) << r.output;
  EXPECT_EQ(run_cli("predict " + model + " --input " + csv + " --header --no-header").code, 2);
}

// --- 2 and 3. Images: declared sizes checked before decoding, truncation, exact shapes ---------

namespace {

void put_be32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((v >> shift) & 0xff);
}
void put_le(std::string& out, uint32_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}

void png_chunk(std::string& out, const char* type, const std::string& body) {
  put_be32(out, static_cast<uint32_t>(body.size()));
  const std::string typed = std::string(type, 4) + body;
  out += typed;
  put_be32(out, static_cast<uint32_t>(
                    crc32(0, reinterpret_cast<const Bytef*>(typed.data()), static_cast<uInt>(typed.size()))));
}

std::string zlib_compress(const std::string& raw) {
  uLongf size = compressBound(static_cast<uLong>(raw.size()));
  std::string out(size, '\0');
  compress2(reinterpret_cast<Bytef*>(out.data()), &size, reinterpret_cast<const Bytef*>(raw.data()),
            static_cast<uLong>(raw.size()), 9);
  out.resize(size);
  return out;
}

// A PNG whose IHDR declares width x height (depth bits, PNG color type) and whose IDAT holds
// `raw` (filtered scanlines), compressed.
std::string make_png_raw(uint32_t width, uint32_t height, int depth, int color, const std::string& raw) {
  std::string out("\x89PNG\r\n\x1a\n", 8), ihdr;
  put_be32(ihdr, width);
  put_be32(ihdr, height);
  ihdr += static_cast<char>(depth);
  ihdr += static_cast<char>(color);
  ihdr += std::string(3, '\0');
  png_chunk(out, "IHDR", ihdr);
  png_chunk(out, "IDAT", zlib_compress(raw));
  png_chunk(out, "IEND", "");
  return out;
}

// A complete image: every sample `value` (16-bit samples big-endian, as PNG stores them).
std::string make_png(uint32_t width, uint32_t height, int channels, int depth = 8, int value = 100) {
  static constexpr int kColor[] = {0, 0, 4, 2, 6};
  const size_t row_bytes = static_cast<size_t>(width) * channels * depth / 8;
  std::string row(row_bytes, '\0');
  for (size_t i = 0; i < row_bytes; ++i) {
    row[i] = static_cast<char>(depth == 16 ? (i % 2 == 0 ? value >> 8 : value & 0xff) : value);
  }
  std::string raw;
  for (uint32_t y = 0; y < height; ++y) raw += '\0' + row;
  return make_png_raw(width, height, depth, kColor[channels], raw);
}

// A 24-bit BMP header (54 bytes) declaring width x height, followed by `pixel_bytes` bytes.
std::string make_bmp(int32_t width, int32_t height, size_t pixel_bytes) {
  std::string out = "BM";
  put_le(out, static_cast<uint32_t>(54 + pixel_bytes), 4);
  put_le(out, 0, 4);
  put_le(out, 54, 4);
  put_le(out, 40, 4);
  put_le(out, static_cast<uint32_t>(width), 4);
  put_le(out, static_cast<uint32_t>(height), 4);
  put_le(out, 1, 2);
  put_le(out, 24, 2);
  out += std::string(24, '\0');
  return out + std::string(pixel_bytes, '\x40');
}

std::string make_jpeg(int width, int height, int channels) {
  std::vector<unsigned char> pixels(static_cast<size_t>(width * height * channels));
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<unsigned char>(i * 7);
  std::string out;
  stbi_write_jpg_to_func(
      [](void* context, void* data, int size) {
        static_cast<std::string*>(context)->append(static_cast<const char*>(data), static_cast<size_t>(size));
      },
      &out, width, height, channels, pixels.data(), 90);
  return out;
}

data::Image decode(const std::string& bytes, const data::ImageRequest& request = {}) {
  return data::decode_image(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "x.img",
                            request);
}

}  // namespace

TEST(HostileImage, DeclaredSizeIsCheckedBeforeDecoding) {
  // 18000 x 18000 declared; the data never gets inflated, so a few rows are enough.
  const std::string bomb = make_png_raw(18000, 18000, 8, 0, std::string(3 * 18001, '\0'));
  expect_error<IOError>([&] { decode(bomb); }, {"x.img", "18000x18000", "limit"});
  expect_error<IOError>([&] { decode(make_bmp(30000, 30000, 0)); }, {"x.img", "30000x30000", "limit"});
  // Within the limit, but not the size asked for.
  expect_error<IOError>([&] { decode(make_png(56, 14, 1), {.height = 28, .width = 28}); },
                        {"x.img", "56x14", "28x28"});
  // A declared 28x28 image whose data inflates to 10 MB: refused while counting.
  const std::string zeros(10 << 20, '\0');
  expect_error<IOError>([&] { decode(make_png_raw(28, 28, 8, 0, zeros)); },
                        {"x.img", "inflates to more than"});
}

TEST(HostileImage, TruncatedFilesAreRefused) {
  const data::Image ok = decode(make_bmp(28, 28, 28 * 84));
  EXPECT_EQ(ok.pixels.shape(), (Shape{1, 3, 28, 28}));
  expect_error<IOError>([&] { decode(make_bmp(28, 28, 1000)); }, {"x.img", "truncated BMP", "2406"});
  expect_error<IOError>([&] { decode(make_bmp(-28, -28, 1000)); }, {"x.img", "truncated BMP"});
  std::string png = make_png(28, 28, 1);
  EXPECT_EQ(decode(png).pixels.shape(), (Shape{1, 1, 28, 28}));
  expect_error<IOError>([&] { decode(png.substr(0, png.size() - 12)); }, {"x.img", "no IEND"});
  expect_error<IOError>([&] { decode(png.substr(0, png.size() / 2)); }, {"x.img", "truncated PNG"});
  // IDAT cut short but chunks intact: the zlib stream does not end.
  const std::string raw(29 * 28, '\x10');
  std::string cut("\x89PNG\r\n\x1a\n", 8), ihdr;
  put_be32(ihdr, 28);
  put_be32(ihdr, 28);
  ihdr += std::string("\x08\0\0\0\0", 5);
  png_chunk(cut, "IHDR", ihdr);
  const std::string z = zlib_compress(raw);
  png_chunk(cut, "IDAT", z.substr(0, z.size() / 2));
  png_chunk(cut, "IEND", "");
  expect_error<IOError>([&] { decode(cut); }, {"x.img", "PNG image data"});
  const std::string jpeg = make_jpeg(28, 28, 3);
  EXPECT_EQ(decode(jpeg).pixels.shape(), (Shape{1, 3, 28, 28}));
  expect_error<IOError>([&] { decode(jpeg.substr(0, jpeg.size() - 40)); }, {"x.img", "truncated JPEG"});
  // Found by fuzz_image: Huffman counts summing past 256 made stb write past its tables; libjpeg
  // refuses the table.
  std::string dht = jpeg;
  const size_t at = dht.find("\xFF\xC4");
  ASSERT_NE(at, std::string::npos);
  dht[at + 5 + 14] = '\xFF';
  dht[at + 5 + 15] = '\xFF';
  expect_error<IOError>([&] { decode(dht); }, {"x.img", "corrupt JPEG", "Huffman table"});
  expect_error<IOError>([&] { decode("GIF89a......"); }, {"x.img", "not a PNG, JPEG or BMP"});
}

TEST(HostileImage, ChannelsAndDepthAreExactOrReported) {
  expect_error<IOError>([&] { decode(make_png(28, 28, 2), {.channels = 1}); },
                        {"x.img", "2 channels (grey+alpha)", "1 (grey)"});
  data::Image rgb = decode(make_png(28, 28, 3), {.channels = 1});
  EXPECT_EQ(rgb.pixels.shape(), (Shape{1, 1, 28, 28}));
  ASSERT_EQ(rgb.notes.size(), 1u);
  EXPECT_NE(rgb.notes[0].find("RGB converted to grey"), std::string::npos);
  data::Image deep = decode(make_png(28, 28, 1, 16, 0x1234));
  ASSERT_EQ(deep.notes.size(), 1u);
  EXPECT_NE(deep.notes[0].find("16-bit"), std::string::npos);
  EXPECT_EQ(deep.pixels.to_vector<float>()[0], 0x12);
  EXPECT_TRUE(decode(make_png(28, 28, 1)).notes.empty());
}

TEST(HostileCli, PredictRefusesImagesThatDoNotFitTheModel) {
  const fs::path dir = temp_dir("images");
  const std::string model = save_test_model(dir, {1, 28, 28});
  auto predict = [&](const std::string& name, const std::string& bytes) {
    write(dir / name, bytes);
    return run_cli("predict " + model + " --input " + (dir / name).string());
  };
  CliResult r = predict("ok.png", make_png(28, 28, 1));
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(r.output.find("note"), std::string::npos) << r.output;
  for (const auto& [name, bytes, expected] :
       {std::tuple<std::string, std::string, std::string>{"wide.png", make_png(56, 14, 1), "56x14"},
        {"alpha.png", make_png(14, 28, 2), "14x28"},
        {"alpha28.png", make_png(28, 28, 2), "grey+alpha"},
        {"bomb.png", make_png_raw(18000, 18000, 8, 0, std::string(100, '\0')), "18000x18000"},
        {"huge.bmp", make_bmp(30000, 30000, 0), "30000x30000"},
        {"cut.bmp", make_bmp(28, 28, 100), "truncated BMP"}}) {
    r = predict(name, bytes);
    EXPECT_EQ(r.code, 1) << name << ": " << r.output;
    EXPECT_NE(r.output.find(name), std::string::npos) << r.output;
    EXPECT_NE(r.output.find(expected), std::string::npos) << r.output;
    EXPECT_EQ(count_of(r.output, "\n"), 1u) << r.output;
  }
  r = predict("deep.png", make_png(28, 28, 1, 16));
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("note: " + (dir / "deep.png").string() + ": 16-bit"), std::string::npos)
      << r.output;
  r = predict("rgb.bmp", make_bmp(28, 28, 28 * 84));
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("RGB converted to grey"), std::string::npos) << r.output;
}

// --- 7. NPY: the reader and the writer share one shape bound -----------------------------------

TEST(HostileNpy, ReaderAndWriterAgreeOnTheShapeBound) {
  // From a fuzz_npy run: an empty int8 array that used to load, though the int64 NPY written for
  // it was refused. Now both refuse it, with the same bound.
  std::ifstream in(std::string(NEUTRINO_SOURCE_DIR) + "/fuzz/corpus/fuzz_npy/empty_i1_bound.npy",
                   std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), {});
  ASSERT_FALSE(bytes.empty());
  expect_error<IOError>(
      [&] { data::read_npy_bytes(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "f.npy"); },
      {"f.npy", "overflows the element count"});
  const Shape big{22, 52, 2223, 52, 0, 23052, 2, 2, 92, 52, 22};
  expect_error<ValueError>([&] { data::write_npy_bytes(Tensor::empty(big, DType::kBool)); },
                           {"overflows the element count"});
  // Just inside the bound: empty, and 8 * (2^60 - 1) < 2^63; written and read back.
  const Shape edge{0, (int64_t{1} << 30) - 1, int64_t{1} << 30};
  const std::vector<uint8_t> out = data::write_npy_bytes(Tensor::empty(edge, DType::kBool));
  EXPECT_EQ(data::read_npy_bytes(out.data(), out.size(), "edge.npy").shape(), edge);
}

// --- 4. FIFOs and other non-regular files are refused, never opened for reading ---------------

namespace {
// run_cli under a time limit, so a reader that blocks fails the test instead of hanging it.
CliResult run_cli_limited(const std::string& args, int seconds = 20) {
  return run_shell("timeout " + std::to_string(seconds) + " " + std::string(NEUTRINO_BIN_DIR) +
                   "/neutrino " + args);
}
}  // namespace

TEST(HostileFiles, FifosAreRefusedWithoutBlocking) {
  const fs::path dir = temp_dir("fifo");
  const std::string model = save_test_model(dir, {2});
  const std::string fifo = (dir / "pipe").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  for (const char* name : {"pipe.safetensors", "pipe.yaml", "pipe.csv", "pipe.npy", "pipe.png"}) {
    ASSERT_EQ(::mkfifo((dir / name).c_str(), 0600), 0);
  }
  const std::string d = dir.string() + "/";
  for (const std::string& args :
       {"summary " + d + "pipe.safetensors", "predict " + d + "pipe.safetensors --input x.csv",
        "summary " + d + "pipe.yaml", "train " + d + "pipe.yaml",
        "predict " + model + " --input " + d + "pipe.csv",
        "predict " + model + " --input " + d + "pipe.npy",
        "predict " + model + " --input " + d + "pipe.png",
        "eval " + model + " --data " + d + "pipe.csv", "eval " + model + " --data " + fifo}) {
    const CliResult r = run_cli_limited(args);
    EXPECT_EQ(r.code, 1) << args << ": " << r.output;
    EXPECT_NE(r.output.find("not a regular file (a FIFO"), std::string::npos) << args << ": " << r.output;
  }
  expect_error<IOError>([&] { data::read_csv(fifo); }, {fifo, "FIFO"});
  expect_error<IOError>([&] { data::read_npy(fifo); }, {fifo, "FIFO"});
  expect_error<IOError>([&] { data::read_csv(dir.string()); }, {"a directory"});
}

// --- 5. Numeric options say what they need ------------------------------------------------------

TEST(HostileCli, NumericOptionsNameTheirBound) {
  const fs::path dir = temp_dir("options");
  const std::string model = save_test_model(dir, {2});
  write(dir / "x.csv", "0,1\n");
  const std::string cfg = std::string(NEUTRINO_SOURCE_DIR) + "/configs/xor.yaml";
  const std::string predict = "predict " + model + " --input " + (dir / "x.csv").string();
  for (const auto& [args, expected] : std::vector<std::pair<std::string, std::string>>{
           {predict + " --top-k 0", "--top-k must be at least 1, got 0"},
           {predict + " --top-k -5", "--top-k must be at least 1, got -5"},
           {predict + " --batch-size 0", "--batch-size must be at least 1, got 0"},
           {"eval " + model + " --data x.csv --batch-size 0", "--batch-size must be at least 1"},
           {"train " + cfg + " --epochs -1", "--epochs must be at least 0, got -1"},
           {"train " + cfg + " --verbose 3", "--verbose must be from 0 to 2, got 3"},
           {"train " + cfg + " --profile-steps 0", "--profile-steps must be at least 1"},
           {predict + " --top-k abc", "--top-k"}}) {
    const CliResult r = run_cli(args);
    EXPECT_EQ(r.code, 2) << args << ": " << r.output;
    EXPECT_NE(r.output.find(expected), std::string::npos) << args << ": " << r.output;
    EXPECT_EQ(r.output.find("1797693"), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("0.000000"), std::string::npos) << r.output;
  }
  const CliResult r = run_cli(predict + " --top-k 2 --batch-size 1");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(count_of(r.output, "("), 2u) << r.output;  // two classes with their scores
}

// --- 6. Leftovers: stale temporary files, ulimit -f, an unwritable -o --------------------------

namespace {
pid_t dead_pid() {
  const pid_t child = fork();
  if (child == 0) _exit(0);
  waitpid(child, nullptr, 0);
  return child;
}
}  // namespace

TEST(HostileFiles, StaleTemporaryFilesOfDeadWritersAreRemoved) {
  const fs::path dir = temp_dir("stale");
  const std::string target = (dir / "m.npy").string();
  const std::string dead = target + ".tmp." + std::to_string(dead_pid()) + ".0";
  const std::string alive = target + ".tmp." + std::to_string(getppid()) + ".3";
  const std::string other = (dir / "n.npy").string() + ".tmp." + std::to_string(dead_pid()) + ".0";
  const std::string odd = target + ".tmp.12x.0";
  const std::string probe = target + ".tmp." + std::to_string(dead_pid()) + ".1.probe";
  for (const std::string& path : {dead, alive, other, odd, probe}) write(path, "partial");
  data::write_npy(target, Tensor::ones({2}));
  EXPECT_FALSE(fs::exists(dead));
  EXPECT_FALSE(fs::exists(probe));
  EXPECT_TRUE(fs::exists(alive));
  EXPECT_TRUE(fs::exists(other));
  EXPECT_TRUE(fs::exists(odd));
  EXPECT_EQ(data::read_npy(target).numel(), 2);
}

TEST(HostileCli, FileSizeLimitIsReportedAndLeavesNoTemporaryFile) {
  const fs::path dir = temp_dir("ulimit");
  const std::string model = save_test_model(dir, {2});
  std::string rows;
  for (int i = 0; i < 400; ++i) rows += "0,1\n";
  write(dir / "x.csv", rows);
  const std::string out = (dir / "out.npy").string();
  // dash counts ulimit -f in 512-byte blocks: 2 blocks, and 400 x 3 floats need 4800 bytes.
  const CliResult r = run_shell("ulimit -f 2; " + std::string(NEUTRINO_BIN_DIR) + "/neutrino predict " +
                                model + " --input " + (dir / "x.csv").string() + " --output " + out);
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find(out), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("File too large"), std::string::npos) << r.output;
  EXPECT_EQ(count_of(r.output, "\n"), 1u) << r.output;
  for (const auto& entry : fs::directory_iterator(dir)) {
    EXPECT_EQ(entry.path().string().find(".tmp."), std::string::npos) << entry.path();
  }
  EXPECT_FALSE(fs::exists(out));
}

TEST(HostileCli, UnwritableOutputIsFoundBeforeTraining) {
  const fs::path dir = temp_dir("unwritable");
  const std::string cfg = std::string(NEUTRINO_SOURCE_DIR) + "/configs/xor.yaml";
  const std::string missing = (dir / "no_such_dir" / "m.safetensors").string();
  CliResult r = run_cli("train " + cfg + " --epochs 100000 --verbose 2 -o " + missing);
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find(missing + ": cannot write there"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("poch"), std::string::npos) << r.output;  // no epoch ran
  r = run_cli("train " + cfg + " --epochs 100000 -o " + (dir / "m.safetensors").string() +
              " --checkpoint " + (dir / "no_such_dir" / "c.safetensors").string());
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("c.safetensors: cannot write there"), std::string::npos) << r.output;
  if (geteuid() != 0) {  // root writes into read-only folders anyway
    fs::create_directories(dir / "ro");
    fs::permissions(dir / "ro", fs::perms::owner_read | fs::perms::owner_exec);
    r = run_cli("train " + cfg + " --epochs 100000 -o " + (dir / "ro" / "m.safetensors").string());
    EXPECT_EQ(r.code, 1) << r.output;
    EXPECT_NE(r.output.find("Permission denied"), std::string::npos) << r.output;
  }
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    EXPECT_EQ(entry.path().string().find(".probe"), std::string::npos) << entry.path();
  }
}
