// Mount tests: a real fsoutd and a real fsout-mount (FUSE), differential
// against a plain directory on the same file system. The battery
// (battery.cpp) runs the same operation sequence on both and prints a
// transcript of results and errno names; the transcripts must be identical.
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
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

struct Output {
  int status = -1;
  std::string out, err;
};

// Runs a program to completion (no shell), with a deadline.
Output run(const std::vector<std::string>& argv, int timeout_seconds = 600) {
  char out_name[] = "/tmp/fsout-out-XXXXXX", err_name[] = "/tmp/fsout-err-XXXXXX";
  int out = mkstemp(out_name), err = mkstemp(err_name);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out, 1);
    dup2(err, 2);
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
  Background(const std::vector<std::string>& argv, const std::string& log) {
    pid_ = fork();
    if (pid_ == 0) {
      int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
  }
  ~Background() { stop(); }
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

bool is_mounted(const std::string& path) {
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

uint16_t free_tcp_port() {
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

std::string make_temp_dir() {
  char pattern[] = "/tmp/fsout-mount-XXXXXX";
  return mkdtemp(pattern);
}

// fsoutd serving <tmp>/export, fsout-mount mounting it on <tmp>/mnt.
class MountedExport {
 public:
  MountedExport(const std::string& transport, const std::string& mount_options)
      : root_(make_temp_dir()) {
    fs::create_directory(export_dir());
    fs::create_directory(mount_dir());
    address_ = transport == "tcp" ? "tcp:127.0.0.1:" + std::to_string(free_tcp_port())
                                  : "unix:" + root_ + "/sock";
    daemon_ = std::make_unique<Background>(
        std::vector<std::string>{FSOUTD_PATH, "--listen", address_, export_dir()},
        root_ + "/fsoutd.log");
    bool listening = wait_until([&] { return run({FSOUT_PATH, address_, "df"}, 10).status == 0; });
    EXPECT_TRUE(listening) << "fsoutd did not come up";
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
  std::string log(const std::string& name) const {
    std::ifstream in(root_ + "/" + name);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

 private:
  std::string root_, address_;
  bool mounted_ = false;
  std::unique_ptr<Background> daemon_, mount_;
};

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> result;
  std::stringstream in(text);
  for (std::string line; std::getline(in, line);) result.push_back(line);
  return result;
}

// The plain-directory transcript, computed once.
const std::string& native_transcript() {
  static std::string transcript = [] {
    std::string dir = make_temp_dir();
    Output out = run({BATTERY_PATH, dir});
    fs::remove_all(dir);
    EXPECT_EQ(out.status, 0) << out.err;
    return out.out;
  }();
  return transcript;
}

void expect_same_transcript(const std::string& native, const std::string& mounted) {
  auto a = lines(native), b = lines(mounted);
  EXPECT_GT(a.size(), 400u);
  size_t differences = 0;
  for (size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
    std::string left = i < a.size() ? a[i] : "<missing>", right = i < b.size() ? b[i] : "<missing>";
    if (left != right && ++differences <= 30)
      ADD_FAILURE() << "line " << i + 1 << "\n  plain directory: " << left
                    << "\n  fsout mount:     " << right;
  }
  EXPECT_EQ(differences, 0u);
}

struct Variant {
  std::string transport;
  std::string cache;
};

void PrintTo(const Variant& v, std::ostream* out) { *out << v.transport << ", cache=" << v.cache; }

class Differential : public ::testing::TestWithParam<Variant> {};

TEST_P(Differential, BatteryMatchesAPlainDirectory) {
  ASSERT_EQ(geteuid(), 0u) << "mount tests need root (FUSE allow_other and the non-root checks)";
  const std::string& native = native_transcript();
  MountedExport mounted(GetParam().transport,
                        "allow_other,default_permissions,cache=" + GetParam().cache);
  ASSERT_TRUE(mounted.mounted());
  Output out = run({BATTERY_PATH, mounted.mount_dir()});
  EXPECT_EQ(out.status, 0) << out.err;
  expect_same_transcript(native, out.out);
  EXPECT_TRUE(fs::is_empty(mounted.export_dir()));  // the battery cleaned up, through the mount
}

INSTANTIATE_TEST_SUITE_P(Mount, Differential,
                         ::testing::Values(Variant{"unix", "auto"}, Variant{"tcp", "auto"},
                                           Variant{"unix", "none"}, Variant{"unix", "always"},
                                           Variant{"tcp", "none"}),
                         [](const auto& info) {
                           return info.param.transport + "_" + info.param.cache;
                         });

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(Mount, DataCrossesBothWays) {
  MountedExport mounted("unix", "cache=none");
  ASSERT_TRUE(mounted.mounted());
  std::string data(5 << 20, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = char(i * 31 + (i >> 11));
  std::ofstream(mounted.mount_dir() + "/from-guest", std::ios::binary) << data;
  EXPECT_EQ(read_text(mounted.export_dir() + "/from-guest"), data);
  std::ofstream(mounted.export_dir() + "/from-host", std::ios::binary) << "written on the host";
  EXPECT_EQ(read_text(mounted.mount_dir() + "/from-host"), "written on the host");
  fs::create_directories(mounted.mount_dir() + "/a/b/c");
  EXPECT_TRUE(fs::is_directory(mounted.export_dir() + "/a/b/c"));
}

TEST(Mount, ReadOnlyExport) {
  std::string root = make_temp_dir();
  fs::create_directory(root + "/export");
  fs::create_directory(root + "/mnt");
  std::ofstream(root + "/export/file") << "kept";
  std::string address = "unix:" + root + "/sock";
  {
    Background daemon({FSOUTD_PATH, "--read-only", "--listen", address, root + "/export"},
                      root + "/fsoutd.log");
    ASSERT_TRUE(wait_until([&] { return run({FSOUT_PATH, address, "df"}, 10).status == 0; }));
    Background mount({FSOUT_MOUNT_PATH, "-f", address, root + "/mnt"}, root + "/mount.log");
    ASSERT_TRUE(wait_until([&] { return is_mounted(root + "/mnt"); }));
    EXPECT_EQ(read_text(root + "/mnt/file"), "kept");
    errno = 0;
    EXPECT_LT(open((root + "/mnt/new").c_str(), O_WRONLY | O_CREAT, 0644), 0);
    EXPECT_EQ(errno, EROFS);
    EXPECT_NE(unlink((root + "/mnt/file").c_str()), 0);
    umount2((root + "/mnt").c_str(), MNT_DETACH);
  }
  EXPECT_TRUE(fs::exists(root + "/export/file"));
  EXPECT_FALSE(fs::exists(root + "/export/new"));
  fs::remove_all(root);
}

// When fsoutd goes away, the mount ends instead of hanging its users.
TEST(Mount, HostExitEndsTheMount) {
  std::string root = make_temp_dir();
  fs::create_directory(root + "/export");
  fs::create_directory(root + "/mnt");
  std::string address = "unix:" + root + "/sock";
  auto daemon = std::make_unique<Background>(
      std::vector<std::string>{FSOUTD_PATH, "--listen", address, root + "/export"},
      root + "/fsoutd.log");
  ASSERT_TRUE(wait_until([&] { return run({FSOUT_PATH, address, "df"}, 10).status == 0; }));
  Background mount({FSOUT_MOUNT_PATH, "-f", address, root + "/mnt"}, root + "/mount.log");
  ASSERT_TRUE(wait_until([&] { return is_mounted(root + "/mnt"); }));
  daemon.reset();
  EXPECT_TRUE(wait_until([&] { return !mount.running(); }));
  if (is_mounted(root + "/mnt")) umount2((root + "/mnt").c_str(), MNT_DETACH);
  EXPECT_FALSE(is_mounted(root + "/mnt"));
  fs::remove_all(root);
}

TEST(Cli, CommandsWorkAgainstARunningHost) {
  MountedExport host("unix", "cache=none");
  const std::string& a = host.address();
  std::string local = host.export_dir() + "/../local.bin";
  std::string data(3 << 20, 'x');
  data[100] = 'y';
  std::ofstream(local, std::ios::binary) << data;
  EXPECT_EQ(run({FSOUT_PATH, a, "mkdir", "dir"}).status, 0);
  EXPECT_EQ(run({FSOUT_PATH, a, "put", local, "dir/file"}).status, 0);
  EXPECT_EQ(read_text(host.export_dir() + "/dir/file"), data);
  Output cat = run({FSOUT_PATH, a, "cat", "dir/file"});
  EXPECT_EQ(cat.status, 0);
  EXPECT_EQ(cat.out, data);
  Output ls = run({FSOUT_PATH, a, "ls", "dir"});
  EXPECT_EQ(ls.status, 0);
  EXPECT_NE(ls.out.find(" file\n"), std::string::npos) << ls.out;
  EXPECT_NE(ls.out.find(std::to_string(data.size())), std::string::npos) << ls.out;
  Output st = run({FSOUT_PATH, a, "stat", "dir/file"});
  EXPECT_NE(st.out.find("size: " + std::to_string(data.size())), std::string::npos) << st.out;
  EXPECT_EQ(run({FSOUT_PATH, a, "mv", "dir/file", "moved"}).status, 0);
  EXPECT_TRUE(fs::exists(host.export_dir() + "/moved"));
  EXPECT_EQ(run({FSOUT_PATH, a, "get", "moved", local + ".back"}).status, 0);
  EXPECT_EQ(read_text(local + ".back"), data);
  EXPECT_EQ(run({FSOUT_PATH, a, "rm", "moved"}).status, 0);
  EXPECT_EQ(run({FSOUT_PATH, a, "rm", "dir"}).status, 0);
  EXPECT_TRUE(fs::is_empty(host.export_dir()));
  Output df = run({FSOUT_PATH, a, "df"});
  EXPECT_EQ(df.status, 0);
  EXPECT_NE(df.out.find("available"), std::string::npos);
  // Through the mount, the same names are seen.
  std::ofstream(host.mount_dir() + "/via-mount") << "m";
  EXPECT_EQ(run({FSOUT_PATH, a, "cat", "via-mount"}).out, "m");
}

}  // namespace
