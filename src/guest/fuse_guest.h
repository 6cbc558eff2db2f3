// The guest module: the kernel's FUSE requests become fsout requests. Every
// handler sends its request and returns; the connection's reader thread
// answers the kernel when the host's reply arrives. Native (this OS's)
// constants are translated to canonical ones here and nowhere else.
#pragma once

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include <functional>
#include <mutex>
#include <vector>

#include "client/connection.h"

namespace fsout::guest {

enum class CacheMode { kNone, kAuto, kAlways };

struct MountOptions {
  CacheMode cache = CacheMode::kAuto;
  double entry_timeout = -1;  // seconds; -1: the cache mode's default
  double attr_timeout = -1;
  uint32_t readahead = 0;  // bytes the kernel may read ahead; 0: one request (max_io)
};

struct Guest {
  client::Connection* connection = nullptr;
  // Lock requests wait while RELEASEs are in flight: the kernel sends
  // RELEASE asynchronously after close(), and the open-file-description
  // locks of the closed file must be gone before a later lock request is
  // judged. Requires the single-threaded FUSE loop (requests are handled in
  // the order the kernel queued them).
  std::mutex release_mutex;
  unsigned releases_in_flight = 0;
  std::vector<std::function<void()>> after_releases;
  MountOptions options;
  double entry_timeout = 1.0;
  double attr_timeout = 1.0;
  bool keep_cache = false;
};

// The operation table handed to fuse_session_new(); userdata is a Guest*.
const fuse_lowlevel_ops& fuse_operations();

// Applies the cache mode's defaults to the timeouts.
void configure_cache(Guest& guest);

}  // namespace fsout::guest
