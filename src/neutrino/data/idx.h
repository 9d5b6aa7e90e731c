// Readers for IDX files, the format of MNIST and Fashion-MNIST.
//
// Layout: two zero bytes, a type byte (0x08 u8, 0x09 i8, 0x0B i16, 0x0C i32, 0x0D f32, 0x0E f64),
// the number of dimensions (1 to 8), each dimension as a big-endian u32, then the data in C order,
// big-endian. The files are usually gzipped; a gzip stream (magic 1f 8b) is decompressed first.
//
// Integer types come back as int64 tensors (our only integer dtype), f32 as float32 and f64 as
// float64. The reader trusts nothing in the file: the header is checked against the real
// (decompressed) data length before anything is allocated from it, and every violation throws
// neutrino::IOError whose message starts with the path or source name.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "neutrino/tensor/tensor.h"

namespace neutrino::data {

// A gzip stream that inflates to more than this is refused; it bounds the memory a small
// hostile file can make us use (deflate expands up to ~1000:1).
inline constexpr uint64_t kMaxIdxDecompressedBytes = uint64_t{2} << 30;  // 2 GiB

// Reads an IDX file, plain or gzipped. Errors name `path`.
Tensor read_idx(const std::string& path);

// Parses an IDX file held in memory (plain or gzipped); `source_name` prefixes every error.
Tensor read_idx_bytes(const uint8_t* data, size_t size, const std::string& source_name);

struct IdxPair {
  Tensor images;  // (N, ...) as in the file
  Tensor labels;  // (N, ...)
};

// Reads an images file and its labels file, refusing a pair whose first dimensions differ.
IdxPair read_idx_pair(const std::string& images, const std::string& labels);

namespace detail {
// Inflates one or more concatenated gzip members, refusing corrupt or truncated streams, bytes
// after the last member, and output over `max_output` bytes. Exposed for tests of the cap. With
// `stop_at_limit`, output over `max_output` is not an error: the first `max_output` bytes come
// back (their CRC unchecked when the stream goes on), to read a header before trusting the rest.
std::vector<uint8_t> gunzip(const uint8_t* data, size_t size, uint64_t max_output,
                            const std::string& source_name, bool stop_at_limit = false);
}  // namespace detail

}  // namespace neutrino::data
