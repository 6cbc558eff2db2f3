// The guest module: the kernel's FUSE requests become fsout requests. Every
// handler sends its request and returns; the connection's reader thread
// answers the kernel when the host's reply arrives. Native (this OS's)
// constants are translated to canonical ones here and nowhere else.
#pragma once

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <span>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "client/connection.h"

namespace fsout::guest {

// none: nothing cached; auto: 1 s; always: 1 h, pages kept (trusts that
// nobody else changes the export); coherent: like always, but the host
// tells the guest at once what changed (NOTIFY), so it is safe.
enum class CacheMode { kNone, kAuto, kAlways, kCoherent };

struct MountOptions {
  CacheMode cache = CacheMode::kCoherent;  // auto when the host cannot notify
  double entry_timeout = -1;               // seconds; -1: the cache mode's default
  double attr_timeout = -1;
  uint32_t readahead = 0;  // bytes the kernel may read ahead; 0: one request (max_io)
};

// Nodes known to carry no security.capability attribute (coherent mode).
// The kernel asks for it before every write to a file and every chown, to
// know whether to drop it; the answer is nearly always "none", and asking
// the host each time cost a round trip per write. A node leaves the set when
// the guest sets or removes one of its attributes, when the host says it
// changed (NOTIFY), and when the kernel forgets it.
class NoCapabilities {
 public:
  bool known(uint64_t node);
  // Taken before asking the host; learned() trusts the answer only if
  // nothing changed() meanwhile (a NOTIFY may overtake a reply).
  uint64_t generation();
  void learned(uint64_t node, uint64_t generation);
  void changed(uint64_t node);
  void forgotten(uint64_t node);  // node ids are never reused in a session

 private:
  std::mutex mutex_;
  std::unordered_set<uint64_t> nodes_;
  uint64_t generation_ = 0;
};

// Directory attributes the host sent with its reply to one of this guest's
// own changes in the directory (kCapDirAttrs, coherent mode). The kernel
// forgets a directory's attributes after such a change and asks for them
// before its next permission check there, that is before nearly every
// create or unlink that follows: answered from here instead of the host.
// A notice is kept only if its request was the only one in flight about
// the directory and no NOTIFY came since it was sent; any other request
// that may change the directory (listing: atime; SETATTR; attributes), and
// every RMDIR or RENAME (a moved or removed directory changes), drops them.
class DirAttrs {
 public:
  // Around a request about `first` and `second` (0: none).
  void begin(uint64_t first, uint64_t second = 0);
  void end(uint64_t first, uint64_t second = 0);
  void offer(uint64_t dir, const protocol::Attr& attr);  // an AttrNotice
  bool find(uint64_t dir, protocol::Attr& attr);
  void changed(uint64_t node);  // the host's NOTIFY
  void drop_all();
  void forgotten(uint64_t node);

 private:
  struct Pending {
    unsigned in_flight = 0;
    uint64_t notify_generation = 0;
  };
  void begin_one(uint64_t dir);
  void end_one(uint64_t dir);
  std::mutex mutex_;
  std::unordered_map<uint64_t, protocol::Attr> attrs_;
  std::unordered_map<uint64_t, Pending> pending_;
  uint64_t notify_generation_ = 0;
};

// "Nothing happened since" (coherent mode): taken just before sending a
// request; it still holds while no other request has gone to the host
// since, none was in flight then, and no NOTIFY has come. What the host said
// in the reply to that request is then still what it has (up to the
// coherence window: a host change not yet notified).
struct QuietMark {
  uint64_t sent = 0;  // Connection::quiet_mark()
  uint64_t notifications = 0;
};

// The attributes the host sent last. The kernel asks for a node's
// attributes again right after some of its own requests: before a chown
// (to clear SUID/SGID) though the SETATTR before it returned them, after a
// LINK though the reply carried them. Answered from here while the reply's
// mark still holds. One slot is enough: any new request ends it.
class RecentAttrs {
 public:
  void keep(const QuietMark& mark, uint64_t node, const protocol::Attr& attr);
  // The attributes and the mark they were kept under.
  bool find(uint64_t node, protocol::Attr& attr, QuietMark& mark);
  void forgotten(uint64_t node);

 private:
  std::mutex mutex_;
  uint64_t node_ = 0;  // 0: empty
  protocol::Attr attr_{};
  QuietMark mark_;
};

// The size the kernel was last told for each regular file, where the kernel takes a reply
// whose size differs from the one it has cached (and not yet timed out) for a server bug
// (os::kernel_distrusts_size_changes). A host change can reach such a kernel in any reply
// that carries attributes (a SETATTR for the atime, a LOOKUP) before the host's NOTIFY does,
// and its own truncations look the same to it; a reply with a new size is therefore given no
// cache time: not compared, and the next stat asks the host.
class ToldSizes {
 public:
  // The attribute cache time to answer with for `node`, now reported with `size`.
  double timeout_for(uint64_t node, const protocol::Attr& attr, double usual);
  void wrote(uint64_t node, uint64_t end);  // the kernel extends its size on a write
  void forgotten(uint64_t node);

 private:
  std::mutex mutex_;
  std::unordered_map<uint64_t, uint64_t> sizes_;
};

// The first bytes of a file, from the OPEN_READ that opened it (kCapOpenRead,
// coherent mode): the kernel's READ right after the open is answered from
// them while the OPEN_READ's mark holds, so a small file costs one round
// trip instead of two. One slot, as RecentAttrs.
class OpenedData {
 public:
  void keep(const QuietMark& mark, uint64_t handle, std::span<const uint8_t> data, bool at_end);
  // The bytes [offset, offset + size) if the kept data covers them (up to
  // the end of the file when it reaches it), and the mark.
  bool find(uint64_t handle, uint64_t offset, size_t size, std::span<const uint8_t>& out,
            QuietMark& mark);
  void drop(uint64_t handle);  // its RELEASE

 private:
  std::mutex mutex_;
  uint64_t handle_ = 0;  // 0: empty
  std::vector<uint8_t> data_;
  bool at_end_ = false;
  QuietMark mark_;
};

// Small WRITEs answered before the host's reply (kCapOrderedWrites,
// coherent mode): the host performs them in order, each before anything
// sent after it, so what can come late is only an error. As on NFS, the
// error is kept for the open file and returned by its next WRITE, FSYNC or
// FLUSH (close()); FLUSH and FSYNC first wait for the file's writes in
// flight, so close() and fsync() return once the host has the data.
class WritesBehind {
 public:
  void sent(uint64_t handle);
  // The host's answer to one of them; the caller then runs what waited
  // (outside any lock) with the first error not yet reported.
  struct Waiting {
    std::vector<std::function<void(int)>> then;
    int error = 0;
  };
  Waiting done(uint64_t handle, int error);
  // Runs `then(error)`, now or after the handle's last write in flight,
  // with the first error not yet reported (0: none).
  void after_writes(uint64_t handle, std::function<void(int)> then);
  int take_error(uint64_t handle);  // for a WRITE: the one not yet reported
  void released(uint64_t handle);

 private:
  struct State {
    unsigned in_flight = 0;
    int error = 0;
    std::vector<std::function<void(int)>> waiting;
  };
  std::mutex mutex_;
  std::unordered_map<uint64_t, State> handles_;
};

struct Guest {
  client::Connection* connection = nullptr;
  // The most data one reply may carry: what the host allows, and within the connection's
  // reply budget where the stream has one (a FreeBSD virtio console, guest/os.h). Listing
  // and attribute requests ask for no more than this.
  uint32_t reply_cap(size_t wanted) const;
  unsigned max_io() const;
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
  bool coherent = false;              // host NOTIFY keeps the caches right
  bool zero_message_opendir = false;  // the kernel opens directories itself
  NoCapabilities no_capabilities;     // used in coherent mode
  DirAttrs dir_attrs;
  RecentAttrs recent_attrs;    // used in coherent mode
  OpenedData opened_data;      // coherent, and the host takes OPEN_READ
  WritesBehind writes_behind;  // coherent, and the host orders small WRITEs
  bool guard_sizes = false;    // os::kernel_distrusts_size_changes()
  ToldSizes told_sizes;        // used where guard_sizes
  // The attribute cache time for a reply that tells the kernel `attr` of `node`.
  double attr_timeout_for(uint64_t node, const protocol::Attr& attr) {
    return guard_sizes ? told_sizes.timeout_for(node, attr, attr_timeout) : attr_timeout;
  }
  bool use_writes_behind = false;
  // Drops the kernel's pages and attributes of a node (off the reader
  // thread); set when the mount runs.
  std::function<void(uint64_t)> invalidate_node;
  bool use_open_read = false;
  // Files whose pages the kernel has probably cached (a READ was answered
  // since their last NOTIFY): opened without OPEN_READ, whose data the
  // kernel would not ask for.
  std::mutex cached_mutex;
  std::unordered_set<uint64_t> pages_cached;
  std::atomic<uint64_t> notifications = 0;  // NOTIFY frames seen
  QuietMark quiet_mark() { return {connection->quiet_mark(), notifications.load()}; }
  bool still_quiet(const QuietMark& mark) {
    return mark.notifications == notifications.load() && connection->quiet_since(mark.sent);
  }
  bool use_dir_attrs = false;  // coherent, and the host sends them
  // Nodes this guest ever asked a POSIX record lock on. FLUSH (every
  // close) matters to the host only for those: closing any descriptor of a
  // file drops its owner's record locks there. Other FLUSHes are answered
  // here.
  std::mutex locked_mutex;
  std::unordered_set<uint64_t> locked_nodes;
};

// Turns the host's NOTIFY messages into the kernel's invalidations, on a
// thread of its own: an invalidation may wait for a page or an inode lock
// that a request in flight holds, and that request's reply comes through
// the connection's reader thread, which must never wait here.
class Invalidator {
 public:
  // `guest`'s own caches are told of changes too.
  Invalidator(fuse_session* session, Guest& guest);
  ~Invalidator();
  void push(uint16_t opcode, std::span<const uint8_t> payload);  // a NOTIFY frame
  void invalidate_node(uint64_t node);  // the guest's own: a late write error

 private:
  void enqueue(protocol::NotifyMessage note);
  void loop();
  fuse_session* session_;
  Guest& guest_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<protocol::NotifyMessage> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

// The operation table handed to fuse_session_new(); userdata is a Guest*.
const fuse_lowlevel_ops& fuse_operations();

// Applies the cache mode's defaults to the timeouts.
void configure_cache(Guest& guest);

}  // namespace fsout::guest
