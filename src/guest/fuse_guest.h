// The guest module: the kernel's FUSE requests become fsout requests. Every
// handler sends its request and returns; the connection's reader thread
// answers the kernel when the host's reply arrives. Native (this OS's)
// constants are translated to canonical ones here and nowhere else.
#pragma once

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include "client/connection.h"

namespace fsout::guest {

enum class CacheMode { kNone, kAuto, kAlways };

struct MountOptions {
  CacheMode cache = CacheMode::kAuto;
  double entry_timeout = -1;  // seconds; -1: the cache mode's default
  double attr_timeout = -1;
};

struct Guest {
  client::Connection* connection = nullptr;
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
