#include "transport/address.h"

#include <dirent.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>

#include "transport/os.h"

namespace fsout::transport {
namespace {

[[noreturn]] void fail(const std::string& what) { throw TransportError(what); }

std::string errno_text(int error) { return std::strerror(error); }

// vsock's well-known context ids (the same numbers wherever vsock exists).
constexpr uint32_t kVsockCidAny = 0xffffffff;
constexpr uint32_t kVsockCidHost = 2;

template <class T>
bool parse_number(std::string_view text, T& out) {
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

sockaddr_un unix_address(const Address& address) {
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  if (address.path.size() >= sizeof(sun.sun_path)) fail(address.text + ": socket path is too long");
  std::memcpy(sun.sun_path, address.path.c_str(), address.path.size() + 1);
  return sun;
}

void set_tcp_options(int fd) {
  int one = 1;
  // Requests are small and latency-bound: never wait to coalesce them.
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

addrinfo* resolve(const Address& address, bool passive) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  if (passive) hints.ai_flags = AI_PASSIVE;
  addrinfo* result = nullptr;
  std::string port = std::to_string(address.port);
  int rc = getaddrinfo(address.host.empty() ? nullptr : address.host.c_str(), port.c_str(), &hints,
                       &result);
  if (rc != 0) fail(address.text + ": cannot resolve host: " + gai_strerror(rc));
  return result;
}

}  // namespace

Address parse_address(std::string_view text) {
  Address address;
  address.text = std::string(text);
  auto colon = text.find(':');
  if (colon == std::string_view::npos)
    fail("bad address '" + address.text +
         "': expected unix:PATH, tcp:HOST:PORT, vsock:CID:PORT or serial:DEVICE");
  std::string_view scheme = text.substr(0, colon), rest = text.substr(colon + 1);
  if (scheme == "unix" || scheme == "serial") {
    if (rest.empty()) fail("bad address '" + address.text + "': missing path");
    address.kind = scheme == "unix" ? Address::Kind::kUnix : Address::Kind::kSerial;
    address.path = std::string(rest);
    return address;
  }
  if (scheme == "tcp" || scheme == "vsock") {
    auto last = rest.rfind(':');
    if (last == std::string_view::npos)
      fail("bad address '" + address.text + "': expected " + std::string(scheme) + ":" +
           (scheme == "tcp" ? "HOST" : "CID") + ":PORT");
    std::string_view where = rest.substr(0, last), port = rest.substr(last + 1);
    if (!parse_number(port, address.port) || address.port == 0)
      fail("bad address '" + address.text + "': bad port '" + std::string(port) + "'");
    if (scheme == "tcp") {
      address.kind = Address::Kind::kTcp;
      // [::1]:port form for IPv6 literals.
      if (where.size() >= 2 && where.front() == '[' && where.back() == ']')
        where = where.substr(1, where.size() - 2);
      if (where.empty()) fail("bad address '" + address.text + "': missing host");
      address.host = std::string(where);
    } else {
      address.kind = Address::Kind::kVsock;
      if (where == "any") {
        address.cid = kVsockCidAny;
      } else if (where == "host") {
        address.cid = kVsockCidHost;
      } else if (!parse_number(where, address.cid)) {
        fail("bad address '" + address.text + "': bad CID '" + std::string(where) + "'");
      }
    }
    return address;
  }
  fail("bad address '" + address.text + "': unknown transport '" + std::string(scheme) +
       "' (use unix, tcp, vsock or serial)");
}

int open_serial(const std::string& path) {
  std::string device = path;
  if (access(device.c_str(), F_OK) != 0) device = os::find_serial_port(path);
  int fd = open(device.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) fail("serial:" + path + ": " + errno_text(errno));
  struct stat st;
  if (fstat(fd, &st) == 0 && !S_ISCHR(st.st_mode) && !S_ISFIFO(st.st_mode)) {
    close(fd);
    fail("serial:" + path + ": not a character device");
  }
  os::make_raw(fd);
  return fd;
}

int connect_to(const Address& address) {
  switch (address.kind) {
    case Address::Kind::kSerial:
      return open_serial(address.path);
    case Address::Kind::kUnix: {
      sockaddr_un sun = unix_address(address);
      int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd < 0) fail(address.text + ": socket: " + errno_text(errno));
      if (connect(fd, reinterpret_cast<sockaddr*>(&sun), sizeof(sun)) != 0) {
        int error = errno;
        close(fd);
        fail("cannot connect to " + address.text + ": " + errno_text(error));
      }
      return fd;
    }
    case Address::Kind::kTcp: {
      addrinfo* list = resolve(address, false);
      int error = 0;
      for (addrinfo* ai = list; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
          error = errno;
          continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
          freeaddrinfo(list);
          set_tcp_options(fd);
          return fd;
        }
        error = errno;
        close(fd);
      }
      freeaddrinfo(list);
      fail("cannot connect to " + address.text + ": " + errno_text(error));
    }
    case Address::Kind::kVsock:
      return os::vsock_connect(address.cid, address.port, address.text);
  }
  fail("unreachable");
}

int listen_on(const Address& address) {
  switch (address.kind) {
    case Address::Kind::kSerial:
      fail(address.text + ": serial devices are opened, not listened on");
    case Address::Kind::kUnix: {
      sockaddr_un sun = unix_address(address);
      int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd < 0) fail(address.text + ": socket: " + errno_text(errno));
      struct stat st;
      // Replace a socket left behind by a previous daemon, never anything else.
      if (lstat(address.path.c_str(), &st) == 0 && !S_ISSOCK(st.st_mode)) {
        close(fd);
        fail("cannot listen on " + address.text + ": the path exists and is not a socket");
      }
      if (lstat(address.path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        bool live = connect(probe, reinterpret_cast<sockaddr*>(&sun), sizeof(sun)) == 0;
        close(probe);
        if (live) {
          close(fd);
          fail("cannot listen on " + address.text + ": another server is listening there");
        }
        unlink(address.path.c_str());
      }
      // Bind under a temporary name and rename once listening, so that the
      // socket file appears only when connections can be accepted.
      Address temporary = address;
      temporary.path = address.path + ".tmp" + std::to_string(getpid());
      sockaddr_un bound = unix_address(temporary);
      unlink(temporary.path.c_str());
      if (bind(fd, reinterpret_cast<sockaddr*>(&bound), sizeof(bound)) != 0 ||
          listen(fd, 64) != 0 || rename(temporary.path.c_str(), address.path.c_str()) != 0) {
        int error = errno;
        close(fd);
        unlink(temporary.path.c_str());
        fail("cannot listen on " + address.text + ": " + errno_text(error));
      }
      return fd;
    }
    case Address::Kind::kTcp: {
      addrinfo* list = resolve(address, true);
      int error = 0;
      for (addrinfo* ai = list; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
          error = errno;
          continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 64) == 0) {
          freeaddrinfo(list);
          return fd;
        }
        error = errno;
        close(fd);
      }
      freeaddrinfo(list);
      fail("cannot listen on " + address.text + ": " + errno_text(error));
    }
    case Address::Kind::kVsock:
      return os::vsock_listen(address.cid, address.port, address.text);
  }
  fail("unreachable");
}

}  // namespace fsout::transport
