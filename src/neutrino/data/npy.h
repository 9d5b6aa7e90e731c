// NumPy's .npy and .npz files, read and written without Python.
//
// NPY: "\x93NUMPY", a major and minor version, the header length (u16 little-endian for 1.0, u32
// for 2.0 and 3.0), then a Python-literal dict {'descr': '<f4', 'fortran_order': False,
// 'shape': (2, 3), } padded with spaces and ending in '\n', then the raw data. NPZ is a zip
// archive of NAME.npy members.
//
// Reading accepts descr f4/f8 (float32/float64), i1/i2/i4/i8 and u1/u2/u4 (all as int64, our
// only integer dtype) and b1 (bool; any non-zero byte reads as true), little- or big-endian
// (swapped into native order), in C or Fortran order (Fortran data is transposed into C order).
// Object arrays ('|O') are refused: loading them would need unpickling, which runs code.
// The reader trusts nothing in the file; every violation throws neutrino::IOError whose message
// starts with the path or source name. Writers throw ValueError for a tensor they cannot store.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "neutrino/tensor/tensor.h"

namespace neutrino::data {

// NumPy's own limit on the header length (numpy.lib.format._MAX_HEADER_SIZE).
inline constexpr size_t kMaxNpyHeaderBytes = 10'000;

Tensor read_npy(const std::string& path);
Tensor read_npy_bytes(const uint8_t* data, size_t size, const std::string& source_name);

// Version 1.0, descr '<f4', '<f8', '<i8' or '|b1', C order, the header padded with spaces so
// that the data starts at a multiple of 64 bytes, as NumPy writes it.
std::vector<uint8_t> write_npy_bytes(const Tensor& tensor);
// Writes atomically: a temporary file in the same directory, fsync, rename, fsync the directory.
void write_npy(const std::string& path, const Tensor& tensor);

// Member "x.npy" becomes key "x". Stored and deflated members are read; every member's local
// header, sizes and CRC-32 are checked. ZIP64 size fields inside a member's extra data (which
// numpy.savez always writes) are understood; a ZIP64 end-of-central-directory record (archives
// over 4 GiB or 65535 members) is refused.
std::map<std::string, Tensor> read_npz(const std::string& path);
std::map<std::string, Tensor> read_npz_bytes(const uint8_t* data, size_t size,
                                             const std::string& source_name);

// Stored (uncompressed) members, like numpy.savez. Atomic like write_npy.
std::vector<uint8_t> write_npz_bytes(const std::map<std::string, Tensor>& tensors);
void write_npz(const std::string& path, const std::map<std::string, Tensor>& tensors);

}  // namespace neutrino::data
