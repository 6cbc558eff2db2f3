// Restarts of the host daemon (docs/ARCHITECTURE.md, "Restarts"): programs on the mount hold
// open files (read, write, append, unlinked while open), an open directory, a POSIX lock and
// a flock, and run a create/rename/unlink/stat loop, while fsoutd is killed with SIGKILL
// three times, stopped with SIGTERM and started again, and replaced by another build. They
// must see no error at all, the files must hold exactly what was written, the locks must
// stay theirs (a host process cannot take them after a restart), inode numbers must not
// change. And with the host gone for longer than the reconnect limit, the mount stays and a
// write by path fails instead of landing in the directory beneath.
#include <dirent.h>
#include <sys/file.h>
#include <sys/mman.h>

#include "harness.h"
#include "restart_programs.h"

namespace fsout_test {
namespace {

// Whether a host process (a child of the test, on the export itself) can take the locks.
bool host_can_lock(const std::string& posix_file, const std::string& flock_file) {
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(posix_file.c_str(), O_RDWR);
    struct flock fl {};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = 0;
    fl.l_len = 100;
    bool posix = fd >= 0 && fcntl(fd, F_SETLK, &fl) == 0;
    int ffd = open(flock_file.c_str(), O_RDWR);
    bool whole = ffd >= 0 && flock(ffd, LOCK_EX | LOCK_NB) == 0;
    _exit((posix ? 1 : 0) | (whole ? 2 : 0));
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return !WIFEXITED(status) || WEXITSTATUS(status) != 0;
}

// The programs run in a child process of their own: the test process forks fsoutd, and a
// child inherits open files; one that holds a file of the mount when it execs or exits sends
// the mount a FLUSH, which would wait for the very daemon that child is about to become.
TEST(Restart, ProgramsNoticeNoCrashRestartOrUpgrade) {
  ASSERT_EQ(geteuid(), 0u) << "mount tests need root";
  MountedExport m("unix", "allow_other,default_permissions,reconnect=60");
  ASSERT_TRUE(m.mounted());
  const std::string dir = m.mount_dir(), host = m.export_dir();
  const std::string reference = restart_reference();
  std::ofstream(host + "/read.bin", std::ios::binary) << reference;
  fs::create_directory(host + "/listing");
  for (int i = 0; i < 40; ++i) std::ofstream(host + "/listing/entry" + std::to_string(i)) << i;
  struct stat listing_st {};
  ASSERT_EQ(stat((dir + "/listing").c_str(), &listing_st), 0);

  auto* progress = static_cast<Progress*>(
      mmap(nullptr, sizeof(Progress), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(progress, MAP_FAILED);
  new (progress) Progress;
  int ready[2], stop[2], report[2];
  ASSERT_EQ(pipe(ready) | pipe(stop) | pipe(report), 0);
  pid_t programs = fork();
  if (programs == 0) _exit(run_programs(dir, reference, ready[1], stop[0], report[1], *progress));
  close(ready[1]);
  close(stop[0]);
  close(report[1]);
  char byte;
  ASSERT_EQ(read(ready[0], &byte, 1), 1) << "the programs did not start";
  EXPECT_FALSE(host_can_lock(host + "/posix.lock", host + "/flock.lock"));

  auto busy_for = [&](std::chrono::milliseconds span) {
    const uint64_t w = progress->writes, l = progress->loops;
    std::this_thread::sleep_for(span);
    // Not a timing check: the programs must go on, on a slow machine too.
    EXPECT_TRUE(wait_until([&] { return progress->writes.load() > w; }))
        << "the file program made no progress";
    EXPECT_TRUE(wait_until([&] { return progress->loops.load() > l; }))
        << "the name loop made no progress";
  };
  struct Step {
    int signal;
    std::string binary;
    const char* what;
  };
  const std::vector<Step> steps{{SIGKILL, FSOUTD_PATH, "SIGKILL"},
                                {SIGKILL, FSOUTD_PATH, "SIGKILL"},
                                {SIGKILL, FSOUTD_PATH, "SIGKILL"},
                                {SIGTERM, FSOUTD_PATH, "SIGTERM (graceful)"},
                                {SIGTERM, FSOUTD_UPGRADE_PATH, "upgrade to another build"}};
  busy_for(700ms);
  for (const auto& step : steps) {
    SCOPED_TRACE(step.what);
    m.restart_daemon(step.signal, step.binary);
    busy_for(1500ms);
    // The new fsoutd took the locks again for the guest.
    EXPECT_FALSE(host_can_lock(host + "/posix.lock", host + "/flock.lock"))
        << "a host process took the guest's lock after " << step.what;
  }
  const uint64_t writes = progress->writes;
  EXPECT_EQ(write(stop[1], "s", 1), 1);
  int status = 0;
  waitpid(programs, &status, 0);
  std::string said;
  char buffer[4096];
  for (ssize_t n; (n = read(report[0], buffer, sizeof(buffer))) > 0;) said.append(buffer, n);
  close(ready[0]);
  close(stop[1]);
  close(report[0]);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << said << m.log("mount.log") << m.log("fsoutd.log");
  std::cout << "restart test: " << progress->writes << " file rounds, " << progress->loops
            << " name loops, " << steps.size() << " restarts\n";
  EXPECT_GE(progress->writes.load(), writes);

  // Contents exactly as written (each append once, in order), on the host and the mount.
  std::string expected_writes, expected_appends;
  for (uint64_t n = 0; n < progress->writes; ++n) {
    expected_writes += record("write", n);
    expected_appends += record("append", n);
  }
  auto slurp = [](const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  };
  // Where a file first differs from what was written, with the lines around it.
  auto difference = [](const std::string& got, const std::string& want) -> std::string {
    if (got == want) return "";
    size_t at = 0;
    while (at < got.size() && at < want.size() && got[at] == want[at]) ++at;
    const size_t from = want.rfind('\n', at == 0 ? 0 : at - 1);
    const size_t start = from == std::string::npos ? 0 : from + 1;
    return std::to_string(got.size()) + " bytes instead of " + std::to_string(want.size()) +
           ", first difference at byte " + std::to_string(at) +
           "\nwritten: " + want.substr(start, 300) + "\nfound:   " + got.substr(start, 300);
  };
  EXPECT_EQ(difference(slurp(host + "/write.log"), expected_writes), "")
      << "write.log differs on the host";
  EXPECT_EQ(difference(slurp(host + "/append.log"), expected_appends), "")
      << "append.log differs on the host\n"
      << m.log("mount.log") << m.log("fsoutd.log");
  EXPECT_EQ(difference(slurp(dir + "/append.log"), expected_appends), "")
      << "append.log differs on the mount";
  struct stat now {};
  EXPECT_EQ(stat((dir + "/listing").c_str(), &now), 0);
  EXPECT_EQ(now.st_ino, listing_st.st_ino);
  EXPECT_TRUE(host_can_lock(host + "/posix.lock", host + "/flock.lock"))
      << "the locks were not let go when the program unlocked and closed";
  // The unlinked file is gone for good once closed (the orphan directory goes with it).
  EXPECT_TRUE(wait_until([&] { return !fs::exists(host + "/.fsout-orphans"); }));
  munmap(progress, sizeof(Progress));
}

TEST(Restart, HostGoneLongerThanTheLimitFailsWritesAndKeepsTheMount) {
  ASSERT_EQ(geteuid(), 0u) << "mount tests need root";
  MountedExport m("unix", "allow_other,default_permissions,reconnect=2");
  ASSERT_TRUE(m.mounted());
  const std::string dir = m.mount_dir();
  std::ofstream(dir + "/before") << "before";
  kill(m.daemon_pid(), SIGKILL);
  waitpid(m.daemon_pid(), nullptr, 0);
  std::this_thread::sleep_for(3500ms);  // past the limit
  EXPECT_TRUE(is_mounted(dir)) << "the mount went away with the host";
  int failed_writes = 0;
  for (int i = 0; i < 20; ++i) {
    int fd = open((dir + "/file" + std::to_string(i)).c_str(), O_WRONLY | O_CREAT, 0644);
    if (fd < 0) {
      ++failed_writes;
      continue;
    }
    if (write(fd, "x", 1) != 1 || close(fd) != 0) ++failed_writes;
  }
  EXPECT_EQ(failed_writes, 20) << "writes by path succeeded with no host";
  // The guest's own directory beneath the mount stays empty.
  umount2(dir.c_str(), MNT_DETACH);
  EXPECT_TRUE(wait_until([&] { return !is_mounted(dir); }));
  EXPECT_TRUE(fs::is_empty(dir)) << "data landed in the mount point's own directory";
}

}  // namespace
}  // namespace fsout_test
