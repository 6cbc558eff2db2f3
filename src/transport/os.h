// What the transports need from the operating system that differs between Linux and FreeBSD,
// in one place per OS (os_linux.cpp, os_freebsd.cpp; CMake picks one). Every function
// throws TransportError with a one-line message on failure.
#pragma once

#include <cstdint>
#include <string>

namespace fsout::transport::os {

// Whether vsock exists here (Linux: AF_VSOCK; FreeBSD 13 has none).
bool has_vsock();
int vsock_connect(uint32_t cid, uint32_t port, const std::string& text);
int vsock_listen(uint32_t cid, uint32_t port, const std::string& text);

// The device to open for serial:PATH when PATH itself does not exist: a virtio-serial port
// named in the Linux way (/dev/virtio-ports/NAME) found by its name (Linux: sysfs, for
// guests without udev; FreeBSD: /dev/vtcon/NAME). Returns PATH when nothing better is known.
std::string find_serial_port(const std::string& path);

// Makes an opened tty carry bytes unchanged (raw mode), with what this OS's tty layer
// needs for a stream of large frames. Not a tty: nothing to do.
void make_raw(int fd);

}  // namespace fsout::transport::os
