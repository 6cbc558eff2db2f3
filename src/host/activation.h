// systemd socket activation (sd_listen_fds(3)'s protocol, without libsystemd): a socket
// unit listens before fsoutd runs, so that a VM can start first; fsoutd is handed the
// listening sockets as fds 3.. with LISTEN_FDS and LISTEN_PID. Each is matched to a
// --listen address by what it is bound to, so the unit's ListenStream= lines need no
// names and no order.
#pragma once

#include <optional>
#include <vector>

#include "transport/address.h"

namespace fsout::host {

// The sockets passed to this process (none when LISTEN_PID names another one); clears the
// variables, so that children do not take them for theirs. The fds are made close-on-exec.
std::vector<int> inherited_sockets();

// Takes out of `fds` the socket bound to `address` (a unix path, a TCP host and port, a
// vsock port), or nullopt when none is.
std::optional<int> take_inherited(std::vector<int>& fds, const transport::Address& address);

// Whether `fd` is a listening socket bound to `address`.
bool socket_is_bound_to(int fd, const transport::Address& address);

}  // namespace fsout::host
