#include "neutrino/io/safetensors.h"
#include "neutrino/io/file_io.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string_view>
#include <system_error>
#include <tuple>
#include <utility>

#include "neutrino/core/error.h"

namespace neutrino::io {
namespace {

using Json = nlohmann::json;

// The reference reader's limit: a hostile length must not make us allocate or parse gigabytes.
constexpr uint64_t kMaxHeaderSize = 100'000'000;
// A valid header nests three deep (header, entry, shape). Refusing deeper JSON while parsing keeps
// a header made of millions of '[' from growing the parser's stack and the DOM without bound.
constexpr int kMaxJsonDepth = 8;
constexpr size_t kPrefixSize = 8;
constexpr std::string_view kMetadataKey = "__metadata__";
// Longest rendering of a bad JSON value quoted in an error message.
constexpr size_t kMaxQuotedValue = 60;

struct DtypeInfo {
  std::string_view name;
  size_t size;
};
constexpr DtypeInfo kDtypes[] = {
    {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"F8_E8M0", 1},
    {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},     {"U32", 4},
    {"F32", 4},  {"I64", 8}, {"U64", 8}, {"F64", 8},     {"C64", 8},
};

std::optional<size_t> find_dtype_size(std::string_view dtype) {
  for (const DtypeInfo& info : kDtypes) {
    if (info.name == dtype) return info.size;
  }
  return std::nullopt;
}


bool checked_mul(uint64_t a, uint64_t b, uint64_t* out) {
  if (b != 0 && a > std::numeric_limits<uint64_t>::max() / b) return false;
  *out = a * b;
  return true;
}

// Offset of the first byte that does not start a valid UTF-8 sequence, or `size` if all are valid.
size_t find_invalid_utf8(const uint8_t* s, size_t size) {
  size_t i = 0;
  while (i < size) {
    const uint8_t c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    uint32_t min;
    if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07, min = 0x10000;
    } else {
      return i;
    }
    if (size - i < len) return i;
    for (size_t k = 1; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    // Overlong forms, UTF-16 surrogates and code points past U+10FFFF are not UTF-8.
    if (cp < min || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return i;
    i += len;
  }
  return size;
}

bool is_utf8(const std::string& s) {
  return find_invalid_utf8(reinterpret_cast<const uint8_t*>(s.data()), s.size()) == s.size();
}

uint64_t load_le64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// A short rendering of a JSON value for error messages.
std::string quote(const Json& value) {
  std::string s = value.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (s.size() > kMaxQuotedValue) s = s.substr(0, kMaxQuotedValue - 3) + "...";
  return s;
}

// A non-negative JSON integer. nlohmann reads "-0" as a signed 0; it is taken as 0 rather than
// refused with a confusing "got 0".
std::optional<uint64_t> as_uint(const Json& value) {
  if (value.is_number_unsigned()) return value.get<uint64_t>();
  if (value.is_number_integer() && value.get<int64_t>() == 0) return 0;
  return std::nullopt;
}

// One header entry, checked on its own; the offsets are checked against each other later.
struct Entry {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0;
  uint64_t end = 0;
};

struct Header {
  std::vector<Entry> entries;  // sorted by data offset: the order of the data buffer
  std::map<std::string, std::string> metadata;
};

void check_file_size(uint64_t size, const std::string& source) {
  NEUTRINO_CHECK_IO(size >= kPrefixSize,
                    "{}: file is {} bytes, too short for safetensors (at least {} bytes)", source,
                    size, kPrefixSize);
}

// What a file is that starts with `prefix` (8 bytes) when it is a known other format, else empty.
// The usual mistake is a PyTorch or NumPy file where a .safetensors file belongs, and its first
// bytes read as a huge header length. Asked only once that length is impossible: a valid header
// length can start with any byte (0x80 0x02 is a 640-byte header, not a pickle).
std::string_view other_format(const uint8_t* prefix) {
  const auto starts = [&](std::string_view magic) {
    return std::memcmp(prefix, magic.data(), magic.size()) == 0;
  };
  if (starts("PK\x03\x04")) {
    return "a ZIP archive (a PyTorch .pt/.pth file written by torch.save, or a NumPy .npz)";
  }
  if (starts("\x93NUMPY")) return "a NumPy .npy file";
  if (starts("\x89HDF")) return "an HDF5 file (a Keras .h5 model?)";
  if (starts("\x1f\x8b")) return "a gzip file";
  if (prefix[0] == 0x80 && prefix[1] >= 2 && prefix[1] <= 5) {
    return "a Python pickle (a PyTorch .pt/.pth file from before torch 1.6, or a .pkl)";
  }
  return {};
}

// Reads the header length N from the 8-byte prefix and checks it against the file size before
// anything is allocated from it. 8 + N cannot overflow: N is at most kMaxHeaderSize.
uint64_t check_header_length(const uint8_t* prefix, uint64_t file_size, const std::string& source) {
  const uint64_t n = load_le64(prefix);
  if (n > kMaxHeaderSize || n > file_size - kPrefixSize) {
    const std::string_view format = other_format(prefix);
    NEUTRINO_CHECK_IO(format.empty(),
                      "{}: not a safetensors file: it is {}. PyTorch weights convert with "
                      "safetensors.torch.save_file(model.state_dict(), \"model.safetensors\")",
                      source, format);
  }
  NEUTRINO_CHECK_IO(n <= kMaxHeaderSize,
                    "{}: safetensors header length {} exceeds the limit of {} bytes", source, n,
                    kMaxHeaderSize);
  NEUTRINO_CHECK_IO(n <= file_size - kPrefixSize,
                    "{}: truncated: safetensors header length {} runs past the end of the file "
                    "({} bytes)",
                    source, n, file_size);
  return n;
}

Json parse_header_json(const uint8_t* text, size_t size, const std::string& source) {
  // The reference reader refuses leading whitespace; trailing spaces are the writers' padding.
  NEUTRINO_CHECK_IO(size > 0 && text[0] == '{', "{}: safetensors header must start with '{{'",
                    source);
  const size_t bad = find_invalid_utf8(text, size);
  NEUTRINO_CHECK_IO(bad == size, "{}: safetensors header is not valid UTF-8 (at header byte {})",
                    source, bad);
  // nlohmann silently keeps the last of duplicate keys. The keys seen in each open object are
  // tracked so that duplicates (tensor names, entry fields, metadata keys) are refused instead.
  std::vector<std::set<std::string>> open_objects;
  const auto callback = [&](int depth, Json::parse_event_t event, Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start:
      case Json::parse_event_t::array_start:
        NEUTRINO_CHECK_IO(depth < kMaxJsonDepth,
                          "{}: safetensors header nests deeper than {} levels", source,
                          kMaxJsonDepth);
        if (event == Json::parse_event_t::object_start) open_objects.emplace_back();
        break;
      case Json::parse_event_t::key: {
        const auto& key = parsed.get_ref<const std::string&>();
        NEUTRINO_CHECK_IO(open_objects.back().insert(key).second,
                          "{}: duplicate {} '{}' in the safetensors header", source,
                          open_objects.size() == 1 ? "tensor name" : "key", key);
        break;
      }
      case Json::parse_event_t::object_end:
        open_objects.pop_back();
        break;
      default:
        break;
    }
    return true;
  };
  try {
    return Json::parse(text, text + size, callback);
  } catch (const Json::exception& e) {
    throw IOError(fmt::format("{}: safetensors header is not valid JSON: {}", source, e.what()));
  }
}

std::map<std::string, std::string> parse_metadata(const Json& value, const std::string& source) {
  NEUTRINO_CHECK_IO(value.is_object(),
                    "{}: safetensors __metadata__ must be an object of strings, got {}", source,
                    quote(value));
  std::map<std::string, std::string> metadata;
  for (const auto& [key, v] : value.get_ref<const Json::object_t&>()) {
    NEUTRINO_CHECK_IO(v.is_string(), "{}: safetensors __metadata__ '{}' must be a string, got {}",
                      source, key, quote(v));
    metadata.emplace(key, v.get<std::string>());
  }
  return metadata;
}

Entry parse_entry(const std::string& name, const Json& value, const std::string& source) {
  NEUTRINO_CHECK_IO(value.is_object(), "{}: tensor '{}': entry must be an object, got {}", source,
                    name, quote(value));
  for (const auto& [key, unused] : value.get_ref<const Json::object_t&>()) {
    NEUTRINO_CHECK_IO(key == "dtype" || key == "shape" || key == "data_offsets",
                      "{}: tensor '{}': unknown key '{}'", source, name, key);
  }
  const auto field = [&](const char* key) -> const Json& {
    const auto it = value.find(key);
    NEUTRINO_CHECK_IO(it != value.end(), "{}: tensor '{}': missing '{}'", source, name, key);
    return *it;
  };
  Entry entry;
  entry.name = name;

  const Json& dtype = field("dtype");
  NEUTRINO_CHECK_IO(dtype.is_string(), "{}: tensor '{}': dtype must be a string, got {}", source,
                    name, quote(dtype));
  entry.dtype = dtype.get<std::string>();
  const std::optional<size_t> elem_size = find_dtype_size(entry.dtype);
  NEUTRINO_CHECK_IO(elem_size.has_value(), "{}: tensor '{}': unknown dtype '{}'", source, name,
                    entry.dtype);

  const Json& shape = field("shape");
  NEUTRINO_CHECK_IO(shape.is_array(), "{}: tensor '{}': shape must be an array, got {}", source,
                    name, quote(shape));
  uint64_t count = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    const std::optional<uint64_t> dim = as_uint(shape[i]);
    NEUTRINO_CHECK_IO(dim.has_value(),
                      "{}: tensor '{}': shape[{}] must be a non-negative integer, got {}", source,
                      name, i, quote(shape[i]));
    // Like the reference reader, the running product must not overflow even if a later
    // dimension is 0; this also keeps every dimension within int64.
    NEUTRINO_CHECK_IO(
        checked_mul(count, *dim, &count) && count <= uint64_t{std::numeric_limits<int64_t>::max()},
        "{}: tensor '{}': element count of shape {} overflows", source, name, quote(shape));
    entry.shape.push_back(static_cast<int64_t>(*dim));
  }
  uint64_t nbytes = 0;
  NEUTRINO_CHECK_IO(checked_mul(count, *elem_size, &nbytes),
                    "{}: tensor '{}': byte size of shape {} overflows", source, name, quote(shape));

  const Json& offsets = field("data_offsets");
  NEUTRINO_CHECK_IO(offsets.is_array() && offsets.size() == 2,
                    "{}: tensor '{}': data_offsets must be [BEGIN, END], got {}", source, name,
                    quote(offsets));
  const std::optional<uint64_t> begin = as_uint(offsets[0]);
  const std::optional<uint64_t> end = as_uint(offsets[1]);
  NEUTRINO_CHECK_IO(begin.has_value() && end.has_value(),
                    "{}: tensor '{}': data_offsets must be non-negative integers, got {}", source,
                    name, quote(offsets));
  NEUTRINO_CHECK_IO(*end >= *begin, "{}: tensor '{}': data_offsets END {} is before BEGIN {}",
                    source, name, *end, *begin);
  NEUTRINO_CHECK_IO(*end - *begin == nbytes,
                    "{}: tensor '{}': size mismatch: {} shape {} needs {} bytes but data_offsets "
                    "[{}, {}] span {}",
                    source, name, entry.dtype, quote(shape), nbytes, *begin, *end, *end - *begin);
  entry.begin = *begin;
  entry.end = *end;
  return entry;
}

// The tensors must tile the data buffer exactly: sorted by offset, the first starts at 0, each
// starts where the previous ends, and the last ends where the file ends.
void check_layout(std::vector<Entry>& entries, uint64_t data_size, const std::string& source) {
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
  });
  uint64_t expected = 0;
  const Entry* prev = nullptr;
  for (const Entry& e : entries) {
    if (e.begin != expected) {
      NEUTRINO_CHECK_IO(prev != nullptr,
                        "{}: tensor '{}': data_offsets start at {}, but the first tensor must "
                        "start at 0",
                        source, e.name, e.begin);
      NEUTRINO_CHECK_IO(e.begin > expected,
                        "{}: tensor '{}': data_offsets [{}, {}] overlap tensor '{}' (which ends "
                        "at {})",
                        source, e.name, e.begin, e.end, prev->name, expected);
      throw IOError(fmt::format(
          "{}: tensor '{}': gap of {} bytes before data_offsets [{}, {}] (tensor '{}' ends at {})",
          source, e.name, e.begin - expected, e.begin, e.end, prev->name, expected));
    }
    expected = e.end;
    prev = &e;
  }
  NEUTRINO_CHECK_IO(expected <= data_size,
                    "{}: truncated: tensor '{}' ends at data byte {} but only {} data bytes follow "
                    "the header",
                    source, prev->name, expected, data_size);
  NEUTRINO_CHECK_IO(expected == data_size, "{}: {} trailing bytes after the last tensor", source,
                    data_size - expected);
}

Header parse_header(const uint8_t* text, size_t size, uint64_t data_size,
                    const std::string& source) {
  const Json root = parse_header_json(text, size, source);
  NEUTRINO_CHECK_IO(root.is_object(), "{}: safetensors header must be a JSON object", source);
  Header header;
  for (const auto& [name, value] : root.get_ref<const Json::object_t&>()) {
    if (name == kMetadataKey) {
      header.metadata = parse_metadata(value, source);
    } else {
      header.entries.push_back(parse_entry(name, value, source));
    }
  }
  check_layout(header.entries, data_size, source);
  return header;
}

RawTensor take_tensor(Entry& entry) {
  RawTensor tensor;
  tensor.dtype = std::move(entry.dtype);
  tensor.shape = std::move(entry.shape);
  return tensor;
}

// Reads exactly `size` bytes; the file was measured first, so a short read means it changed.
void read_exact(std::FILE* f, uint8_t* out, size_t size, const std::string& path,
                std::string_view what) {
  if (size == 0 || std::fread(out, 1, size, f) == size) return;
  NEUTRINO_CHECK_IO(!std::ferror(f), "{}: read error in {}: {}", path, what, errno_text(errno));
  throw IOError(fmt::format("{}: unexpected end of file in {} (did the file change?)", path, what));
}

void check_writable(const std::string& name, const RawTensor& t, uint64_t* nbytes) {
  NEUTRINO_CHECK_VALUE(name != kMetadataKey, "safetensors: a tensor cannot be named '{}'", name);
  NEUTRINO_CHECK_VALUE(is_utf8(name), "safetensors: tensor name '{}' is not valid UTF-8", name);
  const std::optional<size_t> elem_size = find_dtype_size(t.dtype);
  NEUTRINO_CHECK_VALUE(elem_size.has_value(), "safetensors: tensor '{}': unknown dtype '{}'", name,
                       t.dtype);
  uint64_t count = 1;
  for (const int64_t dim : t.shape) {
    NEUTRINO_CHECK_VALUE(dim >= 0 && checked_mul(count, static_cast<uint64_t>(dim), &count),
                         "safetensors: tensor '{}': bad shape [{}]", name,
                         fmt::join(t.shape, ", "));
  }
  NEUTRINO_CHECK_VALUE(checked_mul(count, *elem_size, nbytes),
                       "safetensors: tensor '{}': byte size of shape [{}] overflows", name,
                       fmt::join(t.shape, ", "));
  NEUTRINO_CHECK_VALUE(*nbytes == t.data.size(),
                       "safetensors: tensor '{}': {} shape [{}] needs {} bytes but data has {}",
                       name, t.dtype, fmt::join(t.shape, ", "), *nbytes, t.data.size());
}

std::string json_string(const std::string& s) { return Json(s).dump(); }

}  // namespace

size_t dtype_size(const std::string& dtype) {
  const std::optional<size_t> size = find_dtype_size(dtype);
  NEUTRINO_CHECK_VALUE(size.has_value(), "unknown safetensors dtype '{}'", dtype);
  return *size;
}

SafetensorsFile read_safetensors_bytes(const uint8_t* data, size_t size,
                                       const std::string& source_name) {
  check_file_size(size, source_name);
  const uint64_t n = check_header_length(data, size, source_name);
  Header header = parse_header(data + kPrefixSize, n, size - kPrefixSize - n, source_name);
  const uint8_t* buffer = data + kPrefixSize + n;
  SafetensorsFile file;
  file.metadata = std::move(header.metadata);
  for (Entry& entry : header.entries) {
    RawTensor& tensor = file.tensors[entry.name] = take_tensor(entry);
    // A byte copy: the data may sit at any alignment in the file.
    tensor.data.assign(buffer + entry.begin, buffer + entry.end);
  }
  return file;
}

SafetensorsFile read_safetensors(const std::string& path) {
  uint64_t file_size = 0;
  const FilePtr f = open_regular_file(path, file_size);
  check_file_size(file_size, path);

  uint8_t prefix[kPrefixSize];
  read_exact(f.get(), prefix, kPrefixSize, path, "the header length");
  const uint64_t n = check_header_length(prefix, file_size, path);
  std::vector<uint8_t> text(n);
  read_exact(f.get(), text.data(), n, path, "the header");
  Header header = parse_header(text.data(), n, file_size - kPrefixSize - n, path);

  // The entries tile the data buffer in order, so one forward pass reads each straight into place.
  SafetensorsFile file;
  file.metadata = std::move(header.metadata);
  for (Entry& entry : header.entries) {
    RawTensor& tensor = file.tensors[entry.name] = take_tensor(entry);
    tensor.data.resize(entry.end - entry.begin);
    read_exact(f.get(), tensor.data.data(), tensor.data.size(), path,
               fmt::format("tensor '{}'", entry.name));
  }
  return file;
}

std::vector<uint8_t> write_safetensors_bytes(const SafetensorsFile& file) {
  // Built by hand rather than through a JSON object so the key order matches the reference
  // writer: "__metadata__" first, then the tensors in data order, each dtype, shape, offsets.
  std::string header = "{";
  if (!file.metadata.empty()) {
    header += "\"__metadata__\":{";
    for (const auto& [key, value] : file.metadata) {
      NEUTRINO_CHECK_VALUE(is_utf8(key) && is_utf8(value),
                           "safetensors: metadata '{}' is not valid UTF-8", key);
      if (header.back() != '{') header += ',';
      header += json_string(key) + ':' + json_string(value);
    }
    header += '}';
  }
  uint64_t offset = 0;
  for (const auto& [name, tensor] : file.tensors) {
    uint64_t nbytes = 0;
    check_writable(name, tensor, &nbytes);
    if (header.size() > 1) header += ',';
    header += fmt::format(R"({}:{{"dtype":{},"shape":[{}],"data_offsets":[{},{}]}})",
                          json_string(name), json_string(tensor.dtype),
                          fmt::join(tensor.shape, ","), offset, offset + nbytes);
    offset += nbytes;
  }
  header += '}';
  header.append((kPrefixSize - header.size() % kPrefixSize) % kPrefixSize, ' ');
  NEUTRINO_CHECK_VALUE(header.size() <= kMaxHeaderSize,
                       "safetensors: header of {} bytes exceeds the limit of {} bytes",
                       header.size(), kMaxHeaderSize);

  std::vector<uint8_t> out;
  out.reserve(kPrefixSize + header.size() + offset);
  for (size_t i = 0; i < kPrefixSize; ++i) {
    out.push_back(static_cast<uint8_t>(uint64_t{header.size()} >> (8 * i)));
  }
  out.insert(out.end(), header.begin(), header.end());
  for (const auto& [name, tensor] : file.tensors) {
    out.insert(out.end(), tensor.data.begin(), tensor.data.end());
  }
  return out;
}

void write_safetensors(const std::string& path, const SafetensorsFile& file) {
  write_file_atomically(path, write_safetensors_bytes(file));
}

}  // namespace neutrino::io
