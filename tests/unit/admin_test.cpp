// The admin channel (host/admin.h): requests and answers over a socketpair and over a
// listening unix socket, what it refuses (unknown requests, over-long lines, other users,
// network addresses), the socket's mode, admin_exchange's timeout, and a prompt stop.
#include "host/admin.h"

#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

namespace fsout::host {
namespace {

using Clock = std::chrono::steady_clock;

long elapsed_ms(Clock::time_point since) {
  return long(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - since).count());
}

// Answers with the request it was asked, and counts the calls.
struct Answerer {
  std::atomic<int> calls{0};
  std::function<std::string(const std::string&)> function() {
    return [this](const std::string& request) {
      ++calls;
      return nlohmann::json{{"request", request}}.dump();
    };
  }
};

bool send_text(int fd, const std::string& text) {
  return send(fd, text.data(), text.size(), MSG_NOSIGNAL) == ssize_t(text.size());
}

// Everything the other end sends until it closes or `timeout_ms` passes without data.
// `closed` says which of the two it was.
std::string receive_all(int fd, int timeout_ms, bool* closed) {
  std::string text;
  *closed = false;
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return text;
    char buffer[4096];
    const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) {
      *closed = true;
      return text;
    }
    text.append(buffer, size_t(n));
  }
}

std::string request_field(const std::string& answer) {
  const auto j = nlohmann::json::parse(answer, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("request")) return "";
  return j["request"].get<std::string>();
}

bool is_error(const std::string& answer) {
  const auto j = nlohmann::json::parse(answer, nullptr, false);
  return !j.is_discarded() && j.is_object() && j.contains("error") && j["error"].is_string();
}

class AdminPair : public ::testing::Test {
 protected:
  void SetUp() override {
    int fds[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    client_ = fds[1];
    channel_ = std::make_unique<AdminChannel>(fds[0], answerer_.function());
  }
  void TearDown() override {
    channel_.reset();
    close(client_);
  }
  Answerer answerer_;
  std::unique_ptr<AdminChannel> channel_;
  int client_ = -1;
};

TEST_F(AdminPair, AnswersSeveralRequestsInARow) {
  for (const char* request : {"stats", "sessions", "exports", "stats"}) {
    const std::string answer = admin_exchange(client_, request, 2000);
    EXPECT_EQ(request_field(answer), request) << answer;
  }
  EXPECT_EQ(answerer_.calls, 4);
}

TEST_F(AdminPair, TwoRequestsInOneWriteGetTwoLines) {
  ASSERT_TRUE(send_text(client_, "stats\nexports\n"));
  bool closed = false;
  const std::string text = receive_all(client_, 300, &closed);
  EXPECT_FALSE(closed);
  const auto newline = text.find('\n');
  ASSERT_NE(newline, std::string::npos) << text;
  EXPECT_EQ(request_field(text.substr(0, newline)), "stats") << text;
  EXPECT_EQ(text.back(), '\n');
  EXPECT_EQ(request_field(text.substr(newline + 1, text.size() - newline - 2)), "exports") << text;
}

TEST_F(AdminPair, UnknownRequestGetsAnErrorAndTheChannelGoesOn) {
  for (const char* request : {"bogus", "", "STATS", " stats", "stats extra"}) {
    const std::string answer = admin_exchange(client_, request, 2000);
    EXPECT_TRUE(is_error(answer)) << "'" << request << "': " << answer;
  }
  EXPECT_EQ(answerer_.calls, 0);
  EXPECT_EQ(request_field(admin_exchange(client_, "stats", 2000)), "stats");
}

TEST_F(AdminPair, OverLongLineWithoutNewlineStopsServing) {
  ASSERT_TRUE(send_text(client_, std::string(300, 'x')));
  bool closed = false;
  EXPECT_EQ(receive_all(client_, 300, &closed), "");
  // Nothing more is answered on this stream.
  EXPECT_EQ(admin_exchange(client_, "stats", 300), "");
  EXPECT_EQ(answerer_.calls, 0);
}

TEST_F(AdminPair, OverLongLineStopsServing) {
  // A line longer than 256 bytes, newline included, arriving in one piece.
  ASSERT_TRUE(send_text(client_, std::string(300, 'x') + "\n"));
  bool closed = false;
  const std::string text = receive_all(client_, 300, &closed);
  EXPECT_EQ(text, "") << "an over-long line was answered";
  EXPECT_EQ(admin_exchange(client_, "stats", 300), "") << "still serving after an over-long line";
  EXPECT_EQ(answerer_.calls, 0);
}

TEST(AdminExchange, EmptyOnTimeoutAndOnAClosedPeer) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  const auto start = Clock::now();
  EXPECT_EQ(admin_exchange(fds[0], "stats", 150), "");
  const long took = elapsed_ms(start);
  EXPECT_GE(took, 100);
  EXPECT_LT(took, 2000);
  // The request did go out, as one line.
  bool closed = false;
  EXPECT_EQ(receive_all(fds[1], 100, &closed), "stats\n");
  // An answer without its newline is no answer.
  ASSERT_TRUE(send_text(fds[1], "{\"partial\":"));
  EXPECT_EQ(admin_exchange(fds[0], "stats", 150), "");
  close(fds[1]);
  EXPECT_EQ(admin_exchange(fds[0], "stats", 1000), "");
  close(fds[0]);
}

TEST(AdminStop, DestroyingStopsPromptly) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  Answerer answerer;
  auto channel = std::make_unique<AdminChannel>(fds[0], answerer.function());
  ASSERT_EQ(request_field(admin_exchange(fds[1], "stats", 2000)), "stats");
  const auto start = Clock::now();
  channel.reset();
  EXPECT_LT(elapsed_ms(start), 500);
  // It closed its end.
  bool closed = false;
  receive_all(fds[1], 1000, &closed);
  EXPECT_TRUE(closed);
  close(fds[1]);
}

class AdminSocket : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/fsout-admin-test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    path_ = dir_ + "/a.sock";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  int connect_client() {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    std::strcpy(un.sun_path, path_.c_str());
    if (connect(fd, reinterpret_cast<sockaddr*>(&un), sizeof(un)) != 0) {
      const int saved = errno;
      close(fd);
      errno = saved;
      return -1;
    }
    return fd;
  }

  std::string dir_, path_;
};

TEST_F(AdminSocket, BindsOwnerOnlyAndAnswers) {
  const mode_t before = umask(022);
  const int fd = AdminChannel::bind("unix:" + path_);
  EXPECT_EQ(umask(before), 022) << "bind left the umask changed";
  struct stat st {};
  ASSERT_EQ(lstat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);

  Answerer answerer;
  AdminChannel channel(fd, answerer.function());
  for (const char* request : {"stats", "sessions", "exports"}) {
    const int client = connect_client();
    ASSERT_GE(client, 0) << std::strerror(errno);
    EXPECT_EQ(request_field(admin_exchange(client, request, 2000)), request);
    // One request per connection: then it closes.
    bool closed = false;
    EXPECT_EQ(receive_all(client, 2000, &closed), "");
    EXPECT_TRUE(closed);
    close(client);
  }
  const int client = connect_client();
  ASSERT_GE(client, 0);
  EXPECT_TRUE(is_error(admin_exchange(client, "what", 2000)));
  close(client);
  EXPECT_EQ(answerer.calls, 3);
}

TEST_F(AdminSocket, OverLongLineIsClosedUnanswered) {
  Answerer answerer;
  AdminChannel channel(AdminChannel::bind("unix:" + path_), answerer.function());
  for (const std::string& line : {std::string(300, 'x'), std::string(300, 'x') + "\n"}) {
    const int client = connect_client();
    ASSERT_GE(client, 0);
    ASSERT_TRUE(send_text(client, line));
    bool closed = false;
    EXPECT_EQ(receive_all(client, 2000, &closed), "") << line.size() << " bytes were answered";
    EXPECT_TRUE(closed);
    close(client);
  }
  EXPECT_EQ(answerer.calls, 0);
}

TEST_F(AdminSocket, ReplacesAStaleSocket) {
  close(AdminChannel::bind("unix:" + path_));  // the file stays, as after a crash
  struct stat st {};
  ASSERT_EQ(lstat(path_.c_str(), &st), 0);
  Answerer answerer;
  AdminChannel channel(AdminChannel::bind("unix:" + path_), answerer.function());
  const int client = connect_client();
  ASSERT_GE(client, 0);
  EXPECT_EQ(request_field(admin_exchange(client, "stats", 2000)), "stats");
  close(client);
}

TEST_F(AdminSocket, DoesNotReplaceARegularFile) {
  std::ofstream(path_) << "keep me\n";
  EXPECT_THROW(AdminChannel::bind("unix:" + path_), std::runtime_error);
  struct stat st {};
  ASSERT_EQ(lstat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  std::ifstream in(path_);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "keep me");
}

TEST_F(AdminSocket, RefusesOtherAddresses) {
  EXPECT_THROW(AdminChannel::bind("tcp:127.0.0.1:7000"), std::runtime_error);
  EXPECT_THROW(AdminChannel::bind("vsock:2:7000"), std::runtime_error);
  EXPECT_THROW(AdminChannel::bind(path_), std::runtime_error);  // no unix: prefix
  EXPECT_THROW(AdminChannel::bind("unix:"), std::runtime_error);
  EXPECT_THROW(AdminChannel::bind("unix:" + dir_ + "/" + std::string(120, 's')),
               std::runtime_error);
  EXPECT_THROW(AdminChannel::bind("unix:" + dir_ + "/no/such/dir/a.sock"), std::runtime_error);
  EXPECT_FALSE(std::filesystem::exists(path_));
}

TEST_F(AdminSocket, DestroyingStopsPromptly) {
  Answerer answerer;
  auto channel =
      std::make_unique<AdminChannel>(AdminChannel::bind("unix:" + path_), answerer.function());
  const int client = connect_client();
  ASSERT_GE(client, 0);
  EXPECT_EQ(request_field(admin_exchange(client, "stats", 2000)), "stats");
  close(client);
  const auto start = Clock::now();
  channel.reset();
  EXPECT_LT(elapsed_ms(start), 500);
  EXPECT_EQ(connect_client(), -1) << "still accepting after it was destroyed";
}

TEST_F(AdminSocket, DestroyingStopsPromptlyWithASilentClient) {
  Answerer answerer;
  auto channel =
      std::make_unique<AdminChannel>(AdminChannel::bind("unix:" + path_), answerer.function());
  const int client = connect_client();  // connects, then says nothing
  ASSERT_GE(client, 0);
  usleep(100 * 1000);  // accepted and waited on by now
  const auto start = Clock::now();
  channel.reset();
  EXPECT_LT(elapsed_ms(start), 1000) << "a silent client held up the stop";
  close(client);
}

// Runs `child` as uid/gid 65534 in a forked process; returns its exit status (or -1).
template <typename F>
int as_nobody(F child) {
  const pid_t pid = fork();
  if (pid == 0) {
    if (setgroups(0, nullptr) != 0 || setgid(65534) != 0 || setuid(65534) != 0) _exit(90);
    _exit(child());
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

TEST_F(AdminSocket, AnotherUserIsRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to run a client as another user";
  ASSERT_EQ(chmod(dir_.c_str(), 0755), 0);
  Answerer answerer;
  AdminChannel channel(AdminChannel::bind("unix:" + path_), answerer.function());

  // The socket's mode keeps them out: connect fails with EACCES.
  EXPECT_EQ(as_nobody([&] {
              const int fd = connect_client();
              if (fd >= 0) {
                const std::string answer = admin_exchange(fd, "stats", 2000);
                return is_error(answer) && request_field(answer).empty() ? 0 : 1;
              }
              return errno == EACCES ? 0 : 2;
            }),
            0);

  // Even with the mode opened up, SO_PEERCRED refuses them with the permission error.
  ASSERT_EQ(chmod(path_.c_str(), 0666), 0);
  EXPECT_EQ(as_nobody([&] {
              const int fd = connect_client();
              if (fd < 0) return 3;
              const std::string answer = admin_exchange(fd, "stats", 2000);
              if (!is_error(answer)) return 4;
              return answer.find("permission") != std::string::npos ? 0 : 5;
            }),
            0);
  EXPECT_EQ(answerer.calls, 0);

  // Root still gets its answer.
  const int client = connect_client();
  ASSERT_GE(client, 0);
  EXPECT_EQ(request_field(admin_exchange(client, "stats", 2000)), "stats");
  close(client);
  EXPECT_EQ(answerer.calls, 1);
}

}  // namespace
}  // namespace fsout::host
