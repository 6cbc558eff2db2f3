// Linux: AF_VSOCK, virtio-serial ports found by name in sysfs, termios raw mode.
#include <dirent.h>
#include <linux/vm_sockets.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "transport/address.h"
#include "transport/os.h"

namespace fsout::transport::os {
namespace {

[[noreturn]] void fail(const std::string& what) { throw TransportError(what); }

sockaddr_vm vsock_address(uint32_t cid, uint32_t port) {
  sockaddr_vm svm{};
  svm.svm_family = AF_VSOCK;
  svm.svm_cid = cid;
  svm.svm_port = port;
  return svm;
}

}  // namespace

bool has_vsock() { return true; }

int vsock_connect(uint32_t cid, uint32_t port, const std::string& text) {
  int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fail("cannot connect to " + text + ": vsock: " + std::strerror(errno));
  sockaddr_vm svm = vsock_address(cid, port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&svm), sizeof(svm)) != 0) {
    int error = errno;
    close(fd);
    fail("cannot connect to " + text + ": " + std::strerror(error));
  }
  return fd;
}

int vsock_listen(uint32_t cid, uint32_t port, const std::string& text) {
  int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fail("cannot listen on " + text + ": vsock: " + std::strerror(errno));
  sockaddr_vm svm = vsock_address(cid, port);
  if (bind(fd, reinterpret_cast<sockaddr*>(&svm), sizeof(svm)) != 0 || listen(fd, 64) != 0) {
    int error = errno;
    close(fd);
    fail("cannot listen on " + text + ": " + std::strerror(error));
  }
  return fd;
}

// /dev/virtio-ports/NAME is a symlink that only udev makes. Without udev (an initramfs, a
// minimal guest) find the port by its name in sysfs.
std::string find_serial_port(const std::string& path) {
  const std::string prefix = "/dev/virtio-ports/";
  std::string name = path.rfind(prefix, 0) == 0 ? path.substr(prefix.size()) : std::string();
  if (name.empty() || name.find('/') != std::string::npos) return path;
  DIR* dir = opendir("/sys/class/virtio-ports");
  if (!dir) return path;
  std::string found = path;
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    std::string port = entry->d_name;
    FILE* file = fopen(("/sys/class/virtio-ports/" + port + "/name").c_str(), "re");
    if (!file) continue;
    char text[256] = {};
    bool match = fgets(text, sizeof(text), file) != nullptr &&
                 std::string(text).substr(0, std::string(text).find('\n')) == name;
    fclose(file);
    if (match) {
      found = "/dev/" + port;
      break;
    }
  }
  closedir(dir);
  return found;
}

void make_raw(int fd) {
  termios tio;
  if (tcgetattr(fd, &tio) != 0) return;  // not a tty (a virtio-ports char device is none)
  // A tty would otherwise translate newlines and eat control bytes.
  cfmakeraw(&tio);
  tcsetattr(fd, TCSANOW, &tio);
}

}  // namespace fsout::transport::os
