// fsout-freebsd-syscalls: the system calls a FreeBSD program makes that the shell battery
// (battery.sh) cannot reach, run in DIR; every step prints "name: result" where a failure is
// the errno's text. run-freebsd-test.sh runs it on the guest's UFS and on the fsout mount and
// compares the transcripts: fsout must answer as FreeBSD's own file system does.
//   open flags and their errors, fcntl record locks and flock between two processes,
//   extended attributes in the user and system namespaces (extattr_*), positioned I/O,
//   lseek SEEK_DATA/SEEK_HOLE, posix_fallocate, ftruncate, an unlinked open file.
// Usage: fsout-freebsd-syscalls DIR
// sys/extattr.h needs size_t and ssize_t declared before it.
#include <sys/types.h>
// clang-format off
#include <sys/extattr.h>
// clang-format on
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

namespace {

std::string result(long rc) {
  return rc < 0 ? std::string("FAILED ") + std::strerror(errno) : "ok";
}
void say(const char* name, const std::string& what) { std::printf("%s: %s\n", name, what.c_str()); }
void step(const char* name, long rc) { say(name, result(rc)); }

// Runs `probe` in a child process (a second lock owner) and returns what it printed as its
// exit status: 0 ok, otherwise the errno.
template <class Probe>
std::string in_child(Probe probe) {
  pid_t pid = fork();
  if (pid == 0) _exit(probe());
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status)) return "child died";
  int code = WEXITSTATUS(status);
  return code == 0 ? "ok" : std::string("FAILED ") + std::strerror(code);
}

int set_lock(int fd, short type, off_t start, off_t len, bool wait = false) {
  struct flock lock {};
  lock.l_type = type;
  lock.l_whence = SEEK_SET;
  lock.l_start = start;
  lock.l_len = len;
  return fcntl(fd, wait ? F_SETLKW : F_SETLK, &lock) == 0 ? 0 : errno;
}

std::string get_lock(int fd, short type, off_t start, off_t len) {
  struct flock lock {};
  lock.l_type = type;
  lock.l_whence = SEEK_SET;
  lock.l_start = start;
  lock.l_len = len;
  if (fcntl(fd, F_GETLK, &lock) != 0) return result(-1);
  if (lock.l_type == F_UNLCK) return "unlocked";
  return std::string(lock.l_type == F_WRLCK ? "write" : "read") + " " +
         std::to_string(lock.l_start) + "+" + std::to_string(lock.l_len) +
         (lock.l_pid == getpid() ? " by parent" : " by other");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2 || chdir(argv[1]) != 0) {
    std::fprintf(stderr, "usage: fsout-freebsd-syscalls DIR\n");
    return 2;
  }
  setvbuf(stdout, nullptr, _IOLBF, 0);

  // open flags
  int fd = open("f", O_RDWR | O_CREAT | O_EXCL, 0644);
  step("create-excl", fd);
  step("create-excl-again", open("f", O_RDWR | O_CREAT | O_EXCL, 0644));
  step("write", write(fd, "0123456789", 10));
  step("open-directory-on-file", open("f", O_RDONLY | O_DIRECTORY));
  step("symlink", symlink("f", "sl"));
  step("open-nofollow-symlink", open("sl", O_RDONLY | O_NOFOLLOW));
  step("open-missing", open("missing", O_RDONLY));
  step("mkdir", mkdir("d", 0755));
  step("open-dir-for-writing", open("d", O_WRONLY));
  int append = open("f", O_WRONLY | O_APPEND);
  step("open-append", append);
  step("append-write", write(append, "AB", 2));
  struct stat st {};
  fstat(fd, &st);
  say("size-after-append", std::to_string(st.st_size));
  close(append);
  int trunc = open("f", O_RDWR | O_TRUNC);
  step("open-trunc", trunc);
  fstat(trunc, &st);
  say("size-after-trunc", std::to_string(st.st_size));
  close(trunc);

  // positioned I/O and holes
  step("pwrite-far", pwrite(fd, "xyz", 3, 1 << 20));
  char buf[16] = {};
  step("pread", pread(fd, buf, 3, 1 << 20));
  say("pread-data", std::string(buf, 3));
  step("pread-past-end", pread(fd, buf, 3, 2 << 20));
  say("seek-end", std::to_string(lseek(fd, 0, SEEK_END)));
  off_t data = lseek(fd, 0, SEEK_DATA);
  say("seek-data-from-0", data < 0 ? result(-1) : "ok");
  say("seek-hole-past-end", result(lseek(fd, 4 << 20, SEEK_HOLE)));
  step("ftruncate-down", ftruncate(fd, 100));
  fstat(fd, &st);
  say("size-after-ftruncate", std::to_string(st.st_size));
  int fa = posix_fallocate(fd, 0, 8192);
  say("posix-fallocate", fa == 0 ? "ok" : std::string("FAILED ") + std::strerror(fa));
  fstat(fd, &st);
  say("size-after-fallocate", std::to_string(st.st_size));

  // fcntl record locks: the parent holds some, a child (another owner) probes
  step("lock-write-0-10", set_lock(fd, F_WRLCK, 0, 10) ? -1 : 0);
  step("lock-read-20-10", set_lock(fd, F_RDLCK, 20, 10) ? -1 : 0);
  say("child-getlk-5", in_child([] {
        int f = open("f", O_RDWR);
        return std::printf("getlk-5: %s\n", get_lock(f, F_WRLCK, 5, 1).c_str()) > 0 ? 0 : 1;
      }));
  say("child-write-lock-5", in_child([] {
        int f = open("f", O_RDWR);
        return set_lock(f, F_WRLCK, 5, 1);
      }));
  say("child-read-lock-25", in_child([] {
        int f = open("f", O_RDWR);
        return set_lock(f, F_RDLCK, 25, 1);
      }));
  say("child-write-lock-25", in_child([] {
        int f = open("f", O_RDWR);
        return set_lock(f, F_WRLCK, 25, 1);
      }));
  say("child-write-lock-50", in_child([] {
        int f = open("f", O_RDWR);
        return set_lock(f, F_WRLCK, 50, 10);
      }));
  step("unlock-0-5", set_lock(fd, F_UNLCK, 0, 5) ? -1 : 0);
  say("child-write-lock-2-after-unlock", in_child([] {
        int f = open("f", O_RDWR);
        return set_lock(f, F_WRLCK, 2, 1);
      }));
  say("child-write-lock-7-still-held", in_child([] {
        int f = open("f", O_RDWR);
        return set_lock(f, F_WRLCK, 7, 1);
      }));
  int bad_type = set_lock(fd, 99, 0, 1);
  say("lock-bad-type", bad_type == 0 ? "ok" : std::string("FAILED ") + std::strerror(bad_type));
  // A waiting lock is granted when the holder lets go.
  pid_t holder = fork();
  if (holder == 0) {
    int f = open("f", O_RDWR);
    set_lock(f, F_WRLCK, 200, 1);
    usleep(300 * 1000);
    _exit(0);  // closing drops the lock
  }
  usleep(100 * 1000);
  say("setlkw-waits-for-holder", set_lock(fd, F_WRLCK, 200, 1, true) == 0 ? "ok" : "FAILED");
  waitpid(holder, nullptr, 0);
  step("unlock-all", set_lock(fd, F_UNLCK, 0, 0) ? -1 : 0);

  // flock: whole-file locks of open files
  step("flock-ex", flock(fd, LOCK_EX | LOCK_NB));
  say("child-flock-sh", in_child([] {
        int f = open("f", O_RDONLY);
        return flock(f, LOCK_SH | LOCK_NB) == 0 ? 0 : errno;
      }));
  step("flock-un", flock(fd, LOCK_UN));
  say("child-flock-sh-after", in_child([] {
        int f = open("f", O_RDONLY);
        return flock(f, LOCK_SH | LOCK_NB) == 0 ? 0 : errno;
      }));

  // extended attributes, both namespaces (the system one is root's)
  for (int ns : {EXTATTR_NAMESPACE_USER, EXTATTR_NAMESPACE_SYSTEM}) {
    std::string prefix = ns == EXTATTR_NAMESPACE_USER ? "user-" : "system-";
    auto name = [&](const char* what) { return prefix + what; };
    step(name("set").c_str(), extattr_set_file("f", ns, "a", "value", 5));
    step(name("set-empty").c_str(), extattr_set_file("f", ns, "empty", "", 0));
    char value[64] = {};
    ssize_t n = extattr_get_file("f", ns, "a", value, sizeof value);
    say(name("get").c_str(), n < 0 ? result(-1) : std::string(value, size_t(n)));
    say(name("get-size").c_str(), std::to_string(extattr_get_file("f", ns, "a", nullptr, 0)));
    step(name("get-missing").c_str(), extattr_get_file("f", ns, "nothere", value, sizeof value));
    char list[256] = {};
    n = extattr_list_file("f", ns, list, sizeof list);
    std::string names;
    for (ssize_t at = 0; n > 0 && at < n; at += 1 + (unsigned char)list[at])
      names += std::string(list + at + 1, (unsigned char)list[at]) + " ";
    say(name("list").c_str(), n < 0 ? result(-1) : names);
    step(name("delete").c_str(), extattr_delete_file("f", ns, "a"));
    step(name("delete-again").c_str(), extattr_delete_file("f", ns, "a"));
    step(name("set-on-dir").c_str(), extattr_set_file("d", ns, "x", "1", 1));
    step(name("set-on-symlink-itself").c_str(), extattr_set_link("sl", ns, "x", "1", 1));
  }

  // an unlinked file stays readable through its descriptor
  step("unlink-open", unlink("f"));
  step("pread-unlinked", pread(fd, buf, 3, 0));
  fstat(fd, &st);
  say("nlink-unlinked", std::to_string(st.st_nlink));
  close(fd);
  step("cleanup", unlink("sl") | rmdir("d"));
  return 0;
}
