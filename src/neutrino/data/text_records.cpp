#include "neutrino/data/text_records.h"

#include <algorithm>

#include "neutrino/core/error.h"
#include "neutrino/data/utf8.h"
#include "neutrino/io/file_io.h"

namespace neutrino::data {

namespace {

bool is_blank(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return c == ' ' || (c >= '\t' && c <= '\r'); });
}

std::string_view without_cr(std::string_view line) {
  return !line.empty() && line.back() == '\r' ? line.substr(0, line.size() - 1) : line;
}

// Calls fn(line) for every line of `text`, without its '\n'.
template <class Fn>
void for_each_line(std::string_view text, Fn fn) {
  size_t at = 0;
  while (at < text.size()) {
    size_t end = text.find('\n', at);
    if (end == std::string_view::npos) end = text.size();
    fn(text.substr(at, end - at));
    at = end + 1;
  }
}

bool has_percent_line(std::string_view text) {
  bool found = false;
  for_each_line(text, [&](std::string_view line) { found = found || without_cr(line) == "%"; });
  return found;
}

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

TextFormat parse_text_format(const std::string& name) {
  if (name == "auto") return TextFormat::kAuto;
  if (name == "fortune") return TextFormat::kFortune;
  if (name == "lines") return TextFormat::kLines;
  throw ValueError(fmt::format("unknown text format '{}' (known: auto, fortune, lines)", name));
}

std::string strip_ansi_escapes(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t at = 0;
  while (at < text.size()) {
    if (text[at] != '\x1b' || at + 1 >= text.size() || text[at + 1] != '[') {
      out += text[at++];
      continue;
    }
    // ECMA-48 CSI: parameter bytes 0x30-0x3F, intermediate bytes 0x20-0x2F, one final byte
    // 0x40-0x7E.
    size_t end = at + 2;
    while (end < text.size() && text[end] >= 0x30 && text[end] <= 0x3F) ++end;
    while (end < text.size() && text[end] >= 0x20 && text[end] <= 0x2F) ++end;
    if (end < text.size() && text[end] >= 0x40 && text[end] <= 0x7E) {
      at = end + 1;
    } else {
      out += text[at++];  // not a complete sequence: keep the bytes as they are
    }
  }
  return out;
}

std::vector<std::string> split_fortune_records(std::string_view text) {
  std::vector<std::string> records;
  std::string current;
  auto finish = [&] {
    if (!current.empty() && current.back() == '\n') current.pop_back();
    if (!is_blank(current)) records.push_back(current);
    current.clear();
  };
  for_each_line(text, [&](std::string_view line) {
    if (without_cr(line) == "%") {
      finish();
      return;
    }
    current.append(line);
    current += '\n';
  });
  finish();
  return records;
}

std::vector<std::string> split_line_records(std::string_view text) {
  std::vector<std::string> records;
  for_each_line(text, [&](std::string_view line) {
    line = without_cr(line);
    if (!is_blank(line)) records.emplace_back(line);
  });
  return records;
}

std::vector<std::string> read_text_records(const std::string& path, TextFormat format) {
  const std::vector<uint8_t> bytes = io::read_file(path);
  const std::string_view raw(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  // Checked before the escapes go, so that the offset is the file's own.
  if (auto bad = find_invalid_utf8(raw)) {
    const auto line =
        1 + std::count(raw.begin(), raw.begin() + static_cast<std::ptrdiff_t>(bad->offset), '\n');
    throw ValueError(fmt::format("{}: invalid UTF-8 at byte {} (line {}): {}", path, bad->offset,
                                 line, bad->reason));
  }
  const std::string text = strip_ansi_escapes(raw);
  if (format == TextFormat::kAuto) {
    format = !ends_with(path, ".txt") && has_percent_line(text) ? TextFormat::kFortune
                                                                : TextFormat::kLines;
  }
  return format == TextFormat::kFortune ? split_fortune_records(text) : split_line_records(text);
}

}  // namespace neutrino::data
