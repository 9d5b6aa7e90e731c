// The subword tokenizers: SentencePiece's BPE and unigram models, trained and run by
// libsentencepiece. Its headers stay in this file, so tokenizer.h carries no dependency.
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <thread>
#include <unordered_map>

#include "neutrino/core/error.h"
#include "neutrino/data/sentencepiece_model_check.h"
#include "neutrino/data/tokenizer.h"
#include "neutrino/data/tokenizer_format.h"
#include "neutrino/data/utf8.h"

namespace neutrino::data {

namespace {

namespace spm = sentencepiece;

// SentencePiece's ids are int; this keeps every id, and a token shard's uint32, far from overflow.
constexpr int64_t kMaxVocab = int64_t{1} << 20;
// The BPE trainer packs a symbol's position in a word into 16 bits and aborts the process
// (CHECK_LE in bpe_model_trainer.h) on a longer word; a record of at most this many bytes cannot
// hold one.
constexpr int64_t kMaxSentenceLength = 65535;
// Longer words (runs without a space) crash the BPE trainer before that: 0.1.97 segfaults in
// Trainer::ComputeFreq from about 32,770 characters (measured). Half of that, to be safe.
constexpr size_t kMaxBpeWord = 16384;
// The trainer refuses anything lower (trainer_interface.cc) with a status that names no option.
constexpr double kMinCharacterCoverage = 0.98;

// SentencePiece messages may span lines; errors here are one line.
std::string one_line(std::string text) {
  std::replace(text.begin(), text.end(), '\n', ' ');
  return text;
}

class SentencePieceTokenizer final : public Tokenizer {
 public:
  SentencePieceTokenizer(std::string kind, std::string proto,
                         std::unique_ptr<spm::SentencePieceProcessor> sp)
      : kind_(std::move(kind)), proto_(std::move(proto)), sp_(std::move(sp)) {}

  std::string kind() const override { return kind_; }
  int64_t vocab_size() const override { return sp_->GetPieceSize(); }
  const std::string& model_proto() const { return proto_; }

  std::vector<int64_t> encode(std::string_view text) const override {
    // SentencePiece would read bad bytes as some characters or others; refuse them instead.
    check_utf8(text, "text");
    std::vector<int> ids;
    const spm::util::Status status = sp_->Encode(text, &ids);
    NEUTRINO_CHECK_VALUE(status.ok(), "encode: sentencepiece: {}", one_line(status.ToString()));
    return {ids.begin(), ids.end()};
  }

  std::string decode(const std::vector<int64_t>& ids) const override {
    std::vector<int> kept;
    kept.reserve(ids.size());
    for (size_t i = 0; i < ids.size(); ++i) {
      NEUTRINO_CHECK_VALUE(ids[i] >= 0 && ids[i] < vocab_size(),
                           "decode: ids[{}] = {} is outside the "
                           "vocabulary [0, {})",
                           i, ids[i], vocab_size());
      if (ids[i] != kPad && ids[i] != kBos && ids[i] != kEos)
        kept.push_back(static_cast<int>(ids[i]));
    }
    std::string text;
    const spm::util::Status status = sp_->Decode(kept, &text);
    NEUTRINO_CHECK_VALUE(status.ok(), "decode: sentencepiece: {}", one_line(status.ToString()));
    return text;
  }

  // Payload: the ModelProto exactly as SentencePiece wrote it (a `.model` file's bytes).
  std::string serialize() const override { return detail::wrap_tokenizer(kind_, proto_); }

 private:
  std::string kind_;
  std::string proto_;
  std::unique_ptr<spm::SentencePieceProcessor> sp_;
};

// Feeds the records to the trainer straight from memory.
class RecordIterator final : public spm::SentenceIterator {
 public:
  explicit RecordIterator(const std::vector<std::string>& records) : records_(records) {}
  bool done() const override { return at_ >= records_.size(); }
  void Next() override { ++at_; }
  const std::string& value() const override { return records_[at_]; }
  spm::util::Status status() const override { return {}; }

 private:
  const std::vector<std::string>& records_;
  size_t at_ = 0;
};

void check_options(const SentencePieceOptions& o) {
  NEUTRINO_CHECK_VALUE(o.model_type == "bpe" || o.model_type == "unigram",
                       "train_sentencepiece: "
                       "model_type must be bpe or unigram, got '{}'",
                       o.model_type);
  NEUTRINO_CHECK_VALUE(o.vocab_size > Tokenizer::kSpecialTokens && o.vocab_size <= kMaxVocab,
                       "train_sentencepiece: vocab_size must be from {} to {}, got {}",
                       Tokenizer::kSpecialTokens + 1, kMaxVocab, o.vocab_size);
  NEUTRINO_CHECK_VALUE(o.character_coverage >= kMinCharacterCoverage && o.character_coverage <= 1,
                       "train_sentencepiece: character_coverage must be from {} to 1, got {}",
                       kMinCharacterCoverage, o.character_coverage);
  NEUTRINO_CHECK_VALUE(o.max_sentence_length >= 1 && o.max_sentence_length <= kMaxSentenceLength,
                       "train_sentencepiece: max_sentence_length must be from 1 to {}, got {}",
                       kMaxSentenceLength, o.max_sentence_length);
  // SentencePiece's generator takes 32 bits and reserves 0xFFFFFFFF for "seed from the device".
  NEUTRINO_CHECK_VALUE(o.seed < UINT_MAX, "train_sentencepiece: seed must be below {}, got {}",
                       UINT_MAX, o.seed);
  NEUTRINO_CHECK_VALUE(o.num_threads >= 0 && o.num_threads <= 1024,
                       "train_sentencepiece: num_threads "
                       "must be from 0 to 1024, got {}",
                       o.num_threads);
}

// The most code points between two spaces in `text` (valid UTF-8): SentencePiece's "word".
size_t longest_word(std::string_view text) {
  size_t longest = 0, current = 0;
  for (char c : text) {
    if (c == ' ') {
      current = 0;
    } else if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) {
      longest = std::max(longest, ++current);
    }
  }
  return longest;
}

void check_corpus(const std::vector<std::string>& texts, const SentencePieceOptions& o) {
  bool any_text = false;
  for (size_t i = 0; i < texts.size(); ++i) {
    check_sentencepiece_record(texts[i], o, fmt::format("record {}", i));
    any_text = any_text || !texts[i].empty();
  }
  NEUTRINO_CHECK_VALUE(any_text, "train_sentencepiece: the corpus is empty ({} records, no text)",
                       texts.size());
}

std::unordered_map<std::string, std::string> trainer_args(const SentencePieceOptions& o) {
  const int64_t threads =
      o.num_threads > 0 ? o.num_threads : std::max<int64_t>(1, std::thread::hardware_concurrency());
  return {
      {"model_type", o.model_type},
      {"vocab_size", std::to_string(o.vocab_size)},
      {"byte_fallback", o.byte_fallback ? "true" : "false"},
      {"character_coverage", fmt::format("{}", o.character_coverage)},
      {"max_sentence_length", std::to_string(o.max_sentence_length)},
      {"num_threads", std::to_string(threads)},
      {"pad_id", "0"},
      {"unk_id", "1"},
      {"bos_id", "2"},
      {"eos_id", "3"},
      // The text stays exactly as given, so that decode(encode(t)) == t.
      {"normalization_rule_name", "identity"},
      {"add_dummy_prefix", "false"},
      {"remove_extra_whitespaces", "false"},
      // Errors come back as statuses; the trainer's progress log is not ours to print.
      {"minloglevel", "2"},
  };
}

// The number after `marker` in `message` (SentencePiece's "... <= 413."), or -1.
int64_t number_after(const std::string& message, const std::string& marker) {
  const size_t at = message.find(marker);
  if (at == std::string::npos) return -1;
  size_t end = at + marker.size();
  int64_t value = 0;
  bool digits = false;
  while (end < message.size() && message[end] >= '0' && message[end] <= '9' &&
         value < kMaxVocab * 16) {
    value = value * 10 + (message[end++] - '0');
    digits = true;
  }
  return digits ? value : -1;
}

// Turns the trainer's vocabulary-size statuses into errors that name the option and the bound.
[[noreturn]] void throw_training_error(const spm::util::Status& status,
                                       const SentencePieceOptions& o) {
  const std::string message = one_line(status.ToString());
  if (const int64_t most = number_after(message, "Please set it to a value <= "); most >= 0) {
    throw ValueError(
        fmt::format("vocab_size {} is larger than this corpus allows for {}: at most {}",
                    o.vocab_size, o.model_type, most));
  }
  if (const int64_t least = number_after(message, std::to_string(o.vocab_size) + " vs ");
      least >= 0) {
    throw ValueError(
        fmt::format("vocab_size {} is too small for this corpus: it needs at least {} (a "
                    "piece per character kept by character_coverage, {}the 4 special "
                    "tokens)",
                    o.vocab_size, least, o.byte_fallback ? "256 byte pieces, " : ""));
  }
  throw ValueError(fmt::format("train_sentencepiece: sentencepiece failed: {}", message));
}

std::unique_ptr<Tokenizer> load_checked(std::string proto, const std::string& what,
                                        const std::string& expected_kind) {
  const detail::SentencePieceModelFacts facts = detail::check_sentencepiece_model(proto, what);
  NEUTRINO_CHECK_VALUE(facts.model_type == "bpe" || facts.model_type == "unigram",
                       "{}: a SentencePiece "
                       "{} model; neutrino loads bpe and unigram models",
                       what, facts.model_type);
  NEUTRINO_CHECK_VALUE(expected_kind.empty() || facts.model_type == expected_kind,
                       "{}: tagged as a {} "
                       "tokenizer but the SentencePiece model inside is {}",
                       what, expected_kind, facts.model_type);
  auto sp = std::make_unique<spm::SentencePieceProcessor>();
  const spm::util::Status status = sp->LoadFromSerializedProto(proto);
  NEUTRINO_CHECK_VALUE(status.ok(), "{}: SentencePiece refused the model: {}", what,
                       one_line(status.ToString()));
  NEUTRINO_CHECK_VALUE(
      sp->pad_id() == Tokenizer::kPad && sp->unk_id() == Tokenizer::kUnk &&
          sp->bos_id() == Tokenizer::kBos && sp->eos_id() == Tokenizer::kEos,
      "{}: the model's special ids are pad {}, unk {}, bos {}, eos {} (neutrino needs 0, 1, "
      "2, 3)",
      what, sp->pad_id(), sp->unk_id(), sp->bos_id(), sp->eos_id());
  return std::make_unique<SentencePieceTokenizer>(facts.model_type, std::move(proto),
                                                  std::move(sp));
}

}  // namespace

void check_sentencepiece_record(std::string_view text, const SentencePieceOptions& options,
                                const std::string& what) {
  check_utf8(text, what);
  NEUTRINO_CHECK_VALUE(text.find('\0') == std::string::npos,
                       "{}: NUL byte at offset {} (a SentencePiece "
                       "piece cannot hold one)",
                       what, text.find('\0'));
  NEUTRINO_CHECK_VALUE(static_cast<int64_t>(text.size()) <= options.max_sentence_length,
                       "{} is {} bytes, "
                       "longer than max_sentence_length {} (raise it, or split the record)",
                       what, text.size(), options.max_sentence_length);
  if (options.model_type != "bpe") return;
  const size_t word = longest_word(text);
  NEUTRINO_CHECK_VALUE(
      word <= kMaxBpeWord,
      "{}: a word of {} characters without a space; SentencePiece's "
      "BPE trainer crashes on words over ~32k characters, so neutrino takes at most {}",
      what, word, kMaxBpeWord);
}

std::unique_ptr<Tokenizer> train_sentencepiece(const std::vector<std::string>& texts,
                                               const SentencePieceOptions& options) {
  check_options(options);
  check_corpus(texts, options);
  spm::SetRandomGeneratorSeed(static_cast<unsigned int>(options.seed));
  RecordIterator records(texts);
  std::string proto;
  const spm::util::Status status =
      spm::SentencePieceTrainer::Train(trainer_args(options), &records, &proto);
  if (!status.ok()) throw_training_error(status, options);
  return load_checked(std::move(proto), "train_sentencepiece: the trained model",
                      options.model_type);
}

std::unique_ptr<Tokenizer> load_sentencepiece_model(std::string_view model_proto,
                                                    const std::string& what) {
  return load_checked(std::string(model_proto), what, "");
}

std::string sentencepiece_model_proto(const Tokenizer& tokenizer) {
  const auto* sp = dynamic_cast<const SentencePieceTokenizer*>(&tokenizer);
  NEUTRINO_CHECK_VALUE(sp != nullptr, "a {} tokenizer has no SentencePiece model",
                       tokenizer.kind());
  return sp->model_proto();
}

namespace detail {

std::unique_ptr<Tokenizer> load_sentencepiece_payload(std::string_view kind,
                                                      std::string_view payload,
                                                      const std::string& what) {
  return load_checked(std::string(payload), what, std::string(kind));
}

}  // namespace detail

}  // namespace neutrino::data
