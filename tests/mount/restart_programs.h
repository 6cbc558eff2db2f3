// The programs of the restart tests (restart_test.cpp on a mount here, and
// restart-programs-static in the VM guest, tests/vm): files held open (read, write, append,
// unlinked while open), an open directory, a POSIX lock and a flock, and a
// create/rename/stat/mkdir/rmdir/unlink loop, until told to stop; then every check of what
// they read back. They report each error seen (at most 50) on `report_fd`.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace fsout_test {

inline std::string record(const char* kind, uint64_t n) {
  return std::string(kind) + " record " + std::to_string(n) + " " + std::string(n % 97, 'x') + "\n";
}

// Errors the programs saw, with what they were doing.
struct Errors {
  std::mutex mutex;
  std::vector<std::string> seen;
  void add(const std::string& what) {
    std::lock_guard lock(mutex);
    if (seen.size() < 50) seen.push_back(what + ": " + std::strerror(errno));
  }
  size_t count() {
    std::lock_guard lock(mutex);
    return seen.size();
  }
};

// How far the programs got (shared with whoever watches them).
struct Progress {
  std::atomic<uint64_t> writes{0}, loops{0};
};

// `while_locked` runs once the loops stopped, with the locks still held (a check that
// nobody else can take them).
inline int run_programs(const std::string& dir, const std::string& reference, int ready_fd,
                        int stop_fd, int report_fd, Progress& progress,
                        const std::function<void(Errors&)>& while_locked = {}) {
  auto say = [&](const std::string& text) {
    if (write(report_fd, text.data(), text.size()) < 0) {
    }
  };
  int reader = open((dir + "/read.bin").c_str(), O_RDONLY);
  int writer = open((dir + "/write.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  int appender = open((dir + "/append.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  int unlinked = open((dir + "/unlinked.tmp").c_str(), O_RDWR | O_CREAT, 0600);
  int locked = open((dir + "/posix.lock").c_str(), O_RDWR | O_CREAT, 0644);
  int flocked = open((dir + "/flock.lock").c_str(), O_RDWR | O_CREAT, 0644);
  DIR* listing = opendir((dir + "/listing").c_str());
  if (reader < 0 || writer < 0 || appender < 0 || unlinked < 0 || locked < 0 || flocked < 0 ||
      !listing || unlink((dir + "/unlinked.tmp").c_str()) != 0)
    return say("setup failed\n"), 1;
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = 0;
  fl.l_len = 100;
  if (fcntl(locked, F_SETLK, &fl) != 0 || flock(flocked, LOCK_EX | LOCK_NB) != 0)
    return say("locking failed\n"), 1;
  auto inode_of = [](int fd) {
    struct stat st {};
    fstat(fd, &st);
    return st.st_ino;
  };
  const std::vector<int> held{reader, writer, appender, unlinked, locked, flocked, dirfd(listing)};
  std::vector<ino_t> inodes_before;
  for (int fd : held) inodes_before.push_back(inode_of(fd));

  Errors errors;
  std::atomic<bool> stop = false;
  uint64_t unlinked_size = 0;
  // Sequential writes, appends, reads of known data, the unlinked file and the listing.
  std::thread files([&] {
    uint64_t offset = 0;
    std::vector<char> buffer(65536);
    for (uint64_t n = 0; !stop; ++n) {
      const std::string w = record("write", n), a = record("append", n);
      if (pwrite(writer, w.data(), w.size(), off_t(offset)) != ssize_t(w.size()))
        errors.add("pwrite " + std::to_string(n));
      offset += w.size();
      if (write(appender, a.data(), a.size()) != ssize_t(a.size()))
        errors.add("append " + std::to_string(n));
      const size_t at = (n * 7919 * 4096) % (reference.size() - buffer.size());
      ssize_t got = pread(reader, buffer.data(), buffer.size(), off_t(at));
      if (got != ssize_t(buffer.size()) ||
          std::memcmp(buffer.data(), &reference[at], buffer.size()))
        errors.add("pread of known data at " + std::to_string(at) + " (" + std::to_string(got) +
                   " bytes)");
      if (pwrite(unlinked, w.data(), w.size(), off_t(unlinked_size)) != ssize_t(w.size()))
        errors.add("write to the unlinked file");
      unlinked_size += w.size();
      if (n % 8 == 0) {
        rewinddir(listing);
        int entries = 0;
        errno = 0;
        while (dirent* d = readdir(listing)) entries += d->d_name[0] != '.';
        if (errno != 0 || entries != 40) errors.add("listing: " + std::to_string(entries));
      }
      progress.writes = n + 1;
    }
  });
  // Names made, renamed, stat'ed and removed.
  std::thread names([&] {
    for (uint64_t n = 0; !stop; ++n) {
      const std::string a = dir + "/loop-" + std::to_string(n), b = a + ".renamed";
      int fd = open(a.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
      if (fd < 0) {
        errors.add("create " + a);
        continue;
      }
      if (write(fd, a.data(), a.size()) != ssize_t(a.size())) errors.add("write " + a);
      if (close(fd) != 0) errors.add("close " + a);
      if (rename(a.c_str(), b.c_str()) != 0) errors.add("rename " + a);
      struct stat st;
      if (stat(b.c_str(), &st) != 0 || st.st_size != off_t(a.size())) errors.add("stat " + b);
      if (mkdir((a + ".d").c_str(), 0755) != 0) errors.add("mkdir " + a);
      if (rmdir((a + ".d").c_str()) != 0) errors.add("rmdir " + a);
      if (unlink(b.c_str()) != 0) errors.add("unlink " + b);
      progress.loops = n + 1;
    }
  });
  say("ready\n");
  if (write(ready_fd, "r", 1) != 1) return 1;
  char byte;
  if (read(stop_fd, &byte, 1) < 0) return 1;
  stop = true;
  files.join();
  names.join();

  // The unlinked file reads back whole.
  std::string back(unlinked_size, '\0');
  if (pread(unlinked, back.data(), back.size(), 0) != ssize_t(back.size()))
    errors.add("reading the unlinked file back");
  std::string expected;
  for (uint64_t n = 0; expected.size() < unlinked_size; ++n) expected += record("write", n);
  if (back != expected) errors.add("the unlinked file's contents differ");
  for (size_t i = 0; i < held.size(); ++i)
    if (inode_of(held[i]) != inodes_before[i]) errors.add("inode of file " + std::to_string(i));
  if (while_locked) while_locked(errors);
  // The locks are still the program's: it can unlock them.
  fl.l_type = F_UNLCK;
  if (fcntl(locked, F_SETLK, &fl) != 0) errors.add("unlock");
  if (flock(flocked, LOCK_UN) != 0) errors.add("flock unlock");
  closedir(listing);
  for (int fd : {reader, writer, appender, unlinked, locked, flocked})
    if (close(fd) != 0) errors.add("close");
  for (auto& e : errors.seen) say(e + "\n");
  return errors.count() == 0 ? 0 : 1;
}

// The known contents of read.bin.
inline std::string restart_reference() {
  std::string reference(3 << 20, '\0');
  for (size_t i = 0; i < reference.size(); ++i) reference[i] = char((i * 2654435761u) >> 13);
  return reference;
}

}  // namespace fsout_test
