#include "host/confine.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <string>

namespace fsout::host::confine {

int open_beneath(int dir_fd, std::string_view name, int flags, unsigned mode) {
  std::string component(name);
  open_how how{};
  // O_NOFOLLOW: a symlink as the last component is opened as itself (O_PATH)
  // or refused with ELOOP, never followed.
  how.flags = uint64_t(flags) | O_NOFOLLOW | O_CLOEXEC;
  how.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0;
  // RESOLVE_NO_SYMLINKS also covers symlinks in the middle of the path, which
  // a single component cannot have; BENEATH refuses "..", absolute paths and
  // anything that would land outside dir_fd.
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS;
  for (;;) {
    long fd = syscall(SYS_openat2, dir_fd, component.c_str(), &how, sizeof(how));
    if (fd >= 0) return int(fd);
    if (errno == EAGAIN) continue;  // a concurrent rename raced the resolution: retry
    return -errno;
  }
}

int create_beneath(int dir_fd, std::string_view name, int flags, unsigned mode) {
  // O_EXCL first: openat2 with O_CREAT alone would open whatever already
  // has the name, devices and fifos included.
  int fd = open_beneath(dir_fd, name, flags | O_CREAT | O_EXCL, mode);
  if (fd != -EEXIST || (flags & O_EXCL)) return fd;
  for (int attempt = 0; attempt < 8; ++attempt) {
    int path_fd = open_beneath(dir_fd, name, O_PATH);
    if (path_fd == -ENOENT) {  // removed meanwhile: create after all
      fd = open_beneath(dir_fd, name, flags | O_CREAT | O_EXCL, mode);
      if (fd != -EEXIST) return fd;
      continue;
    }
    if (path_fd < 0) return path_fd;
    struct stat st;
    int result = fstat(path_fd, &st) != 0 ? -errno
                 : S_ISDIR(st.st_mode)    ? -EISDIR
                                          : reopen_node(path_fd, flags & ~(O_CREAT | O_EXCL));
    close(path_fd);
    return result;
  }
  return -EEXIST;
}

namespace {
std::atomic<bool> relative_fd_paths = false;
}  // namespace

std::string fd_path(int fd) {
  return (relative_fd_paths.load(std::memory_order_relaxed) ? "" : "/proc/self/fd/") +
         std::to_string(fd);
}

void use_relative_fd_paths() { relative_fd_paths = true; }

int reopen_node(int node_fd, int flags) {
  struct stat st;
  if (fstat(node_fd, &st) != 0) return -errno;
  if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) return -EACCES;
  flags &= ~(O_CREAT | O_EXCL | O_NOCTTY);
  // Reopening through /proc/self/fd follows the magic link to the inode
  // node_fd holds (no path lookup; it cannot be swapped), so O_NOFOLLOW must
  // not be set here; the type check above is what keeps this safe.
  int fd = open(fd_path(node_fd).c_str(), (flags & ~O_NOFOLLOW) | O_CLOEXEC);
  if (fd < 0) return -errno;
  return fd;
}

}  // namespace fsout::host::confine
