// neutrino tokenize: trains a tokenizer on text files and writes it, and optionally the corpus as
// a token shard for language modelling.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "neutrino/cli/commands.h"
#include "neutrino/core/error.h"
#include "neutrino/data/text_records.h"
#include "neutrino/data/token_shards.h"
#include "neutrino/data/tokenizer.h"
#include "neutrino/io/file_io.h"

namespace neutrino::cli {

namespace {

struct Corpus {
  std::vector<std::string> records;
  std::vector<std::pair<std::string, size_t>> origins;  // (file, its first record's index)
};

Corpus read_corpus(const TokenizeArgs& args) {
  NEUTRINO_CHECK_VALUE(!args.files.empty(), "tokenize: no input files");
  const data::TextFormat format = data::parse_text_format(args.format);
  Corpus corpus;
  for (const std::string& file : args.files) {
    std::vector<std::string> records = data::read_text_records(file, format);
    corpus.origins.emplace_back(file, corpus.records.size());
    for (std::string& record : records) corpus.records.push_back(std::move(record));
  }
  NEUTRINO_CHECK_VALUE(!corpus.records.empty(), "tokenize: the corpus is empty (no records in {})",
                       fmt::join(args.files, ", "));
  return corpus;
}

// "FILE record N" for the corpus's record `index`, so that errors point into the right file.
std::string record_name(const Corpus& corpus, size_t index) {
  size_t file = 0;
  while (file + 1 < corpus.origins.size() && corpus.origins[file + 1].second <= index) ++file;
  return fmt::format("{}: record {}", corpus.origins[file].first,
                     index - corpus.origins[file].second);
}

// What train_sentencepiece would refuse about a record, said here with its file's name.
void check_records(const Corpus& corpus, const data::SentencePieceOptions& options) {
  for (size_t i = 0; i < corpus.records.size(); ++i) {
    data::check_sentencepiece_record(corpus.records[i], options, record_name(corpus, i));
  }
}

std::unique_ptr<data::Tokenizer> train(const Corpus& corpus, const TokenizeArgs& args) {
  if (args.kind == "char") {
    data::CharTokenizerOptions options;
    if (args.vocab_size) options.max_vocab = *args.vocab_size;
    return data::train_char_tokenizer(corpus.records, options);
  }
  NEUTRINO_CHECK_VALUE(args.kind == "bpe" || args.kind == "unigram",
                       "tokenize: --kind must be char, bpe "
                       "or unigram, got '{}'",
                       args.kind);
  data::SentencePieceOptions options;
  options.model_type = args.kind;
  if (args.vocab_size) options.vocab_size = *args.vocab_size;
  options.character_coverage = args.character_coverage;
  options.max_sentence_length = args.max_sentence_length;
  options.seed = args.seed;
  check_records(corpus, options);
  return data::train_sentencepiece(corpus.records, options);
}

}  // namespace

int run_tokenize(const TokenizeArgs& args) {
  NEUTRINO_CHECK_VALUE(!args.output.empty(), "tokenize: -o is required");
  // Training can take minutes; an unwritable output should fail before it, not after.
  io::check_can_write(args.output);
  if (!args.shards.empty()) io::check_can_write(args.shards);
  const Corpus corpus = read_corpus(args);
  const std::unique_ptr<data::Tokenizer> tokenizer = train(corpus, args);
  const std::string bytes = tokenizer->serialize();
  io::write_file_atomically(args.output, std::vector<uint8_t>(bytes.begin(), bytes.end()));
  const std::vector<int64_t> tokens = data::encode_records(*tokenizer, corpus.records);
  if (!args.shards.empty()) data::write_token_shard(args.shards, tokens, tokenizer->vocab_size());

  fmt::print("kind: {}\nvocab size: {}\nrecords: {}\ntokens: {}\n", tokenizer->kind(),
             tokenizer->vocab_size(), corpus.records.size(), tokens.size());
  fmt::print("wrote {}\n", args.output);
  if (!args.shards.empty()) fmt::print("wrote {}\n", args.shards);
  return 0;
}

}  // namespace neutrino::cli
