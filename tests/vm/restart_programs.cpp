// restart-programs DIR STOP_FILE: the restart tests' programs (tests/mount/restart_programs.h)
// in the VM guest, on the mount DIR, while the host kills and restarts fsoutd. They run until
// STOP_FILE appears (and 3 s more), then check what they read back and that a second process
// of this guest cannot take their locks. Prints every error; exit status 0 when none.
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "../mount/restart_programs.h"

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Another process of the guest tries the locks: it must not get them.
void check_locks_held(const std::string& dir, fsout_test::Errors& errors) {
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open((dir + "/posix.lock").c_str(), O_RDWR);
    struct flock fl {};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_len = 100;
    bool posix = fd >= 0 && fcntl(fd, F_SETLK, &fl) == 0;
    int ffd = open((dir + "/flock.lock").c_str(), O_RDWR);
    bool whole = ffd >= 0 && flock(ffd, LOCK_EX | LOCK_NB) == 0;
    _exit((posix ? 1 : 0) | (whole ? 2 : 0));
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    errors.add("another process took the locks (status " + std::to_string(status) + ")");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: restart-programs DIR STOP_FILE\n");
    return 2;
  }
  const std::string dir = argv[1], stop_file = argv[2];
  const std::string reference = fsout_test::restart_reference();
  std::ofstream(dir + "/read.bin", std::ios::binary) << reference;
  std::filesystem::create_directory(dir + "/listing");
  for (int i = 0; i < 40; ++i) std::ofstream(dir + "/listing/entry" + std::to_string(i)) << i;
  int ready[2], stop[2];
  if (pipe(ready) != 0 || pipe(stop) != 0) return 2;
  fsout_test::Progress progress;
  std::thread watcher([&] {
    char byte;
    if (read(ready[0], &byte, 1) != 1) return;
    while (!std::filesystem::exists(stop_file))
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    std::this_thread::sleep_for(std::chrono::seconds(3));
    if (write(stop[1], "s", 1) != 1) {
    }
  });
  int status = fsout_test::run_programs(
      dir, reference, ready[1], stop[0], 1, progress,
      [&](fsout_test::Errors& errors) { check_locks_held(dir, errors); });
  watcher.join();
  // Contents exactly as written: each append once, in order.
  std::string writes, appends;
  for (uint64_t n = 0; n < progress.writes; ++n) {
    writes += fsout_test::record("write", n);
    appends += fsout_test::record("append", n);
  }
  if (slurp(dir + "/write.log") != writes) std::printf("write.log differs\n"), status = 1;
  if (slurp(dir + "/append.log") != appends) std::printf("append.log differs\n"), status = 1;
  std::printf("restart programs: %llu file rounds, %llu name loops, %s\n",
              static_cast<unsigned long long>(progress.writes.load()),
              static_cast<unsigned long long>(progress.loops.load()), status ? "FAILED" : "ok");
  return status;
}
