// What fsout-mount needs from the guest's operating system that differs between Linux and
// FreeBSD, in one place per OS (os_linux.cpp, os_freebsd.cpp; CMake picks one). The FUSE
// handlers themselves are the same on both: the kernel's native constants go through the
// canonical tables (protocol/canonical.h), which follow the OS they are built on.
#pragma once

#include <string>

struct fuse_session;

namespace fsout::guest::os {

// How many FUSE file systems are mounted on `mountpoint` (an absolute path without symlinks),
// read without asking any of them (a FUSE mount answers nothing before its loop runs).
int fuse_mounts_on(const std::string& mountpoint);

// Whether fuse_session_mount() returns before the mount is in place. libfuse on FreeBSD
// starts mount_fusefs in the background and returns; until it has mounted, a path under the
// mount point names the bare directory below it (a mkdir there is lost under the mount).
bool mount_completes_later();

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

// Tells the kernel that the host changed a node: its attributes and its cached data are
// stale.
void invalidate_inode(fuse_session* session, unsigned long node);

// Whether this kernel takes a reply whose size differs from the size it has cached, while
// that is still valid, for a server bug and warns "cache incoherent" (FreeBSD's fusefs; 13.2
// also compares the reply to its own truncation with the old size, freebsd-src pull request
// #1110). See ToldSizes.
bool kernel_distrusts_size_changes();

// Whether this kernel takes FUSE_NOTIFY_DELETE (a name removed, with its node). FreeBSD
// 13.2's fusefs takes only the two INVAL notifications and answers ENOSYS, which libfuse
// logs on every try; there the name is invalidated instead.
bool kernel_takes_notify_delete();

// The largest READ/WRITE this kernel's FUSE sends, to cap max_read/max_write/readahead
// (Linux: what the host allows; FreeBSD fusefs: bounded by its own buffer size, MAXPHYS).
unsigned max_io(unsigned offered);

}  // namespace fsout::guest::os
