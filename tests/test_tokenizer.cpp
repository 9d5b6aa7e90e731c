// Tokenizers (issue 12): strict UTF-8, the char tokenizer, SentencePiece BPE/unigram against
// Debian's spm_encode, serialized tokenizers refused when damaged or hostile, and
// `neutrino tokenize` end to end.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "neutrino/core/error.h"
#include "neutrino/core/random.h"
#include "neutrino/data/text_records.h"
#include "neutrino/data/token_shards.h"
#include "neutrino/data/tokenizer.h"
#include "neutrino/data/utf8.h"
#include "test_util.h"

namespace fs = std::filesystem;
using namespace neutrino;
using namespace neutrino::data;
using neutrino::testing::expect_error;

namespace {

// Debian's fortunes-zh: Tang poems, with ANSI colour escapes around titles and authors.
const char* kTang300 = "/usr/share/games/fortunes/tang300";

const std::vector<std::string> kEmoji = {"😀 grinning, 👍🏽 thumbs up with a skin tone",
                                         "family: 👨‍👩‍👧‍👦 (a ZWJ sequence)",
                                         "flags 🇨🇳🇩🇪 and a crab 🦀",
                                         "mixed 中文 and English, ünïcödé, ☃ and 𝄞"};

std::vector<std::string> tang_records() {
  if (!fs::exists(kTang300)) return {};
  return read_text_records(kTang300);
}

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

void expect_round_trip(const Tokenizer& tokenizer, const std::vector<std::string>& texts) {
  for (const std::string& text : texts) {
    EXPECT_EQ(tokenizer.decode(tokenizer.encode(text)), text) << tokenizer.kind();
  }
}

// A small English corpus that every SentencePiece test can train on in well under a second.
std::vector<std::string> english_corpus() {
  std::vector<std::string> out;
  const std::vector<std::string> words = {"the",   "quick", "brown", "fox",       "jumps",
                                          "over",  "lazy",  "dog",   "tokenizer", "neutrino",
                                          "model", "train", "data",  "text"};
  Generator g(7);
  for (int i = 0; i < 300; ++i) {
    std::string line;
    for (int w = 0; w < 8; ++w) line += (w ? " " : "") + words[g.below(words.size())];
    out.push_back(line);
  }
  return out;
}

}  // namespace

TEST(Utf8, DecodesAndEncodesEveryLength) {
  const std::string text = "a\u00e9\u4e2d\U0001F600";
  const std::vector<char32_t> expected = {U'a', 0xE9, 0x4E2D, 0x1F600};
  EXPECT_EQ(decode_utf8(text, "t"), expected);
  EXPECT_EQ(encode_utf8(expected), text);
  EXPECT_EQ(encode_utf8({0x7F, 0x80, 0x7FF, 0x800, 0xFFFF, 0x10000, 0x10FFFF}),
            "\x7F\xC2\x80\xDF\xBF\xE0\xA0\x80\xEF\xBF\xBF\xF0\x90\x80\x80\xF4\x8F\xBF\xBF");
  EXPECT_FALSE(find_invalid_utf8(text).has_value());
}

TEST(Utf8, RefusesInvalidSequencesNamingTheOffset) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"ab\xC0\xAF", "overlong"},
      {"ab\xE0\x80\x80", "overlong"},
      {"ab\xF0\x80\x80\x80", "overlong"},
      {"ab\xED\xA0\x80", "surrogate"},
      {"ab\xF4\x90\x80\x80", "above U+10FFFF"},
      {"ab\xE4\xB8", "end of the text"},
      {"ab\xE4xy", "continuation"},
      {"ab\x80", "continuation"},
      {"ab\xFF", "invalid lead byte"}};
  for (const auto& [text, reason] : cases) {
    const auto bad = find_invalid_utf8(text);
    ASSERT_TRUE(bad.has_value()) << reason;
    EXPECT_EQ(bad->offset, 2u) << reason;
    expect_error<ValueError>([&] { decode_utf8(text, "notes.txt"); },
                             {"notes.txt", "invalid UTF-8 at byte 2", reason});
  }
  std::string out;
  expect_error<ValueError>([&] { append_utf8(0xD800, out); }, {"U+D800"});
  expect_error<ValueError>([&] { append_utf8(0x110000, out); }, {"U+110000"});
}

TEST(TextRecords, FortuneRecordsLoseTheirColourEscapes) {
  const std::string text = "\x1b[32mTitle\x1b[m\nline one\n%\n\n%\r\nsecond\x1b[1;33m!\x1b[0m\n%\n";
  EXPECT_EQ(split_fortune_records(strip_ansi_escapes(text)),
            (std::vector<std::string>{"Title\nline one", "second!"}));
  EXPECT_EQ(split_line_records("a\r\n\n  \nb"), (std::vector<std::string>{"a", "b"}));
  // Incomplete sequences are not escapes: their bytes stay.
  EXPECT_EQ(strip_ansi_escapes("keep \x1b alone, \x1b[1;2\x01 and \x1b[12"),
            "keep \x1b alone, \x1b[1;2\x01 and \x1b[12");
  EXPECT_EQ(strip_ansi_escapes("a\x1b[2Jb\x1b[38;5;196mc"), "abc");
}

TEST(CharTokenizer, VocabularyIsTheSortedCodePoints) {
  auto tok = train_char_tokenizer({"ba", "\u4e2da", "b"});
  EXPECT_EQ(tok->kind(), "char");
  EXPECT_EQ(tok->vocab_size(), 7);
  EXPECT_EQ(tok->encode("ab\u4e2dz"), (std::vector<int64_t>{4, 5, 6, Tokenizer::kUnk}));
  EXPECT_EQ(tok->decode({Tokenizer::kBos, 4, Tokenizer::kPad, 6, Tokenizer::kEos}), "a\u4e2d");
  EXPECT_EQ(tok->decode({Tokenizer::kUnk}), "\uFFFD");
  expect_error<ValueError>([&] { tok->decode({4, 7}); }, {"ids[1] = 7", "[0, 7)"});
  expect_error<ValueError>([&] { tok->decode({-1}); }, {"ids[0] = -1"});
  expect_error<ValueError>([&] { tok->encode("ok\xE4"); }, {"invalid UTF-8 at byte 2"});
}

TEST(CharTokenizer, MaxVocabKeepsTheMostFrequent) {
  auto tok = train_char_tokenizer({"aaab", "cccb", "d"}, {.max_vocab = 6});
  EXPECT_EQ(tok->vocab_size(), 6);
  EXPECT_EQ(tok->encode("abcd"), (std::vector<int64_t>{4, Tokenizer::kUnk, 5, Tokenizer::kUnk}));
  expect_error<ValueError>([] { train_char_tokenizer({"a"}, {.max_vocab = 4}); }, {"max_vocab"});
}

TEST(CharTokenizer, ChineseAndEmojiRoundTripExactly) {
  std::vector<std::string> texts = tang_records();
  if (texts.empty()) GTEST_SKIP() << kTang300 << " is missing (Debian package fortunes-zh)";
  texts.insert(texts.end(), kEmoji.begin(), kEmoji.end());
  auto tok = train_char_tokenizer(texts);
  expect_round_trip(*tok, texts);
  auto loaded = load_tokenizer(tok->serialize(), "tok");
  EXPECT_EQ(loaded->vocab_size(), tok->vocab_size());
  for (const auto& text : kEmoji) EXPECT_EQ(loaded->encode(text), tok->encode(text));
}

TEST(CharTokenizer, RefusesAnEmptyCorpusAndInvalidText) {
  expect_error<ValueError>([] { train_char_tokenizer({}); }, {"corpus is empty"});
  expect_error<ValueError>([] { train_char_tokenizer({"", ""}); }, {"corpus is empty"});
  expect_error<ValueError>(
      [] {
        train_char_tokenizer({"fine", "ok", "x\xED\xA0\x80"});
      },
      {"record 2", "byte 1", "surrogate"});
}

TEST(SentencePiece, BpeAndUnigramRoundTripChineseAndEmoji) {
  std::vector<std::string> texts = tang_records();
  if (texts.empty()) GTEST_SKIP() << kTang300 << " is missing (Debian package fortunes-zh)";
  const std::vector<std::string> english = english_corpus();
  texts.insert(texts.end(), english.begin(), english.end());
  // Never seen in training: byte fallback carries them.
  const std::vector<std::string> unseen = {"  two leading spaces, three   inside, one after ",
                                           "tab\there", "\u00fcber \u0416\u0443\u043a \u263a"};
  for (const std::string model_type : {"bpe", "unigram"}) {
    auto tok = train_sentencepiece(texts, {.model_type = model_type, .vocab_size = 3200});
    EXPECT_EQ(tok->kind(), model_type);
    EXPECT_EQ(tok->vocab_size(), 3200);
    expect_round_trip(*tok, texts);
    expect_round_trip(*tok, kEmoji);
    expect_round_trip(*tok, unseen);
    const std::vector<int64_t> ids = tok->encode(kEmoji[0]);
    std::vector<int64_t> framed = {Tokenizer::kBos};
    framed.insert(framed.end(), ids.begin(), ids.end());
    framed.insert(framed.end(), {Tokenizer::kEos, Tokenizer::kPad});
    EXPECT_EQ(tok->decode(framed), kEmoji[0]);
    expect_error<ValueError>([&] { tok->decode({3200}); }, {"ids[0] = 3200"});

    auto loaded = load_tokenizer(tok->serialize(), "model.safetensors: tokenizer");
    EXPECT_EQ(loaded->kind(), model_type);
    for (const auto& text : kEmoji) EXPECT_EQ(loaded->encode(text), tok->encode(text));
  }
}

TEST(SentencePiece, MatchesDebiansSpmEncode) {
  if (neutrino::testing::run_shell("command -v spm_encode").code != 0) {
    GTEST_SKIP() << "spm_encode is missing (Debian package sentencepiece)";
  }
  const fs::path dir = neutrino::testing::fresh_temp_dir("spm_encode");
  std::vector<std::string> texts = english_corpus();
  const std::vector<std::string> tang = tang_records();
  texts.insert(texts.end(), tang.begin(), tang.end());
  texts.insert(texts.end(), kEmoji.begin(), kEmoji.end());
  // spm_encode reads lines, so the compared texts are single lines.
  std::vector<std::string> lines = {"the lazy neutrino jumps over the tokenizer",
                                    "unseen words: zebra qwerty"};
  for (const auto& t : texts) {
    for (const auto& line : split_line_records(t)) lines.push_back(line);
  }
  std::string input;
  for (const auto& line : lines) input += line + "\n";
  write(dir / "input.txt", input);
  for (const std::string model_type : {"bpe", "unigram"}) {
    auto tok = train_sentencepiece(texts, {.model_type = model_type, .vocab_size = 3000});
    write(dir / "m.model", sentencepiece_model_proto(*tok));
    const auto result =
        neutrino::testing::run_shell("spm_encode --model=" + (dir / "m.model").string() +
                                     " --output_format=id < " + (dir / "input.txt").string());
    ASSERT_EQ(result.code, 0) << result.output;
    std::istringstream out(result.output);
    std::string line;
    for (const auto& text : lines) {
      ASSERT_TRUE(std::getline(out, line));
      std::string ours;
      for (int64_t id : tok->encode(text)) {
        if (!ours.empty()) ours += ' ';
        ours += std::to_string(id);
      }
      EXPECT_EQ(ours, line) << model_type << ": " << text;
    }
  }
  fs::remove_all(dir);
}

TEST(SentencePiece, RefusesBadCorporaAndOptionsBeforeTraining) {
  const std::vector<std::string> english = english_corpus();
  expect_error<ValueError>([] { train_sentencepiece({}, {}); }, {"corpus is empty"});
  expect_error<ValueError>([] { train_sentencepiece({"", ""}, {}); }, {"corpus is empty"});
  expect_error<ValueError>(
      [] {
        train_sentencepiece({"good", "fine", "bad \xC0\xAF"}, {});
      },
      {"record 2", "invalid UTF-8 at byte 4", "overlong"});
  expect_error<ValueError>([] { train_sentencepiece({std::string("a\0b", 3)}, {}); },
                           {"record 0", "NUL"});
  expect_error<ValueError>(
      [] { train_sentencepiece({std::string(100, 'a')}, {.max_sentence_length = 50}); },
      {"record 0", "100 bytes", "max_sentence_length 50"});
  // SentencePiece 0.1.97's BPE trainer segfaults on a word of ~32k characters.
  expect_error<ValueError>(
      [] {
        train_sentencepiece({"ok", "a " + std::string(40000, 'x')}, {.max_sentence_length = 65535});
      },
      {"record 1", "word of 40000 characters"});
  expect_error<ValueError>([&] { train_sentencepiece(english, {.model_type = "word"}); },
                           {"model_type"});
  expect_error<ValueError>([&] { train_sentencepiece(english, {.vocab_size = int64_t{1} << 40}); },
                           {"vocab_size"});
  expect_error<ValueError>([&] { train_sentencepiece(english, {.character_coverage = 0.5}); },
                           {"character_coverage must be from 0.98 to 1"});
  // Longer records could hold a word that aborts SentencePiece's BPE trainer.
  expect_error<ValueError>([&] { train_sentencepiece(english, {.max_sentence_length = 65536}); },
                           {"max_sentence_length must be from 1 to 65535"});
  expect_error<ValueError>([&] { train_sentencepiece(english, {.seed = 0xFFFFFFFFull}); },
                           {"seed"});
}

TEST(SentencePiece, VocabSizeOutsideWhatTheCorpusAllowsNamesTheBound) {
  const std::vector<std::string> english = english_corpus();
  for (const std::string model_type : {"bpe", "unigram"}) {
    expect_error<ValueError>(
        [&] { train_sentencepiece(english, {.model_type = model_type, .vocab_size = 50000}); },
        {"vocab_size 50000", "at most"});
  }
  expect_error<ValueError>([&] { train_sentencepiece(english, {.vocab_size = 100}); },
                           {"vocab_size 100 is too small", "at least"});
}

// Protobuf wire-format pieces, for hand-made hostile models.
namespace {
std::string varint(uint64_t v) {
  std::string out;
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7F) | 0x80);
    v >>= 7;
  }
  return out + static_cast<char>(v);
}
std::string bytes_field(uint32_t number, const std::string& value) {
  return varint(uint64_t{number} << 3 | 2) + varint(value.size()) + value;
}
std::string varint_field(uint32_t number, uint64_t value) {
  return varint(uint64_t{number} << 3) + varint(value);
}
std::string piece(const std::string& text, uint64_t type) {
  return bytes_field(1, bytes_field(1, text) + varint_field(3, type));
}
// A well-formed model but for `extra`, in ModelProto field order.
std::string model_with(const std::string& extra) {
  return piece("<pad>", 3) + piece("<unk>", 2) + piece("<s>", 3) + piece("</s>", 3) + extra +
         bytes_field(2, varint_field(3, 2));
}
std::string envelope(const std::string& kind, const std::string& payload) {
  std::string out = "NTKN";
  const auto u32 = [&](uint32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); };
  u32(1);
  u32(static_cast<uint32_t>(kind.size()));
  out += kind;
  const uint64_t n = payload.size();
  out.append(reinterpret_cast<const char*>(&n), 8);
  return out + payload;
}
}  // namespace

TEST(LoadTokenizer, RefusesDamagedCharTokenizers) {
  const std::string good = train_char_tokenizer({"abc"})->serialize();
  for (size_t n = 0; n < good.size(); ++n) {
    expect_error<ValueError>([&] { load_tokenizer(good.substr(0, n), "m.safetensors: tokenizer"); },
                             {"m.safetensors: tokenizer"});
  }
  expect_error<ValueError>([&] { load_tokenizer(good + "x", "t"); }, {"payload declares"});
  expect_error<ValueError>([&] { load_tokenizer("XTKN" + good.substr(4), "t"); }, {"NTKN magic"});
  const auto char_payload = [](std::vector<uint32_t> cps) {
    std::string p;
    const auto count = static_cast<uint32_t>(cps.size());
    p.append(reinterpret_cast<const char*>(&count), 4);
    for (uint32_t c : cps) p.append(reinterpret_cast<const char*>(&c), 4);
    return p;
  };
  expect_error<ValueError>(
      [&] {
        load_tokenizer(envelope("char", char_payload({97, 97})), "t");
      },
      {"duplicate"});
  expect_error<ValueError>(
      [&] {
        load_tokenizer(envelope("char", char_payload({98, 97})), "t");
      },
      {"out of order"});
  expect_error<ValueError>([&] { load_tokenizer(envelope("char", char_payload({0xD800})), "t"); },
                           {"U+D800", "not a Unicode scalar value"});
  expect_error<ValueError>([&] { load_tokenizer(envelope("char", char_payload({0x110000})), "t"); },
                           {"U+110000"});
  expect_error<ValueError>([&] { load_tokenizer(envelope("char", char_payload({})), "t"); },
                           {"0 code points"});
  expect_error<ValueError>([&] { load_tokenizer(envelope("word", "x"), "t"); },
                           {"unknown tokenizer kind 'word'"});
  std::string huge_count = char_payload({97});
  huge_count[3] = '\x7f';
  expect_error<ValueError>([&] { load_tokenizer(envelope("char", huge_count), "t"); }, {"t:"});
}

TEST(LoadTokenizer, RefusesDamagedAndHostileSentencePieceModels) {
  auto tok = train_sentencepiece(english_corpus(), {.vocab_size = 300});
  const std::string good = tok->serialize();
  const std::string proto = sentencepiece_model_proto(*tok);
  for (size_t n :
       {size_t{0}, size_t{3}, size_t{10}, size_t{20}, good.size() / 2, good.size() - 1}) {
    expect_error<ValueError>([&] { load_tokenizer(good.substr(0, n), "m: tokenizer"); },
                             {"m: tokenizer"});
  }
  expect_error<ValueError>([&] { load_tokenizer(envelope("unigram", proto), "m"); },
                           {"tagged as a unigram", "bpe"});
  expect_error<ValueError>([&] { load_tokenizer(envelope("bpe", "\xff\xff\xff garbage"), "m"); },
                           {"m:"});
  expect_error<ValueError>([&] { load_tokenizer(envelope("bpe", ""), "m"); },
                           {"m:", "fewer than the 4"});
  // What would crash libsentencepiece is refused before it sees the model.
  expect_error<ValueError>(
      [&] { load_sentencepiece_model(model_with(piece(std::string(200000, 'a'), 1)), "m"); },
      {"piece 4 is 200000 bytes"});
  expect_error<ValueError>(
      [&] { load_sentencepiece_model(model_with(piece(std::string("a\0", 2), 1)), "m"); },
      {"piece 4", "NUL"});
  expect_error<ValueError>(
      [&] { load_sentencepiece_model(model_with(bytes_field(1, varint_field(3, 1))), "m"); },
      {"piece 4 has no text"});
  expect_error<ValueError>(
      [&] { load_sentencepiece_model(model_with(bytes_field(3, bytes_field(2, "trie"))), "m"); },
      {"precompiled charsmap"});
  expect_error<ValueError>(
      [&] {
        load_sentencepiece_model(piece("<unk>", 2) + piece("<pad>", 3) + piece("<s>", 3) +
                                     piece("</s>", 3) + piece("a", 1),
                                 "m");
      },
      {"piece 0 must be <pad>"});
  // Single-byte damage anywhere: refused or loaded, never a crash.
  Generator g(3);
  for (int i = 0; i < 300; ++i) {
    std::string damaged = proto;
    damaged[g.below(damaged.size())] = static_cast<char>(g.below(256));
    try {
      auto loaded = load_tokenizer(envelope("bpe", damaged), "m");
      loaded->decode(loaded->encode("the quick fox"));
    } catch (const ValueError&) {
    }
  }
}

TEST(TokenizeCli, TrainsWritesTheTokenizerAndTheShard) {
  const fs::path dir = neutrino::testing::fresh_temp_dir("tokenize_cli");
  std::string fortunes;
  for (int i = 0; i < 40; ++i) {
    fortunes += "\x1b[32mFortune " + std::to_string(i) +
                "\x1b[m\nthe lazy dog naps, \u4e2d\u6587 \U0001F600\n%\n";
  }
  write(dir / "fortunes", fortunes);
  std::string lines;
  for (const auto& line : english_corpus()) lines += line + "\n";
  write(dir / "lines.txt", lines);
  const std::string files = (dir / "fortunes").string() + " " + (dir / "lines.txt").string();
  for (const std::string kind : {"char", "bpe"}) {
    const fs::path tok_path = dir / (kind + ".tok"), shard_path = dir / (kind + ".shard");
    const auto run = neutrino::testing::run_cli(
        "tokenize " + files + " --kind " + kind + (kind == "bpe" ? " --vocab-size 320" : "") +
        " -o " + tok_path.string() + " --shards " + shard_path.string());
    ASSERT_EQ(run.code, 0) << run.output;
    EXPECT_NE(run.output.find("records: 340"), std::string::npos) << run.output;
    auto tok = load_tokenizer(slurp(tok_path), tok_path.string());
    EXPECT_EQ(tok->kind(), kind);
    EXPECT_NE(run.output.find(fmt::format("vocab size: {}", tok->vocab_size())), std::string::npos);
    TokenShard shard(shard_path.string());
    EXPECT_EQ(shard.vocab_size(), tok->vocab_size());
    EXPECT_NE(run.output.find(fmt::format("tokens: {}", shard.size())), std::string::npos)
        << run.output;
    // The shard's first record, up to the first <eos>, is the first fortune without its escapes.
    std::vector<int64_t> first;
    for (int64_t i = 0; shard.at(i) != Tokenizer::kEos; ++i) first.push_back(shard.at(i));
    EXPECT_EQ(tok->decode(first), "Fortune 0\nthe lazy dog naps, \u4e2d\u6587 \U0001F600");
  }
  fs::remove_all(dir);
}

TEST(TokenizeCli, BadInputIsOneLineAndExitOne) {
  const fs::path dir = neutrino::testing::fresh_temp_dir("tokenize_cli_bad");
  write(dir / "bad.txt", "fine\nnot \xF4\x90\x80\x80 fine\n");
  write(dir / "empty.txt", "\n\n");
  std::string lines;
  for (const auto& line : english_corpus()) lines += line + "\n";
  write(dir / "ok.txt", lines);
  const std::string out = " -o " + (dir / "t.tok").string();
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {(dir / "bad.txt").string() + out, {"bad.txt", "invalid UTF-8 at byte 9 (line 2)"}},
      {(dir / "empty.txt").string() + out, {"corpus is empty", "empty.txt"}},
      {(dir / "missing.txt").string() + out, {"missing.txt"}},
      {(dir / "ok.txt").string() + " --vocab-size 90000" + out, {"vocab_size 90000", "at most"}},
      {(dir / "ok.txt").string() + " --max-sentence-length 10" + out,
       {"ok.txt: record 0", "max_sentence_length 10"}},
      {(dir / "ok.txt").string() + " -o " + (dir / "no" / "such" / "t.tok").string(), {"t.tok"}},
  };
  for (const auto& [args, parts] : cases) {
    const auto run = neutrino::testing::run_cli("tokenize " + args);
    EXPECT_EQ(run.code, 1) << args << "\n" << run.output;
    EXPECT_EQ(std::count(run.output.begin(), run.output.end(), '\n'), 1) << run.output;
    for (const auto& part : parts)
      EXPECT_NE(run.output.find(part), std::string::npos) << part << " in " << run.output;
  }
  EXPECT_FALSE(fs::exists(dir / "t.tok"));
  fs::remove_all(dir);
}
