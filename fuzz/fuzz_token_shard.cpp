// libFuzzer target for token shards (data/token_shards.h: the 32-byte NTOK header checked against
// the file size, the tokens checked against vocab_size, the file memory-mapped). Each input is
// written to one file in a temporary folder of this process (TokenShard maps a path, and only a
// regular file); the file is rewritten only after the previous shard is closed, since truncating
// a mapped file would be a SIGBUS of our own making. Any input must either be refused with a
// neutrino::Error or open as a shard whose every token (read one by one and as ranges) is below
// its vocab_size, whose size matches the file, and from which TokenWindows draws batches of the
// right shape, the same again after seek(0). A crash, a sanitizer report, an InternalError, any
// other exception or a broken check is a bug.
//
//   build: CXX=clang++-14 scripts/build.sh build-fuzz -DNEUTRINO_BUILD_FUZZERS=ON ...
//   run:   scripts/fuzz.sh build-fuzz/bin/fuzz_token_shard 60
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "neutrino/core/error.h"
#include "neutrino/data/token_shards.h"
#include "neutrino/tensor/tensor.h"

namespace {

namespace nd = neutrino::data;
namespace fs = std::filesystem;

// The folder, made once per process and removed when it exits.
const std::string& shard_path() {
  static const std::string path = [] {
    std::string dir = (fs::temp_directory_path() / "fuzz_token_shard.XXXXXX").string();
    if (::mkdtemp(dir.data()) == nullptr) std::abort();
    static const std::string folder = dir;
    std::atexit([] {
      std::error_code ignored;
      fs::remove_all(folder, ignored);
    });
    return dir + "/input.shard";
  }();
  return path;
}

void write_input(const uint8_t* data, size_t size) {
  const int fd = ::open(shard_path().c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) std::abort();
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::write(fd, data + done, size - done);
    if (n <= 0) std::abort();
    done += static_cast<size_t>(n);
  }
  if (::close(fd) != 0) std::abort();
}

void exercise(const nd::TokenShard& shard, size_t file_size) {
  const int64_t n = shard.size();
  const int64_t vocab = shard.vocab_size();
  const int width = shard.token_width();
  if ((width != 2 && width != 4) || vocab < 1 || n < 0) std::abort();
  if (static_cast<uint64_t>(n) * static_cast<uint64_t>(width) + 32 != file_size) std::abort();
  std::vector<int64_t> all(static_cast<size_t>(n));
  if (n > 0) shard.read(0, n, all.data());
  for (int64_t i = 0; i < n; ++i) {
    const int64_t t = shard.at(i);
    if (t < 0 || t >= vocab || t != all[static_cast<size_t>(i)]) std::abort();
  }
  // Out of range reads are refused.
  for (const auto& [start, count] : {std::pair<int64_t, int64_t>{-1, 1}, {0, n + 1}, {n, 1},
                                     {n + 1, 0}, {INT64_MAX, 1}, {1, INT64_MAX}}) {
    std::vector<int64_t> sink(2);
    try {
      shard.read(start, count, sink.data());
      std::abort();
    } catch (const neutrino::ValueError&) {
    }
  }
  try {
    (void)shard.at(n);
    std::abort();
  } catch (const neutrino::ValueError&) {
  }
  // Windows of a few contexts, the longest the shard allows among them.
  for (int64_t context : {int64_t{1}, int64_t{7}, n - 1}) {
    if (context < 1 || context >= n) {
      try {
        nd::TokenWindows refused(shard, context, 1);
        std::abort();  // a shard too short for the window was accepted
      } catch (const neutrino::ValueError&) {
      }
      continue;
    }
    if (context > 4096) continue;  // a long window costs time, not coverage
    nd::TokenWindows windows(shard, context, static_cast<uint64_t>(n) * 31 + 7);
    const neutrino::Tensor batch = windows.next_batch(3);
    if (batch.shape() != neutrino::Shape{3, context + 1}) std::abort();
    const std::vector<int64_t> values = batch.to_vector<int64_t>();
    for (int64_t t : values) {
      if (t < 0 || t >= vocab) std::abort();
    }
    const std::vector<int64_t> fourth = windows.next();
    if (windows.position() != 4 || static_cast<int64_t>(fourth.size()) != context + 1) std::abort();
    // Each window is a run of the shard's tokens.
    bool found = false;
    for (int64_t s = 0; s + context + 1 <= n && !found; ++s) {
      found = std::equal(fourth.begin(), fourth.end(), all.begin() + s);
    }
    if (!found) std::abort();
    windows.seek(0);
    if (windows.next_batch(3).to_vector<int64_t>() != values) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  write_input(data, size);
  try {
    const nd::TokenShard shard(shard_path());
    // Outside any expected refusal: what opened must read back consistently.
    try {
      exercise(shard, size);
    } catch (const neutrino::Error&) {
      std::abort();  // an error from a shard that opened
    }
  } catch (const neutrino::InternalError&) {
    std::abort();  // our own invariant broke: a bug, whatever the input
  } catch (const neutrino::Error&) {
    return 0;  // refusing the input is the expected outcome for most fuzzed files
  }
  return 0;
}
