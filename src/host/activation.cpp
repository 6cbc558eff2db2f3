#include "host/activation.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <cstring>
#include <string>

namespace fsout::host {
namespace {

constexpr int kFirstFd = 3;  // SD_LISTEN_FDS_START

std::optional<long> number(const char* text) {
  if (!text) return std::nullopt;
  long value = 0;
  auto [end, ec] = std::from_chars(text, text + std::strlen(text), value);
  if (ec != std::errc() || *end != '\0' || value < 0) return std::nullopt;
  return value;
}

bool same_tcp(const sockaddr_storage& bound, const transport::Address& address) {
  addrinfo hints{}, *found = nullptr;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
  const std::string port = std::to_string(address.port);
  if (getaddrinfo(address.host.empty() ? nullptr : address.host.c_str(), port.c_str(), &hints,
                  &found) != 0)
    return false;
  bool same = false;
  for (addrinfo* a = found; a && !same; a = a->ai_next) {
    if (a->ai_family != bound.ss_family) continue;
    if (a->ai_family == AF_INET) {
      auto* x = reinterpret_cast<const sockaddr_in*>(&bound);
      auto* y = reinterpret_cast<const sockaddr_in*>(a->ai_addr);
      same = x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    } else if (a->ai_family == AF_INET6) {
      auto* x = reinterpret_cast<const sockaddr_in6*>(&bound);
      auto* y = reinterpret_cast<const sockaddr_in6*>(a->ai_addr);
      same = x->sin6_port == y->sin6_port &&
             std::memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(in6_addr)) == 0;
    }
  }
  freeaddrinfo(found);
  return same;
}

}  // namespace

std::vector<int> inherited_sockets() {
  std::vector<int> fds;
  const auto pid = number(std::getenv("LISTEN_PID"));
  const auto count = number(std::getenv("LISTEN_FDS"));
  unsetenv("LISTEN_PID");
  unsetenv("LISTEN_FDS");
  unsetenv("LISTEN_FDNAMES");
  if (!pid || !count || *pid != getpid()) return fds;
  for (int fd = kFirstFd; fd < kFirstFd + *count && fd < kFirstFd + 4096; ++fd) {
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) continue;  // not open after all
    fds.push_back(fd);
  }
  return fds;
}

bool socket_is_bound_to(int fd, const transport::Address& address) {
  int listening = 0;
  socklen_t length = sizeof(listening);
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &length) != 0 || !listening)
    return false;
  sockaddr_storage bound{};
  length = sizeof(bound);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &length) != 0) return false;
  switch (address.kind) {
    case transport::Address::Kind::kUnix: {
      if (bound.ss_family != AF_UNIX) return false;
      auto* un = reinterpret_cast<const sockaddr_un*>(&bound);
      return std::strncmp(un->sun_path, address.path.c_str(), sizeof(un->sun_path)) == 0;
    }
    case transport::Address::Kind::kTcp:
      return same_tcp(bound, address);
    case transport::Address::Kind::kVsock: {
      if (bound.ss_family != AF_VSOCK) return false;
      auto* vm = reinterpret_cast<const sockaddr_vm*>(&bound);
      return vm->svm_port == address.port &&
             (vm->svm_cid == address.cid || vm->svm_cid == VMADDR_CID_ANY);
    }
    case transport::Address::Kind::kSerial:
      return false;  // a device is opened, not listened on
  }
  return false;
}

std::optional<int> take_inherited(std::vector<int>& fds, const transport::Address& address) {
  for (auto it = fds.begin(); it != fds.end(); ++it) {
    if (!socket_is_bound_to(*it, address)) continue;
    const int fd = *it;
    fds.erase(it);
    return fd;
  }
  return std::nullopt;
}

}  // namespace fsout::host
