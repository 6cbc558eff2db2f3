#include "host/node_table.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>

namespace fsout::host {

namespace {
std::atomic<size_t> node_fds{0};
}  // namespace

Node::Node(protocol::NodeId id, int fd, const struct stat& st)
    : id(id), fd(fd), device(st.st_dev), inode(st.st_ino), type(st.st_mode & S_IFMT) {
  ++node_fds;
}

Node::~Node() {
  close(fd);
  --node_fds;
}

size_t NodeTable::open_fds() { return node_fds.load(std::memory_order_relaxed); }

NodeTable::NodeTable(int root_fd, const struct stat& root_stat, size_t max_nodes)
    : max_nodes_(max_nodes) {
  auto root = std::make_shared<Node>(protocol::kRootNode, root_fd, root_stat);
  root->lookups = 1;
  by_id_[protocol::kRootNode.value] = root;
  by_inode_[{root->device, root->inode}] = root;
  count_ = 1;
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
    node->forget_asked = false;  // the guest uses it again
    lock.unlock();
    close(fd);
    return node;
  }
  if (by_id_.size() >= max_nodes_ && wait_for_room_)
    room_.wait_for(lock, std::chrono::seconds(2), [&] { return by_id_.size() < max_nodes_; });
  if (by_id_.size() >= max_nodes_) {
    lock.unlock();
    close(fd);
    return nullptr;
  }
  auto node = std::make_shared<Node>(protocol::NodeId{next_id_++}, fd, st);
  node->lookups = 1;
  by_id_[node->id.value] = node;
  by_inode_[{node->device, node->inode}] = node;
  count_ = by_id_.size();
  if (track_handles_) {
    lock.unlock();  // a syscall: not under the table's lock
    std::string key = file_handle_key(fd);
    lock.lock();
    node->handle = key;
    if (!key.empty() && by_id_.count(node->id.value)) by_handle_[key] = node;
  }
  return node;
}

void NodeTable::forget(protocol::NodeId id, uint64_t count) {
  if (id == protocol::kRootNode) return;
  NodeRef dropped;  // destroyed (fd closed) after the lock is released
  std::unique_lock lock(mutex_);
  auto it = by_id_.find(id.value);
  if (it == by_id_.end()) return;
  NodeRef& node = it->second;
  node->lookups = count >= node->lookups ? 0 : node->lookups - count;
  if (node->lookups > 0) return;
  by_inode_.erase({node->device, node->inode});
  if (!node->handle.empty()) {
    auto h = by_handle_.find(node->handle);
    if (h != by_handle_.end() && h->second == node) by_handle_.erase(h);
  }
  dropped = std::move(node);
  by_id_.erase(it);
  count_ = by_id_.size();
  room_.notify_one();
  lock.unlock();
  if (on_drop_) on_drop_(dropped);
}

NodeRef NodeTable::restore(protocol::NodeId id, int fd, const struct stat& st,
                           const std::string& key) {
  std::lock_guard lock(mutex_);
  if (id.value <= protocol::kRootNode.value || by_id_.count(id.value) ||
      by_inode_.count({st.st_dev, st.st_ino}) || by_id_.size() >= max_nodes_) {
    close(fd);
    return nullptr;
  }
  auto node = std::make_shared<Node>(id, fd, st);
  node->lookups = 1;
  node->handle = key;
  node->saved = true;
  by_id_[id.value] = node;
  by_inode_[{node->device, node->inode}] = node;
  count_ = by_id_.size();
  next_id_ = std::max(next_id_, id.value + 1);
  return node;
}

void NodeTable::track_handles() {
  NodeRef root = get(protocol::kRootNode);
  std::string key = file_handle_key(root->fd);
  std::lock_guard lock(mutex_);
  track_handles_ = true;
  root->handle = key;
  if (!key.empty()) by_handle_[key] = root;
  for (auto& [id, node] : by_id_)  // restored nodes came with their keys
    if (!node->handle.empty()) by_handle_[node->handle] = node;
}

NodeRef NodeTable::find_by_handle(const std::string& key) {
  if (key.empty()) return nullptr;
  std::lock_guard lock(mutex_);
  auto it = by_handle_.find(key);
  return it == by_handle_.end() ? nullptr : it->second;
}

NodeRef NodeTable::find_by_inode(dev_t device, ino_t inode) {
  std::lock_guard lock(mutex_);
  auto it = by_inode_.find({device, inode});
  return it == by_inode_.end() ? nullptr : it->second;
}

void NodeTable::note_name(const NodeRef& node, protocol::NodeId parent, const std::string& name) {
  std::lock_guard lock(mutex_);
  node->parent = parent;
  node->name = name;
}

std::vector<NodeTable::Named> NodeTable::all() {
  std::lock_guard lock(mutex_);
  std::vector<Named> nodes;
  nodes.reserve(by_id_.size());
  for (auto& [id, node] : by_id_) nodes.push_back({node, node->parent, node->name});
  return nodes;
}

std::vector<NodeTable::Named> NodeTable::take_oldest_names(size_t count) {
  std::lock_guard lock(mutex_);
  std::vector<NodeRef> candidates;
  for (auto& [id, node] : by_id_)
    if (!node->forget_asked && !node->name.empty()) candidates.push_back(node);
  std::sort(candidates.begin(), candidates.end(), [](const NodeRef& a, const NodeRef& b) {
    bool a_dir = S_ISDIR(a->type), b_dir = S_ISDIR(b->type);
    return a_dir != b_dir ? !a_dir : a->id.value < b->id.value;
  });
  std::vector<Named> taken;
  for (size_t i = 0; i < candidates.size() && taken.size() < count; ++i) {
    candidates[i]->forget_asked = true;
    taken.push_back({candidates[i], candidates[i]->parent, candidates[i]->name});
  }
  return taken;
}

std::string file_handle_key(int type, const unsigned char* bytes, size_t size) {
  std::string key(sizeof(type) + size, '\0');
  std::memcpy(key.data(), &type, sizeof(type));
  std::memcpy(key.data() + sizeof(type), bytes, size);
  return key;
}

std::string file_handle_key(int fd) {
  struct {
    file_handle header;
    unsigned char bytes[MAX_HANDLE_SZ];
  } handle;
  handle.header.handle_bytes = MAX_HANDLE_SZ;
  int mount_id;
  if (name_to_handle_at(fd, "", &handle.header, &mount_id, AT_EMPTY_PATH) != 0) return "";
  return file_handle_key(handle.header.handle_type, handle.header.f_handle,
                         handle.header.handle_bytes);
}

size_t NodeTable::size() const { return count_.load(std::memory_order_relaxed); }

}  // namespace fsout::host
