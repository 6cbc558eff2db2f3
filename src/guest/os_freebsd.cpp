// FreeBSD guests (fusefs). Readahead is fusefs's own business (vfs.fusefs tunables and the
// file system's block size); its I/O size is bounded by the kernel's MAXPHYS.
#include <sys/mount.h>
#include <sys/param.h>
#include <sys/ucred.h>

#include <cstring>
#include <vector>

#include "guest/fuse_guest.h"
#include "guest/os.h"

namespace fsout::guest::os {

void set_readahead(const std::string&, unsigned) {}

// MNT_NOWAIT: the kernel's own list, without a statfs of each file system.
int fuse_mounts_on(const std::string& mountpoint) {
  int count = getfsstat(nullptr, 0, MNT_NOWAIT);
  if (count <= 0) return 0;
  std::vector<struct statfs> mounts(size_t(count) + 8);
  count = getfsstat(mounts.data(), long(mounts.size() * sizeof(struct statfs)), MNT_NOWAIT);
  int found = 0;
  for (int i = 0; i < count; ++i)
    if (mountpoint == mounts[i].f_mntonname &&
        std::strncmp(mounts[i].f_fstypename, "fusefs", 6) == 0)
      ++found;
  return found;
}

bool mount_completes_later() { return true; }

bool kernel_opens_directories_itself() { return false; }

// fusefs drops the attribute cache only for offset -1 ("attributes only"); data at offset 0.
// Both, attributes first, so that the new size is not taken for an incoherent server.
void invalidate_inode(fuse_session* session, unsigned long node) {
  fuse_lowlevel_notify_inval_inode(session, node, -1, 0);
  fuse_lowlevel_notify_inval_inode(session, node, 0, 0);
}

// The port is a tty whose input queue holds 23040 bytes and drops the rest
// (transport/os_freebsd.cpp): 16 KiB of replies, and room left for NOTIFYs that come
// unasked.
unsigned serial_reply_budget() { return 16 * 1024; }

unsigned max_io(unsigned offered) {
  // fusefs splits larger requests itself; asking for more only makes libfuse's buffers grow.
  const unsigned limit = MAXPHYS;
  return offered < limit ? offered : limit;
}

bool kernel_takes_notify_delete() { return false; }

bool kernel_distrusts_size_changes() { return true; }

}  // namespace fsout::guest::os
