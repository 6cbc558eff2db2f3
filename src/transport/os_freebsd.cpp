// FreeBSD: no vsock (13.x has no AF_VSOCK); virtio-serial ports are ttys (/dev/ttyV0.N, named
// links in /dev/vtcon/), put into raw mode.
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "transport/address.h"
#include "transport/os.h"

namespace fsout::transport::os {

bool has_vsock() { return false; }

int vsock_connect(uint32_t, uint32_t, const std::string& text) {
  throw TransportError("cannot connect to " + text +
                       ": FreeBSD has no vsock; use serial:/dev/vtcon/NAME (virtio-serial)");
}

int vsock_listen(uint32_t, uint32_t, const std::string& text) {
  throw TransportError("cannot listen on " + text + ": FreeBSD has no vsock");
}

// The Linux name of a port (/dev/virtio-ports/NAME) is /dev/vtcon/NAME here.
std::string find_serial_port(const std::string& path) {
  const std::string prefix = "/dev/virtio-ports/";
  if (path.rfind(prefix, 0) != 0) return path;
  std::string named = "/dev/vtcon/" + path.substr(prefix.size());
  struct stat st;
  return stat(named.c_str(), &st) == 0 ? named : path;
}

void make_raw(int fd) {
  termios tio;
  if (tcgetattr(fd, &tio) != 0) return;
  // Bytes unchanged both ways: no line discipline, no echo, no flow control, 8 bits.
  cfmakeraw(&tio);
  tio.c_iflag &= ~static_cast<tcflag_t>(IXON | IXOFF | IXANY);
  tio.c_cflag |= CLOCAL | CREAD;
  tio.c_cflag &= ~static_cast<tcflag_t>(CRTSCTS);
  tio.c_cc[VMIN] = 1;
  tio.c_cc[VTIME] = 0;
  // FreeBSD sizes a tty's queues from its speed (two seconds of data: speed / 5 bytes), and
  // only when the speed changes; a pseudo-device such as the virtio console allows at most
  // 115200. Its queues were sized at open from a lower speed (replies over ~2 KB were cut:
  // the console driver drops what its input queue cannot take), so the speed is changed
  // twice to make it size them again: 23040 bytes. The guest never has more reply bytes on
  // the way than fit (client::Options::reply_budget, guest/os_freebsd.cpp).
  cfsetspeed(&tio, B9600);
  tcsetattr(fd, TCSANOW, &tio);
  cfsetspeed(&tio, B115200);
  tcsetattr(fd, TCSANOW, &tio);
}

}  // namespace fsout::transport::os
