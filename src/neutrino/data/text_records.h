// Records of text files for the tokenizers and text datasets: a fortune file's records are the
// texts between lines holding only `%`; any other file is one record per line.
//
// ANSI colour escapes (fortunes-zh colours its titles and authors with ESC [ ... m) are removed,
// since they are terminal markup, not text a model should learn. Every file must be valid UTF-8;
// an error names the file, the byte offset and the line.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace neutrino::data {

enum class TextFormat {
  kAuto,     // a `.txt` file is lines; otherwise a file with a `%` line is a fortune file
  kFortune,  // records between `%` lines; a record's lines keep their '\n' between them
  kLines,    // one record per line
};

// "auto", "fortune" or "lines"; ValueError naming the choices otherwise.
TextFormat parse_text_format(const std::string& name);

// `text` without its ANSI CSI escape sequences (ESC [ parameters intermediates final-byte), which
// include the SGR colour codes ESC [ ... m. A lone ESC not followed by '[' is kept.
std::string strip_ansi_escapes(std::string_view text);

// Records between lines holding only `%` (a trailing '\r' allowed). A record keeps its inner
// newlines, loses its final one, and is dropped when it is only whitespace.
std::vector<std::string> split_fortune_records(std::string_view text);

// One record per line, without the '\n' (or "\r\n"); lines of only whitespace are dropped.
std::vector<std::string> split_line_records(std::string_view text);

// The records of the regular file at `path`, escapes stripped. IOError naming `path` when it
// cannot be read; ValueError "PATH: invalid UTF-8 at byte N (line L): REASON" on bad bytes.
std::vector<std::string> read_text_records(const std::string& path,
                                           TextFormat format = TextFormat::kAuto);

}  // namespace neutrino::data
