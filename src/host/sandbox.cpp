// The sandbox (see sandbox.h): namespaces, pivot_root, and the seccomp allow-list.
#include "host/sandbox.h"

#include <cap-ng.h>
#include <fcntl.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>

#include "host/confine.h"

namespace fsout::host {

namespace {

[[noreturn]] void fail(const std::string& what, int error = errno) {
  throw std::runtime_error("sandbox: " + what + ": " + std::strerror(error) +
                           " (--sandbox=chroot or --sandbox=none run without it)");
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream file(path);
  file << text;
  file.flush();
  if (!file) fail("cannot write " + path);
}

// A user namespace in which fsoutd's own user (and group) keep their ids: an unprivileged
// fsoutd may then make the mount namespace too. The capabilities it has inside are dropped
// again at the end of enter_sandbox().
void enter_user_namespace() {
  const uid_t uid = geteuid();
  const gid_t gid = getegid();
  if (unshare(CLONE_NEWUSER) != 0) fail("cannot make a user namespace");
  write_text("/proc/self/setgroups", "deny");
  write_text("/proc/self/uid_map", std::to_string(uid) + " " + std::to_string(uid) + " 1\n");
  write_text("/proc/self/gid_map", std::to_string(gid) + " " + std::to_string(gid) + " 1\n");
}

// fsoutd's way into /proc/PID/fd from inside: an fd of that directory, made the working
// directory, so that confine::fd_path() names "N" relative to it. Nothing else in fsoutd
// resolves a relative path.
void keep_fd_directory(int fd_directory) {
  if (fchdir(fd_directory) != 0) fail("cannot enter /proc/PID/fd");
  close(fd_directory);
  confine::use_relative_fd_paths();
}

int open_fd_directory(const std::string& proc) {
  const std::string path = proc + "/" + std::to_string(getpid()) + "/fd";
  int fd = open(path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) fail("cannot open " + path);
  return fd;
}

Sandboxed enter_namespaces(const std::string& export_path) {
  std::string note = "sandbox: namespace";
  const bool root = geteuid() == 0;
  if (!root) {
    enter_user_namespace();
    note += " (in a user namespace: fsoutd is not root)";
  }
  if (unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC) != 0) fail("cannot make namespaces");
  // Nothing done here may reach the host's mounts, and host mounts made inside the export
  // later still appear (a slave, not private).
  if (mount(nullptr, "/", nullptr, MS_SLAVE | MS_REC, nullptr) != 0)
    fail("cannot make the mounts private");
  // A proc of our own that shows processes only: no /proc/sys, no sysrq-trigger, no
  // kcore. Mounting proc needs a PID namespace owned by our user namespace, which an
  // unprivileged fsoutd does not have: then the host's /proc/PID/fd is kept instead.
  int fd_directory = -1;
  if (root && mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                    "subset=pid,hidepid=invisible") == 0) {
    fd_directory = open_fd_directory("/proc");
  } else {
    fd_directory = open_fd_directory("/proc");
    note += ", the host's /proc kept open";
  }
  // pivot_root wants the new root to be a mount point: the export bound onto itself (with
  // what is mounted inside it).
  if (mount(export_path.c_str(), export_path.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0)
    fail("cannot bind " + export_path);
  if (chdir(export_path.c_str()) != 0) fail("cannot enter " + export_path);
  // pivot_root(".", "."): the old root ends up on top of the new one; detaching it leaves
  // the export alone as the namespace's whole file tree.
  if (syscall(SYS_pivot_root, ".", ".") != 0) fail("pivot_root");
  if (umount2(".", MNT_DETACH) != 0) fail("cannot detach the host's file tree");
  if (chdir("/") != 0) fail("chdir /");
  keep_fd_directory(fd_directory);
  if (!root) {
    // The capabilities the user namespace gave are not needed any more.
    capng_clear(CAPNG_SELECT_BOTH);
    if (capng_apply(CAPNG_SELECT_BOTH) != 0) fail("cannot drop the namespace's capabilities", 0);
  }
  return {"/", note};
}

Sandboxed enter_chroot(const std::string& export_path) {
  if (geteuid() != 0) fail("chroot needs root", EPERM);
  int fd_directory = open_fd_directory("/proc");
  if (chroot(export_path.c_str()) != 0) fail("cannot chroot into " + export_path);
  if (chdir("/") != 0) fail("chdir /");
  keep_fd_directory(fd_directory);
  return {"/", "sandbox: chroot"};
}

// ---- seccomp

// Every system call fsoutd makes, and what makes it. Found by reading the code and by
// running the mount, permission, identity and coherence batteries with `strace -f` (and
// in the sanitizer build: the runtimes' own calls). A call missing here stops the daemon
// with the line below: add it here, with its reason.
constexpr const char* kAllowed[] = {
    // file operations (passthrough.cpp, confine.cpp)
    "openat", "openat2", "close", "close_range", "read", "pread64", "readv", "preadv", "preadv2",
    "write", "pwrite64", "writev", "pwritev", "pwritev2", "lseek", "fstat", "newfstatat", "statx",
    "fstatfs", "statfs", "getdents64", "mkdirat", "mknodat", "symlinkat", "linkat", "unlinkat",
    "renameat", "renameat2", "readlinkat", "fchmod", "fchmodat", "fchmodat2", "fchown", "fchownat",
    "utimensat", "ftruncate", "fallocate", "fsync", "fdatasync", "sync_file_range",
    "copy_file_range", "fadvise64", "fcntl", "flock", "getxattr", "lgetxattr", "fgetxattr",
    "setxattr", "lsetxattr", "fsetxattr", "listxattr", "llistxattr", "flistxattr", "removexattr",
    "lremovexattr", "fremovexattr", "name_to_handle_at", "dup", "dup3", "faccessat", "faccessat2",
    // acting as the guest's user, per thread
    "setfsuid", "setfsgid", "setgroups", "getuid", "geteuid", "getgid", "getegid", "getgroups",
    // change notifications
    "fanotify_init", "fanotify_mark",
    // streams and wake-ups
    "accept4", "accept", "recvfrom", "recvmsg", "sendto", "sendmsg", "shutdown", "setsockopt",
    "getsockopt", "getsockname", "getpeername", "poll", "ppoll", "eventfd2", "pipe2",
    // threads, memory, time, signals (libc, libstdc++ and the sanitizer runtimes)
    "set_robust_list", "rseq", "futex", "exit", "exit_group", "gettid", "getpid", "tgkill",
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigtimedwait", "sigaltstack", "mmap",
    "munmap", "mremap", "mprotect", "madvise", "brk", "sched_yield", "sched_getaffinity",
    "getrandom", "clock_gettime", "clock_nanosleep", "nanosleep", "gettimeofday", "prlimit64",
    "getrlimit", "prctl", "arch_prctl", "uname", "membarrier", "restart_syscall"};

// Async-signal-safe: the one line a blocked call leaves, then the end of the daemon.
void on_blocked_call(int, siginfo_t* info, void*) {
  char line[160] = "fsoutd: the sandbox stopped system call number ";
  size_t at = std::strlen(line);
  char digits[16];
  int n = 0;
  for (unsigned value = unsigned(info->si_syscall); n == 0 || value; value /= 10)
    digits[n++] = char('0' + value % 10);
  while (n) line[at++] = digits[--n];
  const char tail[] =
      ", which fsoutd is not expected to make (see src/host/sandbox.cpp); stopping\n";
  std::memcpy(line + at, tail, sizeof tail - 1);
  at += sizeof tail - 1;
  if (write(2, line, at) < 0) {
  }
  _exit(128 + SIGSYS);
}

}  // namespace

std::optional<SandboxMode> parse_sandbox_mode(std::string_view text) {
  if (text == "namespace") return SandboxMode::kNamespace;
  if (text == "chroot") return SandboxMode::kChroot;
  if (text == "none") return SandboxMode::kNone;
  return std::nullopt;
}

Sandboxed enter_sandbox(SandboxMode mode, const std::string& export_path) {
  switch (mode) {
    case SandboxMode::kNamespace:
      return enter_namespaces(export_path);
    case SandboxMode::kChroot:
      return enter_chroot(export_path);
    case SandboxMode::kNone:
      break;
  }
  return {export_path, "sandbox: none"};
}

void restrict_system_calls() {
  struct sigaction action {};
  action.sa_sigaction = on_blocked_call;
  action.sa_flags = SA_SIGINFO;
  sigemptyset(&action.sa_mask);
  if (sigaction(SIGSYS, &action, nullptr) != 0) fail("sigaction SIGSYS");
  scmp_filter_ctx filter = seccomp_init(SCMP_ACT_TRAP);
  if (!filter) fail("seccomp_init", ENOMEM);
  for (const char* name : kAllowed) {
    int number = seccomp_syscall_resolve_name(name);
    if (number == __NR_SCMP_ERROR) continue;  // not a call of this architecture
    if (int rc = seccomp_rule_add(filter, SCMP_ACT_ALLOW, number, 0); rc != 0) {
      seccomp_release(filter);
      fail(std::string("seccomp_rule_add ") + name, -rc);
    }
  }
  // Threads only: clone with CLONE_THREAD (no new processes, no new namespaces). clone3
  // keeps its flags in memory a filter cannot read: it answers ENOSYS, and libc falls back.
  // Serial ports are set raw (termios); no other ioctl.
  int rc = seccomp_rule_add(filter, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                            SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
  if (rc == 0) rc = seccomp_rule_add(filter, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
  for (unsigned long request : {TCGETS, TCSETS, TCSETSW, TCSETSF, TCFLSH, FIONREAD})
    if (rc == 0)
      rc = seccomp_rule_add(filter, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
                            SCMP_A1(SCMP_CMP_EQ, request));
  if (rc != 0) {
    seccomp_release(filter);
    fail("seccomp_rule_add", -rc);
  }
  rc = seccomp_load(filter);
  seccomp_release(filter);
  if (rc != 0) fail("seccomp_load", -rc);
}

}  // namespace fsout::host
