#include "neutrino/data/tokenizer.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <unordered_map>

#include "neutrino/core/error.h"
#include "neutrino/data/tokenizer_format.h"
#include "neutrino/data/utf8.h"
#include "neutrino/io/base64.h"
#include "neutrino/io/model_file.h"

namespace neutrino::data {

static_assert(std::endian::native == std::endian::little,
              "the tokenizer format is little-endian and is read with memcpy");

Tokenizer::~Tokenizer() = default;

namespace {

constexpr char kMagic[4] = {'N', 'T', 'K', 'N'};
constexpr uint32_t kVersion = 1;
constexpr uint32_t kMaxKindLength = 16;
// Every code point there is: a vocabulary can never need more.
constexpr int64_t kMaxCharVocab = Tokenizer::kSpecialTokens + 0x110000;
// What decode() writes for <unk>: the replacement character, as decoders of bad bytes do.
constexpr char32_t kReplacement = 0xFFFD;

template <class T>
void put(std::string& out, T value) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  out.append(bytes, sizeof(T));
}

// Reads the serialized bytes front to back; every read is bounds-checked and names `what`.
class ByteReader {
 public:
  ByteReader(std::string_view bytes, const std::string& what) : bytes_(bytes), what_(what) {}
  template <class T>
  T get(const char* field) {
    NEUTRINO_CHECK_VALUE(remaining() >= sizeof(T), "{}: truncated tokenizer data ({} at byte {})",
                         what_, field, pos_);
    T value;
    std::memcpy(&value, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return value;
  }
  std::string_view take(size_t n, const char* field) {
    NEUTRINO_CHECK_VALUE(remaining() >= n,
                         "{}: truncated tokenizer data ({} at byte {} needs {} bytes, "
                         "{} left)",
                         what_, field, pos_, n, remaining());
    std::string_view out = bytes_.substr(pos_, n);
    pos_ += n;
    return out;
  }
  size_t remaining() const { return bytes_.size() - pos_; }
  size_t position() const { return pos_; }

 private:
  std::string_view bytes_;
  const std::string& what_;
  size_t pos_ = 0;
};

class CharTokenizer final : public Tokenizer {
 public:
  // `vocab`: strictly increasing scalar values; id of vocab[i] is kSpecialTokens + i.
  explicit CharTokenizer(std::vector<char32_t> vocab) : vocab_(std::move(vocab)) {}

  std::string kind() const override { return "char"; }
  int64_t vocab_size() const override {
    return kSpecialTokens + static_cast<int64_t>(vocab_.size());
  }

  std::vector<int64_t> encode(std::string_view text) const override {
    const std::vector<char32_t> code_points = decode_utf8(text, "text");
    std::vector<int64_t> ids;
    ids.reserve(code_points.size());
    for (char32_t c : code_points) {
      auto it = std::lower_bound(vocab_.begin(), vocab_.end(), c);
      ids.push_back(it != vocab_.end() && *it == c ? kSpecialTokens + (it - vocab_.begin()) : kUnk);
    }
    return ids;
  }

  std::string decode(const std::vector<int64_t>& ids) const override {
    std::string out;
    for (size_t i = 0; i < ids.size(); ++i) {
      const int64_t id = ids[i];
      NEUTRINO_CHECK_VALUE(id >= 0 && id < vocab_size(),
                           "decode: ids[{}] = {} is outside the vocabulary "
                           "[0, {})",
                           i, id, vocab_size());
      if (id == kUnk) append_utf8(kReplacement, out);
      if (id >= kSpecialTokens) append_utf8(vocab_[static_cast<size_t>(id - kSpecialTokens)], out);
    }
    return out;
  }

  // Payload: u32 count, then count u32 code points in increasing order.
  std::string serialize() const override {
    std::string payload;
    put<uint32_t>(payload, static_cast<uint32_t>(vocab_.size()));
    for (char32_t c : vocab_) put<uint32_t>(payload, static_cast<uint32_t>(c));
    return detail::wrap_tokenizer(kind(), payload);
  }

 private:
  std::vector<char32_t> vocab_;
};

std::unique_ptr<Tokenizer> load_char_payload(std::string_view payload, const std::string& what) {
  ByteReader in(payload, what);
  const uint32_t count = in.get<uint32_t>("char vocabulary size");
  NEUTRINO_CHECK_VALUE(count >= 1 && count <= 0x110000,
                       "{}: char vocabulary of {} code points (must be "
                       "1 to 1114112)",
                       what, count);
  NEUTRINO_CHECK_VALUE(in.remaining() == uint64_t{count} * 4,
                       "{}: char vocabulary of {} code points needs "
                       "{} bytes, the data has {}",
                       what, count, uint64_t{count} * 4, in.remaining());
  std::vector<char32_t> vocab(count);
  for (uint32_t i = 0; i < count; ++i) {
    const auto c = static_cast<char32_t>(in.get<uint32_t>("code point"));
    NEUTRINO_CHECK_VALUE(is_scalar_value(c),
                         "{}: char vocabulary entry {} is U+{:04X}, not a Unicode "
                         "scalar value",
                         what, i, static_cast<uint32_t>(c));
    NEUTRINO_CHECK_VALUE(i == 0 || c > vocab[i - 1],
                         "{}: char vocabulary entry {} (U+{:04X}) is a "
                         "duplicate or out of order (the entries must increase)",
                         what, i, static_cast<uint32_t>(c));
    vocab[i] = c;
  }
  return std::make_unique<CharTokenizer>(std::move(vocab));
}

// The `keep` most frequent code points (ties: the smaller first), in code-point order.
std::vector<char32_t> most_frequent(const std::unordered_map<char32_t, int64_t>& counts,
                                    size_t keep) {
  std::vector<std::pair<char32_t, int64_t>> ranked(counts.begin(), counts.end());
  auto by_count = [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  };
  if (ranked.size() > keep) {
    std::nth_element(ranked.begin(), ranked.begin() + static_cast<std::ptrdiff_t>(keep),
                     ranked.end(), by_count);
    ranked.resize(keep);
  }
  std::vector<char32_t> vocab;
  vocab.reserve(ranked.size());
  for (const auto& entry : ranked) vocab.push_back(entry.first);
  std::sort(vocab.begin(), vocab.end());
  return vocab;
}

}  // namespace

namespace detail {

std::string wrap_tokenizer(std::string_view kind, std::string_view payload) {
  std::string out(kMagic, sizeof(kMagic));
  put<uint32_t>(out, kVersion);
  put<uint32_t>(out, static_cast<uint32_t>(kind.size()));
  out.append(kind);
  put<uint64_t>(out, payload.size());
  out.append(payload);
  return out;
}

}  // namespace detail

std::unique_ptr<Tokenizer> train_char_tokenizer(const std::vector<std::string>& texts,
                                                CharTokenizerOptions options) {
  NEUTRINO_CHECK_VALUE(
      options.max_vocab > Tokenizer::kSpecialTokens && options.max_vocab <= kMaxCharVocab,
      "train_char_tokenizer: max_vocab must be from {} to {} (the 4 special tokens "
      "and every code point), got {}",
      Tokenizer::kSpecialTokens + 1, kMaxCharVocab, options.max_vocab);
  std::unordered_map<char32_t, int64_t> counts;
  for (size_t i = 0; i < texts.size(); ++i) {
    for (char32_t c : decode_utf8(texts[i], fmt::format("record {}", i))) ++counts[c];
  }
  NEUTRINO_CHECK_VALUE(!counts.empty(),
                       "train_char_tokenizer: the corpus is empty ({} records, no "
                       "characters)",
                       texts.size());
  const auto keep = static_cast<size_t>(options.max_vocab - Tokenizer::kSpecialTokens);
  return std::make_unique<CharTokenizer>(most_frequent(counts, keep));
}

std::vector<int64_t> encode_records(const Tokenizer& tokenizer, const std::vector<std::string>& records) {
  std::vector<int64_t> tokens;
  for (size_t i = 0; i < records.size(); ++i) {
    if (i > 0) tokens.push_back(Tokenizer::kEos);
    const std::vector<int64_t> ids = tokenizer.encode(records[i]);
    tokens.insert(tokens.end(), ids.begin(), ids.end());
  }
  return tokens;
}

std::unique_ptr<Tokenizer> load_tokenizer(std::string_view bytes, const std::string& what) {
  ByteReader in(bytes, what);
  const std::string_view magic = in.take(sizeof(kMagic), "magic");
  NEUTRINO_CHECK_VALUE(magic == std::string_view(kMagic, sizeof(kMagic)),
                       "{}: not tokenizer data (no "
                       "NTKN magic)",
                       what);
  const auto version = in.get<uint32_t>("version");
  NEUTRINO_CHECK_VALUE(version == kVersion, "{}: tokenizer format version {} (this build reads {})",
                       what, version, kVersion);
  const auto kind_length = in.get<uint32_t>("kind length");
  NEUTRINO_CHECK_VALUE(kind_length >= 1 && kind_length <= kMaxKindLength,
                       "{}: tokenizer kind tag of {} "
                       "bytes (must be 1 to {})",
                       what, kind_length, kMaxKindLength);
  const std::string kind(in.take(kind_length, "kind"));
  const auto payload_length = in.get<uint64_t>("payload length");
  NEUTRINO_CHECK_VALUE(payload_length == in.remaining(),
                       "{}: tokenizer payload declares {} bytes, the "
                       "data has {} after the header",
                       what, payload_length, in.remaining());
  const std::string_view payload = in.take(in.remaining(), "payload");
  if (kind == "char") return load_char_payload(payload, what);
  if (kind == "bpe" || kind == "unigram")
    return detail::load_sentencepiece_payload(kind, payload, what);
  const bool printable =
      std::all_of(kind.begin(), kind.end(), [](char c) { return c >= ' ' && c <= '~'; });
  throw ValueError(fmt::format("{}: unknown tokenizer kind '{}' (known: char, bpe, unigram)", what,
                               printable ? kind : "(not text)"));
}

std::unique_ptr<Tokenizer> tokenizer_of_model_info(const std::map<std::string, std::string>& extra,
                                                   const std::string& path) {
  const auto it = extra.find("tokenizer");
  NEUTRINO_CHECK_VALUE(it != extra.end(),
                       "{}: the model file holds no tokenizer (import it with --tokenizer)", path);
  return load_tokenizer(io::base64_decode(it->second, path + ": tokenizer"), path + ": tokenizer");
}

std::unique_ptr<Tokenizer> tokenizer_of_model_file(const std::string& path) {
  return tokenizer_of_model_info(io::read_model_file(path, io::ModelFileKind::kModel).info.extra,
                                 path);
}

}  // namespace neutrino::data
