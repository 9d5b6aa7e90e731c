#include "neutrino/data/utf8.h"

#include <cstdint>

#include "neutrino/core/error.h"

namespace neutrino::data {

namespace {

// One decoded sequence: the code point and its length in bytes, or the reason it is invalid.
struct Step {
  char32_t code_point = 0;
  size_t length = 0;
  const char* error = nullptr;
};

bool is_continuation(uint8_t b) { return (b & 0xC0) == 0x80; }

// Decodes the sequence starting at text[at]. The lead byte fixes the length and the smallest
// code point that length may carry (anything smaller is an overlong form of a shorter one).
Step decode_one(std::string_view text, size_t at) {
  const auto lead = static_cast<uint8_t>(text[at]);
  if (lead < 0x80) return {lead, 1, nullptr};
  size_t length = 0;
  char32_t value = 0, minimum = 0;
  if ((lead & 0xE0) == 0xC0) {
    length = 2, value = lead & 0x1F, minimum = 0x80;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3, value = lead & 0x0F, minimum = 0x800;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4, value = lead & 0x07, minimum = 0x10000;
  } else {
    return {0, 0, is_continuation(lead) ? "unexpected continuation byte" : "invalid lead byte"};
  }
  for (size_t i = 1; i < length; ++i) {
    if (at + i >= text.size()) return {0, 0, "sequence cut off by the end of the text"};
    const auto b = static_cast<uint8_t>(text[at + i]);
    if (!is_continuation(b)) return {0, 0, "sequence cut short (missing continuation byte)"};
    value = (value << 6) | (b & 0x3F);
  }
  if (value < minimum) return {0, 0, "overlong encoding"};
  if (value >= 0xD800 && value <= 0xDFFF) return {0, 0, "surrogate code point"};
  if (value > 0x10FFFF) return {0, 0, "code point above U+10FFFF"};
  return {value, length, nullptr};
}

[[noreturn]] void throw_invalid(std::string_view what, const Utf8Error& e) {
  throw ValueError(fmt::format("{}: invalid UTF-8 at byte {} ({})", what, e.offset, e.reason));
}

}  // namespace

std::optional<Utf8Error> find_invalid_utf8(std::string_view text) {
  size_t at = 0;
  while (at < text.size()) {
    // ASCII runs are the common case and need no decoding.
    if (static_cast<uint8_t>(text[at]) < 0x80) {
      ++at;
      continue;
    }
    const Step step = decode_one(text, at);
    if (step.error != nullptr) return Utf8Error{at, step.error};
    at += step.length;
  }
  return std::nullopt;
}

void check_utf8(std::string_view text, std::string_view what) {
  if (auto e = find_invalid_utf8(text)) throw_invalid(what, *e);
}

std::vector<char32_t> decode_utf8(std::string_view text, std::string_view what) {
  std::vector<char32_t> out;
  out.reserve(text.size());
  size_t at = 0;
  while (at < text.size()) {
    const Step step = decode_one(text, at);
    if (step.error != nullptr) throw_invalid(what, {at, step.error});
    out.push_back(step.code_point);
    at += step.length;
  }
  return out;
}

void append_utf8(char32_t c, std::string& out) {
  NEUTRINO_CHECK_VALUE(is_scalar_value(c),
                       "U+{:04X} is not a Unicode scalar value and has no UTF-8 form",
                       static_cast<uint32_t>(c));
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

std::string encode_utf8(const std::vector<char32_t>& code_points) {
  std::string out;
  out.reserve(code_points.size());
  for (char32_t c : code_points) append_utf8(c, out);
  return out;
}

}  // namespace neutrino::data
