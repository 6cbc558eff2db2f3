// FreeBSD guests (fusefs). Readahead is fusefs's own business (vfs.fusefs tunables and the
// file system's block size); its I/O size is bounded by the kernel's MAXPHYS.
#include <sys/param.h>

#include "guest/fuse_guest.h"
#include "guest/os.h"

namespace fsout::guest::os {

void set_readahead(const std::string&, unsigned) {}

// The port is a tty whose input queue holds 23040 bytes and drops the rest
// (transport/os_freebsd.cpp): 16 KiB of replies, and room left for NOTIFYs that come
// unasked.
bool kernel_opens_directories_itself() { return false; }

bool negative_entries_are_safe() { return false; }

bool directory_listings_cacheable() { return false; }

// fusefs drops the attribute cache only for offset -1 ("attributes only"); data at offset 0.
// Both, attributes first, so that the new size is not taken for an incoherent server.
void invalidate_inode(fuse_session* session, unsigned long node) {
  fuse_lowlevel_notify_inval_inode(session, node, -1, 0);
  fuse_lowlevel_notify_inval_inode(session, node, 0, 0);
}

unsigned serial_reply_budget() { return 16 * 1024; }

unsigned max_io(unsigned offered) {
  // fusefs splits larger requests itself; asking for more only makes libfuse's buffers grow.
  const unsigned limit = MAXPHYS;
  return offered < limit ? offered : limit;
}

}  // namespace fsout::guest::os
