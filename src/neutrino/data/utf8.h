// Strict UTF-8: validation, decoding to code points and encoding back, as RFC 3629 defines it.
//
// Text enters the tokenizers through here, so what counts as text is decided in one place:
// overlong forms, UTF-16 surrogates (U+D800..U+DFFF), code points above U+10FFFF and sequences cut
// short are all refused, with the byte offset of the sequence that starts the trouble. Nothing is
// replaced by U+FFFD on the way in: a tokenizer that silently rewrote bytes would not round-trip.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace neutrino::data {

// Where and why `text` stops being UTF-8.
struct Utf8Error {
  size_t offset;       // byte offset of the first byte of the bad sequence
  const char* reason;  // "overlong encoding", "surrogate", ...
};

// The first invalid sequence in `text`, or nullopt when all of it is valid UTF-8.
std::optional<Utf8Error> find_invalid_utf8(std::string_view text);

// Throws ValueError "WHAT: invalid UTF-8 at byte OFFSET (REASON)" unless `text` is valid UTF-8.
void check_utf8(std::string_view text, std::string_view what);

// The code points of `text`; the same ValueError as check_utf8 on invalid input.
std::vector<char32_t> decode_utf8(std::string_view text, std::string_view what);

// A Unicode scalar value: at most U+10FFFF and not a surrogate. Only these have a UTF-8 form.
constexpr bool is_scalar_value(char32_t c) { return c <= 0x10FFFF && (c < 0xD800 || c > 0xDFFF); }

// Appends the UTF-8 bytes of `c`; ValueError unless is_scalar_value(c).
void append_utf8(char32_t c, std::string& out);

// The UTF-8 bytes of `code_points`; ValueError on a value that is not a scalar value.
std::string encode_utf8(const std::vector<char32_t>& code_points);

}  // namespace neutrino::data
