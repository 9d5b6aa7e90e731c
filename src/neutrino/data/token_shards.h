// Token shards: a corpus tokenized once into a file of token ids, memory-mapped for language
// modelling, and random windows drawn from it reproducibly (issue 12).
//
// The file, little-endian:
//   0   "NTOK"              magic
//   4   u32 version         1
//   8   u32 token width     2 (uint16 tokens, vocab_size <= 65536) or 4 (uint32)
//   12  u32 header bytes    32, where the tokens start (aligned for either width)
//   16  u64 vocab_size      every token is below it
//   24  u64 token count     the file is exactly 32 + count * width bytes
//   32  the tokens
//
// The shard is mapped, not read: a corpus may be larger than memory, and the pages of windows
// never drawn are never read. A file truncated under a live mapping would kill the process with
// SIGBUS, which is why write_token_shard replaces a shard by rename (the old mapping keeps the
// old file's pages) and never rewrites one in place.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "neutrino/core/random.h"
#include "neutrino/tensor/tensor.h"

namespace neutrino::data {

// Writes `tokens` (each in [0, vocab_size)) as a shard at `path`, atomically (a temporary file,
// then rename). uint16 tokens when vocab_size <= 65536, else uint32; vocab_size at most 2^32.
void write_token_shard(const std::string& path, const std::vector<int64_t>& tokens,
                       int64_t vocab_size);

// A shard mapped read-only. Opening checks the header against the file size (so a truncated or
// hostile file is an IOError naming the path before anything is allocated) and every token
// against vocab_size (one pass over the file), so at() can only return a valid id.
class TokenShard {
 public:
  explicit TokenShard(const std::string& path);
  ~TokenShard();
  TokenShard(TokenShard&& other) noexcept;
  TokenShard& operator=(TokenShard&& other) noexcept;
  TokenShard(const TokenShard&) = delete;
  TokenShard& operator=(const TokenShard&) = delete;

  int64_t size() const { return count_; }
  int64_t vocab_size() const { return vocab_size_; }
  int token_width() const { return width_; }
  const std::string& path() const { return path_; }
  // Token i; ValueError naming the path when i is outside [0, size()).
  int64_t at(int64_t i) const;
  // Copies tokens [start, start + n) to `out`; ValueError when the range leaves the shard.
  void read(int64_t start, int64_t n, int64_t* out) const;

 private:
  void unmap() noexcept;
  int64_t token(int64_t i) const;  // unchecked

  std::string path_;
  const unsigned char* map_ = nullptr;  // the whole file
  size_t map_size_ = 0;
  int64_t count_ = 0;
  int64_t vocab_size_ = 0;
  int width_ = 0;
};

// Random windows of context + 1 consecutive tokens (a model's inputs and, shifted by one, its
// targets), each starting anywhere in the shard with equal probability.
//
// Window k's start depends only on (seed, k): it is drawn from a Generator seeded from both, so
// the stream is the same whatever else the program draws, and seek(k) restores it exactly in
// O(1). A checkpoint saves position() and calls seek() on resume.
class TokenWindows {
 public:
  // ValueError naming the shard when it holds fewer than context + 1 tokens.
  TokenWindows(const TokenShard& shard, int64_t context, uint64_t seed);

  // The next window's context + 1 tokens.
  std::vector<int64_t> next();
  // The next `batch` windows as an int64 tensor of shape (batch, context + 1).
  Tensor next_batch(int64_t batch);
  // Windows drawn so far.
  int64_t position() const { return position_; }
  // Makes the next window the one that follows `windows_drawn` windows (>= 0).
  void seek(int64_t windows_drawn);
  int64_t context() const { return context_; }

 private:
  int64_t start_of(int64_t window) const;

  const TokenShard& shard_;
  int64_t context_;
  uint64_t seed_;
  int64_t position_ = 0;
};

}  // namespace neutrino::data
