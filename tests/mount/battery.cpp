// battery: a fixed, deterministic sequence of file-system operations for differential testing.
//
// Usage: battery [--skip-nonroot] ROOT
//
// Runs every step inside the existing, empty directory ROOT (relative paths only, after
// chdir(ROOT)) and prints one transcript line per step, "family.step: result", on stdout.
// Results never contain inode numbers, device numbers, absolute paths, unset timestamps or
// timings, so two runs on file systems with the same semantics give identical transcripts.
// A failed syscall prints its errno name. Nothing stops the run early; at the end everything
// created is removed again. Exit code 0, or 2 (with a message on stderr) if ROOT is unusable.
//
// Only libc/POSIX/Linux headers and the C++ standard library are used.

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/falloc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "transcript.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif
#ifndef RENAME_WHITEOUT
#define RENAME_WHITEOUT (1 << 2)
#endif

namespace {

constexpr off_t kKiB = 1024;
constexpr off_t kMiB = 1024 * kKiB;
constexpr off_t kGiB = 1024 * kMiB;
constexpr int kChildTimeoutMs = 10000;
constexpr uid_t kNobody = 65534;

// ---------------------------------------------------------------------------------------------
// Formatting helpers

using transcript::ErrnoName;
using transcript::TypeName;

// "ok" for rc >= 0, else the errno name. Pass the syscall result directly.
std::string Ok(long rc) { return rc < 0 ? ErrnoName(errno) : "ok"; }
// The number for rc >= 0, else the errno name.
std::string Num(long rc) { return rc < 0 ? ErrnoName(errno) : std::to_string(rc); }
std::string YesNo(bool b) { return b ? "yes" : "no"; }

uint64_t Fnv1a64(std::string_view data) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : data) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

std::string Hex(uint64_t v) {
  char buf[32];
  snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string Escape(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out + "\"";
}

// Length plus the data itself (short data) or its FNV-1a-64 hash (long data).
std::string Describe(std::string_view s) {
  if (s.size() <= 48) return std::to_string(s.size()) + " " + Escape(s);
  return std::to_string(s.size()) + " fnv=" + Hex(Fnv1a64(s));
}

std::string Octal(mode_t m) {
  char buf[16];
  snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(m & 07777));
  return buf;
}

std::string Ts(const timespec& ts) {
  char buf[48];
  snprintf(buf, sizeof buf, "%lld.%09ld", static_cast<long long>(ts.tv_sec), ts.tv_nsec);
  return buf;
}

bool SameTs(const timespec& a, const timespec& b) {
  return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

bool Recent(const timespec& ts) {
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  long long d = static_cast<long long>(now.tv_sec) - static_cast<long long>(ts.tv_sec);
  return d >= -10 && d <= 10;
}

// Type, permission bits, and (except for directories, whose size and link count depend on the
// file system's layout) size and link count.
std::string StatString(const struct stat& st) {
  std::string s = TypeName(st.st_mode) + " mode=" + Octal(st.st_mode);
  if (!S_ISDIR(st.st_mode)) {
    s += " size=" + std::to_string(st.st_size) + " nlink=" + std::to_string(st.st_nlink);
  }
  return s;
}

std::string StatDesc(const std::string& path, bool follow = true) {
  struct stat st {};
  int rc = follow ? stat(path.c_str(), &st) : lstat(path.c_str(), &st);
  if (rc != 0) return ErrnoName(errno);
  return StatString(st);
}

std::string Owner(const std::string& path, bool follow = true) {
  struct stat st {};
  int rc = follow ? stat(path.c_str(), &st) : lstat(path.c_str(), &st);
  if (rc != 0) return ErrnoName(errno);
  return "uid=" + std::to_string(st.st_uid) + " gid=" + std::to_string(st.st_gid) +
         " mode=" + Octal(st.st_mode);
}

std::string Times(const std::string& path, bool follow = true) {
  struct stat st {};
  int rc = follow ? stat(path.c_str(), &st) : lstat(path.c_str(), &st);
  if (rc != 0) return ErrnoName(errno);
  return "atime=" + Ts(st.st_atim) + " mtime=" + Ts(st.st_mtim);
}

// Deterministic pseudo-random bytes (xorshift64*).
std::string Pattern(size_t n, uint64_t seed) {
  std::string out(n, '\0');
  uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;
  for (size_t i = 0; i < n; ++i) {
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    out[i] = static_cast<char>((x * 0x2545f4914f6cdd1dULL) >> 56);
  }
  return out;
}

bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Transcript: prints "prefix.step: result" lines, unbuffered, to one fd.

class Transcript {
 public:
  explicit Transcript(int fd) : fd_(fd) {}

  void Section(std::string_view prefix) { prefix_ = prefix; }
  const std::string& prefix() const { return prefix_; }

  void Say(std::string_view step, std::string_view result) {
    std::string line = prefix_;
    if (!line.empty()) line += '.';
    line.append(step).append(": ").append(result);
    Raw(line);
  }

  // A complete line without the prefix (used to relay a child's transcript).
  void Raw(std::string_view line) {
    std::string l(line);
    l += '\n';
    WriteAll(fd_, l);
    ++lines_;
  }

  int lines() const { return lines_; }

 private:
  int fd_;
  std::string prefix_;
  int lines_ = 0;
};

// ---------------------------------------------------------------------------------------------
// File helpers

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { Reset(); }
  int get() const { return fd_; }
  bool ok() const { return fd_ >= 0; }
  void Reset() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// Opens, reports "ok" or the errno name, and closes again.
std::string OpenResult(const std::string& path, int flags, mode_t mode = 0) {
  int fd = open(path.c_str(), flags, mode);
  if (fd < 0) return ErrnoName(errno);
  close(fd);
  return "ok";
}

// Reads up to len bytes at off, looping over short reads. Returns 0 or an errno.
int PreadFull(int fd, off_t off, size_t len, std::string* out) {
  out->assign(len, '\0');
  size_t got = 0;
  while (got < len) {
    ssize_t n = pread(fd, out->data() + got, len - got, off + static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  out->resize(got);
  return 0;
}

std::string ReadAt(int fd, off_t off, size_t len) {
  std::string data;
  int e = PreadFull(fd, off, len, &data);
  return e ? ErrnoName(e) : Describe(data);
}

// Reads a whole file through a fresh descriptor. Returns 0 or an errno.
int ReadFile(const std::string& path, std::string* out) {
  out->clear();
  int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) return errno;
  int e = 0;
  for (;;) {
    std::string chunk;
    e = PreadFull(fd, static_cast<off_t>(out->size()), static_cast<size_t>(kMiB), &chunk);
    if (e != 0 || chunk.empty()) break;
    *out += chunk;
  }
  close(fd);
  return e;
}

std::string Content(const std::string& path) {
  std::string data;
  int e = ReadFile(path, &data);
  return e ? ErrnoName(e) : Describe(data);
}

std::string WriteFile(const std::string& path, std::string_view data, mode_t mode = 0644) {
  int fd = open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY, mode);
  if (fd < 0) return ErrnoName(errno);
  std::string result = "ok";
  while (!data.empty()) {
    ssize_t n = write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      result = ErrnoName(errno);
      break;
    }
    if (n == 0) {
      result = "short-write";
      break;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  if (close(fd) != 0 && result == "ok") result = ErrnoName(errno);
  return result;
}

std::string FstatSize(int fd) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return ErrnoName(errno);
  return std::to_string(st.st_size);
}

long Rename2(const std::string& from, const std::string& to, unsigned flags) {
  return syscall(SYS_renameat2, AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), flags);
}

// Removes path recursively. Returns 0 or the first errno.
int RemoveTree(const std::string& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) return errno;
  if (!S_ISDIR(st.st_mode)) return unlink(path.c_str()) == 0 ? 0 : errno;
  int first = 0;
  DIR* d = opendir(path.c_str());
  if (d == nullptr) return errno;
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  closedir(d);
  for (const std::string& n : names) {
    int e = RemoveTree(path + "/" + n);
    if (first == 0) first = e;
  }
  if (rmdir(path.c_str()) != 0 && first == 0) first = errno;
  return first;
}

// Reads up to max entries; *err receives the errno of a failing readdir (0 if none).
std::vector<std::string> ReadEntries(DIR* d, size_t max, int* err) {
  std::vector<std::string> out;
  *err = 0;
  while (out.size() < max) {
    errno = 0;
    dirent* e = readdir(d);
    if (e == nullptr) {
      *err = errno;
      break;
    }
    out.emplace_back(e->d_name);
  }
  return out;
}

// Entry names of a directory without "." and "..", sorted; or an errno.
int ListDir(const std::string& path, std::vector<std::string>* names) {
  names->clear();
  DIR* d = opendir(path.c_str());
  if (d == nullptr) return errno;
  int err = 0;
  for (std::string& n : ReadEntries(d, SIZE_MAX, &err)) {
    if (n != "." && n != "..") names->push_back(std::move(n));
  }
  closedir(d);
  std::sort(names->begin(), names->end());
  return err;
}

// ---------------------------------------------------------------------------------------------
// Child: a forked helper process whose transcript lines travel back through a pipe, so only
// the parent prints and the transcript stays in order. The parent can release a child waiting
// in WaitGo(). A child that makes the parent wait more than 10 s is killed ("child: timeout").

class Child {
 public:
  using Body = std::function<void(Transcript&, Child&)>;

  // The child's lines are printed as "<t.prefix()>.<tag>.step"; the parent reports the exit
  // status as "<tag>-exit" and a timeout as "<tag>: timeout".
  Child(const Transcript& t, const std::string& tag, const Body& body) : tag_(tag) {
    int up[2] = {-1, -1};
    int down[2] = {-1, -1};
    if (pipe2(up, O_CLOEXEC) != 0) {
      start_error_ = errno;
      return;
    }
    if (pipe2(down, O_CLOEXEC) != 0) {
      start_error_ = errno;
      close(up[0]);
      close(up[1]);
      return;
    }
    pid_ = fork();
    if (pid_ < 0) {
      start_error_ = errno;
      for (int fd : {up[0], up[1], down[0], down[1]}) close(fd);
      return;
    }
    if (pid_ == 0) {
      close(up[0]);
      close(down[1]);
      up_ = up[1];
      down_ = down[0];
      alarm(60);  // Backstop in case the parent disappears.
      Transcript ct(up_);
      ct.Section(t.prefix().empty() ? tag : t.prefix() + "." + tag);
      try {
        body(ct, *this);
      } catch (...) {
        _exit(3);
      }
      _exit(0);
    }
    close(up[1]);
    close(down[0]);
    up_ = up[0];
    down_ = down[1];
  }

  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  ~Child() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
    CloseFds();
  }

  pid_t pid() const { return pid_; }

  // Parent: relays the child's lines until it sends the line "@mark" (returns true), or until
  // EOF (mark empty: the normal end) or a timeout (the child is then killed).
  bool RelayUntil(Transcript& t, std::string_view mark) {
    if (pid_ <= 0) return false;
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(kChildTimeoutMs);
    for (;;) {
      size_t nl;
      while ((nl = buf_.find('\n')) != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        if (!mark.empty() && line.size() == mark.size() + 1 && line[0] == '@' &&
            std::string_view(line).substr(1) == mark) {
          return true;
        }
        t.Raw(line);
      }
      if (eof_) {
        if (!buf_.empty()) t.Raw(buf_);
        buf_.clear();
        return mark.empty();
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                      deadline - std::chrono::steady_clock::now())
                      .count();
      if (left <= 0) {
        KillOnTimeout(t);
        return false;
      }
      pollfd p{up_, POLLIN, 0};
      int r = poll(&p, 1, static_cast<int>(left));
      if (r < 0 && errno == EINTR) continue;
      if (r == 0) {
        KillOnTimeout(t);
        return false;
      }
      char tmp[4096];
      ssize_t n = read(up_, tmp, sizeof tmp);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        eof_ = true;
      } else {
        buf_.append(tmp, static_cast<size_t>(n));
      }
    }
  }

  // Parent: lets a child blocked in WaitGo() continue.
  void Go() {
    if (pid_ <= 0 || down_ < 0) return;
    char c = 'g';
    WriteAll(down_, std::string_view(&c, 1));
  }

  // Parent: relays the rest of the child's transcript, reaps it, prints its exit status.
  void Finish(Transcript& t) {
    if (pid_ < 0 && start_error_ != 0) {
      t.Say(tag_, "fork-failed " + ErrnoName(start_error_));
      start_error_ = 0;
    }
    if (pid_ <= 0) return;
    if (!RelayUntil(t, "")) return;  // Timed out: already killed and reported.
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(kChildTimeoutMs);
    for (;;) {
      int status = 0;
      pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        CloseFds();
        if (WIFEXITED(status)) {
          t.Say(tag_ + "-exit", std::to_string(WEXITSTATUS(status)));
        } else if (WIFSIGNALED(status)) {
          t.Say(tag_ + "-exit", "signal " + std::to_string(WTERMSIG(status)));
        } else {
          t.Say(tag_ + "-exit", "unknown");
        }
        return;
      }
      if (r < 0 && errno != EINTR) {
        t.Say(tag_ + "-exit", ErrnoName(errno));
        pid_ = -1;
        CloseFds();
        return;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        KillOnTimeout(t);
        return;
      }
      usleep(2000);
    }
  }

  // Child: sends a synchronisation mark to the parent.
  void Mark(std::string_view mark) {
    std::string l = "@" + std::string(mark) + "\n";
    WriteAll(up_, l);
  }

  // Child: waits for Go(); exits if the parent went away.
  void WaitGo() {
    char c;
    ssize_t n;
    do {
      n = read(down_, &c, 1);
    } while (n < 0 && errno == EINTR);
    if (n != 1) _exit(4);
  }

 private:
  void KillOnTimeout(Transcript& t) {
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    CloseFds();
    buf_.clear();
    t.Say(tag_, "timeout");
  }

  void CloseFds() {
    if (up_ >= 0) close(up_);
    if (down_ >= 0) close(down_);
    up_ = down_ = -1;
  }

  std::string tag_;
  pid_t pid_ = -1;
  int start_error_ = 0;
  int up_ = -1;    // child -> parent transcript lines
  int down_ = -1;  // parent -> child "go" bytes
  std::string buf_;
  bool eof_ = false;
};

// ---------------------------------------------------------------------------------------------
// Step families

void BasicIo(Transcript& t) {
  t.Section("io");
  t.Say("mkdir", Ok(mkdir("io", 0755)));
  {
    Fd fd(open("io/a", O_CREAT | O_RDWR | O_TRUNC, 0644));
    t.Say("create", Ok(fd.get()));
    t.Say("create-stat", StatDesc("io/a"));
    t.Say("write", Num(write(fd.get(), "hello world\n", 12)));
    t.Say("fstat-size", FstatSize(fd.get()));
    t.Say("pread-0-5", ReadAt(fd.get(), 0, 5));
    t.Say("pread-6-100", ReadAt(fd.get(), 6, 100));
    t.Say("pread-at-eof", ReadAt(fd.get(), 12, 10));
    t.Say("pread-past-eof", ReadAt(fd.get(), 1000, 10));
    t.Say("lseek-cur", Num(lseek(fd.get(), 0, SEEK_CUR)));
    t.Say("lseek-end", Num(lseek(fd.get(), -2, SEEK_END)));
    t.Say("lseek-set", Num(lseek(fd.get(), 0, SEEK_SET)));
    t.Say("lseek-negative", Num(lseek(fd.get(), -1, SEEK_SET)));
    char buf[16] = {};
    ssize_t n = read(fd.get(), buf, 5);
    t.Say("read-5", n < 0 ? ErrnoName(errno) : Describe(std::string_view(buf, n)));
    n = read(fd.get(), buf, 16);
    t.Say("read-continues", n < 0 ? ErrnoName(errno) : Describe(std::string_view(buf, n)));
    t.Say("read-at-eof", Num(read(fd.get(), buf, 16)));
    t.Say("pwrite-gap", Num(pwrite(fd.get(), "X", 1, 20)));
    t.Say("size-after-gap", FstatSize(fd.get()));
    t.Say("content-after-gap", ReadAt(fd.get(), 0, 100));
    t.Say("file-offset-unchanged-by-pwrite", Num(lseek(fd.get(), 0, SEEK_CUR)));
  }
  {
    Fd ap(open("io/a", O_WRONLY | O_APPEND));
    t.Say("open-append", Ok(ap.get()));
    t.Say("append-seek-0", Num(lseek(ap.get(), 0, SEEK_SET)));
    t.Say("append-write", Num(write(ap.get(), "APP", 3)));
    t.Say("append-offset", Num(lseek(ap.get(), 0, SEEK_CUR)));
    t.Say("append-pwrite-at-0", Num(pwrite(ap.get(), "PW", 2, 0)));  // Linux: lands at end.
    t.Say("append-size", FstatSize(ap.get()));
    t.Say("append-content", Content("io/a"));
  }
  {
    Fd rw(open("io/a", O_RDWR));
    t.Say("open-rdwr", Ok(rw.get()));
    t.Say("ftruncate-grow", Ok(ftruncate(rw.get(), 100)));
    t.Say("size-grown", FstatSize(rw.get()));
    t.Say("content-grown", Content("io/a"));
    t.Say("tail-of-grown", ReadAt(rw.get(), 90, 20));
    t.Say("ftruncate-shrink", Ok(ftruncate(rw.get(), 5)));
    t.Say("content-shrunk", Content("io/a"));
    t.Say("truncate-path", Ok(truncate("io/a", 3)));
    t.Say("fstat-after-path-truncate", FstatSize(rw.get()));
    t.Say("content-truncated", Content("io/a"));
    t.Say("regrow-reads-zeros",
          (ftruncate(rw.get(), 8) == 0) ? ReadAt(rw.get(), 0, 64) : ErrnoName(errno));
  }
  t.Say("truncate-missing", Ok(truncate("io/missing", 3)));
  t.Say("truncate-dir", Ok(truncate("io", 0)));
  t.Say("truncate-negative", Ok(truncate("io/a", -1)));
  {
    Fd ro(open("io/a", O_RDONLY));
    t.Say("open-rdonly", Ok(ro.get()));
    t.Say("write-on-rdonly", Num(write(ro.get(), "x", 1)));
    t.Say("ftruncate-on-rdonly", Ok(ftruncate(ro.get(), 0)));
  }
  {
    Fd wo(open("io/a", O_WRONLY));
    char c;
    t.Say("read-on-wronly", Num(read(wo.get(), &c, 1)));
  }
  t.Say("open-trunc", OpenResult("io/a", O_WRONLY | O_TRUNC));
  t.Say("size-after-o-trunc", StatDesc("io/a"));
  t.Say("create-0600", OpenResult("io/b", O_CREAT | O_WRONLY, 0600));
  t.Say("mode-0600", StatDesc("io/b"));
  t.Say("recreate-keeps-mode", OpenResult("io/b", O_CREAT | O_WRONLY, 0666));
  t.Say("mode-still-0600", StatDesc("io/b"));
  {
    Fd w(open("io/c", O_CREAT | O_RDWR, 0644));
    Fd r(open("io/c", O_RDONLY));
    t.Say("two-fds-open", Ok(w.ok() && r.ok() ? 0 : -1));
    t.Say("two-fds-write", Num(pwrite(w.get(), "coherent", 8, 0)));
    t.Say("two-fds-read-other", ReadAt(r.get(), 0, 100));
    t.Say("two-fds-overwrite", Num(pwrite(w.get(), "CO", 2, 0)));
    t.Say("two-fds-reread", ReadAt(r.get(), 0, 100));
  }
}

void ErrorCases(Transcript& t) {
  t.Section("errors");
  t.Say("mkdir", Ok(mkdir("err", 0755)));
  t.Say("create-file", WriteFile("err/f", "data"));
  t.Say("mkdir-sub", Ok(mkdir("err/d", 0755)));
  t.Say("creat-excl-existing", OpenResult("err/f", O_CREAT | O_EXCL | O_WRONLY, 0644));
  t.Say("creat-excl-existing-dir", OpenResult("err/d", O_CREAT | O_EXCL | O_WRONLY, 0644));
  t.Say("content-unchanged", Content("err/f"));
  t.Say("open-missing", OpenResult("err/missing", O_RDONLY));
  t.Say("open-missing-wronly", OpenResult("err/missing", O_WRONLY));
  t.Say("creat-missing-parent", OpenResult("err/nodir/x", O_CREAT | O_WRONLY, 0644));
  t.Say("open-dir-wronly", OpenResult("err/d", O_WRONLY));
  t.Say("open-dir-rdwr", OpenResult("err/d", O_RDWR));
  t.Say("open-dir-creat", OpenResult("err/d", O_CREAT | O_WRONLY, 0644));
  t.Say("open-dir-rdonly", OpenResult("err/d", O_RDONLY));
  t.Say("open-through-file", OpenResult("err/f/x", O_RDONLY));
  t.Say("creat-through-file", OpenResult("err/f/x", O_CREAT | O_WRONLY, 0644));
  t.Say("mkdir-through-file", Ok(mkdir("err/f/x", 0755)));
  t.Say("stat-through-file", StatDesc("err/f/x"));
  t.Say("unlink-through-file", Ok(unlink("err/f/x")));
  t.Say("stat-file-trailing-slash", StatDesc("err/f/"));
  t.Say("open-file-o-directory", OpenResult("err/f", O_RDONLY | O_DIRECTORY));
  t.Say("creat-trailing-slash", OpenResult("err/new/", O_CREAT | O_WRONLY, 0644));
  t.Say("unlink-dir", Ok(unlink("err/d")));
  t.Say("rmdir-file", Ok(rmdir("err/f")));
  t.Say("unlink-missing", Ok(unlink("err/missing")));
  t.Say("rmdir-missing", Ok(rmdir("err/missing")));
  t.Say("rmdir-dot", Ok(rmdir("err/d/.")));
  t.Say("rmdir-dotdot", Ok(rmdir("err/d/..")));
  t.Say("mkdir-empty-name", Ok(mkdir("", 0755)));
  const std::string name255 = "err/" + std::string(255, 'n');
  const std::string name256 = "err/" + std::string(256, 'n');
  t.Say("creat-name-256", OpenResult(name256, O_CREAT | O_WRONLY, 0644));
  t.Say("mkdir-name-256", Ok(mkdir(name256.c_str(), 0755)));
  t.Say("stat-name-256", StatDesc(name256));
  t.Say("creat-name-255", OpenResult(name255, O_CREAT | O_WRONLY, 0644));
  t.Say("stat-name-255", StatDesc(name255));
  t.Say("unlink-name-255", Ok(unlink(name255.c_str())));
  t.Say("file-intact", StatDesc("err/f"));
}

void LargeIo(Transcript& t) {
  t.Section("bigio");
  t.Say("mkdir", Ok(mkdir("big", 0755)));
  Fd fd(open("big/f", O_CREAT | O_RDWR | O_TRUNC, 0644));
  t.Say("create", Ok(fd.get()));
  const size_t kSize = 3 * kMiB + 12345;
  std::string model = Pattern(kSize, 1);
  t.Say("pattern", Describe(model));
  t.Say("write-one-call", Num(write(fd.get(), model.data(), model.size())));
  t.Say("size", FstatSize(fd.get()));

  auto check_read = [&](off_t off, size_t len) {
    std::string got;
    int e = PreadFull(fd.get(), off, len, &got);
    if (e != 0) return ErrnoName(e);
    std::string_view want;
    if (static_cast<size_t>(off) < model.size()) {
      want = std::string_view(model).substr(static_cast<size_t>(off), len);
    }
    return Describe(got) + (got == want ? " match" : " MISMATCH");
  };
  auto patch = [&](const char* step, off_t off, size_t len, uint64_t seed) {
    std::string data = Pattern(len, seed);
    ssize_t n = pwrite(fd.get(), data.data(), data.size(), off);
    t.Say(step, Num(n));
    if (n > 0) {
      size_t end = static_cast<size_t>(off) + static_cast<size_t>(n);
      if (model.size() < end) model.resize(end, '\0');
      std::memcpy(model.data() + off, data.data(), static_cast<size_t>(n));
    }
  };

  t.Say("pread-all", check_read(0, kSize + 100));
  patch("pwrite-4095-at-1000001", 1000001, 4095, 2);
  patch("pwrite-1-at-3145727", 3145727, 1, 3);
  patch("pwrite-65537-at-2097151", 2097151, 65537, 4);
  patch("pwrite-12345-at-17", 17, 12345, 5);
  patch("pwrite-7-past-eof", static_cast<off_t>(kSize) + 3, 7, 6);
  t.Say("size-after-patches", FstatSize(fd.get()));
  t.Say("pread-1mib+1-at-0", check_read(0, kMiB + 1));
  t.Say("pread-1mib+1-at-999999", check_read(999999, kMiB + 1));
  t.Say("pread-4097-at-1", check_read(1, 4097));
  t.Say("pread-2-at-4095", check_read(4095, 2));
  t.Say("pread-131073-at-1048575", check_read(1048575, 131073));
  t.Say("pread-4095-at-1000001", check_read(1000001, 4095));
  t.Say("pread-gap-bytes", check_read(static_cast<off_t>(kSize) - 1, 5));
  t.Say("pread-across-eof", check_read(static_cast<off_t>(model.size()) - 10, 100));
  // Sequential read() in odd-sized chunks through a fresh descriptor.
  Fd rd(open("big/f", O_RDONLY));
  std::string all;
  std::string chunk(kMiB + 1, '\0');
  std::string result;
  for (;;) {
    ssize_t n = read(rd.get(), chunk.data(), chunk.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      result = ErrnoName(errno);
      break;
    }
    if (n == 0) break;
    all.append(chunk.data(), static_cast<size_t>(n));
  }
  if (result.empty()) result = Describe(all) + (all == model ? " match" : " MISMATCH");
  t.Say("read-sequential-all", result);
  t.Say("content-fresh-open", Content("big/f"));
}

void SparseFile(Transcript& t) {
  t.Section("sparse");
  t.Say("mkdir", Ok(mkdir("sparse", 0755)));
  Fd fd(open("sparse/f", O_CREAT | O_RDWR | O_TRUNC, 0644));
  t.Say("create", Ok(fd.get()));
  const off_t far = 5 * kGiB;
  const std::string head = Pattern(4096, 11);
  const std::string tail = Pattern(4096, 12);
  t.Say("pwrite-4096-at-5g", Num(pwrite(fd.get(), tail.data(), tail.size(), far)));
  t.Say("pwrite-4096-at-0", Num(pwrite(fd.get(), head.data(), head.size(), 0)));
  t.Say("size", FstatSize(fd.get()));
  const std::pair<const char*, off_t> offsets[] = {
      {"0", 0},    {"4k", 4096},          {"1g", kGiB},          {"5g-1", far - 1},
      {"5g", far}, {"5g+100", far + 100}, {"5g+4k", far + 4096}, {"6g", far + kGiB},
  };
  for (const auto& [label, off] : offsets) {
    t.Say(std::string("seek-data-") + label, Num(lseek(fd.get(), off, SEEK_DATA)));
    t.Say(std::string("seek-hole-") + label, Num(lseek(fd.get(), off, SEEK_HOLE)));
  }
  auto expect = [&](off_t off, size_t len, const std::string& want) {
    std::string got;
    int e = PreadFull(fd.get(), off, len, &got);
    if (e != 0) return ErrnoName(e);
    return Describe(got) + (got == want ? " match" : " MISMATCH");
  };
  t.Say("read-head", expect(0, 4096, head));
  t.Say("read-tail", expect(far, 8192, tail));
  t.Say("read-hole-at-2g", expect(2 * kGiB, 4096, std::string(4096, '\0')));
  t.Say("read-hole-to-data", expect(far - 100, 200, std::string(100, '\0') + tail.substr(0, 100)));
  t.Say("read-past-eof", expect(far + 4096, 10, ""));
  struct stat st {};
  if (fstat(fd.get(), &st) == 0) {
    t.Say("allocated-below-1mib", YesNo(static_cast<off_t>(st.st_blocks) * 512 < kMiB));
  } else {
    t.Say("allocated-below-1mib", ErrnoName(errno));
  }
  t.Say("ftruncate-2g", Ok(ftruncate(fd.get(), 2 * kGiB)));
  t.Say("size-after-truncate", FstatSize(fd.get()));
  t.Say("seek-data-4k-after-truncate", Num(lseek(fd.get(), 4096, SEEK_DATA)));
  t.Say("seek-hole-4k-after-truncate", Num(lseek(fd.get(), 4096, SEEK_HOLE)));
  t.Say("read-end-after-truncate", expect(2 * kGiB - 3, 10, std::string(3, '\0')));
}

// fallocate's modes (what the Linux FUSE kernel passes on: KEEP_SIZE, PUNCH_HOLE, ZERO_RANGE
// and their combinations; it refuses the rest itself) and RENAME_WHITEOUT: each must do on the
// host what it does locally. Once, ZERO_RANGE and WHITEOUT were dropped on the way and the
// host did a plain allocation / rename while the program was told it worked.
void SpaceAndWhiteout(Transcript& t) {
  t.Section("space");
  t.Say("mkdir", Ok(mkdir("space", 0755)));
  const std::string data = Pattern(64 * 1024, 21);
  t.Say("setup", WriteFile("space/f", data));
  Fd fd(open("space/f", O_RDWR));
  t.Say("open", Ok(fd.get()));
  auto range = [&](off_t off, size_t len) {
    std::string got;
    int e = PreadFull(fd.get(), off, len, &got);
    if (e != 0) return ErrnoName(e);
    bool zeros = std::all_of(got.begin(), got.end(), [](char c) { return c == 0; });
    return Describe(got) + (zeros ? " zeros" : "");
  };
  auto step = [&](const char* name, int mode, off_t off, off_t len) {
    t.Say(std::string(name), Ok(fallocate(fd.get(), mode, off, len)));
    t.Say(std::string(name) + "-size", FstatSize(fd.get()));
  };
  step("zero-range", FALLOC_FL_ZERO_RANGE, 4096, 8192);
  t.Say("zero-range-zeroed", range(4096, 8192));
  t.Say("zero-range-before", range(0, 4096));
  t.Say("zero-range-after", range(12288, 4096));
  step("zero-range-unaligned", FALLOC_FL_ZERO_RANGE, 20001, 333);
  t.Say("zero-range-unaligned-zeroed", range(20001, 333));
  t.Say("zero-range-unaligned-edges", range(20000, 1) + " / " + range(20334, 1));
  step("zero-range-keep-size-past-eof", FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 60000, 20000);
  t.Say("zero-range-keep-size-tail", range(60000, 8000));
  step("zero-range-extends", FALLOC_FL_ZERO_RANGE, 65536, 10000);
  t.Say("zero-range-extends-tail", range(65536, 20000));
  step("punch-hole-without-keep-size", FALLOC_FL_PUNCH_HOLE, 0, 4096);
  step("punch-hole", FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 30000, 9000);
  t.Say("punch-hole-zeroed", range(30000, 9000));
  t.Say("punch-hole-edges", range(29999, 1) + " / " + range(39000, 1));
  t.Say("seek-hole-after-punch", Num(lseek(fd.get(), 0, SEEK_HOLE)));
  step("punch-hole-past-eof", FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 100000, 4096);
  step("keep-size-past-eof", FALLOC_FL_KEEP_SIZE, 80000, 50000);
  step("allocate-past-eof", 0, 80000, 50000);
  t.Say("allocate-past-eof-tail", range(75536, 54464));
  step("zero-and-punch", FALLOC_FL_ZERO_RANGE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 10);
  step("no-hide-stale", FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE | 0x04, 0, 4096);
  step("unknown-mode-bit", 0x80, 0, 4096);
  step("zero-length", FALLOC_FL_ZERO_RANGE, 0, 0);
  step("negative-offset", FALLOC_FL_ZERO_RANGE, -1, 10);
  t.Say("content-hash", range(0, 200000));
  fd.Reset();

  Fd no_access(open("space/f", O_ACCMODE));  // Linux's "ioctl only" access mode
  t.Say("open-access-mode-3", Ok(no_access.get()));
  char byte = 0;
  t.Say("read-access-mode-3", Ok(read(no_access.get(), &byte, 1)));
  t.Say("write-access-mode-3", Ok(write(no_access.get(), "x", 1)));
  no_access.Reset();
  Fd ro(open("space/f", O_RDONLY));
  t.Say("zero-range-read-only-fd", Ok(fallocate(ro.get(), FALLOC_FL_ZERO_RANGE, 0, 10)));
  ro.Reset();

  t.Say("setup-w", WriteFile("space/w", "whiteout me"));
  t.Say("whiteout-rename", Ok(Rename2("space/w", "space/w2", RENAME_WHITEOUT)));
  struct stat st {};
  if (lstat("space/w", &st) == 0) {
    t.Say("whiteout-left", TypeName(st.st_mode) + " rdev=" + std::to_string(major(st.st_rdev)) +
                               "," + std::to_string(minor(st.st_rdev)) +
                               " mode=" + Octal(st.st_mode));
  } else {
    t.Say("whiteout-left", ErrnoName(errno));
  }
  t.Say("whiteout-moved", Content("space/w2"));
  t.Say("setup-v", WriteFile("space/v", "V"));
  t.Say("whiteout-noreplace-onto-existing",
        Ok(Rename2("space/v", "space/w2", RENAME_WHITEOUT | RENAME_NOREPLACE)));
  t.Say("whiteout-exchange", Ok(Rename2("space/v", "space/w2", RENAME_WHITEOUT | RENAME_EXCHANGE)));
  t.Say("whiteout-onto-existing", Ok(Rename2("space/v", "space/w2", RENAME_WHITEOUT)));
  t.Say("whiteout-onto-existing-content", Content("space/w2"));
  t.Say("whiteout-onto-existing-left", StatDesc("space/v", false));
  t.Say("rename-unknown-flag", Ok(Rename2("space/w2", "space/w3", 1u << 3)));
  std::vector<std::string> names;
  int e = ListDir("space", &names);
  std::string listing;
  for (const std::string& n : names) listing += (listing.empty() ? "" : ",") + n;
  t.Say("listing", e ? ErrnoName(e) : "[" + listing + "]");
}

void Directories(Transcript& t) {
  t.Section("dirs");
  t.Say("mkdir", Ok(mkdir("dirs", 0755)));
  t.Say("mkdir-d", Ok(mkdir("dirs/d", 0755)));
  t.Say("mkdir-existing", Ok(mkdir("dirs/d", 0755)));
  t.Say("mkdir-over-file", (WriteFile("dirs/f", "x") == "ok") ? Ok(mkdir("dirs/f", 0755))
                                                              : std::string("setup-failed"));
  t.Say("mkdir-missing-parent", Ok(mkdir("dirs/nope/sub", 0755)));
  t.Say("mkdir-sub", Ok(mkdir("dirs/d/sub", 0755)));
  t.Say("mkdir-sub2", Ok(mkdir("dirs/d/sub2", 0700)));
  t.Say("stat-d", StatDesc("dirs/d"));
  t.Say("stat-sub2", StatDesc("dirs/d/sub2"));
  struct stat st {};
  t.Say("nlink-d-two-subdirs",
        stat("dirs/d", &st) == 0 ? std::to_string(st.st_nlink) : ErrnoName(errno));
  t.Say("rmdir-nonempty", Ok(rmdir("dirs/d")));
  t.Say("rmdir-sub", Ok(rmdir("dirs/d/sub")));
  t.Say("nlink-d-one-subdir",
        stat("dirs/d", &st) == 0 ? std::to_string(st.st_nlink) : ErrnoName(errno));
  t.Say("rmdir-sub2", Ok(rmdir("dirs/d/sub2")));
  t.Say("rmdir-with-file",
        (WriteFile("dirs/d/file", "") == "ok") ? Ok(rmdir("dirs/d")) : std::string("setup-failed"));
  t.Say("unlink-file", Ok(unlink("dirs/d/file")));
  t.Say("rmdir-now-empty", Ok(rmdir("dirs/d")));
  t.Say("rmdir-again", Ok(rmdir("dirs/d")));
  t.Say("stat-removed", StatDesc("dirs/d"));
  t.Say("mkdir-trailing-slash", Ok(mkdir("dirs/e/", 0755)));
  t.Say("stat-trailing-slash", StatDesc("dirs/e/"));
  t.Say("rmdir-trailing-slash", Ok(rmdir("dirs/e/")));
  std::vector<std::string> names;
  int e = ListDir("dirs", &names);
  std::string listing;
  for (const std::string& n : names) listing += (listing.empty() ? "" : ",") + n;
  t.Say("listing", e ? ErrnoName(e) : "[" + listing + "]");
}

void Renames(Transcript& t) {
  t.Section("rename");
  t.Say("mkdir", Ok(mkdir("ren", 0755)));
  t.Say("setup-a", WriteFile("ren/a", "AAA"));
  t.Say("setup-b", WriteFile("ren/b", "BBBB"));
  t.Say("file-over-file", Ok(rename("ren/a", "ren/b")));
  t.Say("old-name-gone", StatDesc("ren/a"));
  t.Say("target-content", Content("ren/b"));

  t.Say("setup-d1", Ok(mkdir("ren/d1", 0755)));
  t.Say("setup-d1-inner", WriteFile("ren/d1/inner", "in"));
  t.Say("setup-d2", Ok(mkdir("ren/d2", 0755)));
  t.Say("dir-over-empty-dir", Ok(rename("ren/d1", "ren/d2")));
  t.Say("old-dir-gone", StatDesc("ren/d1"));
  t.Say("moved-dir-content", Content("ren/d2/inner"));
  t.Say("setup-d3", Ok(mkdir("ren/d3", 0755)));
  t.Say("dir-over-nonempty-dir", Ok(rename("ren/d3", "ren/d2")));
  t.Say("file-over-dir", Ok(rename("ren/b", "ren/d2")));
  t.Say("dir-over-file", Ok(rename("ren/d3", "ren/b")));
  t.Say("dir-into-own-subdir", Ok(rename("ren/d2", "ren/d2/sub")));
  t.Say("missing-source", Ok(rename("ren/missing", "ren/x")));
  t.Say("into-missing-dir", Ok(rename("ren/b", "ren/nodir/b")));
  t.Say("onto-itself", Ok(rename("ren/b", "ren/b")));
  t.Say("onto-itself-content", Content("ren/b"));

  t.Say("setup-s1", Ok(mkdir("ren/s1", 0755)));
  t.Say("setup-s2", Ok(mkdir("ren/s2", 0755)));
  t.Say("setup-s1-f", WriteFile("ren/s1/f", "moved"));
  t.Say("across-dirs", Ok(rename("ren/s1/f", "ren/s2/g")));
  t.Say("across-dirs-old", StatDesc("ren/s1/f"));
  t.Say("across-dirs-new", Content("ren/s2/g"));
  t.Say("dir-across-dirs", Ok(rename("ren/s2", "ren/d2/s2moved")));
  t.Say("dir-across-dirs-content", Content("ren/d2/s2moved/g"));

  t.Say("setup-hardlink", Ok(link("ren/b", "ren/b2")));
  t.Say("onto-own-hardlink", Ok(rename("ren/b", "ren/b2")));
  t.Say("hardlink-source-kept", StatDesc("ren/b"));
  t.Say("hardlink-target-kept", StatDesc("ren/b2"));

  t.Say("setup-c", WriteFile("ren/c", "CC"));
  t.Say("noreplace-onto-existing", Ok(Rename2("ren/c", "ren/b", RENAME_NOREPLACE)));
  t.Say("noreplace-target-unchanged", Content("ren/b"));
  t.Say("noreplace-onto-free", Ok(Rename2("ren/c", "ren/c2", RENAME_NOREPLACE)));
  t.Say("noreplace-old-gone", StatDesc("ren/c"));
  t.Say("noreplace-new-content", Content("ren/c2"));

  t.Say("setup-x", WriteFile("ren/x", "XX"));
  t.Say("setup-y", Ok(mkdir("ren/y", 0755)));
  t.Say("setup-y-in", WriteFile("ren/y/in", "Y"));
  t.Say("exchange-file-dir", Ok(Rename2("ren/x", "ren/y", RENAME_EXCHANGE)));
  t.Say("exchange-x-type", StatDesc("ren/x"));
  t.Say("exchange-y-type", StatDesc("ren/y"));
  t.Say("exchange-y-content", Content("ren/y"));
  t.Say("exchange-x-in-content", Content("ren/x/in"));
  t.Say("exchange-with-missing", Ok(Rename2("ren/c2", "ren/missing", RENAME_EXCHANGE)));
  t.Say("exchange-and-noreplace",
        Ok(Rename2("ren/c2", "ren/y", RENAME_EXCHANGE | RENAME_NOREPLACE)));
  std::vector<std::string> names;
  int e = ListDir("ren", &names);
  std::string listing;
  for (const std::string& n : names) listing += (listing.empty() ? "" : ",") + n;
  t.Say("listing", e ? ErrnoName(e) : "[" + listing + "]");
}

void HardLinks(Transcript& t) {
  t.Section("link");
  t.Say("mkdir", Ok(mkdir("lnk", 0755)));
  t.Say("setup-f", WriteFile("lnk/f", "shared"));
  t.Say("link", Ok(link("lnk/f", "lnk/g")));
  t.Say("stat-f", StatDesc("lnk/f"));
  t.Say("stat-g", StatDesc("lnk/g"));
  struct stat sf {
  }, sg{};
  bool same = stat("lnk/f", &sf) == 0 && stat("lnk/g", &sg) == 0 && sf.st_ino == sg.st_ino &&
              sf.st_dev == sg.st_dev;
  t.Say("same-inode", YesNo(same));
  {
    Fd ap(open("lnk/g", O_WRONLY | O_APPEND));
    t.Say("append-via-g", Num(write(ap.get(), "+more", 5)));
  }
  t.Say("content-via-f", Content("lnk/f"));
  t.Say("link-third", Ok(link("lnk/f", "lnk/h")));
  t.Say("stat-g-three", StatDesc("lnk/g"));
  t.Say("unlink-third", Ok(unlink("lnk/h")));
  t.Say("unlink-f", Ok(unlink("lnk/f")));
  t.Say("stat-f-gone", StatDesc("lnk/f"));
  t.Say("stat-g-after-unlink", StatDesc("lnk/g"));
  t.Say("content-g", Content("lnk/g"));
  t.Say("setup-dir", Ok(mkdir("lnk/d", 0755)));
  t.Say("link-dir", Ok(link("lnk/d", "lnk/dl")));
  t.Say("setup-e", WriteFile("lnk/e", "e"));
  t.Say("link-onto-existing", Ok(link("lnk/g", "lnk/e")));
  t.Say("link-missing", Ok(link("lnk/missing", "lnk/m2")));
  t.Say("link-into-missing-dir", Ok(link("lnk/g", "lnk/nodir/x")));
  t.Say("setup-symlink", Ok(symlink("g", "lnk/s")));
  t.Say("link-symlink-itself", Ok(link("lnk/s", "lnk/s2")));
  t.Say("lstat-link-of-symlink", StatDesc("lnk/s2", false));
  t.Say("linkat-follow", Ok(linkat(AT_FDCWD, "lnk/s", AT_FDCWD, "lnk/s3", AT_SYMLINK_FOLLOW)));
  t.Say("lstat-linkat-follow", StatDesc("lnk/s3", false));
  t.Say("stat-g-after-linkat", StatDesc("lnk/g"));
}

void Symlinks(Transcript& t) {
  t.Section("symlink");
  t.Say("mkdir", Ok(mkdir("sym", 0755)));
  t.Say("setup-target", WriteFile("sym/t", "target"));
  t.Say("relative", Ok(symlink("t", "sym/rel")));
  t.Say("absolute", Ok(symlink("/nonexistent/abs/target", "sym/abs")));
  t.Say("dangling", Ok(symlink("missing", "sym/dangle")));
  auto read_link = [](const std::string& path, size_t bufsize) {
    std::string buf(bufsize, '\0');
    ssize_t n = readlink(path.c_str(), buf.data(), buf.size());
    if (n < 0) return ErrnoName(errno);
    buf.resize(static_cast<size_t>(n));
    return Describe(buf);
  };
  t.Say("readlink-rel", read_link("sym/rel", 4096));
  t.Say("readlink-abs", read_link("sym/abs", 4096));
  t.Say("readlink-dangle", read_link("sym/dangle", 4096));
  t.Say("readlink-small-buffer", read_link("sym/abs", 5));
  t.Say("readlink-regular-file", read_link("sym/t", 4096));
  t.Say("readlink-missing", read_link("sym/missing", 4096));
  t.Say("lstat-rel", StatDesc("sym/rel", false));
  t.Say("lstat-abs", StatDesc("sym/abs", false));
  t.Say("lstat-dangle", StatDesc("sym/dangle", false));
  t.Say("stat-rel", StatDesc("sym/rel"));
  t.Say("stat-abs", StatDesc("sym/abs"));
  t.Say("stat-dangle", StatDesc("sym/dangle"));
  t.Say("content-rel", Content("sym/rel"));
  t.Say("open-nofollow", OpenResult("sym/rel", O_RDONLY | O_NOFOLLOW));
  t.Say("open-nofollow-dangle", OpenResult("sym/dangle", O_RDONLY | O_NOFOLLOW));
  t.Say("creat-excl-through-dangle", OpenResult("sym/dangle", O_CREAT | O_EXCL | O_WRONLY, 0644));
  t.Say("creat-through-dangle", OpenResult("sym/dangle", O_CREAT | O_WRONLY, 0644));
  t.Say("created-target", StatDesc("sym/missing", false));
  t.Say("symlink-onto-existing", Ok(symlink("t", "sym/t")));
  t.Say("symlink-empty-target", Ok(symlink("", "sym/empty")));
  std::string long_target;
  while (long_target.size() < 1000) long_target += "abcdefghi/";
  long_target.resize(1000);
  t.Say("long-1000", Ok(symlink(long_target.c_str(), "sym/long")));
  {
    std::string buf(4096, '\0');
    ssize_t n = readlink("sym/long", buf.data(), buf.size());
    if (n < 0) {
      t.Say("readlink-long", ErrnoName(errno));
    } else {
      buf.resize(static_cast<size_t>(n));
      t.Say("readlink-long", Describe(buf) + (buf == long_target ? " match" : " MISMATCH"));
    }
  }
  t.Say("lstat-long", StatDesc("sym/long", false));
  t.Say("loop-1", Ok(symlink("loop2", "sym/loop1")));
  t.Say("loop-2", Ok(symlink("loop1", "sym/loop2")));
  t.Say("stat-loop", StatDesc("sym/loop1"));
  t.Say("setup-dir", Ok(mkdir("sym/dir", 0755)));
  t.Say("setup-dir-in", WriteFile("sym/dir/in", "in"));
  t.Say("dir-link", Ok(symlink("dir", "sym/dirlink")));
  t.Say("through-dir-link", Content("sym/dirlink/in"));
  t.Say("lstat-dir-link-slash", StatDesc("sym/dirlink/", false));
  t.Say("rmdir-dir-link", Ok(rmdir("sym/dirlink")));
  t.Say("up-link", Ok(symlink("../t", "sym/dir/up")));
  t.Say("through-up-link", Content("sym/dir/up"));
  t.Say("unlink-rel", Ok(unlink("sym/rel")));
  t.Say("target-survives", Content("sym/t"));
}

void ManyEntries(Transcript& t) {
  t.Section("readdir");
  constexpr int kCount = 10000;
  t.Say("mkdir", Ok(mkdir("many", 0755)));
  auto name_of = [](int i) {
    char buf[16];
    snprintf(buf, sizeof buf, "f%05d", i);
    return std::string(buf);
  };
  std::set<std::string> expected;
  int created = 0;
  std::string first_error;
  for (int i = 0; i < kCount; ++i) {
    std::string name = name_of(i);
    expected.insert(name);
    int fd = open(("many/" + name).c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644);
    if (fd < 0) {
      if (first_error.empty()) first_error = " first-error=" + ErrnoName(errno) + "@" + name;
      continue;
    }
    close(fd);
    ++created;
  }
  t.Say("create", std::to_string(created) + first_error);

  struct Summary {
    size_t entries = 0;  // without "." and ".."
    bool dot = false, dotdot = false;
    size_t duplicates = 0, unexpected = 0, missing = 0;
    uint64_t hash = 0;
  };
  auto summarize = [&](const std::vector<std::string>& raw) {
    Summary s;
    std::vector<std::string> names;
    for (const std::string& n : raw) {
      if (n == ".") {
        s.dot = true;
      } else if (n == "..") {
        s.dotdot = true;
      } else {
        names.push_back(n);
      }
    }
    std::sort(names.begin(), names.end());
    s.entries = names.size();
    std::string joined;
    for (size_t i = 0; i < names.size(); ++i) {
      if (i > 0 && names[i] == names[i - 1]) ++s.duplicates;
      if (!expected.count(names[i])) ++s.unexpected;
      joined += names[i];
      joined += '\n';
    }
    names.erase(std::unique(names.begin(), names.end()), names.end());
    s.missing = expected.size() - (names.size() - s.unexpected);
    s.hash = Fnv1a64(joined);
    return s;
  };

  DIR* d = opendir("many");
  t.Say("opendir", d ? "ok" : ErrnoName(errno));
  if (d == nullptr) return;
  int err = 0;
  std::vector<std::string> all = ReadEntries(d, SIZE_MAX, &err);
  Summary s = summarize(all);
  t.Say("readdir-error", err ? ErrnoName(err) : "none");
  t.Say("entries", std::to_string(s.entries));
  t.Say("dot-seen", YesNo(s.dot));
  t.Say("dotdot-seen", YesNo(s.dotdot));
  t.Say("duplicates", std::to_string(s.duplicates));
  t.Say("unexpected", std::to_string(s.unexpected));
  t.Say("missing", std::to_string(s.missing));
  t.Say("sorted-hash", Hex(s.hash));

  rewinddir(d);
  std::vector<std::string> first = ReadEntries(d, 5000, &err);
  t.Say("read-first-5000", std::to_string(first.size()) + (err ? " " + ErrnoName(err) : ""));
  errno = 0;
  long pos = telldir(d);
  t.Say("telldir", pos < 0 ? ErrnoName(errno) : "ok");
  std::vector<std::string> next10 = ReadEntries(d, 10, &err);
  seekdir(d, pos);
  std::vector<std::string> again10 = ReadEntries(d, 10, &err);
  t.Say("seekdir-reread-10", "count=" + std::to_string(again10.size()) +
                                 " same=" + YesNo(next10.size() == 10 && next10 == again10));
  seekdir(d, pos);
  std::vector<std::string> rest = ReadEntries(d, SIZE_MAX, &err);
  t.Say("seekdir-rest", std::to_string(rest.size()));
  std::vector<std::string> combined = first;
  combined.insert(combined.end(), rest.begin(), rest.end());
  Summary c = summarize(combined);
  t.Say("first-plus-rest", "entries=" + std::to_string(c.entries) +
                               " duplicates=" + std::to_string(c.duplicates) +
                               " same-hash=" + YesNo(c.hash == s.hash));
  rewinddir(d);
  std::vector<std::string> again = ReadEntries(d, SIZE_MAX, &err);
  Summary r = summarize(again);
  t.Say("rewind-count", std::to_string(again.size()));
  t.Say("rewind-same-hash", YesNo(r.hash == s.hash && r.dot && r.dotdot));
  closedir(d);

  t.Say("stat-first", StatDesc("many/f00000"));
  t.Say("stat-last", StatDesc("many/f09999"));
  t.Say("stat-beyond", StatDesc("many/f10000"));
  int unlinked = 0;
  std::string unlink_error;
  for (int i = 0; i < kCount; i += 2) {
    std::string name = name_of(i);
    if (unlink(("many/" + name).c_str()) == 0) {
      ++unlinked;
      expected.erase(name);
    } else if (unlink_error.empty()) {
      unlink_error = " first-error=" + ErrnoName(errno) + "@" + name;
    }
  }
  t.Say("unlink-even", std::to_string(unlinked) + unlink_error);
  d = opendir("many");
  if (d == nullptr) {
    t.Say("relist", ErrnoName(errno));
    return;
  }
  std::vector<std::string> after = ReadEntries(d, SIZE_MAX, &err);
  closedir(d);
  Summary a = summarize(after);
  t.Say("relist", "entries=" + std::to_string(a.entries) + " duplicates=" +
                      std::to_string(a.duplicates) + " unexpected=" + std::to_string(a.unexpected) +
                      " missing=" + std::to_string(a.missing) + " hash=" + Hex(a.hash));
}

void Attributes(Transcript& t) {
  t.Section("attr");
  t.Say("mkdir", Ok(mkdir("attr", 0755)));
  t.Say("setup-f", WriteFile("attr/f", "attr"));
  t.Say("chmod-0640", Ok(chmod("attr/f", 0640)));
  t.Say("mode-0640", StatDesc("attr/f"));
  {
    Fd fd(open("attr/f", O_RDONLY));
    t.Say("fchmod-0600", Ok(fchmod(fd.get(), 0600)));
    t.Say("mode-0600", StatDesc("attr/f"));
  }
  t.Say("chmod-04755", Ok(chmod("attr/f", 04755)));
  t.Say("mode-4755", StatDesc("attr/f"));
  t.Say("chown-1234-5678", Ok(chown("attr/f", 1234, 5678)));
  t.Say("owner-after-chown", Owner("attr/f"));  // chown clears set-user-ID
  t.Say("chmod-06755", Ok(chmod("attr/f", 06755)));
  t.Say("chown-noop", Ok(chown("attr/f", static_cast<uid_t>(-1), static_cast<gid_t>(-1))));
  t.Say("owner-after-chown-noop", Owner("attr/f"));
  t.Say("chmod-dir-sticky",
        (mkdir("attr/d", 0755) == 0) ? Ok(chmod("attr/d", 01777)) : ErrnoName(errno));
  t.Say("mode-dir-sticky", StatDesc("attr/d"));
  t.Say("chmod-missing", Ok(chmod("attr/missing", 0644)));

  t.Say("setup-g", WriteFile("attr/g", "gg"));
  t.Say("setup-link", Ok(symlink("g", "attr/l")));
  t.Say("lchown-symlink", Ok(lchown("attr/l", 1234, 5678)));
  t.Say("owner-symlink", Owner("attr/l", false));
  t.Say("owner-target-unchanged", Owner("attr/g"));
  t.Say("chown-through-symlink", Ok(chown("attr/l", 4321, 8765)));
  t.Say("owner-target-changed", Owner("attr/g"));
  t.Say("owner-symlink-unchanged", Owner("attr/l", false));
  {
    Fd fd(open("attr/g", O_RDONLY));
    t.Say("fchown", Ok(fchown(fd.get(), 1234, static_cast<gid_t>(-1))));
    t.Say("owner-after-fchown", Owner("attr/g"));
  }

  const timespec set1[2] = {{1000000000, 123456789}, {1500000000, 987654321}};
  t.Say("utimensat-ns", Ok(utimensat(AT_FDCWD, "attr/g", set1, 0)));
  t.Say("times-ns", Times("attr/g"));
  const timespec now_mtime[2] = {{0, UTIME_OMIT}, {0, UTIME_NOW}};
  t.Say("utimensat-now-mtime", Ok(utimensat(AT_FDCWD, "attr/g", now_mtime, 0)));
  struct stat st {};
  if (stat("attr/g", &st) == 0) {
    t.Say("now-mtime-recent", YesNo(Recent(st.st_mtim)));
    t.Say("now-atime-unchanged", YesNo(SameTs(st.st_atim, set1[0])));
  } else {
    t.Say("now-mtime-stat", ErrnoName(errno));
  }
  struct stat before {};
  int brc = stat("attr/g", &before);
  const timespec omit[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
  t.Say("utimensat-omit-both", Ok(utimensat(AT_FDCWD, "attr/g", omit, 0)));
  if (brc == 0 && stat("attr/g", &st) == 0) {
    t.Say("omit-unchanged",
          YesNo(SameTs(st.st_atim, before.st_atim) && SameTs(st.st_mtim, before.st_mtim)));
  } else {
    t.Say("omit-unchanged", ErrnoName(errno));
  }
  {
    Fd fd(open("attr/g", O_RDONLY));
    const timespec set2[2] = {{2000000000, 5}, {1234567890, 1}};
    t.Say("futimens", Ok(futimens(fd.get(), set2)));
    t.Say("times-futimens", Times("attr/g"));
  }
  const timespec old_times[2] = {{-1000000000, 999999999}, {0, 0}};
  t.Say("utimensat-pre-epoch", Ok(utimensat(AT_FDCWD, "attr/g", old_times, 0)));
  t.Say("times-pre-epoch", Times("attr/g"));
  const timespec link_times[2] = {{1600000000, 111111111}, {1700000000, 222222222}};
  struct stat target_before {};
  int trc = stat("attr/g", &target_before);
  t.Say("utimensat-nofollow", Ok(utimensat(AT_FDCWD, "attr/l", link_times, AT_SYMLINK_NOFOLLOW)));
  t.Say("times-symlink", Times("attr/l", false));
  if (trc == 0 && stat("attr/g", &st) == 0) {
    t.Say("target-times-unchanged", YesNo(SameTs(st.st_atim, target_before.st_atim) &&
                                          SameTs(st.st_mtim, target_before.st_mtim)));
  } else {
    t.Say("target-times-unchanged", ErrnoName(errno));
  }
  t.Say("utimensat-null", Ok(utimensat(AT_FDCWD, "attr/g", nullptr, 0)));
  if (stat("attr/g", &st) == 0) {
    t.Say("null-both-recent", YesNo(Recent(st.st_atim) && Recent(st.st_mtim)));
  } else {
    t.Say("null-both-recent", ErrnoName(errno));
  }
  const timespec bad[2] = {{0, 1000000000}, {0, 0}};
  t.Say("utimensat-bad-nsec", Ok(utimensat(AT_FDCWD, "attr/g", bad, 0)));
  t.Say("utimensat-missing", Ok(utimensat(AT_FDCWD, "attr/missing", set1, 0)));
  const timespec dir_times[2] = {{1111111111, 1}, {1222222222, 2}};
  t.Say("utimensat-dir", Ok(utimensat(AT_FDCWD, "attr/d", dir_times, 0)));
  t.Say("times-dir", Times("attr/d"));
}

void Xattrs(Transcript& t) {
  t.Section("xattr");
  t.Say("mkdir", Ok(mkdir("xat", 0755)));
  t.Say("setup-f", WriteFile("xat/f", "x"));
  t.Say("setup-d", Ok(mkdir("xat/d", 0755)));
  t.Say("setup-l", Ok(symlink("f", "xat/l")));
  auto get = [](const std::string& path, const char* name, size_t bufsize, bool follow = true) {
    std::string buf(bufsize, '\0');
    ssize_t n = follow ? getxattr(path.c_str(), name, bufsize ? buf.data() : nullptr, bufsize)
                       : lgetxattr(path.c_str(), name, bufsize ? buf.data() : nullptr, bufsize);
    if (n < 0) return ErrnoName(errno);
    if (bufsize == 0) return "size=" + std::to_string(n);
    buf.resize(static_cast<size_t>(n));
    return Describe(buf);
  };
  auto list = [](const std::string& path) {
    ssize_t n = listxattr(path.c_str(), nullptr, 0);
    if (n < 0) return ErrnoName(errno);
    std::string buf(static_cast<size_t>(n) + 256, '\0');
    ssize_t m = listxattr(path.c_str(), buf.data(), buf.size());
    if (m < 0) return ErrnoName(errno);
    std::vector<std::string> names;
    for (size_t i = 0; i < static_cast<size_t>(m);) {
      std::string name(buf.data() + i);
      i += name.size() + 1;
      if (name.rfind("user.", 0) == 0) names.push_back(name);  // Ignore other namespaces.
    }
    std::sort(names.begin(), names.end());
    std::string out;
    for (const std::string& name : names) out += (out.empty() ? "" : ",") + name;
    return "[" + out + "] size-query-matches=" + YesNo(m == n);
  };
  const std::string f = "xat/f";
  t.Say("list-empty", list(f));
  t.Say("set-user.a", Ok(setxattr(f.c_str(), "user.a", "hello", 5, 0)));
  t.Say("get-size-user.a", get(f, "user.a", 0));
  t.Say("get-user.a", get(f, "user.a", 64));
  t.Say("get-too-small", get(f, "user.a", 2));
  t.Say("get-exact-size", get(f, "user.a", 5));
  t.Say("get-missing", get(f, "user.missing", 64));
  t.Say("set-empty-value", Ok(setxattr(f.c_str(), "user.empty", "", 0, 0)));
  t.Say("get-empty-value", get(f, "user.empty", 64));
  const std::string binary = Pattern(3000, 21);
  t.Say("set-binary-3000", Ok(setxattr(f.c_str(), "user.bin", binary.data(), binary.size(), 0)));
  t.Say("get-binary-3000", get(f, "user.bin", 4096));
  t.Say("list", list(f));
  {
    char small[3];
    t.Say("list-too-small", Num(listxattr(f.c_str(), small, sizeof small)));
  }
  t.Say("create-existing", Ok(setxattr(f.c_str(), "user.a", "x", 1, XATTR_CREATE)));
  t.Say("replace-missing", Ok(setxattr(f.c_str(), "user.nope", "x", 1, XATTR_REPLACE)));
  t.Say("replace-existing", Ok(setxattr(f.c_str(), "user.a", "world!", 6, XATTR_REPLACE)));
  t.Say("get-replaced", get(f, "user.a", 64));
  t.Say("create-new", Ok(setxattr(f.c_str(), "user.b", "bee", 3, XATTR_CREATE)));
  t.Say("remove-user.a", Ok(removexattr(f.c_str(), "user.a")));
  t.Say("get-removed", get(f, "user.a", 64));
  t.Say("remove-again", Ok(removexattr(f.c_str(), "user.a")));
  t.Say("list-after-remove", list(f));
  t.Say("unknown-namespace", Ok(setxattr(f.c_str(), "foo.bar", "x", 1, 0)));
  t.Say("empty-name", Ok(setxattr(f.c_str(), "", "x", 1, 0)));
  {
    Fd fd(open(f.c_str(), O_RDONLY));
    t.Say("fsetxattr", Ok(fsetxattr(fd.get(), "user.fd", "viafd", 5, 0)));
    char buf[16];
    ssize_t n = fgetxattr(fd.get(), "user.fd", buf, sizeof buf);
    t.Say("fgetxattr", n < 0 ? ErrnoName(errno) : Describe(std::string_view(buf, n)));
  }
  t.Say("dir-set", Ok(setxattr("xat/d", "user.dir", "D", 1, 0)));
  t.Say("dir-get", get("xat/d", "user.dir", 64));
  t.Say("dir-list", list("xat/d"));
  t.Say("symlink-lset-user", Ok(lsetxattr("xat/l", "user.x", "v", 1, 0)));
  t.Say("symlink-lget-user", get("xat/l", "user.x", 64, false));
  t.Say("get-through-symlink", get("xat/l", "user.b", 64));
  t.Say("missing-file", get("xat/missing", "user.a", 64));
  t.Say("xattr-survives-rename",
        (rename("xat/f", "xat/f2") == 0) ? get("xat/f2", "user.b", 64) : ErrnoName(errno));
}

void StatFs(Transcript& t) {
  t.Section("statfs");
  struct statfs sf {};
  if (statfs(".", &sf) == 0) {
    t.Say("statfs",
          "namemax=" + std::to_string(sf.f_namelen) + " bsize=" + std::to_string(sf.f_bsize));
  } else {
    t.Say("statfs", ErrnoName(errno));
  }
  struct statvfs sv {};
  t.Say("statvfs", Ok(statvfs(".", &sv)));
  t.Say("statfs-missing", Ok(statfs("statfs-missing", &sf)));
}

void UnlinkedOpen(Transcript& t) {
  t.Section("unlinked");
  t.Say("mkdir", Ok(mkdir("unl", 0755)));
  Fd fd(open("unl/f", O_CREAT | O_RDWR | O_TRUNC, 0644));
  t.Say("create", Ok(fd.get()));
  t.Say("write", Num(write(fd.get(), "0123456789", 10)));
  t.Say("unlink", Ok(unlink("unl/f")));
  t.Say("stat-by-name", StatDesc("unl/f"));
  t.Say("pread", ReadAt(fd.get(), 2, 3));
  t.Say("pwrite", Num(pwrite(fd.get(), "ABC", 3, 20)));
  t.Say("pread-after-pwrite", ReadAt(fd.get(), 0, 100));
  struct stat st {};
  t.Say("fstat", fstat(fd.get(), &st) == 0 ? "nlink=" + std::to_string(st.st_nlink) +
                                                 " size=" + std::to_string(st.st_size)
                                           : ErrnoName(errno));
  t.Say("ftruncate", Ok(ftruncate(fd.get(), 5)));
  t.Say("fstat-after-ftruncate", FstatSize(fd.get()));
  t.Say("fchmod", Ok(fchmod(fd.get(), 0600)));
  std::vector<std::string> names;
  int e = ListDir("unl", &names);
  t.Say("dir-entries", e ? ErrnoName(e) : std::to_string(names.size()));
  t.Say("recreate-name", WriteFile("unl/f", "new"));
  t.Say("old-fd-unaffected", ReadAt(fd.get(), 0, 100));
  t.Say("new-file-content", Content("unl/f"));
  fd.Reset();
  e = ListDir("unl", &names);
  t.Say("dir-entries-after-close", e ? ErrnoName(e) : std::to_string(names.size()));
}

void SharedMmap(Transcript& t) {
  t.Section("mmap");
  t.Say("mkdir", Ok(mkdir("mm", 0755)));
  Fd fd(open("mm/f", O_CREAT | O_RDWR | O_TRUNC, 0644));
  t.Say("create", Ok(fd.get()));
  t.Say("ftruncate-8192", Ok(ftruncate(fd.get(), 8192)));
  void* p = mmap(nullptr, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  t.Say("mmap-shared", p == MAP_FAILED ? ErrnoName(errno) : "ok");
  if (p != MAP_FAILED) {
    char* m = static_cast<char*>(p);
    std::memcpy(m + 100, "mapped data", 11);
    std::memcpy(m + 4096 + 7, "page two", 8);
    t.Say("msync", Ok(msync(p, 8192, MS_SYNC)));
    Fd fresh(open("mm/f", O_RDONLY));
    t.Say("fresh-open", Ok(fresh.get()));
    t.Say("read-page-one", ReadAt(fresh.get(), 100, 11));
    t.Say("read-page-two", ReadAt(fresh.get(), 4103, 8));
    Fd writer(open("mm/f", O_WRONLY));
    t.Say("pwrite", Num(pwrite(writer.get(), "pwritten", 8, 200)));
    t.Say("mapping-sees-pwrite", Describe(std::string_view(m + 200, 8)));
    t.Say("munmap", Ok(munmap(p, 8192)));
    t.Say("size-unchanged", FstatSize(fd.get()));
    t.Say("content", Content("mm/f"));
  }
  void* q = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd.get(), 0);
  t.Say("mmap-private", q == MAP_FAILED ? ErrnoName(errno) : "ok");
  if (q != MAP_FAILED) {
    std::memcpy(q, "private", 7);
    t.Say("private-not-in-file", ReadAt(fd.get(), 0, 7));
    t.Say("munmap-private", Ok(munmap(q, 4096)));
  }
  Fd ro(open("mm/f", O_RDONLY));
  void* r = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, ro.get(), 0);
  t.Say("mmap-shared-write-on-rdonly-fd", r == MAP_FAILED ? ErrnoName(errno) : "ok");
  if (r != MAP_FAILED) munmap(r, 4096);
}

int SetLock(int fd, int cmd, short type, off_t start, off_t len) {
  struct flock fl {};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = start;
  fl.l_len = len;
  fl.l_pid = 0;
  return fcntl(fd, cmd, &fl);
}

std::string LockResult(int rc) {
  if (rc == 0) return "ok";
  if (errno == EAGAIN || errno == EACCES) return "conflict";
  return ErrnoName(errno);
}

std::string LockTypeName(short type) {
  switch (type) {
    case F_RDLCK:
      return "F_RDLCK";
    case F_WRLCK:
      return "F_WRLCK";
    case F_UNLCK:
      return "F_UNLCK";
  }
  return "type#" + std::to_string(type);
}

// F_GETLK/F_OFD_GETLK; expect_pid < 0 means "print whether l_pid is -1" (OFD locks).
std::string GetLock(int fd, int cmd, short type, off_t start, off_t len, pid_t expect_pid) {
  struct flock fl {};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = start;
  fl.l_len = len;
  fl.l_pid = 0;
  if (fcntl(fd, cmd, &fl) != 0) return ErrnoName(errno);
  if (fl.l_type == F_UNLCK) return "F_UNLCK";
  std::string s = LockTypeName(fl.l_type) + " start=" + std::to_string(fl.l_start) +
                  " len=" + std::to_string(fl.l_len);
  if (expect_pid < 0) return s + " pid-is-minus-1=" + YesNo(fl.l_pid == -1);
  return s + " pid-match=" + YesNo(fl.l_pid == expect_pid);
}

void PosixLocks(Transcript& t) {
  t.Section("fcntl");
  t.Say("mkdir", Ok(mkdir("lk", 0755)));
  t.Say("setup", WriteFile("lk/f", std::string(1000, 'l')));
  Fd fd(open("lk/f", O_RDWR));
  t.Say("open", Ok(fd.get()));
  t.Say("parent-setlk-wr-0-100", LockResult(SetLock(fd.get(), F_SETLK, F_WRLCK, 0, 100)));
  t.Say("parent-getlk-own", GetLock(fd.get(), F_GETLK, F_WRLCK, 0, 100, 0));
  {
    Child c(t, "child", [](Transcript& ct, Child& self) {
      Fd cfd(open("lk/f", O_RDWR));
      ct.Say("open", Ok(cfd.get()));
      ct.Say("setlk-wr-50-10", LockResult(SetLock(cfd.get(), F_SETLK, F_WRLCK, 50, 10)));
      ct.Say("setlk-rd-50-10", LockResult(SetLock(cfd.get(), F_SETLK, F_RDLCK, 50, 10)));
      ct.Say("getlk-50-10", GetLock(cfd.get(), F_GETLK, F_WRLCK, 50, 10, getppid()));
      ct.Say("getlk-rd-150-10", GetLock(cfd.get(), F_GETLK, F_RDLCK, 150, 10, getppid()));
      ct.Say("setlk-wr-200-100", LockResult(SetLock(cfd.get(), F_SETLK, F_WRLCK, 200, 100)));
      self.Mark("ready");
      self.WaitGo();
      ct.Say("setlk-wr-50-10-after-unlock",
             LockResult(SetLock(cfd.get(), F_SETLK, F_WRLCK, 50, 10)));
      self.Mark("holding");
      self.WaitGo();
    });
    if (c.RelayUntil(t, "ready")) {
      t.Say("parent-unlock-0-100", LockResult(SetLock(fd.get(), F_SETLK, F_UNLCK, 0, 100)));
      c.Go();
      if (c.RelayUntil(t, "holding")) {
        t.Say("parent-getlk-sees-child", GetLock(fd.get(), F_GETLK, F_WRLCK, 0, 100, c.pid()));
        t.Say("parent-setlk-wr-0-100", LockResult(SetLock(fd.get(), F_SETLK, F_WRLCK, 0, 100)));
        t.Say("parent-setlk-rd-300-10", LockResult(SetLock(fd.get(), F_SETLK, F_RDLCK, 300, 10)));
        c.Go();
      }
    }
    c.Finish(t);
  }
  t.Say("parent-setlk-wr-0-100-after-child-exit",
        LockResult(SetLock(fd.get(), F_SETLK, F_WRLCK, 0, 100)));
  {
    // A blocking F_SETLKW in the child that the parent's unlock releases. The outcome does
    // not depend on whether the child was already blocked when the parent unlocked.
    Child c(t, "waiter", [](Transcript& ct, Child& self) {
      Fd cfd(open("lk/f", O_RDWR));
      ct.Say("open", Ok(cfd.get()));
      self.Mark("blocking");
      ct.Say("setlkw-wr-0-10", LockResult(SetLock(cfd.get(), F_SETLKW, F_WRLCK, 0, 10)));
    });
    if (c.RelayUntil(t, "blocking")) {
      usleep(100000);
      t.Say("parent-unlock-all", LockResult(SetLock(fd.get(), F_SETLK, F_UNLCK, 0, 0)));
    }
    c.Finish(t);
  }
  {
    // Closing any descriptor of a file drops the process's record locks on
    // it, also one opened read-only after the lock was taken.
    t.Say("parent-setlk-wr-0-100-again", LockResult(SetLock(fd.get(), F_SETLK, F_WRLCK, 0, 100)));
    Child holder(t, "checker", [](Transcript& ct, Child&) {
      Fd cfd(open("lk/f", O_RDONLY));
      ct.Say("getlk-while-held", GetLock(cfd.get(), F_GETLK, F_WRLCK, 0, 100, getppid()));
    });
    holder.Finish(t);
    {
      Fd other(open("lk/f", O_RDONLY));
      t.Say("open-read-only-and-close", Ok(other.get()));
    }
    Child after(t, "checker-after-close", [](Transcript& ct, Child&) {
      Fd cfd(open("lk/f", O_RDONLY));
      ct.Say("getlk-after-close", GetLock(cfd.get(), F_GETLK, F_WRLCK, 0, 100, getppid()));
    });
    after.Finish(t);
  }
#ifdef F_OFD_SETLK
  t.Section("ofd");
  t.Say("setup", WriteFile("lk/g", std::string(1000, 'o')));
  Fd a(open("lk/g", O_RDWR));
  Fd b(open("lk/g", O_RDWR));
  t.Say("open-two", Ok(a.ok() && b.ok() ? 0 : -1));
  t.Say("setlk-a-wr-0-100", LockResult(SetLock(a.get(), F_OFD_SETLK, F_WRLCK, 0, 100)));
  t.Say("setlk-b-wr-50-10", LockResult(SetLock(b.get(), F_OFD_SETLK, F_WRLCK, 50, 10)));
  t.Say("getlk-b-50-10", GetLock(b.get(), F_OFD_GETLK, F_WRLCK, 50, 10, -1));
  t.Say("getlk-a-own", GetLock(a.get(), F_OFD_GETLK, F_WRLCK, 0, 100, -1));
  t.Say("posix-lock-vs-ofd", LockResult(SetLock(b.get(), F_SETLK, F_WRLCK, 0, 10)));
  t.Say("setlk-b-wr-500-10", LockResult(SetLock(b.get(), F_OFD_SETLK, F_WRLCK, 500, 10)));
  a.Reset();
  t.Say("setlk-b-after-close-a", LockResult(SetLock(b.get(), F_OFD_SETLK, F_WRLCK, 50, 10)));
#else
  t.Say("ofd", "undefined");
#endif
}

std::string FlockResult(int rc) {
  if (rc == 0) return "ok";
  if (errno == EWOULDBLOCK) return "EWOULDBLOCK";
  return ErrnoName(errno);
}

void Flocks(Transcript& t) {
  t.Section("flock");
  t.Say("mkdir", Ok(mkdir("fl", 0755)));
  t.Say("setup", WriteFile("fl/f", "flock"));
  Fd fd(open("fl/f", O_RDWR));
  t.Say("open", Ok(fd.get()));
  t.Say("parent-lock-ex", FlockResult(flock(fd.get(), LOCK_EX)));
  {
    const int inherited = fd.get();
    Child c(t, "child", [inherited](Transcript& ct, Child& self) {
      Fd cfd(open("fl/f", O_RDWR));
      ct.Say("open", Ok(cfd.get()));
      ct.Say("lock-ex-nb", FlockResult(flock(cfd.get(), LOCK_EX | LOCK_NB)));
      ct.Say("lock-sh-nb", FlockResult(flock(cfd.get(), LOCK_SH | LOCK_NB)));
      ct.Say("inherited-fd-lock-ex-nb", FlockResult(flock(inherited, LOCK_EX | LOCK_NB)));
      self.Mark("ready");
      self.WaitGo();
      ct.Say("lock-ex-nb-after-unlock", FlockResult(flock(cfd.get(), LOCK_EX | LOCK_NB)));
      self.Mark("holding");
      self.WaitGo();
    });
    if (c.RelayUntil(t, "ready")) {
      t.Say("parent-unlock", FlockResult(flock(fd.get(), LOCK_UN)));
      c.Go();
      if (c.RelayUntil(t, "holding")) {
        t.Say("parent-lock-sh-nb", FlockResult(flock(fd.get(), LOCK_SH | LOCK_NB)));
        c.Go();
      }
    }
    c.Finish(t);
  }
  t.Say("parent-lock-sh-nb-after-child-exit", FlockResult(flock(fd.get(), LOCK_SH | LOCK_NB)));
  {
    Fd other(open("fl/f", O_RDWR));
    t.Say("second-fd-lock-sh-nb", FlockResult(flock(other.get(), LOCK_SH | LOCK_NB)));
    t.Say("second-fd-lock-ex-nb", FlockResult(flock(other.get(), LOCK_EX | LOCK_NB)));
  }
  t.Say("parent-unlock-final", FlockResult(flock(fd.get(), LOCK_UN)));
}

void NonRoot(Transcript& t, bool skip) {
  if (skip) {
    t.Section("");
    t.Say("nonroot", "skipped");
    return;
  }
  t.Section("nonroot");
  // Every mode is set with chmod so that it does not depend on the umask.
  t.Say("mkdir", Ok(mkdir("nonroot", 0755)));
  t.Say("chmod-0755", Ok(chmod("nonroot", 0755)));
  t.Say("setup-secret", WriteFile("nonroot/secret", "secret"));
  t.Say("chmod-secret", Ok(chmod("nonroot/secret", 0600)));
  t.Say("setup-open", WriteFile("nonroot/open", "open"));
  t.Say("chmod-open", Ok(chmod("nonroot/open", 0644)));
  t.Say("setup-closed", Ok(mkdir("nonroot/closed", 0700)));
  t.Say("chmod-closed", Ok(chmod("nonroot/closed", 0700)));
  t.Say("setup-closed-x", WriteFile("nonroot/closed/x", "x"));
  t.Say("setup-pub", Ok(mkdir("nonroot/pub", 0777)));
  t.Say("chmod-pub", Ok(chmod("nonroot/pub", 0777)));
  t.Say("setup-sticky", Ok(mkdir("nonroot/sticky", 01777)));
  t.Say("chmod-sticky", Ok(chmod("nonroot/sticky", 01777)));
  t.Say("setup-sticky-rootfile", WriteFile("nonroot/sticky/rootfile", "r"));
  t.Say("chmod-sticky-rootfile", Ok(chmod("nonroot/sticky/rootfile", 0666)));
  Child c(t, "child", [](Transcript& ct, Child&) {
    // chdir first, as root: later lookups then need no search permission above ROOT.
    ct.Say("chdir", Ok(chdir("nonroot")));
    ct.Say("setgroups", Ok(setgroups(0, nullptr)));
    ct.Say("setgid", Ok(setgid(kNobody)));
    ct.Say("setuid", Ok(setuid(kNobody)));
    ct.Say("ids", "uid=" + std::to_string(getuid()) + " euid=" + std::to_string(geteuid()) +
                      " gid=" + std::to_string(getgid()));
    ct.Say("open-secret-rdonly", OpenResult("secret", O_RDONLY));
    ct.Say("access-secret-r", Ok(access("secret", R_OK)));
    ct.Say("stat-secret", StatDesc("secret"));
    ct.Say("open-open-rdonly", OpenResult("open", O_RDONLY));
    ct.Say("read-open", Content("open"));
    ct.Say("open-open-wronly", OpenResult("open", O_WRONLY));
    ct.Say("truncate-open", Ok(truncate("open", 0)));
    ct.Say("creat-in-closed", OpenResult("closed/new", O_CREAT | O_WRONLY, 0644));
    ct.Say("stat-closed-x", StatDesc("closed/x"));
    ct.Say("opendir-closed", [] {
      DIR* d = opendir("closed");
      if (d == nullptr) return ErrnoName(errno);
      closedir(d);
      return std::string("ok");
    }());
    ct.Say("unlink-open", Ok(unlink("open")));
    ct.Say("rename-open", Ok(rename("open", "open2")));
    ct.Say("mkdir-in-root-owned", Ok(mkdir("newdir", 0755)));
    ct.Say("creat-in-root-owned", OpenResult("newfile", O_CREAT | O_WRONLY, 0644));
    ct.Say("chmod-not-owner", Ok(chmod("open", 0666)));
    ct.Say("chown-not-owner", Ok(chown("open", kNobody, kNobody)));
    const timespec times[2] = {{1000000000, 0}, {1000000000, 0}};
    ct.Say("utimensat-explicit-not-owner", Ok(utimensat(AT_FDCWD, "open", times, 0)));
    ct.Say("utimensat-now-no-write", Ok(utimensat(AT_FDCWD, "open", nullptr, 0)));
    ct.Say("setxattr-no-write", Ok(setxattr("open", "user.x", "x", 1, 0)));
    ct.Say("link-protected", Ok(link("secret", "pub/hl")));
    ct.Say("creat-in-pub", OpenResult("pub/mine", O_CREAT | O_EXCL | O_WRONLY, 0644));
    ct.Say("owner-of-created", Owner("pub/mine"));
    ct.Say("chmod-own", Ok(chmod("pub/mine", 0600)));
    ct.Say("mode-own", StatDesc("pub/mine"));
    ct.Say("chown-own-to-root", Ok(chown("pub/mine", 0, 0)));
    ct.Say("mkdir-in-pub", Ok(mkdir("pub/mydir", 0755)));
    ct.Say("owner-of-mkdir", Owner("pub/mydir"));
    ct.Say("unlink-sticky-rootfile", Ok(unlink("sticky/rootfile")));
    ct.Say("write-sticky-rootfile", OpenResult("sticky/rootfile", O_WRONLY));
    ct.Say("creat-in-sticky", OpenResult("sticky/mine", O_CREAT | O_WRONLY, 0644));
    ct.Say("unlink-own-in-sticky", Ok(unlink("sticky/mine")));
  });
  c.Finish(t);
  t.Say("secret-intact", Content("nonroot/secret"));
  t.Say("open-intact", Content("nonroot/open"));
  t.Say("sticky-rootfile-intact", StatDesc("nonroot/sticky/rootfile"));
}

void Cleanup(Transcript& t) {
  t.Section("");
  std::vector<std::string> names;
  int e = ListDir(".", &names);
  if (e != 0) {
    t.Say("cleanup", ErrnoName(e));
    return;
  }
  int first = 0;
  for (const std::string& n : names) {
    int r = RemoveTree(n);
    if (first == 0) first = r;
  }
  e = ListDir(".", &names);
  if (first != 0) {
    t.Say("cleanup", ErrnoName(first));
  } else if (e != 0) {
    t.Say("cleanup", ErrnoName(e));
  } else if (!names.empty()) {
    t.Say("cleanup", std::to_string(names.size()) + " entries left");
  } else {
    t.Say("cleanup", "ok");
  }
}

int Usage() {
  fprintf(stderr, "usage: battery [--skip-nonroot] ROOT\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  bool skip_nonroot = false;
  const char* root = nullptr;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--skip-nonroot") {
      skip_nonroot = true;
    } else if (root == nullptr && !a.empty() && a[0] != '-') {
      root = argv[i];
    } else {
      return Usage();
    }
  }
  if (root == nullptr) return Usage();

  struct stat st {};
  if (stat(root, &st) != 0) {
    fprintf(stderr, "battery: ROOT unusable: %s: %s\n", root, strerror(errno));
    return 2;
  }
  if (!S_ISDIR(st.st_mode)) {
    fprintf(stderr, "battery: ROOT unusable: %s: %s\n", root, strerror(ENOTDIR));
    return 2;
  }
  if (chdir(root) != 0) {
    fprintf(stderr, "battery: ROOT unusable: %s: %s\n", root, strerror(errno));
    return 2;
  }
  std::vector<std::string> existing;
  int e = ListDir(".", &existing);
  if (e != 0 || !existing.empty()) {
    fprintf(stderr, "battery: ROOT unusable: %s: %s\n", root,
            e ? strerror(e) : "directory is not empty");
    return 2;
  }
  if (access(".", W_OK | X_OK) != 0) {
    fprintf(stderr, "battery: ROOT unusable: %s: %s\n", root, strerror(errno));
    return 2;
  }
  umask(022);
  signal(SIGPIPE, SIG_IGN);

  Transcript t(STDOUT_FILENO);
  BasicIo(t);
  ErrorCases(t);
  LargeIo(t);
  SparseFile(t);
  SpaceAndWhiteout(t);
  Directories(t);
  Renames(t);
  HardLinks(t);
  Symlinks(t);
  ManyEntries(t);
  Attributes(t);
  Xattrs(t);
  StatFs(t);
  UnlinkedOpen(t);
  SharedMmap(t);
  PosixLocks(t);
  Flocks(t);
  NonRoot(t, skip_nonroot);
  Cleanup(t);
  return 0;
}
