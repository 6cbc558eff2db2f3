#include "host/node_table.h"

#include <unistd.h>

namespace fsout::host {

Node::~Node() { close(fd); }

NodeTable::NodeTable(int root_fd, const struct stat& root_stat, size_t max_nodes)
    : max_nodes_(max_nodes) {
  auto root = std::make_shared<Node>(protocol::kRootNode, root_fd, root_stat);
  root->lookups = 1;
  by_id_[protocol::kRootNode.value] = root;
  by_inode_[{root->device, root->inode}] = root;
}

NodeRef NodeTable::get(protocol::NodeId id) {
  std::lock_guard lock(mutex_);
  auto it = by_id_.find(id.value);
  return it == by_id_.end() ? nullptr : it->second;
}

NodeRef NodeTable::add_lookup(int fd, const struct stat& st) {
  std::unique_lock lock(mutex_);
  auto it = by_inode_.find({st.st_dev, st.st_ino});
  if (it != by_inode_.end()) {
    NodeRef node = it->second;
    if (node->id != protocol::kRootNode) ++node->lookups;
    lock.unlock();
    close(fd);
    return node;
  }
  if (by_id_.size() >= max_nodes_) {
    lock.unlock();
    close(fd);
    return nullptr;
  }
  auto node = std::make_shared<Node>(protocol::NodeId{next_id_++}, fd, st);
  node->lookups = 1;
  by_id_[node->id.value] = node;
  by_inode_[{node->device, node->inode}] = node;
  return node;
}

void NodeTable::forget(protocol::NodeId id, uint64_t count) {
  if (id == protocol::kRootNode) return;
  NodeRef dropped;  // destroyed (fd closed) after the lock is released
  std::lock_guard lock(mutex_);
  auto it = by_id_.find(id.value);
  if (it == by_id_.end()) return;
  NodeRef& node = it->second;
  node->lookups = count >= node->lookups ? 0 : node->lookups - count;
  if (node->lookups > 0) return;
  by_inode_.erase({node->device, node->inode});
  dropped = std::move(node);
  by_id_.erase(it);
}

size_t NodeTable::size() {
  std::lock_guard lock(mutex_);
  return by_id_.size();
}

}  // namespace fsout::host
