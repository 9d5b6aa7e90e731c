// Image files (PNG and BMP through stb_image, JPEG through libjpeg-turbo) as float32 (1, C, H, W) tensors of raw
// pixel values 0..255, channels-first like the rest of neutrino.
//
// Policy (every refusal is an IOError naming the file; nothing is decoded before the checks):
// - Formats: PNG, JPEG and BMP only, recognized by their magic bytes, not by the file name.
// - Size: the declared width and height are read from the header first. An image over
//   `max_pixels` (default kMaxImagePixels, 4096 x 4096) is refused before decoding, and so is
//   one whose width or height differs from a requested one: a 56x14 image is not a 28x28 one,
//   even with the same pixel count.
// - Truncation and damage: a BMP shorter than its declared pixel rows, a JPEG on which libjpeg
//   reports anything (a premature end, corrupt entropy data, more than 256 progressive scans;
//   libjpeg would otherwise go on with guessed pixels), and a PNG whose image data does not inflate to a complete zlib
//   stream are refused (stb would fill the missing pixels with zeros). PNG image data that
//   inflates to more than the declared size needs (a decompression bomb) is refused too.
// - Channels: `channels` 0 keeps the file's own. Otherwise the file's must match, with two
//   documented conversions, each reported in Image::notes: RGB to grey (stb's luma,
//   (77 R + 150 G + 29 B) / 256, for JPEG too) and grey to RGB (the value copied). An image with an alpha
//   channel is refused unless exactly its channel count is requested.
// - Depth: 16-bit PNG samples are reduced to 8 bits (the high byte, so 0..65535 maps to 0..255,
//   as stb does) and Image::notes says so.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "neutrino/tensor/tensor.h"

namespace neutrino::data {

inline constexpr int64_t kMaxImagePixels = int64_t{4096} * 4096;

// What an image file's header declares.
struct ImageInfo {
  std::string format;  // "PNG", "JPEG" or "BMP"
  int64_t width = 0;
  int64_t height = 0;
  int channels = 0;  // 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA
  bool sixteen_bit = false;
};

struct ImageRequest {
  int channels = 0;  // 0: the file's own; else 1..4, with the conversions above
  int64_t height = 0;  // > 0: the image must be exactly this tall
  int64_t width = 0;   // > 0: and this wide
  int64_t max_pixels = kMaxImagePixels;
};

struct Image {
  Tensor pixels;                   // float32 (1, C, H, W), 0..255
  std::vector<std::string> notes;  // each conversion made, naming the file
};

// What the header declares, without decoding; refuses an unknown format or an unreadable header.
ImageInfo image_info(const uint8_t* data, size_t size, const std::string& source);

Image decode_image(const uint8_t* data, size_t size, const std::string& source,
                   const ImageRequest& request = {});
// Reads a regular file (see io::read_file) and decodes it.
Image load_image(const std::string& path, const ImageRequest& request = {});

// `channels`: 0 keeps the file's own, 1 grey, 3 RGB. Errors name the file; notes are dropped.
Tensor read_image(const std::string& path, int channels = 0);

}  // namespace neutrino::data
