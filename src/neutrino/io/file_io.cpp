#include "neutrino/io/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <signal.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <filesystem>
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

std::string directory_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
}

// The pid in NAME.tmp.PID.N (or check_can_write's NAME.tmp.PID.N.probe) when `entry` is a
// temporary file of `base` (the target's file name), else 0.
pid_t temp_owner(const std::string& entry, const std::string& base) {
  const std::string prefix = base + ".tmp.";
  if (!entry.starts_with(prefix)) return 0;
  std::string rest = entry.substr(prefix.size());
  if (rest.ends_with(".probe")) rest.resize(rest.size() - 6);
  const size_t dot = rest.find('.');
  if (dot == 0 || dot == std::string::npos || dot + 1 == rest.size() ||
      rest.find_first_not_of("0123456789.") != std::string::npos ||
      rest.find('.', dot + 1) != std::string::npos || dot > 9) {
    return 0;
  }
  return static_cast<pid_t>(std::stol(rest.substr(0, dot)));
}

// Temporary files of `path` left by a process that was killed mid-write: their owner is dead.
// A live owner's (or a reused pid's) are left alone. Best effort: errors are ignored.
void remove_stale_temps(const std::string& path) {
  namespace fs = std::filesystem;
  const std::string base = fs::path(path).filename().string();
  std::error_code ec;
  for (fs::directory_iterator it(directory_of(path), ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const pid_t owner = temp_owner(name, base);
    if (owner <= 0 || owner == ::getpid()) continue;
    if (::kill(owner, 0) == 0 || errno != ESRCH) continue;  // alive, or not ours to judge
    std::error_code ignored;
    if (it->is_regular_file(ignored)) fs::remove(it->path(), ignored);
  }
}

std::string temp_name(const std::string& path, const char* what) {
  static std::atomic<uint64_t> counter{0};
  return fmt::format("{}.tmp.{}.{}{}", path, ::getpid(), counter++, what);
}

// Temporary file in the same directory (so rename is atomic), fsync, rename, fsync the directory:
// a crash leaves either the old file or the new one under `path`, never a partial one.
void write_file_atomically_impl(const std::string& path, const std::vector<uint8_t>& bytes) {
  remove_stale_temps(path);
  const std::string tmp = temp_name(path, "");
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
  const std::string dir = directory_of(path);
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

void check_can_write(const std::string& path) {
  NEUTRINO_CHECK_IO(!path.empty() && path.back() != '/', "{}: not a file name", path);
  const std::string probe = temp_name(path, ".probe");
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
  NEUTRINO_CHECK_IO(fd >= 0, "{}: cannot write there: cannot create {}: {}", path, probe,
                    errno_text(errno));
  ::close(fd);
  ::unlink(probe.c_str());
}

}  // namespace neutrino::io
