// SECURITY: what fsoutd gives up before it serves anyone. See privileges.cpp.
#pragma once

#include <string>

namespace fsout::host {

// As root: keeps only the capabilities fsoutd uses (permitted, effective and bounding
// sets; nothing inheritable or ambient) and sets no_new_privs. Without root: sets
// no_new_privs. Must run before the first thread starts: capabilities belong to threads,
// and a thread takes the set of the one that starts it. `bind_low_ports`: a TCP listener on
// a port below 1024 is still to be bound. Returns a line for the log; throws
// std::runtime_error when the kernel refuses.
std::string drop_privileges(bool bind_low_ports);

}  // namespace fsout::host
