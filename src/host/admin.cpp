#include "host/admin.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "host/log.h"

namespace fsout::host {
namespace {

constexpr size_t kMaxRequest = 256;  // a command word; anything longer is refused
constexpr int kClientTimeoutMs = 5000;

bool write_all(int fd, const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = send(fd, text.data() + done, text.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += size_t(n);
  }
  return true;
}

// Reads up to a newline (not kept). False on EOF, error, timeout, a line longer than
// `limit`, or when `wake_fd` becomes readable (the channel is stopping).
bool read_line(int fd, int wake_fd, std::string& line, int timeout_ms, size_t limit) {
  line.clear();
  for (;;) {
    pollfd p[2] = {{fd, POLLIN, 0}, {wake_fd, POLLIN, 0}};
    int ready = poll(p, wake_fd >= 0 ? 2 : 1, timeout_ms);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0 || (wake_fd >= 0 && p[1].revents)) return false;
    char buffer[4096];
    ssize_t n = recv(fd, buffer, sizeof(buffer), MSG_PEEK);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    const char* newline = static_cast<const char*>(std::memchr(buffer, '\n', size_t(n)));
    const size_t take = newline ? size_t(newline - buffer) + 1 : size_t(n);
    n = recv(fd, buffer, take, 0);
    if (n <= 0) return false;
    line.append(buffer, size_t(n));
    if (line.size() > limit + (newline ? 1 : 0)) return false;
    if (newline) {
      line.pop_back();
      return true;
    }
  }
}

// Root, or the user fsoutd runs as: nobody else may read what the guests do.
bool peer_allowed(int fd) {
  ucred cred{};
  socklen_t length = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &length) != 0) return false;
  return cred.uid == 0 || cred.uid == geteuid();
}

sockaddr_un unix_address(const std::string& address) {
  if (address.rfind("unix:", 0) != 0)
    throw std::runtime_error(
        "the admin address must be unix:PATH (it is never a network "
        "socket), not '" +
        address + "'");
  const std::string path = address.substr(5);
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(un.sun_path))
    throw std::runtime_error("bad admin socket path '" + path + "'");
  std::memcpy(un.sun_path, path.c_str(), path.size() + 1);
  return un;
}

}  // namespace

int AdminChannel::bind(const std::string& address) {
  sockaddr_un un = unix_address(address);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(std::string("admin socket: ") + std::strerror(errno));
  // A socket left by an earlier fsoutd is replaced; another kind of file is not.
  struct stat st {};
  if (lstat(un.sun_path, &st) == 0 && S_ISSOCK(st.st_mode)) unlink(un.sun_path);
  // Owner only from the start: no moment at which others could connect.
  const mode_t old = umask(0177);
  const int bound = ::bind(fd, reinterpret_cast<sockaddr*>(&un), sizeof(un));
  const int saved = errno;
  umask(old);
  if (bound != 0 || listen(fd, 16) != 0) {
    close(fd);
    throw std::runtime_error("cannot listen on the admin socket " + address.substr(5) + ": " +
                             std::strerror(bound != 0 ? saved : errno));
  }
  return fd;
}

AdminChannel::AdminChannel(int fd, std::function<std::string(const std::string&)> answer)
    : fd_(fd), answer_(std::move(answer)) {
  int accepting = 0;
  socklen_t length = sizeof(accepting);
  listening_ = getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &length) == 0 && accepting;
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  thread_ = std::thread([this] { loop(); });
}

AdminChannel::~AdminChannel() {
  uint64_t one = 1;
  if (write(wake_fd_, &one, sizeof(one)) < 0) {
  }
  thread_.join();
  close(wake_fd_);
  close(fd_);
}

void AdminChannel::loop() {
  if (!listening_) return serve_connection(fd_, false);
  for (;;) {
    pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {fd_, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0 && errno != EINTR) return;
    if (fds[0].revents) return;
    if (fds[1].revents & (POLLERR | POLLHUP | POLLNVAL)) return;  // the listener is gone
    if (!(fds[1].revents & POLLIN)) continue;
    int fd = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    if (!peer_allowed(fd)) {
      log::warning("admin socket: refused a client that is neither root nor fsoutd's user");
      write_all(fd, "{\"error\":\"permission denied\"}\n");
    } else {
      serve_connection(fd, true);
    }
    close(fd);
  }
}

// One request per line until the other end closes. A client on the admin socket gets a
// few seconds to say what it wants (`timed`); the process that started us is waited for.
void AdminChannel::serve_connection(int fd, bool timed) {
  std::string request;
  for (;;) {
    if (!read_line(fd, wake_fd_, request, timed ? kClientTimeoutMs : -1, kMaxRequest)) return;
    std::string answer;
    if (request == "stats" || request == "sessions" || request == "exports")
      answer = answer_(request);
    else
      answer = "{\"error\":\"unknown request (stats, sessions or exports)\"}";
    if (!write_all(fd, answer + "\n")) return;
    if (timed) return;
  }
}

std::string admin_exchange(int fd, const std::string& request, int timeout_ms) {
  // Read even when the write failed: a refused client's answer may already be there, with
  // the other end closed.
  write_all(fd, request + "\n");
  std::string answer;
  if (!read_line(fd, -1, answer, timeout_ms, 64 << 20)) return "";
  return answer;
}

}  // namespace fsout::host
