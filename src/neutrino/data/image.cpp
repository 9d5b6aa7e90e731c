// Image decoding: PNG and BMP through stb_image, behind checks of our own (stb trusts the sizes a
// file declares and fills a truncated file's missing pixels with zeros, so the header is read and
// checked against the limits and the file's length before anything is decoded); JPEG through
// libjpeg-turbo (data/jpeg.cpp says why). Policy in image.h.
#include "neutrino/data/image.h"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstring>
#include <memory>

#include "neutrino/core/error.h"
#include "neutrino/data/jpeg.h"
#include "neutrino/io/file_io.h"

// stb_image's implementation is compiled in data/stb_image_impl.cpp, with the same settings.
#define STBI_ONLY_PNG
#define STBI_ONLY_BMP
#define STBI_NO_STDIO
#include <stb/stb_image.h>

namespace neutrino::data {
namespace {

constexpr uint8_t kPngMagic[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

uint32_t be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
uint32_t le32(const uint8_t* p) {
  return (uint32_t{p[3]} << 24) | (uint32_t{p[2]} << 16) | (uint32_t{p[1]} << 8) | p[0];
}
uint16_t le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }

const char* channel_names(int channels) {
  static constexpr std::array<const char*, 5> kNames{"?", "grey", "grey+alpha", "RGB", "RGBA"};
  return channels >= 1 && channels <= 4 ? kNames[static_cast<size_t>(channels)] : "?";
}

std::string format_of(const uint8_t* data, size_t size) {
  if (size >= 8 && std::memcmp(data, kPngMagic, 8) == 0) return "PNG";
  if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) return "JPEG";
  if (size >= 2 && data[0] == 'B' && data[1] == 'M') return "BMP";
  return "";
}

// ---------------------------------------------------------------------------------------------
// Truncation checks, one per format.

// Uncompressed BMP rows are padded to 4 bytes; the pixel array starts at the header's offset.
void check_bmp_length(const uint8_t* data, size_t size, const std::string& src) {
  NEUTRINO_CHECK_IO(size >= 30, "{}: truncated BMP header ({} bytes)", src, size);
  const uint64_t offset = le32(data + 10);
  const uint32_t header_size = le32(data + 14);
  const bool core = header_size == 12;
  const int64_t width = core ? le16(data + 18) : static_cast<int32_t>(le32(data + 18));
  const int64_t height = core ? le16(data + 20) : static_cast<int32_t>(le32(data + 22));
  const uint64_t bpp = core ? le16(data + 24) : le16(data + 28);
  const uint32_t compression = core || size < 34 ? 0 : le32(data + 30);
  if (compression != 0 && compression != 3) return;  // stb refuses RLE and embedded PNG/JPEG
  const uint64_t row = (static_cast<uint64_t>(std::abs(width)) * bpp + 31) / 32 * 4;
  const uint64_t needed = offset + row * static_cast<uint64_t>(std::abs(height));
  NEUTRINO_CHECK_IO(needed <= size,
                    "{}: truncated BMP: {} rows of {} bytes from offset {} need {} bytes, the file "
                    "has {}",
                    src, std::abs(height), row, offset, needed, size);
}

struct PngLayout {
  uint64_t width = 0, height = 0;
  int depth = 0, color = 0, interlace = 0;
  bool cgbi = false;  // Apple's variant: raw deflate without the zlib wrapper
  std::vector<uint8_t> idat;
};

// Walks the chunks: each must fit in the file, and IEND must come.
PngLayout png_layout(const uint8_t* data, size_t size, const std::string& src) {
  PngLayout png;
  bool ended = false;
  for (size_t pos = 8; pos < size && !ended;) {
    NEUTRINO_CHECK_IO(size - pos >= 12, "{}: truncated PNG: a chunk header at offset {}", src, pos);
    const uint64_t length = be32(data + pos);
    const uint8_t* type = data + pos + 4;
    const uint8_t* body = data + pos + 8;
    NEUTRINO_CHECK_IO(length <= size - pos - 12,
                      "{}: truncated PNG: the chunk at offset {} declares {} bytes, {} follow", src,
                      pos, length, size - pos - 12);
    if (std::memcmp(type, "IHDR", 4) == 0 && length >= 13) {
      png.width = be32(body);
      png.height = be32(body + 4);
      png.depth = body[8];
      png.color = body[9];
      png.interlace = body[12];
    } else if (std::memcmp(type, "IDAT", 4) == 0) {
      png.idat.insert(png.idat.end(), body, body + length);
    } else if (std::memcmp(type, "CgBI", 4) == 0) {
      png.cgbi = true;
    }
    ended = std::memcmp(type, "IEND", 4) == 0;
    pos += 12 + length;
  }
  NEUTRINO_CHECK_IO(ended, "{}: truncated PNG: no IEND chunk", src);
  return png;
}

// The bytes of filtered scanlines a complete image holds (all seven passes when interlaced).
uint64_t png_raw_size(const PngLayout& png) {
  static constexpr int kSamples[] = {1, 0, 3, 1, 2, 0, 4};
  const uint64_t bits = static_cast<uint64_t>(png.depth) *
                        (png.color >= 0 && png.color <= 6 ? kSamples[png.color] : 4);
  auto rows = [&](uint64_t w, uint64_t h) { return w == 0 || h == 0 ? 0 : h * (1 + (w * bits + 7) / 8); };
  if (png.interlace == 0) return rows(png.width, png.height);
  static constexpr uint64_t kX0[] = {0, 4, 0, 2, 0, 1, 0}, kY0[] = {0, 0, 4, 0, 2, 0, 1};
  static constexpr uint64_t kDx[] = {8, 8, 4, 4, 2, 2, 1}, kDy[] = {8, 8, 8, 4, 4, 2, 2};
  uint64_t total = 0;
  for (int p = 0; p < 7; ++p) {
    const uint64_t w = png.width > kX0[p] ? (png.width - kX0[p] + kDx[p] - 1) / kDx[p] : 0;
    const uint64_t h = png.height > kY0[p] ? (png.height - kY0[p] + kDy[p] - 1) / kDy[p] : 0;
    total += rows(w, h);
  }
  return total;
}

// Inflates the image data into a scratch buffer, only counting: the stream must end, and not
// produce more than the declared image needs (stb would grow its buffer to whatever comes).
void check_png_data(const PngLayout& png, const std::string& src) {
  const uint64_t limit = png_raw_size(png);
  z_stream z{};
  NEUTRINO_CHECK_IO(inflateInit2(&z, png.cgbi ? -15 : 15) == Z_OK, "{}: zlib init failed", src);
  std::unique_ptr<z_stream, int (*)(z_stream*)> guard(&z, inflateEnd);
  std::vector<uint8_t> scratch(1 << 16);
  z.next_in = const_cast<Bytef*>(png.idat.data());
  z.avail_in = static_cast<uInt>(png.idat.size());
  uint64_t produced = 0;
  int rc = Z_OK;
  while (rc == Z_OK) {
    z.next_out = scratch.data();
    z.avail_out = static_cast<uInt>(scratch.size());
    rc = inflate(&z, Z_NO_FLUSH);
    produced += scratch.size() - z.avail_out;
    NEUTRINO_CHECK_IO(produced <= limit,
                      "{}: PNG image data inflates to more than the {} bytes a {}x{} image needs",
                      src, limit, png.width, png.height);
  }
  NEUTRINO_CHECK_IO(rc == Z_STREAM_END, "{}: truncated or corrupt PNG image data ({})", src,
                    z.msg != nullptr ? z.msg : "the zlib stream does not end");
}

// ---------------------------------------------------------------------------------------------

int stb_length(size_t size, const std::string& src) {
  NEUTRINO_CHECK_IO(size <= static_cast<size_t>(INT_MAX), "{}: image file over 2 GiB", src);
  return static_cast<int>(size);
}

void check_size(const ImageInfo& info, const ImageRequest& request, const std::string& src) {
  NEUTRINO_CHECK_IO(info.width * info.height <= request.max_pixels,
                    "{}: the {} declares a {}x{} image (width x height), over the limit of {} "
                    "pixels",
                    src, info.format, info.width, info.height, request.max_pixels);
  const bool height_ok = request.height <= 0 || request.height == info.height;
  const bool width_ok = request.width <= 0 || request.width == info.width;
  NEUTRINO_CHECK_IO(height_ok && width_ok,
                    "{}: the image is {}x{} (width x height) but {}x{} is needed", src, info.width,
                    info.height, request.width > 0 ? request.width : info.width,
                    request.height > 0 ? request.height : info.height);
}

// The channel count to ask stb for, and the note when that converts.
int pick_channels(const ImageInfo& info, const ImageRequest& request, const std::string& src,
                  std::vector<std::string>& notes) {
  const int have = info.channels, want = request.channels;
  if (want == 0 || want == have) return have;
  if (want == 1 && have == 3) {
    notes.push_back(src + ": RGB converted to grey ((77 R + 150 G + 29 B) / 256)");
    return 1;
  }
  if (want == 3 && have == 1) {
    notes.push_back(src + ": grey copied into 3 channels (RGB)");
    return 3;
  }
  throw IOError(fmt::format("{}: the image has {} channel{} ({}) but {} ({}) {} needed", src, have,
                            have == 1 ? "" : "s", channel_names(have), want, channel_names(want),
                            want == 1 ? "is" : "are"));
}

Tensor to_planar(const stbi_uc* p, int64_t height, int64_t width, int c) {
  Tensor out = Tensor::empty({1, c, height, width});
  float* o = out.data<float>();
  // stb gives interleaved HWC; we want planar CHW.
  for (int64_t y = 0; y < height; ++y) {
    for (int64_t x = 0; x < width; ++x) {
      for (int64_t ch = 0; ch < c; ++ch) o[(ch * height + y) * width + x] = p[(y * width + x) * c + ch];
    }
  }
  return out;
}

// Grey from a colour JPEG uses the same luma as stb gives PNG and BMP, not the file's Y channel,
// so one documented conversion holds for every format.
Tensor decode_jpeg_planar(const uint8_t* data, size_t size, const std::string& source,
                          const ImageInfo& info, int c, int64_t max_pixels) {
  const int decoded = c == 1 && info.channels == 3 ? 3 : c;
  std::vector<uint8_t> pixels = detail::decode_jpeg(data, size, source, decoded, max_pixels);
  if (decoded != c) {
    for (size_t i = 0; i < pixels.size() / 3; ++i) {
      const uint8_t* p = &pixels[3 * i];
      pixels[i] = static_cast<uint8_t>((p[0] * 77 + p[1] * 150 + p[2] * 29) >> 8);
    }
  }
  return to_planar(pixels.data(), info.height, info.width, c);
}

}  // namespace

ImageInfo image_info(const uint8_t* data, size_t size, const std::string& source) {
  ImageInfo info;
  info.format = format_of(data, size);
  NEUTRINO_CHECK_IO(!info.format.empty(), "{}: not a PNG, JPEG or BMP image (by its first bytes)",
                    source);
  if (info.format == "JPEG") {
    const detail::JpegHeader header = detail::read_jpeg_header(data, size, source);
    info.width = header.width;
    info.height = header.height;
    info.channels = header.channels;
    return info;
  }
  const int length = stb_length(size, source);
  int width = 0, height = 0, channels = 0;
  NEUTRINO_CHECK_IO(stbi_info_from_memory(data, length, &width, &height, &channels) == 1,
                    "{}: cannot read the {} header: {}", source, info.format, stbi_failure_reason());
  // stb keeps a top-down BMP's negative height; the image is as tall either way.
  info.width = std::abs(static_cast<int64_t>(width));
  info.height = std::abs(static_cast<int64_t>(height));
  info.channels = channels;
  NEUTRINO_CHECK_IO(info.width > 0 && info.height > 0 && channels >= 1 && channels <= 4,
                    "{}: the {} header declares a {}x{} image with {} channels", source,
                    info.format, info.width, info.height, channels);
  info.sixteen_bit = stbi_is_16_bit_from_memory(data, length) == 1;
  return info;
}

Image decode_image(const uint8_t* data, size_t size, const std::string& source,
                   const ImageRequest& request) {
  NEUTRINO_CHECK_VALUE(request.channels >= 0 && request.channels <= 4,
                       "decode_image: channels must be 0 to 4, got {}", request.channels);
  const ImageInfo info = image_info(data, size, source);
  check_size(info, request, source);
  Image image;
  const int c = pick_channels(info, request, source, image.notes);
  if (info.format == "BMP") check_bmp_length(data, size, source);
  if (info.format == "JPEG") {
    image.pixels = decode_jpeg_planar(data, size, source, info, c, request.max_pixels);
    return image;
  }
  if (info.format == "PNG") check_png_data(png_layout(data, size, source), source);
  if (info.sixteen_bit) {
    image.notes.push_back(source + ": 16-bit samples reduced to 8 bits (the high byte)");
  }
  int width = 0, height = 0, file_channels = 0;
  std::unique_ptr<stbi_uc, void (*)(void*)> pixels(
      stbi_load_from_memory(data, stb_length(size, source), &width, &height, &file_channels, c),
      stbi_image_free);
  NEUTRINO_CHECK_IO(pixels != nullptr, "{}: cannot decode the {}: {}", source, info.format,
                    stbi_failure_reason());
  NEUTRINO_CHECK_IO(width == info.width && height == info.height,
                    "{}: decoded {}x{}, but the header declares {}x{}", source, width, height,
                    info.width, info.height);
  image.pixels = to_planar(pixels.get(), height, width, c);
  return image;
}

Image load_image(const std::string& path, const ImageRequest& request) {
  const std::vector<uint8_t> bytes = io::read_file(path);
  return decode_image(bytes.data(), bytes.size(), path, request);
}

Tensor read_image(const std::string& path, int channels) {
  NEUTRINO_CHECK_VALUE(channels == 0 || channels == 1 || channels == 3,
                       "read_image: channels must be 0, 1 or 3, got {}", channels);
  return load_image(path, {.channels = channels}).pixels;
}

}  // namespace neutrino::data
