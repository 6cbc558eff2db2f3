// The seccomp allow-list (src/host/sandbox.cpp) in a child process: what fsoutd does still
// works under it, and what it must never do stops the process with one line that names
// the call.
#include "host/sandbox.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <string>
#include <thread>

namespace fsout {
namespace {

struct Outcome {
  int status = 0;     // from waitpid
  std::string error;  // what the child wrote on stderr
};

// Runs `body` in a child under the allow-list; the child exits 0 after it.
Outcome run_restricted(const std::function<void()>& body) {
  int pipe_fds[2];
  EXPECT_EQ(pipe(pipe_fds), 0);
  pid_t child = fork();
  if (child == 0) {
    dup2(pipe_fds[1], 2);
    close(pipe_fds[0]);
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    try {
      host::restrict_system_calls();
    } catch (const std::exception& error) {
      std::fprintf(stderr, "%s\n", error.what());
      _exit(2);
    }
    body();
    _exit(0);
  }
  close(pipe_fds[1]);
  Outcome outcome;
  char buffer[512];
  for (ssize_t n; (n = read(pipe_fds[0], buffer, sizeof buffer)) > 0;)
    outcome.error.append(buffer, size_t(n));
  close(pipe_fds[0]);
  waitpid(child, &outcome.status, 0);
  return outcome;
}

bool stopped_for(const Outcome& outcome, long number) {
  return WIFEXITED(outcome.status) && WEXITSTATUS(outcome.status) == 128 + SIGSYS &&
         outcome.error.find("the sandbox stopped system call number " + std::to_string(number)) !=
             std::string::npos;
}

TEST(Sandbox, WhatFsoutdDoesStillWorks) {
  char dir[] = "/tmp/fsout-sandbox-XXXXXX";
  ASSERT_TRUE(mkdtemp(dir));
  auto outcome = run_restricted([&] {
    int fd = openat(AT_FDCWD, dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    int file = openat(fd, "f", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || file < 0 || write(file, "x", 1) != 1 || fsync(file) != 0) _exit(4);
    std::thread worker([&] {  // threads: clone with CLONE_THREAD (clone3 falls back)
      if (fchmod(file, 0640) != 0) _exit(5);
    });
    worker.join();
    close(file);
    if (mkdirat(fd, "d", 0700) != 0 || unlinkat(fd, "d", AT_REMOVEDIR) != 0) _exit(6);
    if (unlinkat(fd, "f", 0) != 0) _exit(7);
  });
  rmdir(dir);
  EXPECT_TRUE(WIFEXITED(outcome.status) && WEXITSTATUS(outcome.status) == 0)
      << "status " << outcome.status << ": " << outcome.error;
}

TEST(Sandbox, ANewSocketStopsTheProcess) {
  auto outcome = run_restricted([] { socket(AF_INET, SOCK_STREAM, 0); });
  EXPECT_TRUE(stopped_for(outcome, SYS_socket)) << outcome.status << ": " << outcome.error;
}

TEST(Sandbox, ANewProcessStopsTheProcess) {
  // fork() is clone without CLONE_THREAD.
  auto outcome = run_restricted([] { syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0); });
  EXPECT_TRUE(stopped_for(outcome, SYS_clone)) << outcome.status << ": " << outcome.error;
}

TEST(Sandbox, OpeningByHandleStopsTheProcess) {
  // With CAP_DAC_READ_SEARCH it would open any file of the file system by a forged handle.
  auto outcome = run_restricted([] { syscall(SYS_open_by_handle_at, AT_FDCWD, nullptr, 0); });
  EXPECT_TRUE(stopped_for(outcome, SYS_open_by_handle_at))
      << outcome.status << ": " << outcome.error;
}

TEST(Sandbox, LeavingTheNamespacesStopsTheProcess) {
  for (long number : {long(SYS_unshare), long(SYS_setns), long(SYS_mount), long(SYS_chroot),
                      long(SYS_pivot_root), long(SYS_execve), long(SYS_ptrace)}) {
    auto outcome = run_restricted([number] { syscall(number, 0, 0, 0, 0, 0); });
    EXPECT_TRUE(stopped_for(outcome, number))
        << "call " << number << ": " << outcome.status << ": " << outcome.error;
  }
}

TEST(Sandbox, OnlyTermiosIoctls) {
  auto outcome = run_restricted([] {
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    ioctl(fd, 0x5412 /* TIOCSTI */, "x");
  });
  EXPECT_TRUE(stopped_for(outcome, SYS_ioctl)) << outcome.status << ": " << outcome.error;
}

TEST(Sandbox, ModesParse) {
  EXPECT_EQ(host::parse_sandbox_mode("namespace"), host::SandboxMode::kNamespace);
  EXPECT_EQ(host::parse_sandbox_mode("chroot"), host::SandboxMode::kChroot);
  EXPECT_EQ(host::parse_sandbox_mode("none"), host::SandboxMode::kNone);
  EXPECT_FALSE(host::parse_sandbox_mode("Namespace"));
  EXPECT_FALSE(host::parse_sandbox_mode(""));
}

}  // namespace
}  // namespace fsout
