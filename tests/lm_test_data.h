// The language-model tests' data: a fortune file, char-tokenized, its records joined by <eos>, as
// train and validation token shards (90/10 by position) written into a test's folder.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "neutrino/data/text_datasets.h"
#include "neutrino/data/token_shards.h"
#include "neutrino/data/tokenizer.h"

namespace neutrino::testing {

struct FortuneShards {
  std::unique_ptr<data::Tokenizer> tokenizer;
  std::vector<int64_t> tokens;  // the whole file's ids
  std::unique_ptr<data::TokenShard> train, val;
};

inline FortuneShards fortune_shards(const std::filesystem::path& dir,
                                    const std::string& fortune = "science") {
  FortuneShards out;
  const auto records = data::read_fortune_records(data::fortunes_dir() + "/" + fortune);
  out.tokenizer = data::train_char_tokenizer(records);
  out.tokens = data::encode_records(*out.tokenizer, records);
  const auto cut = static_cast<std::ptrdiff_t>(out.tokens.size() * 9 / 10);
  const std::string train = (dir / "train.shard").string(), val = (dir / "val.shard").string();
  const int64_t vocab = out.tokenizer->vocab_size();
  data::write_token_shard(train, {out.tokens.begin(), out.tokens.begin() + cut}, vocab);
  data::write_token_shard(val, {out.tokens.begin() + cut, out.tokens.end()}, vocab);
  out.train = std::make_unique<data::TokenShard>(train);
  out.val = std::make_unique<data::TokenShard>(val);
  return out;
}

}  // namespace neutrino::testing
