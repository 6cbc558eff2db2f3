// What fsout-mount needs from the guest's operating system that differs between Linux and
// FreeBSD, in one place per OS (os_linux.cpp, os_freebsd.cpp; CMake picks one). The FUSE
// handlers themselves are the same on both: the kernel's native constants go through the
// canonical tables (protocol/canonical.h), which follow the OS they are built on.
#pragma once

#include <string>

struct fuse_conn_info;

namespace fsout::guest::os {

// After the mount: let the kernel read ahead `bytes` (best effort; Linux caps FUSE readahead
// at the backing device's window, set through sysfs).
void set_readahead(const std::string& mountpoint, unsigned bytes);

// Bytes of replies that may be on the way at once over a serial port (0: no limit); see
// client::Options::reply_budget.
unsigned serial_reply_budget();

// Whether answering OPENDIR with ENOSYS makes this kernel open directories itself (when it
// offers FUSE_CAP_NO_OPENDIR_SUPPORT). FreeBSD 13.2's fusefs offers it yet fails the
// listing with ENOSYS.
bool kernel_opens_directories_itself();

// The largest READ/WRITE this kernel's FUSE sends, to cap max_read/max_write/readahead
// (Linux: what the host allows; FreeBSD fusefs: bounded by its own buffer size, MAXPHYS).
unsigned max_io(unsigned offered);

}  // namespace fsout::guest::os
