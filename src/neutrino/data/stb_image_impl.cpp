// stb_image's implementation, in a file of its own so that one sanitizer check can be turned off
// for it alone (src/CMakeLists.txt): Debian's stb_image (2.27) shifts its JPEG bit buffer by more
// than 31 bits on some corrupt entropy-coded data (stbi__grow_buffer_unsafe with a negative bit
// count, found by fuzz/fuzz_image.cpp). The shift only garbles the pixels of a file that is
// corrupt anyway; every read stays in bounds, which ASan keeps checking here.
#define STB_IMAGE_IMPLEMENTATION
#define STBI_FAILURE_USERMSG
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
#define STBI_NO_STDIO
#define STBI_MAX_DIMENSIONS (1 << 16)
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wall"
#pragma GCC diagnostic ignored "-Wextra"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wcast-align"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#endif
#include <stb/stb_image.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
