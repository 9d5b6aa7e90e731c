// libFuzzer target for serialized tokenizers (data::load_tokenizer: the NTKN envelope, the char
// vocabulary, and for bpe/unigram the SentencePiece ModelProto walked by
// sentencepiece_model_check.cpp before libsentencepiece sees it). Any input must either be
// refused with a neutrino::Error or load into a tokenizer that serializes back to the same bytes,
// encodes a few texts into ids inside its vocabulary, decodes them, and decodes id lists taken
// from the input (an id outside the vocabulary is a ValueError, never a crash). A crash, a
// sanitizer report, an InternalError, any other exception, an error from a tokenizer that loaded
// (on valid text or ids), or a hang is a bug.
//
//   build: CXX=clang++-14 scripts/build.sh build-fuzz -DNEUTRINO_BUILD_FUZZERS=ON ...
//   run:   scripts/fuzz.sh build-fuzz/bin/fuzz_tokenizer 60
// Seeds (fuzz/corpus/fuzz_tokenizer/): tokenizers written by `neutrino tokenize`
// (tests/hostile/make_text_seeds.sh), and damaged ones.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "neutrino/core/error.h"
#include "neutrino/data/tokenizer.h"
#include "neutrino/data/utf8.h"

namespace {

namespace nd = neutrino::data;

// Texts every tokenizer should take: ASCII, whitespace, SentencePiece's U+2581, CJK, an emoji, a
// code point no small vocabulary holds, and the empty text.
const char* const kTexts[] = {
    "",
    "the quick brown fox",
    "  two  spaces\tand a tab\n",
    "\xe2\x96\x81 marked",
    "\xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80",
    "\xf4\x8f\xbf\xbf",
};

void check_ids(const nd::Tokenizer& tok, const std::vector<int64_t>& ids) {
  for (int64_t id : ids) {
    if (id < 0 || id >= tok.vocab_size()) std::abort();  // encode gave an id decode refuses
  }
}

void exercise(const nd::Tokenizer& tok, std::string_view input) {
  // A loaded tokenizer is exactly what it was read from.
  if (tok.serialize() != input) std::abort();
  const int64_t vocab = tok.vocab_size();
  if (vocab < nd::Tokenizer::kSpecialTokens) std::abort();
  const bool is_char = tok.kind() == "char";
  for (const char* text : kTexts) {
    const std::vector<int64_t> ids = tok.encode(text);
    check_ids(tok, ids);
    const std::string back = tok.decode(ids);
    if (is_char) {
      // One id per code point, and back: the same count (unknown ones come back as U+FFFD).
      if (ids.size() != nd::decode_utf8(text, "text").size()) std::abort();
      if (nd::decode_utf8(back, "decoded").size() != ids.size()) std::abort();
    }
  }
  // Invalid UTF-8 is refused with a ValueError (caught by the caller), never passed on.
  try {
    (void)tok.encode("ok \xc0\xaf");
    std::abort();
  } catch (const neutrino::ValueError&) {
  }
  // The char vocabulary's own characters round-trip exactly.
  if (is_char) {
    std::vector<int64_t> ids;
    for (int64_t id = nd::Tokenizer::kSpecialTokens; id < vocab && ids.size() < 64; ++id) {
      ids.push_back(id);
    }
    if (tok.encode(tok.decode(ids)) != ids) std::abort();
  }
  // Id lists from the input bytes, some of them outside [0, vocab): those must be refused.
  for (size_t start = 0; start + 2 <= input.size() && start < 64; start += 16) {
    std::vector<int64_t> ids;
    bool in_range = true;
    for (size_t i = start; i + 2 <= input.size() && ids.size() < 8; i += 2) {
      const auto raw = static_cast<uint16_t>(static_cast<uint8_t>(input[i]) |
                                             static_cast<uint8_t>(input[i + 1]) << 8);
      const int64_t id = static_cast<int64_t>(raw % static_cast<uint64_t>(vocab + 2)) - 1;
      in_range = in_range && id >= 0 && id < vocab;
      ids.push_back(id);
    }
    if (in_range) {
      (void)tok.decode(ids);
      continue;
    }
    try {
      (void)tok.decode(ids);
      std::abort();  // an id outside the vocabulary was accepted
    } catch (const neutrino::ValueError&) {
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::unique_ptr<nd::Tokenizer> tok;
  try {
    tok = nd::load_tokenizer(input, "fuzz");
  } catch (const neutrino::InternalError&) {
    std::abort();  // our own invariant broke: a bug, whatever the input
  } catch (const neutrino::Error&) {
    return 0;  // refusing the input is the expected outcome for most fuzzed files
  }
  // Outside the try: what loaded must work, so an exception here is a finding too.
  exercise(*tok, input);
  return 0;
}
