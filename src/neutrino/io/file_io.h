// Whole-file reads and crash-safe writes, shared by every reader and writer.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

namespace neutrino::io {

// strerror for an errno value, thread-safe.
std::string errno_text(int err);

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

// `path` opened for reading, with its size from fstat; IOError names the path when it is missing,
// unreadable or not a regular file (a directory, a FIFO, a device, a socket). The type is checked
// before the open, so a FIFO never blocks us. Every reader of a user's file goes through this.
FilePtr open_regular_file(const std::string& path, uint64_t& size);

// The whole regular file at `path`; errors (missing, a directory, a short read) name the path.
std::vector<uint8_t> read_file(const std::string& path);

// Writes `bytes` to a new temporary file in the same folder, fsyncs it, renames it over `path`
// and fsyncs the folder: a crash or kill at any point leaves the old file or the new one under
// `path`, never a partial one. On failure (disk full, read-only folder) the temporary file is
// removed, the old file is untouched, and IOError names the path.
//
// The temporary file is `path`.tmp.PID.N. A process killed mid-write leaves its temporary file
// behind; the next write of the same `path` removes those whose PID is no longer running (a
// live process's, or a reused PID's, are left alone; PIDs are this machine's, so a folder shared
// with another machine or PID namespace may keep or lose such files wrongly). A write past
// `ulimit -f` fails with EFBIG (where SIGXFSZ is ignored, as bin/neutrino does) like any other
// write error.
void write_file_atomically(const std::string& path, const std::vector<uint8_t>& bytes);

// Refuses, naming `path`, when no file can be created beside it (a missing or read-only folder):
// creates and removes the temporary file `path`.tmp.PID.N.probe. For long jobs that write at the
// end, so that they fail before the work rather than after it.
void check_can_write(const std::string& path);

}  // namespace neutrino::io
