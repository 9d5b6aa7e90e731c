// libjpeg reports errors through a callback that must not return; the standard way out is
// longjmp back to the setjmp in run_libjpeg. That function holds only trivially destructible
// locals, so the jump skips no destructor; the C++ wrapper turns its result into an IOError.
#include "neutrino/data/jpeg.h"

#include <fmt/format.h>

#include <csetjmp>
#include <cstdio>
#include <cstring>

// jpeglib.h needs size_t and FILE declared first.
#include <jerror.h>
#include <jpeglib.h>

#include "neutrino/core/error.h"

namespace neutrino::data::detail {
namespace {

// Real progressive files have about 10 scans; libjpeg-turbo's own tools cap hostile ones (each
// scan re-reads the whole coefficient buffer), and so do we.
constexpr int kMaxScans = 256;

struct ErrorState {
  jpeg_error_mgr manager;  // first, so libjpeg's pointer to it is a pointer to the whole
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
  bool truncated;
};

ErrorState& state_of(j_common_ptr info) { return *reinterpret_cast<ErrorState*>(info->err); }

[[noreturn]] void fail_with_libjpeg_message(j_common_ptr info) {
  ErrorState& state = state_of(info);
  state.truncated = info->err->msg_code == JWRN_JPEG_EOF;
  (*info->err->format_message)(info, state.message);
  std::longjmp(state.jump, 1);
}

// Level -1 is a warning (the data is damaged); levels 0 and up are trace messages.
void on_message(j_common_ptr info, int level) {
  if (level < 0) fail_with_libjpeg_message(info);
}

void on_progress(j_common_ptr info) {
  auto* decoder = reinterpret_cast<j_decompress_ptr>(info);
  if (decoder->input_scan_number <= kMaxScans) return;
  ErrorState& state = state_of(info);
  std::snprintf(state.message, sizeof state.message, "more than %d progressive scans", kMaxScans);
  std::longjmp(state.jump, 1);
}

struct Job {
  const uint8_t* data;
  size_t size;
  int channels;                // 0: header only
  int64_t max_pixels;
  std::vector<uint8_t>* out;   // sized by run_libjpeg once the header is known
  JpegHeader header;
};

bool run_libjpeg(Job& job, ErrorState& state) {
  jpeg_decompress_struct info;
  std::memset(&info, 0, sizeof info);
  jpeg_progress_mgr progress;
  std::memset(&progress, 0, sizeof progress);
  info.err = jpeg_std_error(&state.manager);
  state.manager.error_exit = fail_with_libjpeg_message;
  state.manager.emit_message = on_message;
  progress.progress_monitor = on_progress;
  if (setjmp(state.jump) != 0) {
    jpeg_destroy_decompress(&info);
    return false;
  }
  jpeg_create_decompress(&info);
  info.progress = &progress;
  jpeg_mem_src(&info, job.data, static_cast<unsigned long>(job.size));
  jpeg_read_header(&info, TRUE);
  job.header = {info.image_width, info.image_height, info.num_components};
  const int64_t pixels = job.header.width * job.header.height;
  if (job.channels == 0 || pixels > job.max_pixels) {
    jpeg_destroy_decompress(&info);
    return true;  // the caller refuses an oversized image with its own message
  }
  info.out_color_space = job.channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_start_decompress(&info);
  const size_t row = static_cast<size_t>(info.output_width) * static_cast<size_t>(job.channels);
  job.out->resize(row * info.output_height);
  while (info.output_scanline < info.output_height) {
    JSAMPROW rows[1] = {job.out->data() + row * info.output_scanline};
    jpeg_read_scanlines(&info, rows, 1);
  }
  jpeg_finish_decompress(&info);
  jpeg_destroy_decompress(&info);
  return true;
}

Job run(const uint8_t* data, size_t size, const std::string& source, int channels,
        int64_t max_pixels, std::vector<uint8_t>* out) {
  Job job{data, size, channels, max_pixels, out, {}};
  ErrorState state{};
  if (!run_libjpeg(job, state)) {
    throw IOError(fmt::format("{}: {} JPEG: {}", source, state.truncated ? "truncated" : "corrupt",
                              state.message));
  }
  return job;
}

}  // namespace

JpegHeader read_jpeg_header(const uint8_t* data, size_t size, const std::string& source) {
  const JpegHeader header = run(data, size, source, 0, 0, nullptr).header;
  NEUTRINO_CHECK_IO(header.channels == 1 || header.channels == 3,
                    "{}: the JPEG has {} colour components (CMYK?); only grey and colour (1 or 3) "
                    "are read",
                    source, header.channels);
  return header;
}

std::vector<uint8_t> decode_jpeg(const uint8_t* data, size_t size, const std::string& source,
                                 int channels, int64_t max_pixels) {
  NEUTRINO_CHECK_VALUE(channels == 1 || channels == 3, "decode_jpeg: channels must be 1 or 3, got {}",
                       channels);
  std::vector<uint8_t> out;
  const JpegHeader header = run(data, size, source, channels, max_pixels, &out).header;
  NEUTRINO_CHECK_IO(header.width * header.height <= max_pixels,
                    "{}: the JPEG declares a {}x{} image (width x height), over the limit of {} "
                    "pixels",
                    source, header.width, header.height, max_pixels);
  return out;
}

}  // namespace neutrino::data::detail
