// The passthrough back end: every operation is a syscall relative to a node's
// O_PATH fd or an open handle's fd. Paths are never built from guest strings;
// the only resolution of a guest name is confine::open_beneath().
#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <signal.h>
#include <sys/fanotify.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <unordered_map>

#include "host/confine.h"
#include "host/file_system.h"
#include "host/identity.h"
#include "host/node_table.h"
#include "protocol/canonical.h"

namespace fsout::host {
namespace {

using namespace protocol;
namespace canon = canonical;

Errno last_error() { return Errno{errno}; }

Time to_time(const timespec& ts) { return Time{ts.tv_sec, uint32_t(ts.tv_nsec)}; }

// Every S_IFMT value Linux has is in the mode table (checked against the headers in
// canonical.cpp), so a stat from the kernel always converts. Were one ever not to, the
// attribute carries no type bits, which a guest kernel refuses as a bad inode (EIO) rather
// than showing a wrong type.
uint32_t wire_mode(mode_t mode) { return canon::mode_to_wire(mode).value_or(mode & 07777); }

// DT_UNKNOWN for a type without a row (none on Linux): it tells the reader to stat the entry.
uint8_t wire_dirent_type(unsigned char type) {
  return canon::dirent_type_to_wire(type).value_or(canon::kDirentUnknown);
}

Attr to_attr(const struct stat& st) {
  Attr a;
  a.inode = st.st_ino;
  a.mode = wire_mode(st.st_mode);
  a.nlink = uint32_t(st.st_nlink);
  a.uid = st.st_uid;
  a.gid = st.st_gid;
  auto dev = canon::device_to_wire(st.st_rdev);
  a.rdev = Device{dev.major, dev.minor};
  a.size = uint64_t(st.st_size);
  a.blocks = uint64_t(st.st_blocks);
  a.block_size = uint32_t(st.st_blksize);
  a.atime = to_time(st.st_atim);
  a.mtime = to_time(st.st_mtim);
  a.ctime = to_time(st.st_ctim);
  return a;
}

bool stat_node(int fd, struct stat& st) {
  return fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) == 0;
}

// An open file or directory of the guest.
struct Handle {
  ~Handle() {
    if (dir)
      closedir(dir);  // also closes fd
    else if (fd >= 0)
      close(fd);
  }
  int fd = -1;
  NodeRef node;
  int access = O_RDONLY;  // O_ACCMODE part of the open flags
  int flags = 0;          // all of them
  // Directories: the stream and where it stands, guarded by dir_mutex.
  std::mutex dir_mutex;
  DIR* dir = nullptr;
  uint64_t position = 0;
  // Lock owners that took record locks through this handle (locks_mutex_).
  std::set<uint64_t> lock_owners;
};
using HandleRef = std::shared_ptr<Handle>;

// Reply sizes a FUSE guest needs for one entry (struct fuse_dirent /
// fuse_direntplus plus the name rounded up to 8 bytes). The host fills a
// READDIR reply up to the guest's byte budget by this measure; see PROTOCOL.md.
size_t dirent_cost(size_t name_size) { return 24 + ((name_size + 7) & ~size_t(7)); }
size_t direntplus_cost(size_t name_size) { return 152 + ((name_size + 7) & ~size_t(7)); }

class Passthrough final : public FileSystem {
 public:
  Passthrough(int root_fd, const struct stat& root_stat, Limits limits,
              std::shared_ptr<const IdMap> ids, std::unique_ptr<StateLog> state)
      : nodes_(root_fd, root_stat, limits.max_nodes),
        limits_(limits),
        ids_(std::move(ids)),
        root_fd_(root_fd),
        state_(std::move(state)) {
    nodes_.on_drop([this](const NodeRef& node) { dropped(node); });
  }

  ~Passthrough() override {
    cancel_waits();
    for (auto& [key, fd] : lock_fds_) close(fd);
    if (state_ && !keep_state_) {
      // The session is over for good: its state and its orphaned files go.
      state_->discard();
      for (auto& named : nodes_.all()) unlink_orphan(*named.node);
      if (orphan_dir_ >= 0) unlinkat(root_fd_, kOrphanDir, AT_REMOVEDIR);  // when empty
    }
    if (orphan_dir_ >= 0) close(orphan_dir_);
  }

  StateLog* state() override { return state_.get(); }
  void keep_state() override { keep_state_ = true; }

  Result<uint64_t> inode_of(NodeId parent_id, const std::string& name) override {
    NodeRef parent = nodes_.get(parent_id);
    if (!parent) return Errno{ESTALE};
    struct stat st;
    if (hidden(parent_id, name)) return uint64_t(0);
    if (fstatat(parent->fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
      return errno == ENOENT ? Result<uint64_t>(uint64_t(0)) : Result<uint64_t>(last_error());
    return uint64_t(st.st_ino);
  }

  std::optional<uint64_t> append_size(HandleId id) override {
    HandleRef h = handle(id);
    struct stat st;
    if (!h || h->dir || !(h->flags & O_APPEND) || fstat(h->fd, &st) != 0) return std::nullopt;
    return uint64_t(st.st_size);
  }

  // Whether the file holds `data` at `offset`: an append the last fsoutd performed but died
  // before saving its reply. A log is mostly opened write-only (O_WRONLY | O_APPEND), and
  // such a handle cannot read: the file is read through a read-only fd of its own. If
  // even that is refused (a non-root fsoutd, a file it may not read), the file's size
  // decides: exactly `data` past `offset` is taken for the append.
  bool appended(HandleId id, uint64_t offset, std::span<const uint8_t> data) override {
    HandleRef h = handle(id);
    if (!h || h->dir) return false;
    int fd = h->fd, own = -1;
    if (h->access == O_WRONLY) fd = own = confine::reopen_node(h->node->fd, O_RDONLY);
    if (fd < 0) {
      struct stat st;
      return fstat(h->fd, &st) == 0 && uint64_t(st.st_size) == offset + data.size();
    }
    auto found = read_at(fd, offset, uint32_t(data.size()));
    const bool same = found.ok() && found.value().size() == data.size() &&
                      std::equal(data.begin(), data.end(), found.value().begin());
    if (own >= 0) close(own);
    return same;
  }

  // Opens a saved session's nodes, handles and locks again (restore_passthrough()).
  void restore(const SavedState& saved, std::string& report);

  void track_changes() override {
    nodes_.track_handles();
    nodes_.wait_for_room();  // make_room() asks the guest; FORGETs follow
  }

  void notifications_for(const HostChange& change, std::vector<NotifyMessage>& out) override {
    NodeRef object = nodes_.find_by_handle(change.object);
    NodeRef directory = nodes_.find_by_handle(change.directory);
    const bool entry_changed =
        change.events & (FAN_CREATE | FAN_DELETE | FAN_MOVED_FROM | FAN_MOVED_TO);
    const bool gone = change.events & (FAN_DELETE | FAN_MOVED_FROM);
    if (directory && entry_changed && !change.name.empty()) {
      if (gone && object)
        out.push_back({kNotifyDelete, object->id, directory->id, EntryName{change.name}});
      else
        out.push_back({kNotifyEntry, {}, directory->id, EntryName{change.name}});
      out.push_back({kNotifyInode, directory->id, {}, {}});  // its mtime, size, nlink
    }
    // Data, attributes, or the link count of the object.
    if (object) out.push_back({kNotifyInode, object->id, {}, {}});
  }

  void forget_everything(std::vector<NotifyMessage>& out) override {
    for (auto& named : nodes_.all()) {
      if (!named.name.empty())
        out.push_back({kNotifyEntry, {}, named.parent, EntryName{named.name}});
      out.push_back({kNotifyInode, named.node->id, {}, {}});
    }
  }

  Held held() override {
    std::lock_guard lock(handles_mutex_);
    return {nodes_.size(), handles_.size()};
  }
  bool short_of_nodes() const override { return nodes_.size() >= limits_.max_nodes / 4 * 3; }

  void make_room(std::vector<NotifyMessage>& out) override {
    static const size_t budget = [] {
      rlimit limit{};
      getrlimit(RLIMIT_NOFILE, &limit);
      return std::max<size_t>(1024, size_t(limit.rlim_cur) / 4 * 3);
    }();
    // Short of fds in the process, or half of this session's node limit.
    const size_t held = nodes_.size();
    const bool short_of_fds = NodeTable::open_fds() > budget;
    if (!short_of_fds && held <= limits_.max_nodes / 2) return;
    // Not more often than every 20 ms per session: the guest needs a
    // moment to forget, and names already asked for are skipped.
    int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now().time_since_epoch())
                      .count();
    int64_t last = last_room_made_ms_.load();
    if (now - last < 20 || !last_room_made_ms_.compare_exchange_strong(last, now)) return;
    // Down to a quarter of the limit (or half of what is held when the
    // process is short of fds): the oldest first (ids increase), files
    // before directories (forgetting a directory's name forgets its subtree).
    size_t count = short_of_fds ? held / 2 : held - std::min(held, limits_.max_nodes / 4);
    for (auto& named : nodes_.take_oldest_names(count))
      out.push_back({kNotifyEntry, {}, named.parent, EntryName{named.name}});
  }

  Result<Attr> root_attr() override {
    struct stat st;
    int fd = nodes_.get(kRootNode)->fd;
    if (!stat_node(fd, st)) return last_error();
    return attr_of(fd, st);
  }

  // ---- nodes

  Result<EntryReply> Lookup(const LookupRequest& r) override {
    NodeRef parent = nodes_.get(r.parent);
    if (!parent) return Errno{ESTALE};
    if (hidden(r.parent, r.name.value)) return Errno{ENOENT};
    return lookup_in(*parent, r.name.value);
  }

  Result<Empty> Forget(const ForgetRequest& r) override {
    for (const auto& item : r.items) nodes_.forget(item.node, item.count);
    return Empty{};
  }

  Result<AttrReply> Getattr(const GetattrRequest& r) override {
    struct stat st;
    if (HandleRef h = handle(r.handle); h && h->node->id == r.node) {
      if (fstat(h->fd, &st) != 0) return last_error();
      return AttrReply{attr_of(h->node->fd, st)};
    }
    NodeRef node = nodes_.get(r.node);
    if (!node) return Errno{ESTALE};
    if (!stat_node(node->fd, st)) return last_error();
    return AttrReply{attr_of(node->fd, st)};
  }

  Result<AttrReply> Setattr(const SetattrRequest& r) override {
    NodeRef node = nodes_.get(r.node);
    if (!node) return Errno{ESTALE};
    HandleRef h = handle(r.handle);
    if (h && h->node != node) h = nullptr;
    const bool is_link = S_ISLNK(node->type);
    if (r.valid & kSetMode) {
      std::optional<uint32_t> wire = canon::mode_from_wire(r.mode);
      if (!wire) return Errno{EINVAL};
      mode_t mode = *wire & 07777;
      int rc = h         ? fchmod(h->fd, mode)
               : is_link ? (errno = EOPNOTSUPP, -1)
                         : fchmodat(AT_FDCWD, confine::fd_path(node->fd).c_str(), mode, 0);
      if (rc != 0) return last_error();
    }
    if (r.valid & (kSetUid | kSetGid)) {
      auto error = change_owner(*node, r);
      if (error) return Errno{error};
    }
    if (r.valid & kSetSize) {
      if (r.size > uint64_t(LLONG_MAX)) return Errno{EFBIG};
      if (h && h->access != O_RDONLY) {
        if (ftruncate(h->fd, off_t(r.size)) != 0) return last_error();
      } else {
        if (S_ISDIR(node->type)) return Errno{EISDIR};
        int fd = confine::reopen_node(node->fd, O_WRONLY);
        if (fd < 0) return Errno{-fd};
        int rc = ftruncate(fd, off_t(r.size));
        int error = errno;
        close(fd);
        if (rc != 0) return Errno{error};
      }
    }
    if (r.valid & (kSetAtime | kSetAtimeNow | kSetMtime | kSetMtimeNow)) {
      timespec times[2];
      auto pick = [](uint32_t valid, uint32_t set, uint32_t now, const Time& t) {
        if (valid & now) return timespec{0, UTIME_NOW};
        if (valid & set) return timespec{time_t(t.seconds), long(t.nanoseconds)};
        return timespec{0, UTIME_OMIT};
      };
      times[0] = pick(r.valid, kSetAtime, kSetAtimeNow, r.atime);
      times[1] = pick(r.valid, kSetMtime, kSetMtimeNow, r.mtime);
      int rc = h ? futimens(h->fd, times) : utimensat(node->fd, "", times, AT_EMPTY_PATH);
      if (rc != 0) return last_error();
    }
    struct stat st;
    if (!stat_node(node->fd, st)) return last_error();
    return AttrReply{attr_of(node->fd, st)};
  }

  Result<ReadlinkReply> Readlink(const NodeRequest& r) override {
    NodeRef node = nodes_.get(r.node);
    if (!node) return Errno{ESTALE};
    char buffer[kMaxPathBytes + 1];
    ssize_t n = readlinkat(node->fd, "", buffer, sizeof(buffer));
    if (n < 0) return last_error();
    if (size_t(n) > kMaxPathBytes) return Errno{ENAMETOOLONG};
    return ReadlinkReply{PathText{std::string(buffer, size_t(n))}};
  }

  Result<EntryReply> Symlink(const SymlinkRequest& r) override {
    NodeRef parent = nodes_.get(r.parent);
    if (!parent) return Errno{ESTALE};
    if (hidden(r.parent, r.name.value)) return Errno{EACCES};
    if (r.name.value.size() > NAME_MAX) return Errno{ENAMETOOLONG};
    auto caller = to_host(*ids_, r.caller);
    if (!caller.ok()) return Errno{caller.error()};
    {
      ActingAs as(caller.value());
      if (symlinkat(r.target.value.c_str(), parent->fd, r.name.value.c_str()) != 0)
        return last_error();
    }
    return created(*parent, r.name.value, r.caller);
  }

  Result<EntryReply> Mknod(const MknodRequest& r) override {
    NodeRef parent = nodes_.get(r.parent);
    if (!parent) return Errno{ESTALE};
    if (hidden(r.parent, r.name.value)) return Errno{EACCES};
    if (r.name.value.size() > NAME_MAX) return Errno{ENAMETOOLONG};
    std::optional<uint32_t> mode = canon::mode_from_wire(r.mode);
    if (!mode) return Errno{EINVAL};
    dev_t rdev = canon::device_from_wire(canon::Device{r.rdev.major, r.rdev.minor});
    auto caller = to_host(*ids_, r.caller);
    if (!caller.ok()) return Errno{caller.error()};
    {
      ActingAs as(caller.value());
      if (mknodat(parent->fd, r.name.value.c_str(), mode_t(*mode), rdev) != 0) return last_error();
    }
    return created(*parent, r.name.value, r.caller);
  }

  Result<EntryReply> Mkdir(const MkdirRequest& r) override {
    NodeRef parent = nodes_.get(r.parent);
    if (!parent) return Errno{ESTALE};
    if (hidden(r.parent, r.name.value)) return Errno{EACCES};
    if (r.name.value.size() > NAME_MAX) return Errno{ENAMETOOLONG};
    std::optional<uint32_t> mode = canon::mode_from_wire(r.mode);
    if (!mode) return Errno{EINVAL};
    auto caller = to_host(*ids_, r.caller);
    if (!caller.ok()) return Errno{caller.error()};
    {
      ActingAs as(caller.value());
      if (mkdirat(parent->fd, r.name.value.c_str(), *mode & 07777) != 0) return last_error();
    }
    return created(*parent, r.name.value, r.caller);
  }

  Result<Empty> Unlink(const RemoveRequest& r) override { return remove(r, 0); }
  Result<Empty> Rmdir(const RemoveRequest& r) override { return remove(r, AT_REMOVEDIR); }

  Result<Empty> Rename(const RenameRequest& r) override {
    NodeRef from = nodes_.get(r.parent), to = nodes_.get(r.new_parent);
    if (!from || !to) return Errno{ESTALE};
    if (r.name.value.size() > NAME_MAX || r.new_name.value.size() > NAME_MAX)
      return Errno{ENAMETOOLONG};
    std::optional<int> flags = canon::rename_flags_from_wire(r.flags);
    if (!flags) return Errno{EINVAL};
    if (hidden(r.parent, r.name.value)) return Errno{ENOENT};
    if (hidden(r.new_parent, r.new_name.value)) return Errno{EACCES};
    // A file replaced by the rename while the guest has it open must outlive a restart.
    if (*flags == 0) keep_if_open(*to, r.new_name.value);
    if (syscall(SYS_renameat2, from->fd, r.name.value.c_str(), to->fd, r.new_name.value.c_str(),
                *flags) != 0)
      return last_error();
    if (state_) {  // the moved node's name, for restoring it by name
      struct stat st;
      if (fstatat(to->fd, r.new_name.value.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0)
        if (NodeRef moved = nodes_.find_by_inode(st.st_dev, st.st_ino)) {
          nodes_.note_name(moved, to->id, r.new_name.value);
          state_->node_renamed(moved->id.value, to->id.value, r.new_name.value);
        }
    }
    return Empty{};
  }

  Result<EntryReply> Link(const LinkRequest& r) override {
    NodeRef node = nodes_.get(r.node), parent = nodes_.get(r.new_parent);
    if (!node || !parent) return Errno{ESTALE};
    if (hidden(r.new_parent, r.new_name.value)) return Errno{EACCES};
    if (r.new_name.value.size() > NAME_MAX) return Errno{ENAMETOOLONG};
    if (S_ISDIR(node->type)) return Errno{EPERM};
    auto caller = to_host(*ids_, r.caller);
    if (!caller.ok()) return Errno{caller.error()};
    {
      // As the caller: the host's protected_hardlinks rule applies as locally.
      ActingAs as(caller.value());
      // Through /proc/self/fd: AT_EMPTY_PATH would need CAP_DAC_READ_SEARCH,
      // which a thread acting as a non-root caller does not have.
      if (linkat(AT_FDCWD, confine::fd_path(node->fd).c_str(), parent->fd, r.new_name.value.c_str(),
                 AT_SYMLINK_FOLLOW) != 0)
        return last_error();
    }
    return lookup_in(*parent, r.new_name.value);
  }

  // ---- files

  Result<OpenReply> Open(const OpenRequest& r) override {
    NodeRef node = nodes_.get(r.node);
    if (!node) return Errno{ESTALE};
    if (S_ISDIR(node->type)) return Errno{EISDIR};
    std::optional<int> wire_flags = canon::open_flags_from_wire(r.flags);
    if (!wire_flags) return Errno{EINVAL};
    int flags = *wire_flags;
    int fd = confine::reopen_node(node->fd, flags);
    if (fd < 0) return Errno{-fd};
    return add_handle(fd, node, flags);
  }

  Result<CreateReply> Create(const CreateRequest& r) override {
    NodeRef parent = nodes_.get(r.parent);
    if (!parent) return Errno{ESTALE};
    if (hidden(r.parent, r.name.value)) return Errno{EACCES};
    if (r.name.value.size() > NAME_MAX) return Errno{ENAMETOOLONG};
    std::optional<int> wire_flags = canon::open_flags_from_wire(r.flags);
    std::optional<uint32_t> wire_mode = canon::mode_from_wire(r.mode);
    if (!wire_flags || !wire_mode) return Errno{EINVAL};
    int flags = (*wire_flags | O_CREAT) & ~O_NOCTTY;
    mode_t mode = *wire_mode & 07777;
    auto caller = to_host(*ids_, r.caller);
    if (!caller.ok()) return Errno{caller.error()};
    int fd;
    {
      ActingAs as(caller.value());
      fd = confine::create_beneath(parent->fd, r.name.value, flags, mode);
    }
    if (fd < 0) return Errno{-fd};
    struct stat st;
    int error = fstat(fd, &st) != 0 ? errno : S_ISREG(st.st_mode) ? 0 : EISDIR;
    if (error) {
      close(fd);
      return Errno{error};
    }
    // The node's O_PATH fd comes from the open file itself, not from the
    // name, which another process may already have replaced.
    int path_fd = open(confine::fd_path(fd).c_str(), O_PATH | O_CLOEXEC);
    if (path_fd < 0 || fstat(fd, &st) != 0) {
      int error = errno;
      if (path_fd >= 0) close(path_fd);
      close(fd);
      return Errno{error};
    }
    NodeRef node = nodes_.add_lookup(path_fd, st);
    if (!node) {
      close(fd);
      return Errno{ENFILE};
    }
    nodes_.note_name(node, parent->id, r.name.value);
    save_node(*node, parent->id, r.name.value);
    auto opened = add_handle(fd, node, flags & ~(O_CREAT | O_EXCL | O_TRUNC));
    if (!opened.ok()) {
      nodes_.forget(node->id, 1);
      return Errno{opened.error()};
    }
    if (ids_->squash()) record_guest_owner(*parent, node->fd, r.caller);
    return CreateReply{EntryReply{node->id, 0, attr_of(node->fd, st)}, opened.value().handle};
  }

  Result<DataReply> Read(const ReadRequest& r) override {
    HandleRef h = handle(r.handle);
    if (!h || h->dir) return Errno{EBADF};
    if (r.size > kMaxIoSize) return Errno{EINVAL};
    auto data = read_at(h->fd, r.offset, r.size);
    if (!data.ok()) return Errno{data.error()};
    return DataReply{Tail{data.value()}};
  }

  Result<OpenReadReply> OpenRead(const OpenReadRequest& r) override {
    std::optional<int> wire_flags = canon::open_flags_from_wire(r.flags);
    if (!wire_flags) return Errno{EINVAL};
    int flags = *wire_flags;
    if ((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC) || r.size > kMaxOpenReadBytes)
      return Errno{EINVAL};
    auto opened = Open(OpenRequest{r.node, r.flags});
    if (!opened.ok()) return Errno{opened.error()};
    HandleRef h = handle(opened.value().handle);
    auto data = read_at(h->fd, 0, r.size);
    // A read error is not the open's: no data, and the guest's READ meets it.
    if (!data.ok()) return OpenReadReply{opened.value().handle, 0, Tail{}};
    return OpenReadReply{opened.value().handle, data.value().size() < r.size ? 1u : 0u,
                         Tail{data.value()}};
  }

  // Reads up to `size` bytes (short only at the end of the file) into one
  // buffer per worker thread: the reply is sent before the thread takes its
  // next request, so the data is never copied again.
  static Result<std::span<const uint8_t>> read_at(int fd, uint64_t offset, uint32_t size) {
    thread_local std::vector<uint8_t> buffer;
    if (buffer.size() < size) buffer.resize(size);
    size_t done = 0;
    while (done < size) {
      ssize_t n = pread(fd, buffer.data() + done, size - done, off_t(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        if (done == 0) return last_error();
        break;
      }
      if (n == 0) break;
      done += size_t(n);
    }
    return std::span<const uint8_t>(buffer.data(), done);
  }

  Result<WriteReply> Write(const WriteRequest& r) override {
    HandleRef h = handle(r.handle);
    if (!h || h->dir) return Errno{EBADF};
    size_t done = 0;
    const auto& data = r.data.data;
    while (done < data.size()) {
      ssize_t n = pwrite(h->fd, data.data() + done, data.size() - done, off_t(r.offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        if (done == 0) return last_error();
        break;
      }
      done += size_t(n);
    }
    return WriteReply{uint32_t(done)};
  }

  Result<Empty> Flush(const FlushRequest& r) override {
    HandleRef h = handle(r.handle);
    if (!h) return Errno{EBADF};
    // POSIX: closing any descriptor of a file releases all of that owner's
    // record locks on it. The guest flushes on every close.
    std::lock_guard lock(locks_mutex_);
    auto it = lock_fds_.find({h->node->id.value, r.lock_owner});
    if (it != lock_fds_.end()) {
      close(it->second);
      lock_fds_.erase(it);
      if (state_) state_->owner_gone(h->node->id.value, r.lock_owner);
    }
    return Empty{};
  }

  Result<Empty> Release(const HandleRequest& r) override {
    HandleRef h;
    {
      std::lock_guard lock(handles_mutex_);
      auto it = handles_.find(r.handle.value);
      if (it == handles_.end()) return Errno{EBADF};
      h = std::move(it->second);
      handles_.erase(it);
    }
    if (state_) state_->handle_gone(r.handle.value);
    // Open-file-description (OFD) locks are owned by the guest's open file,
    // which ends here; the guest kernel sends no unlock for them. A process
    // owner's locks were already dropped by the FLUSH of its last close.
    std::lock_guard lock(locks_mutex_);
    for (uint64_t owner : h->lock_owners) {
      auto it = lock_fds_.find({h->node->id.value, owner});
      if (it == lock_fds_.end()) continue;
      close(it->second);
      lock_fds_.erase(it);
      if (state_) state_->owner_gone(h->node->id.value, owner);
    }
    return Empty{};
  }

  Result<Empty> Fsync(const FsyncRequest& r) override {
    HandleRef h = handle(r.handle);
    if (!h) return Errno{EBADF};
    if ((r.datasync ? fdatasync(h->fd) : fsync(h->fd)) != 0) return last_error();
    return Empty{};
  }

  // ---- directories

  Result<OpenReply> Opendir(const OpenRequest& r) override {
    NodeRef node = nodes_.get(r.node);
    if (!node) return Errno{ESTALE};
    if (!S_ISDIR(node->type)) return Errno{ENOTDIR};
    int fd = confine::reopen_node(node->fd, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return Errno{-fd};
    DIR* dir = fdopendir(fd);
    if (!dir) {
      int error = errno;
      close(fd);
      return Errno{error};
    }
    auto result = add_handle(fd, node, O_RDONLY | O_DIRECTORY, dir);
    if (!result.ok()) closedir(dir);
    return result;
  }

  Result<ReaddirReply> Readdir(const ReaddirRequest& r) override {
    ReaddirReply reply;
    HandleRef h = directory_handle(r);
    if (!h || !h->dir) return Errno{errno == 0 ? EBADF : errno};
    auto status = read_directory(h, r, dirent_cost, [&](dirent* d, uint64_t next) {
      reply.entries.push_back(
          DirEntry{d->d_ino, next, wire_dirent_type(d->d_type), EntryName{d->d_name}});
      return true;
    });
    if (status != 0) return Errno{status};
    return reply;
  }

  Result<ReaddirplusReply> Readdirplus(const ReaddirRequest& r) override {
    ReaddirplusReply reply;
    HandleRef h = directory_handle(r);
    if (!h || !h->dir) return Errno{errno == 0 ? EBADF : errno};
    auto status = read_directory(h, r, direntplus_cost, [&](dirent* d, uint64_t next) {
      DirEntryPlus item;
      item.dirent = DirEntry{d->d_ino, next, wire_dirent_type(d->d_type), EntryName{d->d_name}};
      std::string_view name = d->d_name;
      if (name == "." || name == "..") {
        item.entry.attr.inode = d->d_ino;  // node 0: no lookup is counted
        item.entry.attr.mode = wire_mode(mode_t(DTTOIF(d->d_type)));
      } else {
        auto found = lookup_in(*h->node, std::string(name));
        if (!found.ok()) return found.error() != ENOENT;  // vanished meanwhile: skip it
        item.entry = found.value();
      }
      reply.entries.push_back(std::move(item));
      return true;
    });
    if (status != 0) {
      // Entries already looked up are handed back: the guest never sees them.
      for (auto& item : reply.entries)
        if (item.entry.node.value) nodes_.forget(item.entry.node, 1);
      return Errno{status};
    }
    return reply;
  }

  Result<Empty> Releasedir(const HandleRequest& r) override { return Release(r); }

  // ---- file system

  Result<StatfsReply> Statfs(const NodeRequest& r) override {
    NodeRef node = nodes_.get(r.node);
    if (!node) return Errno{ESTALE};
    struct statvfs s;
    if (fstatvfs(node->fd, &s) != 0) return last_error();
    return StatfsReply{
        s.f_blocks, s.f_bfree,           s.f_bavail,           s.f_files,
        s.f_ffree,  uint32_t(s.f_bsize), uint32_t(s.f_frsize), uint32_t(s.f_namemax)};
  }

  Result<Empty> Access(const AccessRequest& r) override {
    NodeRef node = nodes_.get(r.node);
    if (!node) return Errno{ESTALE};
    std::optional<int> mask = canon::access_mask_from_wire(r.mask);
    if (!mask) return Errno{EINVAL};
    if (syscall(SYS_faccessat2, node->fd, "", *mask, AT_EMPTY_PATH) != 0) return last_error();
    return Empty{};
  }

  // ---- extended attributes (regular files and directories only: the
  // /proc/self/fd path of an O_PATH fd of anything else is not usable)

  Result<XattrReply> Getxattr(const GetxattrRequest& r) override {
    NodeRef node = nodes_.get(r.node);
    if (!node) return Errno{ESTALE};
    if (!xattr_capable(*node) || r.name.value == kOwnerXattr)
      return Errno{canon::no_attribute_errno()};
    std::string path = confine::fd_path(node->fd);
    if (r.size == 0) {
      ssize_t n = getxattr(path.c_str(), r.name.value.c_str(), nullptr, 0);
      if (n < 0) return last_error();
      return XattrReply{uint32_t(n), {}};
    }
    std::string value(std::min<size_t>(r.size, kMaxXattrValueBytes), '\0');
    ssize_t n = getxattr(path.c_str(), r.name.value.c_str(), value.data(), value.size());
    if (n < 0) return last_error();
    value.resize(size_t(n));
    return XattrReply{uint32_t(n), XattrValue{std::move(value)}};
  }

  Result<Empty> Setxattr(const SetxattrRequest& r) override {
    NodeRef node = nodes_.get(r.node);
    if (!node) return Errno{ESTALE};
    if (!xattr_capable(*node) || r.name.value == kOwnerXattr) return Errno{EPERM};
    std::optional<int> flags = canon::xattr_flags_from_wire(r.flags);
    if (!flags) return Errno{EINVAL};
    if (setxattr(confine::fd_path(node->fd).c_str(), r.name.value.c_str(), r.value.value.data(),
                 r.value.value.size(), *flags) != 0)
      return last_error();
    return Empty{};
  }

  Result<XattrReply> Listxattr(const ListxattrRequest& r) override {
    NodeRef node = nodes_.get(r.node);
    if (!node) return Errno{ESTALE};
    if (!xattr_capable(*node)) return XattrReply{};
    std::string path = confine::fd_path(node->fd);
    // The whole list, then without fsout's own name (which guests never see).
    std::string names;
    for (;;) {
      ssize_t size = listxattr(path.c_str(), nullptr, 0);
      if (size < 0) return last_error();
      names.assign(size_t(size), '\0');
      ssize_t n = listxattr(path.c_str(), names.data(), names.size());
      if (n >= 0) {
        names.resize(size_t(n));
        break;
      }
      if (errno != ERANGE) return last_error();  // grew meanwhile: again
    }
    std::string shown;
    for (size_t at = 0; at < names.size();) {
      size_t end = names.find('\0', at);
      if (end == std::string::npos) end = names.size();
      if (names.compare(at, end - at, kOwnerXattr) != 0) shown.append(names, at, end - at + 1);
      at = end + 1;
    }
    if (r.size == 0) return XattrReply{uint32_t(shown.size()), {}};
    if (shown.size() > std::min<size_t>(r.size, kMaxXattrValueBytes)) return Errno{ERANGE};
    return XattrReply{uint32_t(shown.size()), XattrValue{std::move(shown)}};
  }

  Result<Empty> Removexattr(const RemovexattrRequest& r) override {
    NodeRef node = nodes_.get(r.node);
    if (!node) return Errno{ESTALE};
    if (!xattr_capable(*node) || r.name.value == kOwnerXattr)
      return Errno{canon::no_attribute_errno()};
    if (removexattr(confine::fd_path(node->fd).c_str(), r.name.value.c_str()) != 0)
      return last_error();
    return Empty{};
  }

  // ---- space and seeking

  Result<Empty> Fallocate(const FallocateRequest& r) override {
    HandleRef h = handle(r.handle);
    if (!h || h->dir) return Errno{EBADF};
    std::optional<int> mode = canon::fallocate_mode_from_wire(r.mode);
    if (!mode) return Errno{EOPNOTSUPP};
    if (r.offset > uint64_t(INT64_MAX) || r.length > uint64_t(INT64_MAX)) return Errno{EFBIG};
    if (fallocate(h->fd, *mode, off_t(r.offset), off_t(r.length)) != 0) return last_error();
    return Empty{};
  }

  Result<LseekReply> Lseek(const LseekRequest& r) override {
    HandleRef h = handle(r.handle);
    if (!h || h->dir) return Errno{EBADF};
    // SET/CUR/END are answered by the guest; only DATA and HOLE need the host.
    if (r.whence != kWhenceData && r.whence != kWhenceHole) return Errno{EINVAL};
    std::optional<int> whence = canon::whence_from_wire(r.whence);
    if (!whence) return Errno{EINVAL};
    off_t at = lseek(h->fd, off_t(r.offset), *whence);
    if (at < 0) return last_error();
    return LseekReply{uint64_t(at)};
  }

  // ---- locks. POSIX record locks belong to a (guest) lock owner; the host
  // holds them as open-file-description locks on one fd per (node, owner), so
  // owners conflict with each other but never with themselves, and FLUSH by
  // the owner drops them all, as close() does.

  Result<LockReply> Getlk(const GetlkRequest& r) override {
    HandleRef h = handle(r.handle);
    if (!h || h->dir) return Errno{EBADF};
    std::optional<struct flock> wanted = to_flock(r.lock);
    if (!wanted) return Errno{EINVAL};
    struct flock fl = *wanted;
    int fd = lock_fd(*h, r.owner);
    if (fd < 0) return Errno{-fd};
    if (fcntl(fd, F_OFD_GETLK, &fl) != 0) return last_error();
    Lock lock;
    std::optional<uint32_t> type = canon::lock_type_to_wire(fl.l_type);
    if (!type) return Errno{EIO};  // F_RDLCK, F_WRLCK and F_UNLCK all have rows
    lock.type = *type;
    if (fl.l_type != F_UNLCK) {
      lock.start = uint64_t(fl.l_start);
      lock.end = fl.l_len == 0 ? UINT64_MAX : uint64_t(fl.l_start + fl.l_len - 1);
      lock.pid = owner_pid(h->node->id, fl);
    }
    return LockReply{lock};
  }

  Result<Empty> Setlk(const SetlkRequest& r) override {
    HandleRef h = handle(r.handle);
    if (!h || h->dir) return Errno{EBADF};
    std::optional<struct flock> wanted = to_flock(r.lock);
    if (!wanted) return Errno{EINVAL};
    struct flock fl = *wanted;
    int fd = lock_fd(*h, r.owner);
    if (fd < 0) return Errno{-fd};
    if (fl.l_type != F_UNLCK) remember_owner(h->node->id, r.owner, r.lock);
    Result<Empty> result = Empty{};
    if (!r.wait)
      result = fcntl(fd, F_OFD_SETLK, &fl) == 0 ? Result<Empty>(Empty{}) : last_error();
    else
      result = wait_for([&] { return fcntl(fd, F_OFD_SETLKW, &fl); });
    if (result.ok() && state_)
      state_->lock_applied(h->node->id.value, r.owner, r.handle.value, r.lock.start,
                           std::min(r.lock.end, uint64_t(LLONG_MAX)), fl.l_type);
    return result;
  }

  Result<Empty> Flock(const FlockRequest& r) override {
    HandleRef h = handle(r.handle);
    if (!h) return Errno{EBADF};
    int operation = (r.operation & kFlockShared)      ? LOCK_SH
                    : (r.operation & kFlockExclusive) ? LOCK_EX
                    : (r.operation & kFlockUnlock)    ? LOCK_UN
                                                      : -1;
    if (operation < 0) return Errno{EINVAL};
    Result<Empty> result = Empty{};
    if ((r.operation & kFlockNonblock) || operation == LOCK_UN)
      result = flock(h->fd, operation | ((r.operation & kFlockNonblock) ? LOCK_NB : 0)) == 0
                   ? Result<Empty>(Empty{})
                   : last_error();
    else
      result = wait_for([&] { return flock(h->fd, operation); });
    if (result.ok() && state_) state_->flock_changed(r.handle.value, operation);
    return result;
  }

  void cancel_waits() override {
    std::lock_guard lock(waiters_mutex_);
    cancelled_ = true;
    for (pthread_t thread : waiters_) pthread_kill(thread, SIGURG);
  }

 private:
  HandleRef handle(HandleId id) {
    if (id.value == 0) return nullptr;
    std::lock_guard lock(handles_mutex_);
    auto it = handles_.find(id.value);
    return it == handles_.end() ? nullptr : it->second;
  }

  // The handle a READDIR names, or for handle 0 the node's directory opened
  // for this one request (guests whose kernel opens directories without
  // asking, FUSE's zero-message opendir). nullptr with errno set on failure.
  HandleRef directory_handle(const ReaddirRequest& r) {
    errno = 0;
    if (r.handle.value != 0 || r.node.value == 0) return handle(r.handle);
    NodeRef node = nodes_.get(r.node);
    if (!node) return errno = ESTALE, nullptr;
    if (!S_ISDIR(node->type)) return errno = ENOTDIR, nullptr;
    int fd = confine::reopen_node(node->fd, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return errno = -fd, nullptr;
    auto h = std::make_shared<Handle>();
    h->fd = fd;
    h->node = std::move(node);
    h->dir = fdopendir(fd);
    if (!h->dir) return nullptr;  // errno from fdopendir; ~Handle closes fd
    return h;
  }

  // Registers an open file (or, with `dir`, a directory stream on `fd`); `flags` as opened.
  Result<OpenReply> add_handle(int fd, NodeRef node, int flags, DIR* dir = nullptr) {
    auto h = std::make_shared<Handle>();
    h->fd = fd;
    h->node = std::move(node);
    h->access = flags & O_ACCMODE;
    h->flags = flags;
    h->dir = dir;
    const uint64_t node_id = h->node->id.value;
    uint64_t id;
    {
      std::lock_guard lock(handles_mutex_);
      if (handles_.size() >= limits_.max_handles) {
        h->fd = -1;
        h->dir = nullptr;
        if (!dir) close(fd);
        return Errno{EMFILE};
      }
      id = next_handle_++;
      handles_[id] = std::move(h);
    }
    if (state_) state_->handle_added(id, node_id, flags, dir != nullptr);
    return OpenReply{HandleId{id}};
  }

  Result<EntryReply> lookup_in(Node& parent, const std::string& name) {
    if (name.size() > NAME_MAX) return Errno{ENAMETOOLONG};
    if (!S_ISDIR(parent.type)) return Errno{ENOTDIR};
    int fd = confine::open_beneath(parent.fd, name, O_PATH);
    if (fd < 0) return Errno{-fd};
    struct stat st;
    if (fstat(fd, &st) != 0) {
      int error = errno;
      close(fd);
      return Errno{error};
    }
    NodeRef node = nodes_.add_lookup(fd, st);
    if (!node) return Errno{ENFILE};
    nodes_.note_name(node, parent.id, name);
    save_node(*node, parent.id, name);
    return EntryReply{node->id, 0, attr_of(node->fd, st)};
  }

  // After a creating call: look the new name up (and, when squashing, note
  // who made it).
  Result<EntryReply> created(Node& parent, const std::string& name, const Caller& caller) {
    int fd = confine::open_beneath(parent.fd, name, O_PATH);
    if (fd < 0) return Errno{-fd};
    if (ids_->squash()) record_guest_owner(parent, fd, caller);
    struct stat st;
    if (fstat(fd, &st) != 0) {
      int error = errno;
      close(fd);
      return Errno{error};
    }
    NodeRef node = nodes_.add_lookup(fd, st);
    if (!node) return Errno{ENFILE};
    nodes_.note_name(node, parent.id, name);
    save_node(*node, parent.id, name);
    return EntryReply{node->id, 0, attr_of(node->fd, st)};
  }

  // Attributes as the guest sees them: owners through the id map.
  Attr attr_of(int fd, const struct stat& st) {
    Attr a = to_attr(st);
    if (orphans_ > 0 && S_ISREG(st.st_mode) && a.nlink > 0) {
      // The orphan directory's link is ours, not the guest's: it unlinked the file.
      NodeRef node = nodes_.find_by_inode(st.st_dev, st.st_ino);
      std::lock_guard lock(orphans_mutex_);
      if (node && !node->orphan.empty()) --a.nlink;
    }
    if (ids_->identity()) return a;
    if (ids_->squash()) {
      if (auto owner = guest_owner(fd)) {
        a.uid = owner->first;
        a.gid = owner->second;
      }
      return a;
    }
    a.uid = ids_->uid_to_guest(st.st_uid);
    a.gid = ids_->gid_to_guest(st.st_gid);
    return a;
  }

  // SECURITY: the guest names host ids only through the map; an id the map
  // does not cover cannot be given away (EINVAL, as chown in a user
  // namespace).
  int change_owner(Node& node, const SetattrRequest& r) {
    if (ids_->squash()) {
      // The host owner stays the squashed user; the guest owner is noted.
      struct stat st;
      if (!stat_node(node.fd, st)) return errno;
      auto owner = guest_owner(node.fd).value_or(std::pair{st.st_uid, st.st_gid});
      if (r.valid & kSetUid) owner.first = r.uid;
      if (r.valid & kSetGid) owner.second = r.gid;
      return set_guest_owner(node.fd, owner);
    }
    uid_t uid = uid_t(-1);
    gid_t gid = gid_t(-1);
    if (r.valid & kSetUid) {
      auto host = ids_->uid_to_host(r.uid);
      if (!host) return EINVAL;
      uid = *host;
    }
    if (r.valid & kSetGid) {
      auto host = ids_->gid_to_host(r.gid);
      if (!host) return EINVAL;
      gid = *host;
    }
    if (fchownat(node.fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) return errno;
    return 0;
  }

  // Squash mode keeps each object's guest owner in kOwnerXattr ("UID:GID").
  std::optional<std::pair<uint32_t, uint32_t>> guest_owner(int fd) {
    char text[32];
    ssize_t n = getxattr(confine::fd_path(fd).c_str(), kOwnerXattr, text, sizeof(text) - 1);
    if (n <= 0) return std::nullopt;
    text[n] = 0;
    unsigned uid, gid;
    if (std::sscanf(text, "%u:%u", &uid, &gid) != 2) return std::nullopt;
    return std::pair{uint32_t(uid), uint32_t(gid)};
  }

  int set_guest_owner(int fd, std::pair<uint32_t, uint32_t> owner) {
    std::string text = std::to_string(owner.first) + ":" + std::to_string(owner.second);
    if (setxattr(confine::fd_path(fd).c_str(), kOwnerXattr, text.data(), text.size(), 0) != 0)
      return errno;
    return 0;
  }

  // A new object's guest owner: the caller, with the group of a setgid
  // parent directory (as the kernel does for the host owner).
  void record_guest_owner(Node& parent, int fd, const Caller& caller) {
    std::pair<uint32_t, uint32_t> owner{caller.uid, caller.gid};
    struct stat parent_st;
    if (stat_node(parent.fd, parent_st) && (parent_st.st_mode & S_ISGID))
      owner.second = attr_of(parent.fd, parent_st).gid;
    set_guest_owner(fd, owner);
  }

  Result<Empty> remove(const RemoveRequest& r, int flags) {
    NodeRef parent = nodes_.get(r.parent);
    if (!parent) return Errno{ESTALE};
    if (r.name.value.size() > NAME_MAX) return Errno{ENAMETOOLONG};
    if (hidden(r.parent, r.name.value)) return Errno{ENOENT};
    if (flags == 0 && keep_if_open(*parent, r.name.value)) return Empty{};
    if (unlinkat(parent->fd, r.name.value.c_str(), flags) != 0) return last_error();
    return Empty{};
  }

  static bool xattr_capable(const Node& node) { return S_ISREG(node.type) || S_ISDIR(node.type); }

  // Walks the directory from r.offset, handing entries to `emit` while their
  // cost fits the budget. `emit` returns false to skip an entry.
  template <class Cost, class Emit>
  int read_directory(const HandleRef& h, const ReaddirRequest& r, Cost cost, Emit emit) {
    std::lock_guard lock(h->dir_mutex);
    if (r.offset != h->position) {
      if (r.offset == 0)
        rewinddir(h->dir);
      else
        seekdir(h->dir, long(r.offset));
      h->position = r.offset;
    }
    size_t used = 0;
    for (;;) {
      errno = 0;
      dirent* d = readdir(h->dir);
      if (!d) return errno == 0 ? 0 : errno;
      if (h->node->id == kRootNode && std::strcmp(d->d_name, kOrphanDir) == 0) {
        h->position = uint64_t(d->d_off);
        continue;
      }
      size_t need = cost(strlen(d->d_name));
      if (used + need > r.size) {
        // Does not fit: step back so the next call starts with this entry.
        seekdir(h->dir, long(h->position));
        return 0;
      }
      if (emit(d, uint64_t(d->d_off))) used += need;
      h->position = uint64_t(d->d_off);
    }
  }

  // The host's form of a guest's lock range; nullopt (EINVAL) for a type without a row, a
  // range that ends before it starts, or a start past what off_t holds.
  static std::optional<struct flock> to_flock(const Lock& lock) {
    std::optional<int> type = canon::lock_type_from_wire(lock.type);
    if (!type || lock.end < lock.start || lock.start > uint64_t(LLONG_MAX)) return std::nullopt;
    struct flock fl {};
    fl.l_type = short(*type);
    fl.l_whence = SEEK_SET;
    fl.l_start = off_t(lock.start);
    fl.l_len = (lock.end == UINT64_MAX || lock.end >= uint64_t(LLONG_MAX))
                   ? 0
                   : off_t(lock.end - lock.start + 1);
    return fl;
  }

  int lock_fd(Handle& h, uint64_t owner) {
    std::lock_guard lock(locks_mutex_);
    auto key = std::make_pair(h.node->id.value, owner);
    h.lock_owners.insert(owner);
    if (auto it = lock_fds_.find(key); it != lock_fds_.end()) return it->second;
    int fd = confine::reopen_node(h.node->fd, O_RDWR);
    if (fd < 0) fd = confine::reopen_node(h.node->fd, h.access);
    if (fd < 0) return fd;
    lock_fds_[key] = fd;
    return fd;
  }

  // The guest pid to report for a conflicting lock: the owner, other than
  // the asker, whose last lock request covers the conflicting range.
  void remember_owner(NodeId node, uint64_t owner, const Lock& lock) {
    std::lock_guard guard(locks_mutex_);
    owner_pids_[{node.value, owner}] = lock.pid;
  }
  uint32_t owner_pid(NodeId node, const struct flock&) {
    std::lock_guard guard(locks_mutex_);
    uint32_t pid = 0;
    for (auto& [key, fd] : lock_fds_) {
      if (key.first != node.value) continue;
      struct flock probe {};
      probe.l_type = F_WRLCK;
      probe.l_whence = SEEK_SET;
      // An owner that holds any lock shows it to a probe from another fd;
      // the first fd whose own locks are not seen by itself is the holder.
      if (fcntl(fd, F_OFD_GETLK, &probe) == 0 && probe.l_type == F_UNLCK) {
        auto it = owner_pids_.find(key);
        if (it != owner_pids_.end()) pid = it->second;
      }
    }
    return pid;
  }

  // Runs a blocking lock call on this thread, registered so that the session
  // can interrupt it (SIGURG, installed without SA_RESTART) when it ends.
  template <class Call>
  Result<Empty> wait_for(Call call) {
    {
      std::lock_guard lock(waiters_mutex_);
      if (cancelled_) return Errno{EINTR};
      if (waiters_.size() >= limits_.max_lock_waiters) return Errno{ENOLCK};
      waiters_.insert(pthread_self());
    }
    int rc;
    do {
      rc = call();
    } while (rc != 0 && errno == EINTR && !cancelled_.load());
    int error = errno;
    {
      std::lock_guard lock(waiters_mutex_);
      waiters_.erase(pthread_self());
    }
    if (rc != 0) return Errno{error};
    return Empty{};
  }

  NodeTable nodes_;
  Limits limits_;
  std::shared_ptr<const IdMap> ids_;
  std::mutex handles_mutex_;  // leaf lock
  std::unordered_map<uint64_t, HandleRef> handles_;
  uint64_t next_handle_ = 1;
  std::mutex locks_mutex_;  // leaf lock
  std::map<std::pair<uint64_t, uint64_t>, int> lock_fds_;
  std::map<std::pair<uint64_t, uint64_t>, uint32_t> owner_pids_;
  std::mutex waiters_mutex_;
  std::set<pthread_t> waiters_;
  std::atomic<bool> cancelled_ = false;
  std::atomic<int64_t> last_room_made_ms_{0};  // make_room(): steady clock, ms

  // ---- restarts (session_state.h)
  int root_fd_;  // nodes_ owns it
  std::unique_ptr<StateLog> state_;
  bool keep_state_ = false;
  // Files unlinked (or renamed over) while the guest has them open are moved to this
  // directory at the export's root instead, which the guest never sees: after a restart
  // they are opened again from there. Each goes when its node does.
  static constexpr const char* kOrphanDir = ".fsout-orphans";
  std::mutex orphans_mutex_;  // leaf lock; guards orphan_dir_ and Node::orphan
  int orphan_dir_ = -1;
  std::atomic<int> orphans_{0};

  bool hidden(NodeId parent, const std::string& name) const {
    return state_ && parent == kRootNode && name == kOrphanDir;
  }

  void save_node(Node& node, NodeId parent, const std::string& name) {
    if (!state_ || node.saved.exchange(true)) return;
    state_->node_added(node.id.value, node.inode, parent.value, name,
                       node.handle.empty() ? file_handle_key(node.fd) : node.handle);
  }

  void dropped(const NodeRef& node) {
    if (!state_) return;
    unlink_orphan(*node);
    state_->node_gone(node->id.value);
  }

  void unlink_orphan(Node& node) {
    std::lock_guard lock(orphans_mutex_);
    if (node.orphan.empty()) return;
    unlinkat(orphan_dir_, node.orphan.c_str(), 0);
    node.orphan.clear();
    if (--orphans_ == 0) {  // the host's directory is left as the guest sees it
      unlinkat(root_fd_, kOrphanDir, AT_REMOVEDIR);
      close(orphan_dir_);
      orphan_dir_ = -1;
    }
  }

  int orphan_dir_locked() {
    if (orphan_dir_ >= 0) return orphan_dir_;
    int fd = confine::open_beneath(root_fd_, kOrphanDir, O_PATH | O_DIRECTORY);
    if (fd == -ENOENT) {
      mkdirat(root_fd_, kOrphanDir, 0700);
      fd = confine::open_beneath(root_fd_, kOrphanDir, O_PATH | O_DIRECTORY);
    }
    if (fd >= 0) orphan_dir_ = fd;
    return orphan_dir_;
  }

  // Before `name` in `parent` is unlinked or replaced: when it is the last name of a regular
  // file this session has open, it is moved to the orphan directory instead (true: done).
  bool keep_if_open(Node& parent, const std::string& name) {
    if (!state_) return false;
    struct stat st;
    if (fstatat(parent.fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode) ||
        st.st_nlink != 1)
      return false;
    NodeRef node;
    {
      std::lock_guard lock(handles_mutex_);
      for (auto& [id, h] : handles_)
        if (h->node->device == st.st_dev && h->node->inode == st.st_ino) node = h->node;
    }
    if (!node) return false;
    std::lock_guard lock(orphans_mutex_);
    if (!node->orphan.empty()) return false;
    int dir = orphan_dir_locked();
    if (dir < 0) return false;
    std::string orphan = state_->token() + "." + std::to_string(node->id.value);
    if (renameat(parent.fd, name.c_str(), dir, orphan.c_str()) != 0) return false;  // EXDEV
    node->orphan = orphan;
    ++orphans_;
    state_->node_orphaned(node->id.value, orphan);
    return true;
  }

  // An O_PATH fd of what a saved file-handle key names on the export's file system; -1 if
  // it names nothing there any more.
  int open_by_key(const std::string& key) const {
    if (key.size() < sizeof(int) || key.size() > sizeof(int) + MAX_HANDLE_SZ) return -1;
    struct {
      file_handle header;
      unsigned char bytes[MAX_HANDLE_SZ];
    } handle;
    std::memcpy(&handle.header.handle_type, key.data(), sizeof(int));
    handle.header.handle_bytes = unsigned(key.size() - sizeof(int));
    std::memcpy(handle.header.f_handle, key.data() + sizeof(int), key.size() - sizeof(int));
    return open_by_handle_at(root_fd_, &handle.header, O_PATH | O_CLOEXEC);
  }

  // SECURITY: a directory opened by handle must lie inside the export (its ".." chain
  // reaches the export's root), or the guest would hold a subtree the host moved out of it
  // while no daemon ran. A file is the very inode the guest held, as a running daemon's
  // node would still be.
  bool inside_export(int fd) const {
    struct stat st, root;
    if (fstat(fd, &st) != 0 || fstat(root_fd_, &root) != 0) return false;
    if (!S_ISDIR(st.st_mode)) return st.st_dev == root.st_dev;
    int at = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    for (int depth = 0; at >= 0 && depth < 4096; ++depth) {
      struct stat here;
      if (fstat(at, &here) != 0) break;
      if (here.st_dev == root.st_dev && here.st_ino == root.st_ino) {
        close(at);
        return true;
      }
      int up = openat(at, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
      struct stat above;
      bool top = up < 0 || fstat(up, &above) != 0 ||
                 (above.st_dev == here.st_dev && above.st_ino == here.st_ino);
      close(at);
      at = up;
      if (top) break;
    }
    if (at >= 0) close(at);
    return false;
  }
};

void Passthrough::restore(const SavedState& saved, std::string& report) {
  size_t lost_nodes = 0, lost_handles = 0, lost_locks = 0;
  std::map<uint64_t, NodeRef> opened{{kRootNode.value, nodes_.get(kRootNode)}};
  // By handle first; by the orphan name or the name in its (restored) parent when the file
  // system has no usable handles or the daemon may not open by handle (not root).
  std::function<NodeRef(uint64_t, int)> open_node = [&](uint64_t id, int depth) -> NodeRef {
    if (auto it = opened.find(id); it != opened.end()) return it->second;
    auto saved_it = saved.nodes.find(id);
    if (saved_it == saved.nodes.end() || depth > 4096) return nullptr;
    const SavedNode& entry = saved_it->second;
    struct stat st;
    auto usable = [&](int& fd) {
      if (fd < 0) return false;
      if (fstat(fd, &st) == 0 && st.st_ino == entry.inode && inside_export(fd)) return true;
      close(fd);
      fd = -1;
      return false;
    };
    int fd = open_by_key(entry.handle);
    if (!usable(fd) && !entry.orphan.empty()) {
      std::lock_guard lock(orphans_mutex_);
      if (int dir = orphan_dir_locked(); dir >= 0)
        fd = confine::open_beneath(dir, entry.orphan, O_PATH);
    }
    if (!usable(fd) && !entry.name.empty())
      if (NodeRef parent = open_node(entry.parent, depth + 1))
        fd = confine::open_beneath(parent->fd, entry.name, O_PATH);
    NodeRef node;
    if (usable(fd)) node = nodes_.restore(NodeId{id}, fd, st, entry.handle);
    if (node) {
      nodes_.note_name(node, NodeId{entry.parent}, entry.name);
      if (!entry.orphan.empty()) {
        std::lock_guard lock(orphans_mutex_);
        node->orphan = entry.orphan;
        ++orphans_;
      }
    }
    opened[id] = node;
    return node;
  };
  for (auto& [id, entry] : saved.nodes)
    if (!open_node(id, 0)) ++lost_nodes;
  for (auto& [id, entry] : saved.handles) {
    NodeRef node = opened.count(entry.node) ? opened[entry.node] : nullptr;
    const int flags = entry.flags & ~(O_CREAT | O_EXCL | O_TRUNC);
    int fd = node ? confine::reopen_node(node->fd, flags) : -1;
    if (fd < 0) {
      ++lost_handles;
      continue;
    }
    auto h = std::make_shared<Handle>();
    h->fd = fd;
    h->node = node;
    h->access = flags & O_ACCMODE;
    h->flags = flags;
    if (entry.directory && !(h->dir = fdopendir(fd))) {
      ++lost_handles;
      continue;
    }
    if (entry.flock && flock(fd, entry.flock | LOCK_NB) != 0) ++lost_locks;
    std::lock_guard lock(handles_mutex_);
    handles_[id] = h;
    next_handle_ = std::max(next_handle_, id + 1);
  }
  for (auto& [key, locks] : saved.locks) {
    HandleRef h = handle(HandleId{locks.handle});
    int fd = h ? lock_fd(*h, key.second) : -1;
    for (auto& [start, rest] : locks.ranges) {
      struct flock fl {};
      fl.l_type = rest.second;
      fl.l_whence = SEEK_SET;
      fl.l_start = off_t(start);
      fl.l_len = rest.first >= uint64_t(LLONG_MAX) ? 0 : off_t(rest.first - start + 1);
      if (fd < 0 || fcntl(fd, F_OFD_SETLK, &fl) != 0) ++lost_locks;
    }
  }
  if (lost_nodes || lost_handles || lost_locks)
    report = std::to_string(lost_nodes) + " nodes, " + std::to_string(lost_handles) +
             " open files and " + std::to_string(lost_locks) +
             " locks could not be had again (gone, or taken by a host process meanwhile)";
  else
    report = std::to_string(saved.nodes.size()) + " nodes, " +
             std::to_string(saved.handles.size()) + " open files, " +
             std::to_string(saved.locks.size()) + " lock owners held again";
}

}  // namespace

std::unique_ptr<FileSystem> restore_passthrough(int root_fd, Limits limits,
                                                std::shared_ptr<const IdMap> ids, int state_dir,
                                                const std::string& token, const SavedState& saved,
                                                std::string& report) {
  struct stat st;
  if (fstat(root_fd, &st) != 0 || saved.root_device != uint64_t(st.st_dev) ||
      saved.root_inode != uint64_t(st.st_ino)) {
    report = "saved for another export";
    return nullptr;
  }
  auto log = StateLog::reopen(state_dir, token, saved);
  int fd = fcntl(root_fd, F_DUPFD_CLOEXEC, 0);
  if (!log || fd < 0) {
    if (fd >= 0) close(fd);
    report = std::string("cannot rewrite it: ") + std::strerror(errno);
    return nullptr;
  }
  if (!ids) ids = std::make_shared<IdMap>();
  auto fs = std::make_unique<Passthrough>(fd, st, limits, std::move(ids), std::move(log));
  fs->restore(saved, report);
  return fs;
}

std::unique_ptr<FileSystem> make_passthrough(int root_fd, Limits limits,
                                             std::shared_ptr<const IdMap> ids,
                                             std::unique_ptr<StateLog> state) {
  int fd = fcntl(root_fd, F_DUPFD_CLOEXEC, 0);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) return nullptr;
  if (!ids) ids = std::make_shared<IdMap>();
  return std::make_unique<Passthrough>(fd, st, limits, std::move(ids), std::move(state));
}

}  // namespace fsout::host
