#include "guest/fuse_guest.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <string>
#include <vector>

#include "guest/os.h"
#include "protocol/canonical.h"
#include "protocol/codec.h"

namespace fsout::guest {
namespace {

using namespace protocol;
using Op = Opcode;
namespace canon = canonical;

Guest& guest_of(fuse_req_t req) { return *static_cast<Guest*>(fuse_req_userdata(req)); }
client::Connection& connection(fuse_req_t req) { return *guest_of(req).connection; }

NodeId node_of(fuse_ino_t ino) { return NodeId{ino}; }
HandleId handle_of(const fuse_file_info* fi) { return HandleId{fi ? fi->fh : 0}; }

// DT_UNKNOWN for a type this OS has no number for: readers stat the entry.
unsigned native_dirent_type(uint8_t wire) {
  return canon::dirent_type_from_wire(wire).value_or(DT_UNKNOWN);
}

struct stat to_stat(const Attr& a) {
  struct stat st {};
  st.st_ino = a.inode;
  // A type this OS cannot express leaves no type bits, which the kernel refuses as a bad
  // inode (EIO) rather than showing a wrong type.
  st.st_mode = canon::mode_from_wire(a.mode).value_or(a.mode & 07777);
  st.st_nlink = a.nlink;
  st.st_uid = a.uid;
  st.st_gid = a.gid;
  st.st_rdev = canon::device_from_wire(canon::Device{a.rdev.major, a.rdev.minor});
  st.st_size = off_t(a.size);
  st.st_blocks = blkcnt_t(a.blocks);
  st.st_blksize = blksize_t(a.block_size);
  st.st_atim = {time_t(a.atime.seconds), long(a.atime.nanoseconds)};
  st.st_mtim = {time_t(a.mtime.seconds), long(a.mtime.nanoseconds)};
  st.st_ctim = {time_t(a.ctime.seconds), long(a.ctime.nanoseconds)};
  return st;
}

fuse_entry_param to_entry(Guest& guest, const EntryReply& e) {
  fuse_entry_param param{};
  param.ino = e.node.value;
  param.generation = e.generation;
  // The kernel keys its inodes by the node id; programs see the host's
  // st_ino (stable across renames, the same for hard links).
  param.attr = to_stat(e.attr);
  param.attr_timeout = guest.attr_timeout_for(e.node.value, e.attr);
  param.entry_timeout = guest.entry_timeout;
  return param;
}

Caller caller_of(fuse_req_t req) {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  Caller caller{ctx->uid, ctx->gid, {}};
  // Supplementary groups matter to the host's checks only for non-root
  // callers (root passes them by capability); reading them costs a /proc
  // read in libfuse, so root's requests skip it.
  if (ctx->uid != 0) {
    gid_t groups[kMaxCallerGroups];
    int n = fuse_req_getgroups(req, int(kMaxCallerGroups), groups);
    if (n > int(kMaxCallerGroups)) n = int(kMaxCallerGroups);  // the first ones, as NFS does
    for (int i = 0; i < n; ++i) caller.groups.push_back(groups[i]);
  }
  return caller;
}

// Keeps a reply's attributes in RecentAttrs (coherent mode). Made before
// the request is sent: that is when the mark must be taken.
class Remember {
 public:
  explicit Remember(fuse_req_t req) {
    Guest& g = guest_of(req);
    if (!g.coherent) return;
    guest_ = &g;
    mark_ = g.quiet_mark();
  }
  void operator()(NodeId node, const Attr& attr) const {
    if (guest_ && guest_->still_quiet(mark_)) guest_->recent_attrs.keep(mark_, node.value, attr);
  }

 private:
  Guest* guest_ = nullptr;
  QuietMark mark_;
};

// Answers for each reply type.
auto reply_entry(fuse_req_t req) {
  return [req, remember = Remember(req)](int error, const EntryReply& e) {
    if (error) {
      fuse_reply_err(req, error);
      return;
    }
    remember(e.node, e.attr);
    fuse_entry_param param = to_entry(guest_of(req), e);
    if (fuse_reply_entry(req, &param) == -ENOENT) {
      // The kernel gave up on the request (interrupted): undo the lookup.
      connection(req).call_async<Op::kForget>(ForgetRequest{{ForgetItem{e.node, 1}}},
                                              [](int, const Empty&) {});
    }
  };
}
auto reply_empty(fuse_req_t req) {
  return [req](int error, const Empty&) { fuse_reply_err(req, error); };
}
auto reply_attr(fuse_req_t req, fuse_ino_t ino) {
  return [req, ino, remember = Remember(req)](int error, const AttrReply& r) {
    if (error) {
      fuse_reply_err(req, error);
      return;
    }
    remember(node_of(ino), r.attr);
    struct stat st = to_stat(r.attr);
    fuse_reply_attr(req, &st, guest_of(req).attr_timeout_for(ino, r.attr));
  };
}

// Sends a request about directories `first` and `second` (0: none), so
// that the directory attributes that come with its reply can be trusted or
// not (DirAttrs).
template <Op op, class Answer>
void send_about(fuse_req_t req, uint64_t first, uint64_t second,
                const typename Operation<op>::Request& request, Answer answer) {
  Guest& guest = guest_of(req);
  if (!guest.use_dir_attrs) {
    connection(req).call_async<op>(request, std::move(answer));
    return;
  }
  guest.dir_attrs.begin(first, second);
  connection(req).call_async<op>(
      request, [&guest, first, second, answer = std::move(answer)](
                   int error, const typename Operation<op>::Reply& reply) mutable {
        guest.dir_attrs.end(first, second);
        answer(error, reply);
      });
}

// ---- nodes

void op_init(void* userdata, fuse_conn_info* conn) {
  auto& guest = *static_cast<Guest*>(userdata);
  uint64_t caps = guest.connection->hello().capabilities;
  // Only what this kernel offers: FreeBSD's fusefs (protocol 7.23) has neither READDIRPLUS
  // nor parallel directory operations, and libfuse refuses a mount that wants more.
  auto want = [conn](uint64_t capability) {
    if (conn->capable & capability) conn->want |= capability;
  };
  want(FUSE_CAP_ASYNC_READ);
  want(FUSE_CAP_PARALLEL_DIROPS);
  // No atomic O_TRUNC: with it the kernel skips clearing SUID/SGID when a
  // non-owner opens with O_TRUNC. Without it, O_TRUNC on an existing file is
  // OPEN + SETATTR(size 0, new mode), as a local file system does it.
  conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
  conn->want &= ~FUSE_CAP_SPLICE_READ & ~FUSE_CAP_SPLICE_WRITE & ~FUSE_CAP_SPLICE_MOVE;
  // The guest kernel clears SUID/SGID on write, truncate and chown itself
  // (sending the new mode), judged with the writer's own credentials and
  // groups, which the host does not have for a WRITE.
  conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
  if (caps & kCapReaddirplus) want(FUSE_CAP_READDIRPLUS);
  if (caps & kCapPosixLocks) want(FUSE_CAP_POSIX_LOCKS);
  if (caps & kCapFlock) want(FUSE_CAP_FLOCK_LOCKS);
  // 1 MiB requests: fewer round trips for bulk data (max_pages follows max_write), as far as
  // this kernel goes (os::max_io).
  const unsigned max_io = guest.max_io();
  // Writes are not bound by the reply budget (their replies are small; the stream towards the
  // host blocks when full instead of dropping).
  conn->max_write = os::max_io(guest.connection->max_io());
  if (max_io < kMaxIoSize) conn->max_read = max_io;  // as fsout-mount's -o max_read says
  conn->max_readahead = guest.options.readahead ? os::max_io(guest.options.readahead) : max_io;
  conn->max_background = 64;
  conn->congestion_threshold = 48;
  conn->time_gran = 1;  // the host keeps nanoseconds
  // Coherent: no OPENDIR/RELEASEDIR round trips, cached listings and
  // symlink targets; the host's NOTIFY for a node drops them.
  if (guest.coherent && (conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT) &&
      os::kernel_opens_directories_itself())
    guest.zero_message_opendir = true;
  if (guest.coherent && (conn->capable & FUSE_CAP_CACHE_SYMLINKS))
    conn->want |= FUSE_CAP_CACHE_SYMLINKS;
}

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  if (!guest_of(req).coherent) {
    connection(req).call_async<Op::kLookup>(LookupRequest{node_of(parent), Name{name}},
                                            reply_entry(req));
    return;
  }
  // Coherent: a name that does not exist is remembered too (programs probe
  // for many: .gitignore, headers along include paths); the host's NOTIFY
  // for the directory entry forgets it when the name appears.
  auto answer = reply_entry(req);
  connection(req).call_async<Op::kLookup>(LookupRequest{node_of(parent), Name{name}},
                                          [req, answer](int error, const EntryReply& e) mutable {
                                            if (error != ENOENT) return answer(error, e);
                                            fuse_entry_param negative{};
                                            negative.ino = 0;
                                            negative.entry_timeout = guest_of(req).entry_timeout;
                                            fuse_reply_entry(req, &negative);
                                          });
}

void forgotten(Guest& guest, fuse_ino_t ino) {
  guest.no_capabilities.forgotten(ino);
  guest.dir_attrs.forgotten(ino);
  guest.recent_attrs.forgotten(ino);
  guest.told_sizes.forgotten(ino);
  {
    std::lock_guard lock(guest.cached_mutex);
    guest.pages_cached.erase(ino);
  }
  std::lock_guard lock(guest.locked_mutex);  // no open files, so no locks
  guest.locked_nodes.erase(ino);
}

void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t count) {
  forgotten(guest_of(req), ino);
  connection(req).call_async<Op::kForget>(ForgetRequest{{ForgetItem{node_of(ino), count}}},
                                          [](int, const Empty&) {});
  fuse_reply_none(req);
}

void op_forget_multi(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
  ForgetRequest request;
  for (size_t i = 0; i < count; ++i) {
    request.items.push_back({node_of(forgets[i].ino), forgets[i].nlookup});
    forgotten(guest_of(req), forgets[i].ino);
    if (request.items.size() == kMaxForgetBatch || i + 1 == count) {
      connection(req).call_async<Op::kForget>(request, [](int, const Empty&) {});
      request.items.clear();
    }
  }
  fuse_reply_none(req);
}

void op_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Guest& guest = guest_of(req);
  Attr known;
  QuietMark mark;
  if ((guest.use_dir_attrs && guest.dir_attrs.find(ino, known)) ||
      (guest.coherent && guest.recent_attrs.find(ino, known, mark) && guest.still_quiet(mark))) {
    struct stat st = to_stat(known);
    fuse_reply_attr(req, &st, guest.attr_timeout_for(ino, known));
    return;
  }
  connection(req).call_async<Op::kGetattr>(GetattrRequest{node_of(ino), handle_of(fi)},
                                           reply_attr(req, ino));
}

void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat* st, int to_set, fuse_file_info* fi) {
  SetattrRequest r;
  r.node = node_of(ino);
  r.handle = handle_of(fi);
  if (to_set & FUSE_SET_ATTR_MODE) {
    std::optional<uint32_t> mode = canon::mode_to_wire(st->st_mode);
    if (!mode) {
      fuse_reply_err(req, EINVAL);
      return;
    }
    r.valid |= kSetMode, r.mode = *mode;
  }
  if (to_set & FUSE_SET_ATTR_UID) r.valid |= kSetUid, r.uid = st->st_uid;
  if (to_set & FUSE_SET_ATTR_GID) r.valid |= kSetGid, r.gid = st->st_gid;
  if (to_set & FUSE_SET_ATTR_SIZE) r.valid |= kSetSize, r.size = uint64_t(st->st_size);
  if (to_set & FUSE_SET_ATTR_ATIME_NOW)
    r.valid |= kSetAtimeNow;
  else if (to_set & FUSE_SET_ATTR_ATIME)
    r.valid |= kSetAtime, r.atime = {st->st_atim.tv_sec, uint32_t(st->st_atim.tv_nsec)};
  if (to_set & FUSE_SET_ATTR_MTIME_NOW)
    r.valid |= kSetMtimeNow;
  else if (to_set & FUSE_SET_ATTR_MTIME)
    r.valid |= kSetMtime, r.mtime = {st->st_mtim.tv_sec, uint32_t(st->st_mtim.tv_nsec)};
  send_about<Op::kSetattr>(req, ino, 0, r, reply_attr(req, ino));
}

void op_readlink(fuse_req_t req, fuse_ino_t ino) {
  connection(req).call_async<Op::kReadlink>(NodeRequest{node_of(ino)},
                                            [req](int error, const ReadlinkReply& r) {
                                              if (error)
                                                fuse_reply_err(req, error);
                                              else
                                                fuse_reply_readlink(req, r.target.value.c_str());
                                            });
}

void op_mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
  std::optional<uint32_t> wire_mode = canon::mode_to_wire(mode);
  if (!wire_mode) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  auto device = canon::device_to_wire(rdev);
  send_about<Op::kMknod>(req, parent, 0,
                         MknodRequest{node_of(parent), Name{name}, *wire_mode,
                                      Device{device.major, device.minor}, caller_of(req)},
                         reply_entry(req));
}

void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  std::optional<uint32_t> wire_mode = canon::mode_to_wire(mode | S_IFDIR);
  if (!wire_mode) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  send_about<Op::kMkdir>(req, parent, 0,
                         MkdirRequest{node_of(parent), Name{name}, *wire_mode, caller_of(req)},
                         reply_entry(req));
}

void op_symlink(fuse_req_t req, const char* target, fuse_ino_t parent, const char* name) {
  send_about<Op::kSymlink>(
      req, parent, 0, SymlinkRequest{node_of(parent), Name{name}, PathText{target}, caller_of(req)},
      reply_entry(req));
}

void op_unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  send_about<Op::kUnlink>(req, parent, 0, RemoveRequest{node_of(parent), Name{name}},
                          reply_empty(req));
}

void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  if (guest_of(req).use_dir_attrs) guest_of(req).dir_attrs.drop_all();  // the removed one
  send_about<Op::kRmdir>(req, parent, 0, RemoveRequest{node_of(parent), Name{name}},
                         reply_empty(req));
}

void op_rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t new_parent,
               const char* new_name, unsigned flags) {
  std::optional<uint32_t> wire = canon::rename_flags_to_wire(int(flags));
  if (!wire) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  if (guest_of(req).use_dir_attrs) guest_of(req).dir_attrs.drop_all();  // a moved directory
  send_about<Op::kRename>(
      req, parent, new_parent == parent ? 0 : new_parent,
      RenameRequest{node_of(parent), Name{name}, node_of(new_parent), Name{new_name}, *wire},
      reply_empty(req));
}

void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t new_parent, const char* new_name) {
  send_about<Op::kLink>(
      req, new_parent, 0,
      LinkRequest{node_of(ino), node_of(new_parent), Name{new_name}, caller_of(req)},
      reply_entry(req));
}

// ---- files

void answer_open(fuse_req_t req, fuse_file_info info, HandleId handle) {
  info.fh = handle.value;
  info.keep_cache = guest_of(req).keep_cache;
  if (fuse_reply_open(req, &info) == -ENOENT)  // interrupted: close it again
    connection(req).call_async<Op::kRelease>(HandleRequest{handle}, [](int, const Empty&) {});
}

bool pages_cached(Guest& guest, fuse_ino_t ino) {
  std::lock_guard lock(guest.cached_mutex);
  return guest.pages_cached.count(ino) != 0;
}

// What OPEN_READ asks for: most source files are smaller.
constexpr uint32_t kOpenReadBytes = 64 * 1024;

void op_open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Guest& guest = guest_of(req);
  fuse_file_info info = *fi;
  std::optional<uint32_t> wire_flags = canon::open_flags_to_wire(fi->flags);
  if (!wire_flags) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  uint32_t flags = *wire_flags;
  // A file opened for reading whose pages the kernel does not hold: the
  // kernel's first READ follows at once; its data comes with the open.
  if (guest.use_open_read && (fi->flags & O_ACCMODE) == O_RDONLY &&
      !(fi->flags & (O_TRUNC | O_DIRECT)) && !pages_cached(guest, ino)) {
    QuietMark mark = guest.quiet_mark();
    connection(req).call_async<Op::kOpenRead>(
        OpenReadRequest{node_of(ino), flags, guest.reply_cap(kOpenReadBytes)},
        [req, info, mark](int error, const OpenReadReply& r) {
          if (error) {
            fuse_reply_err(req, error);
            return;
          }
          Guest& g = guest_of(req);
          if (g.still_quiet(mark)) g.opened_data.keep(mark, r.handle.value, r.data.data, r.at_end);
          answer_open(req, info, r.handle);
        });
    return;
  }
  connection(req).call_async<Op::kOpen>(OpenRequest{node_of(ino), flags},
                                        [req, info](int error, const OpenReply& r) {
                                          if (error)
                                            fuse_reply_err(req, error);
                                          else
                                            answer_open(req, info, r.handle);
                                        });
}

void op_create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
               fuse_file_info* fi) {
  fuse_file_info info = *fi;
  std::optional<uint32_t> wire_flags = canon::open_flags_to_wire(fi->flags);
  std::optional<uint32_t> wire_mode = canon::mode_to_wire(mode);
  if (!wire_flags || !wire_mode) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  send_about<Op::kCreate>(
      req, parent, 0,
      CreateRequest{node_of(parent), Name{name}, *wire_flags, *wire_mode, caller_of(req)},
      [req, info, remember = Remember(req),
       capabilities = guest_of(req).no_capabilities.generation()](int error,
                                                                  const CreateReply& r) mutable {
        if (error) {
          fuse_reply_err(req, error);
          return;
        }
        remember(r.entry.node, r.entry.attr);
        // A file just made has no security.capability, so the kernel's
        // probe before the first write need not go to the host (unless a
        // host program was quicker: CREATE without O_EXCL opens its file;
        // its NOTIFY bumps the generation).
        if (guest_of(req).coherent)
          guest_of(req).no_capabilities.learned(r.entry.node.value, capabilities);
        info.fh = r.handle.value;
        info.keep_cache = guest_of(req).keep_cache;
        fuse_entry_param param = to_entry(guest_of(req), r.entry);
        if (fuse_reply_create(req, &param, &info) == -ENOENT) {
          connection(req).call_async<Op::kRelease>(HandleRequest{r.handle},
                                                   [](int, const Empty&) {});
          connection(req).call_async<Op::kForget>(ForgetRequest{{ForgetItem{r.entry.node, 1}}},
                                                  [](int, const Empty&) {});
        }
      });
}

void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset, fuse_file_info* fi) {
  Guest& guest = guest_of(req);
  if (guest.use_open_read) {
    {
      std::lock_guard lock(guest.cached_mutex);
      guest.pages_cached.insert(ino);
    }
    std::span<const uint8_t> data;
    QuietMark mark;
    if (guest.opened_data.find(fi->fh, uint64_t(offset), size, data, mark) &&
        guest.still_quiet(mark)) {
      fuse_reply_buf(req, reinterpret_cast<const char*>(data.data()), data.size());
      return;
    }
  }
  connection(req).call_async<Op::kRead>(
      ReadRequest{handle_of(fi), uint64_t(offset), uint32_t(size)},
      [req](int error, const DataReply& r) {
        if (error)
          fuse_reply_err(req, error);
        else
          fuse_reply_buf(req, reinterpret_cast<const char*>(r.data.data.data()),
                         r.data.data.size());
      });
}

void op_write(fuse_req_t req, fuse_ino_t ino, const char* data, size_t size, off_t offset,
              fuse_file_info* fi) {
  Guest& guest = guest_of(req);
  // The data is written to the stream before call_async returns, so the
  // kernel's buffer is not needed afterwards.
  WriteRequest r{handle_of(fi), uint64_t(offset),
                 Tail{std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(data), size)}};
  if (guest.guard_sizes) guest.told_sizes.wrote(ino, uint64_t(offset) + size);
  if (guest.use_writes_behind) {
    if (int error = guest.writes_behind.take_error(fi->fh)) {
      fuse_reply_err(req, error);  // an earlier write of this file failed
      return;
    }
    // Not for writes that must be durable or direct when write() returns,
    // nor for the kernel's page writeback (mmap).
    bool behind =
        size <= kOrderedWriteData && !fi->writepage && !(fi->flags & (O_SYNC | O_DSYNC | O_DIRECT));
    if (behind) {
      uint64_t handle = fi->fh;
      guest.writes_behind.sent(handle);
      connection(req).call_async<Op::kWrite>(
          r, [&guest, handle, ino, size](int error, const WriteReply& w) {
            if (!error && w.written != size) error = EIO;
            // The kernel counted the data as written: forget its pages and size.
            if (error && guest.invalidate_node) guest.invalidate_node(ino);
            auto waiting = guest.writes_behind.done(handle, error);
            for (auto& then : waiting.then) then(waiting.error);
          });
      fuse_reply_write(req, size);
      return;
    }
  }
  connection(req).call_async<Op::kWrite>(r, [req](int error, const WriteReply& w) {
    if (error)
      fuse_reply_err(req, error);
    else
      fuse_reply_write(req, w.written);
  });
}

void op_flush(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Guest& guest = guest_of(req);
  FlushRequest request{handle_of(fi), fi->lock_owner};
  guest.writes_behind.after_writes(fi->fh, [req, ino, request, &guest](int error) {
    {
      std::lock_guard lock(guest.locked_mutex);
      if (!guest.locked_nodes.count(ino)) {
        fuse_reply_err(req, error);  // no record locks to drop on the host
        return;
      }
    }
    guest.connection->call_async<Op::kFlush>(request, [req, error](int flushed, const Empty&) {
      fuse_reply_err(req, error ? error : flushed);
    });
  });
}

void op_release(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  Guest& guest = guest_of(req);
  if (guest.use_open_read) guest.opened_data.drop(fi->fh);
  guest.writes_behind.released(fi->fh);
  {
    std::lock_guard lock(guest.release_mutex);
    ++guest.releases_in_flight;
  }
  connection(req).call_async<Op::kRelease>(HandleRequest{handle_of(fi)},
                                           [req, &guest](int error, const Empty&) {
                                             fuse_reply_err(req, error);
                                             std::vector<std::function<void()>> waiting;
                                             {
                                               std::lock_guard lock(guest.release_mutex);
                                               if (--guest.releases_in_flight == 0)
                                                 waiting.swap(guest.after_releases);
                                             }
                                             for (auto& send : waiting) send();
                                           });
}

// Sends a lock request now, or once the RELEASEs in flight are answered.
void after_releases(fuse_req_t req, std::function<void()> send) {
  Guest& guest = guest_of(req);
  {
    std::lock_guard lock(guest.release_mutex);
    if (guest.releases_in_flight > 0) {
      guest.after_releases.push_back(std::move(send));
      return;
    }
  }
  send();
}

void op_fsync(fuse_req_t req, fuse_ino_t, int datasync, fuse_file_info* fi) {
  FsyncRequest request{handle_of(fi), uint32_t(datasync != 0)};
  guest_of(req).writes_behind.after_writes(fi->fh, [req, request](int error) {
    connection(req).call_async<Op::kFsync>(request, [req, error](int synced, const Empty&) {
      fuse_reply_err(req, error ? error : synced);
    });
  });
}

// ---- directories

void op_opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  if (guest_of(req).zero_message_opendir) {
    // The kernel opens directories itself from now on (and caches their
    // listings); READDIR then names the node, with handle 0.
    fuse_reply_err(req, ENOSYS);
    return;
  }
  fuse_file_info info = *fi;
  connection(req).call_async<Op::kOpendir>(OpenRequest{node_of(ino), 0},
                                           [req, info](int error, const OpenReply& r) mutable {
                                             if (error) {
                                               fuse_reply_err(req, error);
                                               return;
                                             }
                                             info.fh = r.handle.value;
                                             // Coherent: the kernel keeps directory
                                             // listings; the host's NOTIFY for the
                                             // directory drops them.
                                             const bool keep = guest_of(req).coherent;
                                             info.cache_readdir = keep;
                                             info.keep_cache = keep;
                                             fuse_reply_open(req, &info);
                                           });
}

void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset, fuse_file_info* fi) {
  send_about<Op::kReaddir>(  // a listing moves the directory's atime
      req, ino, 0,
      ReaddirRequest{handle_of(fi), uint64_t(offset), guest_of(req).reply_cap(size), node_of(ino)},
      [req, size](int error, const ReaddirReply& r) {
        if (error) {
          fuse_reply_err(req, error);
          return;
        }
        std::vector<char> buffer(size);
        size_t used = 0;
        for (const auto& d : r.entries) {
          struct stat st {};
          st.st_ino = d.inode;
          st.st_mode = native_dirent_type(d.type) << 12;
          size_t need = fuse_add_direntry(req, buffer.data() + used, size - used,
                                          d.name.value.c_str(), &st, off_t(d.next_offset));
          if (need > size - used) break;
          used += need;
        }
        fuse_reply_buf(req, buffer.data(), used);
      });
}

void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset, fuse_file_info* fi) {
  send_about<Op::kReaddirplus>(
      req, ino, 0,
      ReaddirRequest{handle_of(fi), uint64_t(offset), guest_of(req).reply_cap(size), node_of(ino)},
      [req, size](int error, const ReaddirplusReply& r) {
        if (error) {
          fuse_reply_err(req, error);
          return;
        }
        Guest& guest = guest_of(req);
        std::vector<char> buffer(size);
        size_t used = 0;
        ForgetRequest unused;  // entries the kernel will not see: their lookups are returned
        bool full = false;     // once one entry does not fit, none after it may go in
        for (const auto& item : r.entries) {
          if (!full) {
            fuse_entry_param param{};
            if (item.entry.node.value) {
              param = to_entry(guest, item.entry);
            } else {  // "." and "..": no node, no lookup count
              param.attr.st_ino = item.dirent.inode;
              param.attr.st_mode = native_dirent_type(item.dirent.type) << 12;
            }
            size_t need = fuse_add_direntry_plus(req, buffer.data() + used, size - used,
                                                 item.dirent.name.value.c_str(), &param,
                                                 off_t(item.dirent.next_offset));
            if (need <= size - used) {
              used += need;
              continue;
            }
            full = true;
          }
          if (item.entry.node.value) unused.items.push_back({item.entry.node, 1});
        }
        fuse_reply_buf(req, buffer.data(), used);
        if (!unused.items.empty())
          guest.connection->call_async<Op::kForget>(unused, [](int, const Empty&) {});
      });
}

void op_releasedir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  connection(req).call_async<Op::kReleasedir>(HandleRequest{handle_of(fi)}, reply_empty(req));
}

void op_fsyncdir(fuse_req_t req, fuse_ino_t, int, fuse_file_info*) { fuse_reply_err(req, 0); }

// ---- file system

void op_statfs(fuse_req_t req, fuse_ino_t ino) {
  connection(req).call_async<Op::kStatfs>(NodeRequest{node_of(ino)},
                                          [req](int error, const StatfsReply& r) {
                                            if (error) {
                                              fuse_reply_err(req, error);
                                              return;
                                            }
                                            struct statvfs s {};
                                            s.f_bsize = r.block_size;
                                            s.f_frsize = r.fragment_size;
                                            s.f_blocks = r.blocks;
                                            s.f_bfree = r.blocks_free;
                                            s.f_bavail = r.blocks_available;
                                            s.f_files = r.files;
                                            s.f_ffree = r.files_free;
                                            s.f_favail = r.files_free;
                                            s.f_namemax = r.name_max;
                                            fuse_reply_statfs(req, &s);
                                          });
}

void op_access(fuse_req_t req, fuse_ino_t ino, int mask) {
  std::optional<uint32_t> wire = canon::access_mask_to_wire(mask);
  if (!wire) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  connection(req).call_async<Op::kAccess>(AccessRequest{node_of(ino), *wire}, reply_empty(req));
}

// ---- extended attributes

auto reply_xattr(fuse_req_t req, size_t size) {
  return [req, size](int error, const XattrReply& r) {
    if (error)
      fuse_reply_err(req, error);
    else if (size == 0)
      fuse_reply_xattr(req, r.size);
    else
      fuse_reply_buf(req, r.value.value.data(), r.value.value.size());
  };
}

bool xattr_fits(fuse_req_t req, const char* name, size_t size) {
  if (std::strlen(name) > kMaxXattrNameBytes) {
    fuse_reply_err(req, ERANGE);
    return false;
  }
  if (size > kMaxXattrValueBytes) {
    fuse_reply_err(req, E2BIG);
    return false;
  }
  return true;
}

// The wire's name for the kernel's (canon::xattr_name_to_wire); answers EOPNOTSUPP itself
// when there is none.
std::optional<std::string> wire_xattr_name(fuse_req_t req, const char* name) {
  std::optional<std::string> wire = canon::xattr_name_to_wire(name);
  if (!wire) fuse_reply_err(req, EOPNOTSUPP);
  return wire;
}

void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  if (!xattr_fits(req, name, 0)) return;
  std::optional<std::string> wire_name = wire_xattr_name(req, name);
  if (!wire_name) return;
  Guest& guest = guest_of(req);
  GetxattrRequest request{node_of(ino), XattrName{*wire_name},
                          guest.reply_cap(std::min<size_t>(size, kMaxXattrValueBytes))};
  if (!guest.coherent || *wire_name != "security.capability") {
    connection(req).call_async<Op::kGetxattr>(request, reply_xattr(req, size));
    return;
  }
  if (guest.no_capabilities.known(ino)) {
    fuse_reply_err(req, canon::no_attribute_errno());
    return;
  }
  uint64_t generation = guest.no_capabilities.generation();
  connection(req).call_async<Op::kGetxattr>(
      request,
      [&guest, ino, generation, answer = reply_xattr(req, size)](int error, const XattrReply& r) {
        if (error == canon::no_attribute_errno()) guest.no_capabilities.learned(ino, generation);
        answer(error, r);
      });
}

void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size,
                 int flags) {
  if (!xattr_fits(req, name, size)) return;
  std::optional<uint32_t> wire = canon::xattr_flags_to_wire(flags);
  if (!wire) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  std::optional<std::string> wire_name = wire_xattr_name(req, name);
  if (!wire_name) return;
  guest_of(req).no_capabilities.changed(ino);
  send_about<Op::kSetxattr>(req, ino, 0,
                            SetxattrRequest{node_of(ino), XattrName{*wire_name},
                                            XattrValue{std::string(value, size)}, *wire},
                            reply_empty(req));
}

// The host's listing ("a\0b\0") in the kernel's names; names it has none for are left out.
std::string native_xattr_list(const std::string& wire) {
  std::string native;
  for (size_t at = 0; at < wire.size();) {
    size_t end = wire.find('\0', at);
    if (end == std::string::npos) end = wire.size();
    if (auto name = canon::xattr_name_from_wire(std::string_view(wire).substr(at, end - at))) {
      native += *name;
      native += '\0';
    }
    at = end + 1;
  }
  return native;
}

void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  Guest& guest = guest_of(req);
  if (!canon::xattr_names_mapped()) {
    connection(req).call_async<Op::kListxattr>(
        ListxattrRequest{node_of(ino),
                         guest.reply_cap(std::min<size_t>(size, kMaxXattrValueBytes))},
        reply_xattr(req, size));
    return;
  }
  // Rewritten names have other lengths: the whole listing is needed even for its size.
  connection(req).call_async<Op::kListxattr>(
      ListxattrRequest{node_of(ino), guest.reply_cap(kMaxXattrValueBytes)},
      [req, size](int error, const XattrReply& r) {
        if (error) {
          fuse_reply_err(req, error);
          return;
        }
        std::string names = native_xattr_list(r.value.value);
        if (size == 0)
          fuse_reply_xattr(req, names.size());
        else if (names.size() > size)
          fuse_reply_err(req, ERANGE);
        else
          fuse_reply_buf(req, names.data(), names.size());
      });
}

void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
  if (!xattr_fits(req, name, 0)) return;
  std::optional<std::string> wire_name = wire_xattr_name(req, name);
  if (!wire_name) return;
  guest_of(req).no_capabilities.changed(ino);
  send_about<Op::kRemovexattr>(req, ino, 0, RemovexattrRequest{node_of(ino), XattrName{*wire_name}},
                               reply_empty(req));
}

// ---- space, seeking, locks

void op_fallocate(fuse_req_t req, fuse_ino_t, int mode, off_t offset, off_t length,
                  fuse_file_info* fi) {
  std::optional<uint32_t> wire = canon::fallocate_mode_to_wire(mode);
  if (!wire) {
    fuse_reply_err(req, EOPNOTSUPP);
    return;
  }
  connection(req).call_async<Op::kFallocate>(
      FallocateRequest{handle_of(fi), *wire, uint64_t(offset), uint64_t(length)}, reply_empty(req));
}

void op_lseek(fuse_req_t req, fuse_ino_t, off_t offset, int whence, fuse_file_info* fi) {
  std::optional<uint32_t> wire = canon::whence_to_wire(whence);
  if (!wire || (*wire != kWhenceData && *wire != kWhenceHole)) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  connection(req).call_async<Op::kLseek>(LseekRequest{handle_of(fi), uint64_t(offset), *wire},
                                         [req](int error, const LseekReply& r) {
                                           if (error)
                                             fuse_reply_err(req, error);
                                           else
                                             fuse_reply_lseek(req, off_t(r.offset));
                                         });
}

std::optional<Lock> to_lock(const struct flock* fl) {
  std::optional<uint32_t> type = canon::lock_type_to_wire(fl->l_type);
  if (!type) return std::nullopt;
  Lock lock;
  lock.type = *type;
  lock.start = uint64_t(fl->l_start);
  // The kernel hands FUSE absolute ranges with l_len as the length from
  // l_start (0 = to the end).
  lock.end = fl->l_len == 0 ? UINT64_MAX : uint64_t(fl->l_start + fl->l_len - 1);
  lock.pid = uint32_t(fl->l_pid);
  return lock;
}

void op_getlk(fuse_req_t req, fuse_ino_t, fuse_file_info* fi, struct flock* fl) {
  std::optional<Lock> lock = to_lock(fl);
  if (!lock) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  GetlkRequest request{handle_of(fi), fi->lock_owner, *lock};
  after_releases(req, [req, request] {
    connection(req).call_async<Op::kGetlk>(request, [req](int error, const LockReply& r) {
      if (error) {
        fuse_reply_err(req, error);
        return;
      }
      std::optional<int> type = canon::lock_type_from_wire(r.lock.type);
      if (!type) {
        fuse_reply_err(req, EIO);  // the host answered a lock type that has no row
        return;
      }
      struct flock out {};
      out.l_type = short(*type);
      out.l_whence = SEEK_SET;
      out.l_start = off_t(r.lock.start);
      out.l_len = r.lock.end == UINT64_MAX ? 0 : off_t(r.lock.end - r.lock.start + 1);
      out.l_pid = pid_t(r.lock.pid);
      fuse_reply_lock(req, &out);
    });
  });
}

void op_setlk(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, struct flock* fl, int sleep) {
  {
    Guest& guest = guest_of(req);
    std::lock_guard lock(guest.locked_mutex);
    guest.locked_nodes.insert(ino);
  }
  std::optional<Lock> lock = to_lock(fl);
  if (!lock) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  SetlkRequest request{handle_of(fi), fi->lock_owner, *lock, uint32_t(sleep != 0)};
  after_releases(
      req, [req, request] { connection(req).call_async<Op::kSetlk>(request, reply_empty(req)); });
}

void op_flock(fuse_req_t req, fuse_ino_t, fuse_file_info* fi, int operation) {
  if ((operation & ~(LOCK_SH | LOCK_EX | LOCK_UN | LOCK_NB)) != 0) {
    fuse_reply_err(req, EINVAL);  // a bit the wire has no room for
    return;
  }
  uint32_t wire =
      ((operation & LOCK_SH) ? kFlockShared : 0) | ((operation & LOCK_EX) ? kFlockExclusive : 0) |
      ((operation & LOCK_UN) ? kFlockUnlock : 0) | ((operation & LOCK_NB) ? kFlockNonblock : 0);
  after_releases(req, [req, wire, fi_handle = handle_of(fi)] {
    connection(req).call_async<Op::kFlock>(FlockRequest{fi_handle, wire}, reply_empty(req));
  });
}

fuse_lowlevel_ops make_operations() {
  fuse_lowlevel_ops ops{};
  ops.init = op_init;
  ops.lookup = op_lookup;
  ops.forget = op_forget;
  ops.forget_multi = op_forget_multi;
  ops.getattr = op_getattr;
  ops.setattr = op_setattr;
  ops.readlink = op_readlink;
  ops.mknod = op_mknod;
  ops.mkdir = op_mkdir;
  ops.symlink = op_symlink;
  ops.unlink = op_unlink;
  ops.rmdir = op_rmdir;
  ops.rename = op_rename;
  ops.link = op_link;
  ops.open = op_open;
  ops.create = op_create;
  ops.read = op_read;
  ops.write = op_write;
  ops.flush = op_flush;
  ops.release = op_release;
  ops.fsync = op_fsync;
  ops.opendir = op_opendir;
  ops.readdir = op_readdir;
  ops.readdirplus = op_readdirplus;
  ops.releasedir = op_releasedir;
  ops.fsyncdir = op_fsyncdir;
  ops.statfs = op_statfs;
  ops.access = op_access;
  ops.getxattr = op_getxattr;
  ops.setxattr = op_setxattr;
  ops.listxattr = op_listxattr;
  ops.removexattr = op_removexattr;
  ops.fallocate = op_fallocate;
  ops.lseek = op_lseek;
  ops.getlk = op_getlk;
  ops.setlk = op_setlk;
  ops.flock = op_flock;
  return ops;
}

}  // namespace

const fuse_lowlevel_ops& fuse_operations() {
  static const fuse_lowlevel_ops ops = make_operations();
  return ops;
}

void configure_cache(Guest& guest) {
  double timeout = 0;
  switch (guest.options.cache) {
    case CacheMode::kNone:
      timeout = 0;
      guest.keep_cache = false;
      break;
    case CacheMode::kAuto:
      timeout = 1;
      guest.keep_cache = false;
      break;
    case CacheMode::kAlways:
      timeout = 3600;
      guest.keep_cache = true;
      break;
    case CacheMode::kCoherent:
      timeout = 86400;  // the host says when something changed
      guest.keep_cache = true;
      break;
  }
  guest.coherent = guest.options.cache == CacheMode::kCoherent;
  guest.entry_timeout = guest.options.entry_timeout >= 0 ? guest.options.entry_timeout : timeout;
  guest.attr_timeout = guest.options.attr_timeout >= 0 ? guest.options.attr_timeout : timeout;
  guest.guard_sizes = guest.attr_timeout > 0 && os::kernel_distrusts_size_changes();
}

bool NoCapabilities::known(uint64_t node) {
  std::lock_guard lock(mutex_);
  return nodes_.count(node) != 0;
}

uint64_t NoCapabilities::generation() {
  std::lock_guard lock(mutex_);
  return generation_;
}

void NoCapabilities::learned(uint64_t node, uint64_t generation) {
  std::lock_guard lock(mutex_);
  if (generation == generation_) nodes_.insert(node);
}

void NoCapabilities::changed(uint64_t node) {
  std::lock_guard lock(mutex_);
  ++generation_;
  nodes_.erase(node);
}

void NoCapabilities::forgotten(uint64_t node) {
  std::lock_guard lock(mutex_);
  nodes_.erase(node);
}

void DirAttrs::begin(uint64_t first, uint64_t second) {
  std::lock_guard lock(mutex_);
  begin_one(first);
  begin_one(second);
}

void DirAttrs::begin_one(uint64_t dir) {
  if (dir == 0) return;
  attrs_.erase(dir);
  Pending& pending = pending_[dir];
  if (pending.in_flight++ == 0) pending.notify_generation = notify_generation_;
}

void DirAttrs::end(uint64_t first, uint64_t second) {
  std::lock_guard lock(mutex_);
  end_one(first);
  end_one(second);
}

void DirAttrs::end_one(uint64_t dir) {
  auto it = pending_.find(dir);
  if (it != pending_.end() && --it->second.in_flight == 0) pending_.erase(it);
}

void DirAttrs::offer(uint64_t dir, const Attr& attr) {
  std::lock_guard lock(mutex_);
  auto it = pending_.find(dir);
  if (it != pending_.end() && it->second.in_flight == 1 &&
      it->second.notify_generation == notify_generation_)
    attrs_[dir] = attr;
}

bool DirAttrs::find(uint64_t dir, Attr& attr) {
  std::lock_guard lock(mutex_);
  auto it = attrs_.find(dir);
  if (it == attrs_.end()) return false;
  attr = it->second;
  return true;
}

void DirAttrs::changed(uint64_t node) {
  std::lock_guard lock(mutex_);
  ++notify_generation_;
  attrs_.erase(node);
}

void DirAttrs::drop_all() {
  std::lock_guard lock(mutex_);
  attrs_.clear();
}

void DirAttrs::forgotten(uint64_t node) {
  std::lock_guard lock(mutex_);
  attrs_.erase(node);
}

double ToldSizes::timeout_for(uint64_t node, const Attr& attr, double usual) {
  if (!S_ISREG(canon::mode_from_wire(attr.mode).value_or(0))) return usual;
  std::lock_guard lock(mutex_);
  auto [at, added] = sizes_.try_emplace(node, attr.size);
  if (added || at->second == attr.size) return usual;
  at->second = attr.size;
  return 0;
}

void ToldSizes::wrote(uint64_t node, uint64_t end) {
  std::lock_guard lock(mutex_);
  auto at = sizes_.find(node);
  if (at != sizes_.end() && at->second < end) at->second = end;
}

void ToldSizes::forgotten(uint64_t node) {
  std::lock_guard lock(mutex_);
  sizes_.erase(node);
}

void RecentAttrs::keep(const QuietMark& mark, uint64_t node, const Attr& attr) {
  std::lock_guard lock(mutex_);
  node_ = node;
  attr_ = attr;
  mark_ = mark;
}

bool RecentAttrs::find(uint64_t node, Attr& attr, QuietMark& mark) {
  std::lock_guard lock(mutex_);
  if (node_ == 0 || node != node_) return false;
  attr = attr_;
  mark = mark_;
  return true;
}

void RecentAttrs::forgotten(uint64_t node) {
  std::lock_guard lock(mutex_);
  if (node == node_) node_ = 0;
}

void OpenedData::keep(const QuietMark& mark, uint64_t handle, std::span<const uint8_t> data,
                      bool at_end) {
  std::lock_guard lock(mutex_);
  handle_ = handle;
  data_.assign(data.begin(), data.end());
  at_end_ = at_end;
  mark_ = mark;
}

bool OpenedData::find(uint64_t handle, uint64_t offset, size_t size, std::span<const uint8_t>& out,
                      QuietMark& mark) {
  std::lock_guard lock(mutex_);
  if (handle_ == 0 || handle != handle_) return false;
  // Covered: the whole range is in the data, or the data reaches the end
  // of the file (then a short answer is the file's end, as from the host).
  if (offset + size > data_.size() && !at_end_) return false;
  size_t begin = std::min<uint64_t>(offset, data_.size());
  size_t end = std::min<uint64_t>(offset + size, data_.size());
  out = std::span<const uint8_t>(data_.data() + begin, end - begin);
  mark = mark_;
  return true;
}

void OpenedData::drop(uint64_t handle) {
  std::lock_guard lock(mutex_);
  if (handle != handle_) return;
  handle_ = 0;
  data_.clear();
  data_.shrink_to_fit();
}

void WritesBehind::sent(uint64_t handle) {
  std::lock_guard lock(mutex_);
  ++handles_[handle].in_flight;
}

WritesBehind::Waiting WritesBehind::done(uint64_t handle, int error) {
  std::lock_guard lock(mutex_);
  auto it = handles_.find(handle);
  if (it == handles_.end()) return {};
  State& state = it->second;
  --state.in_flight;
  if (error && !state.error) state.error = error;
  Waiting result;
  if (state.in_flight == 0) {
    result.then.swap(state.waiting);
    result.error = state.error;
    // Those waiting report the error; without them it waits for the next.
    if (!result.then.empty() || !state.error) handles_.erase(it);
  }
  return result;
}

void WritesBehind::after_writes(uint64_t handle, std::function<void(int)> then) {
  int error = 0;
  {
    std::lock_guard lock(mutex_);
    auto it = handles_.find(handle);
    if (it != handles_.end()) {
      if (it->second.in_flight > 0) {
        it->second.waiting.push_back(std::move(then));
        return;
      }
      error = it->second.error;
      handles_.erase(it);
    }
  }
  then(error);
}

int WritesBehind::take_error(uint64_t handle) {
  std::lock_guard lock(mutex_);
  auto it = handles_.find(handle);
  if (it == handles_.end()) return 0;
  int error = it->second.error;
  it->second.error = 0;
  if (it->second.in_flight == 0) handles_.erase(it);
  return error;
}

void WritesBehind::released(uint64_t handle) {
  std::lock_guard lock(mutex_);
  auto it = handles_.find(handle);
  if (it != handles_.end() && it->second.in_flight == 0) handles_.erase(it);
}

Invalidator::Invalidator(fuse_session* session, Guest& guest) : session_(session), guest_(guest) {
  thread_ = std::thread([this] { loop(); });
}

Invalidator::~Invalidator() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  ready_.notify_all();
  thread_.join();
}

void Invalidator::push(uint16_t opcode, std::span<const uint8_t> payload) {
  if (opcode == kNotifyAttrOpcode) {
    AttrNotice notice;
    if (decode_message(payload, notice)) guest_.dir_attrs.offer(notice.node.value, notice.attr);
    return;
  }
  NotifyMessage note;
  if (opcode != 0 || !decode_message(payload, note)) return;  // from a newer host
  // Here, on the thread that also reads replies: a reply that follows this
  // NOTIFY must not be trusted for the node (see NoCapabilities, DirAttrs).
  ++guest_.notifications;
  if (note.what == kNotifyInode || note.what == kNotifyDelete) {
    {
      std::lock_guard lock(guest_.cached_mutex);  // the kernel drops its pages
      guest_.pages_cached.erase(note.node.value);
    }
    guest_.no_capabilities.changed(note.node.value);
    guest_.dir_attrs.changed(note.node.value);
  }
  if (note.what == kNotifyEntry || note.what == kNotifyDelete)
    guest_.dir_attrs.changed(note.parent.value);
  enqueue(std::move(note));
}

void Invalidator::invalidate_node(uint64_t node) {
  NotifyMessage note;
  note.what = kNotifyInode;
  note.node.value = node;
  enqueue(std::move(note));
}

void Invalidator::enqueue(NotifyMessage note) {
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(note));
  }
  ready_.notify_one();
}

void Invalidator::loop() {
  for (;;) {
    NotifyMessage note;
    {
      std::unique_lock lock(mutex_);
      ready_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      note = std::move(queue_.front());
      queue_.pop_front();
    }
    // -ENOENT: the kernel does not have it (any more); nothing to forget.
    const std::string& name = note.name.value;
    switch (note.what) {
      case kNotifyInode:
        os::invalidate_inode(session_, note.node.value);
        break;
      case kNotifyEntry:
        fuse_lowlevel_notify_inval_entry(session_, note.parent.value, name.c_str(), name.size());
        break;
      case kNotifyDelete:
        if (!os::kernel_takes_notify_delete() ||
            fuse_lowlevel_notify_delete(session_, note.parent.value, note.node.value, name.c_str(),
                                        name.size()) != 0)
          fuse_lowlevel_notify_inval_entry(session_, note.parent.value, name.c_str(), name.size());
        break;
      default:
        break;
    }
  }
}

uint32_t Guest::reply_cap(size_t wanted) const {
  uint32_t budget = connection->reply_budget();
  size_t cap = budget > 0 ? budget - std::min<uint32_t>(budget / 2, 1024) : SIZE_MAX;
  return uint32_t(std::min<size_t>({wanted, cap, UINT32_MAX}));
}

unsigned Guest::max_io() const { return unsigned(reply_cap(os::max_io(connection->max_io()))); }

}  // namespace fsout::guest
