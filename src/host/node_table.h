// The nodes a session has handed out. A node is an inode of the export, found
// by (st_dev, st_ino), held open as an O_PATH fd, and named to the guest by an
// opaque, increasing 64-bit id that is never reused within a session. Each
// successful LOOKUP-like reply adds one to the node's lookup count; FORGET
// subtracts (saturating at zero) and the node goes away at zero.
#pragma once

#include <sys/stat.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "protocol/messages.h"

namespace fsout::host {

struct Node {
  Node(protocol::NodeId id, int fd, const struct stat& st);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  const protocol::NodeId id;
  const int fd;  // O_PATH; keeps the inode alive while the guest knows it
  const dev_t device;
  const ino_t inode;
  const mode_t type;
  std::string handle;         // file-handle key (file_handle_key()), when tracked; set once
                              // under NodeTable::mutex_
  uint64_t lookups = 0;       // guarded by NodeTable::mutex_
  bool forget_asked = false;  // take_oldest_names() gave it out; NodeTable::mutex_
  // The last name the guest learnt it by (for invalidating everything after
  // lost change events); guarded by NodeTable::mutex_.
  protocol::NodeId parent;
  std::string name;
  std::atomic<bool> saved = false;  // written to the session's state log (session_state.h)
  std::string orphan;               // its name in the orphan directory; Passthrough's lock
};
using NodeRef = std::shared_ptr<Node>;

class NodeTable {
 public:
  // `root_fd` becomes node 1, which is never forgotten.
  NodeTable(int root_fd, const struct stat& root_stat, size_t max_nodes);

  NodeRef get(protocol::NodeId id);  // nullptr for an id never issued or forgotten

  // Counts one lookup of the inode that `fd` (O_PATH) holds. Takes ownership
  // of `fd`: it becomes the node's fd, or is closed when the inode already has
  // a node. Returns nullptr (fd closed) when the table is full.
  NodeRef add_lookup(int fd, const struct stat& st);

  void forget(protocol::NodeId id, uint64_t count);

  // A node of a session saved before a restart, under its old id (lookup count 1: the
  // kernel's FORGET names its whole count). Takes `fd`; nullptr (fd closed) when the id or
  // the inode is taken already.
  NodeRef restore(protocol::NodeId id, int fd, const struct stat& st, const std::string& key);
  // Runs (outside the table's lock) for each node that goes away.
  void on_drop(std::function<void(const NodeRef&)> callback) { on_drop_ = std::move(callback); }
  size_t size() const;

  // Change notifications: new nodes get their file handle as a key, so that
  // a change event (which names file handles) finds its node without a
  // syscall. Call before the first lookup.
  void track_handles();
  NodeRef find_by_handle(const std::string& key);
  NodeRef find_by_inode(dev_t device, ino_t inode);
  void note_name(const NodeRef& node, protocol::NodeId parent, const std::string& name);
  struct Named {
    NodeRef node;
    protocol::NodeId parent;
    std::string name;
  };
  std::vector<Named> all();
  // Up to `count` named nodes, files before directories, oldest first, that
  // were not taken before (each node is asked to be forgotten once).
  std::vector<Named> take_oldest_names(size_t count);
  // When full, add_lookup() waits (up to 2 s) for FORGETs instead of
  // failing at once: for sessions whose guest is asked to forget.
  void wait_for_room() { wait_for_room_ = true; }

  // O_PATH fds held by the nodes of every table in this process.
  static size_t open_fds();

 private:
  struct Key {
    dev_t device;
    ino_t inode;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const {
      return std::hash<uint64_t>()(k.inode ^ (uint64_t(k.device) << 40));
    }
  };
  std::mutex mutex_;  // leaf lock: nothing else is taken while it is held
  std::unordered_map<uint64_t, NodeRef> by_id_;
  std::atomic<size_t> count_{0};  // by_id_.size(), readable without the lock
  std::unordered_map<Key, NodeRef, KeyHash> by_inode_;
  std::unordered_map<std::string, NodeRef> by_handle_;
  bool track_handles_ = false;
  bool wait_for_room_ = false;
  std::condition_variable room_;  // a node was dropped
  uint64_t next_id_ = 2;
  size_t max_nodes_;
  std::function<void(const NodeRef&)> on_drop_;
};

// The key of a file handle: its type and bytes, as name_to_handle_at() and
// fanotify report them. "" when the file system has no handles.
std::string file_handle_key(int fd);
std::string file_handle_key(int type, const unsigned char* bytes, size_t size);

}  // namespace fsout::host
