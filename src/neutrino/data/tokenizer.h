// Tokenizers: text to token ids and back, for the text models (issue 12).
//
// Two families share one interface: a character tokenizer (one id per Unicode code point of the
// training text) and SentencePiece's subword models (BPE and unigram, trained with
// libsentencepiece). Every tokenizer reserves the same four ids, so padding masks, sequence
// starts and ends mean the same thing whatever the tokenizer:
//   0 <pad>, 1 <unk>, 2 <bos>, 3 <eos>.
// serialize() gives self-describing bytes (a kind tag and its payload) that a model file keeps,
// so eval, predict and later generate need nothing else; load_tokenizer() reads them back and
// refuses damaged or hostile bytes with a ValueError naming where they came from.
//
// Text must be valid UTF-8 (data/utf8.h): encode() and training refuse anything else, naming
// the byte offset, rather than replacing bytes and breaking the round trip.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace neutrino::data {

class Tokenizer {
 public:
  virtual ~Tokenizer();
  virtual std::string kind() const = 0;  // "char", "bpe" or "unigram"
  // The ids of `text`, without <bos>/<eos> (callers add them where a model wants them).
  // ValueError on invalid UTF-8, naming the byte offset.
  virtual std::vector<int64_t> encode(std::string_view text) const = 0;
  // The text of `ids`. <pad>, <bos> and <eos> are skipped; <unk> becomes U+FFFD for the char
  // tokenizer and SentencePiece's " \u2047 " for the subword ones. ValueError on an id outside
  // [0, vocab_size()).
  virtual std::string decode(const std::vector<int64_t>& ids) const = 0;
  virtual int64_t vocab_size() const = 0;
  // Self-describing bytes for load_tokenizer (layout in tokenizer.cpp).
  virtual std::string serialize() const = 0;

  static constexpr int64_t kPad = 0, kUnk = 1, kBos = 2, kEos = 3;
  static constexpr int64_t kSpecialTokens = 4;
};

struct CharTokenizerOptions {
  // The most ids, the four special tokens included. With more distinct code points than fit,
  // the most frequent are kept (ties: the smaller code point) and the rest become <unk>.
  int64_t max_vocab = 1 << 20;
};
// The vocabulary is the sorted set of code points of `texts`: ids from 4 in code-point order.
// Code points not in it encode to <unk>. ValueError on an empty corpus or invalid UTF-8 (naming
// the record index and the byte offset).
std::unique_ptr<Tokenizer> train_char_tokenizer(const std::vector<std::string>& texts,
                                                CharTokenizerOptions options = {});

struct SentencePieceOptions {
  std::string model_type = "bpe";  // "bpe" or "unigram"
  int64_t vocab_size = 8000;       // the four special tokens included
  // Characters outside the vocabulary encode as their UTF-8 bytes (256 <0xNN> pieces, counted
  // in vocab_size) instead of <unk>, so every text round-trips.
  bool byte_fallback = true;
  // Share of the corpus's characters that get a piece, 0.98 to 1 (SentencePiece's range).
  double character_coverage = 0.9995;
  // Longest record, in bytes, at most 65535 (SentencePiece's BPE trainer aborts the process on
  // longer words); a longer record is an error naming it (SentencePiece would silently leave it
  // out).
  int64_t max_sentence_length = 1 << 14;
  // Seeds SentencePiece's generator. It is one process-wide generator, so training two models at
  // once on different threads is not reproducible.
  uint64_t seed = 0;
  // Training threads; 0: every core. Unigram training sums over threads, so its result can
  // depend on the count; BPE's does not.
  int64_t num_threads = 0;
};
// Trains with libsentencepiece from the records in memory (no temporary files). The text is
// kept exactly (identity normalization, whitespace kept, no dummy prefix), so decode(encode(t))
// == t for every t when byte_fallback is on, except that U+2581 (SentencePiece's whitespace
// mark) comes back as a space. ValueError, checked before SentencePiece runs, on an empty corpus,
// invalid UTF-8, a record over max_sentence_length, options out of range; and a vocab_size the
// corpus cannot fill, or cannot fit, is a ValueError naming `vocab_size` and SentencePiece's bound.
std::unique_ptr<Tokenizer> train_sentencepiece(const std::vector<std::string>& texts,
                                               const SentencePieceOptions& options);

// What train_sentencepiece requires of one record, `what` naming it in the ValueError: valid
// UTF-8, no NUL byte, at most max_sentence_length bytes, and for bpe no word (a run without a
// space) over 16384 characters, since longer ones crash SentencePiece's BPE trainer.
void check_sentencepiece_record(std::string_view text, const SentencePieceOptions& options,
                                const std::string& what);

// The records' tokens with <eos> between consecutive records: the stream a token shard holds
// (`neutrino tokenize`, language-model training).
std::vector<int64_t> encode_records(const Tokenizer& tokenizer, const std::vector<std::string>& records);

// Parses serialize()'s bytes. `what` names the source in errors ("model.safetensors: tokenizer").
std::unique_ptr<Tokenizer> load_tokenizer(std::string_view bytes, const std::string& what);

// The tokenizer a language-model file carries (info.extra["tokenizer"], base64 of serialize()'s
// bytes, as `neutrino train` and `import-weights --tokenizer` store it). ValueError naming `path`
// when the file holds none.
std::unique_ptr<Tokenizer> tokenizer_of_model_info(const std::map<std::string, std::string>& extra,
                                                   const std::string& path);
// The same, reading the model file at `path` (any model kind).
std::unique_ptr<Tokenizer> tokenizer_of_model_file(const std::string& path);

// The raw SentencePiece ModelProto of a "bpe" or "unigram" tokenizer: the bytes of a `.model`
// file that spm_encode and the sentencepiece Python module read. ValueError for other kinds.
std::string sentencepiece_model_proto(const Tokenizer& tokenizer);

// A tokenizer from a raw SentencePiece ModelProto (a `.model` file's bytes), kind "bpe" or
// "unigram" as the model says. The model must use neutrino's special ids (pad 0, unk 1, bos 2,
// eos 3) and carry no precompiled normalization (see sentencepiece_tokenizer.cpp for why).
std::unique_ptr<Tokenizer> load_sentencepiece_model(std::string_view model_proto,
                                                    const std::string& what);

}  // namespace neutrino::data
