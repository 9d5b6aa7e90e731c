// A structural check of a SentencePiece ModelProto before libsentencepiece sees it.
//
// libsentencepiece trusts the model it loads: a piece of ~100 KB overflows the stack while its
// trie is built, an empty piece or one holding a NUL byte makes the trie library throw from code
// that cannot pass the exception on (std::terminate), and a precompiled normalization charsmap is
// a trie whose bytes are used unchecked. A model file can come from anywhere, so the protobuf is
// walked here first (its wire format, by hand: libsentencepiece does not install its generated
// protobuf headers) and anything of that kind is refused with a ValueError naming `what`.
#pragma once

#include <string>
#include <string_view>

namespace neutrino::data::detail {

struct SentencePieceModelFacts {
  std::string model_type;  // "unigram", "bpe", "word" or "char" (TrainerSpec.model_type)
  int64_t pieces = 0;
};

// Checks the wire format, every piece (1 to 4096 bytes of UTF-8 without NUL, a known type), the
// special pieces at ids 0-3 (<pad>, <unk>, <bos>, <eos> as control/unknown pieces), and that no
// normalizer carries a precompiled charsmap.
SentencePieceModelFacts check_sentencepiece_model(std::string_view proto, const std::string& what);

}  // namespace neutrino::data::detail
