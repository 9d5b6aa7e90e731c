#include "neutrino/io/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <memory>
#include <system_error>

#include "neutrino/core/error.h"

namespace neutrino::io {

std::string errno_text(int err) { return std::generic_category().message(err); }

namespace {
const char* file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}
}  // namespace

// stat before open: opening a FIFO for reading blocks until a writer comes, and reading a device
// may never end. O_NONBLOCK covers a path swapped for a FIFO between the stat and the open; the
// fstat after it checks what was opened.
FilePtr open_regular_file(const std::string& path, uint64_t& size) {
  struct stat st;
  NEUTRINO_CHECK_IO(::stat(path.c_str(), &st) == 0, "{}: cannot open: {}", path, errno_text(errno));
  NEUTRINO_CHECK_IO(S_ISREG(st.st_mode), "{}: not a regular file ({})", path, file_kind(st.st_mode));
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  NEUTRINO_CHECK_IO(fd >= 0, "{}: cannot open: {}", path, errno_text(errno));
  FilePtr f(::fdopen(fd, "rb"));
  if (f == nullptr) {
    const int err = errno;
    ::close(fd);
    throw IOError(fmt::format("{}: cannot open: {}", path, errno_text(err)));
  }
  NEUTRINO_CHECK_IO(::fstat(fd, &st) == 0, "{}: cannot stat: {}", path, errno_text(errno));
  NEUTRINO_CHECK_IO(S_ISREG(st.st_mode), "{}: not a regular file ({})", path, file_kind(st.st_mode));
  const int flags = ::fcntl(fd, F_GETFL);
  NEUTRINO_CHECK_IO(flags >= 0 && ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) == 0,
                    "{}: cannot set blocking reads: {}", path, errno_text(errno));
  size = static_cast<uint64_t>(st.st_size);
  return f;
}

namespace {
// The whole file; its size comes from fstat, so the allocation matches bytes that exist.
std::vector<uint8_t> read_file_impl(const std::string& path) {
  uint64_t size = 0;
  const FilePtr f = open_regular_file(path, size);
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  if (!bytes.empty() && std::fread(bytes.data(), 1, bytes.size(), f.get()) != bytes.size()) {
    NEUTRINO_CHECK_IO(!std::ferror(f.get()), "{}: read error: {}", path, errno_text(errno));
    throw IOError(fmt::format("{}: unexpected end of file (did the file change?)", path));
  }
  return bytes;
}

// Owns the temporary file of an atomic save: closes it and removes it unless the save committed.
struct TempFile {
  int fd;
  std::string path;
  bool committed = false;
  ~TempFile() {
    if (fd >= 0) ::close(fd);
    if (!committed) ::unlink(path.c_str());
  }
};

// Temporary file in the same directory (so rename is atomic), fsync, rename, fsync the directory:
// a crash leaves either the old file or the new one under `path`, never a partial one.
void write_file_atomically_impl(const std::string& path, const std::vector<uint8_t>& bytes) {
  static std::atomic<uint64_t> counter{0};
  const std::string tmp = fmt::format("{}.tmp.{}.{}", path, ::getpid(), counter++);
  // O_EXCL | O_NOFOLLOW: a file or symlink planted at the temporary name must not be written.
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
  NEUTRINO_CHECK_IO(fd >= 0, "{}: cannot create temporary file {}: {}", path, tmp,
                    errno_text(errno));
  TempFile temp{fd, tmp};
  for (size_t done = 0; done < bytes.size();) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    NEUTRINO_CHECK_IO(n > 0, "{}: cannot write {}: {}", path, tmp,
                      n < 0 ? errno_text(errno) : std::string("no bytes written"));
    done += static_cast<size_t>(n);
  }
  NEUTRINO_CHECK_IO(::fsync(fd) == 0, "{}: cannot sync {}: {}", path, tmp, errno_text(errno));
  temp.fd = -1;
  NEUTRINO_CHECK_IO(::close(fd) == 0, "{}: cannot close {}: {}", path, tmp, errno_text(errno));
  NEUTRINO_CHECK_IO(::rename(tmp.c_str(), path.c_str()) == 0, "{}: cannot rename {} over it: {}",
                    path, tmp, errno_text(errno));
  temp.committed = true;
  // Without this a crash can bring back the old directory entry.
  const size_t slash = path.find_last_of('/');
  const std::string dir =
      slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  NEUTRINO_CHECK_IO(dfd >= 0, "{}: written, but cannot open directory {} to sync it: {}", path, dir,
                    errno_text(errno));
  const int rc = ::fsync(dfd);
  const int err = errno;
  ::close(dfd);
  // Some file systems cannot fsync a directory (EINVAL); there the rename is as durable as it gets.
  NEUTRINO_CHECK_IO(rc == 0 || err == EINVAL, "{}: written, but cannot sync directory {}: {}", path,
                    dir, errno_text(err));
}

}  // namespace

std::vector<uint8_t> read_file(const std::string& path) { return read_file_impl(path); }

void write_file_atomically(const std::string& path, const std::vector<uint8_t>& bytes) {
  write_file_atomically_impl(path, bytes);
}

}  // namespace neutrino::io
