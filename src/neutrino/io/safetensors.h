// safetensors reading and writing over raw bytes, with no tensor type attached.
//
// Layout: an 8-byte little-endian header length N, N bytes of UTF-8 JSON starting with '{' and
// padded with spaces, then the data buffer. The JSON maps each tensor name to
// {"dtype", "shape", "data_offsets": [BEGIN, END]} (offsets into the data buffer, END exclusive)
// and may hold a "__metadata__" map of strings. The reader trusts nothing in the file: every
// length, offset and shape is checked before it sizes an allocation or a copy, and any violation
// throws neutrino::IOError whose message starts with the source name.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace neutrino::io {

struct RawTensor {
  std::string dtype;  // "F32", "F64", "I64", "U8", "BF16", ... as in the file
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;  // little-endian bytes in C order, copied out of the file
};

struct SafetensorsFile {
  std::map<std::string, RawTensor> tensors;
  std::map<std::string, std::string> metadata;  // the "__metadata__" map
};

// Bytes per element of a safetensors dtype name; throws ValueError for an unknown one. Sub-byte
// dtypes (F4, F6_*) are not supported and count as unknown.
size_t dtype_size(const std::string& dtype);

// Parses a whole safetensors file held in memory. `source_name` prefixes every error message.
SafetensorsFile read_safetensors_bytes(const uint8_t* data, size_t size,
                                       const std::string& source_name);

// Reads and parses the file at `path`; errors name the path. The header is checked before any
// tensor data is read, and the data is read straight into the tensors (no whole-file copy).
SafetensorsFile read_safetensors(const std::string& path);

// Serializes `file`: entries sorted by name, "__metadata__" first and only when non-empty, the
// header padded with spaces so the data starts at a multiple of 8. Throws ValueError for a tensor
// whose dtype is unknown, whose shape is negative or whose data size does not match its shape, for
// a tensor named "__metadata__", and for names or metadata that are not valid UTF-8.
std::vector<uint8_t> write_safetensors_bytes(const SafetensorsFile& file);

// Writes `file` to `path` atomically: a temporary file "<path>.tmp.<pid>" in the same directory is
// written and fsynced, renamed over `path`, and the directory is fsynced. On failure the temporary
// file is removed, any previous file at `path` is left untouched, and IOError names the path.
void write_safetensors(const std::string& path, const SafetensorsFile& file);

}  // namespace neutrino::io
