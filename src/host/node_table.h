// The nodes a session has handed out. A node is an inode of the export, found
// by (st_dev, st_ino), held open as an O_PATH fd, and named to the guest by an
// opaque, increasing 64-bit id that is never reused within a session. Each
// successful LOOKUP-like reply adds one to the node's lookup count; FORGET
// subtracts (saturating at zero) and the node goes away at zero.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "protocol/messages.h"

namespace fsout::host {

struct Node {
  Node(protocol::NodeId id, int fd, const struct stat& st)
      : id(id), fd(fd), device(st.st_dev), inode(st.st_ino), type(st.st_mode & S_IFMT) {}
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  const protocol::NodeId id;
  const int fd;  // O_PATH; keeps the inode alive while the guest knows it
  const dev_t device;
  const ino_t inode;
  const mode_t type;
  uint64_t lookups = 0;  // guarded by NodeTable::mutex_
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
  size_t size();

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
  std::unordered_map<Key, NodeRef, KeyHash> by_inode_;
  uint64_t next_id_ = 2;
  size_t max_nodes_;
};

}  // namespace fsout::host
