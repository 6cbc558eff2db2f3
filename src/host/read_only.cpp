// A read-only export as a wrapper: the passthrough back end knows nothing of it.
#include <fcntl.h>

#include <cerrno>

#include "host/file_system.h"
#include "protocol/canonical.h"

namespace fsout::host {
namespace {

using namespace protocol;

class ReadOnly final : public FileSystem {
 public:
  explicit ReadOnly(std::unique_ptr<FileSystem> inner) : inner_(std::move(inner)) {}

  Result<Attr> root_attr() override { return inner_->root_attr(); }
  void cancel_waits() override { inner_->cancel_waits(); }
  void track_changes() override { inner_->track_changes(); }
  void notifications_for(const HostChange& change, std::vector<NotifyMessage>& out) override {
    inner_->notifications_for(change, out);
  }
  void forget_everything(std::vector<NotifyMessage>& out) override {
    inner_->forget_everything(out);
  }
  void make_room(std::vector<NotifyMessage>& out) override { inner_->make_room(out); }
  bool short_of_nodes() const override { return inner_->short_of_nodes(); }
  Held held() override { return inner_->held(); }
  StateLog* state() override { return inner_->state(); }
  void keep_state() override { inner_->keep_state(); }
  Result<uint64_t> inode_of(NodeId parent, const std::string& name) override {
    return inner_->inode_of(parent, name);
  }
  std::optional<uint64_t> append_size(HandleId h) override { return inner_->append_size(h); }
  bool appended(HandleId h, uint64_t offset, std::span<const uint8_t> data) override {
    return inner_->appended(h, offset, data);
  }

  // Operations that only read pass through.
#define FSOUT_PASS(name, request, reply) \
  Result<reply> name(const request& r) override { return inner_->name(r); }
  FSOUT_PASS(Lookup, LookupRequest, EntryReply)
  FSOUT_PASS(Forget, ForgetRequest, Empty)
  FSOUT_PASS(Getattr, GetattrRequest, AttrReply)
  FSOUT_PASS(Readlink, NodeRequest, ReadlinkReply)
  FSOUT_PASS(Read, ReadRequest, DataReply)
  FSOUT_PASS(Flush, FlushRequest, Empty)
  FSOUT_PASS(Release, HandleRequest, Empty)
  FSOUT_PASS(Fsync, FsyncRequest, Empty)
  FSOUT_PASS(Opendir, OpenRequest, OpenReply)
  FSOUT_PASS(Readdir, ReaddirRequest, ReaddirReply)
  FSOUT_PASS(Readdirplus, ReaddirRequest, ReaddirplusReply)
  FSOUT_PASS(Releasedir, HandleRequest, Empty)
  FSOUT_PASS(Statfs, NodeRequest, StatfsReply)
  FSOUT_PASS(Getxattr, GetxattrRequest, XattrReply)
  FSOUT_PASS(Listxattr, ListxattrRequest, XattrReply)
  FSOUT_PASS(Lseek, LseekRequest, LseekReply)
  FSOUT_PASS(Getlk, GetlkRequest, LockReply)
  FSOUT_PASS(Setlk, SetlkRequest, Empty)
  FSOUT_PASS(Flock, FlockRequest, Empty)
#undef FSOUT_PASS

  // Operations that would change the export are refused.
#define FSOUT_REFUSE(name, request, reply) \
  Result<reply> name(const request&) override { return Errno{EROFS}; }
  FSOUT_REFUSE(Setattr, SetattrRequest, AttrReply)
  FSOUT_REFUSE(Symlink, SymlinkRequest, EntryReply)
  FSOUT_REFUSE(Mknod, MknodRequest, EntryReply)
  FSOUT_REFUSE(Mkdir, MkdirRequest, EntryReply)
  FSOUT_REFUSE(Unlink, RemoveRequest, Empty)
  FSOUT_REFUSE(Rmdir, RemoveRequest, Empty)
  FSOUT_REFUSE(Rename, RenameRequest, Empty)
  FSOUT_REFUSE(Link, LinkRequest, EntryReply)
  FSOUT_REFUSE(Create, CreateRequest, CreateReply)
  FSOUT_REFUSE(Write, WriteRequest, WriteReply)
  FSOUT_REFUSE(Setxattr, SetxattrRequest, Empty)
  FSOUT_REFUSE(Removexattr, RemovexattrRequest, Empty)
  FSOUT_REFUSE(Fallocate, FallocateRequest, Empty)
#undef FSOUT_REFUSE

  Result<OpenReply> Open(const OpenRequest& r) override {
    std::optional<int> flags = canonical::open_flags_from_wire(r.flags);
    if (!flags) return Errno{EINVAL};
    if ((*flags & O_ACCMODE) != O_RDONLY || (*flags & O_TRUNC)) return Errno{EROFS};
    return inner_->Open(r);
  }

  Result<OpenReadReply> OpenRead(const OpenReadRequest& r) override {
    std::optional<int> flags = canonical::open_flags_from_wire(r.flags);
    if (!flags) return Errno{EINVAL};
    if ((*flags & O_ACCMODE) != O_RDONLY || (*flags & O_TRUNC)) return Errno{EROFS};
    return inner_->OpenRead(r);
  }

  Result<Empty> Access(const AccessRequest& r) override {
    if (r.mask & canonical::kAccessWrite) return Errno{EROFS};
    return inner_->Access(r);
  }

 private:
  std::unique_ptr<FileSystem> inner_;
};

}  // namespace

std::unique_ptr<FileSystem> make_read_only(std::unique_ptr<FileSystem> inner) {
  return std::make_unique<ReadOnly>(std::move(inner));
}

}  // namespace fsout::host
