// Token shards (issue 12): write and map, windows that a checkpoint can restore exactly, and
// truncated or hostile files refused naming the path.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "neutrino/core/error.h"
#include "neutrino/data/token_shards.h"
#include "test_util.h"

namespace fs = std::filesystem;
using namespace neutrino;
using namespace neutrino::data;
using neutrino::testing::expect_error;

namespace {

std::vector<int64_t> sequence(int64_t n, int64_t vocab) {
  std::vector<int64_t> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out[static_cast<size_t>(i)] = (i * 7919) % vocab;
  return out;
}

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

}  // namespace

TEST(TokenShard, WritesAndReadsBothWidths) {
  const fs::path dir = neutrino::testing::fresh_temp_dir("token_shard_rw");
  for (const int64_t vocab : {int64_t{300}, int64_t{65536}, int64_t{70000}}) {
    const std::vector<int64_t> tokens = sequence(1000, vocab);
    const std::string path = (dir / "corpus.tok").string();
    write_token_shard(path, tokens, vocab);
    TokenShard shard(path);
    EXPECT_EQ(shard.token_width(), vocab <= 65536 ? 2 : 4);
    EXPECT_EQ(fs::file_size(path), 32 + 1000u * static_cast<unsigned>(shard.token_width()));
    EXPECT_EQ(shard.vocab_size(), vocab);
    ASSERT_EQ(shard.size(), 1000);
    for (int64_t i = 0; i < shard.size(); ++i)
      ASSERT_EQ(shard.at(i), tokens[static_cast<size_t>(i)]);
    expect_error<ValueError>([&] { shard.at(1000); }, {"corpus.tok", "1000"});
    TokenShard moved = std::move(shard);
    EXPECT_EQ(moved.at(999), tokens.back());
  }
  write_token_shard((dir / "empty.tok").string(), {}, 10);
  EXPECT_EQ(TokenShard((dir / "empty.tok").string()).size(), 0);
  expect_error<ValueError>(
      [&] {
        write_token_shard((dir / "x.tok").string(), {1, 10}, 10);
      },
      {"x.tok", "token 1 is 10"});
  expect_error<ValueError>([&] { write_token_shard((dir / "x.tok").string(), {0}, 0); },
                           {"vocab_size"});
  fs::remove_all(dir);
}

TEST(TokenWindows, AreDeterministicAndSeekRestoresTheStream) {
  const fs::path dir = neutrino::testing::fresh_temp_dir("token_windows");
  const std::string path = (dir / "c.tok").string();
  std::vector<int64_t> tokens(500);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int64_t>(i);
  write_token_shard(path, tokens, 500);
  TokenShard shard(path);
  TokenWindows a(shard, 16, 42), b(shard, 16, 42), other(shard, 16, 43);
  std::vector<std::vector<int64_t>> drawn;
  bool differs = false;
  for (int i = 0; i < 50; ++i) {
    drawn.push_back(a.next());
    EXPECT_EQ(b.next(), drawn.back());
    differs = differs || other.next() != drawn.back();
    ASSERT_EQ(drawn.back().size(), 17u);
    for (size_t j = 1; j < 17; ++j)
      EXPECT_EQ(drawn.back()[j], drawn.back()[0] + static_cast<int64_t>(j));
  }
  EXPECT_TRUE(differs);
  EXPECT_EQ(a.position(), 50);
  // A resumed stream: a new reader, seeked to where a checkpoint left off.
  TokenWindows resumed(shard, 16, 42);
  resumed.seek(20);
  for (int i = 20; i < 50; ++i) EXPECT_EQ(resumed.next(), drawn[static_cast<size_t>(i)]);
  resumed.seek(3);
  const Tensor batch = resumed.next_batch(4);
  EXPECT_EQ(batch.shape(), (Shape{4, 17}));
  const std::vector<int64_t> values = batch.to_vector<int64_t>();
  for (size_t w = 0; w < 4; ++w) {
    EXPECT_EQ(std::vector<int64_t>(values.begin() + static_cast<long>(w * 17),
                                   values.begin() + static_cast<long>(w * 17 + 17)),
              drawn[3 + w]);
  }
  EXPECT_EQ(resumed.position(), 7);
  // Every start is reachable, the last one included.
  TokenWindows wide(shard, 498, 1);
  for (int i = 0; i < 20; ++i) EXPECT_LE(wide.next().back(), 499);
  expect_error<ValueError>([&] { TokenWindows(shard, 500, 1); },
                           {"c.tok", "500 tokens", "context 500"});
  expect_error<ValueError>([&] { resumed.seek(-1); }, {"seek"});
  fs::remove_all(dir);
}

TEST(TokenShard, TruncatedAndHostileFilesAreRefusedNamingThePath) {
  const fs::path dir = neutrino::testing::fresh_temp_dir("token_shard_bad");
  const fs::path good_path = dir / "good.tok";
  write_token_shard(good_path.string(), sequence(100, 1000), 1000);
  const std::string good = slurp(good_path);
  const fs::path bad = dir / "bad.tok";
  const auto refused = [&](const std::string& bytes, const std::string& part) {
    write(bad, bytes);
    expect_error<IOError>([&] { TokenShard shard(bad.string()); }, {"bad.tok", part});
  };
  refused(good.substr(0, good.size() - 1), "truncated");
  refused(good.substr(0, good.size() - 2), "truncated");
  refused(good.substr(0, 10), "shorter than the 32-byte");
  refused("", "shorter than the 32-byte");
  refused("XTOK" + good.substr(4), "NTOK magic");
  const auto patched = [&](size_t at, uint64_t value, size_t width) {
    std::string bytes = good;
    std::memcpy(bytes.data() + at, &value, width);
    return bytes;
  };
  refused(patched(4, 2, 4), "version 2");
  refused(patched(8, 3, 4), "token width 3");
  refused(patched(12, 64, 4), "header size 64");
  refused(patched(16, 0, 8), "vocab_size 0");
  refused(patched(16, 70000, 8), "vocab_size 70000 does not fit 2-byte");
  refused(patched(24, uint64_t{1} << 62, 8), "declares 4611686018427387904 tokens");
  refused(patched(16, 5, 8), "outside the vocabulary of 5");
  expect_error<IOError>([&] { TokenShard shard((dir / "missing.tok").string()); }, {"missing.tok"});
  expect_error<IOError>([&] { TokenShard shard(dir.string()); }, {dir.string()});
  fs::remove_all(dir);
}

// Found by fuzz/fuzz_token_shard.cpp: read(INT64_MAX, 1) was refused, but its message computed
// start + n, a signed overflow (UBSan). Ranges far past the end are refused without arithmetic
// that can overflow.
TEST(TokenShard, ReadsFarOutsideTheShardAreRefusedWithoutOverflow) {
  const fs::path dir = neutrino::testing::fresh_temp_dir("token_shard_far");
  const std::string path = (dir / "c.tok").string();
  write_token_shard(path, {1, 2, 3}, 10);
  TokenShard shard(path);
  int64_t sink[4] = {};
  const int64_t big = std::numeric_limits<int64_t>::max();
  expect_error<ValueError>([&] { shard.read(big, 1, sink); }, {"c.tok", "1 tokens from index"});
  expect_error<ValueError>([&] { shard.read(1, big, sink); }, {"c.tok", "outside [0, 3)"});
  expect_error<ValueError>([&] { shard.read(big, big, sink); }, {"c.tok"});
  expect_error<ValueError>([&] { shard.read(-1, 1, sink); }, {"c.tok"});
  expect_error<ValueError>([&] { shard.read(3, 1, sink); }, {"c.tok"});
  shard.read(0, 3, sink);
  EXPECT_EQ(sink[2], 3);
  fs::remove_all(dir);
}
