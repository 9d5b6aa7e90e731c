// The envelope of serialized tokenizers, shared by tokenizer.cpp (char) and
// sentencepiece_tokenizer.cpp (bpe, unigram). Not part of the public API.
//
// Layout, little-endian:
//   0   "NTKN"           magic
//   4   u32 version      1
//   8   u32 k            length of the kind tag, 1..16
//   12  k bytes          the kind: "char", "bpe" or "unigram"
//   12+k u64 n           payload length; the payload runs exactly to the end
//   20+k n bytes         the kind's payload
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "neutrino/data/tokenizer.h"

namespace neutrino::data::detail {

std::string wrap_tokenizer(std::string_view kind, std::string_view payload);

// Defined in sentencepiece_tokenizer.cpp: a "bpe" or "unigram" payload (a ModelProto).
std::unique_ptr<Tokenizer> load_sentencepiece_payload(std::string_view kind,
                                                      std::string_view payload,
                                                      const std::string& what);

}  // namespace neutrino::data::detail
