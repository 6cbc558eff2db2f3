// Address strings name byte streams: unix:PATH, tcp:HOST:PORT, vsock:CID:PORT,
// serial:DEVICE. Each transport is only its connect/listen; framing is the
// same over every one of them (stream.h).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace fsout::transport {

// Setup failures (bad address, refused connection, ...): the message is one
// line meant for the user.
struct TransportError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Address {
  enum class Kind { kUnix, kTcp, kVsock, kSerial };
  Kind kind = Kind::kUnix;
  std::string path;   // unix socket or serial device
  std::string host;   // tcp
  uint16_t port = 0;  // tcp, vsock
  uint32_t cid = 0;   // vsock
  std::string text;   // as the user wrote it, for messages
};

Address parse_address(std::string_view text);  // throws TransportError

// A connected stream (client side). Serial devices are opened and, when they
// are ttys, put into raw mode. Throws TransportError.
int connect_to(const Address& address);

// A listening socket (unix, tcp, vsock). For unix, a stale socket file left
// by a dead daemon is replaced. Throws TransportError.
int listen_on(const Address& address);

// Opens a serial device as a stream (raw mode for ttys). Throws TransportError.
int open_serial(const std::string& path);

}  // namespace fsout::transport
