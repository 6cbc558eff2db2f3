// Linux guests: readahead through the mount's backing device in sysfs.
#include <limits.h>
#include <stdlib.h>

#include <cstdio>
#include <cstring>

#include "guest/fuse_guest.h"
#include "guest/os.h"

namespace fsout::guest::os {

int fuse_mounts_on(const std::string& mountpoint) {
  FILE* mounts = std::fopen("/proc/self/mountinfo", "re");
  if (!mounts) return 0;
  int found = 0;
  char line[4096];
  while (std::fgets(line, sizeof(line), mounts)) {
    char point[4096];
    if (std::sscanf(line, "%*d %*d %*s %*s %4095s", point) != 1) continue;
    if (mountpoint == point && std::strstr(line, " - fuse")) ++found;
  }
  std::fclose(mounts);
  return found;
}

// mount(2) (or fusermount3, which it waits for) has mounted when fuse_session_mount() returns.
bool mount_completes_later() { return false; }

// The kernel caps FUSE readahead at its default window (128 KiB) whatever max_readahead says;
// the mount's backing device takes a larger one from sysfs. Found through mountinfo: stat()
// on the mount point would wait for the FUSE loop, which is not running yet. Needs root.
void set_readahead(const std::string& mountpoint, unsigned bytes) {
  char resolved[PATH_MAX];
  if (!realpath(mountpoint.c_str(), resolved)) return;
  FILE* mounts = std::fopen("/proc/self/mountinfo", "re");
  if (!mounts) return;
  std::string device;
  char line[4096];
  while (std::fgets(line, sizeof(line), mounts)) {
    char dev[64], point[4096];
    if (std::sscanf(line, "%*d %*d %63s %*s %4095s", dev, point) != 2) continue;
    if (std::strcmp(point, resolved) == 0 && std::strstr(line, " - fuse.fsout ")) device = dev;
  }
  std::fclose(mounts);
  if (device.empty()) return;
  FILE* knob = std::fopen(("/sys/class/bdi/" + device + "/read_ahead_kb").c_str(), "we");
  if (!knob) return;
  std::fprintf(knob, "%u\n", bytes / 1024);
  std::fclose(knob);
}

// A virtio-serial port is a character device with its own buffers and flow control.
unsigned serial_reply_budget() { return 0; }

unsigned max_io(unsigned offered) { return offered; }

bool kernel_opens_directories_itself() { return true; }

// Offset 0, length 0: the attributes and every cached page.
void invalidate_inode(fuse_session* session, unsigned long node) {
  fuse_lowlevel_notify_inval_inode(session, node, 0, 0);
}

bool kernel_takes_notify_delete() { return true; }

bool kernel_distrusts_size_changes() { return false; }

}  // namespace fsout::guest::os
