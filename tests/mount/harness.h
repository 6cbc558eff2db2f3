// The mount tests' harness: running programs, background processes, a real
// fsoutd + fsout-mount pair on a temporary export, transcript comparison.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace fsout_test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

struct Output {
  int status = -1;
  std::string out, err;
};

// Runs a program to completion (no shell), with a deadline.
inline Output run(const std::vector<std::string>& argv, int timeout_seconds = 600) {
  char out_name[] = "/tmp/fsout-out-XXXXXX", err_name[] = "/tmp/fsout-err-XXXXXX";
  int out = mkstemp(out_name), err = mkstemp(err_name);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out, 1);
    dup2(err, 2);
    close_range(3, ~0u, 0);  // not the test's files (some are on the mount)
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  Output result;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      ADD_FAILURE() << argv[0] << " timed out";
      break;
    }
    std::this_thread::sleep_for(10ms);
  }
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  auto slurp = [](const char* name) {
    std::ifstream in(name);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  };
  result.out = slurp(out_name);
  result.err = slurp(err_name);
  close(out);
  close(err);
  unlink(out_name);
  unlink(err_name);
  return result;
}

// A background process, stopped (TERM, then KILL) when it goes out of scope.
class Background {
 public:
  Background(const std::vector<std::string>& argv, const std::string& log, bool append = false) {
    pid_ = fork();
    if (pid_ == 0) {
      int fd = open(log.c_str(), O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC), 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      // Nothing else of the test's: a daemon holding a file of the mount it serves would
      // wait on that mount when it exits.
      close_range(3, ~0u, 0);
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
  }
  ~Background() { stop(); }
  pid_t pid() const { return pid_; }
  void forget() { pid_ = -1; }  // it was waited for elsewhere
  bool running() { return pid_ > 0 && waitpid(pid_, nullptr, WNOHANG) == 0; }
  int stop() {
    if (pid_ <= 0) return -1;
    kill(pid_, SIGTERM);
    int status = 0;
    for (int i = 0; i < 500 && waitpid(pid_, &status, WNOHANG) == 0; ++i)
      std::this_thread::sleep_for(10ms);
    if (waitpid(pid_, &status, WNOHANG) == 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
    }
    pid_ = -1;
    return status;
  }

 private:
  pid_t pid_ = -1;
};

inline bool is_mounted(const std::string& path) {
  std::ifstream mounts("/proc/mounts");
  std::string device, where, rest;
  while (mounts >> device >> where && std::getline(mounts, rest))
    if (where == path) return true;
  return false;
}

template <class Predicate>
bool wait_until(Predicate ready, std::chrono::milliseconds limit = 10s) {
  for (auto start = std::chrono::steady_clock::now();
       std::chrono::steady_clock::now() - start < limit;) {
    if (ready()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return ready();
}

inline uint16_t free_tcp_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof(sin));
  socklen_t size = sizeof(sin);
  getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &size);
  close(fd);
  return ntohs(sin.sin_port);
}

inline std::string make_temp_dir() {
  char pattern[] = "/tmp/fsout-mount-XXXXXX";
  return mkdtemp(pattern);
}

// fsoutd serving <tmp>/export, fsout-mount mounting it on <tmp>/mnt.
class MountedExport {
 public:
  // `prepare` runs on the export before fsoutd starts: what it mounts there is in fsoutd's
  // sandbox (host mounts made later reach it only where the host's mounts propagate).
  MountedExport(const std::string& transport, const std::string& mount_options,
                const std::vector<std::string>& daemon_options = {},
                const std::function<void(const std::string&)>& prepare = {})
      : root_(make_temp_dir()) {
    chmod(root_.c_str(), 0755);  // tests switch to other users
    fs::create_directory(export_dir());
    fs::create_directory(mount_dir());
    if (prepare) prepare(export_dir());
    address_ = transport == "tcp" ? "tcp:127.0.0.1:" + std::to_string(free_tcp_port())
                                  : "unix:" + root_ + "/sock";
    // Each test's own state directory (restarts), removed with the rest.
    daemon_args_ = {"--listen", address_, "--state-dir", root_ + "/state"};
    daemon_args_.insert(daemon_args_.end(), daemon_options.begin(), daemon_options.end());
    daemon_args_.push_back(export_dir());
    start_daemon(FSOUTD_PATH);
    mount_ =
        std::make_unique<Background>(std::vector<std::string>{FSOUT_MOUNT_PATH, "-f", "-o",
                                                              mount_options, address_, mount_dir()},
                                     root_ + "/mount.log");
    mounted_ = wait_until([&] { return is_mounted(mount_dir()); });
    EXPECT_TRUE(mounted_) << "fsout-mount did not mount: " << log("mount.log");
  }
  ~MountedExport() {
    if (is_mounted(mount_dir())) umount2(mount_dir().c_str(), MNT_DETACH);
    mount_.reset();
    daemon_.reset();
    EXPECT_FALSE(is_mounted(mount_dir()));
    std::error_code ignored;
    fs::remove_all(root_, ignored);
  }
  bool mounted() const { return mounted_; }
  std::string export_dir() const { return root_ + "/export"; }
  std::string mount_dir() const { return root_ + "/mnt"; }
  const std::string& address() const { return address_; }
  pid_t daemon_pid() const { return daemon_->pid(); }
  // Ends fsoutd with `signal` (SIGKILL: a crash; SIGTERM: a graceful stop) and starts
  // `binary` (another build: an upgrade) with the same arguments.
  void restart_daemon(int signal, const std::string& binary = FSOUTD_PATH) {
    pid_t pid = daemon_->pid();
    kill(pid, signal);
    int status = 0;
    waitpid(pid, &status, 0);
    daemon_->forget();
    start_daemon(binary);
  }
  std::string log(const std::string& name) const {
    std::ifstream in(root_ + "/" + name);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

 private:
  void start_daemon(const std::string& binary) {
    std::vector<std::string> daemon{binary};
    daemon.insert(daemon.end(), daemon_args_.begin(), daemon_args_.end());
    daemon_ = std::make_unique<Background>(daemon, root_ + "/fsoutd.log", true);
    // Up when the socket is there (a probe with a client would be a session of its own).
    bool listening = wait_until([&] { return run({FSOUT_PATH, address_, "df"}, 10).status == 0; });
    EXPECT_TRUE(listening) << "fsoutd did not come up";
  }
  std::string root_, address_;
  std::vector<std::string> daemon_args_;
  bool mounted_ = false;
  std::unique_ptr<Background> daemon_, mount_;
};

inline std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> result;
  std::stringstream in(text);
  for (std::string line; std::getline(in, line);) result.push_back(line);
  return result;
}

// What a battery program prints on a plain directory (computed once per
// program and kept for the test binary's life).
inline const std::string& plain_directory_transcript(const std::string& program) {
  static std::map<std::string, std::string> transcripts;
  auto found = transcripts.find(program);
  if (found != transcripts.end()) return found->second;
  std::string dir = make_temp_dir();
  Output out = run({program, dir});
  fs::remove_all(dir);
  EXPECT_EQ(out.status, 0) << out.err;
  return transcripts[program] = out.out;
}

// Fails with the first differing lines when the transcripts differ.
void expect_same_transcript(const std::string& native, const std::string& mounted,
                            size_t at_least = 400);

}  // namespace fsout_test
