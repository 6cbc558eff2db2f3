// Acceptance: every program answers bad arguments, a missing directory, an
// unreachable address and a protocol version mismatch with one clear line and
// a non-zero exit.
//
// The real fsoutd, fsout-mount and fsout are run as subprocesses (fork/exec,
// no shell); their paths come from FSOUTD_PATH, FSOUT_MOUNT_PATH, FSOUT_PATH.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#ifndef FSOUTD_PATH
#error "define FSOUTD_PATH as the path of the fsoutd binary (a string literal)"
#endif
#ifndef FSOUT_MOUNT_PATH
#error "define FSOUT_MOUNT_PATH as the path of the fsout-mount binary (a string literal)"
#endif
#ifndef FSOUT_PATH
#error "define FSOUT_PATH as the path of the fsout binary (a string literal)"
#endif

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

const std::string kFsoutd = FSOUTD_PATH;
const std::string kFsoutMount = FSOUT_MOUNT_PATH;
const std::string kFsout = FSOUT_PATH;

// ---------------------------------------------------------------------------
// Running programs.

struct Run {
  std::vector<std::string> argv;
  bool exited = false;  // ended by exit(), not by a signal
  int exit_code = -1;   // the exit code, or 128 + signal
  bool timed_out = false;
  std::string out, err;
};

// Escapes control characters so that a failure message shows every '\n'.
std::string visible(std::string_view text) {
  std::string shown;
  for (char c : text) {
    if (c == '\n')
      shown += "\\n";
    else if (c == '\t')
      shown += "\\t";
    else if (static_cast<unsigned char>(c) < 0x20)
      shown += "\\x" + std::to_string(static_cast<unsigned char>(c));
    else
      shown += c;
  }
  return shown;
}

std::string describe(const Run& run) {
  std::ostringstream text;
  text << "command:";
  for (const auto& arg : run.argv) text << ' ' << arg;
  text << "\n  exit: ";
  if (run.timed_out)
    text << "timed out (killed)";
  else if (run.exited)
    text << run.exit_code;
  else
    text << "killed by signal " << run.exit_code - 128;
  text << "\n  stdout: \"" << visible(run.out) << "\"\n  stderr: \"" << visible(run.err) << "\"";
  return text.str();
}

// Forks and execs argv[0] (an absolute path, no shell) with stdin from
// /dev/null and stdout/stderr on out_fd/err_fd. Returns the child's pid.
pid_t spawn(const std::vector<std::string>& argv, int out_fd, int err_fd) {
  std::vector<char*> args;
  for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null_fd < 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    // Only async-signal-safe calls from here on.
    dup2(null_fd, 0);
    dup2(out_fd, 1);
    dup2(err_fd, 2);
    execv(args[0], args.data());
    const char message[] = "programs_test: execv failed\n";
    ssize_t ignored = write(2, message, sizeof(message) - 1);
    (void)ignored;
    _exit(127);
  }
  close(null_fd);
  return pid;
}

void read_available(int& fd, std::string& into) {
  char buffer[4096];
  for (;;) {
    ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n > 0) {
      into.append(buffer, size_t(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
      close(fd);
      fd = -1;
    }
    return;
  }
}

void record_status(Run& result, int status) {
  result.exited = WIFEXITED(status);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Runs argv to its end and returns its exit code and output. A program still
// running after timeout_seconds is killed with SIGKILL and the test fails.
Run run(std::vector<std::string> argv, int timeout_seconds = 20) {
  Run result;
  result.argv = std::move(argv);
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe2: " << std::strerror(errno);
    return result;
  }
  if (pipe2(err, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe2: " << std::strerror(errno);
    close(out[0]);
    close(out[1]);
    return result;
  }
  pid_t pid = spawn(result.argv, out[1], err[1]);
  close(out[1]);
  close(err[1]);
  if (pid < 0) {
    ADD_FAILURE() << "fork: " << std::strerror(errno);
    close(out[0]);
    close(err[0]);
    return result;
  }
  fcntl(out[0], F_SETFL, O_NONBLOCK);
  fcntl(err[0], F_SETFL, O_NONBLOCK);
  int out_fd = out[0], err_fd = err[0];
  auto deadline = Clock::now() + std::chrono::seconds(timeout_seconds);
  for (;;) {
    int status = 0;
    pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) {
      record_status(result, status);
      break;
    }
    if (Clock::now() >= deadline) {
      kill(pid, SIGKILL);
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      record_status(result, status);
      result.timed_out = true;
      break;
    }
    pollfd fds[2];
    nfds_t count = 0;
    if (out_fd >= 0) fds[count++] = {out_fd, POLLIN, 0};
    if (err_fd >= 0) fds[count++] = {err_fd, POLLIN, 0};
    if (count == 0) {
      std::this_thread::sleep_for(10ms);
      continue;
    }
    poll(fds, count, 20);
    if (out_fd >= 0) read_available(out_fd, result.out);
    if (err_fd >= 0) read_available(err_fd, result.err);
  }
  // What the program wrote before it ended is in the pipes; a descendant
  // that still holds them (a daemon) is not waited for.
  if (out_fd >= 0) read_available(out_fd, result.out);
  if (err_fd >= 0) read_available(err_fd, result.err);
  if (out_fd >= 0) close(out_fd);
  if (err_fd >= 0) close(err_fd);
  if (result.timed_out)
    ADD_FAILURE() << "still running after " << timeout_seconds << " s\n" << describe(result);
  return result;
}

// ---------------------------------------------------------------------------
// What a clear error is.

// A non-zero exit, and on stderr exactly one line that starts with
// "PROGRAM: " and holds every keyword.
testing::AssertionResult IsOneLineError(const Run& run, std::string_view program,
                                        std::initializer_list<std::string_view> keywords) {
  std::vector<std::string> problems;
  if (run.timed_out) problems.push_back("it did not end");
  if (!run.exited)
    problems.push_back("it was killed by a signal instead of exiting");
  else if (run.exit_code == 0)
    problems.push_back("it exited 0");
  const std::string& err = run.err;
  if (err.empty()) {
    problems.push_back("stderr is empty");
  } else {
    if (err.back() != '\n') problems.push_back("stderr does not end in a newline");
    size_t lines = size_t(std::count(err.begin(), err.end(), '\n'));
    if (lines > 1 || (lines == 1 && err.back() != '\n'))
      problems.push_back("stderr has " + std::to_string(lines + (err.back() != '\n')) +
                         " lines, not one");
    std::string prefix = std::string(program) + ": ";
    if (err.compare(0, prefix.size(), prefix) != 0)
      problems.push_back("stderr does not start with \"" + prefix + "\"");
    for (auto keyword : keywords)
      if (err.find(keyword) == std::string::npos)
        problems.push_back("stderr does not say \"" + std::string(keyword) + "\"");
  }
  if (problems.empty()) return testing::AssertionSuccess();
  auto failure = testing::AssertionFailure() << "not one clear error line:";
  for (const auto& problem : problems) failure << "\n  - " << problem;
  return failure << "\n" << describe(run);
}

void ExpectHelp(const Run& run, std::string_view program) {
  EXPECT_TRUE(run.exited && run.exit_code == 0) << describe(run);
  EXPECT_EQ(run.out.rfind("usage: " + std::string(program) + " ", 0), 0u) << describe(run);
  EXPECT_EQ(run.err, "") << describe(run);
}

void ExpectVersion(const Run& run, std::string_view program) {
  EXPECT_TRUE(run.exited && run.exit_code == 0) << describe(run);
  EXPECT_EQ(run.out.rfind(std::string(program) + " ", 0), 0u) << describe(run);
  EXPECT_EQ(run.err, "") << describe(run);
}

// ---------------------------------------------------------------------------
// Clean-up guards.

bool is_mounted(const std::string& path) {
  std::ifstream mounts("/proc/mounts");
  std::string device, mountpoint, rest;
  while (mounts >> device >> mountpoint && std::getline(mounts, rest))
    if (mountpoint == path) return true;
  return false;
}

// A fresh directory under /tmp (short, so unix socket paths fit), removed
// with everything in it; anything left mounted below it is unmounted first.
class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/fsout-programs-XXXXXX";
    if (mkdtemp(pattern) == nullptr) {
      ADD_FAILURE() << "mkdtemp: " << std::strerror(errno);
      return;
    }
    path_ = pattern;
  }
  ~TempDir() {
    if (path_.empty()) return;
    unmount_below();
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string operator/(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  void unmount_below() {
    std::ifstream mounts("/proc/mounts");
    std::string device, mountpoint, rest;
    std::vector<std::string> below;
    while (mounts >> device >> mountpoint && std::getline(mounts, rest))
      if (mountpoint == path_ || mountpoint.rfind(path_ + "/", 0) == 0) below.push_back(mountpoint);
    for (auto it = below.rbegin(); it != below.rend(); ++it) {
      if (umount2(it->c_str(), MNT_DETACH) != 0) {
        Run ignored = run({"/usr/bin/fusermount3", "-u", "-z", *it}, 10);
        (void)ignored;
      }
    }
  }

  std::string path_;
};

bool make_file(const std::string& path, std::string_view content = "") {
  std::ofstream file(path);
  file << content;
  return bool(file);
}

bool can_connect(const std::string& socket_path) {
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof(sun.sun_path)) return false;
  std::memcpy(sun.sun_path, socket_path.c_str(), socket_path.size() + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&sun), sizeof(sun)) == 0;
  close(fd);
  return ok;
}

// A socket file nobody listens on: connecting to it is refused.
bool make_stale_socket(const std::string& socket_path) {
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof(sun.sun_path)) return false;
  std::memcpy(sun.sun_path, socket_path.c_str(), socket_path.size() + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  bool ok = bind(fd, reinterpret_cast<sockaddr*>(&sun), sizeof(sun)) == 0;
  close(fd);
  return ok;
}

// A real fsoutd serving DIR/export on unix:DIR/sock, its stderr in DIR/fsoutd.log.
// Stopped with SIGTERM (then SIGKILL) when it goes out of scope.
class Fsoutd {
 public:
  explicit Fsoutd(const TempDir& dir)
      : export_dir_(dir / "export"),
        socket_(dir / "sock"),
        log_(dir / "fsoutd.log"),
        state_dir_(dir / "state") {}
  ~Fsoutd() {
    if (pid_ > 0) stop();
  }
  Fsoutd(const Fsoutd&) = delete;
  Fsoutd& operator=(const Fsoutd&) = delete;

  // Use as ASSERT_NO_FATAL_FAILURE(server.start()).
  void start() {
    ASSERT_TRUE(mkdir(export_dir_.c_str(), 0755) == 0 || errno == EEXIST)
        << export_dir_ << ": " << std::strerror(errno);
    int log_fd = open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    ASSERT_GE(log_fd, 0) << log_ << ": " << std::strerror(errno);
    // Its state in the test's directory, not the host's /run (removed with it).
    pid_ = spawn({kFsoutd, "--listen", address(), "--state-dir", state_dir_, export_dir_}, log_fd,
                 log_fd);
    close(log_fd);
    ASSERT_GT(pid_, 0) << "fork: " << std::strerror(errno);
    // Wait for the socket file, then for it to accept (bind comes before listen).
    auto deadline = Clock::now() + 5s;
    for (;;) {
      struct stat st;
      if (lstat(socket_.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) && can_connect(socket_)) return;
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        FAIL() << "fsoutd ended before it listened (status " << status << "); its log:\n" << log();
      }
      if (Clock::now() >= deadline)
        FAIL() << "fsoutd did not listen within 5 s; its log:\n" << log();
      std::this_thread::sleep_for(20ms);
    }
  }

  // SIGTERM, then SIGKILL after 5 s. Returns the wait status, or -1.
  int stop() {
    if (pid_ <= 0) return -1;
    kill(pid_, SIGTERM);
    int status = 0;
    auto deadline = Clock::now() + 5s;
    for (;;) {
      pid_t done = waitpid(pid_, &status, WNOHANG);
      if (done == pid_ || (done < 0 && errno != EINTR)) break;
      if (Clock::now() >= deadline) {
        ADD_FAILURE() << "fsoutd ignored SIGTERM for 5 s; killing it";
        kill(pid_, SIGKILL);
        while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
        break;
      }
      std::this_thread::sleep_for(10ms);
    }
    pid_ = -1;
    return status;
  }

  std::string address() const { return "unix:" + socket_; }
  const std::string& socket_path() const { return socket_; }
  const std::string& export_dir() const { return export_dir_; }
  std::string log() const {
    std::ifstream file(log_);
    std::stringstream text;
    text << file.rdbuf();
    return text.str();
  }

 private:
  std::string export_dir_, socket_, log_, state_dir_;
  pid_t pid_ = -1;
};

// ---------------------------------------------------------------------------
// fsoutd

class FsoutdTest : public testing::Test {
 protected:
  TempDir dir_;
};

TEST_F(FsoutdTest, HelpAndVersion) {
  ExpectHelp(run({kFsoutd, "--help"}), "fsoutd");
  ExpectHelp(run({kFsoutd, "-h"}), "fsoutd");
  ExpectVersion(run({kFsoutd, "--version"}), "fsoutd");
}

TEST_F(FsoutdTest, NoArguments) {
  EXPECT_TRUE(IsOneLineError(run({kFsoutd}), "fsoutd", {"missing"}));
}

TEST_F(FsoutdTest, UnknownOption) {
  EXPECT_TRUE(IsOneLineError(run({kFsoutd, "--bogus"}), "fsoutd", {"unknown", "--bogus"}));
}

TEST_F(FsoutdTest, ListenWithoutAddress) {
  EXPECT_TRUE(IsOneLineError(run({kFsoutd, "--listen"}), "fsoutd", {"--listen"}));
}

TEST_F(FsoutdTest, ListenWithoutDir) {
  EXPECT_TRUE(IsOneLineError(run({kFsoutd, "--listen", "unix:" + (dir_ / "sock")}), "fsoutd",
                             {"missing DIR"}));
}

TEST_F(FsoutdTest, DirWithoutListen) {
  EXPECT_TRUE(IsOneLineError(run({kFsoutd, dir_.path()}), "fsoutd", {"missing --listen"}));
}

TEST_F(FsoutdTest, TooManyArguments) {
  EXPECT_TRUE(IsOneLineError(
      run({kFsoutd, "--listen", "unix:" + (dir_ / "sock"), dir_.path(), dir_.path()}), "fsoutd",
      {"too many"}));
}

TEST_F(FsoutdTest, MissingDir) {
  EXPECT_TRUE(
      IsOneLineError(run({kFsoutd, "--listen", "unix:" + (dir_ / "sock"), "/nonexistent/dir"}),
                     "fsoutd", {"/nonexistent/dir", "No such file"}));
}

TEST_F(FsoutdTest, DirIsAFile) {
  ASSERT_TRUE(make_file(dir_ / "file", "x"));
  EXPECT_TRUE(IsOneLineError(run({kFsoutd, "--listen", "unix:" + (dir_ / "sock"), dir_ / "file"}),
                             "fsoutd", {"not a directory"}));
}

TEST_F(FsoutdTest, BadAddress) {
  EXPECT_TRUE(IsOneLineError(run({kFsoutd, "--listen", "foo:bar", dir_.path()}), "fsoutd",
                             {"bad address", "foo:bar"}));
  EXPECT_TRUE(IsOneLineError(run({kFsoutd, "--listen", "nocolon", dir_.path()}), "fsoutd",
                             {"bad address"}));
}

TEST_F(FsoutdTest, BadPort) {
  EXPECT_TRUE(IsOneLineError(run({kFsoutd, "--listen", "tcp:127.0.0.1:notaport", dir_.path()}),
                             "fsoutd", {"bad port"}));
}

TEST_F(FsoutdTest, ZeroThreads) {
  EXPECT_TRUE(IsOneLineError(
      run({kFsoutd, "--threads", "0", "--listen", "unix:" + (dir_ / "sock"), dir_.path()}),
      "fsoutd", {"bad value", "--threads"}));
}

TEST_F(FsoutdTest, BadIdMaps) {
  std::string sock = "unix:" + (dir_ / "sock");
  EXPECT_TRUE(
      IsOneLineError(run({kFsoutd, "--uid-map", "1000:2000", "--listen", sock, dir_.path()}),
                     "fsoutd", {"bad value", "--uid-map", "GUEST:HOST:COUNT"}));
  EXPECT_TRUE(
      IsOneLineError(run({kFsoutd, "--gid-map", "1000:2000:0", "--listen", sock, dir_.path()}),
                     "fsoutd", {"bad value", "--gid-map", "empty range"}));
  EXPECT_TRUE(IsOneLineError(
      run({kFsoutd, "--uid-map", "0:0:10", "--uid-map", "5:100:10", "--listen", sock, dir_.path()}),
      "fsoutd", {"overlapping"}));
  EXPECT_TRUE(IsOneLineError(run({kFsoutd, "--squash", "x:1", "--listen", sock, dir_.path()}),
                             "fsoutd", {"bad value", "--squash", "bad id"}));
  EXPECT_TRUE(IsOneLineError(
      run({kFsoutd, "--squash", "1:1", "--uid-map", "0:0:1", "--listen", sock, dir_.path()}),
      "fsoutd", {"--squash cannot be combined"}));
}

TEST_F(FsoutdTest, CannotListenOnMissingSocketDirectory) {
  EXPECT_TRUE(IsOneLineError(run({kFsoutd, "--listen", "unix:/nonexistent/dir/sock", dir_.path()}),
                             "fsoutd", {"cannot listen", "No such file"}));
}

TEST_F(FsoutdTest, CannotListenOnForeignTcpAddress) {
  // 192.0.2.1 (TEST-NET-1) is no address of this machine: bind fails.
  EXPECT_TRUE(IsOneLineError(run({kFsoutd, "--listen", "tcp:192.0.2.1:7000", dir_.path()}),
                             "fsoutd", {"cannot listen"}));
}

TEST_F(FsoutdTest, AddressInUse) {
  Fsoutd first(dir_);
  ASSERT_NO_FATAL_FAILURE(first.start());
  EXPECT_TRUE(IsOneLineError(run({kFsoutd, "--listen", first.address(), first.export_dir()}),
                             "fsoutd", {"cannot listen"}));
  // The first one must still be serving.
  EXPECT_TRUE(can_connect(first.socket_path())) << first.log();
  int status = first.stop();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "fsoutd after SIGTERM: status " << status << "; its log:\n"
      << first.log();
}

// ---------------------------------------------------------------------------
// fsout

class FsoutTest : public testing::Test {
 protected:
  TempDir dir_;
};

TEST_F(FsoutTest, HelpAndVersion) {
  ExpectHelp(run({kFsout, "--help"}), "fsout");
  ExpectHelp(run({kFsout, "-h"}), "fsout");
  ExpectVersion(run({kFsout, "--version"}), "fsout");
}

TEST_F(FsoutTest, NoArguments) { EXPECT_TRUE(IsOneLineError(run({kFsout}), "fsout", {"missing"})); }

TEST_F(FsoutTest, AddressWithoutCommand) {
  EXPECT_TRUE(IsOneLineError(run({kFsout, "unix:" + (dir_ / "sock")}), "fsout", {"missing"}));
}

TEST_F(FsoutTest, UnknownOption) {
  EXPECT_TRUE(IsOneLineError(run({kFsout, "--bogus", "unix:" + (dir_ / "sock"), "ls"}), "fsout",
                             {"unknown option", "--bogus"}));
}

TEST_F(FsoutTest, UnknownCommand) {
  EXPECT_TRUE(IsOneLineError(run({kFsout, "unix:" + (dir_ / "sock"), "frobnicate"}), "fsout",
                             {"unknown command", "frobnicate"}));
}

TEST_F(FsoutTest, WrongNumberOfArguments) {
  const std::string address = "unix:" + (dir_ / "sock");
  EXPECT_TRUE(IsOneLineError(run({kFsout, address, "cat"}), "fsout", {"'cat' takes 1 argument"}));
  EXPECT_TRUE(IsOneLineError(run({kFsout, address, "mv", "a"}), "fsout", {"'mv' takes 2"}));
  EXPECT_TRUE(IsOneLineError(run({kFsout, address, "ls", "a", "b"}), "fsout", {"'ls' takes"}));
  EXPECT_TRUE(IsOneLineError(run({kFsout, address, "df", "x"}), "fsout", {"'df' takes"}));
}

TEST_F(FsoutTest, BadAddress) {
  EXPECT_TRUE(IsOneLineError(run({kFsout, "foo:bar", "ls"}), "fsout", {"bad address"}));
  EXPECT_TRUE(IsOneLineError(run({kFsout, "tcp:127.0.0.1:notaport", "ls"}), "fsout", {"bad port"}));
}

TEST_F(FsoutTest, UnreachableUnixSocket) {
  EXPECT_TRUE(IsOneLineError(run({kFsout, "unix:" + (dir_ / "no-such-sock"), "ls"}), "fsout",
                             {"cannot connect", "No such file"}));
}

TEST_F(FsoutTest, StaleUnixSocket) {
  ASSERT_TRUE(make_stale_socket(dir_ / "stale")) << std::strerror(errno);
  EXPECT_TRUE(IsOneLineError(run({kFsout, "unix:" + (dir_ / "stale"), "ls"}), "fsout",
                             {"cannot connect", "Connection refused"}));
}

TEST_F(FsoutTest, UnreachableTcp) {
  EXPECT_TRUE(IsOneLineError(run({kFsout, "tcp:127.0.0.1:1", "ls"}), "fsout",
                             {"cannot connect", "Connection refused"}));
}

TEST_F(FsoutTest, UnreachableVsock) {
  EXPECT_TRUE(IsOneLineError(run({kFsout, "vsock:2:1234", "ls"}), "fsout", {"cannot connect"}));
}

TEST_F(FsoutTest, ProtocolVersionMismatch) {
  Fsoutd server(dir_);
  ASSERT_NO_FATAL_FAILURE(server.start());
  EXPECT_TRUE(IsOneLineError(run({kFsout, "--protocol-version", "99", server.address(), "ls"}),
                             "fsout", {"version mismatch"}))
      << "fsoutd log:\n"
      << server.log();
}

TEST_F(FsoutTest, MissingRemoteFile) {
  Fsoutd server(dir_);
  ASSERT_NO_FATAL_FAILURE(server.start());
  // The server works: a plain ls succeeds.
  auto ls = run({kFsout, server.address(), "ls"});
  EXPECT_TRUE(ls.exited && ls.exit_code == 0) << describe(ls) << "\nfsoutd log:\n" << server.log();
  EXPECT_TRUE(IsOneLineError(run({kFsout, server.address(), "cat", "nope"}), "fsout",
                             {"nope", "No such file"}))
      << "fsoutd log:\n"
      << server.log();
  EXPECT_TRUE(IsOneLineError(run({kFsout, server.address(), "stat", "nope"}), "fsout",
                             {"nope", "No such file"}));
}

TEST_F(FsoutTest, MissingLocalFile) {
  Fsoutd server(dir_);
  ASSERT_NO_FATAL_FAILURE(server.start());
  EXPECT_TRUE(IsOneLineError(run({kFsout, server.address(), "put", dir_ / "no-such-file", "x"}),
                             "fsout", {"No such file"}));
}

// ---------------------------------------------------------------------------
// fsout-mount

class FsoutMountTest : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    ASSERT_EQ(mkdir(mountpoint().c_str(), 0755), 0) << std::strerror(errno);
  }
  void TearDown() override { EXPECT_FALSE(is_mounted(mountpoint())) << mountpoint(); }
  std::string mountpoint() const { return dir_ / "mnt"; }

  TempDir dir_;
};

TEST_F(FsoutMountTest, HelpAndVersion) {
  ExpectHelp(run({kFsoutMount, "--help"}), "fsout-mount");
  ExpectHelp(run({kFsoutMount, "-h"}), "fsout-mount");
  ExpectVersion(run({kFsoutMount, "--version"}), "fsout-mount");
}

TEST_F(FsoutMountTest, NoArguments) {
  EXPECT_TRUE(IsOneLineError(run({kFsoutMount}), "fsout-mount", {"missing"}));
}

TEST_F(FsoutMountTest, MissingMountpoint) {
  EXPECT_TRUE(IsOneLineError(run({kFsoutMount, "unix:" + (dir_ / "sock")}), "fsout-mount",
                             {"missing MOUNTPOINT"}));
}

TEST_F(FsoutMountTest, MountpointDoesNotExist) {
  EXPECT_TRUE(IsOneLineError(run({kFsoutMount, "unix:" + (dir_ / "sock"), dir_ / "no-such-dir"}),
                             "fsout-mount", {"no-such-dir", "No such file"}));
}

TEST_F(FsoutMountTest, MountpointIsAFile) {
  ASSERT_TRUE(make_file(dir_ / "file", "x"));
  EXPECT_TRUE(IsOneLineError(run({kFsoutMount, "unix:" + (dir_ / "sock"), dir_ / "file"}),
                             "fsout-mount", {"not a directory"}));
}

TEST_F(FsoutMountTest, TooManyArguments) {
  ASSERT_EQ(mkdir((dir_ / "other").c_str(), 0755), 0);
  EXPECT_TRUE(
      IsOneLineError(run({kFsoutMount, "unix:" + (dir_ / "sock"), mountpoint(), dir_ / "other"}),
                     "fsout-mount", {"argument"}));
}

TEST_F(FsoutMountTest, BadCacheMode) {
  EXPECT_TRUE(IsOneLineError(
      run({kFsoutMount, "-o", "cache=bogus", "unix:" + (dir_ / "sock"), mountpoint()}),
      "fsout-mount", {"bad cache mode", "bogus"}));
}

TEST_F(FsoutMountTest, BadAddress) {
  EXPECT_TRUE(
      IsOneLineError(run({kFsoutMount, "foo:bar", mountpoint()}), "fsout-mount", {"bad address"}));
}

TEST_F(FsoutMountTest, UnreachableUnixSocket) {
  EXPECT_TRUE(IsOneLineError(run({kFsoutMount, "unix:" + (dir_ / "no-such-sock"), mountpoint()}),
                             "fsout-mount", {"cannot connect", "No such file"}));
}

TEST_F(FsoutMountTest, UnreachableTcp) {
  EXPECT_TRUE(IsOneLineError(run({kFsoutMount, "tcp:127.0.0.1:1", mountpoint()}), "fsout-mount",
                             {"cannot connect", "Connection refused"}));
}

TEST_F(FsoutMountTest, UnreachableVsock) {
  EXPECT_TRUE(IsOneLineError(run({kFsoutMount, "vsock:2:1234", mountpoint()}), "fsout-mount",
                             {"cannot connect"}));
}

TEST_F(FsoutMountTest, UnknownOption) {
  // Against a live server, so that the option itself is what must be refused.
  Fsoutd server(dir_);
  ASSERT_NO_FATAL_FAILURE(server.start());
  EXPECT_TRUE(IsOneLineError(run({kFsoutMount, "--bogus", server.address(), mountpoint()}),
                             "fsout-mount", {"--bogus"}));
  EXPECT_FALSE(is_mounted(mountpoint()));
}

TEST_F(FsoutMountTest, ProtocolVersionMismatch) {
  Fsoutd server(dir_);
  ASSERT_NO_FATAL_FAILURE(server.start());
  EXPECT_TRUE(IsOneLineError(
      run({kFsoutMount, "-o", "protocol_version=99", server.address(), mountpoint()}),
      "fsout-mount", {"version mismatch"}))
      << "fsoutd log:\n"
      << server.log();
  EXPECT_FALSE(is_mounted(mountpoint())) << "fsout-mount mounted despite the mismatch";
}

}  // namespace
