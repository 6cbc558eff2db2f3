// Socket activation (host/activation.h): matching a listening socket to a --listen address
// (unix path, TCP host and port), taking it out of the inherited ones, and reading
// LISTEN_PID/LISTEN_FDS (in a forked child, which can own fds 3 and 4).
#include "host/activation.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "transport/address.h"

namespace fsout::host {
namespace {

using transport::parse_address;

// A unix socket bound to `path`, listening unless `listening` is false.
int unix_socket(const std::string& path, bool listening = true) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  std::strcpy(un.sun_path, path.c_str());
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&un), sizeof(un)) != 0 ||
      (listening && listen(fd, 4) != 0))
    return -1;
  return fd;
}

// A TCP socket bound to 127.0.0.1 on an ephemeral port; sets `port`.
int tcp_socket(uint16_t& port, bool listening = true) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  in.sin_port = 0;
  socklen_t length = sizeof(in);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&in), sizeof(in)) != 0 ||
      (listening && listen(fd, 4) != 0) ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&in), &length) != 0)
    return -1;
  port = ntohs(in.sin_port);
  return fd;
}

transport::Address tcp_address(uint16_t port) {
  return parse_address("tcp:127.0.0.1:" + std::to_string(port));
}

class Activation : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/fsout-activation-test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    for (int fd : fds_) close(fd);
    std::filesystem::remove_all(dir_);
  }
  int keep(int fd) {
    if (fd >= 0) fds_.push_back(fd);
    return fd;
  }
  std::string dir_;
  std::vector<int> fds_;
};

TEST_F(Activation, UnixListenerMatchesItsPathOnly) {
  const std::string path = dir_ + "/l.sock";
  const int fd = keep(unix_socket(path));
  ASSERT_GE(fd, 0);
  EXPECT_TRUE(socket_is_bound_to(fd, parse_address("unix:" + path)));
  EXPECT_FALSE(socket_is_bound_to(fd, parse_address("unix:" + dir_ + "/other.sock")));
  EXPECT_FALSE(socket_is_bound_to(fd, parse_address("unix:" + path + "x")));
  EXPECT_FALSE(socket_is_bound_to(fd, parse_address("unix:" + dir_ + "/l.soc")));
  EXPECT_FALSE(socket_is_bound_to(fd, tcp_address(7000)));
  EXPECT_FALSE(socket_is_bound_to(fd, parse_address("vsock:2:7000")));
}

TEST_F(Activation, TcpListenerMatchesItsHostAndPort) {
  uint16_t port = 0;
  const int fd = keep(tcp_socket(port));
  ASSERT_GE(fd, 0);
  ASSERT_NE(port, 0);
  EXPECT_TRUE(socket_is_bound_to(fd, tcp_address(port)));
  EXPECT_FALSE(socket_is_bound_to(fd, tcp_address(uint16_t(port == 65535 ? 1 : port + 1))));
  EXPECT_FALSE(socket_is_bound_to(fd, parse_address("tcp:127.0.0.2:" + std::to_string(port))));
  EXPECT_FALSE(socket_is_bound_to(fd, parse_address("unix:" + dir_ + "/l.sock")));
  EXPECT_FALSE(socket_is_bound_to(fd, parse_address("vsock:2:" + std::to_string(port))));
}

TEST_F(Activation, NonListeningSocketsNeverMatch) {
  const std::string path = dir_ + "/bound.sock";
  const int bound = keep(unix_socket(path, false));
  ASSERT_GE(bound, 0);
  EXPECT_FALSE(socket_is_bound_to(bound, parse_address("unix:" + path)));
  uint16_t port = 0;
  const int tcp = keep(tcp_socket(port, false));
  ASSERT_GE(tcp, 0);
  EXPECT_FALSE(socket_is_bound_to(tcp, tcp_address(port)));
  int pair[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
  keep(pair[0]);
  keep(pair[1]);
  EXPECT_FALSE(socket_is_bound_to(pair[0], parse_address("unix:" + path)));
  const int file = keep(open("/dev/null", O_RDONLY | O_CLOEXEC));
  ASSERT_GE(file, 0);
  EXPECT_FALSE(socket_is_bound_to(file, parse_address("unix:/dev/null")));
  EXPECT_FALSE(socket_is_bound_to(-1, parse_address("unix:" + path)));
}

TEST_F(Activation, TakeInheritedRemovesTheMatchedSocket) {
  const std::string path = dir_ + "/l.sock";
  const int unix_fd = keep(unix_socket(path));
  uint16_t port = 0;
  const int tcp_fd = keep(tcp_socket(port));
  ASSERT_GE(unix_fd, 0);
  ASSERT_GE(tcp_fd, 0);
  std::vector<int> fds = {tcp_fd, unix_fd};

  EXPECT_EQ(take_inherited(fds, parse_address("unix:" + dir_ + "/none.sock")), std::nullopt);
  EXPECT_EQ(fds, (std::vector<int>{tcp_fd, unix_fd}));

  EXPECT_EQ(take_inherited(fds, parse_address("unix:" + path)), unix_fd);
  EXPECT_EQ(fds, std::vector<int>{tcp_fd});
  // Taken once only.
  EXPECT_EQ(take_inherited(fds, parse_address("unix:" + path)), std::nullopt);
  EXPECT_EQ(fds, std::vector<int>{tcp_fd});

  EXPECT_EQ(take_inherited(fds, tcp_address(port)), tcp_fd);
  EXPECT_TRUE(fds.empty());
  EXPECT_EQ(take_inherited(fds, tcp_address(port)), std::nullopt);
}

// What the child found wrong (its exit status), for the parent's message.
enum ChildResult {
  kOk = 0,
  kSetup = 10,
  kCount,
  kFds,
  kNotCloseOnExec,
  kVariablesLeft,
  kTakeUnix,
  kTakeTcp,
  kLeftOver,
};

TEST_F(Activation, InheritedSocketsAtThreeAndFour) {
  const std::string path = dir_ + "/l.sock";
  const int unix_fd = keep(unix_socket(path));
  uint16_t port = 0;
  const int tcp_fd = keep(tcp_socket(port));
  ASSERT_GE(unix_fd, 0);
  ASSERT_GE(tcp_fd, 0);
  const auto unix_address = parse_address("unix:" + path);
  const auto tcp = tcp_address(port);

  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // Out of the way first, so that neither dup2 closes the other socket.
    const int high_tcp = fcntl(tcp_fd, F_DUPFD, 100), high_unix = fcntl(unix_fd, F_DUPFD, 100);
    if (high_tcp < 0 || high_unix < 0 || dup2(high_tcp, 3) != 3 || dup2(high_unix, 4) != 4)
      _exit(kSetup);
    setenv("LISTEN_PID", std::to_string(getpid()).c_str(), 1);
    setenv("LISTEN_FDS", "2", 1);
    setenv("LISTEN_FDNAMES", "tcp:unix", 1);
    std::vector<int> fds = inherited_sockets();
    if (fds.size() != 2) _exit(kCount);
    if (fds != std::vector<int>{3, 4}) _exit(kFds);
    for (int fd : fds)
      if (!(fcntl(fd, F_GETFD) & FD_CLOEXEC)) _exit(kNotCloseOnExec);
    if (getenv("LISTEN_PID") || getenv("LISTEN_FDS") || getenv("LISTEN_FDNAMES"))
      _exit(kVariablesLeft);
    if (take_inherited(fds, unix_address) != 4) _exit(kTakeUnix);
    if (take_inherited(fds, tcp) != 3) _exit(kTakeTcp);
    if (!fds.empty()) _exit(kLeftOver);
    _exit(kOk);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), kOk) << "the child's check that failed: " << WEXITSTATUS(status);
}

TEST(ActivationEnvironment, AnotherProcessesSocketsAreNotTaken) {
  for (const std::string& pid : {std::to_string(getpid() + 1), std::string("1")}) {
    setenv("LISTEN_PID", pid.c_str(), 1);
    setenv("LISTEN_FDS", "2", 1);
    setenv("LISTEN_FDNAMES", "a:b", 1);
    EXPECT_TRUE(inherited_sockets().empty()) << pid;
    // Cleared all the same, so that no child takes them for its own.
    EXPECT_EQ(getenv("LISTEN_PID"), nullptr);
    EXPECT_EQ(getenv("LISTEN_FDS"), nullptr);
    EXPECT_EQ(getenv("LISTEN_FDNAMES"), nullptr);
  }
}

TEST(ActivationEnvironment, BadOrMissingVariablesGiveNothing) {
  unsetenv("LISTEN_PID");
  unsetenv("LISTEN_FDS");
  EXPECT_TRUE(inherited_sockets().empty());
  const std::string self = std::to_string(getpid());
  for (const char* count : {"", "2x", "-1", "x"}) {
    setenv("LISTEN_PID", self.c_str(), 1);
    setenv("LISTEN_FDS", count, 1);
    EXPECT_TRUE(inherited_sockets().empty()) << "LISTEN_FDS=" << count;
    EXPECT_EQ(getenv("LISTEN_FDS"), nullptr);
  }
  setenv("LISTEN_PID", (self + "x").c_str(), 1);
  setenv("LISTEN_FDS", "1", 1);
  EXPECT_TRUE(inherited_sockets().empty());
  setenv("LISTEN_PID", self.c_str(), 1);
  setenv("LISTEN_FDS", "0", 1);
  EXPECT_TRUE(inherited_sockets().empty());
}

}  // namespace
}  // namespace fsout::host
