// JPEG decoding through libjpeg-turbo, for data/image.cpp. Not stb_image: Debian's stb 2.27
// writes past its Huffman arrays on hostile files (fuzz/fuzz_image.cpp found two ways in, and a
// pre-scan that mirrored stb's parser missed the second), while libjpeg-turbo is hardened and
// fuzzed continuously. Every libjpeg warning (a premature end, corrupt entropy data) is an error
// here, so a damaged file is refused rather than decoded with guessed pixels.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace neutrino::data::detail {

struct JpegHeader {
  int64_t width = 0;
  int64_t height = 0;
  int channels = 0;  // the file's components: 1 grey, 3 colour (CMYK files are refused)
};

// Reads the header only; an IOError naming `source` for anything libjpeg refuses.
JpegHeader read_jpeg_header(const uint8_t* data, size_t size, const std::string& source);

// Decodes to interleaved 8-bit samples (H, W, channels), channels 1 (grey) or 3 (RGB). The caller
// has checked the header's size against its limits; `max_pixels` is checked again here.
std::vector<uint8_t> decode_jpeg(const uint8_t* data, size_t size, const std::string& source,
                                 int channels, int64_t max_pixels);

}  // namespace neutrino::data::detail
