#include "neutrino/data/token_shards.h"

#include <sys/mman.h>

#include <bit>
#include <cstring>
#include <limits>
#include <utility>

#include "neutrino/core/error.h"
#include "neutrino/io/file_io.h"

namespace neutrino::data {

static_assert(std::endian::native == std::endian::little,
              "token shards are little-endian and are read with memcpy");

namespace {

constexpr char kMagic[4] = {'N', 'T', 'O', 'K'};
constexpr uint32_t kVersion = 1;
constexpr uint32_t kHeaderBytes = 32;
constexpr int64_t kMaxVocab = int64_t{1} << 32;
constexpr int64_t kMaxUint16Vocab = int64_t{1} << 16;

template <class T>
void put(std::vector<uint8_t>& out, size_t at, T value) {
  std::memcpy(out.data() + at, &value, sizeof(T));
}

template <class T>
T get(const unsigned char* at) {
  T value;
  std::memcpy(&value, at, sizeof(T));
  return value;
}

struct Header {
  uint32_t width = 0;
  uint64_t vocab_size = 0;
  uint64_t count = 0;
};

// Every field against its range and the count against the file size, before anything is mapped.
Header check_header(const unsigned char* bytes, uint64_t file_size, const std::string& path) {
  NEUTRINO_CHECK_IO(file_size >= kHeaderBytes,
                    "{}: {} bytes, shorter than the {}-byte token shard header", path, file_size,
                    kHeaderBytes);
  NEUTRINO_CHECK_IO(std::memcmp(bytes, kMagic, 4) == 0, "{}: not a token shard (no NTOK magic)",
                    path);
  const auto version = get<uint32_t>(bytes + 4);
  NEUTRINO_CHECK_IO(version == kVersion, "{}: token shard version {} (this build reads {})", path,
                    version, kVersion);
  Header h;
  h.width = get<uint32_t>(bytes + 8);
  NEUTRINO_CHECK_IO(h.width == 2 || h.width == 4, "{}: token width {} (must be 2 or 4)", path,
                    h.width);
  const auto header_bytes = get<uint32_t>(bytes + 12);
  NEUTRINO_CHECK_IO(header_bytes == kHeaderBytes, "{}: header size {} (must be {})", path,
                    header_bytes, kHeaderBytes);
  h.vocab_size = get<uint64_t>(bytes + 16);
  const uint64_t max_vocab = h.width == 2 ? kMaxUint16Vocab : kMaxVocab;
  NEUTRINO_CHECK_IO(h.vocab_size >= 1 && h.vocab_size <= max_vocab,
                    "{}: vocab_size {} does not fit {}-byte "
                    "tokens (1 to {})",
                    path, h.vocab_size, h.width, max_vocab);
  h.count = get<uint64_t>(bytes + 24);
  const uint64_t room = (file_size - kHeaderBytes) / h.width;
  NEUTRINO_CHECK_IO(h.count == room && (file_size - kHeaderBytes) % h.width == 0,
                    "{}: the header declares "
                    "{} tokens of {} bytes, the file holds {} bytes after the header (truncated or "
                    "damaged)",
                    path, h.count, h.width, file_size - kHeaderBytes);
  return h;
}

}  // namespace

void write_token_shard(const std::string& path, const std::vector<int64_t>& tokens,
                       int64_t vocab_size) {
  NEUTRINO_CHECK_VALUE(vocab_size >= 1 && vocab_size <= kMaxVocab,
                       "{}: vocab_size must be from 1 to {}, "
                       "got {}",
                       path, kMaxVocab, vocab_size);
  const uint32_t width = vocab_size <= kMaxUint16Vocab ? 2 : 4;
  std::vector<uint8_t> bytes(kHeaderBytes + tokens.size() * width);
  std::memcpy(bytes.data(), kMagic, 4);
  put<uint32_t>(bytes, 4, kVersion);
  put<uint32_t>(bytes, 8, width);
  put<uint32_t>(bytes, 12, kHeaderBytes);
  put<uint64_t>(bytes, 16, static_cast<uint64_t>(vocab_size));
  put<uint64_t>(bytes, 24, tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) {
    NEUTRINO_CHECK_VALUE(tokens[i] >= 0 && tokens[i] < vocab_size,
                         "{}: token {} is {}, outside the "
                         "vocabulary [0, {})",
                         path, i, tokens[i], vocab_size);
    if (width == 2) {
      put<uint16_t>(bytes, kHeaderBytes + i * 2, static_cast<uint16_t>(tokens[i]));
    } else {
      put<uint32_t>(bytes, kHeaderBytes + i * 4, static_cast<uint32_t>(tokens[i]));
    }
  }
  io::write_file_atomically(path, bytes);
}

TokenShard::TokenShard(const std::string& path) : path_(path) {
  uint64_t file_size = 0;
  const io::FilePtr file = io::open_regular_file(path, file_size);  // never a FIFO or a device
  unsigned char header[kHeaderBytes] = {};
  const size_t got = std::fread(header, 1, sizeof(header), file.get());
  const Header h = check_header(header, got < kHeaderBytes ? got : file_size, path);
  void* map = ::mmap(nullptr, file_size, PROT_READ, MAP_PRIVATE, ::fileno(file.get()), 0);
  NEUTRINO_CHECK_IO(map != MAP_FAILED, "{}: cannot map the file: {}", path, io::errno_text(errno));
  map_ = static_cast<const unsigned char*>(map);
  map_size_ = file_size;
  width_ = static_cast<int>(h.width);
  vocab_size_ = static_cast<int64_t>(h.vocab_size);
  count_ = static_cast<int64_t>(h.count);
  // The check reads the file front to back; the windows then jump around, where read-ahead
  // would only fetch pages nobody reads. Both are hints, so their failure changes nothing.
  ::madvise(map, file_size, MADV_SEQUENTIAL);
  for (int64_t i = 0; i < count_; ++i) {
    if (token(i) < vocab_size_) continue;
    const int64_t bad = token(i);
    unmap();
    throw IOError(fmt::format("{}: token {} is {}, outside the vocabulary of {}", path, i, bad,
                              h.vocab_size));
  }
  ::madvise(map, file_size, MADV_RANDOM);
}

TokenShard::~TokenShard() { unmap(); }

TokenShard::TokenShard(TokenShard&& other) noexcept { *this = std::move(other); }

TokenShard& TokenShard::operator=(TokenShard&& other) noexcept {
  if (this == &other) return *this;
  unmap();
  path_ = std::move(other.path_);
  map_ = std::exchange(other.map_, nullptr);
  map_size_ = std::exchange(other.map_size_, 0);
  count_ = std::exchange(other.count_, 0);
  vocab_size_ = other.vocab_size_;
  width_ = other.width_;
  return *this;
}

void TokenShard::unmap() noexcept {
  if (map_ != nullptr) ::munmap(const_cast<unsigned char*>(map_), map_size_);
  map_ = nullptr;
}

int64_t TokenShard::token(int64_t i) const {
  const unsigned char* at = map_ + kHeaderBytes + static_cast<size_t>(i) * width_;
  return width_ == 2 ? get<uint16_t>(at) : get<uint32_t>(at);
}

int64_t TokenShard::at(int64_t i) const {
  NEUTRINO_CHECK_VALUE(i >= 0 && i < count_, "{}: token index {} is outside [0, {})", path_, i,
                       count_);
  return token(i);
}

void TokenShard::read(int64_t start, int64_t n, int64_t* out) const {
  // The message says n, not start + n: a hostile start near INT64_MAX would overflow the sum.
  NEUTRINO_CHECK_VALUE(start >= 0 && n >= 0 && n <= count_ && start <= count_ - n,
                       "{}: {} tokens from index {} are outside [0, {})", path_, n, start, count_);
  for (int64_t i = 0; i < n; ++i) out[i] = token(start + i);
}

TokenWindows::TokenWindows(const TokenShard& shard, int64_t context, uint64_t seed)
    : shard_(shard), context_(context), seed_(seed) {
  NEUTRINO_CHECK_VALUE(context >= 1, "TokenWindows: context must be at least 1, got {}", context);
  NEUTRINO_CHECK_VALUE(shard.size() > context,
                       "{}: {} tokens, too few for a window of context {} + 1", shard.path(),
                       shard.size(), context);
}

int64_t TokenWindows::start_of(int64_t window) const {
  // A splitmix64-style finalizer of the window number, so that neighbouring windows get
  // unrelated seeds (Generator's own seeding would give seed and seed + 1 overlapping states).
  uint64_t z = static_cast<uint64_t>(window) * 0x9e3779b97f4a7c15ULL + 0x632be59bd9b4e019ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  Generator generator(seed_ ^ z ^ (z >> 31));
  return static_cast<int64_t>(generator.below(static_cast<uint64_t>(shard_.size() - context_)));
}

std::vector<int64_t> TokenWindows::next() {
  std::vector<int64_t> window(static_cast<size_t>(context_ + 1));
  shard_.read(start_of(position_), context_ + 1, window.data());
  ++position_;
  return window;
}

Tensor TokenWindows::next_batch(int64_t batch) {
  NEUTRINO_CHECK_VALUE(batch >= 1 && batch <= std::numeric_limits<int32_t>::max() / (context_ + 1),
                       "TokenWindows: batch must be from 1 to {} for context {}, got {}",
                       std::numeric_limits<int32_t>::max() / (context_ + 1), context_, batch);
  std::vector<int64_t> values(static_cast<size_t>(batch * (context_ + 1)));
  for (int64_t b = 0; b < batch; ++b) {
    shard_.read(start_of(position_), context_ + 1, values.data() + b * (context_ + 1));
    ++position_;
  }
  return Tensor::from_vector(values, {batch, context_ + 1});
}

void TokenWindows::seek(int64_t windows_drawn) {
  NEUTRINO_CHECK_VALUE(windows_drawn >= 0, "TokenWindows: seek position must be >= 0, got {}",
                       windows_drawn);
  position_ = windows_drawn;
}

}  // namespace neutrino::data
