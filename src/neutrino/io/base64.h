// Base64 (RFC 4648, with padding), for binary blobs inside JSON metadata (a tokenizer in a model
// file's preprocessing).
#pragma once

#include <string>
#include <string_view>

namespace neutrino::io {

std::string base64_encode(std::string_view bytes);
// ValueError naming `what` on a character outside the alphabet, bad padding or a bad length.
std::string base64_decode(std::string_view text, const std::string& what);

}  // namespace neutrino::io
