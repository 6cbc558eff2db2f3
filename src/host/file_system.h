// The back-end interface: one method per file operation of the protocol,
// generated from the operation list. A session owns one FileSystem; its state
// (nodes, handles, locks) lives and dies with that session.
#pragma once

#include <cerrno>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "host/session_state.h"
#include "protocol/messages.h"

namespace fsout::host {

// A change on the host, as the change watcher saw it. Objects are named by
// file-handle keys (node_table.h), so that matching costs no syscall.
struct HostChange {
  uint32_t events = 0;    // FAN_* bits
  std::string directory;  // handle key of the directory whose entry changed, or ""
  std::string name;       // that entry's name
  std::string object;     // handle key of the changed object, or ""
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;
#define FSOUT_METHOD(number, name, request, reply) \
  virtual Result<protocol::reply> name(const protocol::request& r) = 0;
  FSOUT_FILE_OPERATIONS(FSOUT_METHOD)
#undef FSOUT_METHOD
  // Attributes of the export's root, for HELLO.
  virtual Result<protocol::Attr> root_attr() = 0;
  // Wakes every request blocked in the back end (lock waits) so that the
  // session can end.
  virtual void cancel_waits() {}
  // Change notifications. track_changes() is called once, before any
  // request; then notifications_for() says what the guest must forget after
  // a host change, and forget_everything() what it must forget when change
  // events were lost.
  virtual void track_changes() {}
  virtual void notifications_for(const HostChange&, std::vector<protocol::NotifyMessage>&) {}
  virtual void forget_everything(std::vector<protocol::NotifyMessage>&) {}
  // When the daemon runs short of file descriptors (each node holds one), or
  // the session holds half of its node limit, asks the guest to forget its
  // oldest names, so that its kernel drops the inodes it does not use and
  // FORGETs them.
  virtual void make_room(std::vector<protocol::NotifyMessage>&) {}
  // The node table is nearly full: a request that adds a node may wait for
  // the guest's FORGETs, so it must not run on the thread that reads them.
  virtual bool short_of_nodes() const { return false; }

  // What the session holds, for the admin channel.
  struct Held {
    size_t nodes = 0, handles = 0;
  };
  virtual Held held() { return {}; }

  // Restarts (session_state.h). The session's state log, or null when it keeps none.
  virtual StateLog* state() { return nullptr; }
  // Leave the state for a later fsoutd when this FileSystem ends (a graceful stop); without
  // it the end of a session removes its state and its orphaned files.
  virtual void keep_state() {}
  // The inode `name` in directory `parent` names now: 0 when none, for working out whether
  // a request interrupted by a crash was performed.
  virtual Result<uint64_t> inode_of(protocol::NodeId, const std::string&) { return Errno{ENOSYS}; }
  // For a handle opened with O_APPEND, the file's size now (a WRITE through it is not
  // idempotent); nullopt for other handles.
  virtual std::optional<uint64_t> append_size(protocol::HandleId) { return std::nullopt; }
  // Whether `data` is in the handle's file at `offset` (an append that was performed).
  virtual bool appended(protocol::HandleId, uint64_t, std::span<const uint8_t>) { return false; }
};

struct Limits {
  size_t max_nodes = 1u << 20;   // node ids (each holds one O_PATH fd)
  size_t max_handles = 4096;     // open files and directories
  size_t max_lock_waiters = 64;  // blocked SETLKW/flock requests
};

// The real back end: performs every operation on the host directory `root_fd`
// (an O_PATH directory fd; the FileSystem takes its own duplicate).
// `ids` maps guest ids to host ids (null: identity).
class IdMap;
std::unique_ptr<FileSystem> make_passthrough(int root_fd, Limits limits,
                                             std::shared_ptr<const IdMap> ids = nullptr,
                                             std::unique_ptr<StateLog> state = nullptr);
// A session saved by an earlier fsoutd, opened again: its nodes (by file handle, or by
// name), open files and locks, under their old ids. Must run before the sandbox (opening
// by handle needs CAP_DAC_READ_SEARCH and open_by_handle_at, which the sandbox forbids).
// `saved` is the session's state as StateLog::load() read it, for this export.
// `report` says what could not be had again; nullptr when nothing of it could.
std::unique_ptr<FileSystem> restore_passthrough(int root_fd, Limits limits,
                                                std::shared_ptr<const IdMap> ids, int state_dir,
                                                const std::string& token, const SavedState& saved,
                                                std::string& report);

// A read-only export: refuses every operation that would change the export
// with EROFS, passes the rest to `inner`.
std::unique_ptr<FileSystem> make_read_only(std::unique_ptr<FileSystem> inner);

}  // namespace fsout::host
