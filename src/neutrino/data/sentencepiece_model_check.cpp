#include "neutrino/data/sentencepiece_model_check.h"

#include <cstdint>
#include <vector>

#include "neutrino/core/error.h"
#include "neutrino/data/utf8.h"

namespace neutrino::data::detail {

namespace {

// Field numbers from sentencepiece_model.proto.
constexpr uint32_t kModelPieces = 1, kModelTrainerSpec = 2, kModelNormalizer = 3,
                   kModelDenormalizer = 5;
constexpr uint32_t kPieceText = 1, kPieceType = 3;
constexpr uint32_t kTrainerModelType = 3;
constexpr uint32_t kNormalizerCharsmap = 2;
// SentencePiece::Type
constexpr uint64_t kNormal = 1, kUnknown = 2, kControl = 3, kByte = 6;

constexpr uint32_t kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5;
// Far above any real piece (SentencePiece's default limit is 16 characters), far below the
// ~100 KB that overflows the stack in libsentencepiece's trie builder.
constexpr size_t kMaxPieceBytes = 4096;
constexpr int64_t kMaxPieces = int64_t{1} << 21;

struct Field {
  uint32_t number = 0;
  uint32_t wire = 0;
  uint64_t varint = 0;     // kVarint
  std::string_view bytes;  // kLengthDelimited
};

// Protobuf's wire format: a varint key (field number << 3 | wire type), then the value.
class WireReader {
 public:
  WireReader(std::string_view data, const std::string& what, const char* message)
      : data_(data), what_(what), message_(message) {}

  bool next(Field& field) {
    if (pos_ == data_.size()) return false;
    field = Field{};
    const uint64_t key = varint();
    field.number = static_cast<uint32_t>(key >> 3);
    field.wire = static_cast<uint32_t>(key & 7);
    NEUTRINO_CHECK_VALUE(field.number != 0 && key >> 3 <= 0x1FFFFFFF,
                         "{}: bad protobuf field key in {}", what_, message_);
    switch (field.wire) {
      case kVarint:
        field.varint = varint();
        break;
      case kFixed64:
        skip(8);
        break;
      case kFixed32:
        skip(4);
        break;
      case kLengthDelimited: {
        const uint64_t length = varint();
        NEUTRINO_CHECK_VALUE(length <= data_.size() - pos_,
                             "{}: protobuf field {} of {} runs past the "
                             "end ({} bytes declared, {} left)",
                             what_, field.number, message_, length, data_.size() - pos_);
        field.bytes = data_.substr(pos_, length);
        pos_ += length;
        break;
      }
      default:
        throw ValueError(
            fmt::format("{}: protobuf field {} of {} has wire type {}, which SentencePiece "
                        "models never use",
                        what_, field.number, message_, field.wire));
    }
    return true;
  }

  void expect_wire(const Field& field, uint32_t wire) const {
    NEUTRINO_CHECK_VALUE(field.wire == wire,
                         "{}: protobuf field {} of {} has wire type {}, expected {}", what_,
                         field.number, message_, field.wire, wire);
  }

 private:
  uint64_t varint() {
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      NEUTRINO_CHECK_VALUE(pos_ < data_.size(), "{}: truncated protobuf varint in {}", what_,
                           message_);
      const auto byte = static_cast<uint8_t>(data_[pos_++]);
      value |= uint64_t{byte & 0x7Fu} << shift;
      if ((byte & 0x80) == 0) return value;
    }
    throw ValueError(
        fmt::format("{}: protobuf varint longer than 10 bytes in {}", what_, message_));
  }
  void skip(size_t n) {
    NEUTRINO_CHECK_VALUE(n <= data_.size() - pos_, "{}: truncated protobuf field in {}", what_,
                         message_);
    pos_ += n;
  }

  std::string_view data_;
  const std::string& what_;
  const char* message_;
  size_t pos_ = 0;
};

// One ModelProto.SentencePiece; returns its type.
uint64_t check_piece(std::string_view message, int64_t id, const std::string& what) {
  WireReader in(message, what, "a piece");
  Field f;
  bool has_text = false;
  uint64_t type = kNormal;
  while (in.next(f)) {
    if (f.number == kPieceText) {
      in.expect_wire(f, kLengthDelimited);
      NEUTRINO_CHECK_VALUE(!f.bytes.empty() && f.bytes.size() <= kMaxPieceBytes,
                           "{}: piece {} is {} bytes "
                           "long (must be 1 to {})",
                           what, id, f.bytes.size(), kMaxPieceBytes);
      NEUTRINO_CHECK_VALUE(f.bytes.find('\0') == std::string_view::npos,
                           "{}: piece {} holds a NUL byte", what, id);
      check_utf8(f.bytes, fmt::format("{}: piece {}", what, id));
      has_text = true;
    } else if (f.number == kPieceType) {
      in.expect_wire(f, kVarint);
      NEUTRINO_CHECK_VALUE(f.varint >= kNormal && f.varint <= kByte,
                           "{}: piece {} has unknown type {}", what, id, f.varint);
      type = f.varint;
    }
  }
  NEUTRINO_CHECK_VALUE(has_text, "{}: piece {} has no text", what, id);
  return type;
}

std::string model_type_name(uint64_t type, const std::string& what) {
  switch (type) {
    case 1:
      return "unigram";
    case 2:
      return "bpe";
    case 3:
      return "word";
    case 4:
      return "char";
    default:
      throw ValueError(fmt::format("{}: unknown SentencePiece model type {}", what, type));
  }
}

// TrainerSpec.model_type (UNIGRAM when absent, as protobuf's default says).
std::string trainer_model_type(std::string_view message, const std::string& what) {
  WireReader in(message, what, "the trainer spec");
  Field f;
  uint64_t type = 1;
  while (in.next(f)) {
    if (f.number != kTrainerModelType) continue;
    in.expect_wire(f, kVarint);
    type = f.varint;
  }
  return model_type_name(type, what);
}

void check_normalizer(std::string_view message, const std::string& what, const char* name) {
  WireReader in(message, what, name);
  Field f;
  while (in.next(f)) {
    NEUTRINO_CHECK_VALUE(
        f.number != kNormalizerCharsmap || f.bytes.empty(),
        "{}: the {} carries a "
        "precompiled charsmap, which neutrino does not load (its models use identity "
        "normalization)",
        what, name);
  }
}

void check_special_pieces(const std::vector<uint64_t>& types, const std::string& what) {
  NEUTRINO_CHECK_VALUE(types.size() >= 4,
                       "{}: the model has {} pieces, fewer than the 4 special tokens", what,
                       types.size());
  const uint64_t expected[4] = {kControl, kUnknown, kControl, kControl};
  const char* names[4] = {"<pad>", "<unk>", "<bos>", "<eos>"};
  for (size_t id = 0; id < 4; ++id) {
    NEUTRINO_CHECK_VALUE(types[id] == expected[id],
                         "{}: piece {} must be {} (neutrino's special ids are "
                         "pad 0, unk 1, bos 2, eos 3)",
                         what, id, names[id]);
  }
}

}  // namespace

SentencePieceModelFacts check_sentencepiece_model(std::string_view proto, const std::string& what) {
  WireReader in(proto, what, "the model");
  Field f;
  std::vector<uint64_t> types;
  std::string model_type = "unigram";
  while (in.next(f)) {
    if (f.number == kModelPieces) {
      in.expect_wire(f, kLengthDelimited);
      NEUTRINO_CHECK_VALUE(static_cast<int64_t>(types.size()) < kMaxPieces,
                           "{}: more than {} pieces", what, kMaxPieces);
      types.push_back(check_piece(f.bytes, static_cast<int64_t>(types.size()), what));
    } else if (f.number == kModelTrainerSpec) {
      in.expect_wire(f, kLengthDelimited);
      model_type = trainer_model_type(f.bytes, what);
    } else if (f.number == kModelNormalizer || f.number == kModelDenormalizer) {
      in.expect_wire(f, kLengthDelimited);
      check_normalizer(f.bytes, what, f.number == kModelNormalizer ? "normalizer" : "denormalizer");
    }
  }
  check_special_pieces(types, what);
  return {model_type, static_cast<int64_t>(types.size())};
}

}  // namespace neutrino::data::detail
